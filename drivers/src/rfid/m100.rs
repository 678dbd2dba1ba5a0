//! MagicRF M100/QM100 binary protocol: `BB type cmd PL(2, big-endian) params CK 7E`,
//! CK = low byte of the sum of type through the last parameter byte (header excluded).

use std::fmt;

use crate::hex::to_hex;
use crate::reading::DecodeEvent;
use crate::status::RejectReason;

/// Frame header byte.
pub const HEADER: u8 = 0xBB;
/// Frame end byte.
pub const END: u8 = 0x7E;
/// Frame type: host → reader command.
pub const TYPE_COMMAND: u8 = 0x00;
/// Frame type: reader → host response.
pub const TYPE_RESPONSE: u8 = 0x01;
/// Frame type: reader → host unsolicited notification (tag reads).
pub const TYPE_NOTIFICATION: u8 = 0x02;
/// Command: single inventory.
pub const CMD_SINGLE_INVENTORY: u8 = 0x22;
/// Command: multiple inventory.
pub const CMD_MULTI_INVENTORY: u8 = 0x27;
/// Command: stop multiple inventory.
pub const CMD_STOP_INVENTORY: u8 = 0x28;
/// Command code of an error response.
pub const CMD_ERROR: u8 = 0xFF;
/// Error code: no tag answered the inventory round (normal when the field is empty).
pub const ERR_NO_TAG: u8 = 0x15;
/// Bytes around the parameters: header, type, command, PL(2), checksum, end.
pub const OVERHEAD: usize = 7;

/// One well-formed M100 frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct M100Frame {
    /// 0x00 command, 0x01 response, 0x02 notification.
    pub frame_type: u8,
    /// Command code (0xFF = error response).
    pub command: u8,
    /// Parameter bytes (PL of them).
    pub params: Vec<u8>,
}

/// Why bytes are not a valid M100 frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum M100Error {
    /// Fewer bytes than the smallest frame or than PL announces.
    #[error("frame too short: {len} bytes, need {need}")]
    TooShort {
        /// Bytes present.
        len: usize,
        /// Bytes needed.
        need: usize,
    },
    /// More bytes than PL announces.
    #[error("frame too long: {len} bytes, PL says {need}")]
    TooLong {
        /// Bytes present.
        len: usize,
        /// Bytes expected from PL.
        need: usize,
    },
    /// First byte is not 0xBB.
    #[error("header is {0:02X}, expected BB")]
    Header(u8),
    /// Last byte is not 0x7E.
    #[error("end byte is {0:02X}, expected 7E")]
    End(u8),
    /// Checksum byte does not match.
    #[error("checksum mismatch: expected {expected:02X}, got {got:02X}")]
    Checksum {
        /// Computed.
        expected: u8,
        /// In the frame.
        got: u8,
    },
}

/// Checksum over type..last parameter byte: the low byte of their sum.
pub fn checksum(body: &[u8]) -> u8 {
    body.iter().fold(0u8, |acc, &b| acc.wrapping_add(b))
}

/// Encodes a frame (host commands; also used by tests to build reader output).
///
/// Panics never; parameters longer than 65535 bytes are truncated to fit PL.
pub fn encode(frame_type: u8, command: u8, params: &[u8]) -> Vec<u8> {
    let params = &params[..params.len().min(u16::MAX as usize)];
    let pl = params.len() as u16;
    let mut out = Vec::with_capacity(params.len() + OVERHEAD);
    out.push(HEADER);
    out.push(frame_type);
    out.push(command);
    out.extend_from_slice(&pl.to_be_bytes());
    out.extend_from_slice(params);
    let ck = checksum(&out[1..]);
    out.push(ck);
    out.push(END);
    out
}

