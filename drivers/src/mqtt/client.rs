//! The MQTT client task: one persistent session, QoS 1 subscriptions, manual acks.
//!
//! Why it looks like this (see `shared/research/reliability-anchors.md` §1.6):
//! - `clean_session = false` so the broker keeps our subscriptions and unacked messages
//!   while we are away; it redelivers them on reconnect.
//! - Manual acks: a PUBACK goes out only when the consumer calls [`MqttHandle::ack`], i.e.
//!   after the message's record is committed.
//! - A PUBACK must never be sent on a *later* connection than the one its PUBLISH came on:
//!   the broker re-sends an unacked message with its original packet id and may reuse that
//!   id for another message once acked, so a late ack could acknowledge a message we have not
//!   stored. Each connection has a generation number; acks for an older generation are
//!   dropped (the broker redelivers those messages, and the consumer dedupes them on their
//!   own key). The generation check and the queueing of the ack happen under one lock that
//!   the poller also takes when a connection fails, after rumqttc has purged queued acks.
//! - The incoming packet limit is set above the application's payload limit, so an
//!   oversize payload reaches the consumer (which rejects and acks it) instead of failing
//!   the connection and coming straight back after every reconnect.

use crate::backoff::Backoff;
use bytes::Bytes;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, Publish, QoS};
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
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
        /// A reconnect found the session gone: messages queued for us may be lost upstream.
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

struct Shared {
    /// Current connection generation; also serialises acks against reconnects.
    generation: Mutex<u64>,
    status: Mutex<ClientStatus>,
    stopped: AtomicBool,
    /// Acks queued for rumqttc and not yet written (changed under `generation`'s lock).
    queued_acks: AtomicUsize,
}

/// The consumer's side of the client: acks, publishes, status.
#[derive(Clone)]
pub struct MqttHandle {
    client: AsyncClient,
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
    /// broker redelivers them) and QoS 0 ones need none. One lock covers a run of acks, so
    /// a committed batch costs one lock, not one per message.
    pub async fn ack_all(&self, msgs: &[Message]) -> Result<usize, ClientError> {
        let (mut next, mut sent) = (0, 0);
        while next < msgs.len() {
            {
                let generation = lock(&self.shared.generation);
                while let Some(m) = msgs.get(next) {
                    if m.publish.qos != QoS::AtMostOnce && m.generation == *generation {
                        if self.client.try_ack(&m.publish).is_err() {
                            break;
                        }
                        self.shared.queued_acks.fetch_add(1, Ordering::AcqRel);
                        sent += 1;
                    }
                    next += 1;
                }
            }
            if next < msgs.len() {
                if self.shared.stopped.load(Ordering::Acquire) {
                    return Err(ClientError::Stopped);
                }
                // Request queue full: the poller drains it; wait outside the lock.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        Ok(sent)
    }

    /// Publishes without waiting (used for Sparkplug rebirth requests).
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
            _ => QoS::ExactlyOnce,
        };
        self.client
            .try_publish(topic, qos, retain, payload)
            .map_err(|e| ClientError::Refused(e.to_string()))
    }

    /// The connection's current state.
    pub fn status(&self) -> ClientStatus {
        lock(&self.shared.status).clone()
    }
}

/// Capacity of rumqttc's request queue: the MQTT packet id space (see `spawn_client`).
const REQUEST_QUEUE: usize = 65_536;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding these locks cannot leave them inconsistent (plain values).
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `d` scaled by a random factor in [0.5, 1.0], so many clients do not reconnect in step.
pub fn jittered(d: Duration) -> Duration {
    let f: f64 = rand::random_range(0.5..=1.0);
    d.mul_f64(f)
}

/// Starts the client task. Events arrive on the returned receiver; the task ends when
/// `shutdown` turns true or every receiver is dropped.
pub fn spawn_client(
    cfg: ClientConfig,
    shutdown: watch::Receiver<bool>,
) -> (MqttHandle, mpsc::Receiver<MqttEvent>, JoinHandle<()>) {
    let mut opts = MqttOptions::new(cfg.client_id.clone(), cfg.host.clone(), cfg.port);
    opts.set_keep_alive(cfg.keep_alive.max(Duration::from_secs(1)));
    opts.set_clean_session(false);
    opts.set_manual_acks(true);
    opts.set_max_packet_size(cfg.max_packet_size, cfg.max_packet_size);
    // The request queue must hold every ack we can owe at once: otherwise an ack waits for
    // the poller to drain the queue while the poller waits for the consumer to take a
    // message (a deadlock seen in the benchmark). rumqttc drains one request per poll and
    // returns buffered incoming events first, so acks can pile up behind a fast broker.
    // Each queued ack is for a distinct unacknowledged packet id of the current connection
    // (stale ones are never queued, and rumqttc purges queued acks when a connection drops),
    // so 65,535 — the packet id space — is a hard bound. flume allocates lazily.
    let (client, eventloop) = AsyncClient::new(opts, REQUEST_QUEUE);
    let shared = Arc::new(Shared {
        generation: Mutex::new(0),
        status: Mutex::new(ClientStatus::default()),
        stopped: AtomicBool::new(false),
        queued_acks: AtomicUsize::new(0),
    });
    let (tx, rx) = mpsc::channel(cfg.channel_capacity.max(1));
    let handle = MqttHandle {
        client: client.clone(),
        shared: shared.clone(),
    };
    let task = tokio::spawn(async move {
        poll_loop(cfg, client, eventloop, shared.clone(), tx, shutdown).await;
        shared.stopped.store(true, Ordering::Release);
        lock(&shared.status).connected = false;
    });
    (handle, rx, task)
}

