//! HID POS (usage page 0x8C) scanned-data reports: whole scans with their symbology
//! identifier, possibly split over several reports (continued flag).

use std::time::{Duration, Instant};

use crate::config::{PosConfig, PosLayout};
use crate::reading::DecodeEvent;
use crate::status::RejectReason;

/// Report ID of the scanned-data report in both known layouts.
pub const SCANNED_DATA_REPORT_ID: u8 = 0x02;
/// Size of a scanned-data report including the ID.
pub const REPORT_LEN: usize = 64;
/// Data bytes per report.
pub const DATA_PER_REPORT: usize = 56;

/// One scanned-data report, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PosReport<'a> {
    /// AIM symbology identifier (`]Q0`), when the layout carries one and it is well-formed.
    pub aim: Option<[u8; 3]>,
    /// Valid data bytes of this report.
    pub data: &'a [u8],
    /// Vendor code/symbology byte (Honeywell code ID letter, Newland symbology byte).
    pub vendor_code: u8,
    /// More reports follow for this scan.
    pub continued: bool,
}

/// Why a report is not a scanned-data report of the configured layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PosError {
    /// Report ID other than 0x02 (attribute, status or other reports are not scans).
    #[error("report id {0:02X} is not a scanned-data report")]
    OtherReport(u8),
    /// Shorter than 64 bytes.
    #[error("report of {0} bytes, expected {REPORT_LEN}")]
    Short(usize),
    /// Length byte larger than the data field.
    #[error("length byte {0} exceeds {DATA_PER_REPORT}")]
    Length(u8),
}

/// Parses one report per `layout`.
pub fn parse_report(layout: PosLayout, r: &[u8]) -> Result<PosReport<'_>, PosError> {
    match r.first() {
        None => return Err(PosError::Short(0)),
        Some(&id) if id != SCANNED_DATA_REPORT_ID => return Err(PosError::OtherReport(id)),
        _ => {}
    }
    if r.len() < REPORT_LEN {
        return Err(PosError::Short(r.len()));
    }
    let len = r[1];
    if len as usize > DATA_PER_REPORT {
        return Err(PosError::Length(len));
    }
    let len = len as usize;
    let continued = r[63] & 0x01 != 0;
    Ok(match layout {
        PosLayout::Honeywell => {
            let aim = [r[2], r[3], r[4]];
            let well_formed =
                aim[0] == b']' && aim[1].is_ascii_graphic() && aim[2].is_ascii_graphic();
            PosReport {
                aim: well_formed.then_some(aim),
                data: &r[5..5 + len],
                vendor_code: r[61],
                continued,
            }
        }
        PosLayout::Newland => PosReport {
            aim: None,
            data: &r[2..2 + len],
            vendor_code: r[62],
            continued,
        },
    })
}

#[derive(Debug, Clone)]
struct Pending {
    aim: Option<[u8; 3]>,
    data: Vec<u8>,
    started: Instant,
    oversize: bool,
}

/// Streaming HID POS decoder: reassembles continued reports, bounds size and time.
///
/// A continuation report's AIM bytes are not data. If a report with a *different* AIM
/// arrives while a scan is pending, the pending scan is rejected as incomplete and the new
/// report starts a new scan (a different symbology cannot be the same scan).
#[derive(Debug, Clone)]
pub struct PosDecoder {
    cfg: PosConfig,
    pending: Option<Pending>,
}

impl PosDecoder {
    /// A decoder for `cfg` (assumed validated).
    pub fn new(cfg: PosConfig) -> Self {
        PosDecoder { cfg, pending: None }
    }

