//! `/metrics`: the status report in Prometheus text format (version 0.0.4).

use super::StatusReport;
use std::fmt::Write;

/// Escapes a label value (backslash, quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Renders the report as metrics.
pub fn render(r: &StatusReport) -> String {
    let mut o = String::new();
    metric(&mut o, "bobbin_up", "gauge", "1 while the agent answers.");
    let _ = writeln!(o, "bobbin_up 1");
    metric(
        &mut o,
        "bobbin_uptime_seconds",
        "gauge",
        "Seconds since the agent started.",
    );
    let _ = writeln!(o, "bobbin_uptime_seconds {}", r.agent.uptime_s);

    let j = &r.journal;
    metric(
        &mut o,
        "bobbin_journal_writer_alive",
        "gauge",
        "1 while the journal writer runs.",
    );
    let _ = writeln!(
        o,
        "bobbin_journal_writer_alive {}",
        u8::from(j.writer_alive)
    );
    metric(
        &mut o,
        "bobbin_journal_size_bytes",
        "gauge",
        "Journal file size including the WAL.",
    );
    let _ = writeln!(o, "bobbin_journal_size_bytes {}", j.size_bytes);
    metric(
        &mut o,
        "bobbin_journal_records",
        "gauge",
        "Records in the current journal.",
    );
    let _ = writeln!(o, "bobbin_journal_records {}", j.records);
    metric(
        &mut o,
        "bobbin_journal_records_today",
        "gauge",
        "Records written since local midnight.",
    );
    let _ = writeln!(o, "bobbin_journal_records_today {}", j.records_today);
    metric(
        &mut o,
        "bobbin_journal_rejects",
        "gauge",
        "Reject rows kept (bad input with its bytes).",
    );
    let _ = writeln!(o, "bobbin_journal_rejects {}", j.rejects);
    metric(
        &mut o,
        "bobbin_upload_refusals",
        "gauge",
        "Records the platform refused or found in conflict.",
    );
    let _ = writeln!(o, "bobbin_upload_refusals {}", j.upload_refusals);

    metric(
        &mut o,
        "bobbin_device_connected",
        "gauge",
        "1 when the device is connected.",
    );
    for d in &r.devices {
        let _ = writeln!(
            o,
            "bobbin_device_connected{{device=\"{}\"}} {}",
            label(&d.id),
            u8::from(d.state == bobbin_drivers::DeviceState::Connected)
        );
    }
    metric(
        &mut o,
        "bobbin_device_readings_total",
        "counter",
        "Readings delivered by the device.",
    );
    for d in &r.devices {
        let _ = writeln!(
            o,
            "bobbin_device_readings_total{{device=\"{}\"}} {}",
            label(&d.id),
            d.readings
        );
    }
    metric(
        &mut o,
        "bobbin_device_rejected_total",
        "counter",
        "Frames the device driver rejected.",
    );
    for d in &r.devices {
        let _ = writeln!(
            o,
            "bobbin_device_rejected_total{{device=\"{}\"}} {}",
            label(&d.id),
            d.rejected
        );
    }

    metric(
        &mut o,
        "bobbin_station_worker_on_duty",
        "gauge",
        "1 when a worker is logged in at the station.",
    );
    for s in &r.stations {
        let _ = writeln!(
            o,
            "bobbin_station_worker_on_duty{{station=\"{}\"}} {}",
            label(&s.station),
            u8::from(s.worker.is_some())
        );
    }

    metric(
        &mut o,
        "bobbin_disk_alarm",
        "gauge",
        "1 while the disk alarm is raised.",
    );
    let alarm = !matches!(r.disk, crate::journal::retention::DiskState::Ok);
    let _ = writeln!(o, "bobbin_disk_alarm {}", u8::from(alarm));

    if let Some(m) = &r.machines {
        machine_metrics(&mut o, m);
    }

    if let Some(s) = &r.sync {
        let v = serde_json::to_value(s).unwrap_or_default();
        metric(
            &mut o,
            "bobbin_sync_backlog_records",
            "gauge",
            "Records not yet confirmed by the platform.",
        );
        let _ = writeln!(
            o,
            "bobbin_sync_backlog_records {}",
            v["backlog"]["unsent"].as_u64().unwrap_or(0)
        );
        metric(
            &mut o,
            "bobbin_sync_oldest_unsent_age_seconds",
            "gauge",
            "Age of the oldest unsent record.",
        );
        let _ = writeln!(
            o,
            "bobbin_sync_oldest_unsent_age_seconds {}",
            v["oldest_unsent_age_s"].as_f64().unwrap_or(0.0)
        );
        for (k, help) in [
            ("accepted", "Records the platform accepted."),
            ("duplicate", "Records the platform already had (retries)."),
            (
                "conflict",
                "Records in conflict (a coupon claimed elsewhere first).",
            ),
            ("rejected", "Records the platform rejected."),
        ] {
            let name = format!("bobbin_sync_{k}_total");
            metric(&mut o, &name, "counter", help);
            let _ = writeln!(o, "{name} {}", v["counters"][k].as_u64().unwrap_or(0));
        }
    }
    o
}

/// The equipment ingest's counters (only with `[mqtt] enabled`).
fn machine_metrics(o: &mut String, m: &crate::equipment::EquipmentStatus) {
    metric(
        o,
        "bobbin_mqtt_connected",
        "gauge",
        "1 while connected to the MQTT broker.",
    );
    let _ = writeln!(o, "bobbin_mqtt_connected {}", u8::from(m.connected));
    for (name, help, v) in [
        (
            "bobbin_mqtt_sessions_lost_total",
            "Reconnects that found the broker session gone (possible gaps).",
            m.sessions_lost,
        ),
        (
            "bobbin_mqtt_messages_total",
            "MQTT messages received.",
            m.received,
        ),
        (
            "bobbin_mqtt_readings_stored_total",
            "Machine readings stored.",
            m.stored,
        ),
        (
            "bobbin_mqtt_duplicates_total",
            "Redelivered readings recognised and not stored again.",
            m.duplicates,
        ),
        (
            "bobbin_mqtt_rejects_total",
            "MQTT messages kept as rejects.",
            m.rejects,
        ),
        (
            "bobbin_mqtt_alerts_total",
            "Temperature alerts raised.",
            m.alerts,
        ),
        (
            "bobbin_mqtt_sparkplug_gaps_total",
            "Sparkplug sequence gaps seen.",
            m.sparkplug_gaps,
        ),
    ] {
        metric(o, name, "counter", help);
        let _ = writeln!(o, "{name} {v}");
    }
    metric(
        o,
        "bobbin_machine_readings_total",
        "counter",
        "Readings stored per machine.",
    );
    for (id, x) in &m.machines {
        let _ = writeln!(
            o,
            "bobbin_machine_readings_total{{machine=\"{}\"}} {}",
            label(id),
            x.readings
        );
    }
    metric(
        o,
        "bobbin_machine_last_message_seconds",
        "gauge",
        "Unix time of the machine's last stored reading.",
    );
    for (id, x) in &m.machines {
        if let Some(ms) = x.last_message_ms {
            let _ = writeln!(
                o,
                "bobbin_machine_last_message_seconds{{machine=\"{}\"}} {:.3}",
                label(id),
                ms as f64 / 1000.0
            );
        }
    }
}
