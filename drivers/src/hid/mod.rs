//! USB-HID scanners: keyboard-wedge and HID POS report decoders (pure), the
//! [`source::ReportSource`] abstraction over hidapi, and the blocking read loop.

pub mod keymap;
pub mod pos;
pub mod source;
pub mod wedge;

use std::time::{Duration, Instant};

use crate::config::{HidConfig, HidMode};
use crate::reading::DecodeEvent;

use self::pos::PosDecoder;
use self::wedge::WedgeDecoder;

/// The report decoder selected by `mode`.
#[derive(Debug, Clone)]
pub enum ReportDecoder {
    /// Keyboard wedge.
    Wedge(WedgeDecoder),
    /// HID POS.
    Pos(PosDecoder),
}

impl ReportDecoder {
    /// The decoder for `cfg.mode`.
    pub fn new(cfg: &HidConfig) -> Self {
        match cfg.mode {
            HidMode::Wedge => ReportDecoder::Wedge(WedgeDecoder::new(cfg.wedge.clone())),
            HidMode::Pos => ReportDecoder::Pos(PosDecoder::new(cfg.pos.clone())),
        }
    }

    /// Feeds one report read at `now`.
    pub fn push_report(&mut self, report: &[u8], now: Instant, out: &mut Vec<DecodeEvent>) {
        match self {
            ReportDecoder::Wedge(d) => d.push_report(report, out),
            ReportDecoder::Pos(d) => d.push_report(report, now, out),
        }
    }

    /// Called after `quiet` without reports: ends a wedge scan after its gap, expires a
    /// HID POS reassembly after its timeout.
    pub fn on_quiet(
        &mut self,
        quiet: Duration,
        gap: Duration,
        now: Instant,
        out: &mut Vec<DecodeEvent>,
    ) {
        match self {
            ReportDecoder::Wedge(d) => {
                if !gap.is_zero() && quiet >= gap && d.pending() {
                    d.idle(out);
                }
            }
            ReportDecoder::Pos(d) => d.poll(now, out),
        }
    }

    /// Whether a scan is in progress.
    pub fn pending(&self) -> bool {
        match self {
            ReportDecoder::Wedge(d) => d.pending(),
            ReportDecoder::Pos(d) => d.pending(),
        }
    }

    /// Forgets partial state (after a reconnect).
    pub fn reset(&mut self) {
        match self {
            ReportDecoder::Wedge(d) => d.reset(),
            ReportDecoder::Pos(d) => d.reset(),
        }
    }
}
