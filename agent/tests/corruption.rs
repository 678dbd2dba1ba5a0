//! A damaged journal is moved aside and a new one started; the agent keeps running.

mod common;

use bobbin_agent::journal::{verify, JournalReader};
use common::{run, run_agent, wait_until, write_config};
use rand::{RngCore, SeedableRng};
use std::io::{Seek, SeekFrom, Write};
use std::time::Duration;

fn damage_and_start(page: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let db = data.join("journal.db");
    let (code, _, err) = run(&[
        "stress-append",
        "--db",
        db.to_str().expect("path"),
        "--count",
        "3000",
    ]);
    assert_eq!(code, 0, "{err}");
    // Random bytes over one whole 4 KiB page of the checkpointed file.
    let mut junk = vec![0u8; 4096];
    rand::rngs::StdRng::seed_from_u64(page).fill_bytes(&mut junk);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .expect("open db file");
    f.seek(SeekFrom::Start((page - 1) * 4096)).expect("seek");
    f.write_all(&junk).expect("overwrite page");
    f.sync_all().expect("sync");
    drop(f);

    let agent = run_agent(&config);
    wait_until(
        "the agent to quarantine the journal",
        Duration::from_secs(20),
        || agent.stderr_has("moved it aside and started a new journal"),
    );
    wait_until("the agent to run", Duration::from_secs(20), || {
        agent.stderr_has("running;")
    });
    // Still alive after recovering: no crash loop.
    let mut agent = agent;
    assert!(
        agent.child.try_wait().expect("try_wait").is_none(),
        "agent exited"
    );
    agent.signal(libc::SIGTERM);
    let (status, _, err) = agent.wait(Duration::from_secs(20));
    assert!(status.success(), "clean exit after SIGTERM: {err:?}");

    let moved: Vec<_> = std::fs::read_dir(&data)
        .expect("read data dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.starts_with("journal.db.corrupt-") && !n.ends_with("-wal") && !n.ends_with("-shm")
        })
        .collect();
    assert_eq!(moved.len(), 1, "the damaged file is kept aside: {moved:?}");
    let reader = JournalReader::open(&db).expect("new journal");
    assert!(verify::verify(&reader).expect("verify").problem.is_none());
    let kinds: Vec<String> = reader
        .connection()
        .prepare("SELECT kind FROM records")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("records");
    assert_eq!(
        kinds,
        vec!["journal.quarantined".to_string()],
        "the new journal records why"
    );
}

#[test]
fn random_bytes_over_a_table_page_start_a_new_journal() {
    damage_and_start(5);
}

#[test]
fn random_bytes_over_the_header_page_start_a_new_journal() {
    damage_and_start(1);
}
