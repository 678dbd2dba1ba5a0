//! The station workflow task: readings in, decisions committed, feedback out.
//!
//! One task handles every scan of the workshop, one at a time, so a claim check and the
//! claim it leads to cannot interleave with another scan's. For each reading it decodes,
//! then — inside one writer transaction — looks up master data and claims, asks the pure
//! [`Workshop`] what the scan means, and writes the records, claim changes or reject row.
//! Only after that commit does it update the station state and tell the worker (scanner
//! beep, MQTT feedback topic, status page): durable before acknowledged.

use crate::config::Config;
use crate::equipment::MachineConfig;
use crate::journal::{JournalError, JournalHandle, TxCtx};
use crate::station::{
    Bundle, Claim, ClaimOp, Decision, Lookup, Scan, StationSpec, StationView, Worker, Workshop,
    WorkshopOptions,
};
use bobbin_codes::DecodeConfig;
use bobbin_drivers::{Feedback, FrameReject, Reading};
use bobbin_sync::record::RecordContent;
use rusqlite::{params, OptionalExtension, Transaction};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Where a decision's outcome is announced besides the scanner.
pub trait FeedbackSink: Send + Sync {
    /// Called after the decision committed.
    fn announce(&self, station: &str, decision: &Decision, time_ms: i64);
}

/// A sink that announces nothing (no MQTT configured).
pub struct NoFeedback;

impl FeedbackSink for NoFeedback {
    fn announce(&self, _: &str, _: &Decision, _: i64) {}
}

/// The live station views, shared with the status API.
pub type StationsView = Arc<Mutex<Vec<StationView>>>;

/// Looks master data and claims up inside the writer's transaction.
struct SqlLookup<'a, 'c>(&'a Transaction<'c>);

impl Lookup for SqlLookup<'_, '_> {
    fn worker_by_badge(&self, badge_key: &str) -> Option<Worker> {
        self.0
            .query_row(
                "SELECT id, team FROM workers WHERE badge = ?1",
                [badge_key],
                |r| {
                    Ok(Worker {
                        id: r.get(0)?,
                        team: r.get(1)?,
                    })
                },
            )
            .optional()
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "worker lookup failed");
                None
            })
    }

    fn bundle(&self, trace_key: &str) -> Option<Bundle> {
        self.0
            .query_row(
                "SELECT trace_key, order_no, style, colour, size, quantity FROM bundles WHERE trace_key = ?1",
                [trace_key],
                |r| {
                    Ok(Bundle {
                        trace_key: r.get(0)?,
                        order: r.get(1)?,
                        style: r.get(2)?,
                        colour: r.get(3)?,
                        size: r.get(4)?,
                        quantity: r.get(5)?,
                    })
                },
            )
            .optional()
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "bundle lookup failed");
                None
            })
    }

    fn claim(&self, trace_key: &str, process: &str) -> Option<Claim> {
        self.0
            .query_row(
                "SELECT trace_key, process, station, worker, time_ms, open FROM claims \
                 WHERE trace_key = ?1 AND process = ?2",
                [trace_key, process],
                |r| {
                    Ok(Claim {
                        trace_key: r.get(0)?,
                        process: r.get(1)?,
                        station: r.get(2)?,
                        worker: r.get(3)?,
                        time_ms: r.get(4)?,
                        open: r.get::<_, i64>(5)? != 0,
                    })
                },
            )
            .optional()
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "claim lookup failed");
                None
            })
    }

    fn order_route(&self, order: &str) -> Option<Vec<String>> {
        let mut stmt = self
            .0
            .prepare_cached("SELECT process FROM processes WHERE order_no = ?1 ORDER BY step")
            .ok()?;
        let route: Vec<String> = stmt
            .query_map([order], |r| r.get(0))
            .ok()?
            .filter_map(Result::ok)
            .collect();
        (!route.is_empty()).then_some(route)
    }
}

/// Writes a decision's records, claim changes and reject row in the open transaction.
fn write_decision(ctx: &mut TxCtx<'_, '_>, scan: &Scan, d: &Decision) -> Result<(), JournalError> {
    for r in &d.records {
        ctx.append(r)?;
    }
    for op in &d.claims {
        match op {
            ClaimOp::Insert(c) => {
                ctx.tx.execute(
                    "INSERT INTO claims (trace_key, process, station, worker, time_ms, open) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        c.trace_key,
                        c.process,
                        c.station,
                        c.worker,
                        c.time_ms,
                        c.open as i64
                    ],
                )?;
            }
            ClaimOp::Close {
                trace_key,
                process,
                time_ms,
            } => {
                ctx.tx.execute(
                    "UPDATE claims SET open = 0, time_ms = ?3 WHERE trace_key = ?1 AND process = ?2",
                    params![trace_key, process, time_ms],
                )?;
            }
            ClaimOp::Release { trace_key, process } => {
                ctx.tx.execute(
                    "DELETE FROM claims WHERE trace_key = ?1 AND process = ?2 AND open = 1",
                    params![trace_key, process],
                )?;
            }
        }
    }
    if let Some(note) = &d.reject {
        ctx.tx.execute(
            "INSERT INTO rejects (time_ms, source, raw, reason) VALUES (?1, ?2, ?3, ?4)",
            params![
                scan.time_ms,
                format!("device:{}", scan.device),
                scan.raw,
                note.reason
            ],
        )?;
    }
    Ok(())
}

