//! EPC binary from UHF tags (GS1 EPC Tag Data Standard): SGTIN-96, SSCC-96, GID-96.
//! Any other header is reported as `epc-unknown` with the raw hex (not an error: a fresh
//! tag still carrying its factory EPC is normal on a shop floor).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::error::DecodeError;
use crate::gs1::check_digit;
use crate::{Decoded, Scheme};

/// Company-prefix bits/digits and second-field bits/digits per partition (SGTIN item
/// reference; SSCC serial reference). TDS tables 14-2 and 14-5.
const SGTIN_PARTITIONS: [(u32, usize, u32, usize); 7] = [
    (40, 12, 4, 1),
    (37, 11, 7, 2),
    (34, 10, 10, 3),
    (30, 9, 14, 4),
    (27, 8, 17, 5),
    (24, 7, 20, 6),
    (20, 6, 24, 7),
];
const SSCC_PARTITIONS: [(u32, usize, u32, usize); 7] = [
    (40, 12, 18, 5),
    (37, 11, 21, 6),
    (34, 10, 24, 7),
    (30, 9, 28, 8),
    (27, 8, 31, 9),
    (24, 7, 34, 10),
    (20, 6, 38, 11),
];

fn epc_err(msg: impl Into<String>) -> DecodeError {
    DecodeError::Epc(msg.into())
}

/// Decode an EPC given as binary (an RFID reader's EPC bytes, MSB first).
pub fn decode_epc(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let header = *bytes.first().ok_or_else(|| epc_err("no bytes"))?;
    match header {
        0x30 | 0x31 | 0x35 => {
            let b: [u8; 12] = bytes.try_into().map_err(|_| {
                epc_err(format!(
                    "header 0x{header:02X} is a 96-bit scheme but the EPC has {} bytes, expected 12",
                    bytes.len()
                ))
            })?;
            let v = u128::from_be_bytes({
                let mut w = [0u8; 16];
                w[4..].copy_from_slice(&b);
                w
            });
            match header {
                0x30 => sgtin96(v),
                0x31 => sscc96(v),
                _ => Ok(gid96(v)),
            }
        }
        _ => unknown(bytes),
    }
}

/// Decode an EPC given as hex text (RFID readers in ASCII mode), either case.
pub fn decode_epc_hex(text: &[u8]) -> Result<Decoded, DecodeError> {
    if text.len() % 2 != 0 {
        return Err(epc_err(format!(
            "odd number of hex digits ({})",
            text.len()
        )));
    }
    let mut bytes = Vec::with_capacity(text.len() / 2);
    for (i, pair) in text.chunks_exact(2).enumerate() {
        let h = |c: u8| char::from(c).to_digit(16);
        match pair {
            [a, b] => match (h(*a), h(*b)) {
                (Some(hi), Some(lo)) => bytes.push(u8::try_from(hi * 16 + lo).unwrap_or(0)),
                _ => return Err(epc_err(format!("non-hex character at position {}", 2 * i))),
            },
            _ => return Err(epc_err("odd number of hex digits")),
        }
    }
    decode_epc(&bytes)
}

/// Bits [start, start+len) of a 96-bit value held in the low 96 bits of `v`.
fn bits(v: u128, start: u32, len: u32) -> u64 {
    let shift = 96 - start - len;
    ((v >> shift) & ((1u128 << len) - 1)) as u64
}

fn padded(value: u64, digits: usize, what: &str) -> Result<String, DecodeError> {
    let s = format!("{value:0digits$}");
    if s.len() > digits {
        return Err(epc_err(format!(
            "{what} {value} does not fit {digits} digits"
        )));
    }
    Ok(s)
}

