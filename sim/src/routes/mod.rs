//! One file per API route, plus [`control`] for `/healthz` and the `/sim/*` routes tests use
//! to steer the simulator. Routes parse their own JSON so that a malformed body is answered
//! with the OpenAI error shape rather than axum's plain-text rejection.

pub mod chat;
pub mod control;
pub mod embeddings;
pub mod models;
pub mod raw;
pub mod transcriptions;

use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use serde::de::DeserializeOwned;

use crate::api_error::ApiError;
use crate::state::SimState;

/// The request body, or the OpenAI-shaped error for one that could not be read (413 when
/// over the body limit), instead of axum's plain-text rejection.
pub(crate) fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| ApiError {
        status: rejection.status(),
        message: rejection.body_text(),
        kind: "invalid_request_error",
        param: None,
        code: None,
    })
}

/// Parses a JSON request body, answering 400 `invalid_request_error` when it does not fit.
pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        // serde's messages name the field and position; they can quote a short snippet of
        // the body, which is the client's own data and never the key.
        ApiError::bad_request(
            format!("We could not parse the JSON body of your request: {e}"),
            None,
        )
    })
}

/// Answers 404 `model_not_found` unless `model` is configured.
pub(crate) fn check_model(state: &SimState, model: &str) -> Result<(), ApiError> {
    if state.has_model(model) {
        Ok(())
    } else {
        Err(ApiError::model_not_found(model))
    }
}

/// Seconds since the Unix epoch, for `created` fields.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
