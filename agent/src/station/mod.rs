//! Station workflow: what a scan means at a station (DG-A1, DG-A2, DG-A3). Pure: no I/O, no
//! SQLite, no async.
//!
//! # How the daemon uses it
//!
//! One task handles scans one at a time. For each [`Scan`] it opens a writer transaction,
//! builds a [`Lookup`] over that transaction, calls [`Workshop::decide`], writes the
//! [`Decision`]'s `records`, `claims` and `reject` atomically, commits, and only then calls
//! [`Workshop::apply`] and gives the worker the feedback (`outcome`, `message`). `decide`
//! never mutates, so a failed commit leaves the in-memory state as the database has it.
//! Call `apply` for every committed decision — rejects too (they update the station's "last
//! scan"), and before deciding the next scan: a [`StateChange`] carries the new state of
//! the stations it touched, computed against the state it was decided on.
//!
//! At start-up, feed the journal's records of at least the last 24 h, oldest first, to
//! [`Workshop::replay`]: logins, selected processes, open two-scan units, inspection drafts
//! and today's piece counts come back, so a restart neither strands an open claim nor
//! resets the counts on the station display.
//!
//! Every decision is a record or a reject (DESIGN invariant 6): `records` is non-empty or
//! `reject` is `Some`. A conflict is a record (`claim.conflict`), not a reject row.
//!
//! # Scans
//!
//! | scan | meaning |
//! |---|---|
//! | badge (`badge:ID`, `badge-uid:UID`) | known worker: log in here, out of any other station, and log out whoever was on duty here (abandoning their open unit, closing their inspection draft). Unknown: reject `unknown-worker`. Same worker again: reject `already-logged-in` (acknowledged). |
//! | logout card | `worker.logout`; an open unit is abandoned, an inspection draft closed |
//! | process card | at a station without a fixed process: `process.select`; fixed process or inspection station: reject. A login clears the selection: pay goes by process, so each worker chooses their own. |
//! | trace code (dg-trace, gs1, digital-link, epc-*, opaque) | at sewing, ironing, packing: claim the coupon (trace key, process); at cut-inspection and qc: open or close an inspection draft |
//! | `quantity:N`, `result:pass/fail`, `defect:CODE` | inspection steps (cut-inspection and qc only) |
//!
//! # Coupons and claims
//!
//! The coupon is (trace key, process). Its claim decides piece-rate pay, so it is claimed
//! at most once (DG-A1, vectors PC-1..PC-3):
//! - free coupon, [`Timing::Consecutive`]: `work` record (start = previous completion at
//!   this station or the login) + [`ClaimOp::Insert`] of a closed claim;
//! - free coupon, [`Timing::TwoScans`]: `work.start` + an open claim; the same worker's
//!   second scan closes it: `work` + [`ClaimOp::Close`]. With another bundle's unit open
//!   the scan is refused (`unit-open`);
//! - claimed by this worker and closed: `duplicate` (reject row, nothing counted);
//! - claimed by another worker (open or closed): `conflict` — a `claim.conflict` record
//!   naming who claimed it, when and where; nothing counted;
//! - an open unit is abandoned (`work.abandoned` + [`ClaimOp::Release`]) when its worker
//!   logs out, logs in elsewhere or is replaced by another badge.
//!
//! Split claims (a quantity below the bundle's, PC-4/PC-5) are not supported: a claim is
//! always the whole bundle. Quantity cards at production stations are refused.
//!
//! # Inspections by scan
//!
//! At a `cut-inspection` (DG-A2) or `qc` (DG-A3) station:
//! 1. the inspector scans their badge;
//! 2. scans the bundle (or lay) ticket: opens a draft for it (order, pieces = bundle
//!    quantity, size); an `inspection.step` record `open`;
//! 3. cut-inspection only: the first `quantity:N` before any result is the four-point score
//!    (points per 100 yd², or per 100 m² — [`InspectionRules::score_unit`]);
//! 4. `defect:CODE` cards (any number) name defects of the next fail;
//! 5. `quantity:N` then `result:pass` / `result:fail` adds N passes / fails (N = 1 without
//!    a quantity card); each card is an `inspection.step` record;
//! 6. the draft closes — into `inspection.cut` / `inspection.garment` — when the same
//!    bundle is scanned again, another bundle is scanned (which opens its own draft), the
//!    inspector logs out or logs in elsewhere, or another badge logs in here.
//!
//! The closed draft goes through [`evaluate_cut`] / [`evaluate_garment`]; a shortfall
//! (below the risk share, below 10 % of the bundle's size, no score) is recorded with
//! `nonconformity` entries, never refused. A qc draft covers one bundle, i.e. one size, so
//! its coverage check is "≥ ceil(10 %) of this bundle"; order-wide size coverage needs the
//! per-size counts of the tablet form ([`GarmentInspectionForm`]). Checklist items are not
//! captured by scans (defect codes are): scan-based garment records carry the flag
//! `checklist-not-captured` instead of eight `checklist-missing` entries.
//!
//! # Records
//!
//! Columns: `time_ms` = scan time (UTC ms); `station`, `worker` (id, never a name, ZH-3.3),
//! `trace_code` (the normalised trace key), `order`, `process` filled where known. Bodies
//! are JSON objects (serde_json, fixed key order); `date` is the workshop-local `YYYY-MM-DD`
//! ([`WorkshopOptions::utc_offset_minutes`]); times are UTC ms; `flags` lists
//! `unknown-bundle`, `out-of-route`, `clock-went-back`.
//!
//! | kind | body fields |
//! |---|---|
//! | `worker.login` | `team`, `device`, `replaced` (id of the worker logged out here, or null), `moved_from` (station the worker was logged out of, or null) |
//! | `worker.logout` | `reason` (`card`, `login-elsewhere`, `replaced`), `since_ms` (login time), `by` (the replacing worker, or null), `to_station` (for `login-elsewhere`), `device` |
//! | `process.select` | `process`, `previous` (or null), `device` |
//! | `work.start` | `team`, `date`, `start_ms`, `pieces` (bundle quantity, null if unknown), `style`, `colour`, `size`, `flags`, `device` |
//! | `work` (DG-A1) | `team`, `worker`, `date`, `order`, `process`, `start_ms`, `end_ms`, `pieces` (null if the bundle is unknown), `style`, `colour`, `size`, `timing` (`two-scans`, `consecutive`), `flags`, `device` |
//! | `work.abandoned` | `team`, `date`, `start_ms`, `end_ms` (when abandoned), `pieces`, `reason` (as `worker.logout`), `flags` |
//! | `claim.conflict` | `claimed_by`, `claimed_at_ms`, `claimed_station`, `claim_open`, `team`, `date`, `device`; the `worker` column is the refused worker |
//! | `inspection.step` | `step` (`open`, `score`, `quantity`, `pass`, `fail`, `defect`), `value` (score, N, count or code; null for `open`), `defects` (codes attached to a `fail`, else null), `pieces`, `size`, `device` |
//! | `inspection.cut` (DG-A2) | `order`, `cut_pieces`, `points`, `score`, `score_unit`, `risk`, `mode`, `required_inspected`, `inspected`, `passed`, `failed`, `defects` ({code: count}), `inspector`, `date`, `start_ms`, `end_ms`, `remarks`, `nonconformity`, `flags` |
//! | `inspection.garment` (DG-A3) | `order`, `production_quantity`, `inspected`, `passed`, `failed`, `coverage` ([{size, produced, inspected, required}]), `checklist` ({item: {ok, count, note}}), `defects`, `inspector`, `date`, `start_ms`, `end_ms`, `remarks`, `nonconformity`, `flags` |