/// Appends, in the same transaction as the `work` records that close units, one
/// `equipment.summary` per machine at the station (stitches and trims, or iron temperatures
/// over the unit's time), and a `quality.alert` on the bundle itself when an iron left its
/// range while the bundle was on it — so `bobbin trace CODE` shows how it was sewn and
/// pressed, and a recall finds it (ZH-5.3).
fn summarise_units(
    ctx: &mut TxCtx<'_, '_>,
    station: &str,
    d: &Decision,
    machines: &[MachineConfig],
) -> Result<(), JournalError> {
    let at = crate::equipment::machines_at(machines, station);
    if at.is_empty() {
        return Ok(());
    }
    for r in d.records.iter().filter(|r| r.kind == "work") {
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
        let (Some(start_ms), Some(end_ms)) = (body["start_ms"].as_i64(), body["end_ms"].as_i64())
        else {
            continue;
        };
        let unit = crate::equipment::UnitWindow {
            station: station.to_owned(),
            start_ms,
            end_ms,
            process: r.process.clone(),
            trace_code: r.trace_code.clone(),
            order: r.order.clone(),
            worker: r.worker.clone(),
        };
        for summary in crate::equipment::unit_summaries(ctx.tx, &at, &unit)? {
            ctx.append(&summary)?;
            let b: serde_json::Value = serde_json::from_str(&summary.body).unwrap_or_default();
            let outside = b["outside_range_s"].as_f64().unwrap_or(0.0);
            if outside > 0.0 {
                let alert = serde_json::json!({
                    "machine": b["machine"],
                    "reason": "iron outside its temperature range while this bundle was pressed",
                    "outside_range_s": outside,
                    "range_c": b["range_c"],
                    "temp_c": b["temp_c"],
                    "start_ms": start_ms,
                    "end_ms": end_ms,
                });
                ctx.append(&RecordContent {
                    kind: "quality.alert".into(),
                    body: alert.to_string(),
                    ..summary.clone()
                })?;
            }
        }
    }
    Ok(())
}

/// The station specs of a config.
pub fn station_specs(cfg: &Config) -> Vec<StationSpec> {
    cfg.stations
        .iter()
        .map(|s| StationSpec {
            devices: s.devices.clone(),
            id: s.id.clone(),
            kind: s.kind,
            team: s.team.clone(),
            process: s.process.clone(),
            timing: s.timing,
            unknown_bundles: s.unknown_bundles,
        })
        .collect()
}

/// What the workflow reads from: the devices' readings and refused frames, and the device
/// handles it beeps through.
pub struct Inputs {
    /// Readings from every device.
    pub readings: mpsc::Receiver<Reading>,
    /// Frames the drivers refused, with their bytes.
    pub rejects: mpsc::Receiver<FrameReject>,
    /// The devices, by id, for good/bad feedback.
    pub devices: HashMap<String, bobbin_drivers::DeviceHandle>,
}

/// Runs until the readings channel closes (every device task ended at shutdown), having
/// committed every reading it received.
pub async fn run(
    cfg: &Config,
    journal_path: std::path::PathBuf,
    journal: JournalHandle,
    inputs: Inputs,
    announce: Arc<dyn FeedbackSink>,
    view: StationsView,
) -> Result<(), JournalError> {
    let Inputs {
        mut readings,
        mut rejects,
        devices,
    } = inputs;
    let mut workshop = Workshop::with_options(
        station_specs(cfg),
        WorkshopOptions {
            utc_offset_minutes: cfg.agent.utc_offset_minutes,
            ..Default::default()
        },
    );
    replay_recent(&journal_path, &mut workshop);
    let station_of: HashMap<String, String> = cfg
        .stations
        .iter()
        .flat_map(|s| s.devices.iter().map(move |d| (d.clone(), s.id.clone())))
        .collect();
    let codes = Arc::new(cfg.codes.clone());
    // Machines only count when their data is being ingested.
    let machines = Arc::new(if cfg.mqtt.enabled {
        cfg.machines.clone()
    } else {
        Vec::new()
    });
    if let Ok(mut v) = view.lock() {
        *v = workshop.snapshot();
    }
    let mut rejects_open = true;
    loop {
        let reading = tokio::select! {
            r = readings.recv() => match r {
                Some(r) => r,
                None => break,
            },
            fr = rejects.recv(), if rejects_open => {
                match fr {
                    Some(fr) => keep_frame_reject(&journal, &devices, fr).await?,
                    None => rejects_open = false,
                }
                continue;
            }
        };
        let decision =
            handle_reading(&journal, &workshop, &codes, &machines, &station_of, reading).await?;
        let Some((station, decision, time_ms, device)) = decision else {
            continue;
        };
        workshop.apply(&decision);
        if let Some(dev) = devices.get(&device) {
            dev.feedback(if decision.outcome.acknowledged() {
                Feedback::Good
            } else {
                Feedback::Bad
            });
        }
        announce.announce(&station, &decision, time_ms);
        if let Ok(mut v) = view.lock() {
            *v = workshop.snapshot();
        }
    }
    Ok(())
}

