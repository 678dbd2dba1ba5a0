//! Splits a serial scanner's byte stream into scans: line terminators, STX/ETX, fixed
//! length or idle gap, with a maximum frame length and resynchronisation.

use std::time::{Duration, Instant};

use crate::config::{FramingConfig, FramingMode, IdleAction, Terminator};
use crate::reading::DecodeEvent;
use crate::serial::StreamDecoder;
use crate::status::RejectReason;

const CR: u8 = 0x0D;
const LF: u8 = 0x0A;

/// Streaming framer for serial scanners. Pure: no I/O, no clock (the caller reports idle).
#[derive(Debug, Clone)]
pub struct SerialFramer {
    cfg: FramingConfig,
    /// Bytes of the frame being collected (at most `max_len + 1`; see `push_data`).
    buf: Vec<u8>,
    /// STX seen, waiting for ETX (stx-etx mode only).
    inside: bool,
    /// The current frame exceeded `max_len`; bytes are dropped until the frame ends.
    discarding: bool,
    /// Total length of the frame being discarded (for the reject detail).
    discarded: usize,
    /// Bytes outside STX/ETX since the last frame (a sample, at most `max_len`).
    garbage: Vec<u8>,
}

impl SerialFramer {
    /// A framer for `cfg` (assumed validated).
    pub fn new(cfg: FramingConfig) -> Self {
        SerialFramer {
            buf: Vec::with_capacity(cfg.max_len.min(4096) + 1),
            cfg,
            inside: false,
            discarding: false,
            discarded: 0,
            garbage: Vec::new(),
        }
    }

    /// Feeds bytes; completed scans and rejects are appended to `out`.
    pub fn push_bytes(&mut self, data: &[u8], out: &mut Vec<DecodeEvent>) {
        match self.cfg.mode {
            FramingMode::Line => {
                for &b in data {
                    let term = match self.cfg.terminator {
                        Terminator::Cr => b == CR,
                        Terminator::Lf | Terminator::Crlf => b == LF,
                        Terminator::Any => b == CR || b == LF,
                    };
                    if term {
                        self.end_frame(out);
                    } else {
                        self.push_data(b);
                    }
                }
            }
            FramingMode::StxEtx => {
                for &b in data {
                    self.push_stx_etx(b, out);
                }
            }
            FramingMode::Fixed => {
                for &b in data {
                    self.buf.push(b);
                    if self.buf.len() >= self.cfg.length {
                        out.push(DecodeEvent::data(std::mem::take(&mut self.buf)));
                    }
                }
            }
            FramingMode::Idle => {
                for &b in data {
                    self.push_data(b);
                }
            }
        }
    }

    /// The line was quiet for the idle gap: end or reject whatever is partial.
    pub fn idle(&mut self, out: &mut Vec<DecodeEvent>) {
        self.flush_garbage(out);
        let partial = !self.buf.is_empty() || self.discarding || self.inside;
        if !partial {
            return;
        }
        if self.discarding || self.cfg.mode == FramingMode::Idle {
            // Idle mode: the gap is the regular end of a frame.
            self.end_frame(out);
        } else {
            match self.cfg.idle_action() {
                IdleAction::Emit => self.end_frame(out),
                IdleAction::Reject => {
                    let bytes = std::mem::take(&mut self.buf);
                    out.push(DecodeEvent::reject(
                        RejectReason::Incomplete,
                        format!(
                            "frame of {} bytes not terminated before the idle gap",
                            bytes.len()
                        ),
                        bytes,
                    ));
                }
            }
        }
        self.inside = false;
    }

    /// Whether anything is buffered that an idle gap would flush.
    pub fn pending(&self) -> bool {
        !self.buf.is_empty() || self.discarding || self.inside || !self.garbage.is_empty()
    }

    fn push_data(&mut self, b: u8) {
        if self.discarding {
            self.discarded += 1;
            return;
        }
        // One byte of slack: in CRLF mode the CR before LF is stripped only at the end.
        if self.buf.len() > self.cfg.max_len {
            self.discarding = true;
            self.discarded = self.buf.len() + 1;
            return;
        }
        self.buf.push(b);
    }

