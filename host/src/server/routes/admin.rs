//! The admin API, on its own listener: deploy components and models into the running
//! box, run canaries, promote, roll back, and read what is live.
//!
//! | route | what |
//! |---|---|
//! | `GET /admin/status` | pipelines and models |
//! | `GET /admin/pipelines`, `GET /admin/pipelines/{name}` | live versions, shares, counts, quarantine (and, for one pipeline, shadow agreement per model version) |
//! | `PUT /admin/pipelines/{name}/component[?canary=N]` | deploy a `.wasm` (body) |
//! | `POST /admin/pipelines/{name}/promote` | the canary becomes the only version |
//! | `POST /admin/pipelines/{name}/rollback` | drop the canary, or back to the previous version |
//! | `GET /admin/models` | models, versions, sources |
//! | `PUT /admin/models/{name}?version=V` | swap in an `.onnx` (body) |
//! | `POST /admin/models/{name}/rollback` | back to the previous model version |
//!
//! Every route needs `Authorization: Bearer <token>` (compared in constant time); a
//! missing or wrong token is a 401 that says which. Uploads over `admin.max_upload_bytes`
//! are refused with 413 before they are read; others are read whole before routing, so a
//! refusal reaches a client that is still sending. Deploys run on a blocking worker (compiling
//! takes a core for a fraction of a second) while the box keeps serving.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::read_body;
use crate::deploy::{Deployer, Error as DeployFailure};
use crate::runtime::{ComponentSource, DeployReport, ModelSwap, Rollout};
use crate::server::metrics::Metrics;

/// What the admin handlers share.
pub struct AdminState {
    /// Deploys go through it.
    pub deployer: Arc<Deployer>,
    /// The bearer token.
    pub token: String,
    /// Largest upload accepted.
    pub max_upload_bytes: usize,
    /// Deploy outcomes are counted here.
    pub metrics: Arc<Metrics>,
}

/// An admin error: a status and a message naming the problem.
fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({"error": {"message": message.into(), "code": code}});
    (status, axum::Json(body)).into_response()
}

fn failure(e: &DeployFailure) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    error(status, e.code(), e.to_string())
}

/// The admin middleware: checks the bearer token, then reads the whole upload (a 413 for
/// one over the limit) before the request is routed.
pub async fn guard(
    state: &AdminState,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (parts, body) = request.into_parts();
    if let Some(refusal) = authorize(state, &parts.headers) {
        // Read (and drop) what the client is sending, up to the upload limit, so it can
        // read the 401 instead of a reset connection.
        let _ = axum::body::to_bytes(body, state.max_upload_bytes).await;
        return refusal;
    }
    match read_body(&parts.headers, body, state.max_upload_bytes).await {
        Ok(bytes) => {
            let request = axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes));
            next.run(request).await
        }
        Err(e) => e.into_response(),
    }
}

/// Checks the bearer token; `Some(401)` when it is missing or wrong.
fn authorize(state: &AdminState, headers: &HeaderMap) -> Option<Response> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let refusal = match given {
        None => "missing bearer token: send `Authorization: Bearer <token>`",
        Some(token)
            if constant_time_eq::constant_time_eq(token.as_bytes(), state.token.as_bytes()) =>
        {
            return None;
        }
        Some(_) => "wrong bearer token",
    };
    let mut response = error(StatusCode::UNAUTHORIZED, "unauthorized", refusal);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"hybrid-admin\""),
    );
    Some(response)
}

/// `GET /admin/status`.
pub async fn status(State(state): State<Arc<AdminState>>) -> Response {
    axum::Json(state.deployer.status()).into_response()
}

/// `GET /admin/pipelines`.
pub async fn pipelines(State(state): State<Arc<AdminState>>) -> Response {
    axum::Json(state.deployer.pipelines_status()).into_response()
}

/// `GET /admin/pipelines/{name}`.
pub async fn pipeline(State(state): State<Arc<AdminState>>, Path(name): Path<String>) -> Response {
    match state.deployer.pipeline_status(&name) {
        Some(mut status) => {
            status["shadow"] = shadow_json(&state, &name);
            axum::Json(status).into_response()
        }
        None => error(
            StatusCode::NOT_FOUND,
            "pipeline_not_found",
            format!(
                "unknown pipeline {name:?}; configured pipelines: [{}]",
                state.deployer.runtime().pipeline_names().join(", ")
            ),
        ),
    }
}

/// A pipeline's shadow evaluation: its settings and the verdicts so far per local model
/// version, with the agreeing share of those compared; `null` when it has none.
fn shadow_json(state: &AdminState, name: &str) -> Value {
    let Some(config) = state
        .deployer
        .runtime()
        .pipeline(name)
        .ok()
        .and_then(|p| p.config.shadow.clone())
    else {
        return Value::Null;
    };
    let params: serde_json::Map<String, Value> = config
        .params
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.text())))
        .collect();
    let versions: Vec<Value> = state
        .metrics
        .shadow_counts(name)
        .into_iter()
        .map(|c| {
            json!({
                "model": c.model, "version": c.version, "agree": c.agree,
                "disagree": c.disagree, "error": c.error, "skipped": c.skipped,
                "agreement": c.agreement(),
            })
        })
        .collect();
    json!({
        "share": config.share, "params": params, "answer": config.answer, "versions": versions,
    })
}

/// Query of a component upload.
#[derive(Deserialize)]
pub struct DeployQuery {
    canary: Option<u32>,
}

