//! The status server: the supervisor page, its JSON API, health and metrics.
//!
//! Bound to 127.0.0.1 by default. Bound to any other address it demands the configured
//! token on every request (`Authorization: Bearer …`, or `?token=…` for a browser opening
//! the page), and config validation refuses such an address without a token.

pub mod metrics;
pub mod table;

use crate::journal::retention::DiskState;
use crate::journal::{JournalError, JournalReader};
use crate::maintenance::DiskView;
use crate::workflow::StationsView;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bobbin_drivers::{DeviceStatus, StatusCell};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// `[status]`: where the status server listens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatusConfig {
    /// Address and port; loopback by default so nothing is exposed without a decision.
    pub listen: SocketAddr,
    /// Token every request must carry when `listen` is not a loopback address.
    pub token: Option<String>,
}

impl Default for StatusConfig {
    fn default() -> Self {
        StatusConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8088)),
            token: None,
        }
    }
}

impl StatusConfig {
    /// Checks the token rule; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        match &self.token {
            Some(t) if t.len() < 16 => Err("token: must be at least 16 characters".into()),
            None if !self.listen.ip().is_loopback() => Err(format!(
                "token: required when listen ({}) is not a loopback address",
                self.listen
            )),
            _ => Ok(()),
        }
    }

    /// The token requests must carry, if any: only off loopback.
    fn required_token(&self) -> Option<String> {
        if self.listen.ip().is_loopback() {
            None
        } else {
            self.token.clone()
        }
    }
}

/// Everything the status API reads from. Cheap snapshots only: no lock is held across I/O.
pub struct Sources {
    /// This agent's id.
    pub agent_id: String,
    /// The journal new records go to.
    pub journal_id: String,
    /// When the agent started.
    pub started: chrono::DateTime<chrono::Utc>,
    /// Live station state.
    pub stations: StationsView,
    /// Device status cells, by device id.
    pub devices: Vec<StatusCell>,
    /// The uploader, when sync is configured.
    pub sync: Option<bobbin_sync::UploaderHandle>,
    /// The disk watch.
    pub disk: DiskView,
    /// A read connection on the journal.
    pub reader: Mutex<JournalReader>,
    /// The journal file.
    pub db_path: std::path::PathBuf,
    /// Whether the journal writer still runs.
    pub writer_alive: Box<dyn Fn() -> bool + Send + Sync>,
    /// Equipment ingest, when `[mqtt]` is enabled.
    pub machines: Option<Arc<crate::equipment::Equipment>>,
    /// Where tablet inspection forms are recorded.
    pub journal: crate::journal::JournalHandle,
    /// Inspection rules and the workshop's UTC offset, for the tablet form.
    pub inspection: crate::station::WorkshopOptions,
}

/// Journal figures for the status page.
#[derive(Debug, Clone, Default, Serialize)]
pub struct JournalStats {
    /// File size including the WAL.
    pub size_bytes: u64,
    /// Records in the current journal.
    pub records: u64,
    /// Records written since local midnight (UTC here; the page shows local time).
    pub records_today: u64,
    /// Reject rows kept.
    pub rejects: u64,
    /// Records the platform did not accept (conflicts and rejects), kept visible.
    pub upload_refusals: u64,
    /// Whether the writer runs.
    pub writer_alive: bool,
}

/// The whole `GET /api/status` answer.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// Identity and uptime.
    pub agent: AgentInfo,
    /// Per station: worker on duty, last scan and its outcome, pieces today, open unit.
    pub stations: Vec<crate::station::StationView>,
    /// Per device: state, last reading, counts.
    pub devices: Vec<DeviceStatus>,
    /// The journal.
    pub journal: JournalStats,
    /// Equipment: broker connection, per machine last message, readings, alerts. Null
    /// without `[mqtt]`.
    pub machines: Option<crate::equipment::EquipmentStatus>,
    /// Upload: backlog, oldest unsent, last success, last error. Null without `[sync]`.
    pub sync: Option<bobbin_sync::SyncStatus>,
    /// The disk watch.
    pub disk: DiskState,
}

/// Who is answering.
#[derive(Debug, Clone, Serialize)]
pub struct AgentInfo {
    /// Agent id.
    pub id: String,
    /// Build version.
    pub version: &'static str,
    /// Current journal id.
    pub journal_id: String,
    /// Start time (RFC 3339).
    pub started: String,
    /// Seconds since start.
    pub uptime_s: i64,
}

type Shared = Arc<Sources>;

fn internal(e: impl std::fmt::Display) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(serde_json::json!({ "error": e.to_string() })),
    )
        .into_response()
}

/// Runs a blocking journal query on the shared reader connection.
async fn with_reader<T: Send + 'static>(
    s: &Shared,
    f: impl FnOnce(&JournalReader) -> Result<T, JournalError> + Send + 'static,
) -> Result<T, Response> {
    let s = s.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let r = s
            .reader
            .lock()
            .map_err(|_| "reader lock poisoned".to_string())?;
        f(&r).map_err(|e| e.to_string())
    })
    .await;
    match joined {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(internal(e)),
        Err(e) => Err(internal(e)),
    }
}

