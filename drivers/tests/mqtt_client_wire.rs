//! The MQTT client against a scripted broker on a loopback port, where the test sees every
//! packet on the wire: an ack for a message of a dropped connection is never sent on the
//! next one (the broker redelivers and that copy is acked), garbage from the broker and a
//! refused CONNACK end the connection with an error naming them and a reconnect follows,
//! and a broker that stops answering pings is left.

use bobbin_drivers::mqtt::{spawn_client, AckOutcome, ClientConfig, MqttEvent};
use bytes::BytesMut;
use rumqttc::mqttbytes::v4::{
    ConnAck, ConnectReturnCode, Packet, Publish, SubAck, SubscribeReasonCode,
};
use rumqttc::mqttbytes::{Error as CodecError, QoS};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

const LIMIT: Duration = Duration::from_secs(15);

/// One accepted client connection, read packet by packet.
struct Conn {
    stream: TcpStream,
    buf: BytesMut,
}

impl Conn {
    async fn accept(l: &TcpListener) -> Conn {
        let (stream, _) = tokio::time::timeout(LIMIT, l.accept())
            .await
            .expect("the client connects")
            .expect("accept");
        Conn {
            stream,
            buf: BytesMut::new(),
        }
    }

    /// The next packet from the client, or None when it closed the connection.
    async fn next(&mut self) -> Option<Packet> {
        loop {
            match Packet::read(&mut self.buf, 1 << 20) {
                Ok(p) => return Some(p),
                Err(CodecError::InsufficientBytes(_)) => {}
                Err(e) => panic!("client sent a malformed packet: {e}"),
            }
            let n = tokio::time::timeout(LIMIT, self.stream.read_buf(&mut self.buf))
                .await
                .expect("the client sends")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
        }
    }

    async fn send(&mut self, p: Packet) {
        let mut out = BytesMut::new();
        p.write(&mut out, 1 << 20).expect("encode");
        self.stream.write_all(&out).await.expect("send");
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("send");
    }

    /// CONNECT in, CONNACK out; SUBSCRIBE in, SUBACK out.
    async fn handshake(&mut self, session_present: bool) {
        match self.next().await {
            Some(Packet::Connect(c)) => assert!(!c.clean_session, "persistent session asked"),
            other => panic!("expected CONNECT, got {other:?}"),
        }
        self.send(Packet::ConnAck(ConnAck::new(
            ConnectReturnCode::Success,
            session_present,
        )))
        .await;
        match self.next().await {
            Some(Packet::Subscribe(s)) => {
                let codes = vec![SubscribeReasonCode::Success(QoS::AtLeastOnce); s.filters.len()];
                self.send(Packet::SubAck(SubAck::new(s.pkid, codes))).await;
            }
            other => panic!("expected SUBSCRIBE, got {other:?}"),
        }
    }
}

fn publish(pkid: u16, payload: &str, dup: bool) -> Packet {
    let mut p = Publish::new("t/a", QoS::AtLeastOnce, payload.as_bytes().to_vec());
    p.pkid = pkid;
    p.dup = dup;
    Packet::Publish(p)
}

fn client(
    port: u16,
    keep_alive: Duration,
) -> (
    bobbin_drivers::mqtt::MqttHandle,
    mpsc::Receiver<MqttEvent>,
    watch::Sender<bool>,
) {
    let mut cfg = ClientConfig::new("127.0.0.1", port, "wire-test");
    cfg.subscriptions = vec!["t/#".into()];
    cfg.keep_alive = keep_alive;
    cfg.backoff_initial = Duration::from_millis(20);
    cfg.backoff_max = Duration::from_millis(50);
    let (stop_tx, stop) = watch::channel(false);
    let (h, rx, _task) = spawn_client(cfg, stop);
    (h, rx, stop_tx)
}

async fn next_event(rx: &mut mpsc::Receiver<MqttEvent>) -> MqttEvent {
    tokio::time::timeout(LIMIT, rx.recv())
        .await
        .expect("an event")
        .expect("client running")
}

async fn next_message(rx: &mut mpsc::Receiver<MqttEvent>) -> bobbin_drivers::mqtt::Message {
    loop {
        if let MqttEvent::Message(m) = next_event(rx).await {
            return m;
        }
    }
}

/// Waits for a connect; returns its `session_present`.
async fn connected(rx: &mut mpsc::Receiver<MqttEvent>) -> bool {
    loop {
        if let MqttEvent::Connected {
            session_present, ..
        } = next_event(rx).await
        {
            return session_present;
        }
    }
}

async fn disconnected(rx: &mut mpsc::Receiver<MqttEvent>) -> String {
    loop {
        if let MqttEvent::Disconnected { error, .. } = next_event(rx).await {
            return error;
        }
    }
}

