//! The agent (`bobbin run`, the real binary) SIGKILLed mid-stream and restarted: every
//! message the broker got ends up stored exactly once per (machine, seq) — those
//! acknowledged before the kill, and those the broker redelivers after it — and the journal's
//! chain still verifies.

mod common;
mod mqtt_common;

use common::{run, run_agent, write_config, Watched};
use mqtt_common::*;
use rumqttc::QoS;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

fn sigkill(mut agent: Watched) {
    // Child::kill sends SIGKILL on Unix.
    agent.child.kill().expect("SIGKILL");
    agent.child.wait().expect("reap");
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

/// A second machine whose gateway sends no seq, only its own timestamp: a redelivered copy
/// is recognised by (machine, ts, values). Times are recent: older readings would fall to
/// the retention prune that runs at every start.
fn msg_without_seq(base_ms: i64, n: u64) -> (String, Vec<u8>, QoS) {
    (
        "factory/sew-2/data".into(),
        format!(
            r#"{{"ts": {}, "stitches": {}}}"#,
            base_ms + n as i64,
            n * 11
        )
        .into_bytes(),
        QoS::AtLeastOnce,
    )
}

/// Mosquitto, the production reference (skips only where it is not installed and
/// BOBBIN_REQUIRE_MOSQUITTO is unset).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_and_restart_mid_stream_mosquitto() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(m) = Mosquitto::start(dir.path()) else {
        println!("NOTICE: mosquitto not installed; skipping the Mosquitto kill test");
        return;
    };
    kill_and_restart_mid_stream(dir.path(), ([127, 0, 0, 1], m.port).into()).await;
}

/// The embedded broker (rumqttd) in this test process, so it outlives the killed agent the
/// way an external broker would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_and_restart_mid_stream_embedded_broker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let _broker = bobbin_drivers::mqtt::EmbeddedBroker::start(
        &bobbin_drivers::mqtt::EmbeddedBrokerConfig::new(addr),
    )
    .expect("embedded broker");
    kill_and_restart_mid_stream(dir.path(), addr).await;
}

async fn kill_and_restart_mid_stream(dir: &Path, addr: SocketAddr) {
    let config = write_config(
        dir,
        &format!(
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
[[machines]]
id = "sew-2"
kind = "sewing"
"#
        ),
    );
    let db = dir.join("data/journal.db");
    let readings = |db: &Path| count(db, "SELECT count(*) FROM equipment_readings");

    let agent = run_agent(&config);
    // Probe until the agent's subscription is live (its session then persists).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while readings(&db) == 0 {
        publish_all(addr, "probe", vec![msg(1_000_000)]).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            std::time::Instant::now() < deadline,
            "agent never subscribed"
        );
    }

    // A steady stream (chunks of 500, 10 ms apart), so each kill lands with messages in
    // every stage: received, being committed, committed but not yet acknowledged.
    const N: u64 = 30_000;
    // Every third message also has a seq-less twin from sew-2.
    const NO_SEQ: i64 = N.div_ceil(3) as i64;
    let base_ms = chrono::Utc::now().timestamp_millis();
    let publisher = tokio::spawn(async move {
        for chunk in 0..(N / 500) {
            let msgs = (chunk * 500..(chunk + 1) * 500)
                .flat_map(|s| {
                    let mut m = vec![msg(s)];
                    if s % 3 == 0 {
                        m.push(msg_without_seq(base_ms, s));
                    }
                    m
                })
                .collect();
            publish_all(addr, "pub-kill", msgs).await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });

    let mut agent = agent;
    for (round, at) in [5_000i64, 12_500, 20_000].into_iter().enumerate() {
        let dbp = db.clone();
        tokio::task::spawn_blocking(move || {
            wait_for(Duration::from_secs(60), "readings before the kill", || {
                count(&dbp, "SELECT count(*) FROM equipment_readings") >= at
            })
        })
        .await
        .expect("wait");
        sigkill(agent);
        println!("round {round}: SIGKILL at {} readings", readings(&db));
        agent = run_agent(&config);
    }
    publisher.await.expect("publisher");
    let per_machine = |m: &str| {
        count(
            &db,
            &format!("SELECT count(*) FROM equipment_readings WHERE machine = '{m}'"),
        )
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while per_machine("sew-1") != N as i64 + 1 || per_machine("sew-2") < NO_SEQ {
        assert!(
            std::time::Instant::now() < deadline,
            "not every message stored: sew-1 {} of {}, sew-2 {} of {NO_SEQ}, rejects {}",
            per_machine("sew-1"),
            N + 1,
            per_machine("sew-2"),
            count(&db, "SELECT count(*) FROM rejects")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    agent.signal(libc::SIGTERM);
    let (status, _, stderr) = agent.wait(Duration::from_secs(30));
    assert!(status.success(), "agent exit {status:?}: {stderr:?}");
    let distinct = count(
        &db,
        "SELECT count(*) FROM (SELECT DISTINCT seq FROM equipment_readings \
         WHERE machine = 'sew-1')",
    );
    assert_eq!(distinct, N as i64 + 1, "each (machine, seq) exactly once");
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM equipment_readings WHERE machine = 'sew-1' AND seq < 30000"
        ),
        N as i64
    );
    assert_eq!(
        per_machine("sew-2"),
        NO_SEQ,
        "each seq-less reading exactly once"
    );
    assert_eq!(count(&db, "SELECT count(*) FROM rejects"), 0);
    // Three kills left the hash chain whole.
    let (code, out, err) = run(&["verify", "--db", db.to_str().expect("utf-8 path")]);
    assert_eq!(code, 0, "verify failed: {out}{err}");
    assert!(out.contains("chain intact"), "{out}");
}
