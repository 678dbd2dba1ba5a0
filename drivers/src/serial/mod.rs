//! Serial devices: the byte-stream framer (pure) and the tokio-serial port loop.

pub mod framer;
pub mod port;

use std::time::{Duration, Instant};

use crate::reading::DecodeEvent;

/// A pure decoder of a serial byte stream, driven by the port loop.
///
/// Implemented by the scanner framer and the RFID protocol parsers so that all serial
/// devices share one reconnecting I/O loop.
pub trait StreamDecoder: Send {
    /// Feeds bytes read at `now`; appends completed readings and rejects to `out`.
    fn push(&mut self, data: &[u8], now: Instant, out: &mut Vec<DecodeEvent>);
    /// Called when the line has been quiet for [`StreamDecoder::idle_gap`] with
    /// [`StreamDecoder::has_pending`] true.
    fn flush_idle(&mut self, now: Instant, out: &mut Vec<DecodeEvent>);
    /// Quiet time that flushes a partial frame, if any.
    fn idle_gap(&self) -> Option<Duration>;
    /// Whether a partial frame (or unframed bytes) is buffered.
    fn has_pending(&self) -> bool;
    /// Drops any partial state (after a disconnect: a half frame from before is meaningless).
    fn reset(&mut self);
}
