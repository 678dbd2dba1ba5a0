//! Station control codes: worker badges (prefixed codes and raw HF card UIDs as
//! keyboard-emulating readers type them), process cards, defect cards, quantities,
//! pass/fail results and logout. Prefixes are configurable; matching is case-sensitive.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::DecodeError;
use crate::{Decoded, Scheme};

/// Longest id accepted after a badge, process or defect prefix.
pub const MAX_ID_LEN: usize = 32;

/// How an HF badge reader types a card UID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UidFormat {
    /// 8 decimal digits (e.g. Wiegand-26 facility + card number).
    Dec8,
    /// 10 decimal digits: a 4-byte UID as an unsigned 32-bit number (≤ 4294967295).
    Dec10,
    /// 8 hex characters: a 4-byte UID.
    Hex8,
    /// 14 hex characters: a 7-byte UID.
    Hex14,
}

impl UidFormat {
    fn name(self) -> &'static str {
        match self {
            Self::Dec8 => "dec8",
            Self::Dec10 => "dec10",
            Self::Hex8 => "hex8",
            Self::Hex14 => "hex14",
        }
    }

    fn matches(self, s: &[u8]) -> bool {
        match self {
            Self::Dec8 => s.len() == 8 && s.iter().all(u8::is_ascii_digit),
            Self::Dec10 => {
                s.len() == 10
                    && s.iter().all(u8::is_ascii_digit)
                    && std::str::from_utf8(s).is_ok_and(|t| t.parse::<u32>().is_ok())
            }
            Self::Hex8 => s.len() == 8 && s.iter().all(u8::is_ascii_hexdigit),
            Self::Hex14 => s.len() == 14 && s.iter().all(u8::is_ascii_hexdigit),
        }
    }
}

/// Control-code prefixes and forms (the `[codes.control]` config section).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlCodes {
    /// Prefix of a worker badge code; the id after it is 1-32 of `A-Z a-z 0-9 . _ -`.
    pub badge_prefix: String,
    /// Raw card UIDs accepted as badges without a prefix: dec8, dec10, hex8, hex14 ([] = none).
    pub badge_uid_formats: Vec<UidFormat>,
    /// Prefix of a process (operation) card; same id rules as badges.
    pub process_prefix: String,
    /// Prefix of a defect-code card; same id rules as badges.
    pub defect_prefix: String,
    /// Prefix of a quantity card; followed by 1-6 digits.
    pub quantity_prefix: String,
    /// Largest quantity accepted (smallest is 1).
    pub max_quantity: u32,
    /// Whole code meaning "result: pass".
    pub result_pass: String,
    /// Whole code meaning "result: fail".
    pub result_fail: String,
    /// Whole code meaning "log the worker out of this station".
    pub logout: String,
}

impl Default for ControlCodes {
    fn default() -> Self {
        Self {
            badge_prefix: "W:".to_owned(),
            badge_uid_formats: vec![
                UidFormat::Dec10,
                UidFormat::Dec8,
                UidFormat::Hex8,
                UidFormat::Hex14,
            ],
            process_prefix: "P:".to_owned(),
            defect_prefix: "D:".to_owned(),
            quantity_prefix: "Q:".to_owned(),
            max_quantity: 9999,
            result_pass: "R:PASS".to_owned(),
            result_fail: "R:FAIL".to_owned(),
            logout: "LOGOUT".to_owned(),
        }
    }
}

impl ControlCodes {
    /// Check the section; `prefix` is its TOML path (e.g. `control`).
    pub fn validate(&self, prefix: &str) -> Result<(), String> {
        let all = self.named();
        for (name, v) in &all {
            if v.is_empty() {
                return Err(format!("{prefix}.{name}: must not be empty"));
            }
            if let Some(c) = v.chars().find(|c| !c.is_ascii_graphic()) {
                return Err(format!("{prefix}.{name}: {c:?} is not printable ASCII"));
            }
            if v.as_bytes()
                .first()
                .is_some_and(|c| c.is_ascii_digit() || b"(]^~".contains(c))
                || crate::digital_link::looks_like_url(v.as_bytes())
            {
                return Err(format!(
                    "{prefix}.{name}: must not start with a digit, '(', ']', '^', '~' or http(s):// (GS1, AIM and URL scans use those)"
                ));
            }
        }
        for (i, (a, va)) in all.iter().enumerate() {
            for (b, vb) in all.iter().skip(i + 1) {
                if va == vb {
                    return Err(format!("{prefix}.{b}: same as {prefix}.{a} ({vb:?})"));
                }
            }
        }
        if self.max_quantity == 0 || self.max_quantity > 999_999 {
            return Err(format!("{prefix}.max_quantity: must be 1..=999999"));
        }
        Ok(())
    }

