//! `POST /v1/audio/transcriptions`: multipart upload of `file` and `model` (plus optional
//! `language`, `prompt`, `temperature`, `response_format`), answered with a deterministic
//! transcript that says how much audio arrived: the duration for a WAV, else the byte count.
//! `usage.seconds` bills whole seconds, rounded up, as OpenAI reports duration usage.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::api_error::ApiError;
use crate::routes::check_model;
use crate::state::SimState;
use crate::wav;

/// Bytes per second assumed for audio that is not WAV (128 kbit/s, a typical compressed rate).
const ASSUMED_COMPRESSED_BYTES_PER_SECOND: f64 = 16_000.0;

/// What the form carried.
#[derive(Debug, Default)]
struct Upload {
    file: Option<Bytes>,
    model: Option<String>,
    response_format: Option<String>,
}

/// Answers a transcription request.
pub async fn create(
    State(state): State<Arc<SimState>>,
    form: Result<Multipart, MultipartRejection>,
) -> Response {
    match transcribe(&state, form).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn transcribe(
    state: &SimState,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let mut form = form.map_err(|e| {
        ApiError::bad_request(format!("expected a multipart/form-data body: {e}"), None)
    })?;
    let upload = read_upload(&mut form).await?;
    let model = upload
        .model
        .ok_or_else(|| ApiError::bad_request("'model' is a required field", Some("model")))?;
    check_model(state, &model)?;
    let file = upload
        .file
        .ok_or_else(|| ApiError::bad_request("'file' is a required field", Some("file")))?;

    let (text, seconds) = match wav::duration_seconds(&file) {
        Some(seconds) => (
            format!("sim transcript of {seconds:.2} s of audio"),
            seconds,
        ),
        None => (
            format!("sim transcript of {} bytes", file.len()),
            file.len() as f64 / ASSUMED_COMPRESSED_BYTES_PER_SECOND,
        ),
    };
    let billed_seconds = seconds.ceil() as u64;
    match upload.response_format.as_deref() {
        None | Some("json") => Ok(Json(json!({
            "text": text,
            "usage": {"type": "duration", "seconds": billed_seconds},
        }))
        .into_response()),
        Some("text") => {
            let mut response = (StatusCode::OK, text).into_response();
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            Ok(response)
        }
        Some(_) => Err(ApiError::bad_request(
            "'response_format' must be \"json\" or \"text\"",
            Some("response_format"),
        )),
    }
}

async fn read_upload(form: &mut Multipart) -> Result<Upload, ApiError> {
    let unreadable = |e: axum::extract::multipart::MultipartError| {
        ApiError::bad_request(format!("reading the form: {e}"), None)
    };
    let mut upload = Upload::default();
    while let Some(field) = form.next_field().await.map_err(unreadable)? {
        match field.name().unwrap_or_default() {
            "file" => upload.file = Some(field.bytes().await.map_err(unreadable)?),
            "model" => upload.model = Some(field.text().await.map_err(unreadable)?),
            "response_format" => {
                upload.response_format = Some(field.text().await.map_err(unreadable)?)
            }
            // language, prompt, temperature and anything else: accepted, no effect.
            _ => {
                field.bytes().await.map_err(unreadable)?;
            }
        }
    }
    Ok(upload)
}