mod inspection;
mod workshop;

#[cfg(test)]
mod tests;

use bobbin_sync::record::RecordContent;
use serde::Serialize;

pub use crate::config::StationKind;
pub use inspection::{
    ceil_percent, counts_add_up, cut_inspection_record, defect_points, evaluate_cut,
    evaluate_garment, four_point_total, garment_inspection_record, normalised_score,
    required_inspected, risk_for_score, size_coverage, ChecklistItem, ChecklistResult,
    CutEvaluation, CutInspectionForm, DefectKind, FabricDefect, FabricRoll, GarmentEvaluation,
    GarmentInspectionForm, InspectionRules, Risk, ScoreUnit, SizeCount, SizeCoverage,
    GARMENT_SAMPLE_PERCENT, HIGH_RISK_ABOVE, MAX_CONTINUOUS_SPAN, MAX_POINTS_PER_YARD,
    MEDIUM_RISK_FROM,
};
pub use workshop::{InspectionView, OpenUnitView, StationView, Workshop, WorkshopOptions};

/// A station as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StationSpec {
    /// Station id, unique in the workshop.
    pub id: String,
    /// What the station does.
    pub kind: StationKind,
    /// Team (组别) the station belongs to; the `work` record's team (else the worker's).
    pub team: Option<String>,
    /// Fixed process; `None` = chosen by process card.
    pub process: Option<String>,
    /// How start and end of a unit of work are taken.
    pub timing: Timing,
    /// What to do with a trace code that is not a known bundle.
    pub unknown_bundles: UnknownBundlePolicy,
    /// Ids of the devices that scan here (for the status page's device health per tile).
    pub devices: Vec<String>,
}

