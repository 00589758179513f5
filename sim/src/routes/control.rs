//! The simulator's own routes, outside the inference API: `GET /healthz` (no key needed),
//! `GET|DELETE /sim/stats` to read or zero the counters, `GET|POST /sim/scenario` to read or
//! replace the fault scenario at runtime, and the JSON 404 for unknown paths.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::api_error::ApiError;
use crate::scenario::Scenario;
use crate::state::SimState;
use crate::stats::StatsSnapshot;

/// Liveness: always `200 ok`.
pub async fn healthz() -> &'static str {
    "ok"
}

/// The counters.
pub async fn stats(State(state): State<Arc<SimState>>) -> Json<StatsSnapshot> {
    Json(state.stats.snapshot())
}

/// Zeroes the counters.
pub async fn reset_stats(State(state): State<Arc<SimState>>) -> StatusCode {
    state.stats.reset();
    StatusCode::NO_CONTENT
}

/// The scenario in force.
pub async fn scenario(State(state): State<Arc<SimState>>) -> Json<Scenario> {
    Json(state.scenario())
}

/// Replaces the scenario (JSON, same schema as a scenario file) and answers the new one.
pub async fn set_scenario(State(state): State<Arc<SimState>>, body: Bytes) -> Response {
    let installed = std::str::from_utf8(&body)
        .map_err(|e| e.to_string())
        .and_then(|text| Scenario::from_json(text).map_err(|e| e.to_string()))
        .and_then(|scenario| {
            state.set_scenario(scenario).map_err(|e| e.to_string())?;
            Ok(state.scenario())
        });
    match installed {
        Ok(scenario) => {
            tracing::info!("scenario replaced");
            Json(scenario).into_response()
        }
        Err(message) => ApiError::bad_request(message, None).into_response(),
    }
}

/// 404 in the OpenAI shape for paths the API does not have.
pub async fn unknown_route(method: Method, uri: Uri) -> Response {
    ApiError::unknown_route(method.as_str(), uri.path()).into_response()
}
