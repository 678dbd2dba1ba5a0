//! UHF RFID readers on serial ports: protocol parsers, repeat collapsing, and the
//! [`StreamDecoder`] that turns a reader's byte stream into EPC readings.

pub mod ascii;
pub mod m100;
pub mod repeat;

use std::time::{Duration, Instant};

use crate::config::{RfidProtocol, RfidSerialConfig};
use crate::reading::{DecodeEvent, HINT_EPC};
use crate::serial::StreamDecoder;
use crate::status::RejectReason;

use self::ascii::AsciiEpcParser;
use self::m100::{M100Item, M100Parser};
use self::repeat::RepeatFilter;

/// Quiet time after which a partial M100 frame is given up (a frame at 9600 baud takes
/// ~25 ms, so this is generous).
const M100_IDLE: Duration = Duration::from_millis(300);
/// Quiet time after which a partial ASCII line is taken as complete.
const ASCII_IDLE: Duration = Duration::from_millis(200);

enum Proto {
    M100 {
        parser: M100Parser,
        verify_crc: bool,
        items: Vec<M100Item>,
    },
    Ascii(AsciiEpcParser),
}

/// Decodes a reader's byte stream into EPC readings (hint `"epc"`), collapsing repeats.
pub struct RfidDecoder {
    proto: Proto,
    filter: RepeatFilter,
    scratch: Vec<DecodeEvent>,
}

impl RfidDecoder {
    /// A decoder for `cfg` (assumed validated).
    pub fn new(cfg: &RfidSerialConfig) -> Self {
        let proto = match cfg.protocol {
            RfidProtocol::M100 => Proto::M100 {
                parser: M100Parser::new(cfg.max_len),
                verify_crc: cfg.verify_tag_crc,
                items: Vec::new(),
            },
            RfidProtocol::Ascii => Proto::Ascii(AsciiEpcParser::new(cfg.max_len)),
        };
        RfidDecoder {
            proto,
            filter: RepeatFilter::new(
                Duration::from_millis(cfg.repeat_window_ms),
                cfg.repeat_capacity,
            ),
            scratch: Vec::new(),
        }
    }

    fn drain(&mut self, now: Instant, out: &mut Vec<DecodeEvent>) {
        if let Proto::M100 {
            items, verify_crc, ..
        } = &mut self.proto
        {
            for item in items.drain(..) {
                match item {
                    M100Item::Reject(r) => self.scratch.push(r),
                    M100Item::Frame(f) if f.is_tag_notification() => match f.tag(*verify_crc) {
                        Ok(tag) => self.scratch.push(DecodeEvent::data(tag.epc)),
                        Err(e) => {
                            let reason = match e {
                                m100::TagError::Crc { .. } => RejectReason::TagCrc,
                                m100::TagError::Short { .. } => RejectReason::Malformed,
                            };
                            self.scratch.push(DecodeEvent::reject(
                                reason,
                                e.to_string(),
                                m100::encode(f.frame_type, f.command, &f.params),
                            ));
                        }
                    },
                    M100Item::Frame(f) => match f.error_code() {
                        // "No tag in the field" is the normal answer to an empty inventory.
                        Some(m100::ERR_NO_TAG) => {}
                        Some(code) => tracing::debug!(code, "M100 error response"),
                        None => tracing::trace!(frame = %f, "M100 frame ignored"),
                    },
                }
            }
        }
        for ev in self.scratch.drain(..) {
            match ev {
                DecodeEvent::Data { bytes, .. } => {
                    if self.filter.accept(&bytes, now) {
                        out.push(DecodeEvent::Data {
                            bytes,
                            hint: Some(HINT_EPC.to_owned()),
                        });
                    }
                }
                reject => out.push(reject),
            }
        }
    }
}

impl StreamDecoder for RfidDecoder {
    fn push(&mut self, data: &[u8], now: Instant, out: &mut Vec<DecodeEvent>) {
        match &mut self.proto {
            Proto::M100 { parser, items, .. } => parser.push(data, items),
            Proto::Ascii(p) => p.push(data, &mut self.scratch),
        }
        self.drain(now, out);
    }

    fn flush_idle(&mut self, now: Instant, out: &mut Vec<DecodeEvent>) {
        match &mut self.proto {
            Proto::M100 { parser, items, .. } => parser.idle(items),
            Proto::Ascii(p) => p.idle(&mut self.scratch),
        }
        self.drain(now, out);
    }

    fn idle_gap(&self) -> Option<Duration> {
        Some(match self.proto {
            Proto::M100 { .. } => M100_IDLE,
            Proto::Ascii(_) => ASCII_IDLE,
        })
    }

    fn has_pending(&self) -> bool {
        match &self.proto {
            Proto::M100 { parser, .. } => parser.pending(),
            Proto::Ascii(p) => p.pending(),
        }
    }

    fn reset(&mut self) {
        match &mut self.proto {
            Proto::M100 { parser, items, .. } => {
                parser.reset();
                items.clear();
            }
            Proto::Ascii(p) => p.reset(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex::parse_hex;

    const TV_RF_01: &str =
        "BB 02 22 00 11 C9 34 00 30 75 1F EB 70 5C 59 04 E3 D5 0D 70 3A 76 EF 7E";

    #[test]
    fn repeated_notifications_become_one_epc_reading() {
        let cfg = RfidSerialConfig::with_path("/dev/null", RfidProtocol::M100);
        let mut d = RfidDecoder::new(&cfg);
        let frame = parse_hex(TV_RF_01).unwrap();
        let t0 = Instant::now();
        let mut out = Vec::new();
        for i in 0..10 {
            d.push(&frame, t0 + Duration::from_millis(20 * i), &mut out);
        }
        d.push(&parse_hex("BB 01 FF 00 01 15 16 7E").unwrap(), t0, &mut out);
        assert_eq!(
            out,
            vec![DecodeEvent::Data {
                bytes: parse_hex("30751FEB705C5904E3D50D70").unwrap(),
                hint: Some("epc".into())
            }]
        );
    }

    #[test]
    fn tag_crc_failure_is_a_reject() {
        let cfg = RfidSerialConfig::with_path("/dev/null", RfidProtocol::M100);
        let mut d = RfidDecoder::new(&cfg);
        let mut frame = parse_hex(TV_RF_01).unwrap();
        frame[10] ^= 1;
        frame[22] = m100::checksum(&frame[1..22]);
        let mut out = Vec::new();
        d.push(&frame, Instant::now(), &mut out);
        assert!(matches!(
            out[..],
            [DecodeEvent::Reject {
                reason: RejectReason::TagCrc,
                ..
            }]
        ));
    }

    #[test]
    fn ascii_mode_with_repeats() {
        let cfg = RfidSerialConfig::with_path("/dev/null", RfidProtocol::Ascii);
        let mut d = RfidDecoder::new(&cfg);
        let mut out = Vec::new();
        let t0 = Instant::now();
        d.push(b"3000AA\r\n3000AA\r\n3000BB\r\n", t0, &mut out);
        assert_eq!(out.len(), 2);
    }
}
