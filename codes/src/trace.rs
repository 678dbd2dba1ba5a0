//! DG-7.1.2 trace codes: a configurable fixed-width layout of attribute, trace node,
//! date, region and random fields followed by ISO/IEC 7064 check character(s).
//!
//! The default layout (attribute 2 + node 8 + YYMMDD + GB/T 2260 region 6 + random 6 +
//! MOD 37,36 check = 29 characters) is Bobbin's design: DG names the parts, not the sizes.
//! Validation order (so the error names the first thing wrong): length, character set,
//! date, region, then the check character.

use std::collections::BTreeMap;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::DecodeError;
use crate::iso7064::CheckSystem;
use crate::{Decoded, Scheme};

/// Upper bound on a layout's total length; keeps every code short and every decode cheap.
pub const MAX_TRACE_LEN: usize = 64;

/// What a field of the trace code holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TraceFieldKind {
    /// Attribute identifier (product class), e.g. `FZ` for garments.
    Attribute,
    /// Trace node: the workshop's id on the platform.
    Node,
    /// Date as YYMMDD (20YY); must be a real calendar date.
    Date,
    /// GB/T 2260 administrative division code (digits).
    Region,
    /// Random part, from a CSPRNG when generated.
    Random,
}

impl TraceFieldKind {
    /// Name used in `fields` and error messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Attribute => "attribute",
            Self::Node => "node",
            Self::Date => "date",
            Self::Region => "region",
            Self::Random => "random",
        }
    }
}

/// One field of the layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceField {
    /// What the field holds.
    pub kind: TraceFieldKind,
    /// Width in characters (date: 6).
    pub width: usize,
}

/// Layout of the trace code: fields in order, then the check character(s).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TraceLayout {
    /// Fields in the order they appear; each kind exactly once. The check character(s) follow.
    pub fields: Vec<TraceField>,
    /// ISO/IEC 7064 check system: mod37-36 (default), mod37-2, mod11-2, mod11-10, mod1271-36.
    pub check: CheckSystem,
    /// Attribute identifier used by gen-code when none is given.
    pub default_attribute: String,
    /// Require the region's first two digits to be a GB/T 2260 province code (11..82).
    pub check_province: bool,
}

impl Default for TraceLayout {
    fn default() -> Self {
        let f = |kind, width| TraceField { kind, width };
        Self {
            fields: vec![
                f(TraceFieldKind::Attribute, 2),
                f(TraceFieldKind::Node, 8),
                f(TraceFieldKind::Date, 6),
                f(TraceFieldKind::Region, 6),
                f(TraceFieldKind::Random, 6),
            ],
            check: CheckSystem::Mod37_36,
            default_attribute: "FZ".to_owned(),
            check_province: true,
        }
    }
}

/// GB/T 2260 province-level codes (first two digits of a division code).
const PROVINCES: &[&[u8; 2]] = &[
    b"11", b"12", b"13", b"14", b"15", b"21", b"22", b"23", b"31", b"32", b"33", b"34", b"35",
    b"36", b"37", b"41", b"42", b"43", b"44", b"45", b"46", b"50", b"51", b"52", b"53", b"54",
    b"61", b"62", b"63", b"64", b"65", b"71", b"81", b"82",
];

impl TraceLayout {
    /// Total length of a code: all field widths plus the check character(s).
    pub fn len(&self) -> usize {
        self.body_len().saturating_add(self.check.check_len())
    }

    /// Whether the layout has no fields (never true for a valid layout).
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    fn body_len(&self) -> usize {
        self.fields
            .iter()
            .fold(0usize, |n, f| n.saturating_add(f.width))
    }

