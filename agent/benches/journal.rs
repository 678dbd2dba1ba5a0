//! Journal benchmark: durable appends per second through the group-commit writer, and
//! append-to-durable latency under a steady offered load.
//!
//! Run: `cargo bench -p bobbin-agent --bench journal` (add `-- --quick` for a short run).
//! Every figure is for records committed with `synchronous=FULL` on the real disk.

use bobbin_agent::journal::{Journal, JournalConfig};
use bobbin_sync::record::RecordContent;
use std::time::{Duration, Instant};

fn content(n: u64) -> RecordContent {
    RecordContent {
        kind: "work".into(),
        time_ms: 1_763_900_000_000 + n as i64,
        station: Some(format!("sew-{:02}", n % 24)),
        worker: Some(format!("W{:05}", n % 300)),
        trace_code: Some(format!("01WS000001251123441900{:06}K", n % 1_000_000)),
        order: Some("PO-2026-0117".into()),
        process: Some("attach-collar".into()),
        body: format!(
            r#"{{"pieces":20,"start_ms":{},"end_ms":{}}}"#,
            n,
            n + 60_000
        ),
    }
}

fn fresh_journal() -> (tempfile::TempDir, Journal) {
    // On the target disk, not tmpfs: fsync must cost what it costs in the field.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let journal = Journal::open(&JournalConfig::at(dir.path().join("bench.db"))).expect("open");
    (dir, journal)
}

/// (a) `producers` tasks, each waiting for its append to be durable before the next.
async fn closed_loop(producers: usize, run_for: Duration) -> f64 {
    let (_dir, journal) = fresh_journal();
    let handle = journal.handle();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..producers {
        let h = handle.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while start.elapsed() < run_for {
                h.append(content(p as u64 * 1_000_000 + n))
                    .await
                    .expect("append");
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("producer");
    }
    let rate = total as f64 / start.elapsed().as_secs_f64();
    tokio::task::spawn_blocking(move || journal.close().expect("close"))
        .await
        .expect("close");
    rate
}

/// (b) producers that keep `window` appends in flight each.
async fn pipelined(producers: usize, window: usize, run_for: Duration) -> f64 {
    let (_dir, journal) = fresh_journal();
    let handle = journal.handle();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..producers {
        let h = handle.clone();
        tasks.push(tokio::spawn(async move {
            let mut pending = std::collections::VecDeque::with_capacity(window);
            let mut n = 0u64;
            while start.elapsed() < run_for {
                while pending.len() < window {
                    pending.push_back(
                        h.enqueue(content(p as u64 * 10_000_000 + n))
                            .await
                            .expect("enqueue"),
                    );
                    n += 1;
                }
                if let Some(first) = pending.pop_front() {
                    first.wait().await.expect("commit");
                }
            }
            for p in pending {
                p.wait().await.expect("commit");
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("producer");
    }
    let rate = total as f64 / start.elapsed().as_secs_f64();
    tokio::task::spawn_blocking(move || journal.close().expect("close"))
        .await
        .expect("close");
    rate
}

/// (c) an open-loop load of `rate` records/s; returns sorted append-to-durable latencies.
async fn offered_load(rate: u64, run_for: Duration) -> Vec<Duration> {
    let (_dir, journal) = fresh_journal();
    let handle = journal.handle();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < run_for {
        tick.tick().await;
        let sent = Instant::now();
        let pending = handle.enqueue(content(n)).await.expect("enqueue");
        n += 1;
        let tx = tx.clone();
        tokio::spawn(async move {
            pending.wait().await.expect("commit");
            let _ = tx.send(sent.elapsed());
        });
    }
    drop(tx);
    let mut lat = Vec::with_capacity(n as usize);
    while let Some(d) = rx.recv().await {
        lat.push(d);
    }
    tokio::task::spawn_blocking(move || journal.close().expect("close"))
        .await
        .expect("close");
    lat.sort();
    lat
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let run_for = Duration::from_secs(if quick { 1 } else { 4 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        println!("journal benchmark: durable appends (WAL, synchronous=FULL, group commit)");
        for producers in [1, 8, 64] {
            let r = closed_loop(producers, run_for).await;
            println!("(a) {producers:>3} producers, each waiting for its commit: {r:>10.0} records/s");
        }
        for (producers, window) in [(1, 4096), (4, 1024)] {
            let r = pipelined(producers, window, run_for).await;
            println!(
                "(b) {producers} producer(s), {window} appends in flight each:   {r:>10.0} records/s"
            );
        }
        let lat = offered_load(5_000, run_for).await;
        println!(
            "(c) offered load 5,000 records/s for {:?}: {} records, append-to-durable p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            run_for,
            lat.len(),
            pct(&lat, 0.50).as_secs_f64() * 1e3,
            pct(&lat, 0.99).as_secs_f64() * 1e3,
            lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        );
    });
}
