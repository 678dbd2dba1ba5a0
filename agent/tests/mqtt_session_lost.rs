//! A broker that comes back without our session (restarted, persistence off) cannot say
//! what it dropped: the agent (`bobbin run`) records an `equipment.gap` naming the lost
//! session, counts it in the status API, subscribes again, and data flows on. The same
//! holds when the broker forgot us while the agent itself was down, and for the embedded
//! broker, which starts afresh with every agent start.

mod common;
mod mqtt_common;

use bobbin_tests::http_get;
use common::{run_agent, Watched};
use mqtt_common::*;
use rumqttc::QoS;
use std::net::SocketAddr;
use std::time::Duration;

fn msg(seq: u64) -> (String, Vec<u8>, QoS) {
    (
        "factory/sew-1/data".into(),
        format!(r#"{{"seq": {seq}, "stitches": {}}}"#, seq * 7).into_bytes(),
        QoS::AtLeastOnce,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_broker_session_is_recorded_as_a_gap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(broker) = Mosquitto::start(dir.path()) else {
        // The embedded broker lives inside the agent, so it cannot lose the agent's session
        // while the agent lives; this scenario needs an external broker.
        println!("NOTICE: mosquitto not installed; lost-session test skipped");
        return;
    };
    let port = broker.port;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let status_port = free_port();
    let config = session_config(
        dir.path(),
        &format!("broker = \"mqtt://{addr}\""),
        status_port,
    );
    let agent = run_agent(&config);
    let db = dir.path().join("data/journal.db");
    let readings = || count(&db, "SELECT count(*) FROM equipment_readings");
    let gaps = || {
        count(
            &db,
            "SELECT count(*) FROM records WHERE kind = 'equipment.gap' \
             AND json_extract(body, '$.reason') = 'session_lost'",
        )
    };

    // Probe until the subscription is live.
    let mut probe = 1_000_000;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while readings() == 0 {
        probe += 1;
        publish_all(addr, "probe", vec![msg(probe)]).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            std::time::Instant::now() < deadline,
            "agent never subscribed"
        );
    }
    publish_all(addr, "pub", (0..100).map(msg).collect()).await;
    wait_for_async(Duration::from_secs(30), "first 100 readings", || {
        count(
            &db,
            "SELECT count(*) FROM equipment_readings WHERE seq < 100",
        ) == 100
    })
    .await;
    assert_eq!(gaps(), 0, "no gap while the session holds");

    // The broker dies and comes back on the same port with no memory of us.
    drop(broker);
    let _broker = Mosquitto::start_on(dir.path(), port).expect("restart mosquitto");
    wait_for_async(Duration::from_secs(30), "the equipment.gap record", || {
        gaps() == 1
    })
    .await;

    // Subscribed again: new data flows.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while count(
        &db,
        "SELECT count(*) FROM equipment_readings WHERE seq >= 100 AND seq < 200",
    ) < 100
    {
        publish_all(addr, "pub2", (100..200).map(msg).collect()).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            std::time::Instant::now() < deadline,
            "no data after the reconnect"
        );
    }
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM (SELECT DISTINCT seq FROM equipment_readings WHERE seq < 200)"
        ),
        200
    );

    // The status API counts it, for the supervisor's page.
    let (code, body) =
        http_get(&format!("127.0.0.1:{status_port}"), "/api/status", None).expect("status");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("status JSON");
    assert_eq!(v["machines"]["sessions_lost"], 1, "{body}");
    assert_eq!(v["machines"]["connected"], true, "{body}");
    let (code, metrics) =
        http_get(&format!("127.0.0.1:{status_port}"), "/metrics", None).expect("metrics");
    assert_eq!(code, 200);
    for line in [
        "bobbin_mqtt_connected 1",
        "bobbin_mqtt_sessions_lost_total 1",
        "bobbin_machine_readings_total{machine=\"sew-1\"} ",
    ] {
        assert!(metrics.contains(line), "{line} missing from {metrics}");
    }
    drop(agent);
}

