//! Backlog drain benchmark: agent (this process) → `bobbin-receiver` (a child process) on
//! loopback.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-sync cargo bench -p bobbin-sync --bench drain            # 1,000,000 records
//! CARGO_TARGET_DIR=/work/target-sync cargo bench -p bobbin-sync --bench drain -- 100000  # another size
//! ```
//!
//! Prints records/s, bytes per record on the wire (gzip request bodies), and this process's
//! VmRSS/VmHWM every 100,000 records: the uploader streams the backlog, so RSS must stay
//! flat as the backlog grows. The journal is generated in a child process first, so its
//! memory does not count.

use bobbin_sync::testing::{RecordGen, SqliteJournal};
use bobbin_sync::{AgentKey, SyncConfig, UploadSource, Uploader};
use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-token";

fn proc_status(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn generate(path: &Path, n: usize) {
    let j = SqliteJournal::open(path).expect("journal");
    let mut g = RecordGen::new(2024);
    let mut left = n;
    while left > 0 {
        let k = left.min(20_000);
        j.append(g.take(k)).expect("append");
        left -= k;
    }
}

/// CPU time of this thread (ns), so the stage costs do not depend on other load.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// Per-stage CPU cost on 200,000 generated records, single-threaded, to show where a drain's
/// time goes.
fn stages() {
    use bobbin_sync::{wire, JournalId, Record, GENESIS_HASH};
    let j = JournalId([9; 16]);
    let mut g = RecordGen::new(7);
    let mut prev = GENESIS_HASH;
    let mut seq = 0u64;
    let batches: Vec<Vec<Record>> = (0..100)
        .map(|_| {
            (0..2_000)
                .map(|_| {
                    seq += 1;
                    let r = Record::seal(j, seq, g.next_content(), prev);
                    prev = r.hash;
                    r
                })
                .collect()
        })
        .collect();
    let n = 200_000f64;
    let t = thread_cpu_ns();
    let bodies: Vec<Vec<u8>> = batches
        .iter()
        .map(|b| wire::gzip(&wire::encode_batch("ws", b).expect("encode"), 6))
        .collect();
    let enc = (thread_cpu_ns() - t) as f64 / 1e9;
    let t = thread_cpu_ns();
    let decoded: Vec<_> = bodies
        .iter()
        .map(|z| {
            let b = wire::decode_batch(&wire::gunzip(z, 1 << 30).expect("gunzip")).expect("decode");
            let h = b.verify_chain().expect("chain");
            (b, h)
        })
        .collect();
    let dec = (thread_cpu_ns() - t) as f64 / 1e9;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = bobbin_sync::receiver::Store::open(&dir.path().join("s.db")).expect("store");
    let t = thread_cpu_ns();
    for (b, h) in &decoded {
        store.ingest("ws", b, h, 0).expect("ingest");
    }
    let ing = (thread_cpu_ns() - t) as f64 / 1e9;
    println!(
        "CPU per record, one thread: encode+gzip {:.2} us, gunzip+decode+rehash {:.2} us, store {:.2} us",
        enc / n * 1e6,
        dec / n * 1e6,
        ing / n * 1e6
    );
}

fn main() {
    // Child mode: generate the journal and exit.
    if let Ok(spec) = std::env::var("BOBBIN_BENCH_GENERATE") {
        let (path, n) = spec.split_once('|').expect("path|n");
        generate(Path::new(path), n.parse().expect("n"));
        return;
    }
    let n: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let journal_path = dir.path().join("journal.db");

    let t = Instant::now();
    let status = std::process::Command::new(std::env::current_exe().expect("exe"))
        .env(
            "BOBBIN_BENCH_GENERATE",
            format!("{}|{n}", journal_path.display()),
        )
        .status()
        .expect("generator");
    assert!(status.success());
    println!("generated {n} records in {:.1?}", t.elapsed());

    let key = AgentKey::from_seed([42; 32]);
    let agents = dir.path().join("agents.toml");
    std::fs::write(
        &agents,
        format!(
            "[[agent]]\nid = \"ws-bench\"\ntoken = \"{TOKEN}\"\npublic_key = \"{}\"\n",
            key.public_key_base64()
        ),
    )
    .expect("agents file");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_bobbin-receiver"))
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("receiver.db"))
        .arg("--agents")
        .arg(&agents)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn bobbin-receiver");
    let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let line = lines.next().expect("receiver line").expect("read");
    let addr = line
        .strip_prefix("listening on ")
        .expect("address line")
        .to_string();
    std::thread::spawn(move || for _ in lines {});

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let journal = Arc::new(SqliteJournal::open(&journal_path).expect("journal"));
        let mut cfg = SyncConfig::new(format!("http://{addr}"), "ws-bench", TOKEN);
        cfg.batch_max_records = 2_000;
        cfg.in_flight = 2;
        let src: Arc<dyn UploadSource> = journal.clone();
        let (up, handle) = Uploader::new(cfg, key, vec![src]).expect("uploader");
        let task = tokio::spawn(up.run());
        let rss0 = proc_status("VmRSS:");
        println!("uploader RSS before the drain: {} KiB", rss0);
        println!("{:>10} {:>9} {:>12} {:>10} {:>10}", "records", "secs", "records/s", "VmRSS KiB", "VmHWM KiB");
        let start = Instant::now();
        let mut next_mark = 100_000u64.min(n as u64);
        loop {
            let c = journal.cursor().expect("cursor");
            if c >= next_mark {
                let secs = start.elapsed().as_secs_f64();
                println!(
                    "{:>10} {:>9.2} {:>12.0} {:>10} {:>10}",
                    c,
                    secs,
                    c as f64 / secs,
                    proc_status("VmRSS:"),
                    proc_status("VmHWM:")
                );
                next_mark += 100_000;
            }
            if c >= n as u64 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let secs = start.elapsed().as_secs_f64();
        let s = handle.status();
        handle.shutdown();
        let _ = task.await;
        println!("---");
        println!("drained {n} records in {secs:.2} s: {:.0} records/s", n as f64 / secs);
        println!(
            "wire: {} bytes of gzip bodies in {} batches = {:.1} bytes/record (+ about {:.2} bytes/record of HTTP headers)",
            s.counters.bytes_sent,
            s.counters.batches,
            s.counters.bytes_sent as f64 / n as f64,
            s.counters.batches as f64 * 450.0 / n as f64
        );
        println!(
            "accepted {} duplicate {} conflict {} rejected {} retries {}",
            s.counters.accepted, s.counters.duplicate, s.counters.conflict, s.counters.rejected, s.counters.retries
        );
        println!(
            "uploader VmRSS {} KiB at the end, VmHWM {} KiB (before the drain {} KiB)",
            proc_status("VmRSS:"),
            proc_status("VmHWM:"),
            rss0
        );
        assert_eq!(s.counters.accepted, n as u64);
    });
    let _ = child.kill();
    let _ = child.wait();
    stages();
}
