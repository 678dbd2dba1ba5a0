//! The uploader against the real receiver on 127.0.0.1, with faults injected by a TCP proxy.

mod support;

use bobbin_sync::testing::{RecordGen, SqliteJournal};
use bobbin_sync::wire::{self, reason};
use bobbin_sync::{Record, RecordContent, RecordStatus, SyncState, UploadSource};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::proxy::{canned, Fault, FaultProxy};
use support::*;

fn sources(js: &[&Arc<SqliteJournal>]) -> Vec<Arc<dyn UploadSource>> {
    js.iter()
        .map(|j| (*j).clone() as Arc<dyn UploadSource>)
        .collect()
}

async fn assert_exactly_once(base: &str, j: &SqliteJournal, n: u64) {
    let agents = get_json(base, "/v1/agents").await;
    let journal = agents["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .flat_map(|a| a["journals"].as_array().cloned().unwrap_or_default())
        .find(|x| x["journal_id"] == j.journal_id().to_string())
        .expect("journal known to the receiver");
    assert_eq!(journal["records"], n, "{journal}");
    assert_eq!(journal["highest_seq"], n);
    assert_eq!(journal["contiguous_seq"], n);
    assert_eq!(journal["gap_count"], 0);
}

#[test]
fn wire_size_is_at_most_60_bytes_per_record() {
    let j = bobbin_sync::JournalId([1; 16]);
    let mut g = RecordGen::new(3);
    let mut prev = bobbin_sync::GENESIS_HASH;
    let recs: Vec<Record> = (1..=1000)
        .map(|seq| {
            let r = Record::seal(j, seq, g.next_content(), prev);
            prev = r.hash;
            r
        })
        .collect();
    let doc = wire::encode_batch("ws-0001", &recs).expect("encode");
    let gz = wire::gzip(&doc, 6);
    let per = gz.len() as f64 / 1000.0;
    eprintln!(
        "1000 records: {} bytes JSON, {} bytes gzip, {per:.1} bytes/record",
        doc.len(),
        gz.len()
    );
    assert!(per <= 60.0, "{per} bytes per record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drains_a_backlog_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Agent::new(1);
    let rx = InProcessReceiver::start(dir.path(), &[&a], |_| {}).await;
    let j = journal(dir.path(), "j.db", 1, 20_000);
    let up = start_uploader(fast_config(&rx.url(), &a), &a, sources(&[&j]));
    wait_until(Duration::from_secs(60), "backlog drained", || {
        up.settled(&j) == 20_000
    })
    .await;
    wait_until(
        Duration::from_secs(5),
        "status idle with empty backlog",
        || {
            let s = up.status();
            s.state == SyncState::Idle && s.backlog.unsent == 0
        },
    )
    .await;
    let s = up.status();
    assert_eq!(s.counters.accepted, 20_000);
    assert_eq!(s.counters.duplicate, 0);
    assert!(s.last_success.is_some());
    assert_exactly_once(&rx.url(), &j, 20_000).await;
    // New records are picked up after a wake-up.
    j.append(RecordGen::new(99).take(5)).expect("append");
    up.handle.wake();
    wait_until(Duration::from_secs(10), "new records sent", || {
        up.settled(&j) == 20_005
    })
    .await;
    up.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_truncated_and_reset_answers_are_retried_without_double_counting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Agent::new(2);
    let rx = InProcessReceiver::start(dir.path(), &[&a], |_| {}).await;
    let proxy = FaultProxy::start(rx.addr).await;
    proxy.push([
        // The receiver commits, the answer never comes: the client times out.
        Fault::HoldResponse,
        Fault::Forward,
        Fault::Delay(Duration::from_millis(300)),
        Fault::ResetAfterForward,
        Fault::Forward,
        Fault::TruncateResponse(40),
        Fault::ResetBeforeForward,
    ]);
    let j = journal(dir.path(), "j.db", 2, 3_000);
    let mut cfg = fast_config(&proxy.url(), &a);
    cfg.batch_max_records = 250;
    cfg.in_flight = 1;
    cfg.request_timeout = Duration::from_secs(1);
    let up = start_uploader(cfg, &a, sources(&[&j]));
    wait_until(
        Duration::from_secs(60),
        "drained through the faults",
        || up.settled(&j) == 3_000,
    )
    .await;
    assert_eq!(proxy.pending(), 0, "every fault was used");
    let s = up.status();
    // Three answers were lost after the receiver committed: those batches came back as
    // duplicates, and no record was counted twice.
    assert_eq!(s.counters.accepted + s.counters.duplicate, 3_000, "{s:?}");
    assert_eq!(s.counters.duplicate, 750, "{s:?}");
    assert!(s.counters.retries >= 4, "{s:?}");
    assert!(s.last_error.is_some());
    assert_exactly_once(&rx.url(), &j, 3_000).await;
    assert!(j.outcomes().expect("outcomes").is_empty());
    up.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_obeyed_in_both_forms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Agent::new(3);
    let rx = InProcessReceiver::start(dir.path(), &[&a], |_| {}).await;
    let proxy = FaultProxy::start(rx.addr).await;
    let now = std::time::SystemTime::now();
    proxy.push([
        Fault::Respond(canned(
            "429 Too Many Requests",
            &[("retry-after", "2".into())],
        )),
        // An HTTP-date 2 s after the response's own Date header: our clock must not matter,
        // so the Date is set an hour in the past.
        Fault::Respond(canned(
            "503 Service Unavailable",
            &[
                (
                    "date",
                    httpdate::fmt_http_date(now - Duration::from_secs(3600)),
                ),
                (
                    "retry-after",
                    httpdate::fmt_http_date(
                        now - Duration::from_secs(3600) + Duration::from_secs(2),
                    ),
                ),
            ],
        )),
    ]);
    let j = journal(dir.path(), "j.db", 3, 100);
    let mut cfg = fast_config(&proxy.url(), &a);
    cfg.in_flight = 1;
    let up = start_uploader(cfg, &a, sources(&[&j]));
    wait_until(Duration::from_secs(30), "drained", || up.settled(&j) == 100).await;
    let seen = proxy.seen();
    assert_eq!(seen.len(), 3, "{seen:?}");
    let first_wait = seen[1].at - seen[0].at;
    let second_wait = seen[2].at - seen[1].at;
    eprintln!(
        "waited {first_wait:?} after Retry-After: 2, {second_wait:?} after an HTTP-date 2 s ahead"
    );
    assert!(first_wait >= Duration::from_secs(2), "{first_wait:?}");
    assert!(second_wait >= Duration::from_secs(2), "{second_wait:?}");
    // Not absurdly later either (the backoff cap here is 300 ms).
    assert!(first_wait < Duration::from_secs(4) && second_wait < Duration::from_secs(4));
    assert_eq!(up.status().counters.accepted, 100);
    up.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_of_5xx_are_retried_until_delivered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Agent::new(4);
    let rx = InProcessReceiver::start(dir.path(), &[&a], |_| {}).await;
    let proxy = FaultProxy::start(rx.addr).await;
    let statuses = [
        "500 Internal Server Error",
        "502 Bad Gateway",
        "503 Service Unavailable",
        "504 Gateway Timeout",
    ];
    proxy.push((0..12).map(|i| Fault::Respond(canned(statuses[i % 4], &[]))));
    let j = journal(dir.path(), "j.db", 4, 2_000);
    let mut cfg = fast_config(&proxy.url(), &a);
    cfg.batch_max_records = 500;
    let up = start_uploader(cfg, &a, sources(&[&j]));
    // While the burst lasts the uploader reports that it is backing off.
    let saw_backoff = Arc::new(Mutex::new(false));
    let flag = saw_backoff.clone();
    wait_until(Duration::from_secs(60), "drained after the burst", || {
        if up.status().state == SyncState::BackingOff {
            *flag.lock().expect("flag") = true;
        }
        up.settled(&j) == 2_000
    })
    .await;
    assert!(
        *saw_backoff.lock().expect("flag"),
        "state backing-off was visible"
    );
    let s = up.status();
    assert_eq!(s.counters.accepted, 2_000);
    assert!(s.counters.retries >= 12, "{s:?}");
    assert!(
        s.last_error
            .as_ref()
            .is_some_and(|e| e.message.contains("HTTP 50")),
        "{s:?}"
    );
    assert_exactly_once(&rx.url(), &j, 2_000).await;
    up.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_stops_until_the_config_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Agent::new(5);
    let rx = InProcessReceiver::start(dir.path(), &[&a], |_| {}).await;
    let proxy = FaultProxy::start(rx.addr).await;
    let j = journal(dir.path(), "j.db", 5, 500);
    let good = fast_config(&proxy.url(), &a);
    let mut bad = good.clone();
    bad.token = Some("wrong-token".into());
    let up = start_uploader(bad, &a, sources(&[&j]));
    wait_until(Duration::from_secs(10), "stopped on 401", || {
        up.status().state == SyncState::StoppedAuth
    })
    .await;
    let s = up.status();
    assert!(
        s.message.as_deref().is_some_and(|m| m.contains("401")),
        "{s:?}"
    );
    let requests = proxy.count();
    // Stopped means stopped: no request for several poll intervals.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(proxy.count(), requests);
    assert_eq!(cursor(&j), 0);
    up.handle.reconfigure(good).expect("valid config");
    // Idle is set once the uploader finds nothing more to send, just after the last
    // commit: wait for it rather than assert it at the instant the cursor lands.
    wait_until(
        Duration::from_secs(30),
        "drained after reconfigure, then idle",
        || up.settled(&j) == 500 && up.status().state == SyncState::Idle,
    )
    .await;
    up.stop().await;

    // A key the receiver does not know is refused with 403 and stops too.
    let impostor = Agent {
        key_seed: [99; 32],
        ..Agent::new(5)
    };
    let j2 = journal(dir.path(), "j2.db", 6, 10);
    let up = start_uploader(
        fast_config(&rx.url(), &impostor),
        &impostor,
        sources(&[&j2]),
    );
    wait_until(Duration::from_secs(10), "stopped on 403", || {
        up.status().state == SyncState::StoppedAuth
    })
    .await;
    let msg = up.status().message.unwrap_or_default();
    assert!(
        msg.contains("403") && msg.contains("bad_signature"),
        "{msg}"
    );
    up.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_large_splits_and_a_single_oversize_record_is_rejected_visibly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Agent::new(7);
    let rx = InProcessReceiver::start(dir.path(), &[&a], |c| c.max_body_bytes = 8 * 1024).await;
    let j = Arc::new(SqliteJournal::open(&dir.path().join("j.db")).expect("journal"));
    let mut g = RecordGen::new(7);
    j.append(g.take(1_500)).expect("append");
    // Incompressible, larger than the receiver's body limit even gzipped.
    let big = hex::encode(
        (0..20_000)
            .map(|_| rand::random::<u8>())
            .collect::<Vec<u8>>(),
    );
    j.append([RecordContent {
        kind: "photo".into(),
        time_ms: 1_763_900_000_000,
        body: format!("{{\"blob\":\"{big}\"}}"),
        ..Default::default()
    }])
    .expect("append big");
    j.append(g.take(500)).expect("append");
    let mut cfg = fast_config(&rx.url(), &a);
    cfg.batch_max_records = 1_000;
    let up = start_uploader(cfg, &a, sources(&[&j]));
    wait_until(Duration::from_secs(60), "drained with splits", || {
        up.settled(&j) == 2_001
    })
    .await;
    let s = up.status();
    assert!(s.counters.splits >= 2, "{s:?}");
    assert_eq!(s.counters.accepted, 2_000);
    assert_eq!(s.counters.rejected, 1);
    let outcomes = j.outcomes().expect("outcomes");
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].seq, 1_501);
    assert_eq!(outcomes[0].status, RecordStatus::Rejected);
    assert_eq!(outcomes[0].reason, reason::TOO_LARGE);
    // The receiver sees the hole the rejected record left.
    let agents = get_json(&rx.url(), "/v1/agents").await;
    assert_eq!(
        agents["agents"][0]["journals"][0]["gaps"],
        serde_json::json!([[1501, 1501]])
    );
    up.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_records_and_missing_ranges_are_detected_by_the_receiver() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Agent::new(8);
    let rx = InProcessReceiver::start(dir.path(), &[&a], |_| {}).await;
    let j = journal(dir.path(), "j.db", 8, 400);
    // Someone edits a piece count in the journal file without fixing the hash...
    j.execute("UPDATE records SET body = '{\"pieces\":999,\"size\":\"M\"}' WHERE seq = 40")
        .expect("tamper");
    // ...and someone else edits record 60 and recomputes its hash (but not the chain after).
    let r60 = j.read_after(59, 1).expect("read").remove(0);
    let mut c = r60.content.clone();
    c.body = "{\"pieces\":1}".into();
    let forged = Record::seal(r60.journal_id, 60, c, r60.prev_hash);
    j.execute(&format!(
        "UPDATE records SET body = '{{\"pieces\":1}}', hash = X'{}' WHERE seq = 60",
        hex::encode(forged.hash.0)
    ))
    .expect("forge");
    // And records 201..=300 are lost.
    j.execute("DELETE FROM records WHERE seq BETWEEN 201 AND 300")
        .expect("delete");

    let mut cfg = fast_config(&rx.url(), &a);
    cfg.batch_max_records = 100;
    let up = start_uploader(cfg, &a, sources(&[&j]));
    wait_until(Duration::from_secs(60), "drained", || up.settled(&j) == 400).await;

    // The uploader committed what the receiver said.
    let outcomes = j.outcomes().expect("outcomes");
    let by_seq: Vec<_> = outcomes
        .iter()
        .map(|o| (o.seq, o.status, o.reason.as_str()))
        .collect();
    assert_eq!(
        by_seq,
        vec![
            (40, RecordStatus::Rejected, reason::HASH_MISMATCH),
            (61, RecordStatus::Conflict, reason::FORK),
        ],
        "{outcomes:?}"
    );
    let s = up.status();
    assert_eq!(s.sources[0].local_missing, 100);
    assert_eq!(s.counters.accepted, 298);
    // The receiver's view: the altered record is a rejected hole, the fork is a conflict,
    // the lost range is a gap.
    let agents = get_json(&rx.url(), "/v1/agents").await;
    let jj = &agents["agents"][0]["journals"][0];
    assert_eq!(
        jj["gaps"],
        serde_json::json!([[40, 40], [61, 61], [201, 300]]),
        "{jj}"
    );
    assert_eq!(jj["contiguous_seq"], 39);
    assert_eq!(jj["highest_seq"], 400);
    let rejects = get_json(&rx.url(), "/v1/rejects").await;
    assert_eq!(rejects["rejects"][0]["seq"], 40);
    assert_eq!(rejects["rejects"][0]["reason"], reason::HASH_MISMATCH);
    let conflicts = get_json(&rx.url(), "/v1/conflicts").await;
    assert!(conflicts["conflicts"]
        .as_array()
        .expect("conflicts")
        .iter()
        .any(|c| c["seq"] == 61 && c["reason"] == reason::FORK));
    up.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_claiming_one_coupon_one_wins_both_sides_see_the_conflict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (Agent::new(10), Agent::new(11));
    let rx = InProcessReceiver::start(dir.path(), &[&a, &b], |_| {}).await;
    let coupon = bobbin_sync::testing::trace_code(777_777);
    let claim = |worker: &str, t: i64| RecordContent {
        kind: "work".into(),
        time_ms: t,
        station: Some("sew-03".into()),
        worker: Some(worker.into()),
        trace_code: Some(coupon.clone()),
        order: Some("PO25-01234".into()),
        process: Some("collar".into()),
        body: r#"{"pieces":20}"#.into(),
    };
    let ja = Arc::new(SqliteJournal::open(&dir.path().join("a.db")).expect("a"));
    let jb = Arc::new(SqliteJournal::open(&dir.path().join("b.db")).expect("b"));
    ja.append(RecordGen::new(10).take(50)).expect("a");
    ja.append([claim("W0001", 1_763_900_000_000)])
        .expect("a claim");
    jb.append(RecordGen::new(11).take(20)).expect("b");
    jb.append([claim("W0002", 1_763_900_060_000)])
        .expect("b claim");

    let ua = start_uploader(fast_config(&rx.url(), &a), &a, sources(&[&ja]));
    wait_until(Duration::from_secs(20), "a drained", || {
        ua.settled(&ja) == 51
    })
    .await;
    let ub = start_uploader(fast_config(&rx.url(), &b), &b, sources(&[&jb]));
    wait_until(Duration::from_secs(20), "b drained", || {
        ub.settled(&jb) == 21
    })
    .await;

    assert_eq!(ua.status().counters.conflict, 0);
    assert!(ja.outcomes().expect("a outcomes").is_empty());
    let ob = jb.outcomes().expect("b outcomes");
    assert_eq!(ob.len(), 1, "{ob:?}");
    assert_eq!(
        (ob[0].seq, ob[0].status, ob[0].reason.as_str()),
        (21, RecordStatus::Conflict, reason::CLAIM_CONFLICT)
    );
    assert!(ob[0].message.contains(&a.id), "{}", ob[0].message);
    assert_eq!(ub.status().counters.conflict, 1);

    // The receiver: the trace shows both records, the first claim stands.
    let trace = get_json(&rx.url(), &format!("/v1/trace/{coupon}")).await;
    let recs = trace["records"].as_array().expect("records");
    assert_eq!(recs.len(), 2, "{trace}");
    assert_eq!(
        (recs[0]["agent"].as_str(), recs[0]["claim"].as_str()),
        (Some(a.id.as_str()), Some("first"))
    );
    assert_eq!(
        (recs[1]["agent"].as_str(), recs[1]["claim"].as_str()),
        (Some(b.id.as_str()), Some("conflict"))
    );
    let conflicts = get_json(&rx.url(), "/v1/conflicts").await;
    let c = &conflicts["conflicts"][0];
    assert_eq!(
        (c["agent"].as_str(), c["seq"].as_u64(), c["reason"].as_str()),
        (Some(b.id.as_str()), Some(21), Some(reason::CLAIM_CONFLICT))
    );

    // A retry of B's batch (its answer lost, say) is answered the same way, not `duplicate`.
    let recs_b = jb.read_after(20, 1).expect("read");
    let batch =
        wire::decode_batch(&wire::encode_batch(&b.id, &recs_b).expect("encode")).expect("decode");
    let mut s2 = rx.store();
    let again = s2
        .ingest(&b.id, &batch, &batch.verify_chain().expect("chain"), 0)
        .expect("ingest");
    assert_eq!(again.statuses, "c");
    ua.stop().await;
    ub.stop().await;
}

