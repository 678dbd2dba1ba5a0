//! `bobbin verify`, `trace` and `backup` on real journal files, including tampered ones.

mod common;

use common::{bobbin, run, Watched};
use rusqlite::Connection;
use std::path::Path;
use std::time::Duration;

/// A journal with `n` stress records (trace codes STRESS00000001…).
fn journal_with(dir: &Path, n: u64) -> std::path::PathBuf {
    let db = dir.join("journal.db");
    let (code, out, err) = run(&[
        "stress-append",
        "--db",
        db.to_str().expect("utf-8 path"),
        "--count",
        &n.to_string(),
    ]);
    assert_eq!(code, 0, "stress-append failed: {err}");
    assert_eq!(out.lines().count() as u64, n);
    db
}

fn db_arg(db: &Path) -> &str {
    db.to_str().expect("utf-8 path")
}

#[test]
fn verify_passes_an_intact_journal_with_a_one_line_summary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = journal_with(dir.path(), 100);
    let (code, out, _) = run(&["verify", "--db", db_arg(&db)]);
    assert_eq!(code, 0);
    let lines: Vec<_> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(lines[0].starts_with("journal "), "{out}");
    assert!(lines[0].contains("100 records, last sequence 100"), "{out}");
    assert!(lines[0].contains("chain intact"), "{out}");
}

#[test]
fn verify_names_the_record_whose_body_was_altered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = journal_with(dir.path(), 100);
    let conn = Connection::open(&db).expect("open");
    // The append-only trigger stops an accidental update...
    let refused = conn.execute(
        "UPDATE records SET body = '{\"n\":9999}' WHERE seq = 37",
        [],
    );
    assert!(refused.is_err(), "records must be append-only");
    // ...a deliberate tamperer drops it first; the chain still catches them.
    conn.execute_batch(
        "DROP TRIGGER records_no_update; UPDATE records SET body = '{\"n\":9999}' WHERE seq = 37;",
    )
    .expect("tamper");
    drop(conn);
    let (code, out, _) = run(&["verify", "--db", db_arg(&db)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("record 37 was altered"), "{out}");
}

#[test]
fn verify_reports_a_deleted_record_as_a_gap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = journal_with(dir.path(), 100);
    let conn = Connection::open(&db).expect("open");
    conn.execute_batch("DROP TRIGGER records_no_delete; DELETE FROM records WHERE seq = 50;")
        .expect("tamper");
    drop(conn);
    let (code, out, _) = run(&["verify", "--db", db_arg(&db)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("record 50 is missing"), "{out}");
}

#[test]
fn verify_refuses_a_path_that_is_not_a_journal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope.db");
    let (code, _, err) = run(&["verify", "--db", db_arg(&missing)]);
    assert_eq!(code, 2);
    assert!(
        err.contains("nope.db") && err.contains("no such file"),
        "{err}"
    );
    assert!(!missing.exists(), "verify must not create a file");
}

#[test]
fn trace_prints_each_record_of_a_code_as_json_oldest_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = journal_with(dir.path(), 30);
    let (code, out, _) = run(&["trace", "STRESS00000007", "--db", db_arg(&db)]);
    assert_eq!(code, 0);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["seq"], 7);
    assert_eq!(lines[0]["trace_code"], "STRESS00000007");
    assert_eq!(lines[0]["body"]["n"], 7, "body is inline JSON");
    assert!(lines[0]["hash"].as_str().is_some_and(|h| h.len() == 64));
    let (code, out, err) = run(&["trace", "NOSUCHCODE", "--db", db_arg(&db)]);
    assert_eq!((code, out.as_str()), (0, ""));
    assert!(err.contains("no records"), "{err}");
}

#[test]
fn backup_of_a_live_journal_passes_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("journal.db");
    let mut cmd = bobbin();
    cmd.args(["stress-append", "--db", db_arg(&db), "--in-flight", "32"]);
    let writer = Watched::spawn(cmd);
    common::wait_until("records to be written", Duration::from_secs(10), || {
        writer.stdout.lock().expect("lines").len() > 2000
    });
    let copy = dir.path().join("copy.db");
    let (code, out, err) = run(&["backup", "--db", db_arg(&db), "--out", db_arg(&copy)]);
    writer.signal(libc::SIGKILL);
    let _ = writer.wait(Duration::from_secs(10));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("chain intact"), "{out}");
    assert!(!dir.path().join("copy.db.partial").exists());
    let (code, out, _) = run(&["verify", "--db", db_arg(&copy)]);
    assert_eq!(code, 0, "{out}");
    let n: u64 = out
        .split(" records")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|s| s.parse().ok())
        .expect("record count in summary");
    assert!(
        n >= 2000,
        "the copy holds the records written before it: {out}"
    );
}
