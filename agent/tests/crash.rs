//! Durability under SIGKILL: every record whose completion fired survives, intact.
//!
//! A `bobbin stress-append` child appends with 64 records in flight and prints
//! `committed SEQ HASH` only after each commit. We kill it with SIGKILL at random moments,
//! 60 times on the same file; after each kill the file must reopen, hold every printed
//! record with the printed hash, and pass `verify`.

mod common;

use bobbin_agent::journal::{verify, JournalReader};
use common::{bobbin, Watched};
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::time::Duration;

#[test]
fn sigkill_never_loses_an_acknowledged_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("journal.db");
    let seed: u64 = rand::random();
    eprintln!("crash test seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut acknowledged: HashMap<u64, String> = HashMap::new();
    let cycles = 60;
    for cycle in 0..cycles {
        let mut cmd = bobbin();
        cmd.args(["stress-append", "--db"])
            .arg(&db)
            .args(["--in-flight", "64"]);
        let w = Watched::spawn(cmd);
        // Kill at a random moment: sometimes while it is still opening the file, mostly
        // mid-stream with commits in flight.
        let delay = if rng.random_bool(0.2) {
            rng.random_range(0..15)
        } else {
            rng.random_range(15..120)
        };
        std::thread::sleep(Duration::from_millis(delay));
        w.signal(libc::SIGKILL);
        let (status, out, _err) = w.wait(Duration::from_secs(10));
        assert!(
            !status.success(),
            "cycle {cycle}: the child should have been killed"
        );
        for line in out {
            let mut parts = line.split_whitespace();
            if parts.next() == Some("committed") {
                let seq: u64 = parts.next().and_then(|s| s.parse().ok()).expect("seq");
                let hash = parts.next().expect("hash").to_string();
                acknowledged.insert(seq, hash);
            }
        }
        if !db.exists() {
            // Killed before it created the file: nothing can have been acknowledged.
            assert!(
                acknowledged.is_empty(),
                "cycle {cycle}: journal file vanished"
            );
            continue;
        }
        // Reopen and check: every acknowledged record is there with its hash; chain intact.
        let reader = JournalReader::open(&db).expect("journal reopens after SIGKILL");
        let report = verify::verify(&reader).expect("verify runs");
        assert!(
            report.problem.is_none(),
            "cycle {cycle}: {:?}",
            report.problem
        );
        let journals = reader.journals().expect("journals");
        assert_eq!(
            journals.len(),
            1,
            "cycle {cycle}: no new journal may be started after a kill"
        );
        let mut present = HashMap::new();
        reader
            .for_each_record(&journals[0], |r| {
                present.insert(r.seq, r.hash.to_string());
                true
            })
            .expect("read");
        for (seq, hash) in &acknowledged {
            assert_eq!(
                present.get(seq),
                Some(hash),
                "cycle {cycle}: acknowledged record {seq} missing or changed after SIGKILL"
            );
        }
    }
    assert!(
        acknowledged.len() > 1000,
        "the test should exercise real load, got only {} acknowledged records",
        acknowledged.len()
    );
}
