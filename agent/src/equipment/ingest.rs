//! The ingest task: MQTT messages → readings, rejects, alerts and gap records in the
//! journal, each message acknowledged only after the transaction holding it committed.
//!
//! Throughput comes from group commit: messages are gathered into batches (up to `BATCH`,
//! for at most `LINGER`, see `Gathering`), each batch is one `JournalHandle::exec`, and up
//! to `IN_FLIGHT` batches wait for their commits at once. Acks go out in arrival order as
//! batches complete.
//! Memory is bounded by the client channel, `BATCH * IN_FLIGHT`, and the broker's
//! in-flight window.

use super::config::{MachineConfig, MachineKind, MqttConfig};
use super::fields::{self, FieldMap, Reading};
use super::sparkplug::{self, MsgType, SpTopic, SparkplugState};
use super::status::{EquipmentStatus, StatusCell};
use super::store::{self, Inserted, NewReading};
use super::topic::TopicPattern;
use crate::journal::{JournalError, JournalHandle, RejectRow};
use bobbin_drivers::mqtt::{
    spawn_client, ClientConfig, EmbeddedBroker, EmbeddedBrokerConfig, Message, MqttEvent,
    MqttHandle,
};
use bobbin_sync::record::RecordContent;
use futures_util::stream::{FuturesOrdered, StreamExt};
use rusqlite::params;
use serde_json::json;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Most messages in one exec (one savepoint in a group transaction).
const BATCH: usize = 512;
/// Batches waiting for their commit at once.
const IN_FLIGHT: usize = 4;
/// Longest a message waits for its batch to fill (see `Gathering`).
const LINGER: Duration = Duration::from_millis(5);
/// A batch goes as soon as no message has come for this long (see `Gathering`).
const IDLE: Duration = Duration::from_millis(1);
/// Readings pruned per transaction (keeps the writer responsive).
const PRUNE_LIMIT: usize = 5_000;
/// Unlisted machines found by `kind`ed patterns that are remembered (bounded memory).
const MAX_DYNAMIC_MACHINES: usize = 1024;

/// Why the ingest stopped.
#[derive(Debug, thiserror::Error)]
pub enum EquipmentError {
    /// The configuration is invalid.
    #[error("{0}")]
    Config(String),
    /// The embedded broker did not start.
    #[error(transparent)]
    Broker(#[from] bobbin_drivers::mqtt::BrokerError),
    /// The journal failed (fatal: the daemon exits, DESIGN invariant 10).
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The MQTT client stopped unexpectedly.
    #[error("MQTT client stopped: {0}")]
    Client(String),
}

/// One machine as the ingest sees it.
#[derive(Debug)]
pub struct Machine {
    /// Machine id.
    pub id: String,
    /// Its kind.
    pub kind: MachineKind,
    /// Its station.
    pub station: Option<String>,
    /// Its field mapping.
    pub fields: FieldMap,
    /// Iron: alert range.
    pub range: Option<[f64; 2]>,
}

impl Machine {
    fn from_config(m: &MachineConfig) -> Machine {
        Machine {
            id: m.id.clone(),
            kind: m.kind,
            station: m.station.clone(),
            fields: FieldMap::new(m.kind, &m.fields),
            range: m.temp_range_c,
        }
    }
}

/// Where a topic goes.
#[derive(Debug)]
pub enum Route<'t> {
    /// JSON payload of this machine.
    Json(Arc<Machine>),
    /// A Sparkplug topic.
    Sparkplug(SpTopic<'t>),
    /// Not ours: reject with this reason.
    Unknown(String),
}

/// Topic → machine. Pure apart from remembering unlisted machines of `kind`ed patterns.
#[derive(Debug)]
pub struct Router {
    by_id: HashMap<String, Arc<Machine>>,
    topics: Vec<(TopicPattern, Arc<Machine>)>,
    patterns: Vec<(TopicPattern, Option<MachineKind>)>,
    sparkplug: HashMap<(String, String, Option<String>), Arc<Machine>>,
    groups: Vec<String>,
    dynamic: usize,
}

impl Router {
    /// Builds the router from a validated config.
    pub fn new(cfg: &MqttConfig, machines: &[MachineConfig]) -> Result<Router, String> {
        let mut r = Router {
            by_id: HashMap::new(),
            topics: Vec::new(),
            patterns: Vec::new(),
            sparkplug: HashMap::new(),
            groups: cfg.sparkplug_groups.clone(),
            dynamic: 0,
        };
        for m in machines {
            let entry = Arc::new(Machine::from_config(m));
            r.by_id.insert(m.id.clone(), entry.clone());
            if let Some(t) = &m.topic {
                r.topics.push((TopicPattern::parse(t)?, entry.clone()));
            }
            if let Some(s) = &m.sparkplug {
                r.sparkplug
                    .insert((s.group.clone(), s.node.clone(), s.device.clone()), entry);
            }
        }
        for p in &cfg.patterns {
            r.patterns.push((TopicPattern::parse(&p.pattern)?, p.kind));
        }
        Ok(r)
    }

