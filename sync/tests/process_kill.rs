//! The real `bobbin-receiver` binary, SIGKILLed and restarted in the middle of a drain.

mod support;

use bobbin_sync::UploadSource;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backlog_of_100k_drains_across_a_receiver_kill_and_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Agent::new(21);
    let agents = agents_file(dir.path(), &[&a]);
    let db = dir.path().join("receiver.db");
    let mut rx = ChildReceiver::start(&db, &agents, "127.0.0.1:0");
    let addr = rx.addr;
    let j = journal(dir.path(), "j.db", 21, 100_000);
    let src: Arc<dyn UploadSource> = j.clone();
    let mut cfg = fast_config(&format!("http://{addr}"), &a);
    cfg.backoff_max = Duration::from_millis(500);
    let up = start_uploader(cfg, &a, vec![src]);
    let started = Instant::now();

    wait_until(
        Duration::from_secs(60),
        "a third of the backlog delivered",
        || cursor(&j) >= 30_000,
    )
    .await;
    rx.kill();
    let killed_at = cursor(&j);
    eprintln!("receiver SIGKILLed with the cursor at {killed_at}");
    wait_until(
        Duration::from_secs(10),
        "uploader notices the outage",
        || up.status().state == bobbin_sync::SyncState::BackingOff,
    )
    .await;
    assert!(cursor(&j) < 100_000);
    // Same database, same port.
    let rx2 = ChildReceiver::start(&db, &agents, &addr.to_string());
    assert_eq!(rx2.addr, addr);
    wait_until(
        Duration::from_secs(90),
        "the whole backlog delivered",
        || up.settled(&j) == 100_000,
    )
    .await;
    eprintln!(
        "100000 records drained in {:?} across the restart",
        started.elapsed()
    );

    let s = up.status();
    // Records the killed receiver had committed before its answer was lost come back as
    // duplicates; none is counted twice.
    assert!(s.counters.accepted <= 100_000, "{s:?}");
    assert_eq!(s.counters.conflict + s.counters.rejected, 0, "{s:?}");
    let agents_view = get_json(&format!("http://{addr}"), "/v1/agents").await;
    let jj = &agents_view["agents"][0]["journals"][0];
    assert_eq!(jj["records"], 100_000, "{jj}");
    assert_eq!(jj["contiguous_seq"], 100_000);
    assert_eq!(jj["gap_count"], 0);
    assert!(j.outcomes().expect("outcomes").is_empty());
    up.stop().await;
    drop(rx2);
    // The store agrees with its own summary after the process is gone.
    let store = bobbin_sync::receiver::Store::open(&db).expect("store");
    assert_eq!(store.record_count(&j.journal_id()).expect("count"), 100_000);
}

#[test]
fn sigterm_as_soon_as_it_listens_is_a_clean_shutdown() {
    // "listening on" is the line operators and tests act on, so the handlers must be in
    // place before it is printed; otherwise SIGTERM's default action kills the receiver.
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Agent::new(22);
    let agents = agents_file(dir.path(), &[&a]);
    let mut rx = ChildReceiver::start(&dir.path().join("receiver.db"), &agents, "127.0.0.1:0");
    let pid = rx.child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = rx.child.try_wait().expect("try_wait") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "receiver still running 20 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "receiver exit status {status:?}");
}
