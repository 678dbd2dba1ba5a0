//! The real `bobbin run` drains its journal to the reference receiver on 127.0.0.1, through
//! the agent's own `UploadSource` (cursor and outcomes committed by the journal writer).

mod common;

use bobbin_sync::receiver::{serve, AgentRegistry, ReceiverConfig};
use bobbin_tests::wait_until;
use common::{bobbin, run, Watched};
use std::time::Duration;

fn receiver_count(db: &std::path::Path) -> (i64, i64) {
    let Ok(conn) = rusqlite::Connection::open(db) else {
        return (0, 0);
    };
    conn.query_row(
        "SELECT COALESCE(SUM(records), 0), COALESCE(MAX(contiguous_seq), 0) FROM journals",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap_or((0, 0))
}

#[test]
fn the_agent_drains_its_backlog_to_the_receiver_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let journal = data.join("journal.db");
    // A backlog from "days offline".
    let n = 30_000;
    let (rc, _, err) = run(&[
        "stress-append",
        "--db",
        journal.to_str().expect("path"),
        "--count",
        &n.to_string(),
        "--in-flight",
        "1024",
    ]);
    assert_eq!(rc, 0, "{err}");

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let config = dir.path().join("bobbin.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\nid = \"ws-sync\"\ndata_dir = \"data\"\n[status]\nlisten = \"127.0.0.1:0\"\n\n[sync]\nurl = \"http://127.0.0.1:{port}\"\ntoken = \"secret-ws-sync\"\nagent_id = \"ws-sync\"\nkey_file = \"data/agent.key\"\nbackoff_max = \"1s\"\n"
        ),
    )
    .expect("config");
    let cfg = config.to_str().expect("path");

    // `bobbin key show` creates the key (mode 0600) and prints what the platform registers.
    let (rc, out, err) = run(&["key", "show", "--config", cfg]);
    assert_eq!(rc, 0, "{err}");
    let public = out
        .lines()
        .find_map(|l| l.strip_prefix("public key: "))
        .expect("public key line")
        .trim()
        .to_string();
    let mode = std::fs::metadata(data.join("agent.key"))
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777);
    assert_eq!(mode.expect("key file"), 0o600);

    let registry = AgentRegistry::from_toml(&format!(
        "[[agent]]\nid = \"ws-sync\"\ntoken = \"secret-ws-sync\"\npublic_key = \"{public}\"\n"
    ))
    .expect("registry");
    let receiver_db = dir.path().join("receiver.db");
    rt.spawn(serve(listener, ReceiverConfig::new(&receiver_db, registry)));

    let mut cmd = bobbin();
    cmd.args(["run", "--config", cfg]);
    let agent = Watched::spawn(cmd);
    wait_until(
        "the receiver to hold the whole backlog",
        Duration::from_secs(60),
        || receiver_count(&receiver_db) == (n, n),
    );
    agent.signal(libc::SIGTERM);
    let (status, _, err) = agent.wait(Duration::from_secs(20));
    assert!(status.success(), "{err:?}");

    // The agent's cursor reached the end, durably; a restart sends nothing twice.
    let conn = rusqlite::Connection::open(&journal).expect("journal");
    let cursor: i64 = conn
        .query_row("SELECT seq FROM upload_cursors", [], |r| r.get(0))
        .expect("cursor");
    assert_eq!(cursor, n);
    let mut cmd = bobbin();
    cmd.args(["run", "--config", cfg]);
    let again = Watched::spawn(cmd);
    wait_until(
        "the restarted agent to run",
        Duration::from_secs(20),
        || again.stderr_has("running;"),
    );
    again.signal(libc::SIGTERM);
    let (status, _, _) = again.wait(Duration::from_secs(20));
    assert!(status.success());
    assert_eq!(receiver_count(&receiver_db), (n, n), "exactly once");
}
