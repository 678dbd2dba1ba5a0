//! State-machine tests: every scan goes through the real decoder, `decide`, a fake
//! transaction (records, claims with a unique (trace key, process) key, rejects) and `apply`,
//! as the daemon does. Vector ids (PC-*, SZ-*, RK-*) refer to
//! `shared/research/test-vectors-more.md` §5.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use bobbin_codes::{decode, CheckSystem, DecodeConfig};
use bobbin_sync::record::RecordContent;
use serde_json::Value;

use super::*;

/// Local 08:00 on 2026-11-20 in a UTC+8 workshop.
fn t0() -> i64 {
    chrono::DateTime::parse_from_rfc3339("2026-11-20T08:00:00+08:00")
        .unwrap()
        .timestamp_millis()
}

const MIN: i64 = 60_000;

/// A valid DG trace code whose random part is `random` (6 characters).
fn code(random: &str) -> String {
    let body = format!("FZ44190001241015441900{random}");
    let check = CheckSystem::Mod37_36.compute(body.as_bytes()).unwrap();
    format!("{body}{}", check.as_str())
}

#[derive(Default)]
struct Db {
    workers: HashMap<String, Worker>,
    bundles: HashMap<String, Bundle>,
    routes: HashMap<String, Vec<String>>,
    processes: Option<Vec<String>>,
    claims: RefCell<BTreeMap<(String, String), Claim>>,
    records: Vec<RecordContent>,
    rejects: Vec<String>,
}

impl Lookup for Db {
    fn worker_by_badge(&self, badge_key: &str) -> Option<Worker> {
        self.workers.get(badge_key).cloned()
    }
    fn bundle(&self, trace_key: &str) -> Option<Bundle> {
        self.bundles.get(trace_key).cloned()
    }
    fn claim(&self, trace_key: &str, process: &str) -> Option<Claim> {
        self.claims
            .borrow()
            .get(&(trace_key.to_owned(), process.to_owned()))
            .cloned()
    }
    fn order_route(&self, order: &str) -> Option<Vec<String>> {
        self.routes.get(order).cloned()
    }
    fn process_exists(&self, process: &str) -> bool {
        self.processes
            .as_ref()
            .is_none_or(|p| p.iter().any(|x| x == process))
    }
}

impl Db {
    /// What the lead's transaction does with a decision; the claims table's primary key
    /// (trace key, process) is asserted, so a double claim fails the test.
    fn commit(&mut self, d: &Decision) {
        let mut claims = self.claims.borrow_mut();
        for op in &d.claims {
            match op {
                ClaimOp::Insert(c) => {
                    let k = (c.trace_key.clone(), c.process.clone());
                    assert!(!claims.contains_key(&k), "coupon claimed twice: {k:?}");
                    claims.insert(k, c.clone());
                }
                ClaimOp::Close {
                    trace_key, process, ..
                } => {
                    let c = claims
                        .get_mut(&(trace_key.clone(), process.clone()))
                        .expect("close of a missing claim");
                    assert!(c.open, "close of a closed claim");
                    c.open = false;
                }
                ClaimOp::Release { trace_key, process } => {
                    let c = claims
                        .remove(&(trace_key.clone(), process.clone()))
                        .expect("release of a missing claim");
                    assert!(c.open, "release of a closed claim");
                }
            }
        }
        self.records.extend(d.records.iter().cloned());
        if let Some(r) = &d.reject {
            self.rejects.push(r.reason.clone());
        }
    }

    fn count(&self, kind: &str) -> usize {
        self.records.iter().filter(|r| r.kind == kind).count()
    }
}

fn spec(id: &str, kind: StationKind, process: Option<&str>, timing: Timing) -> StationSpec {
    StationSpec {
        devices: Vec::new(),
        id: id.into(),
        kind,
        team: Some("T1".into()),
        process: process.map(Into::into),
        timing,
        unknown_bundles: UnknownBundlePolicy::Accept,
    }
}

struct H {
    ws: Workshop,
    db: Db,
    cfg: DecodeConfig,
    b7: String,
    b8: String,
}

impl H {
    fn new(specs: Vec<StationSpec>) -> Self {
        let mut db = Db::default();
        for (id, team) in [("W1", "T1"), ("W2", "T2"), ("W3", "T1")] {
            db.workers.insert(
                format!("badge:{id}"),
                Worker {
                    id: id.into(),
                    team: Some(team.into()),
                },
            );
        }
        let (b7, b8) = (code("B00007"), code("B00008"));
        for (key, qty, size) in [(&b7, 12, "M"), (&b8, 20, "L")] {
            db.bundles.insert(
                key.clone(),
                Bundle {
                    trace_key: key.clone(),
                    order: "PO-1".into(),
                    style: Some("ST-9".into()),
                    colour: Some("navy".into()),
                    size: Some(size.into()),
                    quantity: qty,
                },
            );
        }
        let opts = WorkshopOptions {
            utc_offset_minutes: 480,
            ..WorkshopOptions::default()
        };
        Self {
            ws: Workshop::with_options(specs, opts),
            db,
            cfg: DecodeConfig::default(),
            b7,
            b8,
        }
    }

