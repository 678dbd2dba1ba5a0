//! GS1: mod-10 check digits, element strings, the bracketed form and the canonical key
//! shared with Digital Link and EPC.

pub mod ai_table;
pub mod element;

use std::collections::BTreeMap;

use crate::error::DecodeError;
use crate::{Decoded, Scheme};

pub use element::{parse_bracketed, parse_element_string, GS};

/// One AI and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// The AI digits, e.g. `01` or `3103`.
    pub ai: String,
    /// The value, validated against the AI table.
    pub value: String,
}

/// GS1 mod-10 check digit (GTIN-8/12/13/14, GLN, SSCC…) of `data` (digits without the
/// check digit), as an ASCII digit. `None` if `data` holds a non-digit.
pub fn check_digit(data: &[u8]) -> Option<u8> {
    let mut sum = 0u32;
    // Weights 3, 1, 3, … from the rightmost data digit.
    for (i, &c) in data.iter().rev().enumerate() {
        if !c.is_ascii_digit() {
            return None;
        }
        let d = u32::from(c - b'0');
        sum += if i % 2 == 0 { 3 * d } else { d };
    }
    u8::try_from((10 - sum % 10) % 10).ok().map(|d| b'0' + d)
}

/// Identification keys in precedence order, each with the qualifiers that make it
/// unique (the first one present is used). Everything else is attribute data and stays
/// out of the key, so the same item gives the same key whatever carried it.
const KEY_RULES: &[(&str, &[&str])] = &[
    ("00", &[]),
    ("01", &["21", "235", "10"]),
    ("8006", &["21", "10"]),
    ("8004", &[]),
    ("8003", &[]),
    ("414", &["254"]),
    ("417", &[]),
    ("253", &[]),
    ("255", &[]),
    ("401", &[]),
    ("402", &[]),
    ("8010", &["8011"]),
    ("8017", &["8019"]),
    ("8018", &["8019"]),
    ("8013", &[]),
];

/// The canonical dedup key of a set of AIs: the first identification key of
/// [`KEY_RULES`] with its first present qualifier, in bracketed form, e.g.
/// `(01)09506000134352(21)ABC`. Without any identification key: every AI in AI order.
pub fn canonical_key(fields: &BTreeMap<String, String>) -> String {
    let mut key = String::with_capacity(48);
    let mut put = |ai: &str, v: &str| {
        key.push('(');
        key.push_str(ai);
        key.push(')');
        key.push_str(v);
    };
    for (primary, quals) in KEY_RULES {
        if let Some(v) = fields.get(*primary) {
            put(primary, v);
            if let Some((q, qv)) = quals.iter().find_map(|q| fields.get(*q).map(|qv| (q, qv))) {
                put(q, qv);
            }
            return key;
        }
    }
    for (ai, v) in fields {
        put(ai, v);
    }
    key
}

/// Build a `Decoded` from validated elements.
pub(crate) fn to_decoded(scheme: Scheme, elements: Vec<Element>) -> Decoded {
    let fields: BTreeMap<String, String> = elements.into_iter().map(|e| (e.ai, e.value)).collect();
    Decoded {
        scheme,
        key: canonical_key(&fields),
        fields,
        symbology: None,
    }
}

/// Decode a GS1 element string (first FNC1 already consumed).
pub fn decode_element_string(
    data: &[u8],
    fnc1_substitutes: &[String],
) -> Result<Decoded, DecodeError> {
    Ok(to_decoded(
        Scheme::Gs1,
        parse_element_string(data, fnc1_substitutes)?,
    ))
}

/// Decode the bracketed human-readable form.
pub fn decode_bracketed(data: &[u8]) -> Result<Decoded, DecodeError> {
    Ok(to_decoded(Scheme::Gs1, parse_bracketed(data)?))
}

