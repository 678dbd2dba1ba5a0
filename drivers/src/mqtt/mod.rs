//! MQTT: the client side (persistent session, QoS 1, manual acks, reconnect with capped
//! jittered backoff) and the embedded broker wrapper.
//!
//! The client task only moves bytes: every PUBLISH becomes a [`Message`] in a bounded
//! channel, and the consumer acknowledges it with [`MqttHandle::ack`] once its record is
//! durable. Mapping payloads to readings is the agent's job.

pub mod broker;
pub mod client;

pub use broker::{BrokerError, EmbeddedBroker, EmbeddedBrokerConfig};
pub use client::{
    jittered, spawn_client, AckOutcome, ClientConfig, ClientError, ClientStatus, Message,
    MqttEvent, MqttHandle,
};
