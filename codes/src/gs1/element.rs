//! GS1 element strings (FNC1 sent as GS, or a configured textual substitute) and the
//! bracketed human-readable form `(01)…(10)…`, both checked against the AI table.

use super::ai_table::{self, AiDef, Check, Cset};
use super::{check_digit, Element};
use crate::error::DecodeError;

/// GS, how scanners transmit FNC1 in non-first position.
pub const GS: u8 = 0x1D;

/// Length of the separator (GS or a textual FNC1 substitute) at `pos`, 0 if none.
fn sep_len(data: &[u8], pos: usize, subs: &[String]) -> usize {
    match data.get(pos) {
        None => 0,
        Some(&GS) => 1,
        Some(&c) => subs
            .iter()
            .find(|s| {
                s.as_bytes().first() == Some(&c)
                    && data.get(pos..).is_some_and(|d| d.starts_with(s.as_bytes()))
            })
            .map_or(0, |s| s.len()),
    }
}

/// Parse an element string whose first-position FNC1 has already been consumed
/// (by the AIM identifier or a leading GS/`^`). `subs` are textual FNC1 forms.
pub fn parse_element_string(data: &[u8], subs: &[String]) -> Result<Vec<Element>, DecodeError> {
    let mut out = Vec::with_capacity(4);
    let mut pos = 0usize;
    loop {
        // Separators before an AI (superfluous, or trailing) are tolerated.
        loop {
            let n = sep_len(data, pos, subs);
            if n == 0 {
                break;
            }
            pos += n;
        }
        let Some(rest) = data.get(pos..).filter(|r| !r.is_empty()) else {
            break;
        };
        let (ai_len, def) = ai_table::lookup_prefix(rest).ok_or_else(|| {
            DecodeError::UnknownAi(
                String::from_utf8_lossy(rest.get(..4).unwrap_or(rest)).into_owned(),
            )
        })?;
        let ai = rest.get(..ai_len).unwrap_or_default();
        pos += ai_len;
        let (_, max) = def.len_range();
        let start = pos;
        if def.fixed() {
            pos += max;
            if pos > data.len() {
                return Err(ai_err(
                    ai,
                    format!(
                        "value needs {max} characters, only {} left",
                        data.len() - start
                    ),
                ));
            }
        } else {
            while pos < data.len() && sep_len(data, pos, subs) == 0 {
                pos += 1;
                if pos - start > max {
                    return Err(ai_err(
                        ai,
                        format!("value longer than {max} characters (missing FNC1/GS separator?)"),
                    ));
                }
            }
        }
        let value = data.get(start..pos).unwrap_or_default();
        validate_value(ai, def, value)?;
        if !ai_table::predefined(ai) && pos < data.len() && sep_len(data, pos, subs) == 0 {
            return Err(ai_err(
                ai,
                "fixed-length value must be followed by FNC1 (GS)".to_owned(),
            ));
        }
        push(&mut out, ai, value)?;
    }
    if out.is_empty() {
        return Err(DecodeError::Gs1Syntax("no element strings".to_owned()));
    }
    Ok(out)
}

/// Parse the bracketed human-readable form: `(01)09506000134352(10)ABC`.
/// A `(` inside a value must be escaped as `\(` (as the GS1 Syntax Engine requires).
pub fn parse_bracketed(data: &[u8]) -> Result<Vec<Element>, DecodeError> {
    let mut out = Vec::with_capacity(4);
    let mut pos = 0usize;
    let mut value = Vec::with_capacity(32);
    while pos < data.len() {
        if data.get(pos) != Some(&b'(') {
            return Err(DecodeError::Gs1Syntax(format!(
                "expected '(' at position {pos}"
            )));
        }
        let close = data
            .get(pos + 1..)
            .and_then(|r| r.iter().position(|&c| c == b')'))
            .ok_or_else(|| DecodeError::Gs1Syntax(format!("unclosed '(' at position {pos}")))?;
        let ai = data.get(pos + 1..pos + 1 + close).unwrap_or_default();
        let def = ai_table::lookup_exact(ai)
            .ok_or_else(|| DecodeError::UnknownAi(String::from_utf8_lossy(ai).into_owned()))?;
        pos += close + 2;
        value.clear();
        while let Some(&c) = data.get(pos) {
            match c {
                b'(' => break,
                b'\\' if data.get(pos + 1) == Some(&b'(') => {
                    value.push(b'(');
                    pos += 2;
                }
                _ => {
                    value.push(c);
                    pos += 1;
                }
            }
        }
        validate_value(ai, def, &value)?;
        push(&mut out, ai, &value)?;
    }
    if out.is_empty() {
        return Err(DecodeError::Gs1Syntax("no element strings".to_owned()));
    }
    Ok(out)
}

