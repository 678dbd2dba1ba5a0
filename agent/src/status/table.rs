//! `bobbin status`: the status report as terminal tables.

use serde_json::Value;
use std::fmt::Write;

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(t) => t.clone(),
        other => other.to_string(),
    }
}

fn local_time(ms: &Value) -> String {
    ms.as_i64()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|| "-".into())
}

/// Lays out rows under a header, each column as wide as its widest cell.
fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let mut w: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c}{}", " ".repeat(w[i] - c.chars().count())))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    let _ = writeln!(
        out,
        "{}",
        line(header.iter().map(|h| h.to_string()).collect())
    );
    for r in rows {
        let _ = writeln!(out, "{}", line(r.clone()));
    }
}

/// Renders a `GET /api/status` answer.
pub fn render(v: &Value) -> String {
    let mut o = String::new();
    let a = &v["agent"];
    let up = a["uptime_s"].as_i64().unwrap_or(0);
    let _ = writeln!(
        o,
        "Agent {} (journal {}), version {}, up {}h{:02}m\n",
        s(&a["id"]),
        s(&a["journal_id"]),
        s(&a["version"]),
        up / 3600,
        up % 3600 / 60
    );
    let stations: Vec<Vec<String>> = v["stations"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|st| {
            vec![
                s(&st["station"]),
                s(&st["kind"]),
                s(&st["worker"]),
                s(&st["process"]),
                local_time(&st["last_scan_ms"]),
                s(&st["last_outcome"]),
                s(&st["worker_pieces_today"]),
                s(&st["last_message"]),
            ]
        })
        .collect();
    table(
        &mut o,
        &[
            "STATION",
            "KIND",
            "WORKER",
            "PROCESS",
            "LAST SCAN",
            "OUTCOME",
            "PIECES TODAY",
            "MESSAGE",
        ],
        &stations,
    );
    let devices: Vec<Vec<String>> = v["devices"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|d| {
            vec![
                s(&d["id"]),
                s(&d["kind"]),
                s(&d["state"]),
                s(&d["last_reading_utc"]),
                s(&d["readings"]),
                s(&d["rejected"]),
                s(&d["message"]),
            ]
        })
        .collect();
    o.push('\n');
    table(
        &mut o,
        &[
            "DEVICE",
            "KIND",
            "STATE",
            "LAST READING",
            "READINGS",
            "REJECTED",
            "MESSAGE",
        ],
        &devices,
    );
    let m = &v["machines"];
    if !m.is_null() {
        let _ = writeln!(
            o,
            "\nMQTT: {} {}, {} received, {} stored, {} duplicates, {} rejects, {} sessions lost{}",
            s(&m["broker"]),
            if m["connected"] == Value::Bool(true) {
                "connected"
            } else {
                "NOT CONNECTED"
            },
            s(&m["received"]),
            s(&m["stored"]),
            s(&m["duplicates"]),
            s(&m["rejects"]),
            s(&m["sessions_lost"]),
            m["last_error"]
                .as_str()
                .filter(|_| m["connected"] != Value::Bool(true))
                .map(|e| format!(" (last error: {e})"))
                .unwrap_or_default()
        );
        let machines: Vec<Vec<String>> = m["machines"]
            .as_object()
            .map(|per| {
                per.iter()
                    .map(|(id, x)| {
                        vec![
                            id.clone(),
                            local_time(&x["last_message_ms"]),
                            s(&x["readings"]),
                            s(&x["duplicates"]),
                            s(&x["alerts"]),
                            s(&x["rejects"]),
                        ]
                    })
                    .collect()
            })
            .unwrap_or_default();
        if !machines.is_empty() {
            table(
                &mut o,
                &[
                    "MACHINE",
                    "LAST DATA",
                    "READINGS",
                    "DUPLICATES",
                    "ALERTS",
                    "REJECTS",
                ],
                &machines,
            );
        }
    }
    let j = &v["journal"];
    let _ = writeln!(
        o,
        "\nJournal: {} records ({} today), {} rejects, {} upload refusals, {:.1} MB, writer {}",
        s(&j["records"]),
        s(&j["records_today"]),
        s(&j["rejects"]),
        s(&j["upload_refusals"]),
        j["size_bytes"].as_f64().unwrap_or(0.0) / 1_048_576.0,
        if j["writer_alive"] == Value::Bool(true) {
            "alive"
        } else {
            "STOPPED"
        }
    );
    let sync = &v["sync"];
    if sync.is_null() {
        let _ = writeln!(o, "Sync: not configured (records stay on this PC)");
    } else {
        let _ = writeln!(
            o,
            "Sync: {}, backlog {} (oldest {} s), last success {}, last error {}",
            s(&sync["state"]),
            s(&sync["backlog"]["unsent"]),
            s(&sync["oldest_unsent_age_s"]),
            s(&sync["last_success"]),
            s(&sync["last_error"]["message"])
        );
    }
    let d = &v["disk"];
    let _ = writeln!(
        o,
        "Disk: {} {}",
        s(&d["state"]),
        d["message"].as_str().unwrap_or("")
    );
    o
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_stations_and_devices_as_aligned_tables() {
        let v = serde_json::json!({
            "agent": {"id": "ws-1", "journal_id": "ab", "version": "0.1.0", "uptime_s": 3720},
            "stations": [{"station": "sew-01", "kind": "sewing", "worker": "W0042", "process": "collar",
                          "last_scan_ms": null, "last_outcome": "ok", "worker_pieces_today": 24, "last_message": "ok"}],
            "devices": [{"id": "scan-1", "kind": "serial", "state": "missing", "readings": 0, "rejected": 0,
                         "last_reading_utc": null, "message": "not found"}],
            "journal": {"records": 10, "records_today": 2, "rejects": 1, "upload_refusals": 0,
                        "size_bytes": 1048576, "writer_alive": true},
            "sync": null,
            "disk": {"state": "ok"}
        });
        let t = super::render(&v);
        assert!(t.contains("up 1h02m"), "{t}");
        assert!(
            t.lines().any(|l| l.starts_with("sew-01   sewing  W0042")),
            "{t}"
        );
        assert!(
            t.contains("Journal: 10 records (2 today), 1 rejects"),
            "{t}"
        );
        assert!(t.contains("Sync: not configured"), "{t}");
        assert!(!t.contains("MQTT"), "no MQTT section without MQTT: {t}");
    }

    #[test]
    fn renders_the_machines_when_mqtt_is_on() {
        let v = serde_json::json!({
            "agent": {"id": "ws-1", "journal_id": "ab", "version": "0.1.0", "uptime_s": 60},
            "stations": [], "devices": [],
            "journal": {"records": 1, "records_today": 1, "rejects": 0, "upload_refusals": 0,
                        "size_bytes": 0, "writer_alive": true},
            "sync": null, "disk": {"state": "ok"},
            "machines": {"broker": "mqtt://10.0.0.5:1883", "embedded": false, "connected": false,
                         "sessions_lost": 1, "last_error": "connection refused", "received": 120,
                         "stored": 118, "duplicates": 2, "rejects": 0, "alerts": 1,
                         "sparkplug_gaps": 0, "rebirths_requested": 0,
                         "machines": {"ir-1": {"last_message_ms": null, "readings": 118,
                                               "duplicates": 2, "alerts": 1, "rejects": 0}}}
        });
        let t = super::render(&v);
        assert!(
            t.contains("MQTT: mqtt://10.0.0.5:1883 NOT CONNECTED, 120 received, 118 stored, 2 duplicates, 0 rejects, 1 sessions lost (last error: connection refused)"),
            "{t}"
        );
        assert!(t.lines().any(|l| l.starts_with("MACHINE")), "{t}");
        assert!(
            t.lines().any(|l| l.starts_with("ir-1     -          118")),
            "{t}"
        );
    }
}
