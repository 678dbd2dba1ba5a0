//! Hex byte strings in config (`"1B 07"`) and in ASCII-mode RFID output.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Parses hex text into bytes. Accepts upper or lower case, optional `0x` prefix and
/// the separators space, tab, `:` and `-` between bytes (`"1B 07"`, `"1b07"`, `"0x1B07"`).
pub fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let t = s.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let digits: Vec<u8> = t
        .bytes()
        .filter(|b| !matches!(b, b' ' | b'\t' | b':' | b'-'))
        .collect();
    if digits.len() % 2 != 0 {
        return Err(format!("odd number of hex digits in {s:?}"));
    }
    digits
        .chunks(2)
        .map(|pair| {
            let hi = hex_val(pair[0]);
            let lo = hex_val(pair[1]);
            match (hi, lo) {
                (Some(h), Some(l)) => Ok(h << 4 | l),
                _ => Err(format!("not a hex byte string: {s:?}")),
            }
        })
        .collect()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Formats bytes as uppercase hex separated by spaces (`1B 07`).
pub fn to_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&format!("{b:02X}"));
    }
    s
}

/// A byte string written in config as hex text, e.g. `good = "1B 07"`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HexBytes(pub Vec<u8>);

impl fmt::Display for HexBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&to_hex(&self.0))
    }
}

impl Serialize for HexBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_hex(&self.0))
    }
}

impl<'de> Deserialize<'de> for HexBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_hex(&s)
            .map(HexBytes)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_spellings() {
        assert_eq!(parse_hex("1B 07").unwrap(), vec![0x1B, 0x07]);
        assert_eq!(parse_hex("1b07").unwrap(), vec![0x1B, 0x07]);
        assert_eq!(parse_hex("0x1B07").unwrap(), vec![0x1B, 0x07]);
        assert_eq!(parse_hex("1B:07-ff").unwrap(), vec![0x1B, 0x07, 0xFF]);
        assert_eq!(parse_hex("").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn rejects_bad_hex() {
        assert!(parse_hex("1B0").is_err());
        assert!(parse_hex("zz").is_err());
        assert!(parse_hex("é1").is_err());
    }

    #[test]
    fn formats_upper_spaced() {
        assert_eq!(to_hex(&[0x1B, 0x07, 0xAB]), "1B 07 AB");
        assert_eq!(HexBytes(vec![1]).to_string(), "01");
    }
}