async fn poll_loop(
    cfg: ClientConfig,
    client: AsyncClient,
    mut eventloop: EventLoop,
    shared: Arc<Shared>,
    tx: mpsc::Sender<MqttEvent>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new(cfg.backoff_initial, cfg.backoff_max);
    let mut ever_connected = false;
    // Events the consumer has no room for yet. rumqttc writes our acks only while it is
    // polled, and polling also reads: so while acks are queued we keep polling and stash
    // what arrives, and only when none are queued do we wait for the consumer (TCP then
    // holds the broker back). Blocking on the consumer with acks queued deadlocks: the
    // consumer waits for the broker's next message, the broker for our acks. The stash is
    // bounded by what arrives while the consumer's own acks drain (rumqttc reads at most 10
    // packets per read, and the consumer holds a bounded number of messages).
    let mut stash: VecDeque<MqttEvent> = VecDeque::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        while let Some(ev) = stash.pop_front() {
            match tx.try_send(ev) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(ev)) => {
                    stash.push_front(ev);
                    break;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    let _ = client.try_disconnect();
                    return;
                }
            }
        }
        if !stash.is_empty() && shared.queued_acks.load(Ordering::Acquire) == 0 {
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                permit = tx.reserve() => match (permit, stash.pop_front()) {
                    (Ok(permit), Some(ev)) => permit.send(ev),
                    (Ok(_), None) => {}
                    (Err(_), _) => break,
                },
                // Wake now and then to drain acks the consumer queued meanwhile.
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
            continue;
        }
        let polled = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            p = eventloop.poll() => p,
        };
        let event = match polled {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                backoff.reset();
                let session_lost = ever_connected && !ack.session_present;
                ever_connected = true;
                {
                    let mut st = lock(&shared.status);
                    st.connected = true;
                    st.connects += 1;
                    if session_lost {
                        st.sessions_lost += 1;
                    }
                }
                if session_lost {
                    tracing::warn!(
                        "MQTT broker lost our session: messages queued for us while away may be gone (possible gap)"
                    );
                }
                // Subscribing again is harmless when the session survived and required
                // when it did not.
                let filters: Vec<rumqttc::SubscribeFilter> = cfg
                    .subscriptions
                    .iter()
                    .map(|f| rumqttc::SubscribeFilter::new(f.clone(), QoS::AtLeastOnce))
                    .collect();
                if !filters.is_empty() {
                    if let Err(e) = client.try_subscribe_many(filters) {
                        tracing::error!(error = %e, "MQTT subscribe could not be queued");
                    }
                }
                MqttEvent::Connected {
                    session_present: ack.session_present,
                    session_lost,
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                let generation = *lock(&shared.generation);
                lock(&shared.status).messages += 1;
                MqttEvent::Message(Message {
                    publish,
                    generation,
                    received_ms: now_ms(),
                })
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                let failed = ack
                    .return_codes
                    .iter()
                    .filter(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                    .count();
                if failed > 0 {
                    tracing::error!(failed, "MQTT broker refused subscriptions");
                }
                continue;
            }
            Ok(Event::Outgoing(rumqttc::Outgoing::PubAck(_))) => {
                // Saturating: acks queued before a reconnect were purged and reset to 0.
                let _ = shared
                    .queued_acks
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                        Some(n.saturating_sub(1))
                    });
                continue;
            }
            Ok(_) => continue,
            Err(e) => {
                {
                    // rumqttc already purged queued acks inside poll(); bumping the
                    // generation under the ack lock and purging again catches any ack
                    // queued in between.
                    let mut generation = lock(&shared.generation);
                    *generation += 1;
                    eventloop.clean();
                    shared.queued_acks.store(0, Ordering::Release);
                }
                let retry_in = jittered(backoff.next_delay());
                {
                    let mut st = lock(&shared.status);
                    st.connected = false;
                    st.last_error = Some(e.to_string());
                }
                tracing::warn!(error = %e, retry_in_ms = retry_in.as_millis() as u64, "MQTT connection failed");
                let ev = MqttEvent::Disconnected {
                    error: e.to_string(),
                    retry_in,
                };
                // Status events are best effort; messages are what must not be lost.
                let _ = tx.try_send(ev);
                tokio::select! {
                    biased;
                    _ = shutdown.changed() => break,
                    _ = tokio::time::sleep(retry_in) => {}
                }
                continue;
            }
        };
        // Messages and connects must reach the consumer (a lost session is recorded).
        stash.push_back(event);
    }
    let _ = client.try_disconnect();
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
