//! SQL for equipment data, run inside the journal writer's transaction (migration
//! `EQUIPMENT_V2` in `journal/schema.rs` creates the tables).
//!
//! - `equipment_readings`: raw readings, short local retention, never uploaded as such;
//!   unique per (machine, seq) when the payload carries a seq — the dedup that makes a
//!   broker's redelivery harmless.
//! - `equipment_excursions`: the open temperature excursion per iron, so the alert
//!   debouncer's state commits and rolls back with the readings and alert records.
//! - `mqtt_sessions`: each (broker, client id) this journal has held a session on, so a
//!   broker that forgot us while the agent was down is a recorded gap, not a silent one.

use super::alerts::{self, AlertEvent, Excursion};
use super::config::{MachineConfig, MachineKind};
use super::summary::{self, Sample};
use bobbin_sync::record::RecordContent;
use rusqlite::{params, OptionalExtension, Transaction};
use serde_json::json;

/// The migration that creates the equipment tables.
pub const MIGRATION_SQL: &str = "
    CREATE TABLE equipment_readings (
        id        INTEGER PRIMARY KEY,
        machine   TEXT    NOT NULL,
        seq       INTEGER,
        time_ms   INTEGER NOT NULL,
        recv_ms   INTEGER NOT NULL,
        station   TEXT,
        metrics   TEXT    NOT NULL
    );
    CREATE UNIQUE INDEX equipment_readings_dedup
        ON equipment_readings (machine, seq) WHERE seq IS NOT NULL;
    CREATE INDEX equipment_readings_by_time ON equipment_readings (machine, time_ms);
    CREATE TABLE equipment_excursions (
        machine   TEXT    PRIMARY KEY,
        alert_id  TEXT    NOT NULL,
        start_ms  INTEGER NOT NULL,
        last_ms   INTEGER NOT NULL,
        low       REAL    NOT NULL,
        high      REAL    NOT NULL,
        peak      REAL    NOT NULL,
        readings  INTEGER NOT NULL
    );
";

/// The migration (schema v5) that remembers which broker sessions this journal has held.
pub const SESSIONS_MIGRATION_SQL: &str = "
    CREATE TABLE mqtt_sessions (
        broker     TEXT    NOT NULL,
        client_id  TEXT    NOT NULL,
        first_ms   INTEGER NOT NULL,
        last_ms    INTEGER NOT NULL,
        PRIMARY KEY (broker, client_id)
    ) WITHOUT ROWID;
";

/// Whether this journal has held a session for `client_id` on `broker` before.
pub fn session_known(
    tx: &Transaction<'_>,
    broker: &str,
    client_id: &str,
) -> rusqlite::Result<bool> {
    tx.query_row(
        "SELECT 1 FROM mqtt_sessions WHERE broker = ?1 AND client_id = ?2",
        params![broker, client_id],
        |_| Ok(()),
    )
    .optional()
    .map(|r| r.is_some())
}

/// Notes a connect with a session for `client_id` on `broker` at `now_ms`.
pub fn session_seen(
    tx: &Transaction<'_>,
    broker: &str,
    client_id: &str,
    now_ms: i64,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO mqtt_sessions (broker, client_id, first_ms, last_ms) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT (broker, client_id) DO UPDATE SET last_ms = excluded.last_ms",
        params![broker, client_id, now_ms],
    )?;
    Ok(())
}

/// A reading to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewReading {
    /// Machine id.
    pub machine: String,
    /// The machine's station, if bound.
    pub station: Option<String>,
    /// The publisher's sequence number (dedup key), if any.
    pub seq: Option<i64>,
    /// Reading time: the payload's, else arrival (UTC ms).
    pub time_ms: i64,
    /// Arrival time (UTC ms).
    pub recv_ms: i64,
    /// Metrics JSON (`fields::metrics_json`).
    pub metrics: String,
}

/// What became of a reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// Stored.
    New,
    /// The same (machine, seq) with the same content is already stored: a redelivery.
    Duplicate,
    /// The same (machine, seq) is stored with other content (e.g. the publisher's counter
    /// restarted): not stored; the caller keeps it as a reject so nothing is lost silently.
    SeqReused,
}

