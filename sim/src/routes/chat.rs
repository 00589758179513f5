//! `POST /v1/chat/completions`, answered or streamed (server-sent events) in OpenAI's shape.
//!
//! The reply is a pure function of the request: `sim reply to: <first 60 chars of the last
//! user message>`, whitespace collapsed to single spaces, cut before the first `stop` string
//! (`finish_reason: "stop"`) and then to `max_completion_tokens` / `max_tokens` words
//! (`finish_reason: "length"`). One word is one completion token, and one streamed chunk.
//!
//! With a classification workload configured ([`crate::classify`]), a last user message
//! whose integers are one example's key is answered with a label instead: the content is the
//! label alone, one completion token (one streamed chunk), `finish_reason: "stop"`, with
//! `stop` and the token limits ignored. Any other prompt gets the reply above.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api_error::ApiError;
use crate::classify::Verdict;
use crate::routes::{body_bytes, check_model, parse_json, unix_now};
use crate::state::SimState;
use crate::usage::{Usage, count_tokens};

/// Characters of the last user message quoted in the reply.
const QUOTED_CHARS: usize = 60;

/// The request fields the simulator reads; others are accepted and ignored, as upstream does.
#[derive(Debug, Deserialize)]
struct ChatRequest {
    model: String,
    messages: Vec<Message>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    stop: Option<Stop>,
    #[serde(default)]
    stream: bool,
    stream_options: Option<StreamOptions>,
}

#[derive(Debug, Deserialize)]
struct Message {
    role: String,
    #[serde(default)]
    content: Value,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

/// The generated reply and why it ended.
#[derive(Debug, PartialEq)]
struct Reply {
    words: Vec<String>,
    finish_reason: &'static str,
}

/// Answers a chat completion.
pub async fn create(
    State(state): State<Arc<SimState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match body_bytes(body).and_then(|body| complete(&state, &body)) {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

fn complete(state: &Arc<SimState>, body: &[u8]) -> Result<Response, ApiError> {
    let request: ChatRequest = parse_json(body)?;
    check_model(state, &request.model)?;
    validate(&request)?;

    let reply = classify(state, &request).unwrap_or_else(|| generate(&request));
    let prompt_tokens = request
        .messages
        .iter()
        .map(|m| count_tokens(&message_text(&m.content)))
        .sum();
    let usage = Usage::new(prompt_tokens, reply.words.len() as u64);
    let id = format!("chatcmpl-{}", state.next_id());
    let created = unix_now();

    let mut response = if request.stream {
        let include_usage = request
            .stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage);
        let events = stream_events(
            &id,
            created,
            &request.model,
            &reply,
            include_usage.then_some(usage),
        );
        sse_response(events, state.token_delay(), StreamWatch::new(state))
    } else {
        Json(json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": request.model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": reply.words.join(" ")},
                "finish_reason": reply.finish_reason,
            }],
            "usage": usage,
        }))
        .into_response()
    };
    response.extensions_mut().insert(usage);
    Ok(response)
}

fn validate(request: &ChatRequest) -> Result<(), ApiError> {
    if request.messages.is_empty() {
        return Err(ApiError::bad_request(
            "'messages' must not be empty",
            Some("messages"),
        ));
    }
    if request
        .temperature
        .is_some_and(|t| !(0.0..=2.0).contains(&t))
    {
        return Err(ApiError::bad_request(
            "'temperature' must be between 0 and 2",
            Some("temperature"),
        ));
    }
    if request.top_p.is_some_and(|p| !(0.0..=1.0).contains(&p)) {
        return Err(ApiError::bad_request(
            "'top_p' must be between 0 and 1",
            Some("top_p"),
        ));
    }
    for (value, param) in [
        (request.max_tokens, "max_tokens"),
        (request.max_completion_tokens, "max_completion_tokens"),
    ] {
        if value == Some(0) {
            return Err(ApiError::bad_request(
                format!("'{param}' must be at least 1"),
                Some(param),
            ));
        }
    }
    Ok(())
}

/// The text of a message's `content`: a string, or the `text` parts of a parts array.
fn message_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// The text of the last `user` message, empty when there is none.
fn last_user_text(request: &ChatRequest) -> String {
    request
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .map(|m| message_text(&m.content))
        .unwrap_or_default()
}

/// The label answer when a workload is configured and the last user message carries one of
/// its examples, seeded by the scenario in force; counts the outcome either way.
fn classify(state: &SimState, request: &ChatRequest) -> Option<Reply> {
    let classifier = state.classifier.as_ref()?;
    let verdict = classifier.answer_prompt(state.seed(), &last_user_text(request));
    state.stats.classified(verdict.map(|v| v.correct));
    let Verdict { label, .. } = verdict?;
    Some(Reply {
        words: vec![label.to_owned()],
        finish_reason: "stop",
    })
}

