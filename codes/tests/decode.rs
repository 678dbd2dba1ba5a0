//! End-to-end tests of `decode`: published scan-data vectors, detection order, the
//! canonical key across carriers, and the JSON shape the CLI prints.

use bobbin_codes::{decode, DecodeConfig, DecodeError, Decoded, Scheme};

fn dec(s: &str) -> Result<Decoded, DecodeError> {
    decode(s.as_bytes(), None, &DecodeConfig::default())
}
fn ok(s: &str) -> Decoded {
    dec(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}
fn ais(d: &Decoded) -> Vec<(&str, &str)> {
    d.fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

// TV-GS1-05/09/10, SD-1..3 (gs1-syntax-engine scandata.c test_scandata_processScanData).
#[test]
fn tv_gs1_05_09_10_gs1_carriers() {
    for aim in ["]C1", "]Q3", "]d2"] {
        let d = ok(&format!("{aim}011231231231233310ABC123\u{1d}99TESTING"));
        assert_eq!(d.scheme, Scheme::Gs1);
        assert_eq!(d.symbology.as_deref(), Some(aim));
        assert_eq!(
            ais(&d),
            vec![
                ("01", "12312312312333"),
                ("10", "ABC123"),
                ("99", "TESTING")
            ]
        );
        assert_eq!(d.key, "(01)12312312312333(10)ABC123");
    }
    // Trailing GS tolerated (generator tests).
    assert!(dec("]Q3011231231231233310ABC123\u{1d}99TESTING\u{1d}").is_ok());
}

// TV-GS1-06/07, SD-5.
#[test]
fn tv_gs1_06_07_variable_then_separator() {
    assert_eq!(
        ais(&ok("]C10112312312312333235XYZ")),
        vec![("01", "12312312312333"), ("235", "XYZ")]
    );
    let d = ok("]C10112312312312333235XYZ\u{1d}10ABC");
    assert_eq!(d.fields["10"], "ABC");
    assert_eq!(d.key, "(01)12312312312333(235)XYZ");
}

// TV-GS1-08 / SD-4: DataBar; (11) is predefined so (98) follows without GS.
#[test]
fn tv_gs1_08_databar() {
    let d = ok("]e0011231231231233310ABC123\u{1d}1199122598TESTING\u{1d}97XYZ");
    assert_eq!(d.fields["11"], "991225");
    assert_eq!(d.fields["98"], "TESTING");
    assert_eq!(d.fields["97"], "XYZ");
}

// TV-GS1-11..13 / SD-6..9: EAN-13 and EAN-8 under ]E0/]E4.
#[test]
fn tv_gs1_11_13_ean() {
    let d = ok("]E02112345678900");
    assert_eq!(d.key, "(01)02112345678900");
    assert_eq!(d.symbology.as_deref(), Some("]E0"));
    assert!(matches!(
        dec("]E02112345678901"),
        Err(DecodeError::Gs1CheckDigit { .. })
    ));
    assert!(dec("]E0123456789012").is_err());
    assert!(dec("]E012345678901234").is_err());
    assert_eq!(ok("]E402345673").key, "(01)00000002345673");
    assert!(dec("]E402345674").is_err());
}

// TV-GS1-14/15 / SD-11/12: empty GS1 data, short and unknown identifiers.
#[test]
fn tv_gs1_14_15_empty_and_bad_aim() {
    for s in ["]e0", "]Q3", "]d2", "]C1"] {
        assert!(matches!(dec(s), Err(DecodeError::EmptyAfterAim(_))), "{s}");
    }
    for s in ["]", "]X", "]XX"] {
        assert!(matches!(dec(s), Err(DecodeError::BadAim(_))), "{s}");
    }
}

// TV-GS1-16 / SD-10: plain QR text is not GS1; with no opaque fallback it is an error.
#[test]
fn tv_gs1_16_plain_text() {
    assert!(matches!(dec("]Q1TESTING"), Err(DecodeError::Unrecognised)));
    let cfg = DecodeConfig {
        opaque: true,
        ..DecodeConfig::default()
    };
    let d = decode(b"]Q1TESTING", None, &cfg).unwrap();
    assert_eq!((d.scheme, d.key.as_str()), (Scheme::Opaque, "TESTING"));
    // A bare digit string under a non-GS1 identifier is not read as GS1.
    assert!(dec("]C00109506000134352").is_err());
}

// TV-GS1-17: `^` inside GS1-128 data where a digit is required.
#[test]
fn tv_gs1_17_caret_in_data() {
    assert!(dec("]C101123123123133^10ABC").is_err());
}

// TV-HID-05: GS as Ctrl+] arrives as 0x1D; a plain `]` instead must not become (10)AB]21X9.
#[test]
fn tv_hid_05_wedge_gs() {
    let d = ok("]C1011231231231233310AB\u{1d}21X9");
    assert_eq!(
        ais(&d),
        vec![("01", "12312312312333"), ("10", "AB"), ("21", "X9")]
    );
    let e = dec("]C1011231231231233310AB]21X9").unwrap_err();
    assert!(e.to_string().contains("']'"), "{e}");
}

// Textual FNC1 forms accepted by default: `^`, `~`, `<GS>`.
#[test]
fn textual_fnc1_forms() {
    for sep in ["\u{1d}", "^", "~", "<GS>"] {
        let d = ok(&format!("]C10112312312312333235XYZ{sep}10ABC"));
        assert_eq!(d.fields["10"], "ABC", "{sep}");
    }
    // Leading FNC1 without an AIM identifier (`^` is the GS1 Syntax Engine's notation).
    assert_eq!(ok("^0112345678901231").key, "(01)12345678901231");
    assert_eq!(ok("\u{1d}0112345678901231").key, "(01)12345678901231");
}

// TV-DL-19/20, SD-13..15: Digital Link under ]Q1 / ]d1; mixed-case scheme rejected.
#[test]
fn tv_dl_19_20_scan_data() {
    let d = ok("]Q1https://example.com/01/12312312312333?99=TEST");
    assert_eq!(d.scheme, Scheme::DigitalLink);
    assert_eq!(ais(&d), vec![("01", "12312312312333"), ("99", "TEST")]);
    assert_eq!(d.symbology.as_deref(), Some("]Q1"));
    assert!(ok("]d1https://example.com/01/12312312312333?99=TEST")
        .fields
        .contains_key("99"));
    assert!(dec("]Q1https://a/NOPRIMARYAI").is_err());
    assert!(dec("]Q1HtTps://example.com/01/12312312312333?99=TEST").is_err());
}

/// The same item through five carriers gives one key.
#[test]
fn same_item_same_key_across_carriers() {
    // TV-EPC-02: SGTIN-96 0614141.812345 serial 12345 = (01)80614141123458(21)12345.
    let want = "(01)80614141123458(21)12345";
    let scans: Vec<Decoded> = vec![
        ok("]C10180614141123458\u{1d}2112345"),
        ok("]d201806141411234582112345\u{1d}10LOT7"),
        ok("(01)80614141123458(21)12345"),
        ok("(10)LOT7(21)12345(01)80614141123458"),
        ok("https://id.gs1.org/01/80614141123458/10/LOT7/21/12345?17=261231"),
        ok("3034257BF7194E4000003039"),
        decode(
            &[
                0x30, 0x34, 0x25, 0x7B, 0xF7, 0x19, 0x4E, 0x40, 0x00, 0x00, 0x30, 0x39,
            ],
            Some("epc"),
            &DecodeConfig::default(),
        )
        .unwrap(),
    ];
    for d in &scans {
        assert_eq!(d.key, want, "{d:?}");
    }
    // Lot only, no serial: the lot qualifies the GTIN.
    assert_eq!(
        ok("]C10109506000134352\u{1d}10ABC").key,
        ok("(01)09506000134352(10)ABC").key
    );
    assert_eq!(
        ok("(01)09506000134352(10)ABC").key,
        "(01)09506000134352(10)ABC"
    );
    // TV-GS1-18: same item as GS1-128, bracketed, Digital Link.
    assert_eq!(
        ok("https://x.example/01/09506000134352/10/ABC").key,
        "(01)09506000134352(10)ABC"
    );
    // SSCC from a label and from an SSCC-96 tag (TV-EPC-04).
    assert_eq!(
        ok("]C100106141412345678908").key,
        ok("3174257BF4499602D2000000").key
    );
}

#[test]
fn dg_trace_and_detection_order() {
    // TV-DG-01
    let d = ok("FZ44190001241015441900A7K9Q2Q");
    assert_eq!(
        (d.scheme, d.key.as_str()),
        (Scheme::DgTrace, "FZ44190001241015441900A7K9Q2Q")
    );
    // Under a plain-text symbology too (a QR with the trace code).
    assert_eq!(
        ok("]Q1FZ44190001241015441900A7K9Q2Q").symbology.as_deref(),
        Some("]Q1")
    );
    // TV-DG-02: the swap is reported as a check mismatch.
    let e = dec("FZ44190001241015441900A7K92QQ").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("check character mismatch: expected "),
        "{e}"
    );
    // Trace-length lowercase: still read as a trace code so the error is useful.
    assert!(matches!(
        dec("fz44190001241015441900A7K9Q2Q"),
        Err(DecodeError::Charset { pos: 0, .. })
    ));
    // Control codes.
    assert_eq!(ok("W:E1042").scheme, Scheme::Badge);
    assert_eq!(ok("LOGOUT").scheme, Scheme::Logout);
    assert_eq!(ok("R:PASS").key, "result:pass");
    // Card UIDs beat unprefixed GS1 (11250101 would parse as (11)250101).
    assert_eq!(ok("11250101").scheme, Scheme::Badge);
    // EPC hex, unknown header.
    assert_eq!(ok("E2801160600002054C7A2B3C").scheme, Scheme::EpcUnknown);
    // Unprefixed GS1 and bare EAN-13.
    assert_eq!(ok("0109506000134352").key, "(01)09506000134352");
    assert_eq!(ok("6291041500213").key, "(01)06291041500213");
    assert!(matches!(
        dec("6291041500214"),
        Err(DecodeError::Gs1CheckDigit { .. })
    ));
    // Unprefixed GS1 error is reported when the string starts with a known AI.
    assert!(matches!(
        dec("0109506000134353"),
        Err(DecodeError::Gs1CheckDigit { .. })
    ));
    // Garbage.
    assert!(matches!(dec("hello world"), Err(DecodeError::Unrecognised)));
    assert!(matches!(dec("   \r\n"), Err(DecodeError::Empty)));
    assert!(matches!(
        decode(b"AB\xFFCD", None, &DecodeConfig::default()),
        Err(DecodeError::NonAscii {
            offset: 2,
            byte: 0xFF
        })
    ));
    // Terminators are trimmed.
    assert_eq!(ok("W:E1042\r\n").key, "badge:E1042");
}

#[test]
fn hints() {
    let cfg = DecodeConfig::default();
    let d = decode(b"0109506000134352", Some("]C1"), &cfg).unwrap();
    assert_eq!(d.symbology.as_deref(), Some("]C1"));
    // Identical identifier repeated in the data is dropped.
    assert_eq!(
        decode(b"]C10109506000134352", Some("]C1"), &cfg)
            .unwrap()
            .key,
        d.key
    );
    assert!(matches!(
        decode(b"x", Some("qr"), &cfg),
        Err(DecodeError::UnknownHint(_))
    ));
    assert!(matches!(
        decode(b"x", Some("]C"), &cfg),
        Err(DecodeError::BadAim(_))
    ));
    let e = decode(&[0x30; 11], Some("epc"), &cfg).unwrap_err();
    assert!(e.to_string().contains("expected 12"), "{e}");
    let d = decode(&[0xE2, 0x80, 0x11, 0x60], Some("epc"), &cfg).unwrap();
    assert_eq!(
        (d.scheme, d.key.as_str()),
        (Scheme::EpcUnknown, "urn:epc:raw:32.xE2801160")
    );
    let long = vec![b'A'; 5000];
    assert!(matches!(
        decode(&long, None, &cfg),
        Err(DecodeError::TooLong { .. })
    ));
}

/// The CLI prints `Decoded` as JSON with exactly these keys.
#[test]
fn json_shape() {
    let d = ok("]C10109506000134352\u{1d}10ABC");
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "scheme": "gs1",
            "key": "(01)09506000134352(10)ABC",
            "fields": {"01": "09506000134352", "10": "ABC"},
            "symbology": "]C1"
        })
    );
    let v = serde_json::to_value(ok("3074257BF7194E4000001A85")).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "scheme": "epc-sgtin",
            "key": "(01)80614141123458(21)6789",
            "fields": {"gtin": "80614141123458", "serial": "6789",
                       "uri": "urn:epc:id:sgtin:0614141.812345.6789", "filter": "3"}
        })
    );
    let v = serde_json::to_value(ok("FZ44190001241015441900A7K9Q2Q")).unwrap();
    assert_eq!(v["scheme"], "dg-trace");
    let keys: Vec<&String> = v["fields"].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["attribute", "check", "date", "node", "random", "region"]
    );
    for (s, name) in [
        ("https://a/01/12312312312333", "digital-link"),
        ("3174257BF4499602D2000000", "epc-sscc"),
        ("355AB1C60003039000000190", "epc-gid"),
        ("P:OP1", "process-card"),
        ("D:X", "defect-card"),
        ("Q:3", "quantity"),
        ("R:FAIL", "result"),
    ] {
        assert_eq!(serde_json::to_value(ok(s)).unwrap()["scheme"], name, "{s}");
    }
}

