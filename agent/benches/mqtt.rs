//! QoS 1 messages/s from Mosquitto to durable (readings committed, then PUBACKed), beside the
//! rate at which the same broker delivers to a subscriber that only counts, measured in the
//! same run; the ingest's peak RSS (VmHWM) and CPU time per message. The ingest runs in a
//! child process (this bench binary re-executed) so the publisher and the counting
//! subscriber do not inflate it.
//!
//! The two are measured in alternating rounds (ceiling, ingest, ceiling, ingest, …) and the
//! ratio is taken per round: on a 2-core machine the broker, the publisher and the consumer
//! share the cores, so a burst of unrelated load skews one round, not the verdict. The
//! verdict uses the median round.
//!
//! Run: `cargo bench -p bobbin-agent --bench mqtt` (BOBBIN_BENCH_N sets the message count
//! per round, BOBBIN_BENCH_ROUNDS the number of rounds).

#[path = "../tests/mqtt_common/mod.rs"]
mod mqtt_common;

use bobbin_agent::equipment::{self, MachineConfig, MqttConfig};
use bobbin_agent::journal::{Journal, JournalConfig};
use mqtt_common::*;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_DB: &str = "BOBBIN_BENCH_CHILD_DB";
const CHILD_CFG: &str = "BOBBIN_BENCH_CHILD_CFG";

fn child(db: String, cfg: String) {
    #[derive(serde::Deserialize)]
    struct F {
        mqtt: MqttConfig,
        machines: Vec<MachineConfig>,
    }
    let f: F = toml::from_str(&cfg).expect("child config");
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_writer(std::io::stderr)
        .try_init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let journal = Journal::open(&JournalConfig::at(&db)).expect("journal");
        let (_stop_tx, stop) = tokio::sync::watch::channel(false);
        let r = equipment::run(f.mqtt, f.machines, journal.handle(), stop).await;
        panic!("ingest ended: {r:?}");
    });
}

/// About 120 bytes, like a sewing machine gateway's message.
fn payload(seq: u64) -> Vec<u8> {
    format!(
        r#"{{"seq":{seq},"ts":1700000000000,"stitches":{},"trims":{},"run_s":{},"needle_stops":{},"speed_spm":3200}}"#,
        1_000_000 + seq * 7,
        10_000 + seq,
        5_000 + seq,
        2_000 + seq
    )
    .into_bytes()
}

fn messages(n: u64) -> Vec<(String, Vec<u8>, QoS)> {
    (0..n)
        .map(|s| {
            (
                "factory/sew-1/data".to_string(),
                payload(s),
                QoS::AtLeastOnce,
            )
        })
        .collect()
}

