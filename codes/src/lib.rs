//! Pure decoders for what shop-floor scanners and RFID readers hand us. No I/O.
//!
//! One entry point, [`decode`]: raw bytes plus an optional symbology hint become a
//! [`Decoded`] (scheme, canonical key, fields) or a [`DecodeError`] saying what is wrong.
//! See README.md for the detection order and the key forms.

pub mod aim;
pub mod config;
pub mod control;
pub mod digital_link;
pub mod epc;
pub mod error;
pub mod gs1;
pub mod iso7064;
pub mod trace;

use std::collections::BTreeMap;

use serde::Serialize;

pub use aim::{AimClass, AimId};
pub use config::{DecodeConfig, Gs1Config};
pub use control::{decode_control, ControlCodes, UidFormat};
pub use digital_link::decode_digital_link;
pub use epc::{decode_epc, decode_epc_hex};
pub use error::DecodeError;
pub use gs1::{canonical_key, decode_bracketed, decode_element_string};
pub use iso7064::CheckSystem;
pub use trace::{
    decode_trace, generate_trace_code, generate_trace_codes, TraceField, TraceFieldKind,
    TraceLayout,
};

/// Which scheme a scan was decoded as. Serialized in kebab-case (`dg-trace`, `gs1`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    /// DG-7.1.2 trace code.
    DgTrace,
    /// GS1 element string (AIM-prefixed, FNC1, bracketed, or EAN/UPC).
    Gs1,
    /// GS1 Digital Link URI.
    DigitalLink,
    /// EPC SGTIN-96.
    EpcSgtin,
    /// EPC SSCC-96.
    EpcSscc,
    /// EPC GID-96.
    EpcGid,
    /// EPC with a header we do not decode; key is the raw EPC URI.
    EpcUnknown,
    /// Worker badge (prefixed code or raw card UID).
    Badge,
    /// Process (operation) card.
    ProcessCard,
    /// Defect-code card.
    DefectCard,
    /// Quantity card.
    Quantity,
    /// Pass/fail result card.
    Result,
    /// Logout card.
    Logout,
    /// Printable text matching no scheme, accepted only when `opaque = true`.
    Opaque,
}

impl Scheme {
    /// The serialized name (`dg-trace`, `epc-sgtin`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DgTrace => "dg-trace",
            Self::Gs1 => "gs1",
            Self::DigitalLink => "digital-link",
            Self::EpcSgtin => "epc-sgtin",
            Self::EpcSscc => "epc-sscc",
            Self::EpcGid => "epc-gid",
            Self::EpcUnknown => "epc-unknown",
            Self::Badge => "badge",
            Self::ProcessCard => "process-card",
            Self::DefectCard => "defect-card",
            Self::Quantity => "quantity",
            Self::Result => "result",
            Self::Logout => "logout",
            Self::Opaque => "opaque",
        }
    }
}

/// A successfully decoded scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decoded {
    /// What the scan was decoded as.
    pub scheme: Scheme,
    /// Canonical key for dedup and claims (same item → same key whatever carried it).
    pub key: String,
    /// Decoded fields: AI → value for GS1/Digital Link; named fields otherwise.
    pub fields: BTreeMap<String, String>,
    /// AIM symbology identifier the scan came with (prefix or hint), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbology: Option<String>,
}

/// Decode one scan. `hint` is an AIM identifier (`]C1`, from HID POS reports) or `epc`
/// (raw bytes are a binary EPC from an RFID reader). Never panics; garbage is an error.
pub fn decode(raw: &[u8], hint: Option<&str>, cfg: &DecodeConfig) -> Result<Decoded, DecodeError> {
    if raw.len() > cfg.max_len {
        return Err(DecodeError::TooLong {
            len: raw.len(),
            max: cfg.max_len,
        });
    }
    match hint {
        Some("epc") => return epc::decode_epc(raw),
        Some(h) if h.starts_with(']') => {
            let aim = aim::parse_aim_id(h.as_bytes())?;
            let data = text(raw)?;
            // Some readers repeat the identifier in the data; drop an identical copy.
            let prefix = aim.to_string();
            let data = data.strip_prefix(prefix.as_bytes()).unwrap_or(data);
            return decode_with_aim(aim, data, cfg);
        }
        Some(h) => return Err(DecodeError::UnknownHint(h.to_owned())),
        None => {}
    }
    let data = text(raw)?;
    if data.first() == Some(&b']') {
        let (aim, rest) = aim::split_aim(data)?;
        return decode_with_aim(aim, rest, cfg);
    }
    decode_text(data, cfg, true)
}

