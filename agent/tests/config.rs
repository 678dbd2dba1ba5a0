//! Configuration: bad files give one line naming the key; the example is valid and
//! documented.

mod common;

use bobbin_agent::config::Config;
use common::run;

fn error_of(toml: &str) -> String {
    let e = Config::parse(toml)
        .expect_err("config should be refused")
        .to_string();
    assert!(!e.contains('\n'), "error must be one line: {e:?}");
    e
}

const BASE: &str = "[agent]\nid = \"ws-1\"\ndata_dir = \"/tmp/x\"\n";

#[test]
fn an_unknown_key_is_named() {
    let e = error_of(&format!("{BASE}colour = \"red\"\n"));
    assert!(e.starts_with("agent.colour: unknown field `colour`"), "{e}");
    let e = error_of(&format!("{BASE}[journal]\nmax_batchh = 3\n"));
    assert!(e.starts_with("journal.max_batchh: unknown field"), "{e}");
}

#[test]
fn a_wrong_type_is_named() {
    let e = error_of(&format!("{BASE}[journal]\nmax_batch = \"many\"\n"));
    assert!(
        e.starts_with("journal.max_batch: invalid type: string \"many\", expected"),
        "{e}"
    );
    let e = error_of(&format!(
        "{BASE}[[stations]]\nid = \"s1\"\nkind = \"welding\"\n"
    ));
    assert!(
        e.starts_with("stations[0].kind: unknown variant `welding`"),
        "{e}"
    );
}

#[test]
fn a_missing_section_or_key_is_named() {
    let e = error_of("[journal]\nmax_batch = 10\n");
    assert!(e.contains("missing field `agent`"), "{e}");
    let e = error_of("[agent]\nid = \"ws-1\"\n");
    assert!(e.starts_with("agent: missing field `data_dir`"), "{e}");
}

#[test]
fn a_duplicate_station_id_is_named() {
    let e = error_of(&format!(
        "{BASE}[[stations]]\nid = \"s1\"\nkind = \"sewing\"\n[[stations]]\nid = \"s2\"\nkind = \"qc\"\n[[stations]]\nid = \"s1\"\nkind = \"qc\"\n"
    ));
    assert_eq!(e, "stations[2].id: duplicate station id \"s1\"");
}

#[test]
fn a_station_naming_an_unknown_device_is_named() {
    let e = error_of(&format!(
        "{BASE}[[stations]]\nid = \"s1\"\nkind = \"sewing\"\n[[stations]]\nid = \"s2\"\nkind = \"qc\"\n[[stations]]\nid = \"s3\"\nkind = \"qc\"\ndevices = [\"scan-9\"]\n"
    ));
    assert_eq!(e, "stations[2].devices[0]: no device named \"scan-9\"");
}

#[test]
fn bad_values_are_named() {
    let e = error_of("[agent]\nid = \"ws 1\"\ndata_dir = \"/x\"\n");
    assert!(e.starts_with("agent.id: \"ws 1\" is not a valid id"), "{e}");
    let e = error_of(&format!("{BASE}[journal]\nmax_batch = 0\n"));
    assert_eq!(e, "journal.max_batch: must be between 1 and 100000");
    let e = error_of("[agent\nid = 1");
    assert!(e.contains("line 1"), "syntax errors say where: {e}");
}

#[test]
fn check_config_exits_zero_on_the_example_and_one_with_the_message_otherwise() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../config.example.toml");
    let (code, out, err) = run(&["check-config", "--config", example]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(": ok"), "{out}");

    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        format!("{BASE}[[stations]]\nid = \"s1\"\nkind = \"sewing\"\ndevices = [\"scan-9\"]\n"),
    )
    .expect("write");
    let (code, out, err) = run(&["check-config", "--config", bad.to_str().expect("path")]);
    assert_eq!(code, 1);
    assert_eq!(out, "");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.trim_end()
            .ends_with("stations[0].devices[0]: no device named \"scan-9\""),
        "{err}"
    );
}

/// Every key set in config.example.toml has a comment on its line or just above it.
#[test]
fn every_key_in_the_example_is_documented() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../config.example.toml");
    let text = std::fs::read_to_string(example).expect("read example");
    Config::parse(&text).expect("the example is a valid config");
    let lines: Vec<&str> = text.lines().collect();
    let mut undocumented = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') || t.starts_with('[') {
            continue;
        }
        let Some((key, _)) = t.split_once('=') else {
            continue;
        };
        let key = key.trim();
        // Only top-level `key = value` lines; inline tables and array items are values.
        let is_key = !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
        if !is_key || line.starts_with(' ') {
            continue;
        }
        let commented_here = line.contains(" # ");
        let commented_above = i > 0 && lines[i - 1].trim_start().starts_with('#');
        if !(commented_here || commented_above) {
            undocumented.push(format!("line {}: {key}", i + 1));
        }
    }
    assert!(
        undocumented.is_empty(),
        "keys without a comment: {undocumented:?}"
    );
}