/// `[codes]` TOML: defaults, partial sections, unknown keys rejected, validate() messages.
#[test]
fn config_toml() {
    let cfg: DecodeConfig = toml::from_str("").unwrap();
    assert_eq!(cfg, DecodeConfig::default());
    assert_eq!(cfg.validate(), Ok(()));
    let cfg: DecodeConfig = toml::from_str(
        r#"
        opaque = true
        [trace]
        check = "mod37-2"
        [control]
        badge_prefix = "EMP-"
        badge_uid_formats = ["hex14"]
        "#,
    )
    .unwrap();
    assert_eq!(cfg.validate(), Ok(()));
    assert_eq!(decode(b"EMP-42", None, &cfg).unwrap().key, "badge:42");
    assert!(toml::from_str::<DecodeConfig>("bogus = 1").is_err());
    assert!(toml::from_str::<DecodeConfig>("[trace]\ncheck = \"mod97-10\"").is_err());
    let cfg: DecodeConfig = toml::from_str(
        r#"
        [trace]
        fields = [{ kind = "attribute", width = 2 }, { kind = "node", width = 0 }]
        "#,
    )
    .unwrap();
    assert_eq!(
        cfg.validate().unwrap_err(),
        "trace.fields[1].width: must be > 0"
    );
    let cfg: DecodeConfig = toml::from_str("[gs1]\nfnc1_substitutes = [\"\"]").unwrap();
    assert_eq!(
        cfg.validate().unwrap_err(),
        "gs1.fnc1_substitutes[0]: must not be empty"
    );
    let cfg: DecodeConfig = toml::from_str("max_len = 0").unwrap();
    assert_eq!(cfg.validate().unwrap_err(), "max_len: must be > 0");
}

#[test]
fn gen_code_api() {
    let layout = bobbin_codes::TraceLayout::default();
    let codes =
        bobbin_codes::generate_trace_codes(&layout, None, "44190001", "441900", "261123", 5)
            .unwrap();
    assert_eq!(codes.len(), 5);
    for c in &codes {
        let d = ok(c);
        assert_eq!(d.fields["date"], "2026-11-23");
        assert_eq!(d.fields["attribute"], "FZ");
    }
    let one =
        bobbin_codes::generate_trace_code(&layout, "XY", "W0000001", "110105", "261123").unwrap();
    assert!(one.starts_with("XYW000000126112311010"));
}

/// The commented snippet for config.example.toml parses to exactly the defaults.
#[test]
fn example_toml_is_the_default() {
    #[derive(serde::Deserialize)]
    struct Root {
        codes: DecodeConfig,
    }
    let root: Root = toml::from_str(include_str!("../codes.example.toml")).unwrap();
    assert_eq!(root.codes, DecodeConfig::default());
}