    /// How long a multi-report scan may wait for its next report.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.cfg.reassembly_timeout_ms)
    }

    /// Feeds one report read at `now`; appends finished scans and rejects.
    pub fn push_report(&mut self, report: &[u8], now: Instant, out: &mut Vec<DecodeEvent>) {
        self.poll(now, out);
        let rep = match parse_report(self.cfg.layout, report) {
            Ok(r) => r,
            // Other report IDs (attributes, status) are not scans and not errors.
            Err(PosError::OtherReport(_)) => return,
            Err(e) => {
                out.push(DecodeEvent::reject(
                    RejectReason::Malformed,
                    e.to_string(),
                    report.to_vec(),
                ));
                return;
            }
        };
        if let Some(p) = &self.pending {
            if rep.aim.is_some() && rep.aim != p.aim {
                self.reject_pending("scan interrupted by a report with another symbology", out);
            }
        }
        let p = self.pending.get_or_insert_with(|| Pending {
            aim: rep.aim,
            data: Vec::new(),
            started: now,
            oversize: false,
        });
        if p.data.len() + rep.data.len() > self.cfg.max_len {
            p.oversize = true;
        } else {
            p.data.extend_from_slice(rep.data);
        }
        if !rep.continued {
            self.finish(out);
        }
    }

    /// Rejects a pending scan whose next report is overdue at `now`.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<DecodeEvent>) {
        let overdue = self
            .pending
            .as_ref()
            .is_some_and(|p| now.saturating_duration_since(p.started) > self.timeout());
        if overdue {
            self.reject_pending(
                "continued scan not completed within reassembly_timeout_ms",
                out,
            );
        }
    }

    /// Whether a multi-report scan is being reassembled.
    pub fn pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Forgets a partial scan (after a reconnect).
    pub fn reset(&mut self) {
        self.pending = None;
    }

    fn reject_pending(&mut self, why: &str, out: &mut Vec<DecodeEvent>) {
        if let Some(p) = self.pending.take() {
            out.push(DecodeEvent::reject(RejectReason::Incomplete, why, p.data));
        }
    }

    fn finish(&mut self, out: &mut Vec<DecodeEvent>) {
        let Some(mut p) = self.pending.take() else {
            return;
        };
        if p.oversize {
            out.push(DecodeEvent::reject(
                RejectReason::Oversize,
                format!("scan longer than max_len {}", self.cfg.max_len),
                p.data,
            ));
            return;
        }
        if let Some(suffix) = &self.cfg.strip_suffix {
            if p.data.ends_with(&suffix.0) {
                p.data.truncate(p.data.len() - suffix.0.len());
            }
        }
        if p.data.is_empty() {
            return;
        }
        let hint = p
            .aim
            .map(|a| a.iter().map(|&b| b as char).collect::<String>());
        out.push(DecodeEvent::Data {
            bytes: p.data,
            hint,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex::{parse_hex, HexBytes};

    /// Builds a Honeywell-layout report.
    fn honeywell(aim: &[u8; 3], data: &[u8], code: u8, continued: bool) -> Vec<u8> {
        let mut r = vec![0u8; 64];
        r[0] = 2;
        r[1] = data.len() as u8;
        r[2..5].copy_from_slice(aim);
        r[5..5 + data.len()].copy_from_slice(data);
        r[61] = code;
        r[63] = continued as u8;
        r
    }

    fn run(cfg: PosConfig, reports: &[Vec<u8>]) -> Vec<DecodeEvent> {
        let mut d = PosDecoder::new(cfg);
        let mut out = Vec::new();
        let t = Instant::now();
        for r in reports {
            d.push_report(r, t, &mut out);
        }
        out
    }

    fn scan(bytes: &[u8], hint: Option<&str>) -> DecodeEvent {
        DecodeEvent::Data {
            bytes: bytes.to_vec(),
            hint: hint.map(str::to_owned),
        }
    }

    #[test]
    fn tv_pos_01_single_report() {
        let r = parse_hex(
            "02 04 5D 51 30 20 31 30 30 00 00 00 00 00 00 00
             00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
             00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
             00 00 00 00 00 00 00 00 00 00 00 00 00 73 00 00"
                .replace('\n', " ")
                .as_str(),
        )
        .unwrap();
        let p = parse_report(PosLayout::Honeywell, &r).unwrap();
        assert_eq!(p.vendor_code, b's');
        assert!(!p.continued);
        assert_eq!(
            run(PosConfig::default(), &[r]),
            vec![scan(b" 100", Some("]Q0"))]
        );
    }

    #[test]
    fn tv_pos_02_two_report_reassembly() {
        let payload: Vec<u8> = b"0123456789".repeat(6);
        let r1 = honeywell(b"]Q0", &payload[..56], b's', true);
        let r2 = honeywell(b"]Q0", &payload[56..], b's', false);
        assert_eq!(
            run(PosConfig::default(), &[r1, r2]),
            vec![scan(&payload, Some("]Q0"))]
        );
    }

    #[test]
    fn tv_pos_02_second_report_never_arrives() {
        let payload: Vec<u8> = b"0123456789".repeat(6);
        let mut d = PosDecoder::new(PosConfig::default());
        let mut out = Vec::new();
        let t = Instant::now();
        d.push_report(&honeywell(b"]Q0", &payload[..56], b's', true), t, &mut out);
        d.poll(t + Duration::from_millis(100), &mut out);
        assert!(out.is_empty() && d.pending());
        d.poll(t + Duration::from_millis(501), &mut out);
        assert!(matches!(
            &out[..],
            [DecodeEvent::Reject {
                reason: RejectReason::Incomplete,
                ..
            }]
        ));
        assert!(!d.pending());
    }

    #[test]
    fn tv_pos_02_other_aim_interrupts() {
        let r1 = honeywell(b"]Q0", b"first", b's', true);
        let r2 = honeywell(b"]C1", b"0101234567890128", b'I', false);
        let out = run(PosConfig::default(), &[r1, r2]);
        assert!(matches!(
            out[0],
            DecodeEvent::Reject {
                reason: RejectReason::Incomplete,
                ..
            }
        ));
        assert_eq!(out[1], scan(b"0101234567890128", Some("]C1")));
    }

    #[test]
    fn tv_pos_03_newland_layout() {
        let mut r = vec![0u8; 64];
        r[..8].copy_from_slice(&[0x02, 0x06, 0x41, 0x42, 0x43, 0x31, 0x32, 0x33]);
        let cfg = PosConfig {
            layout: PosLayout::Newland,
            ..PosConfig::default()
        };
        assert_eq!(
            run(cfg, std::slice::from_ref(&r)),
            vec![scan(b"ABC123", None)]
        );
        // The wrong layout misreads it — which is why the layout is configured.
        assert_eq!(
            run(PosConfig::default(), &[r]),
            vec![scan(b"123\0\0\0", None)]
        );
    }

    /// The real Honeywell Voyager 1602g capture (test-vectors-more §1.2).
    fn hp_capture() -> Vec<Vec<u8>> {
        let parts: [&[u8]; 6] = [
            b"Product Name: Voyager 1602g\r\nBoot Revision: : 8992\r\nSoft",
            b"ware Part Number: CW000082BBA\r\nSoftware Revision: $Proje",
            b"ctRevision: 16345 \r\nSerial Number: 15232B1F0C\r\nSupported",
            b" IF: Bluetooth\r\nPCB Assembly ID: 000000\r\nEngine Firmware",
            b" Type: N/A   Revision: N/A   Serial Number: N/A   Checks",
            b"um: N/A\r\n",
        ];
        let mut reports: Vec<Vec<u8>> = parts
            .iter()
            .enumerate()
            .map(|(i, p)| honeywell(b"]X0", p, b'?', i < 5))
            .collect();
        reports.push(honeywell(b"]Z6", b"REVINF\x06.", b'6', false));
        reports
    }

    #[test]
    fn hp_capture_report_6_exact_bytes() {
        let mut exact = parse_hex("02 09 5D 58 30 75 6D 3A 20 4E 2F 41 0D 0A").unwrap();
        exact.extend([0u8; 47]);
        exact.extend([0x3F, 0x00, 0x00]);
        assert_eq!(exact.len(), 64);
        assert_eq!(hp_capture()[5], exact);
        for r in &hp_capture()[..5] {
            assert_eq!(r[1], 56);
        }
    }

    #[test]
    fn hp_1_and_hp_2_honeywell_capture() {
        let out = run(PosConfig::default(), &hp_capture());
        let expected: &[u8] = b"Product Name: Voyager 1602g\r\nBoot Revision: : 8992\r\nSoftware Part Number: CW000082BBA\r\nSoftware Revision: $ProjectRevision: 16345 \r\nSerial Number: 15232B1F0C\r\nSupported IF: Bluetooth\r\nPCB Assembly ID: 000000\r\nEngine Firmware Type: N/A   Revision: N/A   Serial Number: N/A   Checksum: N/A\r\n";
        assert_eq!(expected.len(), 289);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], scan(expected, Some("]X0")));
        assert_eq!(
            out[1],
            scan(&parse_hex("52 45 56 49 4E 46 06 2E").unwrap(), Some("]Z6"))
        );
    }

    #[test]
    fn hp_3_gs1_with_gs() {
        let data = b"0106291041500213\x1D10ABC";
        assert_eq!(data.len(), 22);
        let r = honeywell(b"]C1", data, b'I', false);
        assert_eq!(r[1], 0x16);
        assert_eq!(
            run(PosConfig::default(), &[r]),
            vec![scan(data, Some("]C1"))]
        );
    }

    #[test]
    fn strip_suffix_and_oversize() {
        let cfg = PosConfig {
            strip_suffix: Some(HexBytes(vec![0x0D])),
            ..PosConfig::default()
        };
        let r = honeywell(b"]E0", b"4006381333931\r", b'd', false);
        assert_eq!(run(cfg, &[r]), vec![scan(b"4006381333931", Some("]E0"))]);
        let cfg = PosConfig {
            max_len: 60,
            ..PosConfig::default()
        };
        let r1 = honeywell(b"]Q1", &[b'a'; 56], b's', true);
        let r2 = honeywell(b"]Q1", &[b'a'; 5], b's', false);
        let out = run(cfg, &[r1, r2.clone(), r2]);
        assert!(matches!(
            out[0],
            DecodeEvent::Reject {
                reason: RejectReason::Oversize,
                ..
            }
        ));
        assert_eq!(out[1], scan(b"aaaaa", Some("]Q1")));
    }

    #[test]
    fn malformed_and_foreign_reports() {
        let out = run(PosConfig::default(), &[vec![2, 1, 2], vec![4; 64]]);
        assert!(matches!(
            &out[..],
            [DecodeEvent::Reject {
                reason: RejectReason::Malformed,
                ..
            }]
        ));
        let mut r = honeywell(b"]Q0", b"x", 0, false);
        r[1] = 57;
        let out = run(PosConfig::default(), &[r]);
        assert!(matches!(
            &out[..],
            [DecodeEvent::Reject {
                reason: RejectReason::Malformed,
                ..
            }]
        ));
        // No AIM (zero bytes): data without hint.
        let r = honeywell(&[0, 0, 0], b"xyz", 0, false);
        assert_eq!(run(PosConfig::default(), &[r]), vec![scan(b"xyz", None)]);
    }
}