    /// Check the layout; `prefix` is the TOML path used in messages (e.g. `trace`).
    pub fn validate(&self, prefix: &str) -> Result<(), String> {
        if self.fields.is_empty() {
            return Err(format!("{prefix}.fields: must not be empty"));
        }
        for (i, f) in self.fields.iter().enumerate() {
            if f.width == 0 {
                return Err(format!("{prefix}.fields[{i}].width: must be > 0"));
            }
            if f.kind == TraceFieldKind::Date && f.width != 6 {
                return Err(format!(
                    "{prefix}.fields[{i}].width: a date field is YYMMDD, width must be 6"
                ));
            }
            if self.fields[..i].iter().any(|g| g.kind == f.kind) {
                return Err(format!(
                    "{prefix}.fields[{i}].kind: {} appears twice",
                    f.kind.name()
                ));
            }
        }
        for kind in [
            TraceFieldKind::Attribute,
            TraceFieldKind::Node,
            TraceFieldKind::Date,
            TraceFieldKind::Region,
            TraceFieldKind::Random,
        ] {
            if !self.fields.iter().any(|f| f.kind == kind) {
                return Err(format!(
                    "{prefix}.fields: no {} field (DG-7.1.2 requires it)",
                    kind.name()
                ));
            }
        }
        if self.len() > MAX_TRACE_LEN {
            return Err(format!(
                "{prefix}.fields: total length {} exceeds {MAX_TRACE_LEN}",
                self.len()
            ));
        }
        let attr_width = self.width_of(TraceFieldKind::Attribute);
        if let Err(e) = self.check_field(TraceFieldKind::Attribute, &self.default_attribute) {
            return Err(format!(
                "{prefix}.default_attribute: {e} (width {attr_width}, alphabet {})",
                if self.check.numeric() {
                    "0-9"
                } else {
                    "0-9 A-Z"
                }
            ));
        }
        Ok(())
    }

    fn width_of(&self, kind: TraceFieldKind) -> usize {
        self.fields
            .iter()
            .find(|f| f.kind == kind)
            .map_or(0, |f| f.width)
    }

    /// Whether `code` has this layout's length and only alphanumerics, i.e. is meant as a
    /// trace code (detection); it may still fail validation.
    pub fn looks_like(&self, code: &[u8]) -> bool {
        code.len() == self.len()
            && code
                .iter()
                .enumerate()
                .all(|(i, &c)| c.is_ascii_alphanumeric() || (i + 1 == code.len() && c == b'*'))
    }

    /// Validate one field value given as text (generator arguments).
    fn check_field(&self, kind: TraceFieldKind, value: &str) -> Result<(), DecodeError> {
        let want = self.width_of(kind);
        if value.len() != want {
            return Err(DecodeError::InvalidArgument {
                name: kind.name(),
                reason: format!("{} characters, expected {want}", value.len()),
            });
        }
        for (pos, c) in value.bytes().enumerate() {
            if !self.field_char_ok(kind, c) {
                return Err(DecodeError::Charset {
                    what: kind.name(),
                    pos,
                    ch: char::from(c),
                });
            }
        }
        match kind {
            TraceFieldKind::Date => {
                check_yymmdd(value.as_bytes())?;
            }
            TraceFieldKind::Region => self.check_region(value.as_bytes())?,
            _ => {}
        }
        Ok(())
    }

    fn field_char_ok(&self, kind: TraceFieldKind, c: u8) -> bool {
        match kind {
            TraceFieldKind::Date | TraceFieldKind::Region => c.is_ascii_digit(),
            _ => self.check.value(c).is_some(),
        }
    }

    fn check_region(&self, v: &[u8]) -> Result<(), DecodeError> {
        if self.check_province && v.len() >= 2 && !PROVINCES.iter().any(|p| v.starts_with(*p)) {
            return Err(DecodeError::Region {
                value: String::from_utf8_lossy(v).into_owned(),
                reason: "first two digits are not a GB/T 2260 province code",
            });
        }
        Ok(())
    }
}

