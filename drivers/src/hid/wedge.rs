//! Keyboard-wedge decoding: boot-keyboard reports (modifiers, reserved, 6 key slots) to
//! scanned bytes, with GS via Ctrl+], Alt+numpad (Alt+0029) or a configured special key.

use crate::config::{WedgeConfig, WedgeTerminator};
use crate::hex::to_hex;
use crate::hid::keymap::{self, usage_to_byte, ENTER, ERROR_ROLLOVER, KP_ENTER, TAB};
use crate::reading::DecodeEvent;
use crate::status::RejectReason;

const MOD_CTRL: u8 = 0x11;
const MOD_SHIFT: u8 = 0x22;
const MOD_ALT: u8 = 0x44;
/// GS, the GS1 separator (FNC1 after a variable-length AI).
pub const GS: u8 = 0x1D;

/// Streaming decoder of keyboard reports into scans. Pure: the caller reports idle gaps.
///
/// A character is emitted for each usage that is *newly* present compared with the
/// previous report, so streams with and without release reports both work; a doubled
/// character needs a release (or another key) in between — a held key is not a new
/// keystroke.
#[derive(Debug, Clone)]
pub struct WedgeDecoder {
    cfg: WedgeConfig,
    held: [u8; 6],
    prev_mods: u8,
    buf: Vec<u8>,
    /// Digits typed on the keypad while Alt is held (None: no Alt sequence).
    alt_code: Option<u32>,
    /// The scan contains something that is not data; reject it at its end.
    taint: Option<(RejectReason, String)>,
    oversize: bool,
}

impl WedgeDecoder {
    /// A decoder for `cfg` (assumed validated).
    pub fn new(cfg: WedgeConfig) -> Self {
        WedgeDecoder {
            cfg,
            held: [0; 6],
            prev_mods: 0,
            buf: Vec::new(),
            alt_code: None,
            taint: None,
            oversize: false,
        }
    }

    /// Feeds one input report as read from hidraw; appends finished scans and rejects.
    pub fn push_report(&mut self, report: &[u8], out: &mut Vec<DecodeEvent>) {
        let body = match self.cfg.report_id {
            Some(id) => match report.split_first() {
                Some((&rid, rest)) if rid == id => rest,
                // Another report of a composite device (e.g. consumer keys): not ours.
                _ => return,
            },
            None => report,
        };
        // Boot reports are 8 bytes; some devices are polled with a longer buffer and leave a
        // zero tail (TV-HID-06), so only the first 8 bytes count.
        if body.len() < 3 || body[1] != 0 {
            let why = if body.len() < 3 {
                format!("keyboard report of {} bytes", body.len())
            } else {
                // The reserved byte is constant 0 in a boot report: a non-zero value means a
                // numbered report (set `wedge.report_id`) or not a keyboard report at all.
                format!(
                    "reserved byte is {:02X}; numbered reports need wedge.report_id",
                    body[1]
                )
            };
            out.push(DecodeEvent::reject(
                RejectReason::Malformed,
                why,
                report.to_vec(),
            ));
            return;
        }
        let body = &body[..body.len().min(8)];
        let mods = body[0];
        let slots = &body[2..];
        if slots.contains(&ERROR_ROLLOVER) {
            // Phantom state: the key set is unknown; keep the previous one.
            out.push(DecodeEvent::reject(
                RejectReason::Rollover,
                "keyboard ErrorRollOver",
                report.to_vec(),
            ));
            return;
        }

        let alt = mods & MOD_ALT != 0;
        if self.prev_mods & MOD_ALT != 0 && !alt {
            self.finish_alt();
        }

        let mut current = [0u8; 6];
        for (dst, &u) in current.iter_mut().zip(slots.iter()) {
            *dst = u;
        }
        for &usage in current.iter() {
            if usage == 0 || self.held.contains(&usage) {
                continue;
            }
            self.key(usage, mods, out);
        }
        self.held = current;
        self.prev_mods = mods;
    }

