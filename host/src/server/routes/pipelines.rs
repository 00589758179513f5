//! `POST /v1/pipelines/{name}`: any pipeline, any body. The body and its content type go
//! to the pipeline's component; `x-hybrid-*` headers and query parameters become its
//! metadata; the answer is the JSON envelope (result, routing record, calls, timings).
//! Once the answer is built, a pipeline with `shadow` may serve the request again in the
//! background ([`crate::shadow`]); the answer never waits for it.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{hybrid_metadata, read_body, request_id};
use crate::envelope;
use crate::runtime::Request;
use crate::server::AppState;
use crate::server::reply::{ApiError, hybrid_headers, json_with_headers};

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
    match state.execute(&name, request).await {
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