/// `PUT /admin/pipelines/{name}/component[?canary=N]`.
pub async fn deploy_component(
    State(state): State<Arc<AdminState>>,
    Path(name): Path<String>,
    query: Result<Query<DeployQuery>, axum::extract::rejection::QueryRejection>,
    bytes: Bytes,
) -> Response {
    let Ok(Query(query)) = query else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_query",
            "canary must be a whole number of percent, 1 to 99",
        );
    };
    let rollout = match query.canary {
        None => Rollout::Replace,
        Some(n @ 1..=99) => Rollout::Canary(n as u8),
        Some(n) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_canary_share",
                format!("canary share must be between 1 and 99 percent, got {n}"),
            );
        }
    };
    let deployer = state.deployer.clone();
    let pipeline = name.clone();
    let work =
        move || deployer.deploy_component(&pipeline, &bytes, ComponentSource::Upload, rollout);
    on_worker(&state, &name, "component", work, deploy_json).await
}

/// Runs a deploy (or model rollback) on a blocking worker, counts it under `kind`, and
/// turns it into the reply.
async fn on_worker<T: Send + 'static>(
    state: &AdminState,
    target: &str,
    kind: &str,
    work: impl FnOnce() -> Result<T, DeployFailure> + Send + 'static,
    reply: fn(&T) -> Value,
) -> Response {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(done)) => {
            state.metrics.deploy(target, kind, "ok");
            axum::Json(reply(&done)).into_response()
        }
        Ok(Err(e)) => {
            tracing::warn!(target, kind, error = %e, "admin request refused");
            state.metrics.deploy(target, kind, e.code());
            failure(&e)
        }
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("admin worker failed: {e}"),
        ),
    }
}

/// The reply to a successful deploy.
fn deploy_json(r: &DeployReport) -> Value {
    json!({
        "pipeline": r.pipeline,
        "sha256": r.digest,
        "size": r.size,
        "compile": {"origin": r.origin.name(), "ms": r.origin.elapsed().as_secs_f64() * 1e3},
        "preinitialised": r.preinitialised,
        "smoke": {"requests": r.smoke_requests, "ms": r.smoke.as_secs_f64() * 1e3},
        "total_ms": r.total.as_secs_f64() * 1e3,
        "rollout": match r.rollout {
            Rollout::Replace => json!({"kind": "replace", "percent": 100}),
            Rollout::Canary(n) => json!({"kind": "canary", "percent": n}),
        },
    })
}

/// `POST /admin/pipelines/{name}/promote`.
pub async fn promote(State(state): State<Arc<AdminState>>, Path(name): Path<String>) -> Response {
    match state.deployer.promote(&name) {
        Ok(sha) => axum::Json(json!({"pipeline": name, "stable": sha})).into_response(),
        Err(e) => failure(&e),
    }
}

/// `POST /admin/pipelines/{name}/rollback`.
pub async fn rollback(State(state): State<Arc<AdminState>>, Path(name): Path<String>) -> Response {
    match state.deployer.rollback(&name) {
        Ok(sha) => axum::Json(json!({"pipeline": name, "stable": sha})).into_response(),
        Err(e) => failure(&e),
    }
}

/// `GET /admin/models`.
pub async fn models(State(state): State<Arc<AdminState>>) -> Response {
    axum::Json(state.deployer.models_status()).into_response()
}

/// Query of a model upload.
#[derive(Deserialize)]
pub struct ModelQuery {
    version: Option<String>,
}

/// `PUT /admin/models/{name}?version=V`.
pub async fn deploy_model(
    State(state): State<Arc<AdminState>>,
    Path(name): Path<String>,
    query: Result<Query<ModelQuery>, axum::extract::rejection::QueryRejection>,
    bytes: Bytes,
) -> Response {
    let version = match query {
        Ok(Query(ModelQuery { version: Some(v) }))
            if !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            v
        }
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_version",
                "give the model's version as ?version=V (1 to 64 printable ASCII characters)",
            );
        }
    };
    let deployer = state.deployer.clone();
    let model = name.clone();
    let work = move || deployer.deploy_model(&model, &bytes, &version, ComponentSource::Upload);
    on_worker(&state, &name, "model", work, swap_json).await
}

/// `POST /admin/models/{name}/rollback`.
pub async fn rollback_model(
    State(state): State<Arc<AdminState>>,
    Path(name): Path<String>,
) -> Response {
    let deployer = state.deployer.clone();
    let model = name.clone();
    let work = move || deployer.rollback_model(&model);
    on_worker(&state, &name, "model_rollback", work, swap_json).await
}

fn swap_json(s: &ModelSwap) -> Value {
    json!({
        "model": s.name,
        "version": s.version,
        "sha256": s.sha256,
        "previous": {"version": s.previous_version, "sha256": s.previous_sha256},
    })
}

/// Anything else on the admin listener.
pub async fn not_found(uri: axum::http::Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no_route",
        format!(
            "no admin route {}; routes: GET /admin/status, GET /admin/pipelines[/{{name}}], \
             PUT /admin/pipelines/{{name}}/component[?canary=N], POST /admin/pipelines/{{name}}/promote, \
             POST /admin/pipelines/{{name}}/rollback, GET /admin/models, PUT /admin/models/{{name}}?version=V, \
             POST /admin/models/{{name}}/rollback",
            uri.path()
        ),
    )
}