/// How start and end of a unit of work are taken (`stations[].timing` in the config).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Timing {
    /// Start = first scan of the bundle, end = second scan.
    TwoScans,
    /// Start = previous completion at this station (or the login), end = this scan.
    #[default]
    Consecutive,
}

/// What to do with a trace code that is not a known bundle (`stations[].unknown_bundles`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnknownBundlePolicy {
    /// Record it, flagged `unknown-bundle`, pieces unknown (null), so nothing a worker did
    /// is lost; a supervisor completes it.
    #[default]
    Accept,
    /// Refuse it (bad beep, kept as a reject row).
    Refuse,
}

/// A worker as the station needs them: the id only (names never leave the PC, ZH-3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worker {
    /// Worker id.
    pub id: String,
    /// Their team, if any.
    pub team: Option<String>,
}

/// A bundle from the master data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// Normalised trace key of its ticket.
    pub trace_key: String,
    /// Production order number.
    pub order: String,
    /// Style.
    pub style: Option<String>,
    /// Colour / shade lot.
    pub colour: Option<String>,
    /// Size.
    pub size: Option<String>,
    /// Pieces in the bundle.
    pub quantity: u32,
}

/// A claim on a coupon (trace key, process).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// Trace key of the bundle.
    pub trace_key: String,
    /// Process.
    pub process: String,
    /// Station it was claimed at.
    pub station: String,
    /// Worker who claimed it.
    pub worker: String,
    /// When it was claimed (UTC ms): the start of a two-scan unit.
    pub time_ms: i64,
    /// A two-scan unit started and not finished.
    pub open: bool,
}

/// Read access to master data and claims, inside the writer transaction of the scan.
pub trait Lookup {
    /// The worker whose badge key (`badge:ID` or `badge-uid:UID`) this is.
    fn worker_by_badge(&self, badge_key: &str) -> Option<Worker>;
    /// The bundle with this trace key.
    fn bundle(&self, trace_key: &str) -> Option<Bundle>;
    /// The claim on the coupon (trace key, process), open or closed.
    fn claim(&self, trace_key: &str, process: &str) -> Option<Claim>;
    /// The order's process route, if one is known; a process not on it is flagged
    /// `out-of-route` but still recorded (routes differ by style).
    fn order_route(&self, order: &str) -> Option<Vec<String>>;
    /// Whether a process id from a process card is known; the default accepts every id.
    fn process_exists(&self, _process: &str) -> bool {
        true
    }
}

/// One scan at a station.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Station id.
    pub station: String,
    /// Device id.
    pub device: String,
    /// When it was read (UTC ms).
    pub time_ms: i64,
    /// Raw bytes as read.
    pub raw: Vec<u8>,
    /// What the decoder made of it, or its error text.
    pub decoded: Result<bobbin_codes::Decoded, String>,
}

