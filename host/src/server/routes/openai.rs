//! The OpenAI-compatible routes: `POST /v1/chat/completions` (with `stream: true` as
//! SSE), `POST /v1/embeddings` and `GET /v1/models`.
//!
//! Each model id a client may ask for is mapped by the config (`[[openai_model]]`) to a
//! pipeline, whose component decides how to serve it: locally, on serverless, or not at
//! all. The client's JSON goes to the component unchanged; its OpenAI-shaped answer comes
//! back unchanged, with the `x-hybrid-*` headers added.
//!
//! With `stream: true`, a component that streams (0.2 `reply.emit`, or 0.2.1
//! `reply.forward` as chat-router does) has each chunk relayed as a
//! `chat.completion.chunk` event the moment it emits or the host forwards it
//! ([`crate::server::stream`]): a role chunk first, then the deltas, then, with
//! `stream_options.include_usage`, a usage chunk summing the request's serverless calls
//! (with a `hybrid` block: route and cost in US dollars, since the `x-hybrid-*` headers
//! went out before they were known), then `[DONE]`; a failure after the first chunk ends the stream with an `{"error": ...}`
//! event. A component that answers whole (every 0.1 component) has its complete answer
//! re-emitted as such a stream, its first token arriving with the last.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::{hybrid_metadata, read_body, request_id};
use crate::config::OpenAiKind;
use crate::remote::ChatChunk;
use crate::runtime::{Outcome, Request};
use crate::server::AppState;
use crate::server::reply::{ApiError, hybrid_headers, json_with_headers};
use crate::server::stream::{self, EventFormat, Relay};

/// `POST /v1/chat/completions`.
pub async fn chat(State(state): State<Arc<AppState>>, request: axum::extract::Request) -> Response {
    serve(&state, OpenAiKind::Chat, request).await
}

/// `chat.completion.chunk` events for a streamed answer.
struct ChunkEvents {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
}

impl ChunkEvents {
    fn event(&self, choices: Value) -> Value {
        json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
               "model": self.model, "choices": choices})
    }
}

impl EventFormat for ChunkEvents {
    fn opening(&self) -> Vec<String> {
        vec![
            self.event(json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]))
                .to_string(),
        ]
    }

    fn chunk(&self, chunk: &ChatChunk) -> Option<String> {
        if chunk.delta.is_empty() && chunk.finish_reason.is_none() {
            return None;
        }
        let delta = if chunk.delta.is_empty() {
            json!({})
        } else {
            json!({"content": chunk.delta})
        };
        let choices = json!([{"index": 0, "delta": delta, "finish_reason": chunk.finish_reason}]);
        Some(self.event(choices).to_string())
    }

    fn closing(&self, _request: &Request, outcome: &Outcome) -> Vec<String> {
        let mut events = Vec::new();
        if self.include_usage {
            let (input, output) = outcome.remote_calls.iter().fold((0u64, 0u64), |(i, o), c| {
                (
                    i + u64::from(c.usage.input_tokens),
                    o + u64::from(c.usage.output_tokens),
                )
            });
            let mut last = self.event(json!([]));
            last["usage"] = json!({"prompt_tokens": input, "completion_tokens": output,
                                   "total_tokens": input + output});
            // The `x-hybrid-*` headers went out before the cost was known: say it here.
            last["hybrid"] = json!({
                "route": outcome.response.routing.route,
                "cost_usd": crate::envelope::cost_usd(outcome),
            });
            events.push(last.to_string());
        }
        events.push("[DONE]".to_owned());
        events
    }
}

/// `POST /v1/embeddings`.
pub async fn embeddings(
    State(state): State<Arc<AppState>>,
    request: axum::extract::Request,
) -> Response {
    serve(&state, OpenAiKind::Embeddings, request).await
}