/// Checks that `bytes` is exactly one valid frame and parses it.
pub fn check_frame(bytes: &[u8]) -> Result<M100Frame, M100Error> {
    if bytes.len() < OVERHEAD {
        return Err(M100Error::TooShort {
            len: bytes.len(),
            need: OVERHEAD,
        });
    }
    if bytes[0] != HEADER {
        return Err(M100Error::Header(bytes[0]));
    }
    let pl = u16::from_be_bytes([bytes[3], bytes[4]]) as usize;
    let need = pl + OVERHEAD;
    if bytes.len() < need {
        return Err(M100Error::TooShort {
            len: bytes.len(),
            need,
        });
    }
    if bytes.len() > need {
        return Err(M100Error::TooLong {
            len: bytes.len(),
            need,
        });
    }
    if bytes[need - 1] != END {
        return Err(M100Error::End(bytes[need - 1]));
    }
    let expected = checksum(&bytes[1..need - 2]);
    let got = bytes[need - 2];
    if expected != got {
        return Err(M100Error::Checksum { expected, got });
    }
    Ok(M100Frame {
        frame_type: bytes[1],
        command: bytes[2],
        params: bytes[5..need - 2].to_vec(),
    })
}

/// Gen2 tag CRC-16 (CRC-16/GENIBUS: poly 0x1021, init 0xFFFF, MSB first, inverted).
pub fn gen2_crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in data {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    !crc
}

/// A tag read carried by an inventory notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRead {
    /// Received signal strength, dBm (signed byte).
    pub rssi_dbm: i8,
    /// Protocol-control word; bits 15..11 give the EPC length in 16-bit words.
    pub pc: u16,
    /// EPC bytes (length from PC).
    pub epc: Vec<u8>,
    /// The tag's CRC-16 as carried in the frame.
    pub crc: u16,
}

/// Why an inventory notification does not yield a tag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    /// Parameters shorter than RSSI + PC + EPC(PC length) + CRC.
    #[error("notification too short for PC {pc:04X}: {len} parameter bytes, need {need}")]
    Short {
        /// The PC word (0 if absent).
        pc: u16,
        /// Parameter bytes present.
        len: usize,
        /// Needed.
        need: usize,
    },
    /// Tag CRC mismatch.
    #[error("tag CRC mismatch: computed {computed:04X}, frame says {carried:04X}")]
    Crc {
        /// Over PC + EPC.
        computed: u16,
        /// In the frame.
        carried: u16,
    },
}

impl M100Frame {
    /// Whether this frame is an inventory tag notification (type 0x02, cmd 0x22/0x27).
    pub fn is_tag_notification(&self) -> bool {
        self.frame_type == TYPE_NOTIFICATION
            && matches!(self.command, CMD_SINGLE_INVENTORY | CMD_MULTI_INVENTORY)
    }

    /// The error code, if this is an error response (`BB 01 FF 00 01 code ..`).
    pub fn error_code(&self) -> Option<u8> {
        (self.frame_type == TYPE_RESPONSE && self.command == CMD_ERROR)
            .then(|| self.params.first().copied())
            .flatten()
    }

    /// Parses the params of a tag notification: RSSI(1) PC(2) EPC(PC words) CRC(2).
    pub fn tag(&self, verify_crc: bool) -> Result<TagRead, TagError> {
        let p = &self.params;
        if p.len() < 3 {
            return Err(TagError::Short {
                pc: 0,
                len: p.len(),
                need: 5,
            });
        }
        let pc = u16::from_be_bytes([p[1], p[2]]);
        let epc_len = ((pc >> 11) & 0x1F) as usize * 2;
        let need = 3 + epc_len + 2;
        if p.len() < need {
            return Err(TagError::Short {
                pc,
                len: p.len(),
                need,
            });
        }
        let carried = u16::from_be_bytes([p[3 + epc_len], p[4 + epc_len]]);
        if verify_crc {
            let computed = gen2_crc16(&p[1..3 + epc_len]);
            if computed != carried {
                return Err(TagError::Crc { computed, carried });
            }
        }
        Ok(TagRead {
            rssi_dbm: p[0] as i8,
            pc,
            epc: p[3..3 + epc_len].to_vec(),
            crc: carried,
        })
    }
}