    /// The filters to subscribe to.
    pub fn subscriptions(&self) -> Vec<String> {
        let mut subs: Vec<String> = self
            .topics
            .iter()
            .map(|(p, _)| p.filter())
            .chain(self.patterns.iter().map(|(p, _)| p.filter()))
            .chain(self.groups.iter().map(|g| format!("spBv1.0/{g}/#")))
            .collect();
        subs.sort();
        subs.dedup();
        subs
    }

    /// Routes a topic.
    pub fn route<'t>(&mut self, topic: &'t str) -> Route<'t> {
        match sparkplug::parse_topic(topic) {
            Ok(Some(t)) => return Route::Sparkplug(t),
            Err(e) => return Route::Unknown(e),
            Ok(None) => {}
        }
        for (p, m) in &self.topics {
            if p.matches(topic).is_some() {
                return Route::Json(m.clone());
            }
        }
        for (p, kind) in &self.patterns {
            let Some(Some(id)) = p.matches(topic) else {
                continue;
            };
            if let Some(m) = self.by_id.get(id) {
                return Route::Json(m.clone());
            }
            let Some(kind) = kind else {
                return Route::Unknown(format!("unknown machine {id:?}"));
            };
            if self.dynamic >= MAX_DYNAMIC_MACHINES {
                return Route::Unknown(format!(
                    "unknown machine {id:?} (more than {MAX_DYNAMIC_MACHINES} unlisted machines)"
                ));
            }
            let m = Arc::new(Machine {
                id: id.to_string(),
                kind: *kind,
                station: None,
                fields: FieldMap::new(*kind, &Default::default()),
                range: None,
            });
            self.dynamic += 1;
            self.by_id.insert(id.to_string(), m.clone());
            return Route::Json(m);
        }
        Route::Unknown("no machine mapped to this topic".into())
    }

    fn sparkplug_machine(
        &self,
        group: &str,
        node: &str,
        device: Option<&str>,
    ) -> Option<Arc<Machine>> {
        self.sparkplug
            .get(&(
                group.to_string(),
                node.to_string(),
                device.map(str::to_string),
            ))
            .cloned()
    }
}

/// One thing to write for a message.
#[derive(Debug, Clone)]
pub enum Item {
    /// A reading (and, for an iron with a range, its temperature for the alert debouncer).
    Reading {
        /// The row.
        reading: NewReading,
        /// Iron temperature and range.
        temp: Option<(f64, [f64; 2])>,
        /// The raw payload, kept in case the seq was reused with other content.
        raw: bytes::Bytes,
        /// Reject source if it has to become one.
        source: String,
    },
    /// A reject row (and the machine it was for, if known).
    Reject(RejectRow, Option<String>),
    /// A record (gap, lost session).
    Record(RecordContent),
    /// A connect with a session on `broker` for `client_id` (remembered, so that a later
    /// start without the session is a recorded gap).
    Session {
        /// The broker as the status shows it.
        broker: String,
        /// Our client id.
        client_id: String,
        /// When (UTC ms).
        at_ms: i64,
    },
}

/// What processing a message produced.
#[derive(Debug, Default)]
pub struct Processed {
    /// Rows and records to write.
    pub items: Vec<Item>,
    /// Sparkplug: publish a rebirth request on this NCMD topic.
    pub rebirth: Option<String>,
    /// A Sparkplug sequence gap was seen.
    pub gap: bool,
}

/// Turns messages into items. Pure but for its state (router cache, Sparkplug sessions).
pub struct Processor {
    router: Router,
    sparkplug: SparkplugState,
    max_payload: usize,
}

fn reject(source: &str, raw: &[u8], reason: String, recv_ms: i64, machine: Option<&str>) -> Item {
    Item::Reject(
        RejectRow {
            time_ms: recv_ms,
            source: source.to_string(),
            raw: raw.to_vec(),
            reason,
        },
        machine.map(str::to_string),
    )
}

impl Processor {
    /// A processor for a validated config.
    pub fn new(cfg: &MqttConfig, machines: &[MachineConfig]) -> Result<Processor, String> {
        Ok(Processor {
            router: Router::new(cfg, machines)?,
            sparkplug: SparkplugState::default(),
            max_payload: cfg.max_payload_bytes,
        })
    }

