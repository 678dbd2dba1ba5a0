//! GS1 Application Identifier table (subset of the GS1 Barcode Syntax Dictionary,
//! release 2026-01-27): format components and the "predefined length" flag.
//!
//! The predefined-length set (no FNC1 needed after the AI) is fixed by AI prefix —
//! 00-04, 11-20, 31-36, 41 — and is NOT "every fixed-length AI" (7003, 8006 and 8111
//! are fixed-length but still need a separator).

/// Character set of a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cset {
    /// Digits.
    N,
    /// GS1 AI encodable character set 82.
    X,
    /// GS1 AI encodable character set 39 (`# - /`, digits, upper case).
    Y,
}

/// Extra validation of a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// None beyond the character set.
    Plain,
    /// Last digit is a GS1 mod-10 check digit.
    Csum,
    /// YYMMDD, day 01..
    Date,
    /// YYMMDD where DD may be 00 ("end of month").
    DateD0,
    /// HHMI.
    Hhmi,
}

/// One component of an AI's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Comp {
    /// Character set.
    pub cset: Cset,
    /// Minimum length.
    pub min: u8,
    /// Maximum length (== min for fixed).
    pub max: u8,
    /// Extra validation.
    pub check: Check,
}

/// An Application Identifier definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AiDef {
    /// The AI (for families like 310n the table row, with `n` as the last character).
    pub ai: &'static str,
    /// Short title (GS1 data title).
    pub title: &'static str,
    /// Components in order; only the last may be variable-length.
    pub comps: &'static [Comp],
}

impl AiDef {
    /// Total minimum and maximum length of the value.
    pub fn len_range(&self) -> (usize, usize) {
        self.comps.iter().fold((0, 0), |(a, b), c| {
            (a + usize::from(c.min), b + usize::from(c.max))
        })
    }
    /// Whether every component has a fixed length.
    pub fn fixed(&self) -> bool {
        self.comps.iter().all(|c| c.min == c.max)
    }
}

/// Whether an AI is in GS1's predefined-length list (by its first two digits).
pub fn predefined(ai: &[u8]) -> bool {
    matches!(
        ai,
        [b'0', b'0'..=b'4', ..]
            | [b'1', b'1'..=b'9', ..]
            | [b'2', b'0', ..]
            | [b'3', b'1'..=b'6', ..]
            | [b'4', b'1', ..]
    )
}

const fn n(len: u8) -> Comp {
    Comp {
        cset: Cset::N,
        min: len,
        max: len,
        check: Check::Plain,
    }
}
const fn nc(len: u8) -> Comp {
    Comp {
        cset: Cset::N,
        min: len,
        max: len,
        check: Check::Csum,
    }
}
const fn nv(max: u8) -> Comp {
    Comp {
        cset: Cset::N,
        min: 1,
        max,
        check: Check::Plain,
    }
}
const fn xv(max: u8) -> Comp {
    Comp {
        cset: Cset::X,
        min: 1,
        max,
        check: Check::Plain,
    }
}
const fn x0(max: u8) -> Comp {
    Comp {
        cset: Cset::X,
        min: 0,
        max,
        check: Check::Plain,
    }
}
const fn x(len: u8) -> Comp {
    Comp {
        cset: Cset::X,
        min: len,
        max: len,
        check: Check::Plain,
    }
}
const DATE: Comp = Comp {
    cset: Cset::N,
    min: 6,
    max: 6,
    check: Check::Date,
};
const DATE0: Comp = Comp {
    cset: Cset::N,
    min: 6,
    max: 6,
    check: Check::DateD0,
};
const HHMI: Comp = Comp {
    cset: Cset::N,
    min: 4,
    max: 4,
    check: Check::Hhmi,
};

const fn ai(ai: &'static str, title: &'static str, comps: &'static [Comp]) -> AiDef {
    AiDef { ai, title, comps }
}