    /// Decode, decide, commit, apply — the daemon's loop for one scan.
    fn scan(&mut self, station: &str, text: &str, time_ms: i64) -> Decision {
        let scan = Scan {
            station: station.into(),
            device: format!("{station}-scanner"),
            time_ms,
            raw: text.as_bytes().to_vec(),
            decoded: decode(text.as_bytes(), None, &self.cfg).map_err(|e| e.to_string()),
        };
        let d = self.ws.decide(&scan, &self.db);
        // decide is pure: the same scan against the same state decides the same.
        assert_eq!(d, self.ws.decide(&scan, &self.db));
        // Nothing a worker did is lost.
        assert!(
            !d.records.is_empty() || d.reject.is_some(),
            "neither record nor reject: {d:?}"
        );
        assert_eq!(d.records.is_empty(), d.reject.is_some());
        for r in &d.records {
            let body: Value = serde_json::from_str(&r.body).expect("body is JSON");
            assert!(body.is_object());
            assert_eq!(r.time_ms, time_ms);
        }
        self.db.commit(&d);
        self.ws.apply(&d);
        d
    }

    fn view(&self, station: &str) -> StationView {
        self.ws
            .snapshot()
            .into_iter()
            .find(|v| v.station == station)
            .unwrap()
    }

    fn pieces(&self, worker: &str, now: i64) -> u32 {
        self.ws.pieces_today(now).get(worker).copied().unwrap_or(0)
    }
}

fn body(r: &RecordContent) -> Value {
    serde_json::from_str(&r.body).unwrap()
}

fn kinds(d: &Decision) -> Vec<&str> {
    d.records.iter().map(|r| r.kind.as_str()).collect()
}

fn sewing(timing: Timing) -> H {
    H::new(vec![
        spec("sew-01", StationKind::Sewing, Some("attach-collar"), timing),
        spec("sew-02", StationKind::Sewing, Some("attach-collar"), timing),
        spec("sew-03", StationKind::Sewing, None, timing),
    ])
}

#[test]
fn login_and_logout() {
    let mut h = sewing(Timing::Consecutive);
    let t = t0();
    let d = h.scan("sew-01", "W:W1", t);
    assert_eq!(d.outcome, Outcome::Ok);
    assert_eq!(kinds(&d), ["worker.login"]);
    assert_eq!(d.records[0].worker.as_deref(), Some("W1"));
    assert_eq!(d.records[0].station.as_deref(), Some("sew-01"));
    assert_eq!(body(&d.records[0])["team"], "T1");
    let v = h.view("sew-01");
    assert_eq!((v.worker.as_deref(), v.since_ms), (Some("W1"), Some(t)));
    assert_eq!(v.last_outcome, Some(Outcome::Ok));

    let d = h.scan("sew-01", "W:W1", t + MIN);
    assert_eq!(d.outcome, Outcome::AlreadyLoggedIn);
    assert!(d.outcome.acknowledged());

    let d = h.scan("sew-01", "LOGOUT", t + 2 * MIN);
    assert_eq!((d.outcome, kinds(&d)), (Outcome::Ok, vec!["worker.logout"]));
    assert_eq!(body(&d.records[0])["reason"], "card");
    assert_eq!(body(&d.records[0])["since_ms"], t);
    assert_eq!(h.view("sew-01").worker, None);

    let d = h.scan("sew-01", "LOGOUT", t + 3 * MIN);
    assert_eq!(d.outcome, Outcome::NotLoggedIn);
    assert!(!d.outcome.acknowledged());
    assert_eq!(h.db.rejects.len(), 2);
}

#[test]
fn unknown_badge_is_refused() {
    let mut h = sewing(Timing::Consecutive);
    let d = h.scan("sew-01", "W:NOBODY", t0());
    assert_eq!(d.outcome, Outcome::UnknownWorker);
    assert!(d.reject.unwrap().reason.contains("badge:NOBODY"));
    assert_eq!(h.view("sew-01").worker, None);
}

#[test]
fn login_elsewhere_logs_out_of_the_first_station() {
    let mut h = sewing(Timing::Consecutive);
    h.scan("sew-01", "W:W1", t0());
    let d = h.scan("sew-02", "W:W1", t0() + MIN);
    assert_eq!(kinds(&d), ["worker.logout", "worker.login"]);
    assert_eq!(d.records[0].station.as_deref(), Some("sew-01"));
    let out = body(&d.records[0]);
    assert_eq!(out["reason"], "login-elsewhere");
    assert_eq!(out["to_station"], "sew-02");
    assert_eq!(body(&d.records[1])["moved_from"], "sew-01");
    assert!(d.message.contains("logged out of sew-01"), "{}", d.message);
    assert_eq!(h.view("sew-01").worker, None);
    assert_eq!(h.view("sew-02").worker.as_deref(), Some("W1"));
}