    /// The filters to subscribe to.
    pub fn subscriptions(&self) -> Vec<String> {
        self.router.subscriptions()
    }

    /// Processes one message.
    pub fn process(&mut self, topic: &str, payload: &bytes::Bytes, recv_ms: i64) -> Processed {
        let source = format!("mqtt:{topic}");
        let mut out = Processed::default();
        if payload.len() > self.max_payload {
            let reason = format!(
                "payload of {} bytes exceeds mqtt.max_payload_bytes ({})",
                payload.len(),
                self.max_payload
            );
            out.items
                .push(reject(&source, payload, reason, recv_ms, None));
            return out;
        }
        match self.router.route(topic) {
            Route::Unknown(reason) => {
                out.items
                    .push(reject(&source, payload, reason, recv_ms, None));
            }
            Route::Json(m) => {
                let item = json_item(&m, &source, payload, recv_ms);
                out.items.push(item);
            }
            Route::Sparkplug(SpTopic::State(_)) => {}
            Route::Sparkplug(SpTopic::Edge {
                group,
                kind,
                node,
                device,
            }) => {
                let (group, node, device) = (
                    group.to_string(),
                    node.to_string(),
                    device.map(str::to_string),
                );
                self.sparkplug_items(
                    &group,
                    kind,
                    &node,
                    device.as_deref(),
                    &source,
                    payload,
                    recv_ms,
                    &mut out,
                );
            }
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn sparkplug_items(
        &mut self,
        group: &str,
        kind: MsgType,
        node: &str,
        device: Option<&str>,
        source: &str,
        payload: &bytes::Bytes,
        recv_ms: i64,
        out: &mut Processed,
    ) {
        if matches!(kind, MsgType::NCmd | MsgType::DCmd) {
            return; // commands, including our own rebirth requests
        }
        let p = match sparkplug::decode(payload) {
            Ok(p) => p,
            Err(e) => {
                out.items.push(reject(source, payload, e, recv_ms, None));
                return;
            }
        };
        let o = self
            .sparkplug
            .on_message(group, kind, node, device, &p, recv_ms);
        if let Some(v) = &o.violation {
            tracing::warn!(group, node, device, violation = %v, "Sparkplug protocol violation");
        }
        if o.rebirth {
            out.rebirth = Some(sparkplug::ncmd_topic(group, node));
        }
        if let Some(g) = o.gap {
            out.gap = true;
            tracing::warn!(
                group,
                node,
                expected = g.expected,
                got = g.got,
                "Sparkplug sequence gap: messages lost"
            );
            out.items.push(Item::Record(RecordContent {
                kind: "equipment.gap".into(),
                time_ms: recv_ms,
                station: None,
                worker: None,
                trace_code: None,
                order: None,
                process: None,
                body: json!({
                    "source": "sparkplug",
                    "group": group,
                    "node": node,
                    "device": device,
                    "expected_seq": g.expected,
                    "got_seq": g.got,
                    "rebirth_requested": o.rebirth,
                })
                .to_string(),
            }));
        }
        let machine = self.router.sparkplug_machine(group, node, device);
        if let Some(reason) = o.reject {
            out.items.push(reject(
                source,
                payload,
                reason,
                recv_ms,
                machine.as_ref().map(|m| m.id.as_str()),
            ));
            return;
        }
        if o.values.is_empty() {
            return;
        }
        let Some(m) = machine else {
            if matches!(kind, MsgType::DData | MsgType::NData) {
                let reason = "no machine bound to this Sparkplug node/device".to_string();
                out.items
                    .push(reject(source, payload, reason, recv_ms, None));
            }
            return;
        };
        let mut values = Vec::new();
        let mut ts = None;
        for (reading, name, conv) in m.fields.entries() {
            if let Some(v) = o.values.iter().rev().find(|v| v.name == name) {
                values.push((reading, conv.apply(v.value)));
                ts = ts.or(v.ts_ms);
            }
        }
        if values.is_empty() {
            return; // births and data of metrics we do not map
        }
        out.items
            .push(reading_item(&m, source, payload, recv_ms, None, ts, values));
    }
}

fn reading_item(
    m: &Machine,
    source: &str,
    payload: &bytes::Bytes,
    recv_ms: i64,
    seq: Option<u64>,
    ts_ms: Option<i64>,
    values: Vec<(Reading, f64)>,
) -> Item {
    let temp = match (m.kind, m.range) {
        (MachineKind::Iron, Some(range)) => values
            .iter()
            .find(|(r, _)| *r == Reading::TempC)
            .map(|(_, v)| (*v, range)),
        _ => None,
    };
    Item::Reading {
        reading: NewReading {
            machine: m.id.clone(),
            station: m.station.clone(),
            seq: seq.map(|s| s.min(i64::MAX as u64) as i64),
            time_ms: ts_ms.unwrap_or(recv_ms),
            recv_ms,
            metrics: fields::metrics_json(&values),
        },
        temp,
        raw: payload.clone(),
        source: source.to_string(),
    }
}

fn json_item(m: &Machine, source: &str, payload: &bytes::Bytes, recv_ms: i64) -> Item {
    let bad = |reason: String| reject(source, payload, reason, recv_ms, Some(&m.id));
    let text = match std::str::from_utf8(payload) {
        Ok(t) => t,
        Err(e) => return bad(format!("payload is not valid UTF-8: {e}")),
    };
    match fields::extract_json(&m.fields, text) {
        Ok(x) => reading_item(m, source, payload, recv_ms, x.seq, x.ts_ms, x.values),
        Err(e) => bad(e),
    }
}

/// What became of one item, for the status counters.
#[derive(Debug, Clone)]
pub(crate) enum Applied {
    New { machine: String, alert: bool },
    Duplicate { machine: String },
    Rejected { machine: Option<String> },
    Recorded,
}

fn insert_reject(tx: &rusqlite::Transaction<'_>, row: &RejectRow) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO rejects (time_ms, source, raw, reason) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![row.time_ms, row.source, row.raw, row.reason])?;
    Ok(())
}

/// Writes a batch's items in the writer's transaction.
fn apply(
    ctx: &mut crate::journal::writer::TxCtx<'_, '_>,
    items: &[Item],
    hysteresis: f64,
) -> Result<Vec<Applied>, JournalError> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Item::Reading {
                reading,
                temp,
                raw,
                source,
            } => match store::insert_reading(ctx.tx, reading)? {
                Inserted::New => {
                    let mut alert = false;
                    if let Some((t, range)) = temp {
                        if let Some(rec) =
                            store::temperature_alert(ctx.tx, reading, *t, *range, hysteresis)?
                        {
                            alert = rec.kind == "quality.alert";
                            ctx.append(&rec)?;
                        }
                    }
                    out.push(Applied::New {
                        machine: reading.machine.clone(),
                        alert,
                    });
                }
                Inserted::Duplicate => out.push(Applied::Duplicate {
                    machine: reading.machine.clone(),
                }),
                Inserted::SeqReused => {
                    let row = RejectRow {
                        time_ms: reading.recv_ms,
                        source: source.clone(),
                        raw: raw.to_vec(),
                        reason: format!(
                            "seq {} of machine {} already stored with other content (publisher restarted its sequence?)",
                            reading.seq.unwrap_or_default(),
                            reading.machine
                        ),
                    };
                    insert_reject(ctx.tx, &row)?;
                    out.push(Applied::Rejected {
                        machine: Some(reading.machine.clone()),
                    });
                }
            },
            Item::Reject(row, machine) => {
                insert_reject(ctx.tx, row)?;
                out.push(Applied::Rejected {
                    machine: machine.clone(),
                });
            }
            Item::Record(rec) => {
                ctx.append(rec)?;
                out.push(Applied::Recorded);
            }
            Item::Session {
                broker,
                client_id,
                at_ms,
            } => {
                store::session_seen(ctx.tx, broker, client_id, *at_ms)?;
                out.push(Applied::Recorded);
            }
        }
    }
    Ok(out)
}