impl fmt::Display for M100Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "type {:02X} cmd {:02X} params [{}]",
            self.frame_type,
            self.command,
            to_hex(&self.params)
        )
    }
}

/// What the streaming parser found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum M100Item {
    /// A frame with a valid checksum.
    Frame(M100Frame),
    /// Bytes that were rejected (checksum, unframed noise, truncated frame).
    Reject(DecodeEvent),
}

/// Streaming M100 parser: resynchronises on 0xBB, uses PL to find the end, checks the end
/// byte and the checksum. Memory is bounded by `max_len`.
#[derive(Debug, Clone)]
pub struct M100Parser {
    buf: Vec<u8>,
    max_len: usize,
    /// Noise bytes since the last frame (sample, at most `max_len`) and their total count.
    garbage: Vec<u8>,
    garbage_total: usize,
}

impl M100Parser {
    /// A parser accepting frames up to `max_len` bytes in total (at least 7).
    pub fn new(max_len: usize) -> Self {
        M100Parser {
            buf: Vec::new(),
            max_len: max_len.max(OVERHEAD),
            garbage: Vec::new(),
            garbage_total: 0,
        }
    }

    /// Feeds bytes; appends frames and rejects to `out`.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<M100Item>) {
        self.buf.extend_from_slice(data);
        let mut start = 0;
        loop {
            let rest = &self.buf[start..];
            let Some(pos) = rest.iter().position(|&b| b == HEADER) else {
                self.add_garbage(start, self.buf.len());
                start = self.buf.len();
                break;
            };
            if pos > 0 {
                self.add_garbage(start, start + pos);
                start += pos;
            }
            let rest = &self.buf[start..];
            if rest.len() < 5 {
                break;
            }
            let total = u16::from_be_bytes([rest[3], rest[4]]) as usize + OVERHEAD;
            if total > self.max_len {
                // Impossible length: this 0xBB was noise (or the frame is oversize); skip it.
                self.add_garbage(start, start + 1);
                start += 1;
                continue;
            }
            if rest.len() < total {
                break;
            }
            if rest[total - 1] != END {
                // No end marker where PL says: a false header; resync on the next 0xBB.
                self.add_garbage(start, start + 1);
                start += 1;
                continue;
            }
            self.flush_garbage(out);
            let frame = &self.buf[start..start + total];
            let expected = checksum(&frame[1..total - 2]);
            let got = frame[total - 2];
            if expected == got {
                out.push(M100Item::Frame(M100Frame {
                    frame_type: frame[1],
                    command: frame[2],
                    params: frame[5..total - 2].to_vec(),
                }));
            } else {
                out.push(M100Item::Reject(DecodeEvent::reject(
                    RejectReason::Checksum,
                    M100Error::Checksum { expected, got }.to_string(),
                    frame.to_vec(),
                )));
            }
            start += total;
        }
        self.buf.drain(..start);
    }

    /// The line went quiet: a buffered partial frame will not complete; reject it and any
    /// pending noise.
    pub fn idle(&mut self, out: &mut Vec<M100Item>) {
        self.flush_garbage(out);
        if !self.buf.is_empty() {
            let bytes = std::mem::take(&mut self.buf);
            out.push(M100Item::Reject(DecodeEvent::reject(
                RejectReason::Incomplete,
                format!("truncated frame of {} bytes", bytes.len()),
                bytes,
            )));
        }
    }

    /// Whether a partial frame or noise is buffered.
    pub fn pending(&self) -> bool {
        !self.buf.is_empty() || self.garbage_total > 0
    }

    /// Drops partial state.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.garbage.clear();
        self.garbage_total = 0;
    }

    fn add_garbage(&mut self, from: usize, to: usize) {
        let room = self.max_len.saturating_sub(self.garbage.len());
        let take = (to - from).min(room);
        self.garbage.extend_from_slice(&self.buf[from..from + take]);
        self.garbage_total += to - from;
    }

    fn flush_garbage(&mut self, out: &mut Vec<M100Item>) {
        if self.garbage_total > 0 {
            let n = self.garbage_total;
            self.garbage_total = 0;
            out.push(M100Item::Reject(DecodeEvent::reject(
                RejectReason::Unframed,
                format!("{n} bytes outside M100 frames"),
                std::mem::take(&mut self.garbage),
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex::parse_hex;

    fn h(s: &str) -> Vec<u8> {
        parse_hex(s).unwrap()
    }

    const TV_RF_01: &str =
        "BB 02 22 00 11 C9 34 00 30 75 1F EB 70 5C 59 04 E3 D5 0D 70 3A 76 EF 7E";
    const M7: &str = "BB 02 22 00 11 C4 30 00 E2 00 00 1D 73 15 01 65 21 40 8F C6 B8 3E C2 7E";

    #[test]
    fn tv_rf_01_notification() {
        let f = check_frame(&h(TV_RF_01)).unwrap();
        assert!(f.is_tag_notification());
        assert_eq!(f.params.len(), 0x11);
        let t = f.tag(true).unwrap();
        assert_eq!(t.rssi_dbm, -55);
        assert_eq!(t.pc, 0x3400);
        assert_eq!(t.epc, h("30751FEB705C5904E3D50D70"));
        assert_eq!(t.crc, 0x3A76);
    }

    #[test]
    fn m7_r200_notification() {
        let t = check_frame(&h(M7)).unwrap().tag(true).unwrap();
        assert_eq!(t.rssi_dbm, -60);
        assert_eq!(t.epc, h("E200001D7315016521408FC6"));
    }

    #[test]
    fn tv_rf_02_bad_checksum() {
        let mut b = h(TV_RF_01);
        b[22] = 0xEE;
        let e = check_frame(&b).unwrap_err();
        assert_eq!(
            e,
            M100Error::Checksum {
                expected: 0xEF,
                got: 0xEE
            }
        );
        assert_eq!(e.to_string(), "checksum mismatch: expected EF, got EE");
    }

    #[test]
    fn tv_rf_02_epc_flip_fails_tag_crc() {
        let mut b = h(TV_RF_01);
        b[10] ^= 0x01;
        let ck = checksum(&b[1..22]);
        b[22] = ck;
        let f = check_frame(&b).unwrap();
        assert!(matches!(
            f.tag(true),
            Err(TagError::Crc {
                carried: 0x3A76,
                ..
            })
        ));
        assert!(f.tag(false).is_ok(), "verification can be turned off");
    }

    #[test]
    fn tv_rf_03_error_response() {
        let f = check_frame(&h("BB 01 FF 00 01 15 16 7E")).unwrap();
        assert_eq!(f.error_code(), Some(ERR_NO_TAG));
        assert!(!f.is_tag_notification());
    }

    #[test]
    fn tv_rf_04_encoder_matches_published_commands() {
        let cases: [(&str, u8, u8, &str); 7] = [
            ("BB 00 22 00 00 22 7E", 0, 0x22, ""),
            ("BB 00 27 00 03 22 27 10 83 7E", 0, 0x27, "22 27 10"),
            ("BB 00 28 00 00 28 7E", 0, 0x28, ""),
            ("BB 00 03 00 01 00 04 7E", 0, 0x03, "00"),
            ("BB 00 B6 00 02 07 D0 8F 7E", 0, 0xB6, "07 D0"),
            ("BB 01 0C 00 01 00 0E 7E", 1, 0x0C, "00"),
            ("BB 01 FF 00 01 09 0A 7E", 1, 0xFF, "09"),
        ];
        for (bytes, t, c, p) in cases {
            assert_eq!(encode(t, c, &h(p)), h(bytes), "{bytes}");
            let f = check_frame(&h(bytes)).unwrap();
            assert_eq!((f.frame_type, f.command, f.params), (t, c, h(p)));
        }
    }

    #[test]
    fn tv_rf_06_gen2_crc() {
        assert_eq!(
            gen2_crc16(&h("34 00 30 75 1F EB 70 5C 59 04 E3 D5 0D 70")),
            0x3A76
        );
        assert_eq!(gen2_crc16(b"123456789"), 0xD64E);
    }

    #[test]
    fn check_frame_structure_errors() {
        assert!(matches!(
            check_frame(&h("BB 00")),
            Err(M100Error::TooShort { .. })
        ));
        assert_eq!(
            check_frame(&h("AA 00 22 00 00 22 7E")),
            Err(M100Error::Header(0xAA))
        );
        assert_eq!(
            check_frame(&h("BB 00 22 00 00 22 7F")),
            Err(M100Error::End(0x7F))
        );
        assert!(matches!(
            check_frame(&h("BB 00 22 00 01 22 7E")),
            Err(M100Error::TooShort { .. })
        ));
        assert!(matches!(
            check_frame(&h("BB 00 22 00 00 22 7E 00")),
            Err(M100Error::TooLong { .. })
        ));
    }

    fn frames(items: &[M100Item]) -> Vec<M100Frame> {
        items
            .iter()
            .filter_map(|i| match i {
                M100Item::Frame(f) => Some(f.clone()),
                _ => None,
            })
            .collect()
    }

    fn rejects(items: &[M100Item]) -> Vec<RejectReason> {
        items
            .iter()
            .filter_map(|i| match i {
                M100Item::Reject(DecodeEvent::Reject { reason, .. }) => Some(*reason),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn m10_garbage_before_header_is_skipped() {
        let mut p = M100Parser::new(1024);
        let mut input = h("00 11 BB 00 22");
        input.extend(h(TV_RF_01));
        let mut out = Vec::new();
        p.push(&input, &mut out);
        assert_eq!(frames(&out).len(), 1);
        assert_eq!(rejects(&out), vec![RejectReason::Unframed]);
        assert!(!p.pending());
    }

    #[test]
    fn m9_bad_checksum_rejected_then_next_frame_read() {
        let mut p = M100Parser::new(1024);
        let mut input = h(TV_RF_01);
        input[22] = 0xEE;
        input.extend(h(M7));
        let mut out = Vec::new();
        p.push(&input, &mut out);
        assert_eq!(rejects(&out), vec![RejectReason::Checksum]);
        assert_eq!(frames(&out).len(), 1);
        assert_eq!(frames(&out)[0].tag(true).unwrap().rssi_dbm, -60);
    }

    #[test]
    fn split_byte_by_byte() {
        let mut p = M100Parser::new(1024);
        let mut out = Vec::new();
        for b in h(TV_RF_01)
            .iter()
            .chain(h("BB 01 FF 00 01 15 16 7E").iter())
        {
            p.push(&[*b], &mut out);
        }
        assert_eq!(frames(&out).len(), 2);
        assert!(rejects(&out).is_empty());
    }

    #[test]
    fn truncated_frame_rejected_on_idle() {
        let mut p = M100Parser::new(1024);
        let mut out = Vec::new();
        p.push(&h(TV_RF_01)[..10], &mut out);
        assert!(out.is_empty());
        assert!(p.pending());
        p.idle(&mut out);
        assert_eq!(rejects(&out), vec![RejectReason::Incomplete]);
        assert!(!p.pending());
    }

    #[test]
    fn oversize_length_resyncs() {
        let mut p = M100Parser::new(32);
        let mut out = Vec::new();
        let mut input = h("BB 02 22 FF FF 00 00");
        input.extend(h(TV_RF_01));
        p.push(&input, &mut out);
        assert_eq!(frames(&out).len(), 1);
        assert_eq!(rejects(&out), vec![RejectReason::Unframed]);
    }
}