#[test]
fn another_badge_logs_out_whoever_was_on_duty() {
    let mut h = sewing(Timing::Consecutive);
    h.scan("sew-01", "W:W1", t0());
    let d = h.scan("sew-01", "W:W2", t0() + MIN);
    assert_eq!(kinds(&d), ["worker.logout", "worker.login"]);
    assert_eq!(d.records[0].worker.as_deref(), Some("W1"));
    assert_eq!(body(&d.records[0])["reason"], "replaced");
    assert_eq!(body(&d.records[0])["by"], "W2");
    assert_eq!(body(&d.records[1])["replaced"], "W1");
    assert_eq!(h.view("sew-01").worker.as_deref(), Some("W2"));
}

#[test]
fn pc1_consecutive_claim_counts_the_bundle_once() {
    let mut h = sewing(Timing::Consecutive);
    let t = t0();
    h.scan("sew-01", "W:W1", t);
    let b7 = h.b7.clone();
    let d = h.scan("sew-01", &b7, t + 10 * MIN);
    assert_eq!(d.outcome, Outcome::Ok);
    assert_eq!(kinds(&d), ["work"]);
    let r = &d.records[0];
    assert_eq!(r.trace_code.as_deref(), Some(b7.as_str()));
    assert_eq!(r.order.as_deref(), Some("PO-1"));
    assert_eq!(r.process.as_deref(), Some("attach-collar"));
    let b = body(r);
    assert_eq!(b["team"], "T1");
    assert_eq!(b["worker"], "W1");
    assert_eq!(b["date"], "2026-11-20");
    assert_eq!(b["order"], "PO-1");
    assert_eq!(b["process"], "attach-collar");
    assert_eq!(b["start_ms"], t); // from the login
    assert_eq!(b["end_ms"], t + 10 * MIN);
    assert_eq!(b["pieces"], 12);
    assert_eq!(b["timing"], "consecutive");
    assert_eq!(
        d.claims,
        vec![ClaimOp::Insert(Claim {
            trace_key: b7.clone(),
            process: "attach-collar".into(),
            station: "sew-01".into(),
            worker: "W1".into(),
            time_ms: t + 10 * MIN,
            open: false,
        })]
    );
    assert_eq!(h.pieces("W1", t + 10 * MIN), 12);
    // The next unit starts at this completion.
    let b8 = h.b8.clone();
    let d = h.scan("sew-01", &b8, t + 25 * MIN);
    assert_eq!(body(&d.records[0])["start_ms"], t + 10 * MIN);
    assert_eq!(h.pieces("W1", t + 25 * MIN), 32);
    assert_eq!(h.view("sew-01").worker_pieces_today, Some(32));
}

#[test]
fn pc2_same_worker_rescan_is_a_duplicate() {
    let mut h = sewing(Timing::Consecutive);
    let t = t0();
    h.scan("sew-01", "W:W1", t);
    let b7 = h.b7.clone();
    h.scan("sew-01", &b7, t + 10 * MIN);
    let d = h.scan("sew-01", &b7, t + 11 * MIN);
    assert_eq!(d.outcome, Outcome::Duplicate);
    assert!(d.outcome.acknowledged());
    assert!(d.records.is_empty() && d.claims.is_empty());
    assert!(d.message.starts_with("duplicate: bundle"), "{}", d.message);
    assert!(d.message.contains("08:10 (sew-01)"), "{}", d.message);
    assert_eq!(h.db.count("work"), 1);
    assert_eq!(h.pieces("W1", t + 11 * MIN), 12);
}

#[test]
fn pc3_second_worker_gets_a_conflict_and_nothing_is_counted() {
    let mut h = sewing(Timing::Consecutive);
    let t = t0();
    h.scan("sew-01", "W:W1", t);
    let b7 = h.b7.clone();
    h.scan("sew-01", &b7, t + 10 * MIN);
    h.scan("sew-02", "W:W2", t + 20 * MIN);
    let d = h.scan("sew-02", &b7, t + 32 * MIN);
    assert_eq!(d.outcome, Outcome::Conflict);
    assert!(!d.outcome.acknowledged());
    assert_eq!(kinds(&d), ["claim.conflict"]);
    assert!(d.claims.is_empty() && d.reject.is_none());
    let r = &d.records[0];
    assert_eq!(r.worker.as_deref(), Some("W2"));
    assert_eq!(r.trace_code.as_deref(), Some(b7.as_str()));
    assert_eq!(r.process.as_deref(), Some("attach-collar"));
    let b = body(r);
    assert_eq!(b["claimed_by"], "W1");
    assert_eq!(b["claimed_at_ms"], t + 10 * MIN);
    assert_eq!(b["claimed_station"], "sew-01");
    assert!(
        d.message.contains("claimed by W1 at 08:10 (sew-01)"),
        "{}",
        d.message
    );
    assert_eq!(h.db.count("work"), 1);
    assert_eq!(h.pieces("W2", t + 32 * MIN), 0);
    assert_eq!(h.pieces("W1", t + 32 * MIN), 12);
}

