//! The station state machine: [`Workshop::decide`] (pure) and [`Workshop::apply`].

use std::collections::{BTreeMap, HashMap};

use bobbin_codes::{Decoded, Scheme};
use bobbin_sync::record::RecordContent;
use chrono::{DateTime, FixedOffset};
use serde::Serialize;
use serde_json::{json, Value};

use super::inspection::{
    assess_cut, assess_garment, cut_inspection_record, garment_inspection_record,
    required_inspected, risk_for_score, CutInspectionForm, GarmentInspectionForm, InspectionRules,
    SizeCount,
};
use super::{
    Bundle, Claim, ClaimOp, Decision, Lookup, Outcome, RejectNote, Scan, StateChange, StationKind,
    StationSpec, Timing, UnknownBundlePolicy,
};

/// Workshop-wide settings of the station workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WorkshopOptions {
    /// Offset of workshop-local time from UTC, minutes (China: 480). Decides the `date` of
    /// records and when "pieces today" resets; out of ±18 h is taken as 0.
    pub utc_offset_minutes: i32,
    /// Inspection rules (score unit, low-risk share).
    pub inspection: InspectionRules,
}

/// Per-station state. Replaced whole by `apply`, so a decision computed against one state
/// can never be half-applied.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct StationState {
    worker: Option<OnDuty>,
    /// Process chosen by card (stations without a fixed one).
    process: Option<String>,
    unit: Option<OpenUnit>,
    /// End of the last unit here, or the login: the start of the next consecutive unit.
    last_completion_ms: Option<i64>,
    draft: Option<Draft>,
    last: Option<LastScan>,
}

#[derive(Debug, Clone, PartialEq)]
struct OnDuty {
    id: String,
    team: Option<String>,
    since_ms: i64,
}

/// What the records of a unit say about its bundle, captured when the unit starts.
#[derive(Debug, Clone, PartialEq, Default)]
struct UnitInfo {
    order: Option<String>,
    pieces: Option<u32>,
    style: Option<String>,
    colour: Option<String>,
    size: Option<String>,
    flags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
struct OpenUnit {
    trace_key: String,
    process: String,
    start_ms: i64,
    info: UnitInfo,
}

#[derive(Debug, Clone, PartialEq)]
struct Draft {
    trace_key: String,
    info: UnitInfo,
    start_ms: i64,
    score: Option<f64>,
    results_seen: bool,
    pending_qty: Option<u32>,
    pending_defects: Vec<String>,
    passed: u32,
    failed: u32,
    defects: BTreeMap<String, u32>,
}

impl Draft {
    fn new(trace_key: String, info: UnitInfo, start_ms: i64) -> Self {
        Self {
            trace_key,
            info,
            start_ms,
            score: None,
            results_seen: false,
            pending_qty: None,
            pending_defects: Vec::new(),
            passed: 0,
            failed: 0,
            defects: BTreeMap::new(),
        }
    }

    /// Apply one step as its `inspection.step` record states it (`step`, `value`).
    fn step(&mut self, step: &str, value: &Value) {
        let n = || value.as_u64().and_then(|v| u32::try_from(v).ok());
        match step {
            "score" => self.score = value.as_f64(),
            "quantity" => self.pending_qty = n(),
            "pass" | "fail" => {
                let n = n().unwrap_or(1);
                self.pending_qty = None;
                self.results_seen = true;
                if step == "pass" {
                    self.passed = self.passed.saturating_add(n);
                } else {
                    self.failed = self.failed.saturating_add(n);
                    // The defect cards scanned since the last fail belong to this one.
                    self.pending_defects.clear();
                }
            }
            "defect" => {
                if let Some(code) = value.as_str() {
                    let c = self.defects.entry(code.to_owned()).or_default();
                    *c = c.saturating_add(1);
                    self.pending_defects.push(code.to_owned());
                }
            }
            _ => {}
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct LastScan {
    time_ms: i64,
    outcome: Outcome,
    message: String,
}

/// The open two-scan unit of a station, for the status API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenUnitView {
    /// Trace key of the bundle.
    pub trace_key: String,
    /// Its order, if the bundle is known.
    pub order: Option<String>,
    /// Process.
    pub process: String,
    /// When the unit started (UTC ms).
    pub start_ms: i64,
    /// Pieces, if the bundle is known.
    pub pieces: Option<u32>,
}

/// The open inspection draft of a station, for the status API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InspectionView {
    /// Trace key of the bundle.
    pub trace_key: String,
    /// Its order, if the bundle is known.
    pub order: Option<String>,
    /// Pieces in the bundle, if known.
    pub pieces: Option<u32>,
    /// Four-point score entered (cut inspection).
    pub score: Option<f64>,
    /// Passes so far.
    pub passed: u32,
    /// Fails so far.
    pub failed: u32,
}

/// One station as the status API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StationView {
    /// Station id.
    pub station: String,
    /// What it does.
    pub kind: StationKind,
    /// Its team.
    pub team: Option<String>,
    /// Worker on duty (id only).
    pub worker: Option<String>,
    /// Since when (UTC ms).
    pub since_ms: Option<i64>,
    /// Current process: fixed, or chosen by card.
    pub process: Option<String>,
    /// Whether the process is fixed by configuration.
    pub process_fixed: bool,
    /// How units are timed.
    pub timing: Timing,
    /// Open two-scan unit.
    pub open_unit: Option<OpenUnitView>,
    /// Open inspection draft.
    pub inspection: Option<InspectionView>,
    /// Time of the last scan (UTC ms).
    pub last_scan_ms: Option<i64>,
    /// Its outcome.
    pub last_outcome: Option<Outcome>,
    /// Its message.
    pub last_message: Option<String>,
    /// Pieces the worker on duty has completed today (from applied `work` records).
    pub worker_pieces_today: Option<u32>,
    /// Ids of the devices that scan at this station.
    pub devices: Vec<String>,
}

/// The stations of a workshop and what is going on at each.
#[derive(Debug, Clone)]
pub struct Workshop {
    specs: Vec<StationSpec>,
    index: HashMap<String, usize>,
    states: Vec<StationState>,
    options: WorkshopOptions,
    /// Local date the piece counts are for, and the counts per worker.
    pieces_date: Option<String>,
    pieces: BTreeMap<String, u32>,
    /// Latest scan time applied: "now" for [`Workshop::snapshot`].
    clock_ms: Option<i64>,
}

impl Workshop {
    /// A workshop with default options (UTC dates, default inspection rules). A station id
    /// given twice keeps its first spec (config validation refuses duplicates anyway).
    pub fn new(specs: Vec<StationSpec>) -> Self {
        Self::with_options(specs, WorkshopOptions::default())
    }