/// A running ingest: its status and its task.
pub struct Equipment {
    status: StatusCell,
    mqtt: Arc<std::sync::Mutex<Option<MqttHandle>>>,
    task: JoinHandle<Result<(), EquipmentError>>,
}

impl Equipment {
    /// A snapshot for the status API.
    pub fn status(&self) -> EquipmentStatus {
        let client = self
            .mqtt
            .lock()
            .ok()
            .and_then(|g| g.as_ref().map(|h| h.status()));
        self.status.snapshot(client)
    }

    /// Waits for the task to end (after shutdown, or on a fatal error).
    pub async fn join(self) -> Result<(), EquipmentError> {
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(EquipmentError::Client(format!("ingest task failed: {e}"))),
        }
    }
}

/// Validates the config and starts the ingest (and the embedded broker unless `mqtt.broker`
/// names an external one). Must be called inside a tokio runtime.
pub fn spawn(
    cfg: MqttConfig,
    machines: Vec<MachineConfig>,
    journal: JournalHandle,
    shutdown: watch::Receiver<bool>,
) -> Result<Equipment, EquipmentError> {
    cfg.validate(&machines).map_err(EquipmentError::Config)?;
    let processor = Processor::new(&cfg, &machines).map_err(EquipmentError::Config)?;
    let external = cfg.external_broker().map_err(EquipmentError::Config)?;
    let broker_desc = match &external {
        Some((h, p)) => format!("mqtt://{h}:{p}"),
        None => format!("embedded mqtt://{}", cfg.listen),
    };
    let status = StatusCell::new(broker_desc, external.is_none());
    let mqtt = Arc::new(std::sync::Mutex::new(None));
    let task = tokio::spawn(run_task(
        cfg,
        external,
        processor,
        journal,
        shutdown,
        status.clone(),
        mqtt.clone(),
    ));
    Ok(Equipment { status, mqtt, task })
}