#[test]
fn two_scan_unit_takes_start_and_end_from_its_scans() {
    let mut h = sewing(Timing::TwoScans);
    let t = t0();
    h.scan("sew-01", "W:W1", t);
    let b7 = h.b7.clone();
    let d = h.scan("sew-01", &b7, t + 5 * MIN);
    assert_eq!((d.outcome, kinds(&d)), (Outcome::Ok, vec!["work.start"]));
    assert!(matches!(&d.claims[..], [ClaimOp::Insert(c)] if c.open));
    let u = h.view("sew-01").open_unit.unwrap();
    assert_eq!((u.start_ms, u.pieces), (t + 5 * MIN, Some(12)));
    assert_eq!(h.pieces("W1", t + 5 * MIN), 0);

    let d = h.scan("sew-01", &b7, t + 17 * MIN);
    assert_eq!((d.outcome, kinds(&d)), (Outcome::Ok, vec!["work"]));
    let b = body(&d.records[0]);
    assert_eq!(b["start_ms"], t + 5 * MIN);
    assert_eq!(b["end_ms"], t + 17 * MIN);
    assert_eq!(b["pieces"], 12);
    assert_eq!(b["timing"], "two-scans");
    assert_eq!(
        d.claims,
        vec![ClaimOp::Close {
            trace_key: b7.clone(),
            process: "attach-collar".into(),
            time_ms: t + 17 * MIN,
        }]
    );
    assert!(h.view("sew-01").open_unit.is_none());
    assert_eq!(h.pieces("W1", t + 17 * MIN), 12);
    // A third scan is a duplicate (PC-2 for two-scan stations).
    let d = h.scan("sew-01", &b7, t + 18 * MIN);
    assert_eq!(d.outcome, Outcome::Duplicate);
    assert_eq!(h.db.count("work"), 1);
}

#[test]
fn two_scans_refuse_a_second_bundle_while_one_is_open() {
    let mut h = sewing(Timing::TwoScans);
    let t = t0();
    h.scan("sew-01", "W:W1", t);
    let (b7, b8) = (h.b7.clone(), h.b8.clone());
    h.scan("sew-01", &b7, t + MIN);
    let d = h.scan("sew-01", &b8, t + 2 * MIN);
    assert_eq!(d.outcome, Outcome::UnitOpen);
    assert!(
        d.message.contains(&b7[b7.len() - 8..]) && d.message.contains("08:01"),
        "{}",
        d.message
    );
    assert!(d.claims.is_empty());
    assert!(h.db.claim(&b8, "attach-collar").is_none());
}

#[test]
fn two_scans_open_unit_of_another_worker_is_a_conflict() {
    let mut h = sewing(Timing::TwoScans);
    let t = t0();
    h.scan("sew-01", "W:W1", t);
    h.scan("sew-02", "W:W2", t);
    let b7 = h.b7.clone();
    h.scan("sew-01", &b7, t + MIN);
    let d = h.scan("sew-02", &b7, t + 2 * MIN);
    assert_eq!(d.outcome, Outcome::Conflict);
    assert_eq!(body(&d.records[0])["claim_open"], true);
    assert!(d.message.contains("in progress by W1"), "{}", d.message);
    assert!(h.view("sew-02").open_unit.is_none());
}

#[test]
fn badge_swap_mid_bundle_abandons_the_unit() {
    let mut h = sewing(Timing::TwoScans);
    let t = t0();
    h.scan("sew-01", "W:W1", t);
    let b7 = h.b7.clone();
    h.scan("sew-01", &b7, t + MIN);
    let d = h.scan("sew-01", "W:W2", t + 4 * MIN);
    assert_eq!(d.outcome, Outcome::Ok);
    assert_eq!(
        kinds(&d),
        ["work.abandoned", "worker.logout", "worker.login"]
    );
    let ab = &d.records[0];
    assert_eq!(ab.worker.as_deref(), Some("W1"));
    assert_eq!(ab.trace_code.as_deref(), Some(b7.as_str()));
    assert_eq!(body(ab)["start_ms"], t + MIN);
    assert_eq!(body(ab)["end_ms"], t + 4 * MIN);
    assert_eq!(body(ab)["reason"], "replaced");
    assert_eq!(
        d.claims,
        vec![ClaimOp::Release {
            trace_key: b7.clone(),
            process: "attach-collar".into(),
        }]
    );
    assert_eq!(h.view("sew-01").worker.as_deref(), Some("W2"));
    assert!(h.view("sew-01").open_unit.is_none());
    // The coupon is free again: W2 does the bundle and is paid for it, W1 is not.
    assert_eq!(h.scan("sew-01", &b7, t + 5 * MIN).outcome, Outcome::Ok);
    let d = h.scan("sew-01", &b7, t + 15 * MIN);
    assert_eq!(body(&d.records[0])["worker"], "W2");
    assert_eq!(h.pieces("W2", t + 15 * MIN), 12);
    assert_eq!(h.pieces("W1", t + 15 * MIN), 0);
}