fn journal_stats(r: &JournalReader, midnight_ms: i64) -> Result<JournalStats, JournalError> {
    let c = r.connection();
    let Some(current) = r.journals()?.pop() else {
        return Ok(JournalStats::default());
    };
    let max_seq: i64 = c.query_row(
        "SELECT COALESCE(MAX(seq), 0) FROM records WHERE journal = ?1",
        [current.row],
        |row| row.get(0),
    )?;
    let first_today = r.first_seq_at_or_after(&current, midnight_ms)? as i64;
    let rejects: i64 = c.query_row("SELECT count(*) FROM rejects", [], |row| row.get(0))?;
    let refusals: i64 =
        c.query_row("SELECT count(*) FROM upload_outcomes", [], |row| row.get(0))?;
    Ok(JournalStats {
        size_bytes: 0,
        records: (max_seq - current.pruned_through as i64).max(0) as u64,
        records_today: (max_seq + 1 - first_today).max(0) as u64,
        rejects: rejects as u64,
        upload_refusals: refusals as u64,
        writer_alive: true,
    })
}

/// Local midnight in UTC ms (the PC's clock and zone).
fn local_midnight_ms() -> i64 {
    let now = chrono::Local::now();
    now.date_naive()
        .and_hms_opt(0, 0, 0)
        .and_then(|m| m.and_local_timezone(chrono::Local).earliest())
        .map_or(0, |m| m.timestamp_millis())
}

/// Builds the full status report.
pub async fn report(s: &Shared) -> Result<StatusReport, Response> {
    let midnight = local_midnight_ms();
    let mut journal = with_reader(s, move |r| journal_stats(r, midnight)).await?;
    journal.size_bytes = ["", "-wal"]
        .iter()
        .filter_map(|x| std::fs::metadata(format!("{}{x}", s.db_path.display())).ok())
        .map(|m| m.len())
        .sum();
    journal.writer_alive = (s.writer_alive)();
    let now = chrono::Utc::now();
    Ok(StatusReport {
        agent: AgentInfo {
            id: s.agent_id.clone(),
            version: env!("CARGO_PKG_VERSION"),
            journal_id: s.journal_id.clone(),
            started: s.started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            uptime_s: (now - s.started).num_seconds(),
        },
        stations: s.stations.lock().map(|v| v.clone()).unwrap_or_default(),
        devices: s.devices.iter().map(|d| d.snapshot()).collect(),
        journal,
        machines: s.machines.as_ref().map(|e| e.status()),
        sync: s.sync.as_ref().map(|h| h.status()),
        disk: s.disk.lock().map(|d| d.clone()).unwrap_or(DiskState::Ok),
    })
}

async fn get_status(State(s): State<Shared>) -> Response {
    match report(&s).await {
        Ok(r) => Json(r).into_response(),
        Err(e) => e,
    }
}

async fn get_trace(State(s): State<Shared>, Path(code): Path<String>) -> Response {
    let result = with_reader(&s, move |r| r.trace(&code)).await;
    match result {
        Ok(records) => {
            let lines: Vec<_> = records.iter().map(crate::commands::record_json).collect();
            Json(serde_json::json!({ "records": lines })).into_response()
        }
        Err(e) => e,
    }
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<u32>,
}

/// A reject row as the API shows it.
#[derive(Serialize)]
struct RejectView {
    id: i64,
    time_ms: i64,
    source: String,
    reason: String,
    raw_hex: String,
    raw_text: String,
}

async fn get_rejects(State(s): State<Shared>, Query(q): Query<Limit>) -> Response {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let result = with_reader(&s, move |r| {
        let c = r.connection();
        let rejects: Vec<RejectView> = c
            .prepare("SELECT id, time_ms, source, reason, raw FROM rejects ORDER BY id DESC LIMIT ?1")?
            .query_map([limit], |row| {
                let raw: Vec<u8> = row.get(4)?;
                Ok(RejectView {
                    id: row.get(0)?,
                    time_ms: row.get(1)?,
                    source: row.get(2)?,
                    reason: row.get(3)?,
                    raw_hex: hex::encode(&raw),
                    raw_text: String::from_utf8_lossy(&raw).into_owned(),
                })
            })?
            .collect::<Result<_, _>>()?;
        let refusals: Vec<serde_json::Value> = c
            .prepare(
                "SELECT seq, status, reason, message, time_ms FROM upload_outcomes ORDER BY time_ms DESC LIMIT ?1",
            )?
            .query_map([limit], |row| {
                Ok(serde_json::json!({
                    "seq": row.get::<_, i64>(0)?,
                    "status": row.get::<_, String>(1)?,
                    "reason": row.get::<_, String>(2)?,
                    "message": row.get::<_, String>(3)?,
                    "time_ms": row.get::<_, i64>(4)?,
                }))
            })?
            .collect::<Result<_, _>>()?;
        Ok(serde_json::json!({ "rejects": rejects, "upload_refusals": refusals }))
    })
    .await;
    match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => e,
    }
}

