//! `POST /v1/pipelines/{name}`: any pipeline, any body. The body and its content type go
//! to the pipeline's component; `x-hybrid-*` headers and query parameters become its
//! metadata; the answer is the JSON envelope (result, routing record, calls, timings).
//! Once the answer is built, a pipeline with `shadow` may serve the request again in the
//! background ([`crate::shadow`]); the answer never waits for it.
//!
//! A client that accepts `text/event-stream` gets the chunks a 0.2 component emits as
//! they come ([`crate::server::stream`]): one event per chunk, `{"delta": text,
//! "finish_reason": reason-or-null}`, then the envelope as the last event, then `[DONE]`
//! (or an `{"error": ...}` event if the request failed after its first chunk). A component
//! that answers whole is answered with the envelope as usual.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{hybrid_metadata, read_body, request_id};
use crate::envelope;
use crate::remote::ChatChunk;
use crate::runtime::{Outcome, Request};
use crate::server::AppState;
use crate::server::reply::{ApiError, hybrid_headers, json_with_headers};
use crate::server::stream::{self, EventFormat, Relay};

/// Events of a streamed pipeline answer.
struct DeltaEvents {
    pipeline: String,
}

impl EventFormat for DeltaEvents {
    fn opening(&self) -> Vec<String> {
        Vec::new()
    }

    fn chunk(&self, chunk: &ChatChunk) -> Option<String> {
        if chunk.delta.is_empty() && chunk.finish_reason.is_none() {
            return None;
        }
        Some(
            serde_json::json!({"delta": chunk.delta, "finish_reason": chunk.finish_reason})
                .to_string(),
        )
    }

    fn closing(&self, request: &Request, outcome: &Outcome) -> Vec<String> {
        vec![
            envelope::to_json(&self.pipeline, request, outcome).to_string(),
            "[DONE]".to_owned(),
        ]
    }
}

/// Serves one request on the named pipeline.
pub async fn handle(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
    request: axum::extract::Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let id = request_id(&parts.headers, || state.runtime.new_request_id());
    // Read first: a refusal sent while the client is still sending reaches it as a
    // reset connection, not as the reason.
    let body = match read_body(&parts.headers, body, state.max_body_bytes).await {
        Ok(body) => body,
        Err(e) => return e.request_id(&id).into_response(),
    };
    if let Err(e) = state.runtime.pipeline(&name) {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            e.to_string(),
        )
        .code("pipeline_not_found")
        .request_id(&id)
        .into_response();
    }
    let Ok(Query(query)) = query else {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "malformed query string",
        )
        .request_id(&id)
        .into_response();
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut metadata = hybrid_metadata(&parts.headers);
    metadata.extend(query.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)));
    let request = Request {
        id: id.clone(),
        content_type,
        body: body.to_vec(),
        metadata,
    };
    let wants_stream = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    let finished = if wants_stream {
        let events = DeltaEvents {
            pipeline: name.clone(),
        };
        match stream::relay(state.clone(), name.clone(), request, events).await {
            Relay::Streamed(response) => return response,
            Relay::Whole(finished) => *finished,
        }
    } else {
        state.execute(&name, request).await
    };
    match finished {
        Ok((request, outcome)) => {
            let envelope = envelope::to_json(&name, &request, &outcome);
            let response = json_with_headers(
                hybrid_headers(&request, &outcome),
                envelope.to_string().into_bytes(),
            );
            state.shadow(&name, &request, &outcome);
            response
        }
        Err(refusal) => ApiError::from_refusal(&state, refusal, &id).into_response(),
    }
}
