//! `bobbin demo` runs a shift for 60 s and the receiver then holds records from every
//! station (issue 8's acceptance, on the real binary).

mod common;

use bobbin_tests::free_port;
use common::{bobbin, Watched};
use std::time::Duration;

#[test]
fn a_sixty_second_demo_fills_the_receiver_from_every_station() {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = dir.path().join("demo");
    let port = free_port();
    let mut cmd = bobbin();
    cmd.args([
        "demo",
        "--duration",
        "60",
        "--port",
        &port.to_string(),
        "--dir",
    ])
    .arg(&demo);
    let run = Watched::spawn(cmd);
    let (status, out, err) = run.wait(Duration::from_secs(150));
    assert!(status.success(), "demo failed: {out:?} {err:?}");
    assert!(
        out.iter()
            .any(|l| l.contains(&format!("http://127.0.0.1:{port}/"))),
        "prints the page's URL: {out:?}"
    );
    let conn = rusqlite::Connection::open(demo.join("receiver.db")).expect("receiver db");
    let stations: Vec<(String, i64)> = conn
        .prepare("SELECT station, count(*) FROM records WHERE station IS NOT NULL GROUP BY station ORDER BY station")
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .expect("records per station");
    let names: Vec<&str> = stations.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        names,
        ["iron-01", "pack-01", "qc-01", "sew-01", "sew-02", "sew-03", "sew-04"],
        "{stations:?}"
    );
    for (station, n) in &stations {
        assert!(*n >= 5, "{station} has only {n} records after 60 s");
    }
    // Work records made it, counted once each, and the receiver saw no conflicts from one agent.
    let work: i64 = conn
        .query_row(
            "SELECT count(*) FROM records WHERE kind = 'work'",
            [],
            |r| r.get(0),
        )
        .expect("work");
    assert!(work >= 50, "only {work} work records");
    let conflicts: i64 = conn
        .query_row("SELECT count(*) FROM conflicts", [], |r| r.get(0))
        .expect("conflicts");
    assert_eq!(conflicts, 0);
}
