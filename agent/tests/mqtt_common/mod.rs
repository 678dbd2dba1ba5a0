//! Helpers shared by the MQTT integration tests and the MQTT benchmark: free loopback
//! ports, a Mosquitto child with a temp config, a QoS 1 publisher, waiting on conditions.
#![allow(dead_code)]

use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The mosquitto binary, if installed (PATH, then /usr/sbin).
pub fn mosquitto_bin() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join("mosquitto"))
        .find(|p| p.is_file())
}

/// A Mosquitto broker on a loopback port, killed on drop.
pub struct Mosquitto {
    child: Child,
    /// Its port.
    pub port: u16,
}

impl Mosquitto {
    /// Starts Mosquitto with queue limits raised (as in mosquitto-bobbin.conf); None when
    /// it is not installed.
    pub fn start(dir: &Path) -> Option<Mosquitto> {
        Mosquitto::start_on(dir, free_port())
    }

    /// As [`Mosquitto::start`], on a given port (to restart a broker where clients expect it).
    /// Persistence is off: a restarted broker has forgotten every client session.
    ///
    /// With `BOBBIN_REQUIRE_MOSQUITTO=1` (CI installs Mosquitto and sets it) a missing
    /// Mosquitto is a failure, so its tests cannot skip silently.
    pub fn start_on(dir: &Path, port: u16) -> Option<Mosquitto> {
        let Some(bin) = mosquitto_bin() else {
            assert!(
                std::env::var("BOBBIN_REQUIRE_MOSQUITTO").as_deref() != Ok("1"),
                "BOBBIN_REQUIRE_MOSQUITTO=1 but mosquitto is not installed"
            );
            return None;
        };
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                 max_queued_messages 1000000\nmax_inflight_messages 4000\n\
                 queue_qos0_messages true\nmax_packet_size 1048576\nlog_dest none\n"
            ),
        )
        .expect("write mosquitto.conf");
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mosquitto");
        let m = Mosquitto { child, port };
        wait_for(Duration::from_secs(10), "mosquitto to listen", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Some(m)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `cond` every 20 ms until it holds; panics naming `what` after `timeout`.
pub fn wait_for(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The async form of [`wait_for`].
pub async fn wait_for_async(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Publishes each (topic, payload, qos) in order and returns once the broker acked every
/// QoS 1 message (the broker has them; it is not our ingest's ack).
pub async fn publish_all(addr: SocketAddr, id: &str, msgs: Vec<(String, Vec<u8>, QoS)>) {
    let mut opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_max_packet_size(4 << 20, 4 << 20);
    opts.set_inflight(500);
    let (client, mut el) = AsyncClient::new(opts, 1000);
    let qos1 = msgs.iter().filter(|m| m.2 == QoS::AtLeastOnce).count();
    let n = msgs.len();
    let sender = tokio::spawn(async move {
        for (t, p, q) in msgs {
            client.publish(t, q, false, p).await.expect("queue publish");
        }
        client
    });
    let (mut acked, mut sent) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked < qos1 || sent < n {
        assert!(Instant::now() < deadline, "publisher timed out");
        match tokio::time::timeout(Duration::from_secs(10), el.poll()).await {
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => acked += 1,
            Ok(Ok(Event::Outgoing(Outgoing::Publish(_)))) => sent += 1,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("publisher connection failed: {e}"),
            Err(_) => panic!("publisher stalled"),
        }
    }
    let client = sender.await.expect("sender");
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_secs(1), el.poll()).await;
}

/// A read connection to the journal database.
pub fn reader(db: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(db).expect("open db");
    c.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    c
}

/// `SELECT count(*)` style query returning one integer (0 when the table or the database is
/// missing: opening a missing file would create it under the agent's feet).
pub fn count(db: &Path, sql: &str) -> i64 {
    if !db.exists() {
        return 0;
    }
    reader(db).query_row(sql, [], |r| r.get(0)).unwrap_or(0)
}
