//! `POST /v1/raw/echo`: a fixed-path raw JSON endpoint that answers `{"echo": <body>,
//! "usage": ...}`, for clients that post arbitrary JSON to a model endpoint and for tests
//! that need to see exactly what arrived.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::routes::{body_bytes, parse_json};
use crate::state::SimState;
use crate::usage::{Usage, count_tokens};

/// Echoes the posted JSON; the body's characters count as prompt tokens.
pub async fn echo(
    State(_state): State<Arc<SimState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body_bytes(body) {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
    let value: Value = match parse_json(&body) {
        Ok(value) => value,
        Err(error) => return error.into_response(),
    };
    let usage = Usage::new(count_tokens(&String::from_utf8_lossy(&body)), 0);
    let mut response = Json(json!({"echo": value, "usage": usage})).into_response();
    response.extensions_mut().insert(usage);
    response
}