/// `GET /v1/models`: the model ids the config maps to pipelines.
pub async fn models(State(state): State<Arc<AppState>>) -> Response {
    let data: Vec<Value> = state
        .openai_models
        .iter()
        .map(|m| json!({"id": m.id, "object": "model", "created": 0, "owned_by": "hybrid"}))
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

async fn serve(
    state: &Arc<AppState>,
    kind: OpenAiKind,
    request: axum::extract::Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let id = request_id(&parts.headers, || state.runtime.new_request_id());
    match prepare(state, kind, &parts.headers, body, &id).await {
        Ok((pipeline, request, stream, model)) => {
            let finished = match stream {
                Some(include_usage) => {
                    let events = ChunkEvents {
                        id: format!("chatcmpl-{id}"),
                        model,
                        created: unix_now(),
                        include_usage,
                    };
                    match stream::relay(state.clone(), pipeline.clone(), request, events).await {
                        Relay::Streamed(response) => return response,
                        Relay::Whole(finished) => *finished,
                    }
                }
                None => state.execute(&pipeline, request).await,
            };
            answer(state, &pipeline, &id, stream, finished)
        }
        Err(error) => error.request_id(&id).into_response(),
    }
}

/// A whole answer: the component's JSON (as an SSE stream when asked), or the error.
fn answer(
    state: &AppState,
    pipeline: &str,
    id: &str,
    stream: Option<bool>,
    finished: stream::Finished,
) -> Response {
    match finished {
        Ok((request, outcome)) => {
            let headers = hybrid_headers(&request, &outcome);
            let Some(body) = stamp_created(&outcome.response.body, unix_now()) else {
                return ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "server_error",
                    format!("pipeline {pipeline:?} answered with a body that is not JSON"),
                )
                .request_id(id)
                .into_response();
            };
            let response = match stream {
                Some(include_usage) => sse(headers, &body, include_usage),
                None => json_with_headers(headers, body),
            };
            state.shadow(pipeline, &request, &outcome);
            response
        }
        Err(refusal) => ApiError::from_refusal(state, refusal, id).into_response(),
    }
}

/// The component's JSON answer with a top-level `"created": 0` replaced by `now`
/// (guests have no wall clock), or `None` when the body is not JSON. Only the top level
/// is parsed: the values under it go out as the component wrote them, as raw text, not
/// rebuilt from a parsed tree (that parse and re-serialisation was about a quarter of
/// the host's CPU per proxied chat request, measured with `perf` under bench/serve part
/// f). Keys come out sorted, as they did from `serde_json::Value`.
fn stamp_created(body: &[u8], now: u64) -> Option<Vec<u8>> {
    let Ok(mut top) = serde_json::from_slice::<BTreeMap<&str, &RawValue>>(body) else {
        // Not an object, or keys with escapes (rare): the slower parse decides.
        let mut answer: Value = serde_json::from_slice(body).ok()?;
        if answer.get("created").and_then(Value::as_u64) == Some(0) {
            answer["created"] = json!(now);
        }
        return Some(answer.to_string().into_bytes());
    };
    let stamp = now.to_string();
    let stamp = RawValue::from_string(stamp).ok()?;
    if top.get("created").is_some_and(|c| c.get() == "0") {
        top.insert("created", &stamp);
    }
    serde_json::to_vec(&top).ok()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Validates the client's JSON just enough to route it: which pipeline, whether to
/// stream (`Some(include_usage)`), and the model id the client asked for.
async fn prepare(
    state: &AppState,
    kind: OpenAiKind,
    headers: &axum::http::HeaderMap,
    body: Body,
    id: &str,
) -> Result<(String, Request, Option<bool>, String), ApiError> {
    // Read first, so the refusals below reach a client that is still sending.
    let body = read_body(headers, body, state.max_body_bytes).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case("application/json")
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request_error",
            format!("content type {content_type:?} is not supported; send application/json"),
        ));
    }
    let json: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            format!("could not parse the JSON body of your request: {e}"),
        )
    })?;
    let Some(model) = json.get("model").and_then(Value::as_str) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "you must provide a model parameter",
        )
        .param("model"));
    };
    let Some(mapped) = state
        .openai_models
        .iter()
        .find(|m| m.id == model && m.kind == kind)
    else {
        let known: Vec<&str> = state
            .openai_models
            .iter()
            .filter(|m| m.kind == kind)
            .map(|m| m.id.as_str())
            .collect();
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!(
                "The model `{model}` does not exist; this server offers: [{}]",
                known.join(", ")
            ),
        )
        .param("model")
        .code("model_not_found"));
    };
    let stream = (kind == OpenAiKind::Chat
        && json.get("stream").and_then(Value::as_bool) == Some(true))
    .then(|| {
        json.pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            == Some(true)
    });
    let mut metadata = hybrid_metadata(headers);
    metadata.push((
        "openai_route".into(),
        match kind {
            OpenAiKind::Chat => "chat".into(),
            OpenAiKind::Embeddings => "embeddings".into(),
        },
    ));
    let request = Request {
        id: id.to_owned(),
        content_type: "application/json".into(),
        body: body.to_vec(),
        metadata,
    };
    Ok((mapped.pipeline.clone(), request, stream, model.to_owned()))
}

