//! The per-request pipeline every route runs behind, in the order a real gateway applies it:
//!
//! 1. count the arrival and its `x-request-id` / `idempotency-key`;
//! 2. check the bearer key (all routes but `/healthz`), answering 401 on a mismatch;
//! 3. for `/v1/` routes, admit the request against the quota (429 `too_many_requests`);
//! 4. draw the scenario's latency and fault, wait, then either answer the fault instead of
//!    the route, hang, or run the route and damage its answer (a hang or a run route counts
//!    as possibly carried out, per id);
//! 5. charge the tokens the answer used, add the `x-ratelimit-*` headers, count the status.
//!
//! Logs carry method, path, status, fault and timing only: never headers or bodies.

use std::sync::Arc;
use std::time::Instant;

use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api_error::ApiError;
use crate::damage;
use crate::faults::Fault;
use crate::server::MAX_REQUEST_BODY;
use crate::state::SimState;
use crate::stats::RequestIds;
use crate::usage::Usage;

/// Largest route answer the pipeline buffers to corrupt it (oversize pads after buffering).
const MAX_BUFFERED_ANSWER: usize = 64 << 20;

/// The axum middleware running the pipeline around every route.
pub async fn pipeline(
    State(state): State<Arc<SimState>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let ids = request_ids(&request);
    state.stats.arrived(&ids);

    let (response, fault) = answer(&state, &path, &ids, request, next).await;

    let status = response.status().as_u16();
    state.stats.answered(&path, status, &ids);
    tracing::info!(
        %method,
        path,
        status,
        fault = fault.map(|f| f.kind()),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "answered"
    );
    response
}

async fn answer(
    state: &SimState,
    path: &str,
    ids: &RequestIds,
    request: Request,
    next: Next,
) -> (Response, Option<Fault>) {
    if path == "/healthz" {
        return (next.run(request).await, None);
    }
    let is_api = path.starts_with("/v1/");
    let authorised = match &state.api_key {
        None => true,
        Some(key) => key.accepts(request.headers().get(AUTHORIZATION).map(|v| v.as_bytes())),
    };
    if !authorised {
        tracing::debug!(path, "refused: missing or wrong bearer key");
        drain(request).await;
        let mut response = ApiError::invalid_api_key().into_response();
        if is_api {
            state.write_quota_headers(response.headers_mut());
        }
        return (response, None);
    }
    if !is_api {
        // Control routes (/sim/*) and unknown paths: no quota, no faults.
        return (next.run(request).await, None);
    }

    if let Err(bucket) = state.admit() {
        state.stats.fault("quota");
        drain(request).await;
        let mut response =
            ApiError::too_many_requests(format!("Rate limit reached for {bucket}")).into_response();
        state.write_quota_headers(response.headers_mut());
        return (response, None);
    }

    let decision = {
        let mut faults = state.faults();
        faults.applies_to(path).then(|| faults.decide())
    };
    let fault = decision.and_then(|d| d.fault);
    if let Some(delay) = decision.map(|d| d.delay).filter(|d| !d.is_zero()) {
        tokio::time::sleep(delay).await;
    }
    if let Some(fault) = fault {
        state.stats.fault(&fault.kind());
    }

    let mut response = match fault {
        Some(Fault::Hang) => {
            state.stats.processed(ids);
            tracing::debug!(path, "hanging until shutdown");
            state.shutting_down().await;
            ApiError::server_error(StatusCode::SERVICE_UNAVAILABLE).into_response()
        }
        Some(fault) if !fault.corrupts_answer() => match damage::replacement(fault) {
            Some(response) => {
                drain(request).await;
                response
            }
            None => run_route(state, ids, request, next).await,
        },
        Some(fault) => {
            let response = run_route(state, ids, request, next).await;
            if response.status().is_success() {
                let (parts, body) = response.into_parts();
                match to_bytes(body, MAX_BUFFERED_ANSWER).await {
                    Ok(bytes) => damage::corrupt(fault, parts, bytes),
                    Err(_) => {
                        ApiError::server_error(StatusCode::INTERNAL_SERVER_ERROR).into_response()
                    }
                }
            } else {
                // Only healthy answers are damaged; an error answer is already a failure.
                response
            }
        }
        None => run_route(state, ids, request, next).await,
    };
    state.write_quota_headers(response.headers_mut());
    (response, fault)
}

/// Reads and discards the body of a request refused without running its route, as a
/// gateway that buffers requests does. Answered with the body not yet received, hyper
/// would close the keep-alive connection right after the answer (with no `Connection:
/// close` to warn the client), and the client's next request on that pooled connection
/// would meet a disconnect that no scenario asked for.
async fn drain(request: Request) {
    let _ = to_bytes(request.into_body(), MAX_REQUEST_BODY).await;
}

/// Runs the route and charges the tokens it reports.
async fn run_route(state: &SimState, ids: &RequestIds, request: Request, next: Next) -> Response {
    state.stats.processed(ids);
    let response = next.run(request).await;
    if let Some(usage) = response.extensions().get::<Usage>() {
        state.charge_tokens(usage.total_tokens);
    }
    response
}

fn request_ids(request: &Request) -> RequestIds {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    RequestIds {
        request_id: header("x-request-id"),
        idempotency_key: header("idempotency-key"),
    }
}
