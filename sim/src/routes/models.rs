//! `GET /v1/models` and `GET /v1/models/{model}`: the configured model ids as OpenAI model
//! objects, so a client can discover what the simulator serves.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::api_error::ApiError;
use crate::state::SimState;

/// A fixed creation time keeps the listing byte-for-byte reproducible.
const CREATED: u64 = 1_700_000_000;

fn model_object(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": CREATED, "owned_by": "hybrid-sim"})
}

/// Lists the configured models.
pub async fn list(State(state): State<Arc<SimState>>) -> Json<Value> {
    let data: Vec<Value> = state.models.iter().map(|id| model_object(id)).collect();
    Json(json!({"object": "list", "data": data}))
}

/// Describes one model, or 404 `model_not_found`.
pub async fn retrieve(State(state): State<Arc<SimState>>, Path(model): Path<String>) -> Response {
    if state.has_model(&model) {
        Json(model_object(&model)).into_response()
    } else {
        ApiError::model_not_found(&model).into_response()
    }
}