/// Inserts a reading, deduplicating on (machine, seq); a reading without a seq is a
/// duplicate when the machine already has one with the same time and the same metrics.
///
/// Without a seq, a broker's redelivery (the agent died after the commit, before the ack)
/// is only recognisable by content: with the payload's `ts` the time is the device's and
/// the copy matches exactly; without a `ts` the time is the arrival time, which differs on
/// a redelivery, so such a copy is stored twice (documented in the machines config).
pub fn insert_reading(tx: &Transaction<'_>, r: &NewReading) -> rusqlite::Result<Inserted> {
    if r.seq.is_none() {
        let seen: bool = tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM equipment_readings \
                 WHERE machine = ?1 AND time_ms = ?2 AND seq IS NULL AND metrics = ?3)",
            )?
            .query_row(params![r.machine, r.time_ms, r.metrics], |row| row.get(0))?;
        if seen {
            return Ok(Inserted::Duplicate);
        }
    }
    let n = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO equipment_readings \
             (machine, seq, time_ms, recv_ms, station, metrics) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            r.machine, r.seq, r.time_ms, r.recv_ms, r.station, r.metrics
        ])?;
    if n == 1 {
        return Ok(Inserted::New);
    }
    let (t, m): (i64, String) = tx
        .prepare_cached(
            "SELECT time_ms, metrics FROM equipment_readings WHERE machine = ?1 AND seq = ?2",
        )?
        .query_row(params![r.machine, r.seq], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
    // Arrival time differs on a redelivery; the payload's time and values do not.
    let same_time = t == r.time_ms || r.time_ms == r.recv_ms;
    Ok(if same_time && m == r.metrics {
        Inserted::Duplicate
    } else {
        Inserted::SeqReused
    })
}

/// Loads a machine's open excursion.
pub fn open_excursion(tx: &Transaction<'_>, machine: &str) -> rusqlite::Result<Option<Excursion>> {
    tx.prepare_cached(
        "SELECT alert_id, start_ms, last_ms, low, high, peak, readings \
         FROM equipment_excursions WHERE machine = ?1",
    )?
    .query_row([machine], |r| {
        Ok(Excursion {
            alert_id: r.get(0)?,
            start_ms: r.get(1)?,
            last_ms: r.get(2)?,
            low: r.get(3)?,
            high: r.get(4)?,
            peak: r.get(5)?,
            readings: r.get(6)?,
        })
    })
    .optional()
}

fn save_excursion(tx: &Transaction<'_>, machine: &str, e: &Excursion) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO equipment_excursions \
         (machine, alert_id, start_ms, last_ms, low, high, peak, readings) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        machine, e.alert_id, e.start_ms, e.last_ms, e.low, e.high, e.peak, e.readings
    ])?;
    Ok(())
}

/// Feeds an iron's temperature to the debouncer; returns the alert record to append, if
/// the reading started or ended an excursion. The excursion row is updated in `tx`.
///
/// Record kinds: `quality.alert` (body: `alert`, `machine`, `alert_id`, `value_c`,
/// `range_c`, `start_ms`) and `quality.alert.end` (body adds `end_ms`, `peak_c`,
/// `readings`). `time_ms` is the agent's clock at arrival; the device times are in the body.
pub fn temperature_alert(
    tx: &Transaction<'_>,
    r: &NewReading,
    temp_c: f64,
    range: [f64; 2],
    hysteresis: f64,
) -> rusqlite::Result<Option<RecordContent>> {
    let open = open_excursion(tx, &r.machine)?;
    let Some(ev) = alerts::step(
        &r.machine,
        open.as_ref(),
        temp_c,
        r.time_ms,
        range,
        hysteresis,
    ) else {
        return Ok(None);
    };
    let record = |kind: &str, body: serde_json::Value| RecordContent {
        kind: kind.to_string(),
        time_ms: r.recv_ms,
        station: r.station.clone(),
        worker: None,
        trace_code: None,
        order: None,
        process: None,
        body: body.to_string(),
    };
    Ok(match ev {
        AlertEvent::Start(e) => {
            save_excursion(tx, &r.machine, &e)?;
            Some(record(
                "quality.alert",
                json!({
                    "alert": "temperature_out_of_range",
                    "machine": r.machine,
                    "alert_id": e.alert_id,
                    "value_c": temp_c,
                    "range_c": [e.low, e.high],
                    "start_ms": e.start_ms,
                }),
            ))
        }
        AlertEvent::Continue(e) => {
            save_excursion(tx, &r.machine, &e)?;
            None
        }
        AlertEvent::End {
            excursion: e,
            end_ms,
        } => {
            tx.prepare_cached("DELETE FROM equipment_excursions WHERE machine = ?1")?
                .execute([&r.machine])?;
            Some(record(
                "quality.alert.end",
                json!({
                    "alert": "temperature_out_of_range",
                    "machine": r.machine,
                    "alert_id": e.alert_id,
                    "range_c": [e.low, e.high],
                    "start_ms": e.start_ms,
                    "end_ms": end_ms,
                    "peak_c": e.peak,
                    "readings": e.readings,
                }),
            ))
        }
    })
}

