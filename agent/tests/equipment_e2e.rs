//! End to end with the real `bobbin` binary, a pty scanner per station and the embedded
//! MQTT broker: sewing-machine and iron readings attach to the bundle worked at their
//! station; an out-of-range iron becomes an alert on that bundle that `bobbin trace` shows;
//! a subscriber receives the ok and duplicate worker feedback.

mod common;
mod mqtt_common;

use bobbin_tests::{free_port, wait_until, PtyScanner};
use common::{run, run_agent};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[test]
fn machine_data_lands_on_the_bundle_and_feedback_reaches_mqtt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sew = PtyScanner::open(&dir.path().join("scan-sew"));
    let mut iron = PtyScanner::open(&dir.path().join("scan-iron"));
    let port = free_port();
    let config = dir.path().join("bobbin.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[agent]
id = "eq-agent"
data_dir = "data"
[status]
listen = "127.0.0.1:0"
[mqtt]
enabled = true
listen = "127.0.0.1:{port}"

[[devices]]
id = "scan-sew"
kind = "serial"
path = "{}"
[[devices]]
id = "scan-iron"
kind = "serial"
path = "{}"

[[machines]]
id = "sm-1"
kind = "sewing"
topic = "machines/sm-1/data"
[[machines]]
id = "ir-1"
kind = "iron"
topic = "machines/ir-1/data"
temp_range_c = [140.0, 170.0]

[[stations]]
id = "sew-01"
kind = "sewing"
process = "attach-collar"
devices = ["scan-sew"]
machines = ["sm-1"]
[[stations]]
id = "iron-01"
kind = "ironing"
process = "press"
devices = ["scan-iron"]
machines = ["ir-1"]
"#,
            sew.link.display(),
            iron.link.display()
        ),
    )
    .expect("config");
    let cfg = config.to_str().expect("path");
    common::import_csv(
        dir.path(),
        cfg,
        "workers",
        "id,name,team,badge\nW1,A,A,W:E1\nW2,B,A,W:E2\n",
    );
    let code = common::new_trace_code();
    common::import_csv(
        dir.path(),
        cfg,
        "bundles",
        &format!("trace_code,order,style,colour,size,quantity\n{code},PO-9,T,red,M,10\n"),
    );

    let agent = run_agent(&config);
    wait_until("both scanners", LIMIT, || {
        let lines = agent.stderr.lock().expect("lines");
        ["scan-sew", "scan-iron"].iter().all(|d| {
            lines
                .iter()
                .any(|l| l.contains(": connected") && l.contains(&format!("device={d}")))
        })
    });
    let db = dir.path().join("data/journal.db");

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let broker: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    // A station display subscribed to every station's feedback.
    let feedback = std::sync::Arc::new(std::sync::Mutex::new(Vec::<serde_json::Value>::new()));
    {
        let feedback = feedback.clone();
        rt.spawn(async move {
            let mut opts =
                MqttOptions::new("andon-display", broker.ip().to_string(), broker.port());
            opts.set_keep_alive(Duration::from_secs(30));
            let (client, mut el) = AsyncClient::new(opts, 100);
            client
                .subscribe("bobbin/stations/+/feedback", QoS::AtLeastOnce)
                .await
                .expect("subscribe");
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if let Ok(v) = serde_json::from_slice(&p.payload) {
                            feedback.lock().expect("fb").push(v);
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
    }
    let outcomes = |station: &str| -> Vec<String> {
        feedback
            .lock()
            .expect("fb")
            .iter()
            .filter(|v| v["station"] == station)
            .map(|v| v["outcome"].as_str().unwrap_or_default().to_string())
            .collect()
    };

    // Sewing: W1 logs in, the machine reports, W1 claims the bundle.
    sew.scan("W:E1");
    wait_until("login feedback on MQTT", LIMIT, || {
        outcomes("sew-01") == ["ok"]
    });
    let t = now_ms();
    let sewing: Vec<_> = [(1, 10_000, 100), (2, 10_400, 104), (3, 11_000, 110)]
        .iter()
        .map(|(seq, stitches, trims)| {
            let p = serde_json::json!({"seq": seq, "ts": t + seq, "stitches": stitches, "trims": trims, "run_s": seq * 10});
            ("machines/sm-1/data".to_string(), p.to_string().into_bytes(), QoS::AtLeastOnce)
        })
        .collect();
    rt.block_on(mqtt_common::publish_all(broker, "sewing-machine", sewing));
    wait_until("sewing readings stored", LIMIT, || {
        mqtt_common::count(
            &db,
            "SELECT count(*) FROM equipment_readings WHERE machine = 'sm-1'",
        ) == 3
    });
    sew.scan(&code);
    wait_until("claim feedback", LIMIT, || {
        outcomes("sew-01") == ["ok", "ok"]
    });
    sew.scan(&code);
    wait_until("duplicate feedback", LIMIT, || {
        outcomes("sew-01") == ["ok", "ok", "duplicate"]
    });

    // Ironing: W2 logs in, the iron overheats for a moment, W2 claims the pressing.
    iron.scan("W:E2");
    wait_until("iron login", LIMIT, || outcomes("iron-01") == ["ok"]);
    let t = now_ms();
    let temps: Vec<_> = [(1, 150.0), (2, 185.0), (3, 186.0), (4, 150.0)]
        .iter()
        .map(|(seq, temp)| {
            let p = serde_json::json!({"seq": seq, "ts": t + seq * 100, "temp_c": temp, "steam_bar": 4.0});
            ("machines/ir-1/data".to_string(), p.to_string().into_bytes(), QoS::AtLeastOnce)
        })
        .collect();
    rt.block_on(mqtt_common::publish_all(broker, "iron", temps));
    wait_until("iron readings stored", LIMIT, || {
        mqtt_common::count(
            &db,
            "SELECT count(*) FROM equipment_readings WHERE machine = 'ir-1'",
        ) == 4
    });
    // Readings are stamped up to 400 ms ahead; claim after them so they fall in the unit.
    wait_until("the iron's readings to be in the past", LIMIT, || {
        now_ms() > t + 500
    });
    iron.scan(&code);
    wait_until("pressing claimed", LIMIT, || {
        outcomes("iron-01") == ["ok", "ok"]
    });

    agent.signal(libc::SIGTERM);
    let (status, _, err) = agent.wait(LIMIT);
    assert!(status.success(), "{err:?}");

    let (rc, out, _) = run(&["trace", &code, "--db", db.to_str().expect("p")]);
    assert_eq!(rc, 0);
    let records: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let of = |kind: &str| {
        records
            .iter()
            .filter(|r| r["kind"] == kind)
            .cloned()
            .collect::<Vec<_>>()
    };
    let summaries = of("equipment.summary");
    let sewing = summaries
        .iter()
        .find(|s| s["body"]["machine"] == "sm-1")
        .expect("sewing summary on the bundle");
    assert_eq!(sewing["station"], "sew-01");
    assert_eq!(
        sewing["body"]["stitches"].as_f64(),
        Some(1000.0),
        "{sewing}"
    );
    let ironing = summaries
        .iter()
        .find(|s| s["body"]["machine"] == "ir-1")
        .expect("iron summary on the bundle");
    assert!(
        ironing["body"]["outside_range_s"]
            .as_f64()
            .is_some_and(|s| s > 0.0),
        "{ironing}"
    );
    let alerts = of("quality.alert");
    assert!(
        alerts
            .iter()
            .any(|a| a["body"]["machine"] == "ir-1" && a["trace_code"] == code.as_str()),
        "the out-of-range iron shows on the bundle's trace: {records:?}"
    );
    assert_eq!(
        of("work").len(),
        2,
        "sewing and pressing, each counted once"
    );
}