fn sgtin96(v: u128) -> Result<Decoded, DecodeError> {
    let filter = bits(v, 8, 3);
    let partition = bits(v, 11, 3);
    let &(cbits, cdigits, ibits, idigits) = SGTIN_PARTITIONS
        .get(partition as usize)
        .ok_or_else(|| epc_err(format!("invalid SGTIN partition {partition}")))?;
    let company = padded(bits(v, 14, cbits), cdigits, "company prefix")?;
    let item = padded(bits(v, 14 + cbits, ibits), idigits, "item reference")?;
    let serial = bits(v, 58, 38);
    // GTIN-14 = indicator digit (first of item reference) + company prefix + rest + check.
    let (indicator, rest) = item.split_at(1);
    let mut gtin = String::with_capacity(14);
    gtin.push_str(indicator);
    gtin.push_str(&company);
    gtin.push_str(rest);
    let cd = check_digit(gtin.as_bytes()).ok_or_else(|| epc_err("GTIN not numeric"))?;
    gtin.push(char::from(cd));
    let uri = format!("urn:epc:id:sgtin:{company}.{item}.{serial}");
    let key = format!("(01){gtin}(21){serial}");
    let mut fields = BTreeMap::new();
    fields.insert("gtin".to_owned(), gtin);
    fields.insert("serial".to_owned(), serial.to_string());
    fields.insert("uri".to_owned(), uri);
    fields.insert("filter".to_owned(), filter.to_string());
    Ok(Decoded {
        scheme: Scheme::EpcSgtin,
        key,
        fields,
        symbology: None,
    })
}

fn sscc96(v: u128) -> Result<Decoded, DecodeError> {
    let filter = bits(v, 8, 3);
    let partition = bits(v, 11, 3);
    let &(cbits, cdigits, sbits, sdigits) = SSCC_PARTITIONS
        .get(partition as usize)
        .ok_or_else(|| epc_err(format!("invalid SSCC partition {partition}")))?;
    let company = padded(bits(v, 14, cbits), cdigits, "company prefix")?;
    let serial_ref = padded(bits(v, 14 + cbits, sbits), sdigits, "serial reference")?;
    // SSCC = extension digit (first of serial reference) + company prefix + rest + check.
    let (ext, rest) = serial_ref.split_at(1);
    let mut sscc = String::with_capacity(18);
    sscc.push_str(ext);
    sscc.push_str(&company);
    sscc.push_str(rest);
    let cd = check_digit(sscc.as_bytes()).ok_or_else(|| epc_err("SSCC not numeric"))?;
    sscc.push(char::from(cd));
    let mut fields = BTreeMap::new();
    fields.insert(
        "uri".to_owned(),
        format!("urn:epc:id:sscc:{company}.{serial_ref}"),
    );
    fields.insert("filter".to_owned(), filter.to_string());
    let key = format!("(00){sscc}");
    fields.insert("sscc".to_owned(), sscc);
    Ok(Decoded {
        scheme: Scheme::EpcSscc,
        key,
        fields,
        symbology: None,
    })
}

fn gid96(v: u128) -> Decoded {
    let (manager, class, serial) = (bits(v, 8, 28), bits(v, 36, 24), bits(v, 60, 36));
    let uri = format!("urn:epc:id:gid:{manager}.{class}.{serial}");
    let mut fields = BTreeMap::new();
    fields.insert("manager".to_owned(), manager.to_string());
    fields.insert("class".to_owned(), class.to_string());
    fields.insert("serial".to_owned(), serial.to_string());
    fields.insert("uri".to_owned(), uri.clone());
    Decoded {
        scheme: Scheme::EpcGid,
        key: uri,
        fields,
        symbology: None,
    }
}

