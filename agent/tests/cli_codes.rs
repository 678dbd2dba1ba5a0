//! `bobbin decode`, `gen-code` and `devices` from a technician's shell.

mod common;

use common::run;

#[test]
fn decode_prints_scheme_key_and_fields_as_one_json_object() {
    // GS1 Digital Link and the AIM-prefixed element string of the same item share a key.
    let (rc, out, _) = run(&["decode", "]C1010950600013435210ABC"]);
    assert_eq!(rc, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(v["scheme"], "gs1");
    assert_eq!(v["key"], "(01)09506000134352(10)ABC");
    assert_eq!(v["fields"]["01"], "09506000134352");
    assert_eq!(v["fields"]["10"], "ABC");
    let (rc, out, _) = run(&["decode", "https://id.example.com/01/09506000134352/10/ABC"]);
    assert_eq!(rc, 0);
    let dl: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(
        (dl["scheme"].as_str(), &dl["key"]),
        (Some("digital-link"), &v["key"])
    );
    // An SGTIN-96 EPC as raw bytes.
    let (rc, out, _) = run(&[
        "decode",
        "--hex",
        "3074257BF7194E4000001A85",
        "--hint",
        "epc",
    ]);
    assert_eq!(rc, 0, "{out}");
    let epc: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(epc["scheme"], "epc-sgtin");
    assert!(
        epc["fields"]["uri"]
            .as_str()
            .is_some_and(|u| u.starts_with("urn:epc:id:sgtin:")),
        "{epc}"
    );
}

#[test]
fn an_undecodable_scan_prints_an_error_object_and_exits_1() {
    let (rc, out, _) = run(&["decode", "FZWS0000012511234419001A2B3C7"]);
    assert_eq!(rc, 1);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("check character mismatch")),
        "{v}"
    );
    let (rc, out, _) = run(&["decode", "--hex", "zz"]);
    assert_eq!(rc, 1);
    assert!(out.contains("\"error\""), "{out}");
}

#[test]
fn gen_code_prints_valid_distinct_codes() {
    let (rc, out, _) = run(&[
        "gen-code", "--node", "WS000001", "--region", "441900", "--date", "261123", "--count", "20",
    ]);
    assert_eq!(rc, 0);
    let codes: Vec<&str> = out.lines().collect();
    assert_eq!(codes.len(), 20);
    let distinct: std::collections::HashSet<_> = codes.iter().collect();
    assert_eq!(distinct.len(), 20);
    for c in &codes {
        let (rc, out, _) = run(&["decode", c]);
        assert_eq!(rc, 0, "{c}: {out}");
        let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
        assert_eq!(v["scheme"], "dg-trace");
        assert_eq!(v["fields"]["node"], "WS000001");
        assert_eq!(v["fields"]["region"], "441900");
    }
    let (rc, _, err) = run(&[
        "gen-code", "--node", "WS000001", "--region", "441900", "--date", "261345",
    ]);
    assert_eq!(rc, 1);
    assert!(err.contains("error:"), "{err}");
}

#[test]
fn devices_lists_ports_and_never_fails_without_scanners() {
    let (rc, out, _) = run(&["devices"]);
    assert_eq!(rc, 0);
    assert!(
        out.contains("Serial ports:") && out.contains("HID devices:"),
        "{out}"
    );
    let (rc, out, _) = run(&["devices", "--json"]);
    assert_eq!(rc, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert!(v["serial"].is_array() && v["hid"].is_array(), "{v}");
}