/// What became of a scan. `Ok`, `Duplicate` and `AlreadyLoggedIn` are good feedback
/// ([`Outcome::acknowledged`]); the rest are refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Done and recorded.
    Ok,
    /// The worker's own coupon again: nothing counted (PC-2).
    Duplicate,
    /// Another worker holds the coupon: conflict recorded, nothing counted (PC-3).
    Conflict,
    /// The code did not decode (e.g. wrong check character).
    InvalidCode,
    /// The scan's station is not configured.
    UnknownStation,
    /// Nobody is logged in at the station.
    NotLoggedIn,
    /// The badge's worker is already on duty here.
    AlreadyLoggedIn,
    /// The badge is not a known worker.
    UnknownWorker,
    /// The trace code is not a known bundle and the station refuses those.
    UnknownBundle,
    /// No process selected at a station without a fixed one.
    NoProcess,
    /// The process card names an unknown process.
    UnknownProcess,
    /// A process card at a station with a fixed process.
    FixedProcess,
    /// A two-scan unit of another bundle is still open.
    UnitOpen,
    /// A card with no meaning at this kind of station.
    NotExpected,
    /// An inspection card with no inspection draft open (scan a bundle first).
    NoInspection,
}

impl Outcome {
    /// Serialized name (`ok`, `duplicate`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Duplicate => "duplicate",
            Self::Conflict => "conflict",
            Self::InvalidCode => "invalid-code",
            Self::UnknownStation => "unknown-station",
            Self::NotLoggedIn => "not-logged-in",
            Self::AlreadyLoggedIn => "already-logged-in",
            Self::UnknownWorker => "unknown-worker",
            Self::UnknownBundle => "unknown-bundle",
            Self::NoProcess => "no-process",
            Self::UnknownProcess => "unknown-process",
            Self::FixedProcess => "fixed-process",
            Self::UnitOpen => "unit-open",
            Self::NotExpected => "not-expected",
            Self::NoInspection => "no-inspection",
        }
    }

    /// True when the worker should get good feedback: the scan was taken, or repeats one
    /// that was (a duplicate must not make the worker scan again and again).
    pub fn acknowledged(self) -> bool {
        matches!(self, Self::Ok | Self::Duplicate | Self::AlreadyLoggedIn)
    }
}

/// A change to the claims table, applied in the scan's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOp {
    /// A new claim; the coupon must be free (the (trace key, process) key is unique).
    Insert(Claim),
    /// Finish the open claim of a two-scan unit.
    Close {
        /// Trace key.
        trace_key: String,
        /// Process.
        process: String,
        /// End of the unit (UTC ms).
        time_ms: i64,
    },
    /// Delete an open claim whose unit was abandoned, freeing the coupon (never a closed one).
    Release {
        /// Trace key.
        trace_key: String,
        /// Process.
        process: String,
    },
}

/// Why a scan is refused; the daemon stores it with the raw bytes and source of the scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectNote {
    /// The decision's message; it starts with a word naming the outcome, e.g.
    /// `duplicate: bundle …`.
    pub reason: String,
}

/// The new state of the stations a decision touched; only [`Workshop::apply`] reads it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StateChange {
    pub(crate) stations: Vec<(usize, workshop::StationState)>,
    pub(crate) pieces: Option<(String, String, u32)>,
    pub(crate) time_ms: Option<i64>,
}

/// What a scan means: what to write, what to tell the worker, how the state changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// What became of the scan.
    pub outcome: Outcome,
    /// Short text for the worker's display.
    pub message: String,
    /// Flags of the scan (`unknown-bundle`, `out-of-route`) for a warning beep; also in bodies.
    pub flags: Vec<String>,
    /// Records to append, in order.
    pub records: Vec<RecordContent>,
    /// Claim changes, in order, in the same transaction.
    pub claims: Vec<ClaimOp>,
    /// A reject row to write, if the scan is refused.
    pub reject: Option<RejectNote>,
    /// State change for [`Workshop::apply`].
    pub change: StateChange,
}