/// Trim surrounding whitespace and require printable ASCII (GS allowed).
fn text(raw: &[u8]) -> Result<&[u8], DecodeError> {
    let data = raw.trim_ascii();
    if data.is_empty() {
        return Err(DecodeError::Empty);
    }
    let start = raw.len() - raw.trim_ascii_start().len();
    if let Some((i, &b)) = data
        .iter()
        .enumerate()
        .find(|(_, &b)| !(b.is_ascii_graphic() || b == b' ' || b == gs1::GS))
    {
        return Err(DecodeError::NonAscii {
            offset: start + i,
            byte: b,
        });
    }
    Ok(data)
}

fn decode_with_aim(aim: AimId, data: &[u8], cfg: &DecodeConfig) -> Result<Decoded, DecodeError> {
    if data.is_empty() {
        return Err(DecodeError::EmptyAfterAim(aim.to_string()));
    }
    let mut d = match aim.class() {
        AimClass::Gs1 => gs1::decode_element_string(data, &cfg.gs1.fnc1_substitutes),
        AimClass::Ean13 | AimClass::Ean8 => {
            let want = if aim.class() == AimClass::Ean13 {
                13
            } else {
                8
            };
            if data.len() != want || !data.iter().all(u8::is_ascii_digit) {
                return Err(DecodeError::Length {
                    what: "EAN/UPC digits",
                    expected: want,
                    got: data.len(),
                });
            }
            gs1::decode_gtin(data)
        }
        AimClass::EanAddOn => Err(DecodeError::UnsupportedSymbology(aim.to_string())),
        AimClass::Text => decode_text(data, cfg, false),
    }?;
    d.symbology = Some(aim.to_string());
    Ok(d)
}

/// Detection order for text (documented in README.md). `unmarked` is true when no AIM
/// identifier said what the symbol is; only then are bare digit strings tried as GS1.
fn decode_text(data: &[u8], cfg: &DecodeConfig, unmarked: bool) -> Result<Decoded, DecodeError> {
    // 1. Digital Link.
    if digital_link::looks_like_url(data) {
        return digital_link::decode_digital_link(data, &cfg.gs1);
    }
    // 2. Leading FNC1 (GS, or `^` as in the GS1 Syntax Engine's notation): element string.
    if let Some(rest) = data
        .strip_prefix(&[gs1::GS])
        .or_else(|| data.strip_prefix(b"^"))
    {
        return gs1::decode_element_string(rest, &cfg.gs1.fnc1_substitutes);
    }
    // 3. Bracketed human-readable GS1.
    if data.first() == Some(&b'(') {
        return gs1::decode_bracketed(data);
    }
    // 4. Control codes by prefix / exact match.
    if let Some(r) = control::try_control_prefixed(data, &cfg.control) {
        return r;
    }
    // 5. DG trace code: layout length, alphanumerics.
    if cfg.trace.looks_like(data) {
        return trace::decode_trace(data, &cfg.trace);
    }
    // 6. EPC as 24 hex characters with a header we decode.
    let epc_hex = data.len() == 24 && data.iter().all(u8::is_ascii_hexdigit);
    if epc_hex && matches!(data.get(..2), Some(b"30" | b"31" | b"35")) {
        return epc::decode_epc_hex(data);
    }
    // 7. Raw badge-reader card UIDs.
    if let Some(r) = control::try_uid(data, &cfg.control) {
        return r;
    }
    // 8. Unmarked GS1: bare EAN-13/UPC-A, then an element string without FNC1.
    let mut gs1_err = None;
    if unmarked && data.first().is_some_and(u8::is_ascii_digit) {
        if cfg.gs1.bare_gtin && matches!(data.len(), 12 | 13) && data.iter().all(u8::is_ascii_digit)
        {
            return gs1::decode_gtin(data);
        }
        if cfg.gs1.unprefixed {
            match gs1::decode_element_string(data, &cfg.gs1.fnc1_substitutes) {
                Ok(d) => return Ok(d),
                Err(DecodeError::UnknownAi(_)) => {}
                Err(e) => gs1_err = Some(e),
            }
        }
    }
    // 9. Any other 24-hex string is an EPC with a header we do not decode.
    if epc_hex {
        return epc::decode_epc_hex(data);
    }
    if let Some(e) = gs1_err {
        return Err(e);
    }
    // 10. Opaque text, if enabled.
    if cfg.opaque {
        let t = String::from_utf8_lossy(data).into_owned();
        let mut fields = BTreeMap::new();
        fields.insert("text".to_owned(), t.clone());
        return Ok(Decoded {
            scheme: Scheme::Opaque,
            key: t,
            fields,
            symbology: None,
        });
    }
    Err(DecodeError::Unrecognised)
}
