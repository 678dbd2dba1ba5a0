//! `bobbin import`: master data from CSV, all-or-nothing, errors naming the line.

mod common;

use common::{run, write_config};
use rusqlite::Connection;

#[test]
fn import_is_all_or_nothing_and_names_the_bad_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "");
    let cfg = config.to_str().expect("path");
    let good = dir.path().join("workers.csv");
    std::fs::write(
        &good,
        "id,name,team,badge\nW0042,李娜,A,W:E1042\nW0043,Wang Fang,B,W:E1043\n",
    )
    .expect("write");
    let (code, out, err) = run(&[
        "import",
        "workers",
        good.to_str().expect("path"),
        "--config",
        cfg,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("imported 2"), "{out}");

    // A file with one bad line changes nothing, and says which line.
    let bad = dir.path().join("bundles.csv");
    std::fs::write(
        &bad,
        "trace_code,order,style,colour,size,quantity\n(01)09506000134352(21)B1,PO-1,T,red,M,12\n(01)09506000134353(21)B2,PO-1,T,red,M,12\n",
    )
    .expect("write");
    let (code, _, err) = run(&[
        "import",
        "bundles",
        bad.to_str().expect("path"),
        "--config",
        cfg,
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("line 3: trace_code:") && err.contains("check digit"),
        "{err}"
    );
    assert!(err.contains("nothing imported"), "{err}");

    let conn = Connection::open(dir.path().join("data/journal.db")).expect("db");
    let bundles: i64 = conn
        .query_row("SELECT count(*) FROM bundles", [], |r| r.get(0))
        .expect("count");
    assert_eq!(bundles, 0, "all-or-nothing");
    let badge: String = conn
        .query_row("SELECT badge FROM workers WHERE id = 'W0042'", [], |r| {
            r.get(0)
        })
        .expect("worker");
    assert_eq!(
        badge, "badge:E1042",
        "badges are stored as the key a scan produces"
    );
}