#[test]
fn logout_and_login_elsewhere_abandon_an_open_unit() {
    let mut h = sewing(Timing::TwoScans);
    let t = t0();
    let b7 = h.b7.clone();
    h.scan("sew-01", "W:W1", t);
    h.scan("sew-01", &b7, t + MIN);
    let d = h.scan("sew-01", "LOGOUT", t + 2 * MIN);
    assert_eq!(kinds(&d), ["work.abandoned", "worker.logout"]);
    assert_eq!(body(&d.records[0])["reason"], "card");
    assert!(matches!(&d.claims[..], [ClaimOp::Release { .. }]));

    h.scan("sew-01", "W:W1", t + 3 * MIN);
    h.scan("sew-01", &b7, t + 4 * MIN);
    let d = h.scan("sew-02", "W:W1", t + 5 * MIN);
    assert_eq!(
        kinds(&d),
        ["work.abandoned", "worker.logout", "worker.login"]
    );
    assert_eq!(d.records[0].station.as_deref(), Some("sew-01"));
    assert_eq!(body(&d.records[0])["reason"], "login-elsewhere");
    assert!(h.db.claim(&b7, "attach-collar").is_none());
}

#[test]
fn bundle_scan_with_nobody_logged_in_is_refused() {
    let mut h = sewing(Timing::Consecutive);
    let b7 = h.b7.clone();
    let d = h.scan("sew-01", &b7, t0());
    assert_eq!(d.outcome, Outcome::NotLoggedIn);
    assert!(d.reject.unwrap().reason.contains("scan your badge"));
    assert!(d.claims.is_empty());
}

#[test]
fn wrong_check_character_is_an_invalid_code() {
    let mut h = sewing(Timing::Consecutive);
    h.scan("sew-01", "W:W1", t0());
    let good = "FZ44190001241015441900A7K9Q2Q"; // IC-17-style valid DG code (codes tests)
    assert!(decode(good.as_bytes(), None, &h.cfg).is_ok());
    let bad = "FZ44190001241015441900A7K9Q2X";
    let err = decode(bad.as_bytes(), None, &h.cfg)
        .unwrap_err()
        .to_string();
    let d = h.scan("sew-01", bad, t0() + MIN);
    assert_eq!(d.outcome, Outcome::InvalidCode);
    assert!(d.message.contains(&err), "{} / {err}", d.message);
    assert!(d.message.contains("check character"), "{}", d.message);
    assert!(d.claims.is_empty());
}

#[test]
fn unknown_bundle_accepted_is_recorded_and_flagged() {
    let mut h = sewing(Timing::Consecutive);
    h.scan("sew-01", "W:W1", t0());
    let stranger = code("ZZZZZZ");
    let d = h.scan("sew-01", &stranger, t0() + MIN);
    assert_eq!(d.outcome, Outcome::Ok);
    assert_eq!(d.flags, ["unknown-bundle"]);
    let b = body(&d.records[0]);
    assert_eq!(b["pieces"], Value::Null);
    assert_eq!(b["flags"][0], "unknown-bundle");
    assert_eq!(d.records[0].order, None);
    assert!(matches!(&d.claims[..], [ClaimOp::Insert(_)]));
    assert_eq!(h.pieces("W1", t0() + MIN), 0);
    // Still claimed once: a re-scan is a duplicate.
    assert_eq!(
        h.scan("sew-01", &stranger, t0() + 2 * MIN).outcome,
        Outcome::Duplicate
    );
}

#[test]
fn unknown_bundle_refused_is_rejected_and_flagged() {
    let mut s = spec(
        "sew-01",
        StationKind::Sewing,
        Some("hem"),
        Timing::Consecutive,
    );
    s.unknown_bundles = UnknownBundlePolicy::Refuse;
    let mut h = H::new(vec![s]);
    h.scan("sew-01", "W:W1", t0());
    let d = h.scan("sew-01", &code("ZZZZZZ"), t0() + MIN);
    assert_eq!(d.outcome, Outcome::UnknownBundle);
    assert_eq!(d.flags, ["unknown-bundle"]);
    assert!(d.records.is_empty() && d.claims.is_empty());
    assert!(d.reject.unwrap().reason.starts_with("unknown bundle"));
}

