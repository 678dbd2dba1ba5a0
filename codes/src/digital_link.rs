//! GS1 Digital Link URIs as found in QR codes: any host and path prefix, a primary key
//! AI with its qualifiers in the path, data attributes in the query string.
//! Rules follow the GS1 Syntax Engine's `dl.c` tests (see test-vectors.md §7).

use crate::config::Gs1Config;
use crate::error::DecodeError;
use crate::gs1::{ai_table, element, Element};
use crate::{Decoded, Scheme};

/// Qualifier chains allowed after a primary key (in order; any subsequence of one chain).
type Chains = &'static [&'static [&'static str]];

/// Primary-key AIs with their qualifier chains.
const PRIMARY: &[(&str, Chains)] = &[
    ("00", &[]),
    ("01", &[&["22", "10", "21"], &["235"]]),
    ("253", &[]),
    ("255", &[]),
    ("401", &[]),
    ("402", &[]),
    ("414", &[&["254"], &["7040"]]),
    ("417", &[&["7040"]]),
    ("8003", &[]),
    ("8004", &[&["7040"]]),
    ("8006", &[&["22", "10", "21"]]),
    ("8010", &[&["8011"]]),
    ("8013", &[]),
    ("8017", &[&["8019"]]),
    ("8018", &[&["8019"]]),
];
const QUALIFIERS: &[&str] = &["22", "10", "21", "235", "254", "7040", "8011", "8019"];

fn dl_err(msg: impl Into<String>) -> DecodeError {
    DecodeError::DigitalLink(msg.into())
}

/// Whether `data` starts like an http(s) URL, in any letter case (detection; the parser
/// then rejects mixed-case schemes).
pub fn looks_like_url(data: &[u8]) -> bool {
    let starts = |p: &[u8]| {
        data.get(..p.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(p))
    };
    starts(b"http://") || starts(b"https://")
}

/// Decode a Digital Link URI into the same AI fields and key as the element string.
pub fn decode_digital_link(uri: &[u8], cfg: &Gs1Config) -> Result<Decoded, DecodeError> {
    Ok(crate::gs1::to_decoded(
        Scheme::DigitalLink,
        parse_digital_link(uri, cfg)?,
    ))
}

/// Parse a Digital Link URI into validated elements: primary key, qualifiers, then
/// query-string attributes in their order.
pub fn parse_digital_link(uri: &[u8], cfg: &Gs1Config) -> Result<Vec<Element>, DecodeError> {
    let rest = [&b"https://"[..], b"http://", b"HTTPS://", b"HTTP://"]
        .iter()
        .find_map(|p| uri.strip_prefix(*p))
        .ok_or_else(|| {
            dl_err("scheme must be http:// or https:// in all lower or all upper case")
        })?;
    if let Some((pos, &c)) = uri.iter().enumerate().find(|(_, &c)| !uri_char(c)) {
        return Err(dl_err(format!(
            "illegal character {:?} at position {pos}",
            char::from(c)
        )));
    }
    // The fragment is not part of the identifier.
    let rest = rest.split(|&c| c == b'#').next().unwrap_or_default();
    let (path_part, query) = match rest.iter().position(|&c| c == b'?') {
        Some(q) => (rest.get(..q).unwrap_or_default(), rest.get(q + 1..)),
        None => (rest, None),
    };
    let slash = path_part
        .iter()
        .position(|&c| c == b'/')
        .ok_or_else(|| dl_err("no path"))?;
    if slash == 0 {
        return Err(dl_err("empty host"));
    }
    let path = path_part.get(slash + 1..).unwrap_or_default();
    if path.last() == Some(&b'/') {
        return Err(dl_err("path may not end in '/'"));
    }
    let segs: Vec<&[u8]> = path.split(|&c| c == b'/').collect();

    // Walk pairs from the right: qualifiers first, then the primary key; anything
    // before the primary key is the resolver's path prefix and is ignored.
    let mut quals: Vec<(&[u8], &[u8])> = Vec::new();
    let mut i = segs.len();
    let mut primary: Option<(&[u8], &[u8], Chains)> = None;
    while i >= 2 {
        let (Some(&ai), Some(&val)) = (segs.get(i - 2), segs.get(i - 1)) else {
            break;
        };
        if let Some((_, chains)) = PRIMARY.iter().find(|(p, _)| p.as_bytes() == ai) {
            primary = Some((ai, val, chains));
            break;
        }
        if QUALIFIERS.iter().any(|q| q.as_bytes() == ai) {
            quals.insert(0, (ai, val));
            i -= 2;
        } else {
            break;
        }
    }
    let (pk, pv, chains) =
        primary.ok_or_else(|| dl_err("no primary key AI (e.g. /01/{gtin}) in the path"))?;
    let order_ok = quals.is_empty()
        || chains.iter().any(|chain| {
            let mut it = chain.iter();
            quals.iter().all(|(q, _)| it.any(|c| c.as_bytes() == *q))
        });
    if !order_ok {
        let list: Vec<String> = quals
            .iter()
            .map(|(q, _)| String::from_utf8_lossy(q).into_owned())
            .collect();
        return Err(dl_err(format!(
            "qualifiers /{}/ not allowed after primary key {} in this order",
            list.join("/…/"),
            String::from_utf8_lossy(pk)
        )));
    }

    let mut out = Vec::with_capacity(2 + quals.len());
    let mut buf = Vec::with_capacity(32);
    let mut pv_dec = percent_decode(pv, false, &mut buf)?.to_vec();
    if pk == b"01"
        && matches!(pv_dec.len(), 8 | 12 | 13)
        && cfg.dl_zero_suppressed_gtin
        && pv_dec.iter().all(u8::is_ascii_digit)
    {
        let mut padded = vec![b'0'; 14 - pv_dec.len()];
        padded.extend_from_slice(&pv_dec);
        pv_dec = padded;
    }
    add(&mut out, pk, &pv_dec)?;
    for (q, v) in &quals {
        let v = percent_decode(v, false, &mut buf)?;
        add(&mut out, q, v)?;
    }
    if let Some(query) = query {
        for param in query.split(|&c| c == b'&') {
            let Some(eq) = param.iter().position(|&c| c == b'=') else {
                continue; // singletons are ignored
            };
            let (k, v) = (
                param.get(..eq).unwrap_or_default(),
                param.get(eq + 1..).unwrap_or_default(),
            );
            if k.is_empty() || !k.iter().all(u8::is_ascii_digit) {
                continue; // non-AI parameters are ignored
            }
            if v.is_empty() {
                return Err(dl_err(format!(
                    "empty value for AI ({})",
                    String::from_utf8_lossy(k)
                )));
            }
            let v = percent_decode(v, true, &mut buf)?;
            add(&mut out, k, v)?;
        }
    }
    Ok(out)
}

fn add(out: &mut Vec<Element>, ai: &[u8], value: &[u8]) -> Result<(), DecodeError> {
    let def = ai_table::lookup_exact(ai)
        .ok_or_else(|| DecodeError::UnknownAi(String::from_utf8_lossy(ai).into_owned()))?;
    element::validate_value(ai, def, value)?;
    element::push(out, ai, value)
}

/// Characters allowed in a URI (RFC 3986 unreserved, reserved and `%`).
fn uri_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&c)
}

