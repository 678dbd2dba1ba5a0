//! The journal's API: appends, rejects, and atomic `exec` units with their own savepoints.

use bobbin_agent::journal::{
    verify, Journal, JournalConfig, JournalError, JournalReader, RejectRow,
};
use bobbin_sync::record::RecordContent;

fn content(n: u64) -> RecordContent {
    RecordContent {
        kind: "scan".into(),
        time_ms: n as i64,
        trace_code: Some(format!("CODE{n}")),
        body: "{}".into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_exec_leaves_no_rows_and_no_hole_in_the_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = Journal::open(&JournalConfig::at(dir.path().join("j.db"))).expect("open");
    let h = journal.handle();
    assert_eq!(h.append(content(1)).await.expect("append").seq, 1);

    // An exec unit that appends a record and a reject, then fails: all of it is undone.
    let failed = h
        .exec(|ctx| {
            ctx.append(&content(2))?;
            ctx.tx.execute(
                "INSERT INTO rejects (time_ms, source, raw, reason) VALUES (0, 'x', x'00', 'y')",
                [],
            )?;
            Err::<(), _>(JournalError::Damaged("refused on purpose".into()))
        })
        .await;
    assert!(failed.is_err());

    // The next append takes sequence 2: the failed unit left no hole.
    let c = h.append(content(3)).await.expect("append");
    assert_eq!(c.seq, 2);

    // A successful unit appends atomically and returns its value after commit.
    let seqs = h
        .exec(|ctx| Ok((ctx.append(&content(4))?.seq, ctx.append(&content(5))?.seq)))
        .await
        .expect("exec");
    assert_eq!(seqs, (3, 4));

    let id = h
        .reject(RejectRow {
            time_ms: 7,
            source: "device:scan-1".into(),
            raw: vec![0xff, 0x00, b'A'],
            reason: "not UTF-8".into(),
        })
        .await
        .expect("reject");
    tokio::task::spawn_blocking(move || journal.close())
        .await
        .expect("join")
        .expect("close");

    let reader = JournalReader::open(&dir.path().join("j.db")).expect("reader");
    let report = verify::verify(&reader).expect("verify");
    assert!(report.problem.is_none());
    assert_eq!(report.intact[0].records, 4);
    let rejects: Vec<(i64, Vec<u8>, String)> = reader
        .connection()
        .prepare("SELECT id, raw, reason FROM rejects")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        })
        .expect("rejects");
    assert_eq!(
        rejects,
        vec![(id, vec![0xff, 0x00, b'A'], "not UTF-8".to_string())]
    );
    assert!(reader.trace("CODE2").expect("trace").is_empty());
    assert_eq!(reader.trace("CODE3").expect("trace")[0].seq, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_after_close_are_refused_not_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = Journal::open(&JournalConfig::at(dir.path().join("j.db"))).expect("open");
    let h = journal.handle();
    let pending = h.enqueue(content(1)).await.expect("enqueue");
    tokio::task::spawn_blocking(move || journal.close())
        .await
        .expect("join")
        .expect("close");
    // Queued before the close: committed by it.
    assert_eq!(pending.wait().await.expect("flushed at close").seq, 1);
    // After the close: a clear error, not a silent drop.
    let e = h.append(content(2)).await.expect_err("closed");
    assert!(e.to_string().contains("not running"), "{e}");
}

#[test]
fn a_second_writer_on_the_same_journal_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("j.db");
    let first = Journal::open(&JournalConfig::at(&path)).expect("open");
    let second = Journal::open(&JournalConfig::at(&path));
    let Err(e) = second else {
        panic!("two writers on one journal would fork its chain")
    };
    let text = e.to_string();
    assert!(text.contains("in use by another bobbin process"), "{text}");
    assert!(
        text.contains(&format!("pid {}", std::process::id())),
        "{text}"
    );
    first.close().expect("close");
    // Released at close: the next writer may open it.
    Journal::open(&JournalConfig::at(&path))
        .expect("reopen after close")
        .close()
        .expect("close");
}