/// Keeps input a driver refused as a reject row, and beeps "bad" for what looked like an
/// attempted scan (not for line noise between frames).
async fn keep_frame_reject(
    journal: &JournalHandle,
    devices: &HashMap<String, bobbin_drivers::DeviceHandle>,
    fr: FrameReject,
) -> Result<(), JournalError> {
    use bobbin_drivers::RejectReason;
    journal
        .reject(crate::journal::RejectRow {
            time_ms: fr.time_utc.timestamp_millis(),
            source: format!("device:{}", fr.device),
            raw: fr.bytes,
            reason: format!("{}: {}", fr.reason, fr.detail),
        })
        .await?;
    if !matches!(fr.reason, RejectReason::Unframed | RejectReason::Rollover) {
        if let Some(dev) = devices.get(&fr.device) {
            dev.feedback(Feedback::Bad);
        }
    }
    Ok(())
}

/// How far back the start-up replay reads: who is logged in, open units, pieces today.
const REPLAY_WINDOW_MS: i64 = 24 * 3600 * 1000;

/// Rebuilds station state from the last day of records, so a restart (or a crash) does not
/// log every worker out or strand an open two-scan unit.
fn replay_recent(path: &std::path::Path, workshop: &mut Workshop) {
    let result = (|| -> Result<u64, JournalError> {
        let reader = crate::journal::JournalReader::open(path)?;
        let Some(current) = reader.journals()?.pop() else {
            return Ok(0);
        };
        let from =
            reader.first_seq_at_or_after(&current, crate::journal::now_ms() - REPLAY_WINDOW_MS)?;
        let mut n = 0;
        let mut after = from.saturating_sub(1);
        loop {
            let batch = reader.read_after(&current, after, 4096)?;
            let Some(last) = batch.last() else { break };
            after = last.seq;
            for r in &batch {
                workshop.replay(&r.content);
                n += 1;
            }
        }
        Ok(n)
    })();
    match result {
        Ok(n) => tracing::info!(records = n, "station state restored from the journal"),
        Err(e) => {
            tracing::warn!(error = %e, "could not restore station state; workers badge in again")
        }
    }
}

type Handled = Option<(String, Decision, i64, String)>;

async fn handle_reading(
    journal: &JournalHandle,
    workshop: &Workshop,
    codes: &Arc<DecodeConfig>,
    machines: &Arc<Vec<MachineConfig>>,
    station_of: &HashMap<String, String>,
    reading: Reading,
) -> Result<Handled, JournalError> {
    let time_ms = reading.time_utc.timestamp_millis();
    let Some(station) = station_of.get(&reading.device).cloned() else {
        // A device no station uses: keep what it read, visibly, rather than guess.
        journal
            .reject(crate::journal::RejectRow {
                time_ms,
                source: format!("device:{}", reading.device),
                raw: reading.bytes,
                reason: format!("device {:?} is not assigned to a station", reading.device),
            })
            .await?;
        return Ok(None);
    };
    let decoded = bobbin_codes::decode(&reading.bytes, reading.hint.as_deref(), codes)
        .map_err(|e| e.to_string());
    let scan = Scan {
        station: station.clone(),
        device: reading.device.clone(),
        time_ms,
        raw: reading.bytes,
        decoded,
    };
    // The state is read inside the writer's transaction but changed only after commit;
    // this task is the only one that changes it, so the copy cannot go stale meanwhile.
    let snapshot = workshop.clone();
    let device = scan.device.clone();
    let machines = machines.clone();
    let decision = journal
        .exec(move |ctx| {
            let d = snapshot.decide(&scan, &SqlLookup(ctx.tx));
            write_decision(ctx, &scan, &d)?;
            summarise_units(ctx, &scan.station, &d, &machines)?;
            Ok(d)
        })
        .await?;
    Ok(Some((station, decision, time_ms, device)))
}