    /// The device has been quiet for the gap: a scan without terminator is finished.
    pub fn idle(&mut self, out: &mut Vec<DecodeEvent>) {
        self.finish_alt();
        self.finish_scan(out);
    }

    /// Whether a scan is in progress.
    pub fn pending(&self) -> bool {
        !self.buf.is_empty() || self.taint.is_some() || self.oversize || self.alt_code.is_some()
    }

    /// Forgets all state (after a reconnect).
    pub fn reset(&mut self) {
        self.held = [0; 6];
        self.prev_mods = 0;
        self.buf.clear();
        self.alt_code = None;
        self.taint = None;
        self.oversize = false;
    }

    fn key(&mut self, usage: u8, mods: u8, out: &mut Vec<DecodeEvent>) {
        let alt = mods & MOD_ALT != 0;
        if alt {
            if let Some(d) = keymap::keypad_digit(usage) {
                let code = self.alt_code.unwrap_or(0);
                // Cap the value so a runaway sequence cannot overflow; > 255 is rejected.
                self.alt_code = Some((code * 10 + d as u32).min(10_000));
                return;
            }
        }
        let is_term = match self.cfg.terminator {
            WedgeTerminator::Enter => usage == ENTER || usage == KP_ENTER,
            WedgeTerminator::Tab => usage == TAB,
            WedgeTerminator::None => false,
        };
        if is_term {
            self.finish_alt();
            self.finish_scan(out);
            return;
        }
        if self.cfg.gs_key.map(|k| k.usage()) == Some(usage) {
            self.push_byte(GS);
            return;
        }
        let shift = mods & MOD_SHIFT != 0;
        let ctrl = mods & MOD_CTRL != 0;
        let byte = usage_to_byte(self.cfg.layout, usage, shift);
        match byte {
            // Ctrl+letter and Ctrl+[\]^_ give ASCII control codes: Ctrl+] = GS, Ctrl+M = CR.
            Some(c) if ctrl && (0x40..=0x7F).contains(&c) => self.push_byte(c & 0x1F),
            Some(c) if !ctrl && !alt => self.push_byte(c),
            _ => self.taint(format!(
                "unexpected key: usage {usage:02X} with modifiers {mods:02X}"
            )),
        }
    }

    fn finish_alt(&mut self) {
        if let Some(code) = self.alt_code.take() {
            match u8::try_from(code) {
                Ok(b) => self.push_byte(b),
                Err(_) => self.taint(format!("Alt+numpad code {code} is not a byte")),
            }
        }
    }

    fn push_byte(&mut self, b: u8) {
        if self.buf.len() < self.cfg.max_len {
            self.buf.push(b);
        } else {
            self.oversize = true;
        }
    }

    fn taint(&mut self, why: String) {
        if self.taint.is_none() {
            self.taint = Some((RejectReason::UnexpectedKey, why));
        }
    }

