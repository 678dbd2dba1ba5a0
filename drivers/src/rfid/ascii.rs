//! RFID readers in ASCII output mode: one hex EPC per line.

use crate::config::{FramingConfig, FramingMode, Terminator};
use crate::hex::parse_hex;
use crate::reading::DecodeEvent;
use crate::serial::framer::SerialFramer;
use crate::status::RejectReason;

/// Longest EPC accepted (EPC memory holds at most 31 words = 62 bytes of EPC).
pub const MAX_EPC_BYTES: usize = 62;

/// Parses one line of reader output as an EPC. Accepts hex with optional separators
/// (`"3074 257B ..."`, `"30:74:..."`) and an optional `EPC:`/`EPC=` label.
pub fn parse_epc_line(line: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let text = std::str::from_utf8(line).map_err(|_| "line is not ASCII".to_owned())?;
    let mut t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    for label in ["EPC:", "EPC=", "epc:", "epc="] {
        if let Some(rest) = t.strip_prefix(label) {
            t = rest.trim();
        }
    }
    let epc = parse_hex(t)?;
    if epc.is_empty() || epc.len() > MAX_EPC_BYTES {
        return Err(format!(
            "EPC of {} bytes (1 to {MAX_EPC_BYTES} expected)",
            epc.len()
        ));
    }
    Ok(Some(epc))
}

/// Streaming parser for ASCII output: lines (CR and/or LF), each a hex EPC.
#[derive(Debug, Clone)]
pub struct AsciiEpcParser {
    lines: SerialFramer,
    scratch: Vec<DecodeEvent>,
}

impl AsciiEpcParser {
    /// A parser accepting lines up to `max_len` bytes.
    pub fn new(max_len: usize) -> Self {
        AsciiEpcParser {
            lines: SerialFramer::new(FramingConfig {
                mode: FramingMode::Line,
                terminator: Terminator::Any,
                max_len,
                ..FramingConfig::default()
            }),
            scratch: Vec::new(),
        }
    }

    /// Feeds bytes; appends EPCs (as `Data` without hint) and rejects to `out`.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<DecodeEvent>) {
        self.lines.push_bytes(data, &mut self.scratch);
        self.convert(out);
    }

    /// The line went quiet: a partial line is taken as complete (the EOL may be missing).
    pub fn idle(&mut self, out: &mut Vec<DecodeEvent>) {
        self.lines.idle(&mut self.scratch);
        self.convert(out);
    }

    /// Whether a partial line is buffered.
    pub fn pending(&self) -> bool {
        self.lines.pending()
    }

    /// Drops partial state.
    pub fn reset(&mut self) {
        crate::serial::StreamDecoder::reset(&mut self.lines);
    }

    fn convert(&mut self, out: &mut Vec<DecodeEvent>) {
        for ev in self.scratch.drain(..) {
            match ev {
                DecodeEvent::Data { bytes, .. } => match parse_epc_line(&bytes) {
                    Ok(Some(epc)) => out.push(DecodeEvent::data(epc)),
                    Ok(None) => {}
                    Err(e) => out.push(DecodeEvent::reject(RejectReason::BadHex, e, bytes)),
                },
                reject => out.push(reject),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_to_epcs() {
        let mut p = AsciiEpcParser::new(256);
        let mut out = Vec::new();
        p.push(
            b"30751FEB705C5904E3D50D70\r\nEPC: e2 00 00 1d\r\n\r\nnot hex\n",
            &mut out,
        );
        assert_eq!(out.len(), 3);
        assert_eq!(
            out[0],
            DecodeEvent::data(vec![
                0x30, 0x75, 0x1F, 0xEB, 0x70, 0x5C, 0x59, 0x04, 0xE3, 0xD5, 0x0D, 0x70
            ])
        );
        assert_eq!(out[1], DecodeEvent::data(vec![0xE2, 0x00, 0x00, 0x1D]));
        assert!(matches!(
            out[2],
            DecodeEvent::Reject {
                reason: RejectReason::BadHex,
                ..
            }
        ));
    }

    #[test]
    fn idle_completes_a_line_without_eol() {
        let mut p = AsciiEpcParser::new(256);
        let mut out = Vec::new();
        p.push(b"3000", &mut out);
        assert!(out.is_empty() && p.pending());
        p.idle(&mut out);
        assert_eq!(out, vec![DecodeEvent::data(vec![0x30, 0x00])]);
    }

    #[test]
    fn too_long_epc_rejected() {
        assert!(parse_epc_line(&[b'A'; 126]).is_err());
        assert!(parse_epc_line(&[b'A'; 124]).is_ok());
        assert!(parse_epc_line(&[0xFF, 0xFE]).is_err());
    }
}
