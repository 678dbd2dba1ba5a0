//! Worker feedback over MQTT: after each decision commits, its outcome is published to
//! `bobbin/stations/{id}/feedback` as JSON, for andon lights and station displays.
//!
//! It uses a client of its own (id `<mqtt.client_id>-feedback`), so a slow display can never
//! hold back the equipment ingest's acknowledgements.

use crate::station::Decision;
use crate::workflow::FeedbackSink;
use bobbin_drivers::mqtt::{spawn_client, ClientConfig, MqttHandle};
use tokio::sync::watch;

/// Publishes decisions to the broker.
pub struct MqttFeedback {
    handle: MqttHandle,
}

/// The topic a station's feedback goes to.
pub fn topic(station: &str) -> String {
    format!("bobbin/stations/{station}/feedback")
}

impl MqttFeedback {
    /// Connects to `host:port` (retrying in the background) and returns the sink.
    pub fn start(host: &str, port: u16, client_id: &str, stop: watch::Receiver<bool>) -> Self {
        let cfg = ClientConfig::new(host, port, format!("{client_id}-feedback"));
        let (handle, mut events, _task) = spawn_client(cfg, stop);
        // Nothing is subscribed; the events are only connection changes. Drain them.
        tokio::spawn(async move { while events.recv().await.is_some() {} });
        MqttFeedback { handle }
    }
}

impl FeedbackSink for MqttFeedback {
    fn announce(&self, station: &str, d: &Decision, time_ms: i64) {
        let body = serde_json::json!({
            "station": station,
            "outcome": d.outcome,
            "ok": d.outcome.acknowledged(),
            "message": d.message,
            "flags": d.flags,
            "time_ms": time_ms,
        });
        // QoS 1 so a display that was offline for a moment still gets it; a broker that is
        // down only costs the display, never the record (already committed).
        if let Err(e) =
            self.handle
                .publish(&topic(station), 1, false, body.to_string().into_bytes())
        {
            tracing::debug!(station, error = %e, "feedback not published");
        }
    }
}