/// Deletes up to `limit` readings older than `before_ms` (by reading time); returns how
/// many. Called repeatedly in small transactions so the writer is never held long.
pub fn prune(tx: &Transaction<'_>, before_ms: i64, limit: usize) -> rusqlite::Result<usize> {
    let machines: Vec<String> = tx
        .prepare_cached("SELECT DISTINCT machine FROM equipment_readings")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut total = 0;
    for m in machines {
        if total >= limit {
            break;
        }
        total += tx
            .prepare_cached(
                "DELETE FROM equipment_readings WHERE rowid IN (SELECT rowid FROM \
                 equipment_readings WHERE machine = ?1 AND time_ms < ?2 LIMIT ?3)",
            )?
            .execute(params![m, before_ms, (limit - total) as i64])?;
    }
    Ok(total)
}

/// The work unit a station closes: its window and what it was about.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnitWindow {
    /// The station.
    pub station: String,
    /// When the unit opened (UTC ms).
    pub start_ms: i64,
    /// When it closed (UTC ms).
    pub end_ms: i64,
    /// Its process, which selects an iron's `process_temp_range_c`.
    pub process: Option<String>,
    /// Its trace code.
    pub trace_code: Option<String>,
    /// Its order.
    pub order: Option<String>,
    /// The worker.
    pub worker: Option<String>,
}

/// The machines configured at `station`.
pub fn machines_at<'m>(machines: &'m [MachineConfig], station: &str) -> Vec<&'m MachineConfig> {
    machines
        .iter()
        .filter(|m| m.station.as_deref() == Some(station))
        .collect()
}

