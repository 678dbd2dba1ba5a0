//! The embedded MQTT broker: lets sewing machines and irons publish to the workshop PC with
//! nothing else installed. It is `rumqttd` (plain TCP, MQTT 3.1.1) on its own threads.
//!
//! Why rumqttd: it is pure Rust, maintained by the same project as our client (rumqttc),
//! embeddable as a library with a config struct, and keeps persistent sessions (clean
//! session off: subscriptions and the read cursor of unacked QoS 1 messages survive a
//! client reconnect, so our ingest's restart does not lose what machines published while it
//! was down). Its log is in memory only: a broker restart (i.e. an agent restart) loses
//! what it held — the ingest records each such restart as a possible gap — which is why
//! Mosquitto with persistence is the production reference for sites that need it. Memory is bounded by `max_segment_size * max_segment_count` per
//! topic filter log.
//!
//! rumqttd offers no way to stop its threads; the broker lives until the process ends.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Settings of the embedded broker.
#[derive(Debug, Clone)]
pub struct EmbeddedBrokerConfig {
    /// Address to listen on (default 127.0.0.1:1883).
    pub listen: SocketAddr,
    /// Largest payload accepted from a publisher (bytes).
    pub max_payload_size: usize,
    /// Unacknowledged QoS 1 messages in flight per connection.
    pub max_inflight: usize,
    /// Size of one in-memory log segment (bytes).
    pub max_segment_size: usize,
    /// Segments kept per log; older ones are dropped (bounds memory).
    pub max_segment_count: usize,
    /// Maximum simultaneous client connections.
    pub max_connections: usize,
}

impl EmbeddedBrokerConfig {
    /// Defaults: 1 MiB payloads, 1000 in flight (a consumer that acks after each commit
    /// holds hundreds unacknowledged), 4 MiB × 16 segments, 1000 connections.
    pub fn new(listen: SocketAddr) -> Self {
        EmbeddedBrokerConfig {
            listen,
            max_payload_size: 1024 * 1024,
            max_inflight: 1000,
            max_segment_size: 4 * 1024 * 1024,
            max_segment_count: 16,
            max_connections: 1000,
        }
    }
}

/// Why the embedded broker did not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The listen address is taken or not ours.
    #[error("embedded MQTT broker cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The broker thread could not start or stopped at once.
    #[error("embedded MQTT broker failed to start: {0}")]
    Start(String),
}

/// A running embedded broker.
pub struct EmbeddedBroker {
    addr: SocketAddr,
    _thread: JoinHandle<()>,
}

impl EmbeddedBroker {
    /// Starts the broker and returns once it accepts TCP connections (or fails within 10 s).
    pub fn start(cfg: &EmbeddedBrokerConfig) -> Result<EmbeddedBroker, BrokerError> {
        // rumqttd only logs a failed bind from its own thread; try the address first so a
        // taken port is a clear startup error.
        drop(
            TcpListener::bind(cfg.listen).map_err(|source| BrokerError::Bind {
                addr: cfg.listen,
                source,
            })?,
        );
        let config = rumqttd_config(cfg);
        let thread = std::thread::Builder::new()
            .name("mqtt-broker".into())
            .spawn(move || {
                let mut broker = rumqttd::Broker::new(config);
                if let Err(e) = broker.start() {
                    tracing::error!(error = %e, "embedded MQTT broker stopped");
                }
            })
            .map_err(|e| BrokerError::Start(e.to_string()))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect_timeout(&cfg.listen, Duration::from_millis(200)).is_ok() {
                return Ok(EmbeddedBroker {
                    addr: cfg.listen,
                    _thread: thread,
                });
            }
            if thread.is_finished() || Instant::now() > deadline {
                return Err(BrokerError::Start(format!(
                    "not accepting connections on {}",
                    cfg.listen
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

fn rumqttd_config(cfg: &EmbeddedBrokerConfig) -> rumqttd::Config {
    let connections = rumqttd::ConnectionSettings {
        connection_timeout_ms: 60_000,
        max_payload_size: cfg.max_payload_size,
        max_inflight_count: cfg.max_inflight,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = rumqttd::ServerSettings {
        name: "bobbin-v4".into(),
        listen: cfg.listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    let router = rumqttd::RouterConfig {
        max_connections: cfg.max_connections,
        max_outgoing_packet_count: 200,
        max_segment_size: cfg.max_segment_size,
        max_segment_count: cfg.max_segment_count,
        custom_segment: None,
        initialized_filters: None,
        shared_subscriptions_strategy: Default::default(),
    };
    let mut v4 = std::collections::HashMap::new();
    v4.insert("1".to_string(), server);
    rumqttd::Config {
        id: 0,
        router,
        v4: Some(v4),
        ..Default::default()
    }
}