    /// A workshop with explicit options.
    pub fn with_options(specs: Vec<StationSpec>, options: WorkshopOptions) -> Self {
        let mut index = HashMap::new();
        for (i, s) in specs.iter().enumerate() {
            index.entry(s.id.clone()).or_insert(i);
        }
        let states = vec![StationState::default(); specs.len()];
        Self {
            specs,
            index,
            states,
            options,
            pieces_date: None,
            pieces: BTreeMap::new(),
            clock_ms: None,
        }
    }

    /// The options in use.
    pub fn options(&self) -> &WorkshopOptions {
        &self.options
    }

    /// What `scan` means, given the current state and `lookup`. Never mutates.
    pub fn decide(&self, scan: &Scan, lookup: &dyn Lookup) -> Decision {
        let Some(&i) = self.index.get(&scan.station) else {
            let message = format!("unknown station {:?}: not configured", scan.station);
            return Decision {
                outcome: Outcome::UnknownStation,
                reject: Some(RejectNote {
                    reason: message.clone(),
                }),
                message,
                flags: Vec::new(),
                records: Vec::new(),
                claims: Vec::new(),
                change: StateChange {
                    time_ms: Some(scan.time_ms),
                    ..StateChange::default()
                },
            };
        };
        let mut cx = Ctx {
            ws: self,
            scan,
            lookup,
            i,
            touched: BTreeMap::new(),
            records: Vec::new(),
            claims: Vec::new(),
            flags: Vec::new(),
            pieces: None,
        };
        let (outcome, message) = match &scan.decoded {
            Err(e) => (Outcome::InvalidCode, format!("invalid code: {e}")),
            Ok(d) => cx.dispatch(d),
        };
        cx.finish(outcome, message)
    }

    /// Apply a committed decision. Call it for every committed decision, in order, before
    /// deciding the next scan.
    pub fn apply(&mut self, d: &Decision) {
        for (j, s) in &d.change.stations {
            if let Some(slot) = self.states.get_mut(*j) {
                *slot = s.clone();
            }
        }
        if let Some((worker, date, n)) = &d.change.pieces {
            self.add_pieces(worker, date, *n);
        }
        if let Some(t) = d.change.time_ms {
            self.tick(t);
        }
    }

    fn add_pieces(&mut self, worker: &str, date: &str, n: u32) {
        match self.pieces_date.as_deref() {
            Some(cur) if cur == date => {}
            // A record dated before the current day (a clock step back) is not today's.
            Some(cur) if date < cur => return,
            _ => {
                self.pieces.clear();
                self.pieces_date = Some(date.to_owned());
            }
        }
        let e = self.pieces.entry(worker.to_owned()).or_default();
        *e = e.saturating_add(n);
    }

    fn tick(&mut self, t: i64) {
        self.clock_ms = Some(self.clock_ms.map_or(t, |c| c.max(t)));
    }

