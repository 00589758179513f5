//! `POST /v1/embeddings`: one vector per input string, a pure function of the text and the
//! dimension (an RNG seeded by the text's FNV-1a hash, then L2-normalised), so equal texts
//! always embed equally and tests can compare vectors across runs. `encoding_format:
//! "base64"` packs the vector as little-endian `f32` bytes, as OpenAI does.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api_error::ApiError;
use crate::routes::{body_bytes, check_model, parse_json};
use crate::state::SimState;
use crate::usage::{Usage, count_tokens};

/// Largest `dimensions` a request may ask for.
const MAX_DIMENSIONS: usize = 8192;

/// Most strings one request may embed (OpenAI's limit).
const MAX_INPUTS: usize = 2048;

#[derive(Debug, Deserialize)]
struct EmbeddingRequest {
    model: String,
    input: Input,
    encoding_format: Option<String>,
    dimensions: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Input {
    One(String),
    Many(Vec<String>),
}

/// Answers an embeddings request.
pub async fn create(
    State(state): State<Arc<SimState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match body_bytes(body).and_then(|body| embed(&state, &body)) {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

fn embed(state: &SimState, body: &[u8]) -> Result<Response, ApiError> {
    let request: EmbeddingRequest = parse_json(body)?;
    check_model(state, &request.model)?;
    let inputs = match request.input {
        Input::One(text) => vec![text],
        Input::Many(texts) => texts,
    };
    if inputs.is_empty() || inputs.len() > MAX_INPUTS || inputs.iter().any(String::is_empty) {
        return Err(ApiError::bad_request(
            format!("'input' must be a non-empty string or 1..={MAX_INPUTS} non-empty strings"),
            Some("input"),
        ));
    }
    let base64 = match request.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(_) => {
            return Err(ApiError::bad_request(
                "'encoding_format' must be \"float\" or \"base64\"",
                Some("encoding_format"),
            ));
        }
    };
    let dim = request.dimensions.unwrap_or(state.embedding_dim);
    if !(1..=MAX_DIMENSIONS).contains(&dim) {
        return Err(ApiError::bad_request(
            format!("'dimensions' must be within 1..={MAX_DIMENSIONS}"),
            Some("dimensions"),
        ));
    }

    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let vector = embedding(text, dim);
            let encoded = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                Value::String(STANDARD.encode(bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": encoded})
        })
        .collect();
    let prompt_tokens = inputs.iter().map(|text| count_tokens(text)).sum();
    let usage = Usage::new(prompt_tokens, 0);
    let mut response = Json(json!({
        "object": "list",
        "data": data,
        "model": request.model,
        "usage": {"prompt_tokens": usage.prompt_tokens, "total_tokens": usage.total_tokens},
    }))
    .into_response();
    response.extensions_mut().insert(usage);
    Ok(response)
}

/// The unit-length vector for `text`.
pub fn embedding(text: &str, dim: usize) -> Vec<f32> {
    let mut rng = fastrand::Rng::with_seed(fnv1a(text.as_bytes()));
    let raw: Vec<f32> = (0..dim).map(|_| rng.f32() * 2.0 - 1.0).collect();
    let norm = raw.iter().map(|x| x * x).sum::<f32>().sqrt();
    // A zero vector cannot be normalised; astronomically unlikely, but answer something valid.
    if norm == 0.0 {
        let mut unit = vec![0.0; dim];
        unit[0] = 1.0;
        return unit;
    }
    raw.into_iter().map(|x| x / norm).collect()
}

/// 64-bit FNV-1a: a stable hash, unlike `std`'s, which may change between releases.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_deterministic_and_unit_length() {
        let a = embedding("hello", 384);
        assert_eq!(a, embedding("hello", 384));
        assert_ne!(a, embedding("hello!", 384));
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
    }
}
