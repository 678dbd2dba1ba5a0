//! The MQTT client against real brokers on loopback ports: manual acks hold messages at the
//! broker until acked (redelivered to the same session otherwise), a broker that lost the
//! session is reported on reconnect, and the embedded broker keeps a persistent session.

use bobbin_drivers::mqtt::{
    spawn_client, AckOutcome, ClientConfig, EmbeddedBroker, EmbeddedBrokerConfig, MqttEvent,
};
use rumqttc::{AsyncClient, MqttOptions, QoS};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

// Shared with the agent's tests; included by path (see the file's header for why).
#[path = "../../tests/src/mosquitto.rs"]
mod mosquitto;
use mosquitto::Mosquitto;

async fn next_event(rx: &mut mpsc::Receiver<MqttEvent>, what: &str) -> MqttEvent {
    tokio::time::timeout(Duration::from_secs(15), rx.recv())
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
        .expect("client running")
}

async fn next_message(rx: &mut mpsc::Receiver<MqttEvent>) -> bobbin_drivers::mqtt::Message {
    loop {
        if let MqttEvent::Message(m) = next_event(rx, "a message").await {
            return m;
        }
    }
}

async fn publish(addr: SocketAddr, topic: &str, payload: &[u8]) {
    let opts = MqttOptions::new("pub", addr.ip().to_string(), addr.port());
    let (c, mut el) = AsyncClient::new(opts, 10);
    c.publish(topic, QoS::AtLeastOnce, false, payload.to_vec())
        .await
        .expect("publish");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "publish not acked");
        if let Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) = el.poll().await {
            break;
        }
    }
}

async fn connected(rx: &mut mpsc::Receiver<MqttEvent>) -> (bool, bool) {
    loop {
        if let MqttEvent::Connected {
            session_present,
            session_lost,
        } = next_event(rx, "a connect").await
        {
            return (session_present, session_lost);
        }
    }
}

/// Unacked messages come back after a reconnect of the same session; acked ones do not.
async fn redelivers_unacked(addr: SocketAddr) {
    let mut cfg = ClientConfig::new(addr.ip().to_string(), addr.port(), "bobbin-client-test");
    cfg.subscriptions = vec!["t/#".into()];
    cfg.backoff_initial = Duration::from_millis(50);
    let (stop_tx, stop) = watch::channel(false);
    let (h, mut rx, task) = spawn_client(cfg.clone(), stop);
    connected(&mut rx).await;
    // Wait for the subscription to be live: publish until something arrives.
    let m = loop {
        publish(addr, "t/a", b"first").await;
        if let Ok(Some(MqttEvent::Message(m))) =
            tokio::time::timeout(Duration::from_millis(300), rx.recv()).await
        {
            break m;
        }
    };
    assert_eq!(&m.payload()[..], b"first");
    assert_eq!(h.ack(&m).await.expect("ack"), AckOutcome::Sent);
    // Drain any further copies of the probe, acking them.
    while let Ok(Some(MqttEvent::Message(m))) =
        tokio::time::timeout(Duration::from_millis(300), rx.recv()).await
    {
        h.ack(&m).await.expect("ack");
    }
    publish(addr, "t/b", b"second").await;
    let unacked = next_message(&mut rx).await;
    assert_eq!(&unacked.payload()[..], b"second");
    // Stop without acking: the broker keeps it for our session.
    stop_tx.send(true).expect("stop");
    task.await.expect("task");
    // A stale ack after the connection is gone is not sent.
    assert!(h.ack(&unacked).await.is_err());

    let (_stop_tx2, stop2) = watch::channel(false);
    let (h2, mut rx2, _task2) = spawn_client(cfg, stop2);
    let (present, lost) = connected(&mut rx2).await;
    assert!(present, "session kept");
    assert!(!lost);
    let again = next_message(&mut rx2).await;
    assert_eq!(
        &again.payload()[..],
        b"second",
        "unacked message redelivered"
    );
    assert_eq!(h2.ack(&again).await.expect("ack"), AckOutcome::Sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_broker_redelivers_unacked_to_persistent_session() {
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let _b = EmbeddedBroker::start(&EmbeddedBrokerConfig::new(addr)).expect("broker");
    redelivers_unacked(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_redelivers_unacked_to_persistent_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(m) = Mosquitto::start(dir.path()) else {
        println!("NOTICE: mosquitto not installed; skipping");
        return;
    };
    redelivers_unacked(([127, 0, 0, 1], m.port).into()).await;
}

#[test]
fn embedded_broker_refuses_a_taken_port() {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    let e = EmbeddedBroker::start(&EmbeddedBrokerConfig::new(addr))
        .err()
        .expect("error");
    assert!(e.to_string().contains("cannot listen"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_without_persistence_is_a_lost_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(m) = Mosquitto::start(dir.path()) else {
        println!("NOTICE: mosquitto not installed; skipping");
        return;
    };
    let port = m.port;
    let mut cfg = ClientConfig::new("127.0.0.1", port, "bobbin-session-test");
    cfg.subscriptions = vec!["t/#".into()];
    cfg.backoff_initial = Duration::from_millis(50);
    cfg.backoff_max = Duration::from_millis(200);
    let (_stop_tx, stop) = watch::channel(false);
    let (h, mut rx, _task) = spawn_client(cfg, stop);
    assert_eq!(
        connected(&mut rx).await,
        (false, false),
        "first connect: nothing lost"
    );
    drop(m);
    let _m2 = Mosquitto::start_on(dir.path(), port).expect("restart");
    let (present, lost) = connected(&mut rx).await;
    assert!(!present);
    assert!(lost, "reconnect without the session is reported");
    assert_eq!(h.status().sessions_lost, 1);
    assert!(h.status().connected);
}
