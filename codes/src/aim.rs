//! AIM symbology identifiers (ISO/IEC 15424): `]` + code character + modifier.
//! Which ones carry GS1 data follows the GS1 Syntax Engine's `scandata.c` table.

use std::fmt;

use crate::error::DecodeError;

/// A parsed symbology identifier such as `]C1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AimId {
    /// Code character (case-sensitive: `d` Data Matrix, `e` DataBar, `C` Code 128…).
    pub code: u8,
    /// Modifier character.
    pub modifier: u8,
}

/// What the payload behind an identifier is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AimClass {
    /// GS1 element string, FNC1 in first position implied (`]C1 ]e0 ]d2 ]Q3 ]J1`).
    Gs1,
    /// EAN-13 / UPC-A / UPC-E as 13 digits (`]E0`).
    Ean13,
    /// EAN-8 (`]E4`).
    Ean8,
    /// EAN/UPC with add-on (`]E1 ]E2 ]E3`): not decoded.
    EanAddOn,
    /// Plain text (`]Q1 ]d1 ]C0 ]A0` …): may hold a Digital Link, trace or control code.
    Text,
}

impl AimId {
    /// What kind of payload follows.
    pub fn class(self) -> AimClass {
        match (self.code, self.modifier) {
            (b'C', b'1') | (b'e', b'0') | (b'd', b'2') | (b'Q', b'3') | (b'J', b'1') => {
                AimClass::Gs1
            }
            (b'E', b'0') => AimClass::Ean13,
            (b'E', b'4') => AimClass::Ean8,
            (b'E', _) => AimClass::EanAddOn,
            _ => AimClass::Text,
        }
    }
}

impl fmt::Display for AimId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "]{}{}", char::from(self.code), char::from(self.modifier))
    }
}

/// Parse exactly a 3-character identifier (e.g. a HID POS hint).
pub fn parse_aim_id(id: &[u8]) -> Result<AimId, DecodeError> {
    match id {
        [b']', code, modifier] if valid(*code, *modifier) => Ok(AimId {
            code: *code,
            modifier: *modifier,
        }),
        _ => Err(DecodeError::BadAim(
            String::from_utf8_lossy(id).into_owned(),
        )),
    }
}

/// Split a leading identifier from scan data that starts with `]`.
pub fn split_aim(data: &[u8]) -> Result<(AimId, &[u8]), DecodeError> {
    let id = data
        .get(..3)
        .ok_or_else(|| DecodeError::BadAim(String::from_utf8_lossy(data).into_owned()))?;
    Ok((parse_aim_id(id)?, data.get(3..).unwrap_or_default()))
}

/// Code characters are letters; modifiers are digits (letters A-C only for Aztec `]z`),
/// so `]XX` or `]1A` are rejected rather than guessed at.
fn valid(code: u8, modifier: u8) -> bool {
    code.is_ascii_alphabetic()
        && (modifier.is_ascii_digit() || (code == b'z' && (b'A'..=b'C').contains(&modifier)))
}

#[cfg(test)]
mod tests {
    use super::*;

    // TV-GS1-15 / SD-12 (scandata.c): short or unknown identifiers are rejected.
    #[test]
    fn tv_gs1_15_bad_identifiers() {
        assert!(split_aim(b"]").is_err());
        assert!(split_aim(b"]X").is_err());
        assert!(split_aim(b"]XX").is_err());
        assert!(parse_aim_id(b"]C1x").is_err());
    }

    #[test]
    fn classes() {
        let c = |s: &[u8]| parse_aim_id(s).unwrap().class();
        for g in [&b"]C1"[..], b"]e0", b"]d2", b"]Q3", b"]J1"] {
            assert_eq!(c(g), AimClass::Gs1);
        }
        assert_eq!(c(b"]E0"), AimClass::Ean13);
        assert_eq!(c(b"]E4"), AimClass::Ean8);
        assert_eq!(c(b"]E3"), AimClass::EanAddOn);
        assert_eq!(c(b"]Q1"), AimClass::Text);
        assert_eq!(c(b"]zA"), AimClass::Text);
        let (id, rest) = split_aim(b"]d1https://x").unwrap();
        assert_eq!((id.to_string().as_str(), rest), ("]d1", &b"https://x"[..]));
    }
}