/// Messages/s delivered by the broker to a subscriber that only counts (QoS 1, auto acks).
async fn ceiling(addr: SocketAddr, n: u64, round: usize) -> f64 {
    let mut opts = MqttOptions::new(
        format!("bench-counter-{round}"),
        addr.ip().to_string(),
        addr.port(),
    );
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut el) = AsyncClient::new(opts, 100);
    client
        .subscribe("factory/+/data", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    loop {
        if let Ok(Event::Incoming(Packet::SubAck(_))) = el.poll().await {
            break;
        }
    }
    let start = Instant::now();
    let publisher = tokio::spawn(publish_all(addr, "bench-pub", messages(n)));
    let mut got = 0;
    while got < n {
        match tokio::time::timeout(Duration::from_secs(30), el.poll()).await {
            Ok(Ok(Event::Incoming(Packet::Publish(_)))) => got += 1,
            Ok(Ok(_)) => {}
            other => panic!("counting subscriber failed: {other:?}"),
        }
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    publisher.await.expect("publisher");
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_secs(1), el.poll()).await;
    rate
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// User plus system CPU time of a process, in clock ticks (fields 14 and 15 of
/// /proc/PID/stat, counted after the parenthesised command name).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// What one ingest round measured.
struct IngestRound {
    rate: f64,
    hwm_kb: u64,
    cpu_us_per_msg: f64,
}

async fn ingest_rate(addr: SocketAddr, n: u64, dir: &std::path::Path, round: usize) -> IngestRound {
    let dir = dir.join(format!("round-{round}"));
    std::fs::create_dir_all(&dir).expect("round dir");
    let db = dir.join("journal.db");
    let cfg = format!(
        r#"
        [mqtt]
        enabled = true
        broker = "mqtt://{addr}"
        client_id = "bench-ingest-{round}"
        [[mqtt.patterns]]
        pattern = "factory/+machine/data"
        [[machines]]
        id = "sew-1"
        kind = "sewing"
        "#
    );
    let exe = std::env::current_exe().expect("current exe");
    let child = Command::new(exe)
        .env(CHILD_DB, &db)
        .env(CHILD_CFG, &cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn ingest");
    // Killed on every exit path, a panic included.
    let child = KillOnDrop(child);
    let readings = || count(&db, "SELECT coalesce(max(id), 0) FROM equipment_readings");
    let deadline = Instant::now() + Duration::from_secs(30);
    while readings() == 0 {
        publish_all(
            addr,
            "bench-probe",
            vec![(
                "factory/sew-1/data".into(),
                payload(u64::MAX / 2),
                QoS::AtLeastOnce,
            )],
        )
        .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(Instant::now() < deadline, "ingest never subscribed");
    }
    let pid = child.0.id();
    let cpu_before = cpu_ticks(pid).unwrap_or(0);
    let start = Instant::now();
    let publisher = tokio::spawn(publish_all(addr, "bench-pub", messages(n)));
    let target = n as i64 + 1;
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut report = Instant::now() + Duration::from_secs(5);
    while readings() < target {
        if Instant::now() > report {
            report += Duration::from_secs(5);
            eprintln!(
                "  ... {} of {target} stored, publisher done: {}",
                readings(),
                publisher.is_finished()
            );
            if std::env::var_os("BOBBIN_BENCH_DIAG").is_some() {
                let out = Command::new("ss")
                    .args(["-tni", "state", "established"])
                    .output();
                if let Ok(o) = out {
                    eprintln!("{}", String::from_utf8_lossy(&o.stdout));
                }
            }
        }
        assert!(Instant::now() < deadline, "ingest did not finish");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let cpu = cpu_ticks(pid).unwrap_or(0).saturating_sub(cpu_before);
    publisher.await.expect("publisher");
    let exact = count(&db, "SELECT count(*) FROM equipment_readings");
    assert_eq!(exact, target, "every message stored once");
    let hwm_kb = vm_hwm_kb(pid).unwrap_or(0);
    drop(child);
    forget_session(addr, &format!("bench-ingest-{round}")).await;
    // Clock ticks are 1/100 s on Linux (sysconf(_SC_CLK_TCK)).
    IngestRound {
        rate,
        hwm_kb,
        cpu_us_per_msg: cpu as f64 * 10_000.0 / n as f64,
    }
}

/// Ends a persistent session: otherwise the broker keeps queueing every later round's
/// messages for the killed ingest, and each round runs slower than the one before.
async fn forget_session(addr: SocketAddr, client_id: &str) {
    let mut opts = MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
    opts.set_clean_session(true);
    let (client, mut el) = AsyncClient::new(opts, 10);
    loop {
        match tokio::time::timeout(Duration::from_secs(10), el.poll()).await {
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => break,
            Ok(Ok(_)) => {}
            other => panic!("could not end the ingest's session: {other:?}"),
        }
    }
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_secs(1), el.poll()).await;
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if let (Ok(db), Ok(cfg)) = (std::env::var(CHILD_DB), std::env::var(CHILD_CFG)) {
        child(db, cfg);
        return;
    }
    // `cargo test --benches` runs this with --bench absent; keep that quick.
    if !std::env::args().any(|a| a == "--bench") {
        println!("mqtt bench: run with `cargo bench -p bobbin-agent --bench mqtt`");
        return;
    }
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let n = env("BOBBIN_BENCH_N", 200_000);
    let rounds = env("BOBBIN_BENCH_ROUNDS", 5).max(1) as usize;
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(m) = Mosquitto::start(dir.path()) else {
        println!("NOTICE: mosquitto not installed; mqtt bench skipped");
        return;
    };
    let addr: SocketAddr = ([127, 0, 0, 1], m.port).into();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "mqtt bench: {rounds} rounds of {n} QoS 1 messages of ~{} bytes via Mosquitto",
        payload(0).len()
    );
    println!("  round  ceiling msg/s  ingest msg/s  ratio  ingest CPU us/msg  peak RSS MB");
    let mut ratios = Vec::new();
    let mut hwm_max = 0;
    for round in 0..rounds {
        let (ceil, ing) = rt.block_on(async {
            let ceil = ceiling(addr, n, round).await;
            (ceil, ingest_rate(addr, n, dir.path(), round).await)
        });
        let ratio = ing.rate / ceil * 100.0;
        ratios.push(ratio);
        hwm_max = hwm_max.max(ing.hwm_kb);
        println!(
            "  {round:>5}  {ceil:>13.0}  {:>12.0}  {ratio:>4.0} %  {:>17.1}  {:>11.1}",
            ing.rate,
            ing.cpu_us_per_msg,
            ing.hwm_kb as f64 / 1024.0
        );
    }
    let (lo, hi) = ratios
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), r| (l.min(*r), h.max(*r)));
    println!(
        "  ingest / ceiling: median {:.0} % (range {lo:.0}-{hi:.0} %), target >= 80 %",
        median(ratios.clone())
    );
    println!(
        "  ingest peak RSS: {:.1} MB, target <= 40 MB",
        hwm_max as f64 / 1024.0
    );
}