/// The tablet form: a DG-A2 cut-piece or DG-A3 finished-garment inspection as JSON.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
enum InspectionPost {
    /// DG-A2.
    Cut {
        station: Option<String>,
        form: crate::station::CutInspectionForm,
    },
    /// DG-A3.
    Garment {
        station: Option<String>,
        form: crate::station::GarmentInspectionForm,
    },
}

async fn post_inspection(State(s): State<Shared>, body: axum::body::Bytes) -> Response {
    let bad = |m: String| {
        (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "error": m })),
        )
            .into_response()
    };
    let post: InspectionPost = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return bad(format!("body: {e}")),
    };
    let now = chrono::Utc::now();
    let local = now + chrono::Duration::minutes(i64::from(s.inspection.utc_offset_minutes));
    let date = local.format("%Y-%m-%d").to_string();
    let time_ms = now.timestamp_millis();
    let (record, evaluation) = match &post {
        InspectionPost::Cut { station, form } => {
            match crate::station::evaluate_cut(form, &s.inspection.inspection) {
                Ok(e) => (
                    crate::station::cut_inspection_record(
                        form,
                        &e,
                        station.as_deref(),
                        time_ms,
                        &date,
                    ),
                    serde_json::to_value(&e).unwrap_or_default(),
                ),
                Err(m) => return bad(format!("form.{m}")),
            }
        }
        InspectionPost::Garment { station, form } => match crate::station::evaluate_garment(form) {
            Ok(e) => (
                crate::station::garment_inspection_record(
                    form,
                    &e,
                    station.as_deref(),
                    time_ms,
                    &date,
                ),
                serde_json::to_value(&e).unwrap_or_default(),
            ),
            Err(m) => return bad(format!("form.{m}")),
        },
    };
    // Recorded, flagged where short of its share or coverage — never refused for that.
    match s.journal.append(record).await {
        Ok(c) => (
            StatusCode::CREATED,
            Json(serde_json::json!({ "seq": c.seq, "evaluation": evaluation })),
        )
            .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}

async fn get_health(State(s): State<Shared>) -> Response {
    if (s.writer_alive)() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "journal writer stopped\n").into_response()
    }
}

async fn get_metrics(State(s): State<Shared>) -> Response {
    match report(&s).await {
        Ok(r) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            metrics::render(&r),
        )
            .into_response(),
        Err(e) => e,
    }
}

async fn get_page() -> Html<&'static str> {
    Html(include_str!("page.html"))
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from timings.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn presented_token<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Option<&'a str> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return v.strip_prefix("Bearer ");
    }
    query?.split('&').find_map(|kv| kv.strip_prefix("token="))
}

async fn require_token(State(token): State<Arc<String>>, req: Request, next: Next) -> Response {
    let ok = presented_token(req.headers(), req.uri().query())
        .is_some_and(|t| same(t.as_bytes(), token.as_bytes()));
    if ok {
        next.run(req).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "a token is required: Authorization: Bearer <status.token>\n",
        )
            .into_response()
    }
}

/// The router: page, API, health, metrics; behind the token check when one is required.
pub fn router(cfg: &StatusConfig, sources: Shared) -> Router {
    let app = Router::new()
        .route("/", get(get_page))
        .route("/api/status", get(get_status))
        .route("/api/trace/{code}", get(get_trace))
        .route("/api/rejects", get(get_rejects))
        .route("/api/inspections", axum::routing::post(post_inspection))
        .route("/healthz", get(get_health))
        .route("/metrics", get(get_metrics))
        .with_state(sources);
    match cfg.required_token() {
        Some(token) => app.layer(middleware::from_fn_with_state(
            Arc::new(token),
            require_token,
        )),
        None => app,
    }
}

/// Serves on a bound listener until `stop` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    cfg: StatusConfig,
    sources: Shared,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    tracing::info!(url = %format!("http://{}/", listener.local_addr()?), "supervisor page");
    let app = router(&cfg, sources);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_loopback_needs_a_token() {
        let mut c = StatusConfig::default();
        assert!(c.validate().is_ok());
        assert_eq!(c.required_token(), None);
        c.listen = "0.0.0.0:8088".parse().expect("addr");
        assert!(c
            .validate()
            .unwrap_err()
            .starts_with("token: required when listen"));
        c.token = Some("short".into());
        assert!(c.validate().unwrap_err().contains("at least 16"));
        c.token = Some("0123456789abcdef".into());
        assert!(c.validate().is_ok());
        assert_eq!(c.required_token().as_deref(), Some("0123456789abcdef"));
    }

    #[test]
    fn tokens_come_from_the_header_or_the_query() {
        let mut h = HeaderMap::new();
        assert_eq!(presented_token(&h, Some("a=1&token=xyz")), Some("xyz"));
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().expect("header"));
        assert_eq!(presented_token(&h, None), Some("abc"));
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"abc", b"ab"));
    }
}
