//! A broker that comes back without our session (restarted, persistence off) cannot say
//! what it dropped: the agent (`bobbin run`) records an `equipment.gap` naming the lost
//! session, counts it in the status API, subscribes again, and data flows on.

mod common;
mod mqtt_common;

use bobbin_tests::http_get;
use common::run_agent;
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
    let config = dir.path().join("bobbin.toml");
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
broker = "mqtt://{addr}"
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