/// Add an element, rejecting the same AI twice with different values (identical repeats
/// are dropped: they add nothing).
pub(crate) fn push(out: &mut Vec<Element>, ai: &[u8], value: &[u8]) -> Result<(), DecodeError> {
    let ai = String::from_utf8_lossy(ai).into_owned();
    let value = String::from_utf8_lossy(value).into_owned();
    if let Some(prev) = out.iter().find(|e| e.ai == ai) {
        if prev.value == value {
            return Ok(());
        }
        return Err(DecodeError::DuplicateAi { ai });
    }
    out.push(Element { ai, value });
    Ok(())
}

fn ai_err(ai: &[u8], reason: String) -> DecodeError {
    DecodeError::AiValue {
        ai: String::from_utf8_lossy(ai).into_owned(),
        reason,
    }
}

/// Whether `c` is in GS1 AI encodable character set 82.
pub fn cset82(c: u8) -> bool {
    matches!(c, b'!' | b'"' | b'%'..=b'?' | b'A'..=b'Z' | b'_' | b'a'..=b'z')
}

/// Whether `c` is in GS1 AI encodable character set 39.
fn cset39(c: u8) -> bool {
    matches!(c, b'#' | b'-' | b'/' | b'0'..=b'9' | b'A'..=b'Z')
}

/// Check a complete value against an AI definition: lengths, character sets, check
/// digits, dates.
pub fn validate_value(ai: &[u8], def: &AiDef, value: &[u8]) -> Result<(), DecodeError> {
    let (min, max) = def.len_range();
    if value.is_empty() {
        return Err(ai_err(ai, "empty value".to_owned()));
    }
    if value.len() < min || value.len() > max {
        let want = if min == max {
            format!("{min}")
        } else {
            format!("{min} to {max}")
        };
        return Err(ai_err(
            ai,
            format!("value has {} characters, expected {want}", value.len()),
        ));
    }
    let mut at = 0usize;
    let last = def.comps.len().saturating_sub(1);
    for (i, comp) in def.comps.iter().enumerate() {
        let len = if i == last {
            value.len().saturating_sub(at)
        } else {
            usize::from(comp.max)
        };
        let part = value.get(at..at + len).unwrap_or_default();
        for (k, &c) in part.iter().enumerate() {
            let ok = match comp.cset {
                Cset::N => c.is_ascii_digit(),
                Cset::X => cset82(c),
                Cset::Y => cset39(c),
            };
            if !ok {
                return Err(ai_err(
                    ai,
                    format!(
                        "invalid character {:?} at position {}",
                        char::from(c),
                        at + k
                    ),
                ));
            }
        }
        match comp.check {
            Check::Plain => {}
            Check::Csum => {
                if let Some((&got, data)) = part.split_last() {
                    let expected = check_digit(data).unwrap_or(b'?');
                    if expected != got {
                        return Err(DecodeError::Gs1CheckDigit {
                            ai: String::from_utf8_lossy(ai).into_owned(),
                            expected: char::from(expected),
                            got: char::from(got),
                        });
                    }
                }
            }
            Check::Date | Check::DateD0 => check_date(ai, part, comp.check == Check::DateD0)?,
            Check::Hhmi => {
                let hh = two(part, 0);
                let mi = two(part, 2);
                if hh > 23 || mi > 59 {
                    return Err(ai_err(
                        ai,
                        format!("invalid time {:?}", String::from_utf8_lossy(part)),
                    ));
                }
            }
        }
        at += len;
    }
    Ok(())
}

fn two(d: &[u8], at: usize) -> u32 {
    let v = |i: usize| d.get(i).map_or(0, |c| u32::from(c.wrapping_sub(b'0')));
    v(at) * 10 + v(at + 1)
}

/// YYMMDD; DD = 00 allowed where GS1 marks the AI `yymmd0`. Century by GS1's sliding
/// window; for a leap-year test only YY matters in 1951-2050 (and 2000 is leap).
fn check_date(ai: &[u8], d: &[u8], day_zero_ok: bool) -> Result<(), DecodeError> {
    let (yy, mm, dd) = (two(d, 0), two(d, 2), two(d, 4));
    let reason = if !(1..=12).contains(&mm) {
        Some("month must be 01-12")
    } else if dd == 0 && !day_zero_ok {
        Some("day 00 not allowed for this AI")
    } else if dd > crate::trace::days_in_month(yy, mm) {
        Some("no such day in that month")
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(DecodeError::Date {
            what: format!("AI ({})", String::from_utf8_lossy(ai)),
            value: String::from_utf8_lossy(d).into_owned(),
            reason,
        }),
    }
}