    fn end_frame(&mut self, out: &mut Vec<DecodeEvent>) {
        let mut bytes = std::mem::take(&mut self.buf);
        if self.discarding {
            let total = self.discarded;
            self.discarding = false;
            self.discarded = 0;
            bytes.truncate(self.cfg.max_len);
            out.push(DecodeEvent::reject(
                RejectReason::Oversize,
                format!(
                    "frame of {total} bytes exceeds max_len {}",
                    self.cfg.max_len
                ),
                bytes,
            ));
            return;
        }
        if self.cfg.mode == FramingMode::Line
            && self.cfg.terminator == Terminator::Crlf
            && bytes.last() == Some(&CR)
        {
            bytes.pop();
        }
        if bytes.len() > self.cfg.max_len {
            let total = bytes.len();
            bytes.truncate(self.cfg.max_len);
            out.push(DecodeEvent::reject(
                RejectReason::Oversize,
                format!(
                    "frame of {total} bytes exceeds max_len {}",
                    self.cfg.max_len
                ),
                bytes,
            ));
        } else if !bytes.is_empty() {
            // Empty frames are the second half of CR LF in `any` mode or a blank line: not
            // scans, not errors.
            out.push(DecodeEvent::data(bytes));
        }
    }

    fn push_stx_etx(&mut self, b: u8, out: &mut Vec<DecodeEvent>) {
        if !self.inside {
            if b == self.cfg.stx {
                self.flush_garbage(out);
                self.inside = true;
                self.buf.clear();
            } else if b != CR && b != LF {
                // CR/LF after ETX is a common configured suffix, not garbage.
                self.garbage.push(b);
                if self.garbage.len() >= self.cfg.max_len {
                    self.flush_garbage(out);
                }
            }
            return;
        }
        if b == self.cfg.etx {
            self.inside = false;
            self.end_frame(out);
        } else if b == self.cfg.stx {
            // A new STX before ETX: the previous frame lost its end; resynchronise here.
            let bytes = std::mem::take(&mut self.buf);
            let total = if self.discarding {
                self.discarded
            } else {
                bytes.len()
            };
            self.discarding = false;
            self.discarded = 0;
            out.push(DecodeEvent::reject(
                RejectReason::Incomplete,
                format!("STX after {total} bytes without ETX"),
                bytes,
            ));
        } else {
            self.push_data(b);
        }
    }

    fn flush_garbage(&mut self, out: &mut Vec<DecodeEvent>) {
        if !self.garbage.is_empty() {
            let bytes = std::mem::take(&mut self.garbage);
            out.push(DecodeEvent::reject(
                RejectReason::Unframed,
                format!("{} bytes outside STX/ETX", bytes.len()),
                bytes,
            ));
        }
    }
}

impl StreamDecoder for SerialFramer {
    fn push(&mut self, data: &[u8], _now: Instant, out: &mut Vec<DecodeEvent>) {
        self.push_bytes(data, out);
    }

    fn flush_idle(&mut self, _now: Instant, out: &mut Vec<DecodeEvent>) {
        self.idle(out);
    }

    fn idle_gap(&self) -> Option<Duration> {
        (self.cfg.idle_gap_ms > 0).then(|| Duration::from_millis(self.cfg.idle_gap_ms))
    }

    fn has_pending(&self) -> bool {
        self.pending()
    }

