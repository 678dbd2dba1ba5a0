//! The ingest SIGKILLed mid-stream and restarted: every message the broker got ends up stored
//! exactly once per (machine, seq) — those acknowledged before the kill, and those the broker
//! redelivers after it. The ingest runs in a child process: this test binary re-executes
//! itself, running only `ingest_child`, with the config in the environment.

mod mqtt_common;

use bobbin_agent::equipment::{self, MachineConfig, MqttConfig};
use bobbin_agent::journal::{Journal, JournalConfig};
use mqtt_common::*;
use rumqttc::QoS;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CHILD_DB: &str = "BOBBIN_MQTT_CHILD_DB";
const CHILD_CFG: &str = "BOBBIN_MQTT_CHILD_CFG";

/// The child's body; does nothing unless started by `kill_and_restart_mid_stream`.
#[test]
fn ingest_child() {
    let (Ok(db), Ok(cfg)) = (std::env::var(CHILD_DB), std::env::var(CHILD_CFG)) else {
        return;
    };
    #[derive(serde::Deserialize)]
    struct F {
        mqtt: MqttConfig,
        machines: Vec<MachineConfig>,
    }
    let f: F = toml::from_str(&cfg).expect("child config");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let journal = Journal::open(&JournalConfig::at(&db)).expect("journal");
        let (_stop_tx, stop) = tokio::sync::watch::channel(false);
        // Runs until the parent kills this process.
        let r = equipment::run(f.mqtt, f.machines, journal.handle(), stop).await;
        panic!("ingest ended: {r:?}");
    });
}

struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_child(db: &Path, cfg: &str) -> ChildGuard {
    let exe = std::env::current_exe().expect("current exe");
    let child = Command::new(exe)
        .args(["--exact", "ingest_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_DB, db)
        .env(CHILD_CFG, cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    ChildGuard(child)
}

fn sigkill(mut c: ChildGuard) {
    // Child::kill sends SIGKILL on Unix.
    c.0.kill().expect("SIGKILL");
    c.0.wait().expect("reap");
}

fn msg(seq: u64) -> (String, Vec<u8>, QoS) {
    (
        "factory/sew-1/data".into(),
        format!(
            r#"{{"seq": {seq}, "stitches": {}, "trims": {seq}}}"#,
            seq * 7
        )
        .into_bytes(),
        QoS::AtLeastOnce,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_and_restart_mid_stream() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Mosquitto when installed; otherwise the embedded broker in this (parent) process,
    // which outlives the killed child either way.
    let mosquitto = Mosquitto::start(dir.path());
    let _embedded;
    let addr: SocketAddr = match &mosquitto {
        Some(m) => ([127, 0, 0, 1], m.port).into(),
        None => {
            println!("NOTICE: mosquitto not installed; using the embedded broker");
            let a: SocketAddr = ([127, 0, 0, 1], free_port()).into();
            _embedded = bobbin_drivers::mqtt::EmbeddedBroker::start(
                &bobbin_drivers::mqtt::EmbeddedBrokerConfig::new(a),
            )
            .expect("embedded broker");
            a
        }
    };
    let db = dir.path().join("journal.db");
    let cfg = format!(
        r#"
        [mqtt]
        enabled = true
        broker = "mqtt://{addr}"
        client_id = "bobbin-kill-test"
        reconnect_max_s = 1
        [[mqtt.patterns]]
        pattern = "factory/+machine/data"
        [[machines]]
        id = "sew-1"
        kind = "sewing"
        "#
    );
    let readings = |db: &Path| count(db, "SELECT count(*) FROM equipment_readings");

    let child = start_child(&db, &cfg);
    // Probe until the child's subscription is live (its session then persists).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while readings(&db) == 0 {
        publish_all(addr, "probe", vec![msg(1_000_000)]).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            std::time::Instant::now() < deadline,
            "child never subscribed"
        );
    }

    const N: u64 = 6000;
    let publisher = tokio::spawn(async move {
        for chunk in 0..(N / 100) {
            let msgs = (chunk * 100..(chunk + 1) * 100).map(msg).collect();
            publish_all(addr, "pub-kill", msgs).await;
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    });

    let mut child = child;
    for (round, at) in [1000i64, 2500, 4000].into_iter().enumerate() {
        let dbp = db.clone();
        tokio::task::spawn_blocking(move || {
            wait_for(Duration::from_secs(60), "readings before the kill", || {
                count(&dbp, "SELECT count(*) FROM equipment_readings") >= at
            })
        })
        .await
        .expect("wait");
        sigkill(child);
        println!("round {round}: SIGKILL at {} readings", readings(&db));
        child = start_child(&db, &cfg);
    }
    publisher.await.expect("publisher");
    let dbp = db.clone();
    tokio::task::spawn_blocking(move || {
        wait_for(Duration::from_secs(90), "every message stored", || {
            count(&dbp, "SELECT count(*) FROM equipment_readings") == N as i64 + 1
        })
    })
    .await
    .expect("wait");
    drop(child);
    let distinct = count(
        &db,
        "SELECT count(*) FROM (SELECT DISTINCT machine, seq FROM equipment_readings)",
    );
    assert_eq!(distinct, N as i64 + 1, "each (machine, seq) exactly once");
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM equipment_readings WHERE seq < 6000"
        ),
        N as i64
    );
    assert_eq!(count(&db, "SELECT count(*) FROM rejects"), 0);
}