/// Decode a bare GTIN-8/12/13/14 (EAN/UPC scan): checked, left-padded to 14 digits as (01).
pub fn decode_gtin(digits: &[u8]) -> Result<Decoded, DecodeError> {
    if !matches!(digits.len(), 8 | 12 | 13 | 14) {
        return Err(DecodeError::AiValue {
            ai: "01".to_owned(),
            reason: format!("a GTIN has 8, 12, 13 or 14 digits, got {}", digits.len()),
        });
    }
    let mut gtin = [b'0'; 14];
    gtin.get_mut(14 - digits.len()..)
        .unwrap_or_default()
        .copy_from_slice(digits);
    let def =
        ai_table::lookup_exact(b"01").ok_or_else(|| DecodeError::UnknownAi("01".to_owned()))?;
    element::validate_value(b"01", def, &gtin)?;
    let value = String::from_utf8_lossy(&gtin).into_owned();
    Ok(to_decoded(
        Scheme::Gs1,
        vec![Element {
            ai: "01".to_owned(),
            value,
        }],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subs() -> Vec<String> {
        crate::config::Gs1Config::default().fnc1_substitutes
    }
    fn els(s: &str) -> Result<Vec<(String, String)>, DecodeError> {
        parse_element_string(s.as_bytes(), &subs())
            .map(|v| v.into_iter().map(|e| (e.ai, e.value)).collect())
    }
    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, v)| ((*a).to_owned(), (*v).to_owned()))
            .collect()
    }

    // TV-GS1-01..04c: GS1 check digit calculator examples (gs1.org, GS1 India, GS1 Sweden).
    #[test]
    fn tv_gs1_01_to_04_check_digits() {
        assert_eq!(check_digit(b"629104150021"), Some(b'3'));
        assert_eq!(check_digit(b"890400021003"), Some(b'7'));
        assert_eq!(check_digit(b"730001100001"), Some(b'7'));
        assert_eq!(check_digit(b"1231231231233"), Some(b'3'));
        assert_eq!(check_digit(b"0950600013435"), Some(b'2'));
        assert_eq!(check_digit(b"10614141234567890"), Some(b'8'));
        assert_eq!(check_digit(b"12 4"), None);
    }

    // CD-4/CD-5: gs1-syntax-dictionary lint_csum.c tests.
    #[test]
    fn cd_4_5_lint_csum_vectors() {
        for ok in [
            "02345673",
            "416000336108",
            "1234567890128",
            "12345678901231",
            "123456789012345675",
        ] {
            let (d, c) = ok.as_bytes().split_at(ok.len() - 1);
            assert_eq!(check_digit(d), Some(c[0]), "{ok}");
        }
        for bad in [
            "12345673",
            "416000336109",
            "1234567890129",
            "12345678901232",
            "123456789012345670",
        ] {
            let (d, c) = bad.as_bytes().split_at(bad.len() - 1);
            assert_ne!(check_digit(d), Some(c[0]), "{bad}");
        }
    }

    // AI-1..AI-15: gs1-syntax-engine ai.c tests (`^` = FNC1; the leading one is consumed).
    #[test]
    fn ai_vectors_from_syntax_engine() {
        assert_eq!(
            els("0112345678901231").unwrap(),
            pairs(&[("01", "12345678901231")])
        );
        assert!(matches!(
            els("0112345678901234"),
            Err(DecodeError::Gs1CheckDigit { .. })
        ));
        assert!(els("011234567890123").is_err());
        assert!(els("0112345678901231^").is_ok());
        assert_eq!(
            els("0112345678901231991234").unwrap(),
            pairs(&[("01", "12345678901231"), ("99", "1234")])
        );
        assert!(els("0112345678901231^991234").is_ok());
        assert_eq!(
            els("242123456^10ABC123").unwrap(),
            pairs(&[("242", "123456"), ("10", "ABC123")])
        );
        assert!(els("2421234567").is_err());
        assert!(els("81111234^10ABC123").is_ok());
        assert_eq!(
            els("0112345678901231235XYZ^10BATCH").unwrap(),
            pairs(&[("01", "12345678901231"), ("235", "XYZ"), ("10", "BATCH")])
        );
        // With the default `~` substitute this is (99) with an empty value: still rejected.
        assert!(els("99~ABC").is_err());
        assert!(matches!(els("891234"), Err(DecodeError::UnknownAi(_))));
        assert!(els("800302112345678900ABC").is_ok());
        assert!(matches!(
            els("800302112345678901ABC"),
            Err(DecodeError::Gs1CheckDigit { .. })
        ));
    }

    // AI-11 with the engine's own notation: `~` is not CSET 82. With no substitutes
    // configured it is an invalid character.
    #[test]
    fn ai_11_tilde_not_cset82() {
        let e = parse_element_string(b"99~ABC", &[]).unwrap_err();
        assert!(e.to_string().contains("invalid character '~'"), "{e}");
    }

    // Bracketed → FNC1 form (ai.c test_parseAIdata) and cross-AI date rule.
    #[test]
    fn bracketed_vectors() {
        let b = |s: &str| {
            parse_bracketed(s.as_bytes())
                .map(|v| v.into_iter().map(|e| (e.ai, e.value)).collect::<Vec<_>>())
        };
        assert_eq!(
            b("(01)12345678901231(10)12345").unwrap(),
            pairs(&[("01", "12345678901231"), ("10", "12345")])
        );
        assert_eq!(
            b("(01)12345678901231(235)XYZ(10)BATCH").unwrap(),
            pairs(&[("01", "12345678901231"), ("235", "XYZ"), ("10", "BATCH")])
        );
        assert!(b("(01)123456789012312(10)12345").is_err());
        assert!(matches!(
            b("(01)95012345678903(11)131313"),
            Err(DecodeError::Date { .. })
        ));
        // TV-GS1-18: bad check digit, expected 2.
        let e = b("(01)09506000134353(10)ABC").unwrap_err();
        assert_eq!(
            e.to_string(),
            "AI (01): check digit mismatch: expected 2, got 3"
        );
        assert_eq!(b("(10)A\\(B)C").unwrap(), pairs(&[("10", "A(B)C")]));
        assert!(b("(01").is_err());
        assert!(b("x(01)").is_err());
        assert!(b("(10)").is_err());
        assert!(b("(999)1").is_err());
    }

    // TV-GS1-08: (11) is predefined, so (98) follows without GS; DD=00 is allowed for 11/17.
    #[test]
    fn tv_gs1_08_dates_and_predefined() {
        let v = els("011231231231233310ABC123\u{1d}1199122598TESTING\u{1d}97XYZ").unwrap();
        assert_eq!(
            v,
            pairs(&[
                ("01", "12312312312333"),
                ("10", "ABC123"),
                ("11", "991225"),
                ("98", "TESTING"),
                ("97", "XYZ")
            ])
        );
        assert!(els("17241100").is_ok());
        assert!(els("16241100").is_err());
        assert!(els("17240230").is_err());
        assert!(els("17240229").is_ok());
        assert!(els("17250229").is_err());
    }

    #[test]
    fn non_predefined_fixed_length_needs_separator() {
        // 7003 is N10 but needs FNC1 after it.
        assert!(els("70032401011230\u{1d}10A").is_ok());
        let e = els("7003240101123010A").unwrap_err();
        assert!(e.to_string().contains("FNC1"), "{e}");
        assert!(els("70032401012460").is_err());
        // 8006 ITIP: N14 + N2 + N2.
        assert!(els("8006095060001343520102").is_ok());
    }

    #[test]
    fn duplicates() {
        assert!(els("10A\u{1d}10A").is_ok());
        assert!(matches!(
            els("10A\u{1d}10B"),
            Err(DecodeError::DuplicateAi { .. })
        ));
    }

    #[test]
    fn canonical_keys() {
        let k = |s: &str| {
            canonical_key(
                &parse_bracketed(s.as_bytes())
                    .unwrap()
                    .into_iter()
                    .map(|e| (e.ai, e.value))
                    .collect(),
            )
        };
        assert_eq!(
            k("(10)L1(01)09506000134352(21)S(17)250101"),
            "(01)09506000134352(21)S"
        );
        assert_eq!(k("(01)09506000134352(10)L1"), "(01)09506000134352(10)L1");
        assert_eq!(k("(01)09506000134352"), "(01)09506000134352");
        assert_eq!(
            k("(02)09506000134352(37)12(00)106141412345678908"),
            "(00)106141412345678908"
        );
        assert_eq!(k("(37)12(02)09506000134352"), "(02)09506000134352(37)12");
        assert_eq!(
            k("(414)9520123456788(254)32a/b"),
            "(414)9520123456788(254)32a/b"
        );
    }

    #[test]
    fn bare_gtins() {
        assert_eq!(
            decode_gtin(b"6291041500213").unwrap().key,
            "(01)06291041500213"
        );
        assert_eq!(decode_gtin(b"02345673").unwrap().key, "(01)00000002345673");
        assert!(decode_gtin(b"6291041500214").is_err());
        assert_eq!(
            decode_gtin(b"036000291452").unwrap().key,
            "(01)00036000291452"
        );
        assert!(decode_gtin(b"123").is_err());
    }
}