    fn reset(&mut self) {
        self.buf.clear();
        self.garbage.clear();
        self.inside = false;
        self.discarding = false;
        self.discarded = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(mode: FramingMode, terminator: Terminator) -> FramingConfig {
        FramingConfig {
            mode,
            terminator,
            ..FramingConfig::default()
        }
    }

    fn run(f: &mut SerialFramer, chunks: &[&[u8]]) -> Vec<DecodeEvent> {
        let mut out = Vec::new();
        for c in chunks {
            f.push_bytes(c, &mut out);
        }
        out
    }

    fn data(s: &[u8]) -> DecodeEvent {
        DecodeEvent::data(s.to_vec())
    }

    fn reasons(ev: &[DecodeEvent]) -> Vec<RejectReason> {
        ev.iter()
            .filter_map(|e| match e {
                DecodeEvent::Reject { reason, .. } => Some(*reason),
                _ => None,
            })
            .collect()
    }

    const TV_SER_01: &[u8] = b"ABC123\r\nXY\r\n";

    #[test]
    fn tv_ser_01_crlf_stream_any_terminator() {
        let mut f = SerialFramer::new(cfg(FramingMode::Line, Terminator::Any));
        assert_eq!(
            run(&mut f, &[TV_SER_01]),
            vec![data(b"ABC123"), data(b"XY")]
        );
    }

    #[test]
    fn tv_ser_01_byte_at_a_time_and_split() {
        for term in [Terminator::Any, Terminator::Crlf] {
            let mut f = SerialFramer::new(cfg(FramingMode::Line, term));
            let chunks: Vec<&[u8]> = TV_SER_01.chunks(1).collect();
            assert_eq!(run(&mut f, &chunks), vec![data(b"ABC123"), data(b"XY")]);
            let mut f = SerialFramer::new(cfg(FramingMode::Line, term));
            assert_eq!(
                run(&mut f, &[b"ABC123\r", b"\nXY\r\n"]),
                vec![data(b"ABC123"), data(b"XY")]
            );
        }
    }

    #[test]
    fn sr_1_cr_only() {
        let mut f = SerialFramer::new(cfg(FramingMode::Line, Terminator::Cr));
        assert_eq!(
            run(&mut f, &[b"ABC\r12\r"]),
            vec![data(b"ABC"), data(b"12")]
        );
    }

    #[test]
    fn sr_2_crlf_keeps_lone_cr_inside() {
        let mut f = SerialFramer::new(cfg(FramingMode::Line, Terminator::Crlf));
        assert_eq!(
            run(&mut f, &[b"AB\r\nC\r\n"]),
            vec![data(b"AB"), data(b"C")]
        );
        assert_eq!(run(&mut f, &[b"A\rB\r\n"]), vec![data(b"A\rB")]);
    }

    #[test]
    fn lf_only() {
        let mut f = SerialFramer::new(cfg(FramingMode::Line, Terminator::Lf));
        assert_eq!(run(&mut f, &[b"AB\nC\n"]), vec![data(b"AB"), data(b"C")]);
    }

    #[test]
    fn sr_3_stx_etx_with_cr_suffix_and_gs() {
        let mut f = SerialFramer::new(cfg(FramingMode::StxEtx, Terminator::Any));
        let input = [0x02, 0x5D, 0x43, 0x31, 0x30, 0x31, 0x1D, 0x32, 0x03, 0x0D];
        assert_eq!(
            run(&mut f, &[&input]),
            vec![data(&[0x5D, 0x43, 0x31, 0x30, 0x31, 0x1D, 0x32])]
        );
        assert!(!f.pending());
    }

    #[test]
    fn stx_etx_garbage_between_frames_is_counted_once_per_run() {
        let mut f = SerialFramer::new(cfg(FramingMode::StxEtx, Terminator::Any));
        let ev = run(&mut f, &[b"\x02AB\x03zz\xFFq\x02CD\x03"]);
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[0], data(b"AB"));
        assert_eq!(
            ev[1],
            DecodeEvent::reject(
                RejectReason::Unframed,
                "4 bytes outside STX/ETX",
                b"zz\xFFq".to_vec()
            )
        );
        assert_eq!(ev[2], data(b"CD"));
    }

    #[test]
    fn stx_etx_missing_etx_resyncs_on_next_stx() {
        let mut f = SerialFramer::new(cfg(FramingMode::StxEtx, Terminator::Any));
        let ev = run(&mut f, &[b"\x02AB\x02CD\x03"]);
        assert_eq!(reasons(&ev), vec![RejectReason::Incomplete]);
        assert_eq!(ev.last(), Some(&data(b"CD")));
    }

    #[test]
    fn tv_ser_02_raw_frame_passes_through_stx_etx() {
        // The Quio frame is DLE-stuffed; the scanner framer hands over the inner bytes as is.
        let mut f = SerialFramer::new(cfg(FramingMode::StxEtx, Terminator::Any));
        let ev = run(&mut f, &[&[0x02, 0x04, 0x10, 0x10, 0x00, 0x14, 0x03]]);
        assert_eq!(ev, vec![data(&[0x04, 0x10, 0x10, 0x00, 0x14])]);
    }