/// The agent's config: one sewing machine over MQTT on `broker_line`, status on
/// `status_port` (0 for any).
fn session_config(
    dir: &std::path::Path,
    broker_line: &str,
    status_port: u16,
) -> std::path::PathBuf {
    let config = dir.join("bobbin.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[agent]
id = "session-agent"
data_dir = "data"
[status]
listen = "127.0.0.1:{status_port}"
[mqtt]
enabled = true
{broker_line}
client_id = "bobbin-session-test"
reconnect_max_s = 1
[[mqtt.patterns]]
pattern = "factory/+machine/data"
[[machines]]
id = "sew-1"
kind = "sewing"
"#
        ),
    )
    .expect("config");
    config
}

/// `equipment.gap` records for a lost session, with their details.
fn session_gaps(db: &std::path::Path) -> Vec<String> {
    if !db.exists() {
        return Vec::new();
    }
    let conn = reader(db);
    let mut st = conn
        .prepare(
            "SELECT json_extract(body, '$.detail') FROM records WHERE kind = 'equipment.gap' \
             AND json_extract(body, '$.reason') = 'session_lost' ORDER BY seq",
        )
        .expect("prepare");
    let rows = st.query_map([], |r| r.get::<_, String>(0)).expect("query");
    rows.map(|r| r.expect("row")).collect()
}

/// Starts the agent and waits until it has connected and noted its session at a time
/// after `after_ms`; returns it and that time.
fn start_and_connect(
    config: &std::path::Path,
    db: &std::path::Path,
    after_ms: i64,
) -> (Watched, i64) {
    let agent = run_agent(config);
    let noted = |db: &std::path::Path| {
        count(
            db,
            &format!("SELECT count(*) FROM mqtt_sessions WHERE last_ms > {after_ms}"),
        ) == 1
    };
    wait_for(Duration::from_secs(30), "the agent to connect", || {
        noted(db)
    });
    let at = count(db, "SELECT max(last_ms) FROM mqtt_sessions");
    (agent, at)
}

/// Starts the agent, waits for exactly one lost-session gap, stops it, and returns the gap's
/// detail (still exactly one after the stop).
fn one_gap_on_this_start(config: &std::path::Path, db: &std::path::Path, after_ms: i64) -> String {
    let (agent, _) = start_and_connect(config, db, after_ms);
    wait_for(Duration::from_secs(30), "the equipment.gap record", || {
        session_gaps(db).len() == 1
    });
    stop(agent);
    let gaps = session_gaps(db);
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    gaps[0].clone()
}

fn stop(agent: Watched) {
    agent.signal(libc::SIGTERM);
    let (status, _, err) = agent.wait(Duration::from_secs(30));
    assert!(status.success(), "agent exit {status:?}: {err:?}");
}

#[test]
fn a_broker_that_forgot_us_while_the_agent_was_down_is_a_gap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(broker) = Mosquitto::start(dir.path()) else {
        println!("NOTICE: mosquitto not installed; lost-session test skipped");
        return;
    };
    let port = broker.port;
    let config = session_config(
        dir.path(),
        &format!("broker = \"mqtt://127.0.0.1:{port}\""),
        0,
    );
    let db = dir.path().join("data/journal.db");

    // First start: no session was expected, so none is missing.
    let (agent, at) = start_and_connect(&config, &db, 0);
    stop(agent);
    assert!(session_gaps(&db).is_empty());

    // The broker kept our session across the agent's restart: still no gap.
    let (agent, at) = start_and_connect(&config, &db, at);
    stop(agent);
    assert!(session_gaps(&db).is_empty(), "{:?}", session_gaps(&db));

    // Now the broker restarts (persistence off) while the agent is down.
    drop(broker);
    let _broker = Mosquitto::start_on(dir.path(), port).expect("restart mosquitto");
    let detail = one_gap_on_this_start(&config, &db, at);
    assert!(detail.contains("had no session"), "{detail}");
}

#[test]
fn every_restart_of_the_embedded_broker_is_a_gap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = session_config(
        dir.path(),
        &format!("listen = \"127.0.0.1:{}\"", free_port()),
        0,
    );
    let db = dir.path().join("data/journal.db");
    let (agent, at) = start_and_connect(&config, &db, 0);
    stop(agent);
    assert!(
        session_gaps(&db).is_empty(),
        "the first start loses nothing"
    );
    // The embedded broker's log is in memory: the restarted agent's broker has no session.
    let detail = one_gap_on_this_start(&config, &db, at);
    assert!(detail.contains("embedded broker"), "{detail}");
}