fn generate(request: &ChatRequest) -> Reply {
    let last_user = last_user_text(request);
    let quoted: String = last_user.chars().take(QUOTED_CHARS).collect();
    let mut text = format!("sim reply to: {quoted}")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let mut finish_reason = "stop";

    let stops: Vec<&str> = match &request.stop {
        None => Vec::new(),
        Some(Stop::One(s)) => vec![s.as_str()],
        Some(Stop::Many(v)) => v.iter().map(String::as_str).collect(),
    };
    if let Some(cut) = stops
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s))
        .min()
    {
        text.truncate(cut);
    }

    let mut words: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
    let limit = request.max_completion_tokens.or(request.max_tokens);
    if let Some(limit) = limit.and_then(|l| usize::try_from(l).ok())
        && words.len() > limit
    {
        words.truncate(limit);
        finish_reason = "length";
    }
    Reply {
        words,
        finish_reason,
    }
}

/// One SSE event and whether the token delay precedes it.
type Event = (bool, String);

fn stream_events(
    id: &str,
    created: u64,
    model: &str,
    reply: &Reply,
    usage: Option<Usage>,
) -> VecDeque<Event> {
    let chunk = |delta: Value, finish_reason: Option<&str>| {
        json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        })
    };
    let mut events = VecDeque::new();
    events.push_back((false, chunk(json!({"role": "assistant"}), None).to_string()));
    let last = reply.words.len().saturating_sub(1);
    for (i, word) in reply.words.iter().enumerate() {
        // Trailing spaces on all but the last word: the deltas concatenate to the full reply.
        let piece = if i == last {
            word.clone()
        } else {
            format!("{word} ")
        };
        events.push_back((true, chunk(json!({"content": piece}), None).to_string()));
    }
    events.push_back((
        false,
        chunk(json!({}), Some(reply.finish_reason)).to_string(),
    ));
    if let Some(usage) = usage {
        let usage_chunk = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [],
            "usage": usage,
        });
        events.push_back((false, usage_chunk.to_string()));
    }
    events.push_back((false, "[DONE]".to_owned()));
    events
}

/// Counts how a stream ended: `completed` once its last event is sent, `cancelled` if the
/// body is dropped before that (the client closed the connection mid-stream).
struct StreamWatch {
    state: Arc<SimState>,
    finished: bool,
}

impl StreamWatch {
    fn new(state: &Arc<SimState>) -> Self {
        Self {
            state: state.clone(),
            finished: false,
        }
    }

    fn finish(&mut self) {
        if !self.finished {
            self.finished = true;
            self.state.stats.stream_ended(false);
        }
    }
}

impl Drop for StreamWatch {
    fn drop(&mut self) {
        if !self.finished {
            self.state.stats.stream_ended(true);
        }
    }
}

fn sse_response(events: VecDeque<Event>, token_delay: Duration, watch: StreamWatch) -> Response {
    let frames = stream::unfold((events, watch), move |(mut events, mut watch)| async move {
        let Some((delayed, data)) = events.pop_front() else {
            watch.finish();
            return None;
        };
        if delayed && !token_delay.is_zero() {
            tokio::time::sleep(token_delay).await;
        }
        let frame = Bytes::from(format!("data: {data}\n\n"));
        Some((
            Ok::<Bytes, std::convert::Infallible>(frame),
            (events, watch),
        ))
    });
    let mut response = (StatusCode::OK, Body::from_stream(frames)).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: Value) -> ChatRequest {
        serde_json::from_value(json).expect("a chat request")
    }

    #[test]
    fn quotes_the_last_user_message() {
        let reply = generate(&request(json!({
            "model": "m",
            "messages": [
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "ignored"},
                {"role": "user", "content": "hello   there\nworld"},
            ]
        })));
        assert_eq!(reply.words.join(" "), "sim reply to: hello there world");
        assert_eq!(reply.finish_reason, "stop");
    }

    #[test]
    fn max_tokens_truncates_words() {
        let reply = generate(&request(json!({
            "model": "m",
            "max_tokens": 4,
            "messages": [{"role": "user", "content": "one two three"}]
        })));
        assert_eq!(reply.words, ["sim", "reply", "to:", "one"]);
        assert_eq!(reply.finish_reason, "length");
    }

    #[test]
    fn stop_cuts_before_the_stop_string() {
        let reply = generate(&request(json!({
            "model": "m",
            "stop": ["two", "zzz"],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "one two three"}]}]
        })));
        assert_eq!(reply.words, ["sim", "reply", "to:", "one"]);
        assert_eq!(reply.finish_reason, "stop");
    }
}