    #[test]
    fn sr_5_oversize_line_rejected_then_resync() {
        let mut c = cfg(FramingMode::Line, Terminator::Cr);
        c.max_len = 4096;
        let mut f = SerialFramer::new(c);
        let big = vec![b'A'; 5000];
        let mut ev = run(&mut f, &[&big]);
        assert!(ev.is_empty(), "nothing until the terminator");
        ev = run(&mut f, &[b"\rOK\r"]);
        assert_eq!(reasons(&ev), vec![RejectReason::Oversize]);
        match &ev[0] {
            DecodeEvent::Reject { detail, bytes, .. } => {
                assert_eq!(detail, "frame of 5000 bytes exceeds max_len 4096");
                assert_eq!(bytes.len(), 4096);
            }
            _ => unreachable!(),
        }
        assert_eq!(ev[1], data(b"OK"));
    }

    #[test]
    fn max_len_boundary_is_inclusive() {
        for term in [Terminator::Cr, Terminator::Crlf, Terminator::Any] {
            let mut c = cfg(FramingMode::Line, term);
            c.max_len = 4;
            let mut f = SerialFramer::new(c);
            assert_eq!(run(&mut f, &[b"ABCD\r\n"]), vec![data(b"ABCD")], "{term:?}");
            let ev = run(&mut f, &[b"ABCDE\r\n"]);
            assert_eq!(reasons(&ev), vec![RejectReason::Oversize], "{term:?}");
        }
    }

    #[test]
    fn oversize_stx_etx() {
        let mut c = cfg(FramingMode::StxEtx, Terminator::Any);
        c.max_len = 3;
        let mut f = SerialFramer::new(c);
        let ev = run(&mut f, &[b"\x02ABCDEFG\x03\x02XYZ\x03"]);
        assert_eq!(reasons(&ev), vec![RejectReason::Oversize]);
        assert_eq!(ev[1], data(b"XYZ"));
    }

    #[test]
    fn fixed_length() {
        let mut c = cfg(FramingMode::Fixed, Terminator::Any);
        c.length = 3;
        let mut f = SerialFramer::new(c);
        assert_eq!(
            run(&mut f, &[b"AB", b"CDE", b"F", b"G"]),
            vec![data(b"ABC"), data(b"DEF")]
        );
        let mut out = Vec::new();
        f.idle(&mut out);
        assert_eq!(reasons(&out), vec![RejectReason::Incomplete]);
    }

    #[test]
    fn idle_mode_ends_frames_on_gap() {
        let mut c = cfg(FramingMode::Idle, Terminator::Any);
        c.idle_gap_ms = 50;
        let mut f = SerialFramer::new(c);
        assert!(run(&mut f, &[b"AB\rC"]).is_empty());
        assert!(f.pending());
        let mut out = Vec::new();
        f.idle(&mut out);
        assert_eq!(out, vec![data(b"AB\rC")]);
        assert!(!f.pending());
        assert_eq!(f.idle_gap(), Some(Duration::from_millis(50)));
    }

    #[test]
    fn sr_4_line_idle_flush_emits_or_rejects() {
        let mut c = cfg(FramingMode::Line, Terminator::Cr);
        c.idle_gap_ms = 100;
        let mut f = SerialFramer::new(c.clone());
        let mut out = run(&mut f, &[b"AB"]);
        f.idle(&mut out);
        f.push_bytes(b"C\r", &mut out);
        assert_eq!(out, vec![data(b"AB"), data(b"C")]);

        c.partial_on_idle = Some(IdleAction::Reject);
        let mut f = SerialFramer::new(c);
        let mut out = run(&mut f, &[b"AB"]);
        f.idle(&mut out);
        f.push_bytes(b"C\r", &mut out);
        assert_eq!(reasons(&out), vec![RejectReason::Incomplete]);
        assert_eq!(out[1], data(b"C"));
    }

    #[test]
    fn stx_etx_idle_rejects_partial_and_garbage() {
        let mut f = SerialFramer::new(cfg(FramingMode::StxEtx, Terminator::Any));
        let mut out = run(&mut f, &[b"xx\x02AB"]);
        f.idle(&mut out);
        assert_eq!(
            reasons(&out),
            vec![RejectReason::Unframed, RejectReason::Incomplete]
        );
        assert!(!f.pending());
        assert_eq!(run(&mut f, &[b"\x02OK\x03"]), vec![data(b"OK")]);
    }

    #[test]
    fn reset_drops_partial() {
        let mut f = SerialFramer::new(cfg(FramingMode::Line, Terminator::Cr));
        run(&mut f, &[b"half"]);
        f.reset();
        assert_eq!(run(&mut f, &[b"OK\r"]), vec![data(b"OK")]);
    }
}
