//! The MQTT client task: one persistent session, QoS 1 subscriptions, acks only when told.
//!
//! It speaks MQTT 3.1.1 through rumqttc's codec (`rumqttc::mqttbytes::v4`) with a connection
//! loop of its own. rumqttc's event loop writes and flushes every queued request on its own
//! (upstream bytebeamio/rumqtt#810), so each PUBACK cost a system call and a trip through
//! the loop — about a tenth of the ingest's CPU at tens of thousands of messages a second —
//! and its manual-ack path needed a request queue as large as the packet-id space plus a
//! stash to keep acks and deliveries from deadlocking. Here one task owns the socket: it
//! reads whole buffers, hands PUBLISHes to the consumer through a bounded channel, and
//! writes every ack the consumer has queued meanwhile in one write.
//!
//! Why it behaves as it does (see `shared/research/reliability-anchors.md` §1.6):
//! - `clean_session = false` so the broker keeps our subscriptions and unacked messages
//!   while we are away; it redelivers them on reconnect.
//! - Manual acks: a PUBACK goes out only when the consumer calls [`MqttHandle::ack`] or
//!   [`MqttHandle::ack_all`], i.e. after the message's record is committed.
//! - A PUBACK is never sent on a *later* connection than the one its PUBLISH came on: the
//!   broker re-sends an unacked message with its original packet id and may reuse that id
//!   for another message once acked, so a late ack could acknowledge a message we have not
//!   stored. Every connection has a generation number; an ack carries its message's, and
//!   the task drops acks of any other generation (the broker redelivers those messages; the
//!   consumer dedupes them on their own key).
//! - Back-pressure without deadlock: when the consumer's channel is full the task stops
//!   reading the socket (TCP then holds the broker back) but keeps writing acks and pings,
//!   and queuing an ack never waits, so no cycle of waits can form.
//! - The incoming packet limit is set above the application's payload limit, so an
//!   oversize payload reaches the consumer (which rejects and acks it) instead of failing
//!   the connection and coming straight back after every reconnect.

use crate::backoff::Backoff;
use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes::v4::{
    ConnAck, Connect, ConnectReturnCode, Packet, PingReq, PubAck, PubComp, PubRec, Publish,
    Subscribe, SubscribeFilter, SubscribeReasonCode,
};
use rumqttc::mqttbytes::{Error as CodecError, QoS};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// How to reach the broker and what to subscribe to.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Broker host name or address.
    pub host: String,
    /// Broker TCP port.
    pub port: u16,
    /// Client id; it names the persistent session on the broker, so keep it stable.
    pub client_id: String,
    /// MQTT keep-alive interval.
    pub keep_alive: Duration,
    /// Largest packet accepted from the broker (set above the application's payload limit).
    pub max_packet_size: usize,
    /// Topic filters subscribed at QoS 1 after every connect.
    pub subscriptions: Vec<String>,
    /// First reconnect delay.
    pub backoff_initial: Duration,
    /// Reconnect delay cap.
    pub backoff_max: Duration,
    /// Capacity of the event channel to the consumer (bounded; back-pressure on the broker).
    pub channel_capacity: usize,
    /// This client id held a session on this broker before this process started (the
    /// consumer remembers it), so a first connect without one is a lost session too.
    pub expect_session: bool,
}

impl ClientConfig {
    /// A config with the defaults used by the agent: keep-alive 30 s, 1 MiB packets, backoff
    /// 0.5 s doubling up to 30 s, channel of 4096 events.
    pub fn new(host: impl Into<String>, port: u16, client_id: impl Into<String>) -> Self {
        ClientConfig {
            host: host.into(),
            port,
            client_id: client_id.into(),
            keep_alive: Duration::from_secs(30),
            max_packet_size: 1024 * 1024,
            subscriptions: Vec::new(),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            channel_capacity: 4096,
            expect_session: false,
        }
    }
}

/// One PUBLISH from the broker, to be acknowledged with [`MqttHandle::ack`].
#[derive(Debug, Clone)]
pub struct Message {
    publish: Publish,
    generation: u64,
    /// When the client received it (UTC ms).
    pub received_ms: i64,
}

