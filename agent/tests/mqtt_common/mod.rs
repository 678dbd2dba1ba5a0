//! Helpers shared by the MQTT integration tests and the MQTT benchmark: a QoS 1 publisher,
//! journal queries, waiting on conditions (Mosquitto itself is in `bobbin-tests`).
#![allow(dead_code)]

use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

// Not every target that includes this module uses both.
#[allow(unused_imports)]
pub use bobbin_tests::{free_port, mosquitto::Mosquitto};

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
