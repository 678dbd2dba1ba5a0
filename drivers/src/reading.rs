//! The one thing every driver produces: a [`Reading`].

use std::time::Instant;

use chrono::{DateTime, Utc};

/// Symbology hint attached to RFID readings: the bytes are a binary EPC (no PC, no CRC).
pub const HINT_EPC: &str = "epc";

/// One scan or tag read as it came off a device, before any decoding.
///
/// The bytes are what the device sent, minus framing (terminators, STX/ETX, report
/// headers). An AIM prefix sent *inside* the data (serial, wedge) stays in `bytes`;
/// decoding happens downstream in `bobbin-codes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// The configured device id (`[[devices]] id = ...`).
    pub device: String,
    /// Wall-clock time the reading was completed (may jump; for display and records).
    pub time_utc: DateTime<Utc>,
    /// Monotonic time the reading was completed (for ordering, windows and latency).
    pub time_mono: Instant,
    /// Payload bytes, framing removed.
    pub bytes: Vec<u8>,
    /// Symbology hint: an AIM id like `]C1` from a HID POS report, `"epc"` for RFID,
    /// `None` when the device gives none (the AIM prefix may then be in `bytes`).
    pub hint: Option<String>,
}

impl Reading {
    /// Builds a reading stamped with the current wall-clock time and `time_mono`.
    pub fn new(device: &str, time_mono: Instant, bytes: Vec<u8>, hint: Option<String>) -> Self {
        Reading {
            device: device.to_owned(),
            time_utc: Utc::now(),
            time_mono,
            bytes,
            hint,
        }
    }
}

/// Input a driver refused (oversized frame, bad checksum, garbage between frames …), with
/// its bytes, for the agent to keep as a reject row (nothing silently dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameReject {
    /// The configured device id.
    pub device: String,
    /// When it was refused.
    pub time_utc: DateTime<Utc>,
    /// Why, as a category.
    pub reason: crate::status::RejectReason,
    /// Why, in words.
    pub detail: String,
    /// The refused bytes.
    pub bytes: Vec<u8>,
}

/// What a pure decoder (framer, report decoder, frame parser) produces from input bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeEvent {
    /// A complete scan or tag read, framing removed.
    Data {
        /// Payload bytes.
        bytes: Vec<u8>,
        /// Symbology hint (see [`Reading::hint`]).
        hint: Option<String>,
    },
    /// Input that could not become a reading; counted in the device status.
    Reject {
        /// Why.
        reason: crate::status::RejectReason,
        /// Extra detail for the log and the status snapshot.
        detail: String,
        /// The offending bytes (possibly truncated to the configured maximum).
        bytes: Vec<u8>,
    },
}

impl DecodeEvent {
    /// A data event without hint.
    pub fn data(bytes: Vec<u8>) -> Self {
        DecodeEvent::Data { bytes, hint: None }
    }

    /// A reject event.
    pub fn reject(
        reason: crate::status::RejectReason,
        detail: impl Into<String>,
        bytes: Vec<u8>,
    ) -> Self {
        DecodeEvent::Reject {
            reason,
            detail: detail.into(),
            bytes,
        }
    }
}