/// Unknown header: key is the TDS raw URI `urn:epc:raw:{bits}.x{HEX}`.
fn unknown(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    // Gen2 EPC lengths are whole 16-bit words, up to 496 bits.
    if bytes.len() % 2 != 0 || bytes.len() > 62 {
        return Err(epc_err(format!(
            "{} bytes is not an EPC length (whole 16-bit words, at most 62 bytes)",
            bytes.len()
        )));
    }
    let mut hex = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(hex, "{b:02X}");
    }
    let mut fields = BTreeMap::new();
    fields.insert(
        "header".to_owned(),
        hex.get(..2).unwrap_or_default().to_owned(),
    );
    let key = format!("urn:epc:raw:{}.x{hex}", bytes.len() * 8);
    fields.insert("hex".to_owned(), hex);
    Ok(Decoded {
        scheme: Scheme::EpcUnknown,
        key,
        fields,
        symbology: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Decoded {
        decode_epc_hex(s.as_bytes()).unwrap()
    }

    // TV-EPC-01 / E1: GS1 EPC Tag Data Standard worked example (SGTIN-96).
    #[test]
    fn tv_epc_01_tds_sgtin96() {
        let d = hex("3074257BF7194E4000001A85");
        assert_eq!(d.scheme, Scheme::EpcSgtin);
        assert_eq!(d.fields["gtin"], "80614141123458");
        assert_eq!(d.fields["serial"], "6789");
        assert_eq!(d.fields["uri"], "urn:epc:id:sgtin:0614141.812345.6789");
        assert_eq!(d.fields["filter"], "3");
        assert_eq!(d.key, "(01)80614141123458(21)6789");
    }

    // TV-EPC-02 / E7 (pyepc tag URI), TV-EPC-03 / E8 (MagicRF sample frame).
    #[test]
    fn tv_epc_02_03() {
        let d = hex("3034257BF7194E4000003039");
        assert_eq!(
            (d.fields["filter"].as_str(), d.fields["serial"].as_str()),
            ("1", "12345")
        );
        assert_eq!(d.fields["gtin"], "80614141123458");
        let d = hex("30751FEB705C5904E3D50D70");
        assert_eq!(d.fields["gtin"], "04717276945640");
        assert_eq!(
            d.fields["uri"],
            "urn:epc:id:sgtin:4717276.094564.21002259824"
        );
    }

    // E4 (gs1 crate tests/test_epc.rs), E5 (PyPI tag-data-translation README), E11 (max serial).
    #[test]
    fn e4_e5_e11_more_sgtins() {
        let d = hex("30396062C3A1A800006B33F4");
        assert_eq!(d.fields["gtin"], "03608439519680");
        assert_eq!(d.key, "(01)03608439519680(21)7025652");
        let d = hex("30340242201D8840009EFDF7");
        assert_eq!(d.fields["gtin"], "00037000302414");
        assert_eq!(d.fields["serial"], "10419703");
        let d = hex("3074257BF7194E7FFFFFFFFF");
        assert_eq!(d.fields["serial"], "274877906943");
    }

    // TV-EPC-04 / E3 (TDS SSCC-96), E12 (sergiss/epc-tds examples.js input).
    #[test]
    fn tv_epc_04_sscc96() {
        let d = hex("3174257BF4499602D2000000");
        assert_eq!(d.scheme, Scheme::EpcSscc);
        assert_eq!(d.fields["sscc"], "106141412345678908");
        assert_eq!(d.fields["uri"], "urn:epc:id:sscc:0614141.1234567890");
        assert_eq!(d.key, "(00)106141412345678908");
        assert_eq!(
            hex("317A7202CC164BA20B000000").fields["sscc"],
            "564103519136629878"
        );
    }

    // TV-EPC-05 (derived by TDS rules), E6 (gs1 crate tests): GID-96.
    #[test]
    fn tv_epc_05_gid96() {
        let d = hex("355AB1C60003039000000190");
        assert_eq!(d.scheme, Scheme::EpcGid);
        assert_eq!(d.key, "urn:epc:id:gid:95100000.12345.400");
        assert_eq!(
            hex("35000007B0001C8000000315").key,
            "urn:epc:id:gid:123.456.789"
        );
    }

    // TV-EPC-06 / E9 / E10: invalid partition, unknown header, wrong lengths.
    #[test]
    fn tv_epc_06_invalid_and_unknown() {
        let e = decode_epc_hex(b"301C00000000000000000000").unwrap_err();
        assert_eq!(e.to_string(), "EPC: invalid SGTIN partition 7");
        assert!(decode_epc_hex(b"307C00000000000000000000").is_err());
        let d = hex("e2801160600002054c7a2b3c");
        assert_eq!(d.scheme, Scheme::EpcUnknown);
        assert_eq!(d.key, "urn:epc:raw:96.xE2801160600002054C7A2B3C");
        assert_eq!(d.fields["hex"], "E2801160600002054C7A2B3C");
        assert_eq!(d.fields["header"], "E2");
        assert_eq!(hex("E200001D7315016521408FC6").scheme, Scheme::EpcUnknown);
        assert!(decode_epc(&[0x30; 11]).is_err());
        assert!(decode_epc(&[0x30; 13]).is_err());
        assert!(decode_epc(&[0xE2; 11]).is_err());
        assert!(decode_epc(&[]).is_err());
        assert!(decode_epc_hex(b"30G4257BF7194E4000001A85").is_err());
    }

    #[test]
    fn company_prefix_that_does_not_fit_is_rejected() {
        // Partition 5 (7 digits) with all-ones company prefix bits = 16777215 > 9999999.
        let e = decode_epc_hex(b"3077FFFFFC00000000000001").unwrap_err();
        assert!(e.to_string().contains("company prefix"), "{e}");
    }
}