/// Re-emits a complete `chat.completion` as the `chat.completion.chunk` SSE stream
/// OpenAI clients expect: a role chunk, content chunks word by word, a finish chunk, an
/// optional usage chunk, then `[DONE]`.
fn sse(headers: axum::http::HeaderMap, body: &[u8], include_usage: bool) -> Response {
    let completion: Value = serde_json::from_slice(body).unwrap_or_default();
    let id = completion
        .get("id")
        .cloned()
        .unwrap_or_else(|| json!("chatcmpl-hybrid"));
    let created = completion
        .get("created")
        .cloned()
        .unwrap_or_else(|| json!(0));
    let model = completion
        .get("model")
        .cloned()
        .unwrap_or_else(|| json!(""));
    let choice = completion
        .pointer("/choices/0")
        .cloned()
        .unwrap_or_default();
    let content = choice
        .pointer("/message/content")
        .and_then(Value::as_str)
        .unwrap_or("");
    let finish = choice
        .get("finish_reason")
        .cloned()
        .unwrap_or_else(|| json!("stop"));
    let chunk = |choices: Value| json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model, "choices": choices});
    let mut events = vec![chunk(
        json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]),
    )];
    for piece in content.split_inclusive(' ') {
        events.push(chunk(
            json!([{"index": 0, "delta": {"content": piece}, "finish_reason": null}]),
        ));
    }
    events.push(chunk(
        json!([{"index": 0, "delta": {}, "finish_reason": finish}]),
    ));
    if include_usage {
        let mut last = chunk(json!([]));
        last["usage"] = completion.get("usage").cloned().unwrap_or_default();
        events.push(last);
    }
    let mut text = String::new();
    for event in events {
        text.push_str("data: ");
        text.push_str(&event.to_string());
        text.push_str("\n\n");
    }
    text.push_str("data: [DONE]\n\n");
    let mut response = Response::new(Body::from(text));
    *response.headers_mut() = headers;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamped(body: &str) -> Option<String> {
        stamp_created(body.as_bytes(), 1_764_633_600).map(|b| String::from_utf8(b).expect("utf-8"))
    }

    #[test]
    fn created_zero_is_stamped_and_the_rest_is_kept_as_written() {
        let body = r#"{"id":"chatcmpl-1","created":0,"choices":[{"message":{"role":"assistant","content":"a \"quoted\" caf\u00e9"}}],"usage":{"total_tokens":3}}"#;
        assert_eq!(
            stamped(body).expect("JSON"),
            r#"{"choices":[{"message":{"role":"assistant","content":"a \"quoted\" caf\u00e9"}}],"created":1764633600,"id":"chatcmpl-1","usage":{"total_tokens":3}}"#
        );
    }

    #[test]
    fn a_created_time_the_component_set_is_left_alone() {
        let out = stamped(r#"{"created": 17, "nested": {"created": 0}}"#).expect("JSON");
        assert_eq!(out, r#"{"created":17,"nested":{"created": 0}}"#);
        let out = stamped(r#"{"created":"0"}"#).expect("JSON");
        assert_eq!(out, r#"{"created":"0"}"#);
    }

    #[test]
    fn other_json_passes_and_non_json_is_refused() {
        assert_eq!(stamped("[1, 2]").expect("JSON"), "[1,2]");
        assert_eq!(
            stamped(r#"{"cre\u0061ted":0}"#).expect("JSON"),
            r#"{"created":1764633600}"#
        );
        assert!(stamped("{\"created\":0").is_none());
        assert!(stamped("not json").is_none());
        assert!(stamped("").is_none());
    }
}
