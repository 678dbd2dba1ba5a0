//! End to end with the real `bobbin` binary: a pty scanner sends badge and bundle scans at
//! a station; the work record, the refused second claim and the feedback bytes follow.

mod common;

use bobbin_tests::{wait_until, PtyScanner};
use common::{run, run_agent};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

fn trace(db: &str, code: &str) -> Vec<serde_json::Value> {
    let (rc, out, err) = run(&["trace", code, "--db", db]);
    assert_eq!(rc, 0, "{err}");
    out.lines()
        .map(|l| serde_json::from_str(l).expect("trace prints JSON lines"))
        .collect()
}

#[test]
fn scans_at_a_station_become_claims_and_refusals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut scanner = PtyScanner::open(&dir.path().join("scanner"));
    let config = dir.path().join("bobbin.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[agent]
id = "e2e-agent"
data_dir = "data"

[status]
listen = "127.0.0.1:0"

[[devices]]
id = "scan-1"
kind = "serial"
path = "{}"
[devices.feedback]
good = "06"
bad = "15"

[[stations]]
id = "sew-01"
kind = "sewing"
team = "A"
process = "attach-collar"
devices = ["scan-1"]
"#,
            scanner.link.display()
        ),
    )
    .expect("config");
    let cfg = config.to_str().expect("path");
    let code = common::new_trace_code();
    common::import_csv(
        dir.path(),
        cfg,
        "workers",
        "id,name,team,badge\nW0042,李娜,A,W:E1042\nW0043,王芳,A,W:E1043\n",
    );
    common::import_csv(
        dir.path(),
        cfg,
        "bundles",
        &format!("trace_code,order,style,colour,size,quantity\n{code},PO-7,T100,red,M,12\n"),
    );

    let agent = run_agent(&config);
    wait_until("the scanner to connect", LIMIT, || {
        agent.stderr_has("connected")
    });
    let db = dir.path().join("data/journal.db");
    let db = db.to_str().expect("path");

    // W0042 logs in and claims the bundle's coupon: good beep, one work record, 12 pieces.
    scanner.scan("W:E1042");
    assert_eq!(
        scanner.read_feedback(1, LIMIT),
        vec![0x06],
        "login acknowledged"
    );
    scanner.scan(&code);
    assert_eq!(
        scanner.read_feedback(1, LIMIT),
        vec![0x06],
        "claim acknowledged"
    );
    let records = trace(db, &code);
    let work: Vec<_> = records.iter().filter(|r| r["kind"] == "work").collect();
    assert_eq!(work.len(), 1, "{records:?}");
    assert_eq!(work[0]["worker"], "W0042");
    assert_eq!(work[0]["process"], "attach-collar");
    assert_eq!(work[0]["order"], "PO-7");
    assert_eq!(work[0]["body"]["pieces"], 12);

    // W0043 badges in at the same station and scans the same coupon: refused, bad beep,
    // and a conflict record that names who claimed it.
    scanner.scan("W:E1043");
    assert_eq!(scanner.read_feedback(1, LIMIT), vec![0x06]);
    scanner.scan(&code);
    assert_eq!(
        scanner.read_feedback(1, LIMIT),
        vec![0x15],
        "second claim refused"
    );
    let records = trace(db, &code);
    assert_eq!(
        records.iter().filter(|r| r["kind"] == "work").count(),
        1,
        "never counted twice"
    );
    let conflict = records
        .iter()
        .find(|r| r["kind"] == "claim.conflict")
        .expect("a conflict record");
    assert!(
        conflict.to_string().contains("W0042"),
        "names the first claimant: {conflict}"
    );

    // A code with a wrong check character: refused with a bad beep, kept as a reject.
    let mut bad = code.clone().into_bytes();
    let last = bad.len() - 1;
    bad[last] = if bad[last] == b'0' { b'1' } else { b'0' };
    scanner.scan(std::str::from_utf8(&bad).expect("ascii"));
    assert_eq!(scanner.read_feedback(1, LIMIT), vec![0x15]);

    // A frame longer than the device's max_len: refused by the driver, bad beep, kept too.
    scanner.scan(&"A".repeat(5000));
    assert_eq!(scanner.read_feedback(1, LIMIT), vec![0x15]);

    agent.signal(libc::SIGTERM);
    let (status, _, err) = agent.wait(LIMIT);
    assert!(status.success(), "{err:?}");
    // After a restart the station still knows who is on duty (replayed from the journal):
    // W0043 scans a new bundle without badging in again, and it counts.
    let code2 = common::new_trace_code();
    common::import_csv(
        dir.path(),
        cfg,
        "bundles",
        &format!("trace_code,order,style,colour,size,quantity\n{code2},PO-7,T100,red,L,10\n"),
    );
    let agent = run_agent(&config);
    wait_until("the scanner to reconnect", LIMIT, || {
        agent.stderr_has("connected")
    });
    scanner.scan(&code2);
    assert_eq!(
        scanner.read_feedback(1, LIMIT),
        vec![0x06],
        "still logged in after restart"
    );
    let work2 = trace(db, &code2);
    assert_eq!(
        work2
            .iter()
            .filter(|r| r["kind"] == "work")
            .map(|r| r["worker"].clone())
            .collect::<Vec<_>>(),
        vec![serde_json::json!("W0043")]
    );
    agent.signal(libc::SIGTERM);
    let (status, _, err) = agent.wait(LIMIT);
    assert!(status.success(), "{err:?}");

    let conn = rusqlite::Connection::open(db).expect("db");
    let reasons: Vec<String> = conn
        .prepare("SELECT reason FROM rejects ORDER BY id")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("rejects");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("check character mismatch")),
        "the bad scan is kept with its reason: {reasons:?}"
    );
}