    fn named(&self) -> [(&'static str, &str); 7] {
        [
            ("badge_prefix", &self.badge_prefix),
            ("process_prefix", &self.process_prefix),
            ("defect_prefix", &self.defect_prefix),
            ("quantity_prefix", &self.quantity_prefix),
            ("result_pass", &self.result_pass),
            ("result_fail", &self.result_fail),
            ("logout", &self.logout),
        ]
    }
}

fn decoded(scheme: Scheme, key: String, fields: &[(&str, &str)]) -> Decoded {
    Decoded {
        scheme,
        key,
        fields: fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
        symbology: None,
    }
}

/// Decode a control code; `Unrecognised` if no configured form matches.
pub fn decode_control(text: &[u8], cfg: &ControlCodes) -> Result<Decoded, DecodeError> {
    try_control(text, cfg).unwrap_or(Err(DecodeError::Unrecognised))
}

/// `None` when no control-code form matches (detection goes on); `Some(Err)` when a
/// prefix matched but the rest is wrong.
pub(crate) fn try_control(text: &[u8], cfg: &ControlCodes) -> Option<Result<Decoded, DecodeError>> {
    try_control_prefixed(text, cfg).or_else(|| try_uid(text, cfg))
}

/// Whole-code forms (results, logout) and prefixed forms (badge, process, defect, quantity).
pub(crate) fn try_control_prefixed(
    text: &[u8],
    cfg: &ControlCodes,
) -> Option<Result<Decoded, DecodeError>> {
    let whole = [
        (
            &cfg.result_pass,
            Scheme::Result,
            "result:pass",
            Some("pass"),
        ),
        (
            &cfg.result_fail,
            Scheme::Result,
            "result:fail",
            Some("fail"),
        ),
        (&cfg.logout, Scheme::Logout, "logout", None),
    ];
    for (code, scheme, key, result) in whole {
        if !code.is_empty() && text == code.as_bytes() {
            let fields: &[(&str, &str)] = match result {
                Some(r) => &[("result", r)],
                None => &[],
            };
            return Some(Ok(decoded(scheme, key.to_owned(), fields)));
        }
    }
    // Longest matching prefix wins, so "PD:" is not read as "P:" + "D:…".
    let prefixed = [
        (&cfg.badge_prefix, Scheme::Badge),
        (&cfg.process_prefix, Scheme::ProcessCard),
        (&cfg.defect_prefix, Scheme::DefectCard),
        (&cfg.quantity_prefix, Scheme::Quantity),
    ];
    let best = prefixed
        .iter()
        .filter(|(p, _)| !p.is_empty() && text.starts_with(p.as_bytes()))
        .max_by_key(|(p, _)| p.len());
    if let Some((p, scheme)) = best {
        let rest = text.get(p.len()..).unwrap_or_default();
        return Some(prefixed_value(*scheme, p, rest, cfg));
    }
    None
}

/// Raw card UIDs in the configured formats.
pub(crate) fn try_uid(text: &[u8], cfg: &ControlCodes) -> Option<Result<Decoded, DecodeError>> {
    cfg.badge_uid_formats
        .iter()
        .find(|f| f.matches(text))
        .map(|f| {
            let uid = String::from_utf8_lossy(text).to_ascii_uppercase();
            Ok(decoded(
                Scheme::Badge,
                format!("badge-uid:{uid}"),
                &[("uid", &uid), ("format", f.name())],
            ))
        })
}

fn prefixed_value(
    scheme: Scheme,
    prefix: &str,
    rest: &[u8],
    cfg: &ControlCodes,
) -> Result<Decoded, DecodeError> {
    let what = match scheme {
        Scheme::Badge => "badge",
        Scheme::ProcessCard => "process",
        Scheme::DefectCard => "defect",
        _ => "quantity",
    };
    let err = |reason: String| DecodeError::Control(format!("{what} code {prefix:?}: {reason}"));
    if scheme == Scheme::Quantity {
        if rest.is_empty() || rest.len() > 6 || !rest.iter().all(u8::is_ascii_digit) {
            return Err(err("quantity must be 1 to 6 digits".to_owned()));
        }
        let q: u32 = std::str::from_utf8(rest)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if q == 0 || q > cfg.max_quantity {
            return Err(err(format!(
                "quantity {q} outside 1..={}",
                cfg.max_quantity
            )));
        }
        let qs = q.to_string();
        return Ok(decoded(
            scheme,
            format!("quantity:{qs}"),
            &[("quantity", &qs)],
        ));
    }
    if rest.is_empty() || rest.len() > MAX_ID_LEN {
        return Err(err(format!(
            "id must be 1 to {MAX_ID_LEN} characters, got {}",
            rest.len()
        )));
    }
    if let Some((pos, &c)) = rest
        .iter()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || b"._-".contains(c)))
    {
        return Err(err(format!(
            "invalid character {:?} at position {pos} of the id",
            char::from(c)
        )));
    }
    let id = String::from_utf8_lossy(rest).into_owned();
    Ok(decoded(scheme, format!("{what}:{id}"), &[(what, &id)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dc(s: &str) -> Result<Decoded, DecodeError> {
        decode_control(s.as_bytes(), &ControlCodes::default())
    }

    #[test]
    fn defaults() {
        let d = dc("W:E1042").unwrap();
        assert_eq!((d.scheme, d.key.as_str()), (Scheme::Badge, "badge:E1042"));
        assert_eq!(d.fields["badge"], "E1042");
        assert_eq!(dc("P:OP-12").unwrap().key, "process:OP-12");
        assert_eq!(dc("D:D07").unwrap().scheme, Scheme::DefectCard);
        assert_eq!(dc("Q:012").unwrap().key, "quantity:12");
        assert_eq!(dc("R:PASS").unwrap().fields["result"], "pass");
        assert_eq!(dc("R:FAIL").unwrap().key, "result:fail");
        let d = dc("LOGOUT").unwrap();
        assert_eq!((d.scheme, d.fields.len()), (Scheme::Logout, 0));
    }

    #[test]
    fn card_uids() {
        let d = dc("04a1b2c3d4e5f6").unwrap();
        assert_eq!(d.key, "badge-uid:04A1B2C3D4E5F6");
        assert_eq!(d.fields["format"], "hex14");
        assert_eq!(dc("3735928559").unwrap().fields["format"], "dec10");
        assert_eq!(dc("DEADBEEF").unwrap().fields["format"], "hex8");
        assert_eq!(dc("12345678").unwrap().fields["format"], "dec8");
        // 10 digits above u32::MAX is not a 4-byte UID.
        assert!(matches!(dc("4294967296"), Err(DecodeError::Unrecognised)));
        let none = ControlCodes {
            badge_uid_formats: vec![],
            ..ControlCodes::default()
        };
        assert!(decode_control(b"DEADBEEF", &none).is_err());
    }

    #[test]
    fn errors_name_the_problem() {
        assert!(dc("W:").unwrap_err().to_string().contains("1 to 32"));
        assert!(dc("W:a b").unwrap_err().to_string().contains("' '"));
        assert!(dc("Q:0").is_err());
        assert!(dc("Q:10000").is_err());
        assert!(dc("Q:1x").is_err());
        assert!(matches!(dc("R:MAYBE"), Err(DecodeError::Unrecognised)));
    }

    #[test]
    fn longest_prefix_wins_and_validation() {
        let cfg = ControlCodes {
            defect_prefix: "PD:".to_owned(),
            process_prefix: "P".to_owned(),
            ..ControlCodes::default()
        };
        assert_eq!(cfg.validate("control"), Ok(()));
        assert_eq!(
            decode_control(b"PD:X1", &cfg).unwrap().scheme,
            Scheme::DefectCard
        );
        let bad = ControlCodes {
            logout: "W:".to_owned(),
            ..ControlCodes::default()
        };
        assert_eq!(
            bad.validate("control").unwrap_err(),
            "control.logout: same as control.badge_prefix (\"W:\")"
        );
        let bad = ControlCodes {
            quantity_prefix: String::new(),
            ..ControlCodes::default()
        };
        assert_eq!(
            bad.validate("control").unwrap_err(),
            "control.quantity_prefix: must not be empty"
        );
    }
}