#[test]
fn process_cards() {
    let mut h = sewing(Timing::Consecutive);
    h.db.processes = Some(vec!["hem".into(), "attach-collar".into()]);
    let t = t0();
    let b7 = h.b7.clone();
    // Before login.
    assert_eq!(h.scan("sew-03", "P:hem", t).outcome, Outcome::NotLoggedIn);
    h.scan("sew-03", "W:W1", t);
    // No process yet.
    assert_eq!(h.scan("sew-03", &b7, t + MIN).outcome, Outcome::NoProcess);
    assert_eq!(
        h.scan("sew-03", "P:bogus", t + MIN).outcome,
        Outcome::UnknownProcess
    );
    let d = h.scan("sew-03", "P:hem", t + 2 * MIN);
    assert_eq!(
        (d.outcome, kinds(&d)),
        (Outcome::Ok, vec!["process.select"])
    );
    assert_eq!(d.records[0].process.as_deref(), Some("hem"));
    assert_eq!(h.view("sew-03").process.as_deref(), Some("hem"));
    let d = h.scan("sew-03", &b7, t + 3 * MIN);
    assert_eq!(d.records[0].process.as_deref(), Some("hem"));
    // Same bundle, another process: another coupon.
    h.scan("sew-03", "P:attach-collar", t + 4 * MIN);
    assert_eq!(h.scan("sew-03", &b7, t + 5 * MIN).outcome, Outcome::Ok);
    assert_eq!(h.pieces("W1", t + 5 * MIN), 24);
    // A fixed-process station refuses process cards.
    h.scan("sew-01", "W:W2", t);
    let d = h.scan("sew-01", "P:hem", t + MIN);
    assert_eq!(d.outcome, Outcome::FixedProcess);
    assert!(d.message.contains("attach-collar"), "{}", d.message);
    // A new login clears the selection.
    h.scan("sew-03", "W:W3", t + 6 * MIN);
    assert_eq!(h.view("sew-03").process, None);
}

#[test]
fn process_change_with_an_open_unit_is_refused() {
    let mut h = H::new(vec![spec(
        "sew-03",
        StationKind::Sewing,
        None,
        Timing::TwoScans,
    )]);
    let b7 = h.b7.clone();
    h.scan("sew-03", "W:W1", t0());
    h.scan("sew-03", "P:hem", t0());
    h.scan("sew-03", &b7, t0() + MIN);
    assert_eq!(
        h.scan("sew-03", "P:press", t0() + 2 * MIN).outcome,
        Outcome::UnitOpen
    );
    assert_eq!(h.view("sew-03").process.as_deref(), Some("hem"));
}

#[test]
fn out_of_route_process_is_recorded_with_a_warning() {
    let mut h = sewing(Timing::Consecutive);
    h.db.routes
        .insert("PO-1".into(), vec!["cut".into(), "hem".into()]);
    h.scan("sew-01", "W:W1", t0());
    let b7 = h.b7.clone();
    let d = h.scan("sew-01", &b7, t0() + MIN);
    assert_eq!(d.outcome, Outcome::Ok);
    assert_eq!(d.flags, ["out-of-route"]);
    assert_eq!(body(&d.records[0])["flags"][0], "out-of-route");
    assert_eq!(h.pieces("W1", t0() + MIN), 12);
}

#[test]
fn control_cards_out_of_place_are_refused() {
    let mut h = sewing(Timing::Consecutive);
    h.scan("sew-01", "W:W1", t0());
    assert_eq!(h.scan("sew-01", "Q:5", t0()).outcome, Outcome::NotExpected);
    assert_eq!(
        h.scan("sew-01", "R:PASS", t0()).outcome,
        Outcome::NotExpected
    );
    let d = h.scan("nowhere", "W:W1", t0());
    assert_eq!(d.outcome, Outcome::UnknownStation);
    assert!(d.change.stations.is_empty());
}

fn inspection_workshop() -> H {
    H::new(vec![
        spec(
            "cut-01",
            StationKind::CutInspection,
            None,
            Timing::Consecutive,
        ),
        spec("qc-01", StationKind::Qc, None, Timing::Consecutive),
    ])
}

#[test]
fn cut_inspection_below_its_required_share_is_flagged() {
    let mut h = inspection_workshop();
    let t = t0();
    let b8 = h.b8.clone(); // 20 pieces
    h.scan("cut-01", "W:W3", t);
    // Cards before a bundle: no draft.
    assert_eq!(h.scan("cut-01", "R:PASS", t).outcome, Outcome::NoInspection);
    let d = h.scan("cut-01", &b8, t + MIN);
    assert_eq!(kinds(&d), ["inspection.step"]);
    assert_eq!(body(&d.records[0])["step"], "open");
    // RK-2 band: score 16 → medium → at least 10 of 20.
    let d = h.scan("cut-01", "Q:16", t + 2 * MIN);
    assert_eq!(body(&d.records[0])["step"], "score");
    assert!(d.message.contains("at least 10 of 20"), "{}", d.message);
    h.scan("cut-01", "Q:5", t + 3 * MIN);
    h.scan("cut-01", "R:PASS", t + 4 * MIN);
    h.scan("cut-01", "D:hole", t + 5 * MIN);
    let d = h.scan("cut-01", "R:FAIL", t + 6 * MIN);
    assert_eq!(body(&d.records[0])["defects"][0], "hole");
    let v = h.view("cut-01").inspection.unwrap();
    assert_eq!((v.passed, v.failed, v.score), (5, 1, Some(16.0)));
    // Same bundle again closes the draft.
    let d = h.scan("cut-01", &b8, t + 7 * MIN);
    assert_eq!(kinds(&d), ["inspection.cut"]);
    let r = &d.records[0];
    assert_eq!(r.worker.as_deref(), Some("W3"));
    assert_eq!(r.trace_code.as_deref(), Some(b8.as_str()));
    let b = body(r);
    assert_eq!(b["order"], "PO-1");
    assert_eq!(b["cut_pieces"], 20);
    assert_eq!(b["risk"], "medium");
    assert_eq!(b["required_inspected"], 10);
    assert_eq!(
        (b["passed"].clone(), b["failed"].clone()),
        (5.into(), 1.into())
    );
    assert_eq!(b["defects"]["hole"], 1);
    assert_eq!(b["start_ms"], t + MIN);
    assert_eq!(b["nonconformity"][0], "below-required-share:6<10");
    assert!(d.message.contains("NONCONFORMING"), "{}", d.message);
    assert!(h.view("cut-01").inspection.is_none());
}