/// Sorted by AI (string order) for binary search. Families with a decimal-point digit
/// are looked up with the last digit replaced by `n`.
static TABLE: &[AiDef] = &[
    ai("00", "SSCC", &[nc(18)]),
    ai("01", "GTIN", &[nc(14)]),
    ai("02", "CONTENT", &[nc(14)]),
    ai("03", "MTO GTIN", &[nc(14)]),
    ai("10", "BATCH/LOT", &[xv(20)]),
    ai("11", "PROD DATE", &[DATE0]),
    ai("12", "DUE DATE", &[DATE0]),
    ai("13", "PACK DATE", &[DATE0]),
    ai("15", "BEST BEFORE or BEST BY", &[DATE0]),
    ai("16", "SELL BY", &[DATE]),
    ai("17", "USE BY or EXPIRY", &[DATE0]),
    ai("20", "VARIANT", &[n(2)]),
    ai("21", "SERIAL", &[xv(20)]),
    ai("22", "CPV", &[xv(20)]),
    ai("235", "TPX", &[xv(28)]),
    ai("240", "ADDITIONAL ID", &[xv(30)]),
    ai("241", "CUST. PART No.", &[xv(30)]),
    ai("242", "MTO VARIANT", &[nv(6)]),
    ai("243", "PCN", &[xv(20)]),
    ai("250", "SECONDARY SERIAL", &[xv(30)]),
    ai("251", "REF. TO SOURCE", &[xv(30)]),
    ai("253", "GDTI", &[nc(13), x0(17)]),
    ai("254", "GLN EXTENSION COMPONENT", &[xv(20)]),
    ai(
        "255",
        "GCN",
        &[
            nc(13),
            Comp {
                cset: Cset::N,
                min: 0,
                max: 12,
                check: Check::Plain,
            },
        ],
    ),
    ai("30", "VAR. COUNT", &[nv(8)]),
    ai("37", "COUNT", &[nv(8)]),
    ai("390n", "AMOUNT", &[nv(15)]),
    ai("391n", "AMOUNT", &[n(3), nv(15)]),
    ai("392n", "PRICE", &[nv(15)]),
    ai("393n", "PRICE", &[n(3), nv(15)]),
    ai("394n", "PRCNT OFF", &[n(4)]),
    ai("395n", "PRICE/UoM", &[n(6)]),
    ai("400", "ORDER NUMBER", &[xv(30)]),
    ai("401", "GINC", &[xv(30)]),
    ai("402", "GSIN", &[nc(17)]),
    ai("403", "ROUTE", &[xv(30)]),
    ai("410", "SHIP TO LOC", &[nc(13)]),
    ai("411", "BILL TO", &[nc(13)]),
    ai("412", "PURCHASE FROM", &[nc(13)]),
    ai("413", "SHIP FOR LOC", &[nc(13)]),
    ai("414", "LOC No.", &[nc(13)]),
    ai("415", "PAY TO", &[nc(13)]),
    ai("416", "PROD/SERV LOC", &[nc(13)]),
    ai("417", "PARTY", &[nc(13)]),
    ai("420", "SHIP TO POST", &[xv(20)]),
    ai("421", "SHIP TO POST", &[n(3), xv(9)]),
    ai("422", "ORIGIN", &[n(3)]),
    ai("7001", "NSN", &[n(13)]),
    ai("7002", "MEAT CUT", &[xv(30)]),
    ai("7003", "EXPIRY TIME", &[DATE, HHMI]),
    ai("7004", "ACTIVE POTENCY", &[nv(4)]),
    ai("7006", "FIRST FREEZE DATE", &[DATE]),
    ai("7009", "FISHING GEAR TYPE", &[xv(10)]),
    ai("7010", "PROD METHOD", &[xv(2)]),
    ai("7020", "REFURB LOT", &[xv(20)]),
    ai("7021", "FUNC STAT", &[xv(20)]),
    ai("7022", "REV STAT", &[xv(20)]),
    ai("7023", "GIAI - ASSEMBLY", &[xv(30)]),
    ai("7040", "UIC+EXT", &[n(1), x(3)]),
    ai("7240", "PROTOCOL", &[xv(20)]),
    ai("8001", "DIMENSIONS", &[n(14)]),
    ai("8002", "CMT No.", &[xv(20)]),
    ai("8003", "GRAI", &[n(1), nc(13), x0(16)]),
    ai("8004", "GIAI", &[xv(30)]),
    ai("8005", "PRICE PER UNIT", &[n(6)]),
    ai("8006", "ITIP", &[nc(14), n(2), n(2)]),
    ai("8007", "IBAN", &[xv(34)]),
    ai(
        "8008",
        "PROD TIME",
        &[
            n(8),
            Comp {
                cset: Cset::N,
                min: 0,
                max: 4,
                check: Check::Plain,
            },
        ],
    ),
    ai(
        "8010",
        "CPID",
        &[Comp {
            cset: Cset::Y,
            min: 1,
            max: 30,
            check: Check::Plain,
        }],
    ),
    ai("8011", "CPID SERIAL", &[nv(12)]),
    ai("8012", "VERSION", &[xv(20)]),
    ai("8013", "GMN", &[xv(25)]),
    ai("8017", "GSRN - PROVIDER", &[nc(18)]),
    ai("8018", "GSRN - RECIPIENT", &[nc(18)]),
    ai("8019", "SRIN", &[nv(10)]),
    ai("8020", "REF No.", &[xv(25)]),
    ai("8026", "ITIP CONTENT", &[nc(14), n(2), n(2)]),
    ai("8110", "COUPON", &[xv(70)]),
    ai("8111", "POINTS", &[n(4)]),
    ai("8112", "PAPERLESS COUPON", &[xv(70)]),
    ai("8200", "PRODUCT URL", &[xv(70)]),
    ai("90", "INTERNAL", &[xv(30)]),
    ai("91", "INTERNAL", &[xv(90)]),
    ai("92", "INTERNAL", &[xv(90)]),
    ai("93", "INTERNAL", &[xv(90)]),
    ai("94", "INTERNAL", &[xv(90)]),
    ai("95", "INTERNAL", &[xv(90)]),
    ai("96", "INTERNAL", &[xv(90)]),
    ai("97", "INTERNAL", &[xv(90)]),
    ai("98", "INTERNAL", &[xv(90)]),
    ai("99", "INTERNAL", &[xv(90)]),
];

