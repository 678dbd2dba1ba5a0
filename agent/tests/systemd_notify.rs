//! `Type=notify`: READY=1 once the journal is open, WATCHDOG=1 pings while alive, STOPPING=1
//! on shutdown — over a real notify socket, as systemd provides it.

mod common;

use bobbin_tests::wait_until;
use common::{bobbin, write_config, Watched};
use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[test]
fn notifies_ready_watchdog_and_stopping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "");
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("notify socket");
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let got = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let got = got.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            for _ in 0..300 {
                if let Ok(n) = sock.recv(&mut buf) {
                    got.lock()
                        .expect("lines")
                        .push(String::from_utf8_lossy(&buf[..n]).into_owned());
                }
            }
        })
    };
    let mut cmd = bobbin();
    cmd.args(["run", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "1000000");
    let agent = Watched::spawn(cmd);
    let has = |what: &str| got.lock().expect("lines").iter().any(|m| m.contains(what));
    wait_until("READY=1", Duration::from_secs(20), || has("READY=1"));
    assert!(
        agent.stderr_has("journal open"),
        "ready only after the journal is open"
    );
    wait_until("a watchdog ping", Duration::from_secs(20), || {
        has("WATCHDOG=1")
    });
    agent.signal(libc::SIGTERM);
    wait_until("STOPPING=1", Duration::from_secs(20), || has("STOPPING=1"));
    let (status, _, err) = agent.wait(Duration::from_secs(20));
    assert!(status.success(), "{err:?}");
    drop(reader);
}