impl Message {
    /// The topic it was published on.
    pub fn topic(&self) -> &str {
        &self.publish.topic
    }
    /// The payload bytes, as received.
    pub fn payload(&self) -> &Bytes {
        &self.publish.payload
    }
    /// QoS level (0, 1 or 2).
    pub fn qos(&self) -> u8 {
        self.publish.qos as u8
    }
    /// True when the broker flagged it as a redelivery.
    pub fn dup(&self) -> bool {
        self.publish.dup
    }
    /// True for a retained message.
    pub fn retain(&self) -> bool {
        self.publish.retain
    }
    /// The connection generation it arrived on.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

/// What the client reports to its consumer.
#[derive(Debug, Clone)]
pub enum MqttEvent {
    /// Connected (CONNACK accepted).
    Connected {
        /// The broker kept our session (subscriptions and unacked messages).
        session_present: bool,
        /// A session we had (on an earlier connection, or before this process started when
        /// [`ClientConfig::expect_session`] says so) is gone: messages queued for us may be
        /// lost upstream.
        session_lost: bool,
    },
    /// The connection failed or dropped; a reconnect follows after `retry_in`.
    Disconnected {
        /// Why.
        error: String,
        /// The (jittered) delay before the next attempt.
        retry_in: Duration,
    },
    /// A message to store, then ack.
    Message(Message),
}

/// A cheap snapshot of the connection for the status API.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ClientStatus {
    /// Connected to the broker right now.
    pub connected: bool,
    /// Successful connects since start.
    pub connects: u64,
    /// Reconnects that found the broker session gone (possible upstream gaps).
    pub sessions_lost: u64,
    /// Messages received since start.
    pub messages: u64,
    /// The last connection error, if any.
    pub last_error: Option<String>,
}

/// What became of an ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckOutcome {
    /// Queued for the broker on the connection the message came on.
    Sent,
    /// The connection it came on is gone; the broker will redeliver the message.
    Stale,
    /// QoS 0: nothing to ack.
    NotNeeded,
}

/// Errors of the client handle.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The client task has stopped.
    #[error("the MQTT client has stopped")]
    Stopped,
    /// The request was refused (invalid topic, or the request queue is full).
    #[error("MQTT request refused: {0}")]
    Refused(String),
}

/// Generation value meaning "no connection": every ack is stale.
const NO_CONNECTION: u64 = 0;
/// Publishes queued (QoS 0 and 1, also while disconnected) or awaiting their PUBACK (QoS 1)
/// at once; more are refused.
const MAX_PUBLISHES: usize = 1024;
/// Messages parsed but not yet taken by the consumer; beyond this the socket is not read.
const MAX_PENDING: usize = 1024;
/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 64 * 1024;
/// Connecting (TCP, CONNECT, CONNACK) must finish within this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

struct Shared {
    /// The current connection's generation, or `NO_CONNECTION`.
    generation: AtomicU64,
    status: Mutex<ClientStatus>,
    messages: AtomicU64,
    stopped: AtomicBool,
    /// Publishes queued, or sent at QoS 1 and not yet acknowledged.
    publishes: AtomicUsize,
}

enum Command {
    Ack {
        generation: u64,
        pkid: u16,
        qos: QoS,
    },
    Publish(Publish),
}

/// The consumer's side of the client: acks, publishes, status.
#[derive(Clone)]
pub struct MqttHandle {
    commands: mpsc::UnboundedSender<Command>,
    shared: Arc<Shared>,
}

impl MqttHandle {
    /// Acknowledges `msg` to the broker. Call only after its record is committed.
    pub async fn ack(&self, msg: &Message) -> Result<AckOutcome, ClientError> {
        if msg.publish.qos == QoS::AtMostOnce {
            return Ok(AckOutcome::NotNeeded);
        }
        Ok(match self.ack_all(std::slice::from_ref(msg)).await? {
            1 => AckOutcome::Sent,
            _ => AckOutcome::Stale,
        })
    }

