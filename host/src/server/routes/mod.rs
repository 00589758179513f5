//! The HTTP routes: one file per family.

pub mod admin;
pub mod health;
pub mod openai;
pub mod pipelines;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};

use super::reply::ApiError;

/// Reads the request body up to `limit` bytes; beyond it, a 413 naming the limit. A
/// declared `Content-Length` over the limit is refused before any of the body is read.
pub async fn read_body(
    headers: &HeaderMap,
    body: axum::body::Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            format!("request body exceeds this server's limit of {limit} bytes"),
        )
        .code("body_too_large")
    };
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())
}

/// The request id a client sent (`x-request-id`, if sane) or a new one.
pub fn request_id(headers: &HeaderMap, fresh: impl FnOnce() -> String) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(fresh, str::to_owned)
}

/// Metadata from `x-hybrid-*` headers (prefix removed, lower-case keys).
pub fn hybrid_metadata(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(name, value)| {
            let key = name.as_str().strip_prefix("x-hybrid-")?;
            Some((key.replace('-', "_"), value.to_str().ok()?.to_owned()))
        })
        .collect()
}
