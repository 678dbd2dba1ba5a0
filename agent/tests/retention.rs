//! Retention prunes only uploaded records past their time, as a prefix, and verify still
//! checks the rest of the chain from where pruning ended.

use bobbin_agent::journal::{retention, verify, Journal, JournalConfig, JournalReader};
use bobbin_sync::record::RecordContent;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prunes_uploaded_old_records_and_never_unsent_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("j.db");
    let journal = Journal::open(&JournalConfig::at(&path)).expect("open");
    let h = journal.handle();
    for n in 1..=25_000u64 {
        let p = h
            .enqueue(RecordContent {
                kind: "scan".into(),
                // Old records, except one young record at 300 in the middle of the prefix.
                time_ms: if n == 300 { i64::MAX / 2 } else { n as i64 },
                body: "{}".into(),
                ..Default::default()
            })
            .await
            .expect("enqueue");
        if n % 1000 == 0 {
            p.wait().await.expect("commit");
        }
    }
    // The platform confirmed up to 20,600.
    h.exec(|ctx| {
        let row = ctx.journal_row();
        ctx.tx.execute(
            "INSERT INTO upload_cursors (journal, seq) VALUES (?1, 20600)",
            [row],
        )?;
        Ok(())
    })
    .await
    .expect("cursor");

    // The young record at 300 stops the prefix: only 1..299 may go.
    let cutoff = 1_000_000;
    let pruned = retention::prune(&h, cutoff).await.expect("prune");
    assert_eq!(pruned.records, 299);

    // Once it is old enough, pruning goes on, in chunks, up to the cursor and no further.
    let pruned = retention::prune(&h, i64::MAX).await.expect("prune");
    assert_eq!(pruned.records, 20_600 - 299);
    assert_eq!(
        retention::prune(&h, i64::MAX).await.expect("prune").records,
        0
    );

    // New records still chain on.
    h.append(RecordContent {
        kind: "scan".into(),
        time_ms: 1,
        body: "{}".into(),
        ..Default::default()
    })
    .await
    .expect("append after prune");
    tokio::task::spawn_blocking(move || journal.close())
        .await
        .expect("join")
        .expect("close");

    let reader = JournalReader::open(&path).expect("reader");
    let report = verify::verify(&reader).expect("verify");
    assert!(report.problem.is_none(), "{:?}", report.problem);
    let j = &report.intact[0];
    assert_eq!(
        (j.pruned_through, j.records, j.last_seq),
        (20_600, 4_401, 25_001)
    );
    assert!(
        j.to_string().contains("1 to 20600 pruned after upload"),
        "{j}"
    );
}