    fn finish_scan(&mut self, out: &mut Vec<DecodeEvent>) {
        let bytes = std::mem::take(&mut self.buf);
        if let Some((reason, why)) = self.taint.take() {
            self.oversize = false;
            out.push(DecodeEvent::reject(
                reason,
                format!("{why}; scan {}", to_hex(&bytes)),
                bytes,
            ));
        } else if self.oversize {
            self.oversize = false;
            out.push(DecodeEvent::reject(
                RejectReason::Oversize,
                format!("scan longer than max_len {}", self.cfg.max_len),
                bytes,
            ));
        } else if !bytes.is_empty() {
            out.push(DecodeEvent::data(bytes));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GsKey;

    const REL: [u8; 8] = [0; 8];

    fn key(m: u8, u: u8) -> [u8; 8] {
        [m, 0, u, 0, 0, 0, 0, 0]
    }

    fn decode(cfg: WedgeConfig, reports: &[[u8; 8]]) -> Vec<DecodeEvent> {
        let mut d = WedgeDecoder::new(cfg);
        let mut out = Vec::new();
        for r in reports {
            d.push_report(r, &mut out);
        }
        out
    }

    fn with_releases(presses: &[[u8; 8]]) -> Vec<[u8; 8]> {
        presses.iter().flat_map(|p| [*p, REL]).collect()
    }

    fn abc123_enter() -> Vec<[u8; 8]> {
        vec![
            key(2, 0x04),
            key(2, 0x05),
            key(2, 0x06),
            key(0, 0x1E),
            key(0, 0x1F),
            key(0, 0x20),
            key(0, 0x28),
        ]
    }

    fn data(b: &[u8]) -> Vec<DecodeEvent> {
        vec![DecodeEvent::data(b.to_vec())]
    }

    #[test]
    fn tv_hid_01_with_releases() {
        let r = with_releases(&abc123_enter());
        assert_eq!(r.len(), 14);
        assert_eq!(decode(WedgeConfig::default(), &r), data(b"ABC123"));
    }

    #[test]
    fn tv_hid_02_without_releases() {
        assert_eq!(
            decode(WedgeConfig::default(), &abc123_enter()),
            data(b"ABC123")
        );
    }

    #[test]
    fn kb_2_right_shift() {
        let mut r = abc123_enter();
        for p in r.iter_mut().take(3) {
            p[0] = 0x20;
        }
        assert_eq!(
            decode(WedgeConfig::default(), &with_releases(&r)),
            data(b"ABC123")
        );
    }

    #[test]
    fn tv_hid_03_same_key_twice() {
        let r = [key(2, 4), REL, key(2, 4), REL, key(0, 0x28), REL];
        assert_eq!(decode(WedgeConfig::default(), &r), data(b"AA"));
        // Held key: no release between the two presses → one character.
        let r = [key(2, 4), key(2, 4), key(0, 0x28), REL];
        assert_eq!(decode(WedgeConfig::default(), &r), data(b"A"));
        let r = [key(0, 4), REL, key(0, 4), REL, key(0, 0x28), REL];
        assert_eq!(decode(WedgeConfig::default(), &r), data(b"aa"));
    }

    #[test]
    fn tv_hid_04_modifier_only_report() {
        let r = [key(2, 0), key(2, 4), REL, key(0, 0x28), REL];
        assert_eq!(decode(WedgeConfig::default(), &r), data(b"A"));
    }

    fn tv_hid_05_presses(gs: [u8; 8]) -> Vec<[u8; 8]> {
        let mut p = vec![key(0, 0x30), key(2, 0x06)];
        for c in b"10112312312312333" {
            let u = if *c == b'0' { 0x27 } else { 0x1E + (c - b'1') };
            p.push(key(0, u));
        }
        p.extend([key(0, 0x1E), key(0, 0x27), key(2, 0x04), key(2, 0x05)]);
        p.push(gs);
        p.extend([
            key(0, 0x1F),
            key(0, 0x1E),
            key(2, 0x1B),
            key(0, 0x26),
            key(0, 0x28),
        ]);
        p
    }

    #[test]
    fn tv_hid_05_gs1_with_ctrl_bracket() {
        let presses = tv_hid_05_presses(key(0x01, 0x30));
        assert_eq!(presses.len(), 29);
        let expected = b"]C10112312312312333"
            .iter()
            .chain(b"10AB\x1D21X9")
            .copied()
            .collect::<Vec<u8>>();
        assert_eq!(
            decode(WedgeConfig::default(), &with_releases(&presses)),
            data(&expected)
        );
        // Right Ctrl works the same.
        let presses = tv_hid_05_presses(key(0x10, 0x30));
        assert_eq!(
            decode(WedgeConfig::default(), &with_releases(&presses)),
            data(&expected)
        );
        // Without release reports the doubled digits ("11", "333") collapse: a held key is
        // not a new keystroke. Scanners that skip releases must not be used for such data.
        let out = decode(WedgeConfig::default(), &presses);
        assert_ne!(out, data(&expected));
    }

    #[test]
    fn gs1_with_gs_without_release_reports() {
        // A GS1 string with no doubled adjacent characters, typed without releases.
        let text = b"]C10109501234567890\x1D10AB\r";
        let reports = keymap::us_reports(text, false).unwrap();
        assert_eq!(
            decode(WedgeConfig::default(), &reports),
            data(b"]C10109501234567890\x1D10AB")
        );
        let reports = keymap::us_reports(text, true).unwrap();
        assert_eq!(
            decode(WedgeConfig::default(), &reports),
            data(b"]C10109501234567890\x1D10AB")
        );
    }

    #[test]
    fn tv_hid_05_plain_bracket_is_not_gs() {
        let presses = tv_hid_05_presses(key(0, 0x30));
        let out = decode(WedgeConfig::default(), &with_releases(&presses));
        assert_eq!(out, data(b"]C1011231231231233310AB]21X9"));
    }

    #[test]
    fn kb_6_ctrl_bracket_between_digits() {
        let r = [
            key(0, 0x1E),
            REL,
            key(1, 0x30),
            REL,
            key(0, 0x1F),
            REL,
            key(0, 0x28),
            REL,
        ];
        assert_eq!(
            decode(WedgeConfig::default(), &r),
            data(&[0x31, 0x1D, 0x32])
        );
    }

    #[test]
    fn alt_numpad_gs() {
        // "1" Alt+0029 "2" Enter; Alt held across the keypad digits, released after.
        let r = [
            key(0, 0x1E),
            REL,
            key(0x04, 0),
            key(0x04, 0x62),
            key(0x04, 0),
            key(0x04, 0x62),
            key(0x04, 0),
            key(0x04, 0x5A),
            key(0x04, 0),
            key(0x04, 0x61),
            key(0x04, 0),
            REL,
            key(0, 0x1F),
            REL,
            key(0, 0x28),
            REL,
        ];
        assert_eq!(
            decode(WedgeConfig::default(), &r),
            data(&[0x31, 0x1D, 0x32])
        );
        // Right Alt, three digits, no release reports; Alt is released with the next key.
        let r = [
            key(0x40, 0x62),
            key(0x40, 0x5A),
            key(0x40, 0x61),
            key(0, 0x1F),
            key(0, 0x28),
        ];
        assert_eq!(decode(WedgeConfig::default(), &r), data(&[0x1D, 0x32]));
    }

    #[test]
    fn alt_numpad_out_of_range_is_rejected() {
        // Alt+256: Alt held through the release reports, then released.
        let r = [
            key(4, 0x5A),
            key(4, 0),
            key(4, 0x5D),
            key(4, 0),
            key(4, 0x5E),
            key(4, 0),
            key(0, 0),
            key(0, 0x28),
        ];
        let out = decode(WedgeConfig::default(), &r);
        assert!(matches!(
            &out[..],
            [DecodeEvent::Reject {
                reason: RejectReason::UnexpectedKey,
                ..
            }]
        ));
    }

    #[test]
    fn kb_7_shifted_symbols_and_tab_terminator() {
        let cfg = WedgeConfig {
            terminator: WedgeTerminator::Tab,
            ..WedgeConfig::default()
        };
        let r = [key(2, 0x1E), REL, key(2, 0x2D), REL, key(0, 0x2B), REL];
        assert_eq!(decode(cfg.clone(), &r), data(b"!_"));
        // With a Tab terminator, Enter is data (CR).
        let r = [key(0, 0x04), key(0, 0x28), key(0, 0x2B)];
        assert_eq!(decode(cfg, &r), data(b"a\r"));
    }

    #[test]
    fn all_shifted_symbols() {
        let mut r = Vec::new();
        for u in [
            0x1E, 0x1F, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2D, 0x2E, 0x2F, 0x30,
            0x31, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38,
        ] {
            r.push(key(2, u));
            r.push(REL);
        }
        r.push(key(0, 0x58)); // keypad Enter also terminates
        assert_eq!(
            decode(WedgeConfig::default(), &r),
            data(b"!@#$%^&*()_+{}|:\"~<>?")
        );
    }

    #[test]
    fn tv_hid_06_sixteen_byte_transfer() {
        let mut d = WedgeDecoder::new(WedgeConfig::default());
        let mut out = Vec::new();
        let mut r16 = [0u8; 16];
        r16[0] = 2;
        r16[2] = 4;
        d.push_report(&r16, &mut out);
        d.push_report(&[0u8; 16], &mut out);
        d.push_report(&key(0, 0x28), &mut out);
        assert_eq!(out, data(b"A"));
    }

    #[test]
    fn tv_hid_07_numbered_reports() {
        let cfg = WedgeConfig {
            report_id: Some(1),
            ..WedgeConfig::default()
        };
        let mut d = WedgeDecoder::new(cfg);
        let mut out = Vec::new();
        d.push_report(&[1, 2, 0, 4, 0, 0, 0, 0, 0], &mut out);
        d.push_report(&[3, 0, 0], &mut out); // another report id: ignored
        d.push_report(&[1, 0, 0, 0x28, 0, 0, 0, 0, 0], &mut out);
        assert_eq!(out, data(b"A"));
        // The same 9 bytes from a device configured without report ids: malformed.
        let out = decode(WedgeConfig::default(), &[[1, 2, 0, 4, 0, 0, 0, 0]]);
        assert!(matches!(
            &out[..],
            [DecodeEvent::Reject {
                reason: RejectReason::Malformed,
                ..
            }]
        ));
    }

    #[test]
    fn tv_hid_08_gs_as_down_arrow() {
        let r = [
            key(0, 0x1E),
            REL,
            key(0, 0x51),
            REL,
            key(0, 0x1F),
            REL,
            key(0, 0x28),
            REL,
        ];
        let cfg = WedgeConfig {
            gs_key: Some(GsKey::DownArrow),
            ..WedgeConfig::default()
        };
        assert_eq!(decode(cfg, &r), data(&[0x31, 0x1D, 0x32]));
        let out = decode(WedgeConfig::default(), &r);
        assert!(matches!(
            &out[..],
            [DecodeEvent::Reject {
                reason: RejectReason::UnexpectedKey,
                ..
            }]
        ));
    }

    #[test]
    fn kb_9_rollover_counted_and_ignored() {
        let r = [key(0, 0x04), [0, 0, 1, 1, 1, 1, 1, 1], REL, key(0, 0x28)];
        let out = decode(WedgeConfig::default(), &r);
        assert!(matches!(
            out[0],
            DecodeEvent::Reject {
                reason: RejectReason::Rollover,
                ..
            }
        ));
        assert_eq!(out[1..], data(b"a")[..]);
    }

    #[test]
    fn gap_ends_unterminated_scan() {
        let cfg = WedgeConfig {
            terminator: WedgeTerminator::None,
            ..WedgeConfig::default()
        };
        let mut d = WedgeDecoder::new(cfg);
        let mut out = Vec::new();
        for r in with_releases(&[key(0, 0x04), key(0, 0x05)]) {
            d.push_report(&r, &mut out);
        }
        assert!(out.is_empty() && d.pending());
        d.idle(&mut out);
        assert_eq!(out, data(b"ab"));
        assert!(!d.pending());
    }

    #[test]
    fn oversize_scan_rejected() {
        let cfg = WedgeConfig {
            max_len: 3,
            ..WedgeConfig::default()
        };
        let r = with_releases(&[
            key(0, 4),
            key(0, 5),
            key(0, 6),
            key(0, 7),
            key(0, 0x28),
            key(0, 4),
            key(0, 0x28),
        ]);
        let out = decode(cfg, &r);
        assert!(matches!(
            out[0],
            DecodeEvent::Reject {
                reason: RejectReason::Oversize,
                ..
            }
        ));
        assert_eq!(out[1..], data(b"a")[..]);
    }

    #[test]
    fn short_report_is_malformed() {
        let out = decode(WedgeConfig::default(), &[]);
        assert!(out.is_empty());
        let mut d = WedgeDecoder::new(WedgeConfig::default());
        let mut out = Vec::new();
        d.push_report(&[0, 0], &mut out);
        assert!(matches!(
            &out[..],
            [DecodeEvent::Reject {
                reason: RejectReason::Malformed,
                ..
            }]
        ));
    }
}