#[test]
fn cut_inspection_closes_on_another_bundle_and_on_logout() {
    let mut h = inspection_workshop();
    let t = t0();
    let (b7, b8) = (h.b7.clone(), h.b8.clone());
    h.scan("cut-01", "W:W3", t);
    h.scan("cut-01", &b7, t + MIN); // 12 pieces
    h.scan("cut-01", "Q:31", t + 2 * MIN); // RK-4 band: high → all 12
    h.scan("cut-01", "Q:12", t + 3 * MIN);
    h.scan("cut-01", "R:PASS", t + 4 * MIN);
    let d = h.scan("cut-01", &b8, t + 5 * MIN);
    assert_eq!(kinds(&d), ["inspection.cut", "inspection.step"]);
    let b = body(&d.records[0]);
    assert_eq!(
        (b["risk"].clone(), b["required_inspected"].clone()),
        ("high".into(), 12.into())
    );
    assert_eq!(b["nonconformity"], serde_json::json!([]));
    // b8 open without a score; logout closes it, flagged for the missing score.
    h.scan("cut-01", "D:slub", t + 6 * MIN);
    let d = h.scan("cut-01", "LOGOUT", t + 7 * MIN);
    assert_eq!(kinds(&d), ["inspection.cut", "worker.logout"]);
    let b = body(&d.records[0]);
    assert_eq!(b["nonconformity"][0], "no-fabric-score");
    assert_eq!(b["flags"][0], "defects-without-fail");
}

#[test]
fn garment_inspection_by_scans_checks_the_bundle_sample() {
    let mut h = inspection_workshop();
    let t = t0();
    let (b7, b8) = (h.b7.clone(), h.b8.clone());
    h.scan("qc-01", "W:W3", t);
    // b7: 12 pieces of M → ceil(10 %) = 2 required; 2 inspected.
    h.scan("qc-01", &b7, t + MIN);
    // At qc the first quantity is a count, not a score.
    h.scan("qc-01", "Q:2", t + 2 * MIN);
    h.scan("qc-01", "R:PASS", t + 3 * MIN);
    // b8: 20 pieces of L → 2 required; 1 inspected (one fail with a defect).
    let d = h.scan("qc-01", &b8, t + 4 * MIN);
    assert_eq!(kinds(&d), ["inspection.garment", "inspection.step"]);
    let b = body(&d.records[0]);
    assert_eq!(b["coverage"][0]["size"], "M");
    assert_eq!(b["coverage"][0]["required"], 2);
    assert_eq!(b["nonconformity"], serde_json::json!([]));
    assert_eq!(b["flags"][0], "checklist-not-captured");
    h.scan("qc-01", "D:soiling", t + 5 * MIN);
    h.scan("qc-01", "R:FAIL", t + 6 * MIN);
    // Another inspector badging in closes the draft under the first one's id.
    let d = h.scan("qc-01", "W:W1", t + 7 * MIN);
    assert_eq!(
        kinds(&d),
        ["inspection.garment", "worker.logout", "worker.login"]
    );
    assert_eq!(d.records[0].worker.as_deref(), Some("W3"));
    let b = body(&d.records[0]);
    assert_eq!(b["nonconformity"][0], "size-below-quota:L:1<2");
    assert_eq!(b["defects"]["soiling"], 1);
    assert_eq!(
        (b["passed"].clone(), b["failed"].clone()),
        (0.into(), 1.into())
    );
}

