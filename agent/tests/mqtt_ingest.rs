//! Equipment ingest against real brokers on loopback ports: the embedded one and Mosquitto
//! (skipped with a notice when it is not installed). Exactly once per (machine, seq),
//! malformed payloads become rejects while good ones flow on, iron alerts are debounced,
//! and Sparkplug B births, aliases, gaps and rebirth requests.

mod mqtt_common;

use bobbin_agent::equipment::sparkplug::{decode, Metric, MetricValue, Payload};
use bobbin_agent::equipment::{self, MachineConfig, MqttConfig};
use bobbin_agent::journal::{Journal, JournalConfig};
use mqtt_common::*;
use prost::Message as _;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

fn parse(text: &str) -> (MqttConfig, Vec<MachineConfig>) {
    #[derive(serde::Deserialize)]
    struct F {
        mqtt: MqttConfig,
        #[serde(default)]
        machines: Vec<MachineConfig>,
    }
    let f: F = toml::from_str(text).expect("config parses");
    (f.mqtt, f.machines)
}

fn config(broker_line: &str) -> String {
    format!(
        r#"
        [mqtt]
        enabled = true
        {broker_line}
        client_id = "bobbin-test-{}"
        max_payload_bytes = 4096
        reconnect_max_s = 1
        sparkplug_groups = ["G"]
        [[mqtt.patterns]]
        pattern = "factory/+machine/data"
        [[machines]]
        id = "sew-1"
        kind = "sewing"
        station = "S1"
        [[machines]]
        id = "iron-1"
        kind = "iron"
        station = "S2"
        temp_range_c = [140, 170]
        [[machines]]
        id = "iron-sp"
        kind = "iron"
        station = "S3"
        temp_range_c = [140, 170]
        sparkplug = {{ group = "G", node = "E", device = "D" }}
        "#,
        free_port()
    )
}

fn json_msg(machine: &str, body: &str) -> (String, Vec<u8>, QoS) {
    (
        format!("factory/{machine}/data"),
        body.as_bytes().to_vec(),
        QoS::AtLeastOnce,
    )
}