    /// Acknowledges each of `msgs`, in order (call only after their records are committed);
    /// returns how many acks were queued. Messages of an older connection are skipped (the
    /// broker redelivers them) and QoS 0 ones need none. Never waits: the client task
    /// writes the acks queued meanwhile together.
    pub async fn ack_all(&self, msgs: &[Message]) -> Result<usize, ClientError> {
        if self.shared.stopped.load(Ordering::Acquire) {
            return Err(ClientError::Stopped);
        }
        let current = self.shared.generation.load(Ordering::Acquire);
        let mut sent = 0;
        for m in msgs {
            if m.publish.qos == QoS::AtMostOnce || m.generation != current {
                continue;
            }
            let cmd = Command::Ack {
                generation: m.generation,
                pkid: m.publish.pkid,
                qos: m.publish.qos,
            };
            self.commands.send(cmd).map_err(|_| ClientError::Stopped)?;
            sent += 1;
        }
        Ok(sent)
    }

    /// Publishes without waiting, QoS 0 or 1. While disconnected it is queued and sent on
    /// the next connection; refused when `MAX_PUBLISHES` are already queued or awaiting
    /// their PUBACK.
    pub fn publish(
        &self,
        topic: &str,
        qos: u8,
        retain: bool,
        payload: Vec<u8>,
    ) -> Result<(), ClientError> {
        if self.shared.stopped.load(Ordering::Acquire) {
            return Err(ClientError::Stopped);
        }
        let qos = match qos {
            0 => QoS::AtMostOnce,
            1 => QoS::AtLeastOnce,
            q => {
                return Err(ClientError::Refused(format!(
                    "QoS {q} publishing is not supported"
                )))
            }
        };
        if topic.is_empty() || topic.contains(['+', '#', '\0']) {
            return Err(ClientError::Refused(format!("invalid topic {topic:?}")));
        }
        let taken = self
            .shared
            .publishes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_PUBLISHES).then_some(n + 1)
            });
        if taken.is_err() {
            return Err(ClientError::Refused(format!(
                "{MAX_PUBLISHES} publishes already wait for the broker"
            )));
        }
        let mut p = Publish::new(topic, qos, payload);
        p.retain = retain;
        self.commands
            .send(Command::Publish(p))
            .map_err(|_| ClientError::Stopped)
    }

    /// The connection's current state.
    pub fn status(&self) -> ClientStatus {
        let mut st = lock(&self.shared.status).clone();
        st.messages = self.shared.messages.load(Ordering::Relaxed);
        st
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding this lock cannot leave it inconsistent (plain values).
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `d` scaled by a random factor in [0.5, 1.0], so many clients do not reconnect in step.
pub fn jittered(d: Duration) -> Duration {
    let f: f64 = rand::random_range(0.5..=1.0);
    d.mul_f64(f)
}

/// Starts the client task. Events arrive on the returned receiver; the task ends when
/// `shutdown` turns true or the receiver is dropped.
pub fn spawn_client(
    cfg: ClientConfig,
    shutdown: watch::Receiver<bool>,
) -> (MqttHandle, mpsc::Receiver<MqttEvent>, JoinHandle<()>) {
    let shared = Arc::new(Shared {
        generation: AtomicU64::new(NO_CONNECTION),
        status: Mutex::new(ClientStatus::default()),
        messages: AtomicU64::new(0),
        stopped: AtomicBool::new(false),
        publishes: AtomicUsize::new(0),
    });
    let (commands, cmd_rx) = mpsc::unbounded_channel();
    let (tx, rx) = mpsc::channel(cfg.channel_capacity.max(1));
    let handle = MqttHandle {
        commands,
        shared: shared.clone(),
    };
    let task = tokio::spawn(async move {
        let mut client = Client {
            cfg,
            shared: shared.clone(),
            commands: cmd_rx,
            events: tx,
            shutdown,
            outbox: Outbox::default(),
        };
        client.run().await;
        shared.generation.store(NO_CONNECTION, Ordering::Release);
        shared.stopped.store(true, Ordering::Release);
        lock(&shared.status).connected = false;
    });
    (handle, rx, task)
}

/// Our QoS 1 publishes awaiting their PUBACK, by packet id (resent on reconnect).
#[derive(Default)]
struct Outbox {
    unacked: BTreeMap<u16, Publish>,
    last_pkid: u16,
}

impl Outbox {
    /// A packet id not in use. At most `MAX_PUBLISHES` are, so this ends quickly.
    fn next_pkid(&mut self) -> u16 {
        loop {
            self.last_pkid = self.last_pkid.wrapping_add(1).max(1);
            if !self.unacked.contains_key(&self.last_pkid) {
                return self.last_pkid;
            }
        }
    }
}

/// Why a connection ended.
enum End {
    /// Shutdown asked, or the consumer is gone: the task stops.
    Stop,
    /// The connection failed: reconnect after a backoff.
    Lost(String),
}

struct Client {
    cfg: ClientConfig,
    shared: Arc<Shared>,
    commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::Sender<MqttEvent>,
    shutdown: watch::Receiver<bool>,
    outbox: Outbox,
}

impl Client {
    async fn run(&mut self) {
        let mut backoff = Backoff::new(self.cfg.backoff_initial, self.cfg.backoff_max);
        let mut ever_connected = false;
        let mut next_generation = NO_CONNECTION + 1;
        loop {
            if *self.shutdown.borrow() {
                return;
            }
            let connected = tokio::select! {
                biased;
                _ = self.shutdown.changed() => return,
                r = tokio::time::timeout(CONNECT_TIMEOUT, connect(&self.cfg)) => {
                    r.unwrap_or_else(|_| Err("timed out connecting to the broker".into()))
                }
            };
            let error = match connected {
                Err(e) => e,
                Ok((stream, rbuf, ack)) => {
                    let generation = next_generation;
                    next_generation += 1;
                    backoff.reset();
                    let session_lost =
                        (ever_connected || self.cfg.expect_session) && !ack.session_present;
                    ever_connected = true;
                    self.shared.generation.store(generation, Ordering::Release);
                    {
                        let mut st = lock(&self.shared.status);
                        st.connected = true;
                        st.connects += 1;
                        st.sessions_lost += u64::from(session_lost);
                    }
                    if session_lost {
                        tracing::warn!(
                            "MQTT broker lost our session: messages queued for us while away may be gone (possible gap)"
                        );
                    }
                    // Connects must reach the consumer: a lost session is recorded. The wait
                    // for room still yields to shutdown (a stopping consumer reads no more).
                    let ev = MqttEvent::Connected {
                        session_present: ack.session_present,
                        session_lost,
                    };
                    let sent = tokio::select! {
                        biased;
                        _ = self.shutdown.changed() => return,
                        r = self.events.send(ev) => r,
                    };
                    if sent.is_err() {
                        return;
                    }
                    match self.session(stream, rbuf, generation).await {
                        End::Stop => return,
                        End::Lost(e) => e,
                    }
                }
            };
            self.shared
                .generation
                .store(NO_CONNECTION, Ordering::Release);
            let retry_in = jittered(backoff.next_delay());
            {
                let mut st = lock(&self.shared.status);
                st.connected = false;
                st.last_error = Some(error.clone());
            }
            tracing::warn!(error = %error, retry_in_ms = retry_in.as_millis() as u64, "MQTT connection failed");
            // Status events are best effort; messages are what must not be lost.
            let _ = self
                .events
                .try_send(MqttEvent::Disconnected { error, retry_in });
            tokio::select! {
                biased;
                _ = self.shutdown.changed() => return,
                _ = tokio::time::sleep(retry_in) => {}
            }
        }
    }

    /// Serves one connection until it fails or the client stops.
    async fn session(&mut self, stream: TcpStream, mut rbuf: BytesMut, generation: u64) -> End {
        let max = self.cfg.max_packet_size;
        let (mut rd, mut wr) = stream.into_split();
        let mut wbuf = BytesMut::with_capacity(4096);
        // Subscribing again is harmless when the session survived and required when not.
        if !self.cfg.subscriptions.is_empty() {
            let mut sub = Subscribe::new_many(
                self.cfg
                    .subscriptions
                    .iter()
                    .map(|f| SubscribeFilter::new(f.clone(), QoS::AtLeastOnce)),
            );
            sub.pkid = self.outbox.next_pkid();
            if let Err(e) = Packet::Subscribe(sub).write(&mut wbuf, max) {
                return End::Lost(format!("subscribe: {e}"));
            }
        }
        for p in self.outbox.unacked.values() {
            let mut p = p.clone();
            p.dup = true;
            if let Err(e) = Packet::Publish(p).write(&mut wbuf, max) {
                return End::Lost(format!("publish: {e}"));
            }
        }
        let keep_alive = self.cfg.keep_alive.max(Duration::from_secs(1));
        let mut ping =
            tokio::time::interval_at(tokio::time::Instant::now() + keep_alive, keep_alive);
        let mut ping_outstanding = false;
        let mut pending: VecDeque<MqttEvent> = VecDeque::new();
        let mut commands = Vec::with_capacity(1024);
        loop {
            while pending.len() < MAX_PENDING {
                let packet = match Packet::read(&mut rbuf, max) {
                    Ok(p) => p,
                    Err(CodecError::InsufficientBytes(_)) => break,
                    Err(e) => return End::Lost(format!("malformed packet from the broker: {e}")),
                };
                match packet {
                    Packet::Publish(publish) => {
                        self.shared.messages.fetch_add(1, Ordering::Relaxed);
                        pending.push_back(MqttEvent::Message(Message {
                            publish,
                            generation,
                            received_ms: now_ms(),
                        }));
                    }
                    Packet::PubRel(rel) => {
                        // QoS 2 (never asked for): released once we sent PUBREC.
                        let _ = PubComp::new(rel.pkid).write(&mut wbuf);
                    }
                    Packet::PubAck(ack) => {
                        if self.outbox.unacked.remove(&ack.pkid).is_some() {
                            self.shared.publishes.fetch_sub(1, Ordering::AcqRel);
                        }
                    }
                    Packet::SubAck(ack) => {
                        let failed = ack
                            .return_codes
                            .iter()
                            .filter(|c| matches!(c, SubscribeReasonCode::Failure))
                            .count();
                        if failed > 0 {
                            tracing::error!(failed, "MQTT broker refused subscriptions");
                        }
                    }
                    Packet::PingResp => ping_outstanding = false,
                    Packet::Disconnect => return End::Lost("the broker disconnected".into()),
                    other => {
                        tracing::debug!(packet = ?other, "unexpected MQTT packet ignored");
                    }
                }
            }
            if !wbuf.is_empty() {
                let written = tokio::select! {
                    biased;
                    _ = self.shutdown.changed() => return End::Stop,
                    r = tokio::time::timeout(keep_alive, wr.write_all(&wbuf)) => r,
                };
                match written {
                    Ok(Ok(())) => wbuf.clear(),
                    Ok(Err(e)) => return End::Lost(format!("write to the broker: {e}")),
                    Err(_) => return End::Lost("the broker stopped reading".into()),
                }
            }
            if rbuf.capacity() - rbuf.len() < READ_CHUNK / 4 {
                rbuf.reserve(READ_CHUNK);
            }
            tokio::select! {
                biased;
                _ = self.shutdown.changed() => {
                    // Acks queued before the stop still go out (the consumer committed
                    // those messages), then DISCONNECT; a broker that does not read gets
                    // a second, not forever.
                    while let Ok(cmd) = self.commands.try_recv() {
                        encode(&mut self.outbox, max, cmd, generation, &mut wbuf);
                    }
                    wbuf.extend_from_slice(&[0xE0, 0x00]); // DISCONNECT
                    let _ = tokio::time::timeout(Duration::from_secs(1), wr.write_all(&wbuf)).await;
                    return End::Stop;
                }
                n = self.commands.recv_many(&mut commands, 4096) => {
                    if n == 0 {
                        return End::Stop; // every handle dropped
                    }
                    for cmd in commands.drain(..) {
                        if encode(&mut self.outbox, max, cmd, generation, &mut wbuf) {
                            self.shared.publishes.fetch_sub(1, Ordering::AcqRel);
                        }
                    }
                }
                permit = self.events.reserve(), if !pending.is_empty() => {
                    let Ok(permit) = permit else { return End::Stop };
                    if let Some(ev) = pending.pop_front() {
                        permit.send(ev);
                    }
                    // Hand over whatever else fits without another trip round the loop.
                    while !pending.is_empty() {
                        let Ok(permit) = self.events.try_reserve() else { break };
                        if let Some(ev) = pending.pop_front() {
                            permit.send(ev);
                        }
                    }
                }
                _ = self.events.closed(), if pending.is_empty() => return End::Stop,
                r = rd.read_buf(&mut rbuf), if pending.len() < MAX_PENDING => match r {
                    Ok(0) => return End::Lost("the broker closed the connection".into()),
                    Ok(_) => {}
                    Err(e) => return End::Lost(format!("read from the broker: {e}")),
                },
                _ = ping.tick() => {
                    if ping_outstanding {
                        return End::Lost("no PINGRESP within the keep-alive interval".into());
                    }
                    ping_outstanding = true;
                    let _ = PingReq.write(&mut wbuf);
                }
            }
        }
    }
}

/// Writes a consumer's command into the outgoing buffer. True when it frees a publish
/// slot: a QoS 0 publish once written, a QoS 1 one that could not be encoded.
fn encode(
    outbox: &mut Outbox,
    max: usize,
    cmd: Command,
    generation: u64,
    wbuf: &mut BytesMut,
) -> bool {
    match cmd {
        Command::Ack {
            generation: g,
            pkid,
            qos,
        } => {
            // An ack of another connection is dropped: the broker redelivers its message.
            if g == generation {
                let _ = match qos {
                    QoS::AtMostOnce => Ok(0),
                    QoS::AtLeastOnce => PubAck::new(pkid).write(wbuf),
                    QoS::ExactlyOnce => PubRec::new(pkid).write(wbuf),
                };
            }
            false
        }
        Command::Publish(mut p) => {
            let qos1 = p.qos == QoS::AtLeastOnce;
            if qos1 {
                p.pkid = outbox.next_pkid();
            }
            match Packet::Publish(p.clone()).write(wbuf, max) {
                Ok(_) => {
                    if qos1 {
                        outbox.unacked.insert(p.pkid, p);
                    }
                    !qos1
                }
                Err(e) => {
                    tracing::warn!(topic = %p.topic, error = %e, "MQTT publish not sent");
                    true
                }
            }
        }
    }
}

/// TCP connect, CONNECT, CONNACK. Returns the stream, any bytes read past the CONNACK,
/// and the CONNACK.
async fn connect(cfg: &ClientConfig) -> Result<(TcpStream, BytesMut, ConnAck), String> {
    let mut stream = TcpStream::connect((cfg.host.as_str(), cfg.port))
        .await
        .map_err(|e| format!("connect to {}:{}: {e}", cfg.host, cfg.port))?;
    // Writes are batched here already; Nagle would only delay acks and pings.
    stream
        .set_nodelay(true)
        .map_err(|e| format!("TCP_NODELAY: {e}"))?;
    let mut c = Connect::new(cfg.client_id.clone());
    c.keep_alive = cfg.keep_alive.as_secs().clamp(1, u64::from(u16::MAX)) as u16;
    c.clean_session = false;
    let mut buf = BytesMut::new();
    Packet::Connect(c)
        .write(&mut buf, usize::MAX)
        .map_err(|e| format!("CONNECT: {e}"))?;
    stream
        .write_all(&buf)
        .await
        .map_err(|e| format!("write CONNECT: {e}"))?;
    let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
    loop {
        match Packet::read(&mut rbuf, cfg.max_packet_size) {
            Ok(Packet::ConnAck(ack)) if ack.code == ConnectReturnCode::Success => {
                return Ok((stream, rbuf, ack));
            }
            Ok(Packet::ConnAck(ack)) => {
                return Err(format!("the broker refused the connection: {:?}", ack.code));
            }
            Ok(other) => return Err(format!("expected CONNACK, got {other:?}")),
            Err(CodecError::InsufficientBytes(_)) => {}
            Err(e) => return Err(format!("malformed CONNACK: {e}")),
        }
        match stream.read_buf(&mut rbuf).await {
            Ok(0) => return Err("the broker closed the connection before CONNACK".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("read CONNACK: {e}")),
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_half_to_full() {
        for _ in 0..1000 {
            let d = jittered(Duration::from_millis(1000));
            assert!(d >= Duration::from_millis(500) && d <= Duration::from_millis(1000));
        }
    }
}