/// Percent-decode; in the query string `+` means space (then rejected by CSET 82).
fn percent_decode<'a>(
    s: &[u8],
    plus_is_space: bool,
    buf: &'a mut Vec<u8>,
) -> Result<&'a [u8], DecodeError> {
    buf.clear();
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        match c {
            b'%' => {
                let h = |j: usize| s.get(j).and_then(|&d| char::from(d).to_digit(16));
                let (Some(hi), Some(lo)) = (h(i + 1), h(i + 2)) else {
                    return Err(dl_err(format!("bad percent-escape at position {i}")));
                };
                buf.push(u8::try_from(hi * 16 + lo).unwrap_or(0));
                i += 3;
            }
            b'+' if plus_is_space => {
                buf.push(b' ');
                i += 1;
            }
            _ => {
                buf.push(c);
                i += 1;
            }
        }
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dl(s: &str) -> Result<Vec<(String, String)>, DecodeError> {
        parse_digital_link(s.as_bytes(), &Gs1Config::default())
            .map(|v| v.into_iter().map(|e| (e.ai, e.value)).collect())
    }
    fn p(x: &[(&str, &str)]) -> Vec<(String, String)> {
        x.iter()
            .map(|(a, v)| ((*a).to_owned(), (*v).to_owned()))
            .collect()
    }

    // TV-DL-01..18 / DL-1..17: gs1/gs1-syntax-engine src/c-lib/dl.c test_dl_parseDLuri.
    #[test]
    fn tv_dl_parse_vectors() {
        assert_eq!(
            dl("https://id.gs1.org/01/09520123456788").unwrap(),
            p(&[("01", "09520123456788")])
        );
        assert_eq!(
            dl("https://id.gs1.org/01/09520123456788/10/ABC123").unwrap(),
            p(&[("01", "09520123456788"), ("10", "ABC123")])
        );
        assert_eq!(
            dl("https://id.gs1.org/01/09520123456788/21/12345").unwrap(),
            p(&[("01", "09520123456788"), ("21", "12345")])
        );
        assert_eq!(
            dl("https://id.gs1.org/01/09520123456788/10/ABC1/21/12345?17=180426").unwrap(),
            p(&[
                ("01", "09520123456788"),
                ("10", "ABC1"),
                ("21", "12345"),
                ("17", "180426")
            ])
        );
        assert_eq!(
            dl("https://id.gs1.org/01/09520123456788/22/2A").unwrap(),
            p(&[("01", "09520123456788"), ("22", "2A")])
        );
        assert_eq!(
            dl("https://example.com/01/09520123456788?3103=000195&3922=0299&17=201225").unwrap(),
            p(&[
                ("01", "09520123456788"),
                ("3103", "000195"),
                ("3922", "0299"),
                ("17", "201225")
            ])
        );
        assert_eq!(
            dl("https://a/01/12312312312333/22/TEST/10/ABC/21/XYZ").unwrap(),
            p(&[
                ("01", "12312312312333"),
                ("22", "TEST"),
                ("10", "ABC"),
                ("21", "XYZ")
            ])
        );
        assert_eq!(
            dl("https://a/01/12312312312333/22/ABC%2d123?99=ABC&98=XYZ%2f987").unwrap(),
            p(&[
                ("01", "12312312312333"),
                ("22", "ABC-123"),
                ("99", "ABC"),
                ("98", "XYZ/987")
            ])
        );
        assert_eq!(
            dl("https://a/01/12312312312333/22/ABC+123?99=ABC&98=XYZ%2f987").unwrap(),
            p(&[
                ("01", "12312312312333"),
                ("22", "ABC+123"),
                ("99", "ABC"),
                ("98", "XYZ/987")
            ])
        );
        assert!(dl("https://a/01/12312312312333/22/ABC%2d123?99=ABC&98=XYZ+987").is_err());
        assert_eq!(
            dl("https://a/stem/00/006141411234567890?99=ABC").unwrap(),
            p(&[("00", "006141411234567890"), ("99", "ABC")])
        );
        assert_eq!(
            dl("https://a/01/12312312312333/22/test/10/abc/21/xyz#fragment").unwrap(),
            p(&[
                ("01", "12312312312333"),
                ("22", "test"),
                ("10", "abc"),
                ("21", "xyz")
            ])
        );
        assert_eq!(
            dl("https://a/01/12312312312333?99=ABC&unknown=666&98=XYZ").unwrap(),
            p(&[("01", "12312312312333"), ("99", "ABC"), ("98", "XYZ")])
        );
        assert!(dl("https://a/01/12312312312333?99=").is_err());
        assert!(dl("HtTp://a/b/00/006141411234567890").is_err());
        assert!(dl("HTTP://a/b/00/006141411234567890").is_ok());
        assert!(dl("http://a/b/00/006141411234567890").is_ok());
        for bad in ["<bad", ">", "{", "}", "\\", "^", "`"] {
            assert!(
                dl(&format!("https://a/01/12312312312333{bad}")).is_err(),
                "{bad}"
            );
        }
        assert!(dl("https://a/stem/00/006141411234567890/").is_err());
        assert!(dl("https://a/NOPRIMARYAI").is_err());
    }

    // DL-8, DL-9, DL-12, DL-17 (dl.c).
    #[test]
    fn dl_more_vectors() {
        assert_eq!(
            dl("https://a/00/faux/00/006141411234567890").unwrap(),
            p(&[("00", "006141411234567890")])
        );
        assert_eq!(
            dl("https://a/stem/401/12345678?99=ABC").unwrap(),
            p(&[("401", "12345678"), ("99", "ABC")])
        );
        assert!(dl("https://a/01/12312312312333?99=ABC&999=faux").is_err());
        assert_eq!(
            dl("https://id.gs1.org/414/9520123456788/254/32a%2Fb").unwrap(),
            p(&[("414", "9520123456788"), ("254", "32a/b")])
        );
    }

    // TV-DL-17 / DL-15: zero-suppressed GTIN in the path, accepted and padded by default.
    #[test]
    fn tv_dl_17_zero_suppressed_gtin() {
        assert_eq!(
            dl("https://brand.example.com/01/9520123456788").unwrap(),
            p(&[("01", "09520123456788")])
        );
        let strict = Gs1Config {
            dl_zero_suppressed_gtin: false,
            ..Gs1Config::default()
        };
        assert!(parse_digital_link(b"https://a/01/2112345678900", &strict).is_err());
    }

    #[test]
    fn qualifier_order_and_errors() {
        assert!(dl("https://a/01/12312312312333/21/XYZ/10/ABC").is_err());
        assert!(dl("https://a/01/12312312312333/10/A%2").is_err());
        assert!(dl("https://a/01/12312312312334").is_err());
        assert!(dl("https://a/01/12312312312333?10=A&10=B").is_err());
        assert!(dl("https:///01/12312312312333").is_err());
        assert!(dl("https://a").is_err());
    }
}
