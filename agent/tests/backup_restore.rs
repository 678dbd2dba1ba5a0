//! Scheduled backups rotate; a restore is verified first and starts a new journal id.

mod common;

use bobbin_agent::journal::{verify, JournalReader};
use common::{bobbin, run, Watched};
use std::time::Duration;

fn p(path: &std::path::Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[test]
fn rotated_backups_keep_the_newest_and_a_restore_gets_a_new_journal_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("journal.db");
    let backups = dir.path().join("backups");
    let (rc, _, err) = run(&["stress-append", "--db", p(&db), "--count", "500"]);
    assert_eq!(rc, 0, "{err}");
    for _ in 0..3 {
        let (rc, out, err) = run(&[
            "backup",
            "--db",
            p(&db),
            "--out-dir",
            p(&backups),
            "--keep",
            "2",
        ]);
        assert_eq!(rc, 0, "{out}{err}");
        // Names carry the second: make the next one distinct.
        std::thread::sleep(Duration::from_millis(1100));
    }
    let mut kept: Vec<_> = std::fs::read_dir(&backups)
        .expect("backups")
        .map(|e| e.expect("entry").path())
        .collect();
    kept.sort();
    assert_eq!(kept.len(), 2, "{kept:?}");
    let newest = kept.last().expect("a backup").clone();

    let old_id = JournalReader::open(&db)
        .expect("reader")
        .journals()
        .expect("journals")[0]
        .journal_id;
    // More records after the backup: on a real PC, these are what the lost disk held.
    let (rc, _, _) = run(&["stress-append", "--db", p(&db), "--count", "100"]);
    assert_eq!(rc, 0);

    // Not while an agent holds the journal.
    let mut cmd = bobbin();
    cmd.args(["stress-append", "--db", p(&db)]);
    let writer = Watched::spawn(cmd);
    bobbin_tests::wait_until("the writer to start", Duration::from_secs(10), || {
        !writer.stdout.lock().expect("lines").is_empty()
    });
    let (rc, _, err) = run(&["restore", "--from", p(&newest), "--db", p(&db)]);
    assert_eq!(rc, 2);
    assert!(err.contains("in use by another bobbin process"), "{err}");
    writer.signal(libc::SIGKILL);
    let _ = writer.wait(Duration::from_secs(10));

    let (rc, out, err) = run(&["restore", "--from", p(&newest), "--db", p(&db)]);
    assert_eq!(rc, 0, "{err}");
    assert!(out.contains("new records go to new journal"), "{out}");
    let reader = JournalReader::open(&db).expect("restored");
    let journals = reader.journals().expect("journals");
    assert_eq!(journals.len(), 2);
    assert_eq!(
        journals[0].journal_id, old_id,
        "the backed-up records keep their id"
    );
    assert_ne!(journals[1].journal_id, old_id, "new records get a new id");
    assert!(
        journals[1].origin.starts_with("restored from"),
        "{}",
        journals[1].origin
    );
    let report = verify::verify(&reader).expect("verify");
    assert!(report.problem.is_none(), "{:?}", report.problem);
    assert_eq!(
        report.intact[0].last_seq, 500,
        "the backup's records, not the lost ones"
    );
    // The replaced file was kept, not deleted.
    assert!(std::fs::read_dir(dir.path()).expect("dir").any(|e| e
        .expect("entry")
        .file_name()
        .to_string_lossy()
        .contains(".replaced-")));

    // New appends continue the new journal, after its journal.restored record.
    let (rc, out, _) = run(&["stress-append", "--db", p(&db), "--count", "1"]);
    assert_eq!(rc, 0);
    assert!(out.starts_with("committed 2 "), "{out}");

    // A broken backup is refused before anything moves.
    let conn = rusqlite::Connection::open(&kept[0]).expect("backup");
    conn.execute_batch(
        "DROP TRIGGER records_no_update; UPDATE records SET body = '{}' WHERE seq = 3;",
    )
    .expect("tamper");
    drop(conn);
    let (rc, _, err) = run(&["restore", "--from", p(&kept[0]), "--db", p(&db)]);
    assert_eq!(rc, 2);
    assert!(err.contains("record 3 was altered"), "{err}");
}
