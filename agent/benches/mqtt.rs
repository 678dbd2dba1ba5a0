//! QoS 1 messages/s from Mosquitto to durable (readings committed, then PUBACKed), beside the
//! rate at which the same broker delivers to a subscriber that only counts, measured in the
//! same run; and the ingest's peak RSS (VmHWM). The ingest runs in a child process (this
//! bench binary re-executed) so the publisher and the counting subscriber do not inflate it.
//!
//! Run: `cargo bench -p bobbin-agent --bench mqtt` (BOBBIN_BENCH_N sets the message count).

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
async fn ceiling(addr: SocketAddr, n: u64) -> f64 {
    let mut opts = MqttOptions::new("bench-counter", addr.ip().to_string(), addr.port());
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
    let publisher = tokio::spawn(publish_all(addr, "bench-pub-1", messages(n)));
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

async fn ingest_rate(addr: SocketAddr, n: u64, dir: &std::path::Path) -> (f64, u64) {
    let db = dir.join("journal.db");
    let cfg = format!(
        r#"
        [mqtt]
        enabled = true
        broker = "mqtt://{addr}"
        client_id = "bench-ingest"
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
    let start = Instant::now();
    let publisher = tokio::spawn(publish_all(addr, "bench-pub-2", messages(n)));
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
    publisher.await.expect("publisher");
    let exact = count(&db, "SELECT count(*) FROM equipment_readings");
    assert_eq!(exact, target, "every message stored once");
    let hwm = vm_hwm_kb(child.0.id()).unwrap_or(0);
    drop(child);
    (rate, hwm)
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
    let n: u64 = std::env::var("BOBBIN_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
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
    let (ceil, (rate, hwm)) = rt.block_on(async {
        let ceil = ceiling(addr, n).await;
        let ingest = ingest_rate(addr, n, dir.path()).await;
        (ceil, ingest)
    });
    let ratio = rate / ceil * 100.0;
    println!(
        "mqtt bench: {n} QoS 1 messages of ~{} bytes via Mosquitto",
        payload(0).len()
    );
    println!("  counting subscriber (ceiling): {ceil:>8.0} msg/s");
    println!(
        "  ingest to durable + PUBACK:    {rate:>8.0} msg/s  ({ratio:.0} % of ceiling, target >= 80 %)"
    );
    println!(
        "  ingest peak RSS (VmHWM):       {:>8.1} MB      (target <= 40 MB)",
        hwm as f64 / 1024.0
    );
}