/// Check a YYMMDD date (years 2000-2099, so YY divisible by 4 is a leap year).
/// Returns the date as ISO 8601 `20YY-MM-DD`.
pub fn check_yymmdd(v: &[u8]) -> Result<String, DecodeError> {
    let err = |reason| DecodeError::Date {
        what: "trace code".to_owned(),
        value: String::from_utf8_lossy(v).into_owned(),
        reason,
    };
    let [y1, y2, m1, m2, d1, d2] = <[u8; 6]>::try_from(v).map_err(|_| err("not 6 digits"))?;
    if !v.iter().all(u8::is_ascii_digit) {
        return Err(err("not all digits"));
    }
    let yy = u32::from(y1 - b'0') * 10 + u32::from(y2 - b'0');
    let mm = u32::from(m1 - b'0') * 10 + u32::from(m2 - b'0');
    let dd = u32::from(d1 - b'0') * 10 + u32::from(d2 - b'0');
    if !(1..=12).contains(&mm) {
        return Err(err("month must be 01-12"));
    }
    if dd == 0 || dd > days_in_month(yy, mm) {
        return Err(err("no such day in that month"));
    }
    Ok(format!("20{yy:02}-{mm:02}-{dd:02}"))
}

/// Days in month `mm` of year YY (2000-2099: leap iff YY % 4 == 0).
pub(crate) fn days_in_month(yy: u32, mm: u32) -> u32 {
    match mm {
        2 if yy % 4 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Decode and validate a trace code under `layout`. The key is the code itself.
pub fn decode_trace(code: &[u8], layout: &TraceLayout) -> Result<Decoded, DecodeError> {
    let total = layout.len();
    if code.len() != total {
        return Err(DecodeError::Length {
            what: "trace code",
            expected: total,
            got: code.len(),
        });
    }
    let body_len = total - layout.check.check_len();
    for (pos, &c) in code.iter().enumerate() {
        let ok = if pos < body_len {
            layout.check.value(c).is_some()
        } else {
            layout.check.is_check_char(c)
        };
        if !ok {
            return Err(DecodeError::Charset {
                what: "trace code",
                pos,
                ch: char::from(c),
            });
        }
    }
    let mut fields = BTreeMap::new();
    let mut at = 0usize;
    for f in &layout.fields {
        let v = at
            .checked_add(f.width)
            .and_then(|end| code.get(at..end))
            .ok_or(DecodeError::Length {
                what: "trace code",
                expected: total,
                got: code.len(),
            })?;
        at = at.saturating_add(f.width);
        let text = match f.kind {
            TraceFieldKind::Date => check_yymmdd(v)?,
            TraceFieldKind::Region => {
                if let Some(pos) = v.iter().position(|c| !c.is_ascii_digit()) {
                    return Err(DecodeError::Charset {
                        what: "region",
                        pos,
                        ch: char::from(v.get(pos).copied().unwrap_or(b'?')),
                    });
                }
                layout.check_region(v)?;
                ascii(v)
            }
            _ => ascii(v),
        };
        fields.insert(f.kind.name().to_owned(), text);
    }
    layout.check.verify(code)?;
    let check = code.get(body_len..).unwrap_or_default();
    fields.insert("check".to_owned(), ascii(check));
    Ok(Decoded {
        scheme: Scheme::DgTrace,
        key: ascii(code),
        fields,
        symbology: None,
    })
}

fn ascii(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}

/// Generate one trace code with a CSPRNG random part (rand's thread-local ChaCha,
/// seeded from the OS). `date_yymmdd` is supplied by the caller (today, usually).
pub fn generate_trace_code(
    layout: &TraceLayout,
    attribute: &str,
    node: &str,
    region: &str,
    date_yymmdd: &str,
) -> Result<String, DecodeError> {
    generate_trace_code_with(
        &mut rand::rng(),
        layout,
        attribute,
        node,
        region,
        date_yymmdd,
    )
}

/// Generate `count` distinct trace codes (gen-code). `attribute` defaults to the layout's
/// `default_attribute`.
pub fn generate_trace_codes(
    layout: &TraceLayout,
    attribute: Option<&str>,
    node: &str,
    region: &str,
    date_yymmdd: &str,
    count: usize,
) -> Result<Vec<String>, DecodeError> {
    let attribute = attribute.unwrap_or(&layout.default_attribute);
    let mut rng = rand::rng();
    let mut out: Vec<String> = Vec::with_capacity(count.min(1 << 16));
    let mut seen = std::collections::HashSet::new();
    // A short random field could run out of distinct values; bound the attempts.
    let mut attempts = 0usize;
    while out.len() < count {
        attempts += 1;
        if attempts > count.saturating_mul(20).saturating_add(100) {
            return Err(DecodeError::InvalidArgument {
                name: "count",
                reason: format!("could not find {count} distinct codes; widen the random field"),
            });
        }
        let code =
            generate_trace_code_with(&mut rng, layout, attribute, node, region, date_yymmdd)?;
        if seen.insert(code.clone()) {
            out.push(code);
        }
    }
    Ok(out)
}

/// Generate one trace code drawing the random field from `rng` (tests pass a seeded one).
pub fn generate_trace_code_with<R: Rng + ?Sized>(
    rng: &mut R,
    layout: &TraceLayout,
    attribute: &str,
    node: &str,
    region: &str,
    date_yymmdd: &str,
) -> Result<String, DecodeError> {
    layout
        .validate("trace")
        .map_err(|reason| DecodeError::InvalidArgument {
            name: "layout",
            reason,
        })?;
    layout.check_field(TraceFieldKind::Attribute, attribute)?;
    layout.check_field(TraceFieldKind::Node, node)?;
    layout.check_field(TraceFieldKind::Region, region)?;
    layout.check_field(TraceFieldKind::Date, date_yymmdd)?;
    let alphabet = layout.check.body_alphabet();
    let mut code = String::with_capacity(layout.len());
    for f in &layout.fields {
        match f.kind {
            TraceFieldKind::Attribute => code.push_str(attribute),
            TraceFieldKind::Node => code.push_str(node),
            TraceFieldKind::Region => code.push_str(region),
            TraceFieldKind::Date => code.push_str(date_yymmdd),
            TraceFieldKind::Random => {
                for _ in 0..f.width {
                    let i = rng.random_range(0..alphabet.len());
                    code.push(char::from(alphabet.get(i).copied().unwrap_or(b'0')));
                }
            }
        }
    }
    let check = layout.check.compute(code.as_bytes())?;
    code.push_str(check.as_str());
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    // TV-DG-01 (test-vectors.md §8, derived from Bobbin's default layout).
    #[test]
    fn tv_dg_01_default_layout() {
        let d = decode_trace(b"FZ44190001241015441900A7K9Q2Q", &TraceLayout::default()).unwrap();
        assert_eq!(d.key, "FZ44190001241015441900A7K9Q2Q");
        assert_eq!(d.scheme, Scheme::DgTrace);
        let f = |k: &str| d.fields.get(k).map(String::as_str);
        assert_eq!(f("attribute"), Some("FZ"));
        assert_eq!(f("node"), Some("44190001"));
        assert_eq!(f("date"), Some("2024-10-15"));
        assert_eq!(f("region"), Some("441900"));
        assert_eq!(f("random"), Some("A7K9Q2"));
        assert_eq!(f("check"), Some("Q"));
        assert_eq!(d.fields.len(), 6);
    }

    // TV-DG-01: "Under MOD 37-2 the check would be B".
    #[test]
    fn tv_dg_01_mod_37_2_check_is_b() {
        let layout = TraceLayout {
            check: CheckSystem::Mod37_2,
            ..TraceLayout::default()
        };
        assert!(decode_trace(b"FZ44190001241015441900A7K9Q2B", &layout).is_ok());
    }

    // TV-DG-02: last two body characters swapped.
    #[test]
    fn tv_dg_02_swap_is_check_mismatch() {
        let e =
            decode_trace(b"FZ44190001241015441900A7K92QQ", &TraceLayout::default()).unwrap_err();
        assert!(matches!(e, DecodeError::CheckCharacter { .. }), "{e}");
    }

    // TV-DG-03: month 13 is a date error, reported before the check character.
    #[test]
    fn tv_dg_03_month_13_is_date_error_first() {
        let e =
            decode_trace(b"FZ44190001241315441900A7K9Q2Q", &TraceLayout::default()).unwrap_err();
        assert!(matches!(e, DecodeError::Date { .. }), "{e}");
        assert!(e.to_string().contains("month"), "{e}");
    }

    #[test]
    fn rejects_length_charset_region_and_dates() {
        let l = TraceLayout::default();
        assert!(matches!(
            decode_trace(b"FZ4419", &l),
            Err(DecodeError::Length {
                expected: 29,
                got: 6,
                ..
            })
        ));
        assert!(matches!(
            decode_trace(b"Fz44190001241015441900A7K9Q2Q", &l),
            Err(DecodeError::Charset {
                pos: 1,
                ch: 'z',
                ..
            })
        ));
        // 99xxxx is not a province.
        assert!(matches!(
            decode_trace(b"FZ44190001241015991900A7K9Q2Q", &l),
            Err(DecodeError::Region { .. })
        ));
        // Feb 29 only in leap years; 2024 is one, 2025 is not.
        let ok = generate_trace_code(&l, "FZ", "44190001", "441900", "240229").unwrap();
        assert!(decode_trace(ok.as_bytes(), &l).is_ok());
        assert!(generate_trace_code(&l, "FZ", "44190001", "441900", "250229").is_err());
        assert!(generate_trace_code(&l, "FZ", "44190001", "441900", "250431").is_err());
        assert!(generate_trace_code(&l, "FZ", "44190001", "441900", "250400").is_err());
    }

    #[test]
    fn generate_checks_arguments() {
        let l = TraceLayout::default();
        let e = generate_trace_code(&l, "FZ", "4419000", "441900", "241015").unwrap_err();
        assert!(e.to_string().contains("node"), "{e}");
        assert!(generate_trace_code(&l, "fz", "44190001", "441900", "241015").is_err());
        assert!(generate_trace_code(&l, "FZ", "44190001", "4419A0", "241015").is_err());
        let codes = generate_trace_codes(&l, None, "44190001", "441900", "241015", 50).unwrap();
        assert_eq!(codes.len(), 50);
        let distinct: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(distinct.len(), 50);
        assert!(codes
            .iter()
            .all(|c| c.starts_with("FZ44190001241015441900")));
    }

    #[test]
    fn layout_validation_names_the_key() {
        let mut l = TraceLayout::default();
        l.fields[1].width = 0;
        assert_eq!(
            l.validate("trace").unwrap_err(),
            "trace.fields[1].width: must be > 0"
        );
        let mut l = TraceLayout::default();
        l.fields[4].kind = TraceFieldKind::Node;
        assert!(l
            .validate("trace")
            .unwrap_err()
            .starts_with("trace.fields[4].kind"));
        let l = TraceLayout {
            check: CheckSystem::Mod11_10,
            ..TraceLayout::default()
        };
        assert!(l
            .validate("trace")
            .unwrap_err()
            .starts_with("trace.default_attribute"));
    }

    #[test]
    fn custom_numeric_layout_round_trips() {
        let l = TraceLayout {
            fields: vec![
                TraceField {
                    kind: TraceFieldKind::Region,
                    width: 6,
                },
                TraceField {
                    kind: TraceFieldKind::Date,
                    width: 6,
                },
                TraceField {
                    kind: TraceFieldKind::Attribute,
                    width: 2,
                },
                TraceField {
                    kind: TraceFieldKind::Node,
                    width: 4,
                },
                TraceField {
                    kind: TraceFieldKind::Random,
                    width: 8,
                },
            ],
            check: CheckSystem::Mod11_2,
            default_attribute: "01".into(),
            check_province: true,
        };
        assert_eq!(l.validate("trace"), Ok(()));
        let code = generate_trace_code(&l, "01", "1234", "441900", "241015").unwrap();
        assert_eq!(code.len(), 27);
        let d = decode_trace(code.as_bytes(), &l).unwrap();
        assert_eq!(d.fields["node"], "1234");
        assert_eq!(d.fields["date"], "2024-10-15");
    }
}