/// Publishes a probe until the ingest has stored it: its subscription is live after that.
async fn probe(addr: SocketAddr, db: &Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        publish_all(
            addr,
            "probe",
            vec![json_msg("sew-1", r#"{"seq": 999999999, "stitches": 0}"#)],
        )
        .await;
        for _ in 0..10 {
            if count(
                db,
                "SELECT count(*) FROM equipment_readings WHERE seq = 999999999",
            ) == 1
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ingest never subscribed"
        );
    }
}

/// The equipment ingest on its own journal in a temp dir, connected to its broker.
struct Ingest {
    eq: equipment::Equipment,
    stop_tx: tokio::sync::watch::Sender<bool>,
    journal: Journal,
    db: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Ingest {
    async fn start(broker_line: &str) -> Ingest {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("journal.db");
        let journal = Journal::open(&JournalConfig::at(&db)).expect("journal");
        let (cfg, machines) = parse(&config(broker_line));
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let eq = equipment::spawn(cfg, machines, journal.handle(), stop).expect("spawn");
        // The embedded broker starts inside the ingest; wait for its client to connect.
        wait_for_async(Duration::from_secs(20), "ingest connected", || {
            eq.status().connected
        })
        .await;
        Ingest {
            eq,
            stop_tx,
            journal,
            db,
            _dir: dir,
        }
    }

    /// Stops the ingest cleanly (within 10 s) and closes the journal.
    async fn stop(self) {
        self.stop_tx.send(true).expect("stop");
        tokio::time::timeout(Duration::from_secs(10), self.eq.join())
            .await
            .expect("ingest stops")
            .expect("clean stop");
        let journal = self.journal;
        tokio::task::spawn_blocking(move || journal.close())
            .await
            .expect("join")
            .expect("close");
    }
}

/// Runs `scenario` against the embedded broker, on a free port.
async fn on_embedded<F: std::future::Future<Output = ()>>(
    scenario: impl FnOnce(String, SocketAddr) -> F,
) {
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    scenario(format!("listen = \"{addr}\""), addr).await;
}

/// Runs `scenario` against a Mosquitto of its own (skipped with a notice when Mosquitto is
/// not installed and not required).
async fn on_mosquitto<F: std::future::Future<Output = ()>>(
    scenario: impl FnOnce(String, SocketAddr) -> F,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(m) = Mosquitto::start(dir.path()) else {
        println!("NOTICE: mosquitto not installed; skipping the Mosquitto test");
        return;
    };
    let addr: SocketAddr = ([127, 0, 0, 1], m.port).into();
    scenario(format!("broker = \"mqtt://{addr}\""), addr).await;
}

async fn exactly_once(broker_line: String, addr: SocketAddr) {
    let ingest = Ingest::start(&broker_line).await;
    let (db, eq) = (&ingest.db, &ingest.eq);
    probe(addr, db).await;

    const N: u64 = 1000;
    let mut msgs = Vec::new();
    for seq in 0..N {
        msgs.push(json_msg(
            "sew-1",
            &format!(
                r#"{{"seq": {seq}, "stitches": {}, "trims": {seq}}}"#,
                seq * 10
            ),
        ));
        // One excursion above the range, 10 readings long.
        let t = if (500..510).contains(&seq) {
            185.0
        } else {
            150.0
        };
        msgs.push(json_msg(
            "iron-1",
            &format!(r#"{{"seq": {seq}, "temp_c": {t}}}"#),
        ));
        if seq % 100 == 0 {
            // Malformed payloads in the middle of the stream.
            msgs.push(json_msg("sew-1", "not json"));
            msgs.push((
                "factory/sew-1/data".into(),
                b"\xff\xfe".to_vec(),
                QoS::AtLeastOnce,
            ));
            msgs.push(json_msg("iron-1", r#"{"temp_c": "hot"}"#));
            msgs.push(json_msg("ghost", r#"{"stitches": 1}"#));
            msgs.push((
                "factory/sew-1/data".into(),
                vec![b'{'; 5000],
                QoS::AtLeastOnce,
            ));
        }
    }
    // A publisher retrying: the same messages again.
    for seq in 0..50 {
        msgs.push(json_msg(
            "sew-1",
            &format!(
                r#"{{"seq": {seq}, "stitches": {}, "trims": {seq}}}"#,
                seq * 10
            ),
        ));
    }
    let rejects_expected = (N / 100 * 5) as i64;
    publish_all(addr, "pub-1", msgs).await;

    wait_for_async(Duration::from_secs(60), "every message stored", || {
        count(db, "SELECT count(*) FROM equipment_readings") == 2 * N as i64 + 1
            && count(db, "SELECT count(*) FROM rejects") == rejects_expected
            && eq.status().duplicates == 50
    })
    .await;
    let distinct = count(
        db,
        "SELECT count(*) FROM (SELECT DISTINCT machine, seq FROM equipment_readings)",
    );
    assert_eq!(distinct, 2 * N as i64 + 1);
    let reasons = count(
        db,
        "SELECT count(*) FROM rejects WHERE source LIKE 'mqtt:factory/%' AND length(raw) > 0",
    );
    assert_eq!(reasons, rejects_expected);
    assert_eq!(
        count(
            db,
            "SELECT count(*) FROM rejects WHERE reason LIKE '%exceeds%' AND length(raw) = 5000"
        ),
        (N / 100) as i64
    );
    assert_eq!(
        count(
            db,
            "SELECT count(*) FROM records WHERE kind = 'quality.alert'"
        ),
        1
    );
    assert_eq!(
        count(
            db,
            "SELECT count(*) FROM records WHERE kind = 'quality.alert.end'"
        ),
        1
    );
    assert_eq!(
        count(db, "SELECT count(*) FROM records WHERE kind = 'quality.alert' AND station = 'S2' AND body LIKE '%\"value_c\":185%'"),
        1
    );
    let st = eq.status();
    assert_eq!(st.stored, 2 * N + 1);
    assert_eq!(st.rejects, rejects_expected as u64);
    assert_eq!(st.alerts, 1);
    assert!(st.connected);
    assert_eq!(st.machines["iron-1"].alerts, 1);
    assert_eq!(st.machines["sew-1"].duplicates, 50);
    let json = serde_json::to_string(&st).expect("status serializes");
    assert!(json.contains("\"sessions_lost\":0"));

    ingest.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_broker_exactly_once_and_rejects() {
    on_embedded(exactly_once).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_exactly_once_and_rejects() {
    on_mosquitto(exactly_once).await;
}

fn sp_payload(seq: u64, metrics: Vec<Metric>) -> Vec<u8> {
    Payload {
        timestamp: Some(1_700_000_000_000),
        metrics,
        seq: Some(seq),
        ..Default::default()
    }
    .encode_to_vec()
}

fn metric(name: Option<&str>, alias: u64, v: f64) -> Metric {
    Metric {
        name: name.map(str::to_string),
        alias: Some(alias),
        datatype: Some(10),
        value: Some(MetricValue::DoubleValue(v)),
        ..Default::default()
    }
}

async fn sparkplug_scenario(broker_line: String, addr: SocketAddr) {
    let ingest = Ingest::start(&broker_line).await;
    let (db, eq) = (&ingest.db, &ingest.eq);

    // A subscriber standing in for the edge node, listening for commands.
    let mut opts = MqttOptions::new("edge-node-E", addr.ip().to_string(), addr.port());
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut el) = AsyncClient::new(opts, 10);
    client
        .subscribe("spBv1.0/G/NCMD/E", QoS::AtMostOnce)
        .await
        .expect("subscribe");
    let (ncmd_tx, mut ncmd_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    let (suback_tx, suback_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let mut suback = Some(suback_tx);
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(s) = suback.take() {
                        let _ = s.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let _ = ncmd_tx.send(p.payload.to_vec()).await;
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), suback_rx)
        .await
        .expect("suback in time")
        .expect("suback");

    // Births (repeated until the ingest is subscribed and has stored the birth's value).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        publish_all(
            addr,
            "edge-E-births",
            vec![
                (
                    "spBv1.0/G/NBIRTH/E".into(),
                    sp_payload(0, vec![]),
                    QoS::AtMostOnce,
                ),
                (
                    "spBv1.0/G/DBIRTH/E/D".into(),
                    sp_payload(1, vec![metric(Some("temp_c"), 7, 150.0)]),
                    QoS::AtMostOnce,
                ),
            ],
        )
        .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        if count(
            db,
            "SELECT count(*) FROM equipment_readings WHERE machine = 'iron-sp'",
        ) > 0
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "births never ingested"
        );
    }
    // Drain rebirth requests caused by the probing (e.g. a DBIRTH seen before its NBIRTH).
    while ncmd_rx.try_recv().is_ok() {}
    let before = count(
        db,
        "SELECT count(*) FROM equipment_readings WHERE machine = 'iron-sp'",
    );

    // DDATA by alias only, in sequence.
    publish_all(
        addr,
        "edge-E-data",
        vec![(
            "spBv1.0/G/DDATA/E/D".into(),
            sp_payload(2, vec![metric(None, 7, 151.5)]),
            QoS::AtMostOnce,
        )],
    )
    .await;
    wait_for_async(Duration::from_secs(10), "DDATA decoded by alias", || {
        count(db, "SELECT count(*) FROM equipment_readings WHERE machine = 'iron-sp' AND metrics = '{\"temp_c\":151.5}'") == 1
    })
    .await;
    assert!(ncmd_rx.try_recv().is_err(), "no rebirth while in sequence");

    // seq 3 and 4 lost: 5 arrives. Gap recorded, rebirth requested.
    publish_all(
        addr,
        "edge-E-data",
        vec![(
            "spBv1.0/G/DDATA/E/D".into(),
            sp_payload(5, vec![metric(None, 7, 190.0)]),
            QoS::AtMostOnce,
        )],
    )
    .await;
    let cmd = tokio::time::timeout(Duration::from_secs(10), ncmd_rx.recv())
        .await
        .expect("NCMD in time")
        .expect("NCMD");
    let p = decode(&cmd).expect("NCMD decodes");
    assert_eq!(p.metrics[0].name.as_deref(), Some("Node Control/Rebirth"));
    assert_eq!(p.metrics[0].value, Some(MetricValue::BooleanValue(true)));
    wait_for_async(Duration::from_secs(10), "gap record and alert", || {
        count(db, "SELECT count(*) FROM records WHERE kind = 'equipment.gap' AND body LIKE '%\"expected_seq\":3%' AND body LIKE '%\"got_seq\":5%'") == 1
            && count(db, "SELECT count(*) FROM records WHERE kind = 'quality.alert' AND station = 'S3'") == 1
    })
    .await;
    assert_eq!(
        count(
            db,
            "SELECT count(*) FROM equipment_readings WHERE machine = 'iron-sp'"
        ),
        before + 2
    );
    // An alias no BIRTH defined: a reject.
    publish_all(
        addr,
        "edge-E-data",
        vec![(
            "spBv1.0/G/DDATA/E/D".into(),
            sp_payload(6, vec![metric(None, 99, 1.0)]),
            QoS::AtMostOnce,
        )],
    )
    .await;
    wait_for_async(Duration::from_secs(10), "unknown alias reject", || {
        count(db, "SELECT count(*) FROM rejects WHERE reason LIKE '%alias 99%' AND source = 'mqtt:spBv1.0/G/DDATA/E/D'") == 1
    })
    .await;
    let st = eq.status();
    assert!(st.sparkplug_gaps >= 1);
    assert!(st.rebirths_requested >= 1);

    let _ = client.disconnect().await;
    ingest.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sparkplug_aliases_gap_and_rebirth_embedded() {
    on_embedded(sparkplug_scenario).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sparkplug_aliases_gap_and_rebirth_mosquitto() {
    on_mosquitto(sparkplug_scenario).await;
}