async fn listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    (l, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_never_crosses_to_the_next_connection() {
    let (l, port) = listener().await;
    let (h, mut rx, _stop) = client(port, Duration::from_secs(30));

    let mut c1 = Conn::accept(&l).await;
    c1.handshake(false).await;
    c1.send(publish(7, "first", false)).await;
    let m1 = next_message(&mut rx).await;
    assert_eq!(&m1.payload()[..], b"first");
    // The connection drops before the message is committed and acked.
    drop(c1);
    disconnected(&mut rx).await;

    let mut c2 = Conn::accept(&l).await;
    c2.handshake(true).await;
    // Connected on the new connection: the old message's ack is stale and not sent.
    assert!(connected(&mut rx).await, "session present");
    assert_eq!(h.ack(&m1).await.expect("ack"), AckOutcome::Stale);
    // The first thing on the wire is the ack of a message of this connection, not id 7.
    c2.send(publish(8, "other", false)).await;
    let m8 = next_message(&mut rx).await;
    assert_eq!(h.ack(&m8).await.expect("ack"), AckOutcome::Sent);
    match c2.next().await {
        Some(Packet::PubAck(a)) => assert_eq!(a.pkid, 8, "a stale ack crossed over"),
        other => panic!("expected PUBACK 8, got {other:?}"),
    }
    // The broker redelivers under the same packet id; that copy is acked.
    c2.send(publish(7, "first", true)).await;
    let m2 = next_message(&mut rx).await;
    assert!(m2.dup());
    assert_eq!(h.ack(&m2).await.expect("ack"), AckOutcome::Sent);
    match c2.next().await {
        Some(Packet::PubAck(a)) => assert_eq!(a.pkid, 7),
        other => panic!("expected exactly the redelivery's PUBACK, got {other:?}"),
    }
    // Many acks at once all arrive, in order.
    for pkid in 100..200u16 {
        c2.send(publish(pkid, "bulk", false)).await;
    }
    let mut msgs = Vec::new();
    while msgs.len() < 100 {
        msgs.push(next_message(&mut rx).await);
    }
    assert_eq!(h.ack_all(&msgs).await.expect("ack_all"), 100);
    for pkid in 100..200u16 {
        match c2.next().await {
            Some(Packet::PubAck(a)) => assert_eq!(a.pkid, pkid),
            other => panic!("expected PUBACK {pkid}, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_from_the_broker_ends_the_connection_and_a_reconnect_follows() {
    let (l, port) = listener().await;
    let (h, mut rx, _stop) = client(port, Duration::from_secs(30));
    let mut c1 = Conn::accept(&l).await;
    c1.handshake(false).await;
    c1.send_raw(&[0x00, 0x02, 0xff, 0xff]).await; // packet type 0 does not exist
    let error = disconnected(&mut rx).await;
    assert!(error.contains("malformed packet"), "{error}");
    let mut c2 = Conn::accept(&l).await;
    c2.handshake(true).await;
    connected(&mut rx).await;
    assert_eq!(h.status().connects, 2);
    assert!(h
        .status()
        .last_error
        .is_some_and(|e| e.contains("malformed")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_names_the_reason_and_is_retried() {
    let (l, port) = listener().await;
    let (h, mut rx, _stop) = client(port, Duration::from_secs(30));
    let mut c1 = Conn::accept(&l).await;
    assert!(matches!(c1.next().await, Some(Packet::Connect(_))));
    c1.send(Packet::ConnAck(ConnAck::new(
        ConnectReturnCode::NotAuthorized,
        false,
    )))
    .await;
    let error = disconnected(&mut rx).await;
    assert!(
        error.contains("refused") && error.contains("NotAuthorized"),
        "{error}"
    );
    assert_eq!(h.status().connects, 0);
    // It tries again.
    let mut c2 = Conn::accept(&l).await;
    c2.handshake(false).await;
    connected(&mut rx).await;
    assert!(h.status().connected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_stops_answering_pings_is_left() {
    let (l, port) = listener().await;
    let (_h, mut rx, _stop) = client(port, Duration::from_secs(1));
    let mut c1 = Conn::accept(&l).await;
    c1.handshake(false).await;
    // The client pings within its keep-alive; this broker never answers.
    match c1.next().await {
        Some(Packet::PingReq) => {}
        other => panic!("expected PINGREQ, got {other:?}"),
    }
    let error = disconnected(&mut rx).await;
    assert!(error.contains("PINGRESP"), "{error}");
    // And it comes back.
    let mut c2 = Conn::accept(&l).await;
    c2.handshake(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_queued_before_a_stop_go_out_before_disconnect() {
    let (l, port) = listener().await;
    let (h, mut rx, stop) = client(port, Duration::from_secs(30));
    let mut c = Conn::accept(&l).await;
    c.handshake(false).await;
    for pkid in 1..=50u16 {
        c.send(publish(pkid, "x", false)).await;
    }
    let mut msgs = Vec::new();
    while msgs.len() < 50 {
        msgs.push(next_message(&mut rx).await);
    }
    // Committed, acked, and the agent stops at once: the broker must not redeliver these.
    assert_eq!(h.ack_all(&msgs).await.expect("ack_all"), 50);
    stop.send(true).expect("stop");
    let mut acked = Vec::new();
    loop {
        match c.next().await {
            Some(Packet::PubAck(a)) => acked.push(a.pkid),
            Some(Packet::Disconnect) => break,
            other => panic!("expected PUBACKs then DISCONNECT, got {other:?}"),
        }
    }
    assert_eq!(acked, (1..=50).collect::<Vec<u16>>());
}
