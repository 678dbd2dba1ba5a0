//! The status API: served without a token on loopback; off loopback, every request without
//! the configured token is refused with 401.

mod common;

use bobbin_tests::{free_port, http_get, http_post_json, wait_until};
use common::{run_agent, Watched};
use std::time::Duration;

fn start(dir: &std::path::Path, status: &str) -> Watched {
    let config = dir.join("bobbin.toml");
    std::fs::write(
        &config,
        format!("[agent]\nid = \"status-test\"\ndata_dir = \"data\"\n\n[[stations]]\nid = \"qc-1\"\nkind = \"qc\"\n\n[status]\n{status}\n"),
    )
    .expect("config");
    let agent = run_agent(&config);
    wait_until("the status server", Duration::from_secs(20), || {
        agent.stderr_has("supervisor page")
    });
    agent
}

fn stop(agent: Watched) {
    agent.signal(libc::SIGTERM);
    let (status, _, err) = agent.wait(Duration::from_secs(20));
    assert!(status.success(), "{err:?}");
}

#[test]
fn off_loopback_every_request_needs_the_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let token = "s3cret-token-for-tablets";
    let agent = start(
        dir.path(),
        &format!("listen = \"0.0.0.0:{port}\"\ntoken = \"{token}\""),
    );
    let addr = format!("127.0.0.1:{port}");
    for path in [
        "/",
        "/api/status",
        "/api/rejects",
        "/api/trace/X",
        "/metrics",
        "/healthz",
    ] {
        let (code, _) = http_get(&addr, path, None).expect("request");
        assert_eq!(code, 401, "{path} without a token");
        let (code, _) = http_get(&addr, path, Some("wrong-token-wrong-token")).expect("request");
        assert_eq!(code, 401, "{path} with a wrong token");
        let (code, _) = http_get(&addr, path, Some(token)).expect("request");
        assert_eq!(code, 200, "{path} with the token");
    }
    let (code, body) =
        http_get(&addr, &format!("/api/status?token={token}"), None).expect("request");
    assert_eq!(code, 200, "the page passes the token in its URL");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["agent"]["id"], "status-test");
    stop(agent);
}

#[test]
fn on_loopback_the_api_answers_without_a_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let agent = start(dir.path(), &format!("listen = \"127.0.0.1:{port}\""));
    let addr = format!("127.0.0.1:{port}");
    let (code, body) = http_get(&addr, "/api/status", None).expect("request");
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["stations"][0]["station"], "qc-1");
    assert_eq!(v["journal"]["writer_alive"], true);
    let (code, metrics) = http_get(&addr, "/metrics", None).expect("request");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("bobbin_journal_writer_alive 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("bobbin_station_worker_on_duty{station=\"qc-1\"} 0"),
        "{metrics}"
    );
    let (code, body) = http_get(&addr, "/healthz", None).expect("request");
    assert_eq!((code, body.as_str()), (200, "ok\n"));
    // `bobbin status` prints the same state as tables.
    let (rc, out, err) = common::run(&[
        "status",
        "--config",
        dir.path().join("bobbin.toml").to_str().expect("path"),
    ]);
    assert_eq!(rc, 0, "{err}");
    assert!(out.contains("Agent status-test"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("qc-1")), "{out}");
    assert!(out.contains("Sync: not configured"), "{out}");
    stop(agent);
}

#[test]
fn a_tablet_inspection_short_of_its_share_is_recorded_with_a_nonconformity() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let agent = start(dir.path(), &format!("listen = \"127.0.0.1:{port}\""));
    let addr = format!("127.0.0.1:{port}");
    // Score 20 per 100 yd² is medium risk: at least 100 of 200 cut pieces must be inspected.
    let form = r#"{"kind":"cut","station":"qc-1","form":{"order":"PO-1","cut_pieces":200,"score":20,"passed":80,"failed":5,"inspector":"W0042","trace_key":"PO-1-CUT-7"}}"#;
    let (code, body) = http_post_json(&addr, "/api/inspections", form).expect("post");
    assert_eq!(code, 201, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["evaluation"]["required_inspected"], 100, "{body}");
    assert!(
        v["evaluation"]["nonconformity"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{body}"
    );
    let (code, body) = http_get(&addr, "/api/trace/PO-1-CUT-7", None).expect("trace");
    assert_eq!(code, 200);
    assert!(
        body.contains("inspection.cut"),
        "the record is in the journal: {body}"
    );

    let (code, body) = http_post_json(
        &addr,
        "/api/inspections",
        r#"{"kind":"cut","form":{"order":"PO-1"}}"#,
    )
    .expect("post");
    assert_eq!(code, 400);
    assert!(body.contains("missing field"), "{body}");
    stop(agent);
}