/// Trade measures 31nn-36nn: N6 with the decimal-point position as the 4th digit (0-5).
static MEASURE: AiDef = ai("3nnn", "MEASURE", &[n(6)]);

/// Length of the AI that starts with these two digits, if any AI does.
fn ai_len(d0: u8, d1: u8) -> Option<usize> {
    match (d0, d1) {
        (b'0', b'0'..=b'3') | (b'1', b'0'..=b'7') | (b'2', b'0'..=b'2') => Some(2),
        (b'2', b'3'..=b'5') => Some(3),
        (b'3', b'0') | (b'3', b'7') => Some(2),
        (b'3', b'1'..=b'6') | (b'3', b'9') => Some(4),
        (b'4', b'0'..=b'2') => Some(3),
        (b'7', b'0'..=b'2') | (b'8', b'0'..=b'2') => Some(4),
        (b'9', _) => Some(2),
        _ => None,
    }
}

/// Whether a 31nn-36nn AI is a trade measure GS1 defines.
fn measure_ok(ai: &[u8]) -> bool {
    let (Some(&c), Some(&d)) = (ai.get(2), ai.get(3)) else {
        return false;
    };
    let family_ok = match ai.get(1) {
        Some(b'1') => (b'0'..=b'6').contains(&c),
        Some(b'2') | Some(b'4') | Some(b'6') => c.is_ascii_digit(),
        Some(b'3') => (b'0'..=b'7').contains(&c),
        Some(b'5') => (b'0'..=b'7').contains(&c),
        _ => false,
    };
    family_ok && (b'0'..=b'5').contains(&d)
}

/// Find the AI at the start of `data`: returns its length and definition.
pub fn lookup_prefix(data: &[u8]) -> Option<(usize, &'static AiDef)> {
    let (&d0, &d1) = (data.first()?, data.get(1)?);
    let len = ai_len(d0, d1)?;
    let ai = data.get(..len)?;
    if !ai.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if len == 4 && d0 == b'3' && (b'1'..=b'6').contains(&d1) {
        return measure_ok(ai).then_some((4, &MEASURE));
    }
    let mut key = [0u8; 4];
    key.get_mut(..len)?.copy_from_slice(ai);
    if len == 4 && d0 == b'3' && d1 == b'9' {
        key[3] = b'n';
        let limit = match ai.get(2) {
            Some(b'4') => b'3',
            Some(b'5') => b'5',
            _ => b'9',
        };
        if ai.get(3).is_none_or(|&d| d > limit) {
            return None;
        }
    }
    let key = key.get(..len)?;
    TABLE
        .binary_search_by(|row| row.ai.as_bytes().cmp(key))
        .ok()
        .and_then(|i| TABLE.get(i))
        .map(|def| (len, def))
}

/// Find an AI given exactly (bracketed form, Digital Link path/query keys).
pub fn lookup_exact(ai: &[u8]) -> Option<&'static AiDef> {
    match lookup_prefix(ai) {
        Some((len, def)) if len == ai.len() => Some(def),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_for_binary_search() {
        assert!(TABLE.windows(2).all(|w| w[0].ai < w[1].ai));
    }

    #[test]
    fn every_row_is_reachable_and_variable_only_last() {
        for row in TABLE {
            let probe = row.ai.replace('n', "2");
            let found = lookup_exact(probe.as_bytes());
            assert_eq!(found.map(|d| d.ai), Some(row.ai), "{}", row.ai);
            let (last, init) = row.comps.split_last().unwrap();
            assert!(init.iter().all(|c| c.min == c.max), "{}", row.ai);
            let _ = last;
        }
    }

    #[test]
    fn issue_ai_list_present() {
        for a in [
            "00", "01", "02", "10", "11", "13", "15", "17", "21", "240", "241", "250", "30", "37",
            "400", "401", "410", "411", "412", "413", "414", "415", "420", "7003", "8004", "8006",
        ] {
            assert!(lookup_exact(a.as_bytes()).is_some(), "{a}");
        }
        assert_eq!(lookup_exact(b"3103").map(|d| d.ai), Some("3nnn"));
        assert!(lookup_exact(b"3106").is_none());
        assert!(lookup_exact(b"3922").is_some());
        assert!(lookup_exact(b"999").is_none());
        assert!(lookup_exact(b"89").is_none());
    }

    #[test]
    fn predefined_list_is_by_prefix_not_by_fixed_length() {
        assert!(
            predefined(b"01") && predefined(b"11") && predefined(b"3103") && predefined(b"414")
        );
        assert!(!predefined(b"7003") && !predefined(b"8006") && !predefined(b"8111"));
        assert!(!predefined(b"10") && !predefined(b"21"));
    }
}