#[test]
fn pieces_today_reset_with_the_local_date() {
    let mut h = sewing(Timing::Consecutive);
    let t = t0();
    let (b7, b8) = (h.b7.clone(), h.b8.clone());
    h.scan("sew-01", "W:W1", t);
    h.scan("sew-01", &b7, t + MIN);
    assert_eq!(h.pieces("W1", t + 10 * MIN), 12);
    // 23:59 local is still the same day; 00:00 local (16:00 UTC) is the next.
    let next_day = chrono::DateTime::parse_from_rfc3339("2026-11-21T00:00:00+08:00")
        .unwrap()
        .timestamp_millis();
    assert_eq!(h.pieces("W1", next_day - MIN), 12);
    assert_eq!(h.pieces("W1", next_day), 0);
    assert_eq!(h.ws.snapshot_at(next_day)[0].worker_pieces_today, Some(0));
    let d = h.scan("sew-01", &b8, next_day + MIN);
    assert_eq!(body(&d.records[0])["date"], "2026-11-21");
    assert_eq!(h.pieces("W1", next_day + MIN), 20);
    assert_eq!(h.view("sew-01").worker_pieces_today, Some(20));
}

#[test]
fn decide_without_apply_changes_nothing() {
    let mut h = sewing(Timing::Consecutive);
    let scan = Scan {
        station: "sew-01".into(),
        device: "d".into(),
        time_ms: t0(),
        raw: b"W:W1".to_vec(),
        decoded: decode(b"W:W1", None, &h.cfg).map_err(|e| e.to_string()),
    };
    let d = h.ws.decide(&scan, &h.db);
    assert_eq!(d.outcome, Outcome::Ok);
    // A failed commit means no apply: the state is as before.
    assert_eq!(h.view("sew-01").worker, None);
    h.ws.apply(&d);
    assert_eq!(h.view("sew-01").worker.as_deref(), Some("W1"));
    let v = serde_json::to_value(h.ws.snapshot()).unwrap();
    assert_eq!(v[0]["kind"], "sewing");
    assert_eq!(v[0]["last_outcome"], "ok");
    assert_eq!(v[0]["timing"], "consecutive");
}

#[test]
fn replay_of_the_journal_restores_the_state_after_a_restart() {
    let mut h = H::new(vec![
        spec(
            "sew-01",
            StationKind::Sewing,
            Some("hem"),
            Timing::Consecutive,
        ),
        spec("sew-02", StationKind::Sewing, None, Timing::TwoScans),
        spec(
            "cut-01",
            StationKind::CutInspection,
            None,
            Timing::Consecutive,
        ),
    ]);
    let t = t0();
    let (b7, b8) = (h.b7.clone(), h.b8.clone());
    h.scan("sew-01", "W:W1", t);
    h.scan("sew-01", &b7, t + MIN);
    h.scan("sew-02", "W:W2", t + 2 * MIN);
    h.scan("sew-02", "P:press", t + 3 * MIN);
    h.scan("sew-02", &b8, t + 4 * MIN); // open unit
    h.scan("cut-01", "W:W3", t + 5 * MIN);
    h.scan("cut-01", &b7, t + 6 * MIN);
    h.scan("cut-01", "Q:20", t + 7 * MIN);
    h.scan("cut-01", "Q:3", t + 8 * MIN);
    h.scan("cut-01", "R:PASS", t + 9 * MIN);
    h.scan("cut-01", "D:hole", t + 10 * MIN);

    let mut restarted = Workshop::with_options(
        vec![
            spec(
                "sew-01",
                StationKind::Sewing,
                Some("hem"),
                Timing::Consecutive,
            ),
            spec("sew-02", StationKind::Sewing, None, Timing::TwoScans),
            spec(
                "cut-01",
                StationKind::CutInspection,
                None,
                Timing::Consecutive,
            ),
        ],
        *h.ws.options(),
    );
    for r in &h.db.records {
        restarted.replay(r);
    }
    let strip = |mut v: Vec<StationView>| {
        for s in &mut v {
            (s.last_scan_ms, s.last_outcome, s.last_message) = (None, None, None);
        }
        v
    };
    let now = t + 11 * MIN;
    assert_eq!(
        strip(restarted.snapshot_at(now)),
        strip(h.ws.snapshot_at(now))
    );
    assert_eq!(restarted.pieces_today(now), h.ws.pieces_today(now));

    // The restarted workshop decides the next scans as the original would have.
    let tail = [
        ("sew-02", b8.clone()),
        ("cut-01", "R:FAIL".to_owned()),
        ("cut-01", b7.clone()),
        ("sew-01", b8.clone()),
    ];
    for (k, (station, text)) in tail.iter().enumerate() {
        let scan = Scan {
            station: (*station).into(),
            device: "d".into(),
            time_ms: now + k as i64 * MIN,
            raw: text.as_bytes().to_vec(),
            decoded: decode(text.as_bytes(), None, &h.cfg).map_err(|e| e.to_string()),
        };
        let (a, b) = (h.ws.decide(&scan, &h.db), restarted.decide(&scan, &h.db));
        assert_eq!(
            (&a.records, &a.claims, a.outcome),
            (&b.records, &b.claims, b.outcome)
        );
        h.db.commit(&a);
        h.ws.apply(&a);
        restarted.apply(&b);
    }
    assert_eq!(
        restarted.pieces_today(now + 5 * MIN),
        h.ws.pieces_today(now + 5 * MIN)
    );
}
