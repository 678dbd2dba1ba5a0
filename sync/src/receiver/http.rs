//! The receiver's HTTP surface (axum).

use super::store::{Store, StoreError};
use super::{AgentEntry, AgentRegistry, ReceiverConfig, ReceiverError};
use crate::signing::body_digest;
use crate::wire::{self, ErrorBody};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde::Deserialize;
use std::sync::{Arc, Mutex};

struct App {
    agents: AgentRegistry,
    /// One writer: batches are applied one at a time, each in its own transaction.
    writer: Mutex<Store>,
    /// Queries use their own connection so they never wait behind a batch (WAL).
    reader: Mutex<Store>,
    max_document_bytes: usize,
    max_records: usize,
}

pub(super) fn router(config: ReceiverConfig) -> Result<Router, ReceiverError> {
    let writer = Store::open(&config.db_path)?;
    let reader = Store::open(&config.db_path)?;
    let app = Arc::new(App {
        agents: config.agents,
        writer: Mutex::new(writer),
        reader: Mutex::new(reader),
        max_document_bytes: config.max_document_bytes,
        max_records: config.max_records,
    });
    Ok(Router::new()
        .route("/v1/batches", post(post_batch))
        .route("/v1/trace/{code}", get(get_trace))
        .route("/v1/agents", get(get_agents))
        .route("/v1/conflicts", get(get_conflicts))
        .route("/v1/rejects", get(get_rejects))
        .route("/healthz", get(|| async { "ok" }))
        // Larger bodies get 413 before they are read, which makes the agent split.
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .with_state(app))
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(ErrorBody {
            error: code.into(),
            message: message.into(),
        }),
    )
        .into_response()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::NotOwner { .. } => error(StatusCode::FORBIDDEN, "journal_owner", e.to_string()),
        StoreError::Sqlite(_) => {
            tracing::error!(target: "bobbin_receiver", "{e}");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "store",
                "the receiver's store failed; retry later",
            )
        }
    }
}

fn lock(m: &Mutex<Store>) -> std::sync::MutexGuard<'_, Store> {
    // A panic mid-transaction rolled the transaction back; the connection is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn post_batch(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(agent) = bearer(&headers).and_then(|t| app.agents.agent_by_token(t)) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or unknown bearer token",
        );
    };
    if !header(&headers, "content-encoding").is_some_and(|v| v.eq_ignore_ascii_case("gzip")) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content_encoding",
            "batches must be sent with Content-Encoding: gzip",
        );
    }
    let meta = BatchHeaders {
        signature: header(&headers, "bobbin-signature").map(str::to_owned),
        digest: header(&headers, "content-digest").map(str::to_owned),
        key: header(&headers, "idempotency-key").map(str::to_owned),
    };
    let app2 = app.clone();
    match tokio::task::spawn_blocking(move || apply(&app2, &agent, meta, &body)).await {
        Ok(r) => r,
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

struct BatchHeaders {
    signature: Option<String>,
    digest: Option<String>,
    key: Option<String>,
}

/// Everything after authentication: CPU work and the store, on a blocking thread.
fn apply(app: &App, agent: &AgentEntry, h: BatchHeaders, body: &[u8]) -> Response {
    if let Some(d) = &h.digest {
        let want = format!(
            "sha-256=:{}:",
            base64::engine::general_purpose::STANDARD.encode(body_digest(body))
        );
        if d.trim() != want {
            return error(
                StatusCode::BAD_REQUEST,
                "digest_mismatch",
                "Content-Digest does not match the body",
            );
        }
    }
    let Some(sig) = h.signature else {
        return error(
            StatusCode::FORBIDDEN,
            "bad_signature",
            "missing Bobbin-Signature header",
        );
    };
    if let Err(e) = agent.public_key.verify_body(body, &sig) {
        return error(
            StatusCode::FORBIDDEN,
            "bad_signature",
            format!(
                "{e}: is the public key registered for agent {:?} this agent's key?",
                agent.id
            ),
        );
    }
    let doc = match wire::gunzip(body, app.max_document_bytes) {
        Ok(d) => d,
        Err(e @ wire::WireError::Gzip { .. }) if e.to_string().contains("too large") => {
            return error(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e.to_string())
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_gzip", e.to_string()),
    };
    let batch = match wire::decode_batch(&doc) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, "malformed", e.to_string()),
    };
    if batch.agent_id != agent.id {
        return error(
            StatusCode::FORBIDDEN,
            "agent_mismatch",
            format!(
                "the token is agent {:?}, the batch says {:?}",
                agent.id, batch.agent_id
            ),
        );
    }
    let expected_key = batch.idempotency_key();
    match h.key.as_deref().map(|k| k.trim().trim_matches('"')) {
        Some(k) if k == expected_key => {}
        Some(k) => {
            return error(
                StatusCode::BAD_REQUEST,
                "idempotency_key_mismatch",
                format!("Idempotency-Key {k:?} does not name this batch ({expected_key:?})"),
            )
        }
        None => {
            return error(
                StatusCode::BAD_REQUEST,
                "idempotency_key_missing",
                "Idempotency-Key is required",
            )
        }
    }
    if batch.records.len() > app.max_records {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "{} records; at most {} per batch",
                batch.records.len(),
                app.max_records
            ),
        );
    }
    let now_ms = chrono::Utc::now().timestamp_millis();
    match batch.verify_chain() {
        Ok(hashes) => match lock(&app.writer).ingest(&agent.id, &batch, &hashes, now_ms) {
            Ok(r) => Json(r).into_response(),
            Err(e) => store_error(e),
        },
        Err(m) if batch.records.len() > 1 => {
            // Which record was altered is not known yet: the agent bisects the batch.
            error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "chain_mismatch",
                m.to_string(),
            )
        }
        Err(m) => {
            let msg =
                format!("content does not match its hash (altered after it was journaled): {m}");
            tracing::warn!(target: "bobbin_receiver", "agent {} journal {} seq {}: {msg}",
                agent.id, batch.journal_id, batch.first_seq);
            match lock(&app.writer).reject_altered(&agent.id, &batch, &msg, now_ms) {
                Ok(r) => Json(r).into_response(),
                Err(e) => store_error(e),
            }
        }
    }
}

fn is_reader(app: &App, headers: &HeaderMap) -> bool {
    bearer(headers).is_some_and(|t| app.agents.is_reader(t))
}

async fn query<T: serde::Serialize + Send + 'static>(
    app: Arc<App>,
    headers: HeaderMap,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Response {
    if !is_reader(&app, &headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "queries need a reader token ([[reader]] in the agents file)",
        );
    }
    match tokio::task::spawn_blocking(move || f(&lock(&app.reader))).await {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => store_error(e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

async fn get_trace(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Response {
    query(app, headers, move |s| {
        let records = s.trace(&code)?;
        Ok(serde_json::json!({ "trace_code": code, "records": records }))
    })
    .await
}

async fn get_agents(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    query(app, headers, |s| {
        Ok(serde_json::json!({ "agents": s.agents()? }))
    })
    .await
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<usize>,
}

async fn get_conflicts(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(l): Query<Limit>,
) -> Response {
    let n = l.limit.unwrap_or(100).min(10_000);
    query(app, headers, move |s| {
        Ok(serde_json::json!({ "conflicts": s.conflicts(n)? }))
    })
    .await
}

async fn get_rejects(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(l): Query<Limit>,
) -> Response {
    let n = l.limit.unwrap_or(100).min(10_000);
    query(app, headers, move |s| {
        Ok(serde_json::json!({ "rejects": s.rejects(n)? }))
    })
    .await
}