/// Runs the ingest until `shutdown` turns true: `spawn` and `join` in one call.
pub async fn run(
    cfg: MqttConfig,
    machines: Vec<MachineConfig>,
    journal: JournalHandle,
    shutdown: watch::Receiver<bool>,
) -> Result<(), EquipmentError> {
    spawn(cfg, machines, journal, shutdown)?.join().await
}

type BatchFuture = Pin<Box<dyn Future<Output = BatchDone> + Send>>;

struct BatchDone {
    messages: Vec<Message>,
    items: Arc<Vec<Item>>,
    result: Result<Vec<Applied>, JournalError>,
}

fn submit(
    journal: &JournalHandle,
    messages: Vec<Message>,
    items: Arc<Vec<Item>>,
    hysteresis: f64,
) -> BatchFuture {
    let journal = journal.clone();
    Box::pin(async move {
        let its = items.clone();
        let result = journal.exec(move |ctx| apply(ctx, &its, hysteresis)).await;
        BatchDone {
            messages,
            items,
            result,
        }
    })
}

async fn run_task(
    cfg: MqttConfig,
    external: Option<(String, u16)>,
    mut processor: Processor,
    journal: JournalHandle,
    mut shutdown: watch::Receiver<bool>,
    status: StatusCell,
    mqtt_slot: Arc<std::sync::Mutex<Option<MqttHandle>>>,
) -> Result<(), EquipmentError> {
    // The embedded broker, if any, lives as long as this task.
    let (host, port, embedded_broker) = match external {
        Some((h, p)) => (h, p, None),
        None => {
            let bcfg = EmbeddedBrokerConfig {
                max_payload_size: client_packet_limit(cfg.max_payload_bytes),
                ..EmbeddedBrokerConfig::new(cfg.listen)
            };
            let broker = tokio::task::spawn_blocking(move || EmbeddedBroker::start(&bcfg))
                .await
                .map_err(|e| EquipmentError::Client(e.to_string()))??;
            tracing::info!(listen = %broker.addr(), "embedded MQTT broker listening");
            (
                broker.addr().ip().to_string(),
                broker.addr().port(),
                Some(broker),
            )
        }
    };
    let embedded = embedded_broker.is_some();
    let broker_name = status.broker();
    let expect_session = {
        let (b, c) = (broker_name.clone(), cfg.client_id.clone());
        journal
            .exec(move |ctx| Ok(store::session_known(ctx.tx, &b, &c)?))
            .await
            .map_err(EquipmentError::Journal)?
    };
    let mut ccfg = ClientConfig::new(host, port, cfg.client_id.clone());
    ccfg.expect_session = expect_session;
    ccfg.keep_alive = Duration::from_secs(cfg.keep_alive_s);
    ccfg.max_packet_size = client_packet_limit(cfg.max_payload_bytes);
    ccfg.backoff_max = Duration::from_secs(cfg.reconnect_max_s);
    ccfg.subscriptions = processor.subscriptions();
    ccfg.channel_capacity = 1024;
    // The client stops after we have drained and acked, not at the same moment as us.
    let (client_stop_tx, client_stop) = watch::channel(false);
    let (mqtt, mut events, client_task) = spawn_client(ccfg, client_stop);
    if let Ok(mut g) = mqtt_slot.lock() {
        *g = Some(mqtt.clone());
    }
    let hysteresis = cfg.alert_hysteresis_c;
    let retention_ms = i64::from(cfg.retention_days) * 86_400_000;
    let mut prune_tick = tokio::time::interval(Duration::from_secs(3600));
    let mut prune_task: Option<JoinHandle<()>> = None;
    let mut inflight: FuturesOrdered<BatchFuture> = FuturesOrdered::new();
    // The batch being gathered, and when it must go even if not full.
    let mut batch = Gathering::default();
    let mut fatal: Option<EquipmentError> = None;
    let mut stopping = false;
    loop {
        if (stopping || batch.due()) && !batch.is_empty() && inflight.len() < IN_FLIGHT {
            let (messages, items) = batch.take();
            inflight.push_back(submit(&journal, messages, Arc::new(items), hysteresis));
        }
        if stopping && inflight.is_empty() && batch.is_empty() {
            break;
        }
        let linger = batch.deadline;
        tokio::select! {
            biased;
            Some(done) = inflight.next(), if !inflight.is_empty() => {
                match finish_batch(done, &journal, &mqtt, &status, hysteresis).await {
                    Ok(()) => {}
                    Err(e) => { fatal = Some(e); break; }
                }
            }
            _ = shutdown.changed(), if !stopping => { stopping = true; }
            // The batch is due: the top of the loop sends it.
            _ = tokio::time::sleep_until(linger.unwrap_or_else(tokio::time::Instant::now)),
                if linger.is_some() && inflight.len() < IN_FLIGHT => {}
            ev = events.recv(), if !stopping && !batch.full() => {
                let Some(ev) = ev else {
                    fatal = Some(EquipmentError::Client("event channel closed".into()));
                    break;
                };
                let mut next = Some(ev);
                while let Some(ev) = next.take() {
                    match ev {
                        MqttEvent::Message(m) => {
                            let p = processor.process(m.topic(), m.payload(), m.received_ms);
                            status.received(p.gap);
                            if let Some(t) = p.rebirth {
                                status.rebirth();
                                tracing::info!(topic = %t, "asking Sparkplug edge node to rebirth");
                                if let Err(e) = mqtt.publish(&t, 0, false, sparkplug::rebirth_payload(m.received_ms)) {
                                    tracing::warn!(error = %e, "rebirth request not sent");
                                }
                            }
                            batch.items.extend(p.items);
                            batch.messages.push(m);
                        }
                        MqttEvent::Connected { session_lost, .. } => {
                            if session_lost {
                                batch.items.push(Item::Record(session_lost_record(broker_name.clone(), embedded)));
                            }
                            batch.items.push(Item::Session {
                                broker: broker_name.clone(),
                                client_id: cfg.client_id.clone(),
                                at_ms: chrono::Utc::now().timestamp_millis(),
                            });
                        }
                        MqttEvent::Disconnected { .. } => {}
                    }
                    if !batch.full() {
                        next = events.try_recv().ok();
                    }
                }
                batch.arrived();
            }
            _ = prune_tick.tick() => {
                if prune_task.as_ref().is_none_or(|t| t.is_finished()) {
                    prune_task = Some(tokio::spawn(prune_loop(journal.clone(), retention_ms)));
                }
            }
        }
    }
    // Acks are out (or the journal failed): now the client may disconnect.
    let _ = client_stop_tx.send(true);
    let _ = client_task.await;
    match fatal {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Messages gathered for the next batch. A batch goes to the journal when it is full,
/// `LINGER` after its first message, or once no message has come for `IDLE`. Waiting a few
/// milliseconds lets one commit (one fsync, one write of the tables' last pages) carry
/// hundreds of readings at high rates, where committing whatever had arrived made a commit
/// per hundred and cost a third of the ingest's CPU. The idle rule keeps a broker with a
/// narrow in-flight window (Mosquitto's default is 20 unacknowledged messages) from
/// waiting out the whole linger on every batch; at workshop rates it delays each PUBACK by
/// about `IDLE`.
#[derive(Default)]
struct Gathering {
    messages: Vec<Message>,
    items: Vec<Item>,
    deadline: Option<tokio::time::Instant>,
    first: Option<tokio::time::Instant>,
}

impl Gathering {
    fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.items.is_empty()
    }

    fn full(&self) -> bool {
        self.messages.len() >= BATCH
    }

    /// Full, or its deadline has passed.
    fn due(&self) -> bool {
        self.full()
            || self
                .deadline
                .is_some_and(|d| d <= tokio::time::Instant::now())
    }

    /// Moves the deadline after something arrived: `IDLE` from now, never past `LINGER`
    /// from the first arrival.
    fn arrived(&mut self) {
        if self.is_empty() {
            return;
        }
        let now = tokio::time::Instant::now();
        let first = *self.first.get_or_insert(now);
        self.deadline = Some((now + IDLE).min(first + LINGER));
    }

    fn take(&mut self) -> (Vec<Message>, Vec<Item>) {
        self.deadline = None;
        self.first = None;
        (
            std::mem::take(&mut self.messages),
            std::mem::take(&mut self.items),
        )
    }
}

/// Client packet limit: above our own payload limit (so an oversize payload is a reject we
/// ack, not a connection error that loops) and above Mosquitto's `max_packet_size` in
/// `mosquitto-bobbin.conf` (1 MiB).
fn client_packet_limit(max_payload: usize) -> usize {
    (max_payload + 64 * 1024).max(2 * 1024 * 1024)
}

/// The `equipment.gap` record for a session the broker no longer has. The embedded broker
/// keeps messages in memory only, so each agent restart loses its session by design.
fn session_lost_record(broker: String, embedded: bool) -> RecordContent {
    let detail = if embedded {
        "the embedded broker keeps messages in memory only and started afresh with the agent; \
         what machines published just before the agent stopped may be lost \
         (Mosquitto with systemd/mosquitto-bobbin.conf keeps them)"
    } else {
        "the broker had no session for this client; messages queued for it while it was away may be lost"
    };
    tracing::warn!(%broker, "MQTT session lost: recording a possible gap");
    RecordContent {
        kind: "equipment.gap".into(),
        time_ms: chrono::Utc::now().timestamp_millis(),
        station: None,
        worker: None,
        trace_code: None,
        order: None,
        process: None,
        body: json!({
            "source": "mqtt",
            "reason": "session_lost",
            "broker": broker,
            "detail": detail,
        })
        .to_string(),
    }
}

async fn finish_batch(
    mut done: BatchDone,
    journal: &JournalHandle,
    mqtt: &MqttHandle,
    status: &StatusCell,
    hysteresis: f64,
) -> Result<(), EquipmentError> {
    let mut wait = Duration::from_millis(100);
    loop {
        match done.result {
            Ok(applied) => {
                if let Err(e) = mqtt.ack_all(&done.messages).await {
                    // The client is gone: the broker redelivers; we dedupe.
                    tracing::debug!(error = %e, "acks not sent");
                }
                status.applied(&applied, &done.messages);
                return Ok(());
            }
            Err(JournalError::DiskFull) => {
                // Back-pressure: keep the batch unacked and retry; the broker holds the rest.
                tracing::error!("disk full: equipment readings wait");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(10));
                let items = done.items.clone();
                let its = items.clone();
                done.result = journal.exec(move |ctx| apply(ctx, &its, hysteresis)).await;
                done.items = items;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

async fn prune_loop(journal: JournalHandle, retention_ms: i64) {
    let before = chrono::Utc::now().timestamp_millis() - retention_ms;
    loop {
        match journal
            .exec(move |ctx| Ok(store::prune(ctx.tx, before, PRUNE_LIMIT)?))
            .await
        {
            Ok(n) if n >= PRUNE_LIMIT => continue,
            Ok(n) => {
                if n > 0 {
                    tracing::info!(pruned = n, "pruned old equipment readings");
                }
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "pruning equipment readings failed");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn processor(toml_text: &str) -> Processor {
        #[derive(serde::Deserialize)]
        struct F {
            #[serde(default)]
            mqtt: MqttConfig,
            #[serde(default)]
            machines: Vec<MachineConfig>,
        }
        let f: F = toml::from_str(toml_text).unwrap();
        f.mqtt.validate(&f.machines).unwrap();
        Processor::new(&f.mqtt, &f.machines).unwrap()
    }

    const CFG: &str = r#"
        [mqtt]
        sparkplug_groups = ["G"]
        max_payload_bytes = 1024
        [[mqtt.patterns]]
        pattern = "factory/+machine/data"
        [[mqtt.patterns]]
        pattern = "irons/+machine"
        kind = "iron"
        [[machines]]
        id = "sew-1"
        kind = "sewing"
        station = "S1"
        [[machines]]
        id = "iron-9"
        kind = "iron"
        topic = "legacy/press9"
        temp_range_c = [140, 170]
        [[machines]]
        id = "iron-sp"
        kind = "iron"
        sparkplug = { group = "G", node = "E", device = "D" }
    "#;

    fn bytes(s: &str) -> bytes::Bytes {
        bytes::Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn routes_and_readings() {
        let mut p = processor(CFG);
        assert_eq!(
            p.subscriptions(),
            vec!["factory/+/data", "irons/+", "legacy/press9", "spBv1.0/G/#"]
        );
        let out = p.process(
            "factory/sew-1/data",
            &bytes(r#"{"seq":1,"stitches":10}"#),
            5,
        );
        match &out.items[..] {
            [Item::Reading {
                reading,
                temp: None,
                ..
            }] => {
                assert_eq!(reading.machine, "sew-1");
                assert_eq!(reading.station.as_deref(), Some("S1"));
                assert_eq!(reading.seq, Some(1));
                assert_eq!(reading.time_ms, 5);
            }
            other => panic!("{other:?}"),
        }
        let out = p.process("legacy/press9", &bytes(r#"{"temp_c":180}"#), 5);
        assert!(
            matches!(&out.items[..], [Item::Reading { temp: Some((t, _)), .. }] if *t == 180.0)
        );
        // Unlisted machine on a kinded pattern is accepted; on a kindless one rejected.
        let out = p.process("irons/x7", &bytes(r#"{"temp_c":150}"#), 5);
        assert!(matches!(&out.items[..], [Item::Reading { .. }]));
        let out = p.process("factory/nope/data", &bytes(r#"{"stitches":1}"#), 5);
        assert!(
            matches!(&out.items[..], [Item::Reject(r, None)] if r.reason.contains("unknown machine"))
        );
    }

    #[test]
    fn bad_payloads_become_rejects() {
        let mut p = processor(CFG);
        let cases: Vec<(&str, bytes::Bytes, &str)> = vec![
            ("factory/sew-1/data", bytes("not json"), "not JSON"),
            (
                "factory/sew-1/data",
                bytes::Bytes::from_static(b"\xff\xfe{"),
                "UTF-8",
            ),
            (
                "factory/sew-1/data",
                bytes(r#"{"stitches":"many"}"#),
                "not a number",
            ),
            (
                "factory/sew-1/data",
                bytes(r#"{"speed":1}"#),
                "no known field",
            ),
            (
                "factory/sew-1/data",
                bytes::Bytes::from(vec![b' '; 2000]),
                "exceeds",
            ),
            ("elsewhere/x", bytes("{}"), "no machine"),
            ("spBv1.0/G/DDATA/E", bytes("{}"), "need a device"),
            (
                "spBv1.0/G/DDATA/E/D",
                bytes::Bytes::from_static(b"\xff\xff\xff"),
                "Sparkplug",
            ),
        ];
        for (topic, payload, why) in cases {
            let out = p.process(topic, &payload, 1);
            match &out.items[..] {
                [Item::Reject(r, _)] => {
                    assert!(r.reason.contains(why), "{topic}: {} lacks {why}", r.reason);
                    assert_eq!(r.source, format!("mqtt:{topic}"));
                    assert_eq!(&r.raw[..], &payload[..]);
                }
                other => panic!("{topic}: {other:?}"),
            }
        }
    }

    #[test]
    fn sparkplug_flow() {
        use prost::Message as _;
        use sparkplug::{Metric, MetricValue, Payload};
        let mut p = processor(CFG);
        let m = |name: Option<&str>, alias, v: f64| Metric {
            name: name.map(str::to_string),
            alias: Some(alias),
            datatype: Some(10),
            value: Some(MetricValue::DoubleValue(v)),
            ..Default::default()
        };
        let pl = |seq, metrics| {
            bytes::Bytes::from(
                Payload {
                    timestamp: Some(1000),
                    metrics,
                    seq: Some(seq),
                    ..Default::default()
                }
                .encode_to_vec(),
            )
        };
        let out = p.process("spBv1.0/G/NBIRTH/E", &pl(0, vec![]), 1);
        assert!(out.items.is_empty() && out.rebirth.is_none());
        let out = p.process(
            "spBv1.0/G/DBIRTH/E/D",
            &pl(1, vec![m(Some("temp_c"), 3, 150.0)]),
            1,
        );
        assert!(matches!(&out.items[..], [Item::Reading { .. }]));
        let out = p.process("spBv1.0/G/DDATA/E/D", &pl(2, vec![m(None, 3, 151.0)]), 1);
        match &out.items[..] {
            [Item::Reading { reading, .. }] => assert_eq!(reading.metrics, r#"{"temp_c":151}"#),
            other => panic!("{other:?}"),
        }
        let out = p.process("spBv1.0/G/DDATA/E/D", &pl(5, vec![m(None, 3, 152.0)]), 1);
        assert!(out.gap);
        assert_eq!(out.rebirth.as_deref(), Some("spBv1.0/G/NCMD/E"));
        assert!(matches!(&out.items[0], Item::Record(r) if r.kind == "equipment.gap"));
        assert!(matches!(&out.items[1], Item::Reading { .. }));
    }
}
