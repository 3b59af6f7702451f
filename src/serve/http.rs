//! The HTTP side of `serve` (axum): `POST /webhook`, `GET /healthz`, `GET /readyz`,
//! `GET /metrics`.
//!
//! A webhook delivery is checked in this order, and nothing of it is parsed or acted on
//! until its signature holds: secret configured (404), size (413 past `max_body`, from
//! `Content-Length` before a byte of the body is read, else while reading), the body
//! within [`BODY_READ_TIMEOUT`] (408), signature (401), shutting down (503), duplicate
//! `X-GitHub-Delivery` (200, ignored), then JSON (400) and the event.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::Service;
use super::metrics::Metrics;
use super::webhook::{self, Event};

/// Deliveries remembered for de-duplication (GitHub redelivers by hand or on timeouts;
/// a few thousand covers any realistic window).
pub const REMEMBERED: usize = 4096;

/// Time a client has to send a webhook's whole body once its headers are in.
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The most recent delivery IDs, kept as SHA-256 hashes: bounded by count
/// ([`REMEMBERED`]) and by bytes (32 per ID, however long the header was).
#[derive(Default)]
pub struct Deliveries(Mutex<(HashSet<DeliveryKey>, VecDeque<DeliveryKey>)>);

/// A delivery ID's SHA-256.
type DeliveryKey = [u8; 32];

impl Deliveries {
    /// Records a delivery; false when it was seen before.
    pub fn first_time(&self, id: &str) -> bool {
        use sha2::Digest as _;
        let key: [u8; 32] = sha2::Sha256::digest(id.as_bytes()).into();
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (seen, order) = &mut *guard;
        if !seen.insert(key) {
            return false;
        }
        order.push_back(key);
        if order.len() > REMEMBERED {
            if let Some(old) = order.pop_front() {
                seen.remove(&old);
            }
        }
        true
    }
}

/// The routes.
pub fn router(service: Arc<Service>) -> Router {
    let limit = service.opts.config.max_body;
    Router::new()
        .route("/webhook", post(webhook))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(service)
}

async fn ready(State(service): State<Arc<Service>>) -> Response {
    if service.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

async fn metrics(State(service): State<Arc<Service>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        service.metrics.render(),
    )
        .into_response()
}

/// Events counted under their own name; anything else is `other` (the header is
/// untrusted until verified, and labels must stay few).
const EVENTS: [&str; 5] = [
    "ping",
    "installation",
    "installation_repositories",
    "push",
    "pull_request",
];

fn answer(status: StatusCode, message: impl Into<String>) -> Response {
    let mut text = message.into();
    text.push('\n');
    (status, text).into_response()
}

