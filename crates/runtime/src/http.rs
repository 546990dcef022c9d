//! The node's HTTP server: `/healthz`, `/readyz` and the services' routes
//! behind a readiness gate, with a request id, a trace span and request
//! metrics on every request; and the metrics server (`/metrics` alone, on
//! its own listener, so the public port never shows it).

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

use crate::Readiness;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole HTTP surface of a node.
pub(crate) fn router(readiness: Readiness, services: Router) -> Router {
    let gated = services
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            readiness.clone(),
            readiness_gate,
        ));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(readiness)
        .merge(gated)
        .layer(middleware::from_fn(record_metrics))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                let request_id = request
                    .headers()
                    .get(&REQUEST_ID)
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_default();
                // `tenant_id` is recorded once the credential is checked.
                tracing::info_span!("http_request", method = %request.method(), path = %request.uri().path(), request_id = %request_id, tenant_id = tracing::field::Empty)
            }),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeUuidV7))
}

/// The metrics listener's router: `GET /metrics` (Prometheus text format).
pub(crate) fn metrics_router() -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .fallback(not_found)
}

/// Request ids are UUIDv7 (time-ordered), unless the client sent one.
#[derive(Clone, Copy)]
struct MakeUuidV7;

impl MakeRequestId for MakeUuidV7 {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&uuid::Uuid::now_v7().to_string())
            .ok()
            .map(RequestId::new)
    }
}

/// The process is up and serving HTTP.
async fn healthz() -> impl IntoResponse {
    axum::Json(json!({ "status": "ok" }))
}

/// Every backend answered at the last check.
async fn readyz(State(readiness): State<Readiness>) -> impl IntoResponse {
    let state = readiness.current();
    let backends: Vec<_> = state
        .backends
        .iter()
        .map(|status| {
            json!({
                "backend": status.backend.as_str(),
                "implementation": status.implementation,
                "ready": status.is_ready(),
                "latency_ms": status.latency.as_secs_f64() * 1000.0,
                "error": status.error,
            })
        })
        .collect();
    let ready = state.is_ready();
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "reason": state.reason(),
        "backends": backends,
    });
    (code, axum::Json(body))
}

async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(),
    )
}

async fn not_found(request: Request) -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("no route for {} {}", request.method(), request.uri().path()),
    )
}

/// Answers 503 while the node is not ready, instead of letting a request
/// fail halfway on a missing backend.
async fn readiness_gate(
    State(readiness): State<Readiness>,
    request: Request,
    next: Next,
) -> Response {
    let state = readiness.current();
    if state.is_ready() {
        return next.run(request).await;
    }
    let mut response = problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        &format!("service unavailable: {}", state.reason()),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

/// `switchboard_http_requests_total` and `switchboard_http_request_duration_seconds`,
/// labelled by route template (not raw path, to bound cardinality).
async fn record_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("switchboard_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("switchboard_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// An RFC 9457 problem document.
pub(crate) fn problem(status: StatusCode, kind: &str, detail: &str) -> Response {
    let body = json!({
        "type": format!("https://switchboard.dev/problems/{kind}"),
        "title": status.canonical_reason().unwrap_or_default(),
        "status": status.as_u16(),
        "detail": detail,
    });
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}