/// Wraps a journal and logs every commit, to see the order sources were drained in.
struct Logged {
    inner: Arc<SqliteJournal>,
    name: &'static str,
    log: Arc<Mutex<Vec<(&'static str, u64)>>>,
}

impl UploadSource for Logged {
    fn journal_id(&self) -> bobbin_sync::JournalId {
        self.inner.journal_id()
    }
    fn read_after(&self, after: u64, max: usize) -> Result<Vec<Record>, bobbin_sync::SourceError> {
        self.inner.read_after(after, max)
    }
    fn cursor(&self) -> Result<u64, bobbin_sync::SourceError> {
        self.inner.cursor()
    }
    fn commit_results(
        &self,
        up_to: u64,
        o: &[bobbin_sync::RecordOutcome],
    ) -> Result<(), bobbin_sync::SourceError> {
        self.log.lock().expect("log").push((self.name, up_to));
        self.inner.commit_results(up_to, o)
    }
    fn backlog(&self) -> Result<bobbin_sync::Backlog, bobbin_sync::SourceError> {
        self.inner.backlog()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_overtake_a_sensor_backlog() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Agent::new(12);
    let rx = InProcessReceiver::start(dir.path(), &[&a], |_| {}).await;
    let claims = journal(dir.path(), "claims.db", 12, 1_000);
    let sensors = journal(dir.path(), "sensors.db", 13, 20_000);
    let log = Arc::new(Mutex::new(Vec::new()));
    let hi: Arc<dyn UploadSource> = Arc::new(Logged {
        inner: claims.clone(),
        name: "claims",
        log: log.clone(),
    });
    let lo: Arc<dyn UploadSource> = Arc::new(Logged {
        inner: sensors.clone(),
        name: "sensors",
        log: log.clone(),
    });
    let mut cfg = fast_config(&rx.url(), &a);
    cfg.batch_max_records = 250;
    let up = start_uploader(cfg, &a, vec![hi, lo]);
    wait_until(
        Duration::from_secs(30),
        "part of the sensor backlog sent",
        || cursor(&sensors) >= 2_000,
    )
    .await;
    // Both had a backlog: every claim batch was committed before the first sensor batch.
    {
        let l = log.lock().expect("log");
        let first_sensor = l
            .iter()
            .position(|(n, _)| *n == "sensors")
            .expect("sensor commit");
        assert!(l[..first_sensor].iter().all(|(n, _)| *n == "claims"));
        assert_eq!(l[first_sensor - 1], ("claims", 1_000));
    }
    // New claims while the sensor backlog drains go out at the next batch boundary.
    claims.append(RecordGen::new(14).take(10)).expect("append");
    up.handle.wake();
    wait_until(Duration::from_secs(10), "new claims sent", || {
        cursor(&claims) == 1_010
    })
    .await;
    let sensors_then = cursor(&sensors);
    assert!(
        sensors_then < 20_000,
        "claims waited for the whole sensor backlog"
    );
    let st = up.status();
    assert_eq!(st.sources.len(), 2);
    assert_eq!(st.sources[0].priority, 0);
    wait_until(Duration::from_secs(60), "sensors drained", || {
        cursor(&sensors) == 20_000
    })
    .await;
    up.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_backlog_while_the_platform_is_down() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Agent::new(13);
    // Nothing listens here: connection refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let j = journal(dir.path(), "j.db", 15, 1_234);
    let up = start_uploader(
        fast_config(&format!("http://{addr}"), &a),
        &a,
        sources(&[&j]),
    );
    wait_until(
        Duration::from_secs(10),
        "backing off with a backlog",
        || {
            let s = up.status();
            s.state == SyncState::BackingOff && s.backlog.unsent == 1_234
        },
    )
    .await;
    let s = up.status();
    assert!(s.backlog.oldest_unsent_ms.is_some());
    assert!(s.oldest_unsent_age_s.is_some_and(|age| age > 0));
    assert!(
        s.last_error
            .as_ref()
            .is_some_and(|e| e.message.contains("connect")),
        "{s:?}"
    );
    assert!(s.retry_at.is_some());
    let json = serde_json::to_value(&s).expect("serialize");
    assert_eq!(json["state"], "backing-off");
    // The platform comes back on that port: uploads resume within the backoff cap.
    let started = Instant::now();
    let _rx = {
        let db = dir.path().join("receiver.db");
        let config = bobbin_sync::receiver::ReceiverConfig::new(&db, registry(&[&a]));
        let listener = tokio::net::TcpListener::bind(addr).await.expect("rebind");
        tokio::spawn(bobbin_sync::receiver::serve(listener, config))
    };
    wait_until(Duration::from_secs(10), "resumed and drained", || {
        up.settled(&j) == 1_234
    })
    .await;
    eprintln!(
        "resumed and drained {:?} after the platform came back",
        started.elapsed()
    );
    up.stop().await;
}