async fn webhook(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let count = |event: &str, outcome: &str| {
        Metrics::count(
            &service.metrics.webhooks,
            &[("event", event), ("outcome", outcome)],
            1,
        );
    };
    let Some(secret) = &service.opts.webhook_secret else {
        return answer(StatusCode::NOT_FOUND, "webhooks are not configured here");
    };
    let limit = service.opts.config.max_body;
    // Neither a size nor a timeout refusal is counted as a delivery: nothing was read.
    let too_large = || {
        answer(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("larger than max_body ({limit} bytes)"),
        )
    };
    // Refused before a byte of the body is read.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().parse::<u64>());
    match declared {
        Some(Ok(n)) if n > limit as u64 => return too_large(),
        Some(Err(_)) => return answer(StatusCode::BAD_REQUEST, "invalid Content-Length"),
        _ => {}
    }
    let body: Bytes =
        match tokio::time::timeout(BODY_READ_TIMEOUT, axum::body::to_bytes(body, limit)).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(_)) => return too_large(),
            Err(_) => {
                return answer(
                    StatusCode::REQUEST_TIMEOUT,
                    format!("body not received within {}s", BODY_READ_TIMEOUT.as_secs()),
                );
            }
        };
    let signature = headers
        .get("x-hub-signature-256")
        .map(http::HeaderValue::as_bytes);
    if let Err(e) = webhook::verify(secret.expose().as_bytes(), signature, &body) {
        count("unverified", "rejected");
        tracing::warn!(reason = %e, "webhook refused");
        return answer(StatusCode::UNAUTHORIZED, e.to_string());
    }
    let name = headers
        .get("x-github-event")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let label = EVENTS
        .iter()
        .find(|e| **e == name)
        .copied()
        .unwrap_or("other");
    if !service.is_ready() {
        count(label, "unavailable");
        return answer(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    let delivery = headers
        .get("x-github-delivery")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !delivery.is_empty() && !service.deliveries.first_time(delivery) {
        count(label, "duplicate");
        return answer(
            StatusCode::OK,
            format!(
                "delivery {} seen before; ignored",
                crate::imageref::shorten(delivery)
            ),
        );
    }
    let event = match webhook::parse(&name, &body) {
        Ok(event) => event,
        Err(e) => {
            count(label, "invalid");
            return answer(StatusCode::BAD_REQUEST, format!("not a JSON payload: {e}"));
        }
    };
    tracing::info!(
        event = name,
        delivery = crate::imageref::shorten(delivery),
        ?event,
        "webhook"
    );
    let (status, message) = act(&service, event);
    count(
        label,
        if status == StatusCode::ACCEPTED {
            "accepted"
        } else {
            "handled"
        },
    );
    answer(status, message)
}

/// Starts the work an event asks for; the answer to send.
fn act(service: &Arc<Service>, event: Event) -> (StatusCode, String) {
    let fleet = &service.opts.fleet;
    match event {
        Event::Ping => (StatusCode::OK, "pong".into()),
        Event::Ignored(why) => (StatusCode::OK, why),
        Event::Repositories {
            installation,
            repos,
        } => {
            let mut targets = Vec::new();
            for repo in &repos {
                match fleet.target(installation, repo) {
                    Ok(Some(t)) => targets.push(t),
                    Ok(None) => {}
                    Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()),
                }
            }
            let n = targets.len();
            service.enqueue(targets);
            (
                StatusCode::ACCEPTED,
                format!("{n} of {} repositories queued", repos.len()),
            )
        }
        Event::Installation(id) => {
            let this = Arc::clone(service);
            tokio::spawn(async move {
                match this.opts.fleet.installation_targets(id).await {
                    Ok(targets) => this.enqueue(targets),
                    Err(e) => {
                        tracing::error!(installation = id, error = %e, "listing repositories");
                    }
                }
            });
            (
                StatusCode::ACCEPTED,
                format!("installation {id}: its repositories are queued"),
            )
        }
        Event::Push { installation, repo } => match fleet.target(installation, &repo) {
            Ok(Some(target)) => {
                let this = Arc::clone(service);
                let delay = service.opts.config.debounce;
                service
                    .debouncer
                    .poke(&repo, move || this.enqueue(vec![target]));
                (
                    StatusCode::ACCEPTED,
                    format!("{repo} runs in {}", humantime::format_duration(delay)),
                )
            }
            Ok(None) => (StatusCode::OK, format!("{repo} is not covered here")),
            Err(e) => (StatusCode::BAD_REQUEST, e.to_string()),
        },
        Event::Declined { repo, state } => {
            if !fleet.covers(&repo) {
                return (StatusCode::OK, format!("{repo} is not covered here"));
            }
            let Some(store) = &service.opts.store else {
                return (
                    StatusCode::OK,
                    "no state store; the closed pull request itself records it".into(),
                );
            };
            let key = crate::forge::run::declined_key(&repo, &state);
            let now = chrono::Utc::now().timestamp().max(0).unsigned_abs();
            match store.set(&[key], now) {
                Ok(()) => (StatusCode::OK, format!("{repo}: declined digests recorded")),
                Err(e) => {
                    tracing::error!(error = %e, "recording a declined pull request");
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "state store failed".into(),
                    )
                }
            }
        }
    }
}
