//! Operations routes: `/healthz` (the process is alive), `/readyz` (models loaded and
//! components compiled: true once serving, since both happen before the port opens; it
//! lists quarantined pipelines), `/metrics` (Prometheus text), and the JSON 404 for
//! anything else.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::remote::CircuitState;
use crate::server::AppState;
use crate::server::metrics::GaugeSample;
use crate::server::reply::ApiError;

/// `GET /healthz`.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: what is loaded, and which pipelines are quarantined.
///
/// A quarantined pipeline leaves the box ready (200, `"ready": true`): the other
/// pipelines serve, and a quarantine ends through a probe, which is a client's request,
/// so a load balancer that took the box out of rotation would keep it quarantined.
pub async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let models: Vec<_> = state
        .runtime
        .models()
        .list()
        .map(|m| json!({"name": m.name, "version": m.version}))
        .collect();
    let now = std::time::Instant::now();
    let names = state.runtime.pipeline_names();
    let quarantined: Vec<_> = names
        .iter()
        .filter_map(|name| {
            let q = state.runtime.pipeline(name).ok()?.quarantine.status(now);
            q.is_quarantined().then(|| {
                json!({
                    "pipeline": name,
                    "state": q.phase.name(),
                    "reason": q.reason,
                    "consecutive_failures": q.consecutive_failures,
                    "retry_after_s": q.retry_after_s,
                })
            })
        })
        .collect();
    axum::Json(json!({
        "ready": true, "pipelines": names, "quarantined": quarantined, "models": models,
    }))
    .into_response()
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let load = state.runtime.load().snapshot();
    let gauge = |name, help, labels: Vec<(&'static str, String)>, value: f64| GaugeSample {
        name,
        help,
        labels,
        value,
    };
    let mut gauges = vec![
        gauge(
            "hybrid_in_flight",
            "Requests executing now.",
            vec![],
            f64::from(load.in_flight),
        ),
        gauge(
            "hybrid_queue_depth",
            "Requests waiting for a worker.",
            vec![],
            f64::from(load.queued),
        ),
        gauge(
            "hybrid_capacity",
            "Requests executed at once before queueing.",
            vec![],
            f64::from(load.capacity),
        ),
        gauge(
            "hybrid_shadow_in_flight",
            "Shadow requests being served now (see hybrid_shadow_total).",
            vec![],
            state.shadows.in_flight() as f64,
        ),
    ];
    for health in state.runtime.remote().health() {
        let value = match health.circuit {
            CircuitState::Closed => 0.0,
            CircuitState::HalfOpen => 1.0,
            CircuitState::Open => 2.0,
        };
        gauges.push(gauge(
            "hybrid_circuit_state",
            "Circuit breaker per endpoint: 0 closed, 1 half-open, 2 open.",
            vec![("endpoint", health.name)],
            value,
        ));
    }
    for name in state.runtime.pipeline_names() {
        if let Ok(p) = state.runtime.pipeline(&name) {
            let live = p.live();
            let canary = live.canary.as_ref().map_or(0, |c| c.percent);
            let versions = std::iter::once((&live.stable, "stable", 100 - canary)).chain(
                live.canary
                    .as_ref()
                    .map(|c| (&c.version, "canary", c.percent)),
            );
            for (version, role, share) in versions {
                gauges.push(gauge(
                    "hybrid_component_traffic_percent",
                    "Live component versions of each pipeline and their share of its requests.",
                    vec![
                        ("pipeline", name.clone()),
                        ("component", version.short().to_owned()),
                        ("sha256", version.digest().to_owned()),
                        ("role", role.to_owned()),
                    ],
                    f64::from(share),
                ));
            }
        }
    }
    let now = std::time::Instant::now();
    for name in state.runtime.pipeline_names() {
        if let Ok(p) = state.runtime.pipeline(&name) {
            let quarantined = p.quarantine.status(now).is_quarantined();
            gauges.push(gauge(
                "hybrid_pipeline_quarantined",
                "1 while a pipeline is quarantined (its requests refused, or one probe running), else 0.",
                vec![("pipeline", name)],
                if quarantined { 1.0 } else { 0.0 },
            ));
        }
    }
    for m in state.runtime.models().list() {
        gauges.push(gauge(
            "hybrid_model_info",
            "Local models loaded (always 1).",
            vec![
                ("model", m.name.clone()),
                ("version", m.version.clone()),
                ("sha256", m.sha256.clone()),
            ],
            1.0,
        ));
    }
    let mut response = state.metrics.encode(&gauges).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// Anything else.
pub async fn not_found(uri: Uri) -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        format!(
            "no route {}; routes: POST /v1/pipelines/{{name}}, POST /v1/chat/completions, POST /v1/embeddings, \
             GET /v1/models, GET /metrics, GET /healthz, GET /readyz",
            uri.path()
        ),
    )
    .into_response()
}