    /// Rebuild the state after a restart from the journal, one record at a time, oldest
    /// first: who is logged in where, selected processes, open two-scan units, inspection
    /// drafts and today's piece counts. Feed at least the records of the last 24 h (a
    /// login older than what is fed is not restored: that worker badges in again). Records
    /// of other kinds or of unknown stations are ignored. The "last scan" of each station
    /// is not restored (rejects are not records).
    pub fn replay(&mut self, r: &RecordContent) {
        let Some(j) = r.station.as_ref().and_then(|s| self.index.get(s)).copied() else {
            return;
        };
        let Ok(b) = serde_json::from_str::<Value>(&r.body) else {
            return;
        };
        let text = |k: &str| b.get(k).and_then(Value::as_str).map(str::to_owned);
        let num = |k: &str| {
            b.get(k)
                .and_then(Value::as_u64)
                .and_then(|v| u32::try_from(v).ok())
        };
        let time = |k: &str| b.get(k).and_then(Value::as_i64).unwrap_or(r.time_ms);
        let info = || UnitInfo {
            order: r.order.clone(),
            pieces: num("pieces"),
            style: text("style"),
            colour: text("colour"),
            size: text("size"),
            flags: b
                .get("flags")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        };
        match r.kind.as_str() {
            "worker.login" => {
                let Some(w) = r.worker.clone() else { return };
                for st in &mut self.states {
                    if st.worker.as_ref().is_some_and(|o| o.id == w) {
                        *st = StationState::default();
                    }
                }
                self.states[j] = StationState {
                    worker: Some(OnDuty {
                        id: w,
                        team: text("team"),
                        since_ms: r.time_ms,
                    }),
                    last_completion_ms: Some(r.time_ms),
                    ..StationState::default()
                };
            }
            "worker.logout" => self.states[j] = StationState::default(),
            "process.select" => self.states[j].process = text("process"),
            "work.start" => {
                if let (Some(trace_key), Some(process)) = (r.trace_code.clone(), r.process.clone())
                {
                    self.states[j].unit = Some(OpenUnit {
                        trace_key,
                        process,
                        start_ms: time("start_ms"),
                        info: info(),
                    });
                }
            }
            "work" => {
                let st = &mut self.states[j];
                st.unit = None;
                st.last_completion_ms = Some(time("end_ms"));
                if let (Some(w), Some(date), Some(n)) = (&r.worker, text("date"), num("pieces")) {
                    self.add_pieces(w, &date, n);
                }
            }
            "work.abandoned" => self.states[j].unit = None,
            "inspection.step" => {
                let step = text("step").unwrap_or_default();
                if step == "open" {
                    let mut info = info();
                    if info.order.is_none() && info.pieces.is_none() {
                        info.flags.push("unknown-bundle".into());
                    }
                    let key = r.trace_code.clone().unwrap_or_default();
                    self.states[j].draft = Some(Draft::new(key, info, r.time_ms));
                } else if let Some(dr) = &mut self.states[j].draft {
                    dr.step(&step, b.get("value").unwrap_or(&Value::Null));
                }
            }
            "inspection.cut" | "inspection.garment" => self.states[j].draft = None,
            _ => return,
        }
        self.tick(r.time_ms);
    }

    /// Pieces per worker completed on the local date of `now_ms` (empty on a new day).
    pub fn pieces_today(&self, now_ms: i64) -> BTreeMap<String, u32> {
        let today = local_date(now_ms, self.options.utc_offset_minutes);
        if self.pieces_date.as_deref() == Some(today.as_str()) {
            self.pieces.clone()
        } else {
            BTreeMap::new()
        }
    }

    /// The stations as of the latest applied scan. Prefer [`Workshop::snapshot_at`] with the
    /// wall clock, so that piece counts read zero after midnight before the first scan.
    pub fn snapshot(&self) -> Vec<StationView> {
        self.snapshot_at(self.clock_ms.unwrap_or(0))
    }

    /// The stations, with piece counts for the local date of `now_ms`.
    pub fn snapshot_at(&self, now_ms: i64) -> Vec<StationView> {
        let pieces = self.pieces_today(now_ms);
        self.specs
            .iter()
            .zip(&self.states)
            .map(|(spec, st)| StationView {
                devices: spec.devices.clone(),
                station: spec.id.clone(),
                kind: spec.kind,
                team: spec.team.clone(),
                worker: st.worker.as_ref().map(|w| w.id.clone()),
                since_ms: st.worker.as_ref().map(|w| w.since_ms),
                process: spec.process.clone().or_else(|| st.process.clone()),
                process_fixed: spec.process.is_some(),
                timing: spec.timing,
                open_unit: st.unit.as_ref().map(|u| OpenUnitView {
                    trace_key: u.trace_key.clone(),
                    order: u.info.order.clone(),
                    process: u.process.clone(),
                    start_ms: u.start_ms,
                    pieces: u.info.pieces,
                }),
                inspection: st.draft.as_ref().map(|d| InspectionView {
                    trace_key: d.trace_key.clone(),
                    order: d.info.order.clone(),
                    pieces: d.info.pieces,
                    score: d.score,
                    passed: d.passed,
                    failed: d.failed,
                }),
                last_scan_ms: st.last.as_ref().map(|l| l.time_ms),
                last_outcome: st.last.as_ref().map(|l| l.outcome),
                last_message: st.last.as_ref().map(|l| l.message.clone()),
                worker_pieces_today: st
                    .worker
                    .as_ref()
                    .map(|w| pieces.get(&w.id).copied().unwrap_or(0)),
            })
            .collect()
    }
}

fn is_inspection(kind: StationKind) -> bool {
    matches!(kind, StationKind::CutInspection | StationKind::Qc)
}

fn offset(minutes: i32) -> FixedOffset {
    minutes
        .checked_mul(60)
        .and_then(FixedOffset::east_opt)
        .unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset"))
}

fn local(ms: i64, minutes: i32) -> Option<DateTime<FixedOffset>> {
    DateTime::from_timestamp_millis(ms).map(|t| t.with_timezone(&offset(minutes)))
}

/// Workshop-local `YYYY-MM-DD` of a UTC time.
fn local_date(ms: i64, minutes: i32) -> String {
    local(ms, minutes)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn local_hhmm(ms: i64, minutes: i32) -> String {
    local(ms, minutes)
        .map(|t| t.format("%H:%M").to_string())
        .unwrap_or_else(|| "?".into())
}

/// A key short enough for a station display: long trace keys end in their random part and
/// check character, which is what tells two tickets apart.
fn short(key: &str) -> String {
    let n = key.chars().count();
    if n > 12 {
        let tail: String = key.chars().skip(n - 8).collect();
        format!("…{tail}")
    } else {
        key.to_owned()
    }
}

fn pieces_text(p: Option<u32>) -> String {
    p.map_or_else(|| "? pcs".to_owned(), |n| format!("{n} pcs"))
}

/// One decision in the making: reads the workshop, collects records, claim ops and the new
/// state of every station it touches (copy on first write).
struct Ctx<'a> {
    ws: &'a Workshop,
    scan: &'a Scan,
    lookup: &'a dyn Lookup,
    i: usize,
    touched: BTreeMap<usize, StationState>,
    records: Vec<RecordContent>,
    claims: Vec<ClaimOp>,
    flags: Vec<String>,
    pieces: Option<(String, String, u32)>,
}

type Said = (Outcome, String);

impl<'a> Ctx<'a> {
    fn cur(&self, j: usize) -> &StationState {
        self.touched.get(&j).unwrap_or(&self.ws.states[j])
    }