fn samples(
    tx: &Transaction<'_>,
    machine: &str,
    start: i64,
    end: i64,
) -> rusqlite::Result<(Option<Sample>, Vec<Sample>)> {
    let baseline = tx
        .prepare_cached(
            "SELECT time_ms, metrics FROM equipment_readings WHERE machine = ?1 AND time_ms < ?2 \
             ORDER BY time_ms DESC LIMIT 1",
        )?
        .query_row(params![machine, start], |r| {
            Ok(Sample::from_json(r.get(0)?, &r.get::<_, String>(1)?))
        })
        .optional()?;
    let rows = tx
        .prepare_cached(
            "SELECT time_ms, metrics FROM equipment_readings \
             WHERE machine = ?1 AND time_ms >= ?2 AND time_ms <= ?3 ORDER BY time_ms, id",
        )?
        .query_map(params![machine, start, end], |r| {
            Ok(Sample::from_json(r.get(0)?, &r.get::<_, String>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((baseline, rows))
}

/// One `equipment.summary` record per machine for a closing work unit, to append in the same
/// transaction that closes it. Body: `machine`, `kind`, `start_ms`, `end_ms`, and for sewing
/// `stitches`, `trims`, `run_s`, `needle_stops`, `readings`; for irons `temp_c`
/// {min,max,mean}, `range_c`, `outside_range_s`, `steam_bar` {min,max,mean},
/// `press_cycles`, `dwell_s_total`, `readings`. Machines without readings in the window
/// still get a record (`readings: 0`): "no data" is itself worth knowing.
pub fn unit_summaries(
    tx: &Transaction<'_>,
    machines: &[&MachineConfig],
    unit: &UnitWindow,
) -> rusqlite::Result<Vec<RecordContent>> {
    let mut out = Vec::with_capacity(machines.len());
    for m in machines {
        let (baseline, rows) = samples(tx, &m.id, unit.start_ms, unit.end_ms)?;
        let mut body = match m.kind {
            MachineKind::Sewing => summary::sewing(baseline.as_ref(), &rows),
            MachineKind::Iron => {
                let range = unit
                    .process
                    .as_ref()
                    .and_then(|p| m.process_temp_range_c.get(p))
                    .or(m.temp_range_c.as_ref())
                    .copied();
                summary::iron(baseline.as_ref(), &rows, unit.start_ms, unit.end_ms, range)
            }
        };
        if let serde_json::Value::Object(o) = &mut body {
            o.insert("machine".into(), json!(m.id));
            o.insert(
                "kind".into(),
                json!(match m.kind {
                    MachineKind::Sewing => "sewing",
                    MachineKind::Iron => "iron",
                }),
            );
            o.insert("start_ms".into(), json!(unit.start_ms));
            o.insert("end_ms".into(), json!(unit.end_ms));
        }
        out.push(RecordContent {
            kind: "equipment.summary".into(),
            time_ms: unit.end_ms,
            station: Some(unit.station.clone()),
            worker: unit.worker.clone(),
            trace_code: unit.trace_code.clone(),
            order: unit.order.clone(),
            process: unit.process.clone(),
            body: body.to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    fn db() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(MIGRATION_SQL).unwrap();
        c
    }

    fn reading(seq: Option<i64>, t: i64, metrics: &str) -> NewReading {
        NewReading {
            machine: "iron-1".into(),
            station: Some("S1".into()),
            seq,
            time_ms: t,
            recv_ms: t + 5,
            metrics: metrics.into(),
        }
    }

    #[test]
    fn dedup_and_seq_reuse() {
        let mut c = db();
        let tx = c.transaction().unwrap();
        let r = reading(Some(1), 100, r#"{"temp_c":150}"#);
        assert_eq!(insert_reading(&tx, &r).unwrap(), Inserted::New);
        let mut again = r.clone();
        again.recv_ms += 1000;
        assert_eq!(insert_reading(&tx, &again).unwrap(), Inserted::Duplicate);
        let other = reading(Some(1), 100, r#"{"temp_c":151}"#);
        assert_eq!(insert_reading(&tx, &other).unwrap(), Inserted::SeqReused);
        // Without a seq: the same time and metrics is a redelivery; anything else is new.
        let no_seq = reading(None, 1, r#"{"temp_c":150}"#);
        assert_eq!(insert_reading(&tx, &no_seq).unwrap(), Inserted::New);
        let mut again = no_seq.clone();
        again.recv_ms += 1000;
        assert_eq!(insert_reading(&tx, &again).unwrap(), Inserted::Duplicate);
        assert_eq!(
            insert_reading(&tx, &reading(None, 2, r#"{"temp_c":150}"#)).unwrap(),
            Inserted::New
        );
        assert_eq!(
            insert_reading(&tx, &reading(None, 1, r#"{"temp_c":151}"#)).unwrap(),
            Inserted::New
        );
        let mut other_machine = no_seq.clone();
        other_machine.machine = "iron-2".into();
        assert_eq!(insert_reading(&tx, &other_machine).unwrap(), Inserted::New);
        let n: i64 = tx
            .query_row("SELECT count(*) FROM equipment_readings", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 5, "1 with seq, 4 without");
    }

    #[test]
    fn alert_state_lives_in_the_transaction() {
        let mut c = db();
        let tx = c.transaction().unwrap();
        let mut kinds = Vec::new();
        for (i, t) in [150.0, 180.0, 185.0, 190.0, 150.0].iter().enumerate() {
            let r = reading(Some(i as i64), i as i64 * 1000, "{}");
            if let Some(rec) = temperature_alert(&tx, &r, *t, [140.0, 170.0], 2.0).unwrap() {
                kinds.push((rec.kind, rec.body));
            }
        }
        assert_eq!(kinds.len(), 2);
        assert_eq!(kinds[0].0, "quality.alert");
        assert_eq!(kinds[1].0, "quality.alert.end");
        assert!(kinds[1].1.contains(r#""peak_c":190.0"#), "{}", kinds[1].1);
        assert!(open_excursion(&tx, "iron-1").unwrap().is_none());
    }

    #[test]
    fn summaries_and_prune() {
        let mut c = db();
        let tx = c.transaction().unwrap();
        let cfg: MachineConfig = toml::from_str(
            "id = \"iron-1\"\nkind = \"iron\"\nstation = \"S1\"\ntemp_range_c = [140, 170]\n\
             process_temp_range_c = { P1 = [100, 200] }\n",
        )
        .unwrap();
        for (i, t) in [160.0, 180.0, 160.0].iter().enumerate() {
            let r = reading(
                Some(i as i64),
                1000 + i as i64 * 1000,
                &format!("{{\"temp_c\":{t}}}"),
            );
            insert_reading(&tx, &r).unwrap();
        }
        let unit = UnitWindow {
            station: "S1".into(),
            start_ms: 1000,
            end_ms: 4000,
            ..Default::default()
        };
        let recs = unit_summaries(&tx, &[&cfg], &unit).unwrap();
        let body: serde_json::Value = serde_json::from_str(&recs[0].body).unwrap();
        assert_eq!(body["outside_range_s"], json!(1));
        assert_eq!(body["temp_c"]["max"], json!(180));
        let p1 = UnitWindow {
            process: Some("P1".into()),
            ..unit.clone()
        };
        let recs = unit_summaries(&tx, &[&cfg], &p1).unwrap();
        let body: serde_json::Value = serde_json::from_str(&recs[0].body).unwrap();
        assert_eq!(body["outside_range_s"], json!(0));
        assert_eq!(recs[0].process.as_deref(), Some("P1"));
        assert_eq!(prune(&tx, 2500, 100).unwrap(), 2);
        assert_eq!(prune(&tx, 2500, 100).unwrap(), 0);
    }
}