    fn st(&mut self, j: usize) -> &mut StationState {
        let ws = self.ws;
        self.touched
            .entry(j)
            .or_insert_with(|| ws.states[j].clone())
    }

    fn spec(&self, j: usize) -> &'a StationSpec {
        &self.ws.specs[j]
    }

    fn here(&self) -> &'a str {
        &self.ws.specs[self.i].id
    }

    fn now(&self) -> i64 {
        self.scan.time_ms
    }

    fn date(&self) -> String {
        local_date(self.now(), self.ws.options.utc_offset_minutes)
    }

    fn hhmm(&self, ms: i64) -> String {
        local_hhmm(ms, self.ws.options.utc_offset_minutes)
    }

    fn team(&self, j: usize, duty: &OnDuty) -> Option<String> {
        self.spec(j).team.clone().or_else(|| duty.team.clone())
    }

    /// A record at station `j` by `worker`, at the scan's time.
    fn record(&self, kind: &str, j: usize, worker: &str, body: Value) -> RecordContent {
        RecordContent {
            kind: kind.to_owned(),
            time_ms: self.now(),
            station: Some(self.spec(j).id.clone()),
            worker: Some(worker.to_owned()),
            body: body.to_string(),
            ..RecordContent::default()
        }
    }

    fn station_of(&self, worker: &str) -> Option<usize> {
        (0..self.ws.specs.len())
            .find(|&j| self.cur(j).worker.as_ref().is_some_and(|w| w.id == worker))
    }

    fn finish(mut self, outcome: Outcome, message: String) -> Decision {
        let i = self.i;
        let time_ms = self.now();
        self.st(i).last = Some(LastScan {
            time_ms,
            outcome,
            message: message.clone(),
        });
        // Nothing a worker did is lost: whatever wrote no record leaves a reject row.
        let reject = self.records.is_empty().then(|| RejectNote {
            reason: message.clone(),
        });
        Decision {
            outcome,
            message,
            flags: self.flags,
            records: self.records,
            claims: self.claims,
            reject,
            change: StateChange {
                stations: self.touched.into_iter().collect(),
                pieces: self.pieces,
                time_ms: Some(time_ms),
            },
        }
    }

    fn dispatch(&mut self, d: &Decoded) -> Said {
        match d.scheme {
            Scheme::Badge => self.badge(d),
            Scheme::Logout => self.logout(),
            Scheme::ProcessCard => self.process_card(d),
            Scheme::Quantity | Scheme::Result | Scheme::DefectCard => self.inspection_card(d),
            Scheme::DgTrace
            | Scheme::Gs1
            | Scheme::DigitalLink
            | Scheme::EpcSgtin
            | Scheme::EpcSscc
            | Scheme::EpcGid
            | Scheme::EpcUnknown
            | Scheme::Opaque => self.bundle_scan(d),
        }
    }

    // ---- sessions -------------------------------------------------------------------

    fn badge(&mut self, d: &Decoded) -> Said {
        let Some(w) = self.lookup.worker_by_badge(&d.key) else {
            return (
                Outcome::UnknownWorker,
                format!("unknown badge {}: not a registered worker", d.key),
            );
        };
        let (i, here) = (self.i, self.here());
        let on_duty = self.cur(i).worker.clone();
        if on_duty.as_ref().is_some_and(|o| o.id == w.id) {
            return (
                Outcome::AlreadyLoggedIn,
                format!("already logged in: {} at {here}", w.id),
            );
        }
        let mut msg = format!("logged in: {} at {here}", w.id);
        let moved_from = self.station_of(&w.id).filter(|&j| j != i);
        if let Some(j) = moved_from {
            let notes = self.end_session(j, "login-elsewhere", None, Some(here));
            msg += &format!("; logged out of {}{notes}", self.spec(j).id);
        }
        if let Some(prev) = &on_duty {
            // Badge swap: the previous worker's open unit is abandoned, not handed over —
            // the coupon must be claimed by whoever actually does the work.
            let notes = self.end_session(i, "replaced", Some(&w.id), None);
            msg += &format!("; {} logged out{notes}", prev.id);
        }
        let duty = OnDuty {
            id: w.id.clone(),
            team: w.team.clone(),
            since_ms: self.now(),
        };
        let body = json!({
            "team": self.team(i, &duty),
            "device": self.scan.device,
            "replaced": on_duty.map(|o| o.id),
            "moved_from": moved_from.map(|j| self.spec(j).id.clone()),
        });
        let r = self.record("worker.login", i, &w.id, body);
        self.records.push(r);
        let now = self.now();
        let st = self.st(i);
        st.worker = Some(duty);
        st.process = None;
        st.unit = None;
        st.draft = None;
        st.last_completion_ms = Some(now);
        (Outcome::Ok, msg)
    }

    fn logout(&mut self) -> Said {
        let i = self.i;
        let Some(duty) = self.cur(i).worker.clone() else {
            return (
                Outcome::NotLoggedIn,
                format!("not logged in: nobody on duty at {}", self.here()),
            );
        };
        let notes = self.end_session(i, "card", None, None);
        (Outcome::Ok, format!("logged out: {}{notes}", duty.id))
    }

    /// Log out whoever is on duty at `j`: abandon their open unit, close their inspection
    /// draft, `worker.logout`. Returns notes for the message.
    fn end_session(
        &mut self,
        j: usize,
        reason: &str,
        by: Option<&str>,
        to_station: Option<&str>,
    ) -> String {
        let Some(duty) = self.cur(j).worker.clone() else {
            return String::new();
        };
        let mut notes = String::new();
        if let Some(u) = self.cur(j).unit.clone() {
            let body = json!({
                "team": self.team(j, &duty),
                "date": self.date(),
                "start_ms": u.start_ms,
                "end_ms": self.now(),
                "pieces": u.info.pieces,
                "reason": reason,
                "flags": u.info.flags,
            });
            let mut r = self.record("work.abandoned", j, &duty.id, body);
            r.trace_code = Some(u.trace_key.clone());
            r.order = u.info.order.clone();
            r.process = Some(u.process.clone());
            self.records.push(r);
            notes += &format!(", bundle {} abandoned", short(&u.trace_key));
            self.claims.push(ClaimOp::Release {
                trace_key: u.trace_key,
                process: u.process,
            });
        }
        if let Some(dr) = self.cur(j).draft.clone() {
            let summary = self.close_draft(j, &duty, dr);
            notes += &format!(", inspection closed ({summary})");
        }
        let body = json!({
            "reason": reason,
            "since_ms": duty.since_ms,
            "by": by,
            "to_station": to_station,
            "device": self.scan.device,
        });
        let r = self.record("worker.logout", j, &duty.id, body);
        self.records.push(r);
        let st = self.st(j);
        st.worker = None;
        st.process = None;
        st.unit = None;
        st.draft = None;
        st.last_completion_ms = None;
        notes
    }

    fn process_card(&mut self, d: &Decoded) -> Said {
        let (i, here) = (self.i, self.here());
        let spec = self.spec(i);
        let id = d
            .fields
            .get("process")
            .cloned()
            .unwrap_or_else(|| d.key.trim_start_matches("process:").to_owned());
        if is_inspection(spec.kind) {
            return (
                Outcome::NotExpected,
                format!("not expected: process cards are not used at inspection station {here}"),
            );
        }
        if let Some(p) = &spec.process {
            return (
                Outcome::FixedProcess,
                format!("fixed process: {here} always does {p}; process card {id} ignored"),
            );
        }
        let Some(duty) = self.cur(i).worker.clone() else {
            return (
                Outcome::NotLoggedIn,
                format!("not logged in at {here}: scan your badge, then the process card"),
            );
        };
        if !self.lookup.process_exists(&id) {
            return (Outcome::UnknownProcess, format!("unknown process {id}"));
        }
        if let Some(u) = self.cur(i).unit.as_ref().filter(|u| u.process != id) {
            return (
                Outcome::UnitOpen,
                format!(
                    "unit open: finish bundle {} ({}) before changing process",
                    short(&u.trace_key),
                    u.process
                ),
            );
        }
        let previous = self.cur(i).process.clone();
        let body = json!({ "process": id, "previous": previous, "device": self.scan.device });
        let mut r = self.record("process.select", i, &duty.id, body);
        r.process = Some(id.clone());
        self.records.push(r);
        self.st(i).process = Some(id.clone());
        (Outcome::Ok, format!("process: {id}"))
    }

    // ---- bundles and coupons -----------------------------------------------------------

    /// What the records say about a bundle; `process` = Some checks the order's route.
    fn unit_info(&self, bundle: Option<&Bundle>, process: Option<&str>) -> UnitInfo {
        let Some(b) = bundle else {
            return UnitInfo {
                flags: vec!["unknown-bundle".to_owned()],
                ..UnitInfo::default()
            };
        };
        let mut flags = Vec::new();
        if let (Some(p), Some(route)) = (process, self.lookup.order_route(&b.order)) {
            if !route.iter().any(|r| r == p) {
                flags.push("out-of-route".to_owned());
            }
        }
        UnitInfo {
            order: Some(b.order.clone()),
            pieces: Some(b.quantity),
            style: b.style.clone(),
            colour: b.colour.clone(),
            size: b.size.clone(),
            flags,
        }
    }

    fn bundle_scan(&mut self, d: &Decoded) -> Said {
        let (i, here) = (self.i, self.here());
        let spec = self.spec(i);
        let key = d.key.clone();
        let Some(duty) = self.cur(i).worker.clone() else {
            return (
                Outcome::NotLoggedIn,
                format!("not logged in at {here}: scan your badge first"),
            );
        };
        if is_inspection(spec.kind) {
            return self.inspection_bundle(&key, &duty);
        }
        let Some(process) = spec.process.clone().or_else(|| self.cur(i).process.clone()) else {
            return (
                Outcome::NoProcess,
                format!("no process at {here}: scan a process card first"),
            );
        };
        let bundle = self.lookup.bundle(&key);
        // The claim decides first, whatever the bundle's status, so a repeated scan of an
        // accepted unknown bundle is still a duplicate and never a second count.
        if let Some(c) = self.lookup.claim(&key, &process) {
            if c.worker == duty.id {
                if c.open {
                    return self.finish_unit(&duty, &process, c, bundle.as_ref());
                }
                return (
                    Outcome::Duplicate,
                    format!(
                        "duplicate: bundle {} op {process} already claimed by you at {} ({}); not counted again",
                        short(&key),
                        self.hhmm(c.time_ms),
                        c.station
                    ),
                );
            }
            return self.conflict(&duty, &process, c, bundle.as_ref());
        }
        let info = self.unit_info(bundle.as_ref(), Some(&process));
        if bundle.is_none() && spec.unknown_bundles == UnknownBundlePolicy::Refuse {
            self.flags.push("unknown-bundle".into());
            return (
                Outcome::UnknownBundle,
                format!("unknown bundle {}: refused at {here}", short(&key)),
            );
        }
        self.flags.extend(info.flags.iter().cloned());
        let warn = if info.flags.is_empty() {
            String::new()
        } else {
            format!(" [{}]", info.flags.join(", "))
        };
        match spec.timing {
            Timing::Consecutive => {
                let start = self.cur(i).last_completion_ms.unwrap_or(duty.since_ms);
                let pieces = info.pieces;
                self.work_record(&duty, &process, &key, &info, start, "consecutive");
                self.claims.push(ClaimOp::Insert(Claim {
                    trace_key: key.clone(),
                    process: process.clone(),
                    station: here.to_owned(),
                    worker: duty.id.clone(),
                    time_ms: self.now(),
                    open: false,
                }));
                let now = self.now();
                self.st(i).last_completion_ms = Some(now);
                (
                    Outcome::Ok,
                    format!(
                        "ok: bundle {} op {process}, {}{warn}",
                        short(&key),
                        pieces_text(pieces)
                    ),
                )
            }
            Timing::TwoScans => {
                if let Some(u) = &self.cur(i).unit {
                    return (
                        Outcome::UnitOpen,
                        format!(
                            "unit open: finish bundle {} (started {}) first",
                            short(&u.trace_key),
                            self.hhmm(u.start_ms)
                        ),
                    );
                }
                let body = json!({
                    "team": self.team(i, &duty),
                    "date": self.date(),
                    "start_ms": self.now(),
                    "pieces": info.pieces,
                    "style": info.style,
                    "colour": info.colour,
                    "size": info.size,
                    "flags": info.flags,
                    "device": self.scan.device,
                });
                let mut r = self.record("work.start", i, &duty.id, body);
                r.trace_code = Some(key.clone());
                r.order = info.order.clone();
                r.process = Some(process.clone());
                self.records.push(r);
                self.claims.push(ClaimOp::Insert(Claim {
                    trace_key: key.clone(),
                    process: process.clone(),
                    station: here.to_owned(),
                    worker: duty.id.clone(),
                    time_ms: self.now(),
                    open: true,
                }));
                let msg = format!(
                    "started: bundle {} op {process}, {}{warn}",
                    short(&key),
                    pieces_text(info.pieces)
                );
                self.st(i).unit = Some(OpenUnit {
                    trace_key: key,
                    process,
                    start_ms: self.scan.time_ms,
                    info,
                });
                (Outcome::Ok, msg)
            }
        }
    }

    /// Second scan of a two-scan unit: the `work` record, from the open claim's start.
    fn finish_unit(
        &mut self,
        duty: &OnDuty,
        process: &str,
        c: Claim,
        bundle: Option<&Bundle>,
    ) -> Said {
        let i = self.i;
        // The info captured at the start matches the `work.start` record; after a restart
        // (no state) it is read again.
        let info = match self.cur(i).unit.clone() {
            Some(u) if u.trace_key == c.trace_key && u.process == process => u.info,
            _ => self.unit_info(bundle, Some(process)),
        };
        self.flags.extend(info.flags.iter().cloned());
        self.work_record(duty, process, &c.trace_key, &info, c.time_ms, "two-scans");
        self.claims.push(ClaimOp::Close {
            trace_key: c.trace_key.clone(),
            process: process.to_owned(),
            time_ms: self.now(),
        });
        let now = self.now();
        let st = self.st(i);
        // Only the unit just finished: were the state ever out of step with the claims
        // table, another open unit must stay visible (and be abandoned properly later).
        if st
            .unit
            .as_ref()
            .is_some_and(|u| u.trace_key == c.trace_key && u.process == process)
        {
            st.unit = None;
        }
        st.last_completion_ms = Some(now);
        (
            Outcome::Ok,
            format!(
                "done: bundle {} op {process}, {}",
                short(&c.trace_key),
                pieces_text(info.pieces)
            ),
        )
    }

    /// The DG-A1 `work` record, and the piece count it adds for today.
    fn work_record(
        &mut self,
        duty: &OnDuty,
        process: &str,
        key: &str,
        info: &UnitInfo,
        start_ms: i64,
        timing: &str,
    ) {
        let i = self.i;
        let mut flags = info.flags.clone();
        if self.now() < start_ms {
            // Recorded as read: a clock step back must be visible, not "fixed".
            flags.push("clock-went-back".into());
        }
        let date = self.date();
        let body = json!({
            "team": self.team(i, duty),
            "worker": duty.id,
            "date": date,
            "order": info.order,
            "process": process,
            "start_ms": start_ms,
            "end_ms": self.now(),
            "pieces": info.pieces,
            "style": info.style,
            "colour": info.colour,
            "size": info.size,
            "timing": timing,
            "flags": flags,
            "device": self.scan.device,
        });
        let mut r = self.record("work", i, &duty.id, body);
        r.trace_code = Some(key.to_owned());
        r.order = info.order.clone();
        r.process = Some(process.to_owned());
        self.records.push(r);
        if let Some(n) = info.pieces {
            self.pieces = Some((duty.id.clone(), date, n));
        }
    }

    fn conflict(
        &mut self,
        duty: &OnDuty,
        process: &str,
        c: Claim,
        bundle: Option<&Bundle>,
    ) -> Said {
        let i = self.i;
        let when = self.hhmm(c.time_ms);
        let body = json!({
            "claimed_by": c.worker,
            "claimed_at_ms": c.time_ms,
            "claimed_station": c.station,
            "claim_open": c.open,
            "team": self.team(i, duty),
            "date": self.date(),
            "device": self.scan.device,
        });
        let mut r = self.record("claim.conflict", i, &duty.id, body);
        r.trace_code = Some(c.trace_key.clone());
        r.order = bundle.map(|b| b.order.clone());
        r.process = Some(process.to_owned());
        self.records.push(r);
        let what = if c.open {
            "in progress by"
        } else {
            "claimed by"
        };
        (
            Outcome::Conflict,
            format!(
                "conflict: bundle {} op {process} {what} {} at {when} ({}); not counted, recorded for the supervisor",
                short(&c.trace_key),
                c.worker,
                c.station
            ),
        )
    }

    // ---- inspections --------------------------------------------------------------------

    fn inspection_bundle(&mut self, key: &str, duty: &OnDuty) -> Said {
        let (i, here) = (self.i, self.here());
        let current = self.cur(i).draft.clone();
        if let Some(dr) = current.clone().filter(|d| d.trace_key == key) {
            let summary = self.close_draft(i, duty, dr);
            return (Outcome::Ok, format!("inspection recorded: {summary}"));
        }
        let bundle = self.lookup.bundle(key);
        if bundle.is_none() && self.spec(i).unknown_bundles == UnknownBundlePolicy::Refuse {
            self.flags.push("unknown-bundle".into());
            return (
                Outcome::UnknownBundle,
                format!("unknown bundle {}: refused at {here}", short(key)),
            );
        }
        let info = self.unit_info(bundle.as_ref(), None);
        self.flags.extend(info.flags.iter().cloned());
        let mut msg = String::new();
        if let Some(dr) = current {
            let summary = self.close_draft(i, duty, dr);
            msg = format!("inspection recorded: {summary}; ");
        }
        let dr = Draft::new(key.to_owned(), info, self.now());
        self.step_record(duty, &dr, "open", Value::Null, None);
        msg += &format!(
            "inspecting bundle {}, {}",
            short(key),
            pieces_text(dr.info.pieces)
        );
        self.st(i).draft = Some(dr);
        (Outcome::Ok, msg)
    }

    fn step_record(
        &mut self,
        duty: &OnDuty,
        dr: &Draft,
        step: &str,
        value: Value,
        defects: Option<&[String]>,
    ) {
        let body = json!({
            "step": step,
            "value": value,
            "defects": defects,
            "pieces": dr.info.pieces,
            "size": dr.info.size,
            "device": self.scan.device,
        });
        let mut r = self.record("inspection.step", self.i, &duty.id, body);
        r.trace_code = Some(dr.trace_key.clone());
        r.order = dr.info.order.clone();
        self.records.push(r);
    }

    fn inspection_card(&mut self, d: &Decoded) -> Said {
        let (i, here) = (self.i, self.here());
        let kind = self.spec(i).kind;
        let what = match d.scheme {
            Scheme::Quantity => "quantity",
            Scheme::Result => "result",
            _ => "defect",
        };
        if !is_inspection(kind) {
            return (
                Outcome::NotExpected,
                format!("not expected: {what} cards are only used at inspection stations"),
            );
        }
        let Some(duty) = self.cur(i).worker.clone() else {
            return (
                Outcome::NotLoggedIn,
                format!("not logged in at {here}: scan your badge first"),
            );
        };
        let Some(mut dr) = self.cur(i).draft.clone() else {
            return (
                Outcome::NoInspection,
                format!("no inspection open at {here}: scan the bundle first"),
            );
        };
        let field = |name: &str, prefix: &str| {
            d.fields
                .get(name)
                .cloned()
                .unwrap_or_else(|| d.key.trim_start_matches(prefix).to_owned())
        };
        // What the card means, as its `inspection.step` record states it; the draft changes
        // through `Draft::step` only, so replaying the records rebuilds the same draft.
        let (step, value) = match d.scheme {
            Scheme::Quantity => {
                let n: u32 = field("quantity", "quantity:").parse().unwrap_or(1);
                // The first quantity before any result at cut inspection is the four-point
                // score (see the module docs); after that, quantities are piece counts.
                if kind == StationKind::CutInspection && dr.score.is_none() && !dr.results_seen {
                    ("score", json!(n))
                } else {
                    ("quantity", json!(n))
                }
            }
            Scheme::Result if field("result", "result:") == "fail" => {
                ("fail", json!(dr.pending_qty.unwrap_or(1)))
            }
            Scheme::Result => ("pass", json!(dr.pending_qty.unwrap_or(1))),
            _ => ("defect", json!(field("defect", "defect:"))),
        };
        let attached = (step == "fail").then(|| dr.pending_defects.clone());
        dr.step(step, &value);
        self.step_record(&duty, &dr, step, value.clone(), attached.as_deref());
        let msg = match step {
            "score" => {
                let score = dr.score.unwrap_or(0.0);
                let risk = risk_for_score(score);
                let pieces = dr.info.pieces.unwrap_or(0);
                let req =
                    required_inspected(risk, pieces, self.ws.options.inspection.low_risk_percent);
                format!(
                    "score {value}: {} risk, inspect at least {req} of {pieces}",
                    risk.as_str()
                )
            }
            "quantity" => format!("quantity {value}: now scan pass or fail"),
            "defect" => format!(
                "defect {}: scan fail to attach it",
                value.as_str().unwrap_or("")
            ),
            _ => format!("{step} +{value} (pass {}, fail {})", dr.passed, dr.failed),
        };
        self.st(i).draft = Some(dr);
        (Outcome::Ok, msg)
    }

    /// Close a draft into `inspection.cut` / `inspection.garment`; returns a summary.
    fn close_draft(&mut self, j: usize, duty: &OnDuty, dr: Draft) -> String {
        let kind = self.spec(j).kind;
        let station = self.spec(j).id.as_str();
        let date = self.date();
        let mut extra = dr.info.flags.clone();
        if !dr.pending_defects.is_empty() {
            extra.push("defects-without-fail".into());
        }
        let (record, nonconformity) = if kind == StationKind::CutInspection {
            let form = CutInspectionForm {
                order: dr.info.order.clone().unwrap_or_default(),
                cut_pieces: dr.info.pieces.unwrap_or(0),
                score: dr.score,
                fabric: None,
                passed: dr.passed,
                failed: dr.failed,
                defects: dr.defects.clone(),
                inspector: duty.id.clone(),
                remarks: None,
                trace_key: Some(dr.trace_key.clone()),
                start_ms: Some(dr.start_ms),
            };
            let mut eval = assess_cut(&form, &self.ws.options.inspection, None, dr.score);
            eval.flags.extend(extra);
            let r = cut_inspection_record(&form, &eval, Some(station), self.now(), &date);
            (r, eval.nonconformity)
        } else {
            let form = GarmentInspectionForm {
                order: dr.info.order.clone().unwrap_or_default(),
                sizes: vec![SizeCount {
                    size: dr.info.size.clone().unwrap_or_else(|| "-".into()),
                    produced: dr.info.pieces.unwrap_or(0),
                    inspected: dr.passed.saturating_add(dr.failed),
                }],
                passed: dr.passed,
                failed: dr.failed,
                checklist: BTreeMap::new(),
                defects: dr.defects.clone(),
                inspector: duty.id.clone(),
                remarks: None,
                trace_key: Some(dr.trace_key.clone()),
                start_ms: Some(dr.start_ms),
            };
            let mut eval = assess_garment(&form, false);
            eval.flags.extend(extra);
            let r = garment_inspection_record(&form, &eval, Some(station), self.now(), &date);
            (r, eval.nonconformity)
        };
        self.records.push(record);
        self.st(j).draft = None;
        let mut s = format!(
            "bundle {} pass {} fail {}",
            short(&dr.trace_key),
            dr.passed,
            dr.failed
        );
        if !nonconformity.is_empty() {
            s += &format!(", NONCONFORMING: {}", nonconformity.join(", "));
        }
        s
    }
}
