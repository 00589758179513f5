//! One chat-completions request, from body to answer; the order of the steps.
//!
//! Steps: parse and validate the request ([`request`]); read the options from metadata
//! ([`metadata`]); then for each endpoint in order (the endpoint, then the operator's
//! fallbacks): decide from the signals whether calling it makes sense now ([`policy`]),
//! make the call ([`call`]) and, if it fails in a way another endpoint may not, go on to
//! the next. Without `stream`, the OpenAI body is built whole ([`response`]); with it, the
//! stream is opened (which returns once its first chunk is in, so falling back is still
//! invisible to the client), then handed to the host to relay as it is (`forward`, the
//! default: this policy changes nothing in the text) or, with the operator's setting
//! `relay = "emit"`, read and emitted chunk by chunk; a failure after that ends the
//! client's stream with an error event. A client that goes away stops the relay and the
//! stream is closed, which closes the connection upstream.
//!
//! Every request that reaches this module gets one info log line: sizes, the decision and
//! the call's accounting, or the stage that refused it and the error case; never message
//! content, and never the provider's error text (it may quote the request).

use hybrid_guest::response::{JSON, remote_route};
use hybrid_guest::stream::{ChatChunk, ChatChunks};
use hybrid_guest::{Answer, Error, Host, Request, Response, Routing};

use crate::call;
use crate::metadata::{self, Relay};
use crate::policy::{self, Refusal};
use crate::request::{self, ChatRequest};
use crate::response;

/// Characters per token in the rough input-size estimate logged (OpenAI's rule of thumb).
const CHARS_PER_TOKEN: usize = 4;

/// Handles one request: the OpenAI response (`application/json`), or the emitted chunks,
/// and the routing record, `remote:<endpoint>` with the endpoint's health as the reason
/// (e.g. `no local chat model; endpoint chat healthy (error rate 0%)`, plus the endpoints
/// fallen back from) and the model the provider reported.
pub fn handle<H: Host>(host: &mut H, request: &Request) -> Result<Answer, Error> {
    let mut sizes = format!("{} body bytes", request.body.len());
    let result = route(host, request, &mut sizes);
    let outcome = match &result {
        Ok((_, note)) | Err((_, note)) => note,
    };
    host.log_info(&format!("chat-router {}: {sizes}; {outcome}", request.id));
    result.map(|(answer, _)| answer).map_err(|(error, _)| error)
}

/// An answer or an error, with the log line's outcome note.
type Routed = Result<(Answer, String), (Error, String)>;

/// The steps; each result carries the log line's outcome note. `sizes` grows as the
/// request is understood.
fn route<H: Host>(host: &mut H, request: &Request, sizes: &mut String) -> Routed {
    let refused = |stage: &str| {
        let stage = stage.to_owned();
        move |e: Error| {
            let note = format!("refused: {stage} ({})", e.case());
            (e, note)
        }
    };
    let chat =
        request::parse(&request.content_type, &request.body).map_err(refused("invalid request"))?;
    let chars = chat.content_chars();
    sizes.push_str(&format!(
        ", {} messages, {chars} chars (~{} input tokens){}",
        chat.messages.len(),
        chars.div_ceil(CHARS_PER_TOKEN),
        if chat.stream { ", streamed" } else { "" }
    ));
    let options = metadata::parse(&request.metadata).map_err(refused("invalid metadata"))?;
    let mut tried: Vec<String> = Vec::new();
    let mut last: Option<(Error, String)> = None;
    for endpoint in options.endpoints() {
        let reason = match policy::decide(host, endpoint) {
            Ok(reason) => reason,
            Err((refusal, e)) => {
                let why = match &refusal {
                    Refusal::CircuitOpen => format!("circuit of {endpoint} open"),
                    Refusal::BudgetSpent(window) => format!("per-{window} budget spent"),
                };
                let note = format!("not called: {why} ({})", e.case());
                if refusal == Refusal::CircuitOpen {
                    tried.push(format!("{endpoint} (circuit open)"));
                    last = Some((e, note));
                    continue;
                }
                return Err((e, note));
            }
        };
        let reason = if tried.is_empty() {
            reason
        } else {
            format!("{reason}; fell back from {}", tried.join(", "))
        };
        let route = remote_route(endpoint);
        let failed = if chat.stream {
            match call::stream(host, endpoint, &chat, options.pass_model) {
                Ok(stream) if options.relay == Relay::Emit => {
                    return relay(host, stream, &route, endpoint, reason);
                }
                Ok(stream) => return forward(host, stream, &route, endpoint, reason),
                Err(failure) => failure,
            }
        } else {
            match call::chat(host, endpoint, &chat, options.pass_model) {
                Ok(result) => {
                    return Ok(complete(request, &chat, &route, endpoint, reason, &result));
                }
                Err(failure) => failure,
            }
        };
        let case = failed.error.case();
        let falls_back = call::falls_back(&failed.error);
        let mapped = call::to_error(endpoint, failed.error, failed.call.retry_after_ms);
        let note = format!("{route} failed: {case} ({})", mapped.case());
        if !falls_back {
            return Err((mapped, note));
        }
        tried.push(format!("{endpoint} ({case})"));
        last = Some((mapped, note));
    }
    Err(last.unwrap_or_else(|| {
        (
            Error::internal("no serverless endpoint to call"),
            "refused: no endpoint".to_owned(),
        )
    }))
}

/// The whole OpenAI answer of a finished call.
fn complete(
    request: &Request,
    chat: &ChatRequest,
    route: &str,
    endpoint: &str,
    reason: String,
    result: &hybrid_guest::remote::ChatResult,
) -> (Answer, String) {
    let body = response::body(&request.id, &chat.model, route, result);
    let c = &result.call;
    let note = format!(
        "{route} ({}): {} attempts, {} ms, {} + {} tokens, {} micro-USD, {} response bytes",
        c.model,
        c.attempts,
        c.latency_ms,
        c.usage.input_tokens,
        c.usage.output_tokens,
        c.cost_micro_usd,
        body.len()
    );
    let routing = Routing::remote(endpoint, reason, &result.call.model);
    (Answer::Complete(Response::new(JSON, body, routing)), note)
}

/// Hands `stream` to the host, which relays it to the client as it is, until its end, an
/// error, or the client going away.
fn forward<H: Host>(
    host: &mut H,
    stream: H::Stream,
    route: &str,
    endpoint: &str,
    reason: String,
) -> Routed {
    let model = stream.call().model;
    match host.forward(stream) {
        Ok(s) => {
            let c = &s.call;
            let note = format!(
                "{route} ({}) forwarded: {} chunks, {} bytes, {} attempts, {} ms, {} + {} \
                 tokens, {} micro-USD",
                c.model,
                s.chunks,
                s.text_bytes,
                c.attempts,
                c.latency_ms,
                c.usage.input_tokens,
                c.usage.output_tokens,
                c.cost_micro_usd
            );
            let routing = Routing::remote(endpoint, reason, &c.model);
            Ok((Answer::Emitted(routing), note))
        }
        // The client went away (an empty chunk, which sends nothing, is refused): nobody
        // to tell, and the host has closed the stream.
        Err(_) if !host.emit(&nothing()) => {
            let note = format!("{route} forwarded: client went away");
            Ok((
                Answer::Emitted(Routing::remote(endpoint, reason, &model)),
                note,
            ))
        }
        Err(failed) => {
            let case = failed.error.case();
            let mapped = call::to_error(endpoint, failed.error, failed.call.retry_after_ms);
            let note = format!("{route} forward failed: {case} ({})", mapped.case());
            Err((mapped, note))
        }
    }
}

/// A chunk with no text, finish reason or usage: the host sends nothing for it, so
/// emitting it only asks whether the client is still there.
fn nothing() -> ChatChunk {
    ChatChunk {
        delta: String::new(),
        finish_reason: None,
        usage: None,
    }
}

/// Emits each chunk of `stream` as it arrives, until its end, an error, or the client
/// going away.
fn relay<H: Host>(
    host: &mut H,
    mut stream: H::Stream,
    route: &str,
    endpoint: &str,
    reason: String,
) -> Routed {
    let mut chunks = 0u32;
    let mut chars = 0usize;
    loop {
        match stream.next_chunk() {
            Ok(Some(chunk)) => {
                chars += chunk.delta.chars().count();
                chunks += 1;
                if !host.emit(&chunk) {
                    let call = stream.call();
                    // Dropping the stream closes the connection: the provider stops.
                    drop(stream);
                    let note = format!("{route} streamed: client went away after {chunks} chunks");
                    let routing = Routing::remote(endpoint, reason, &call.model);
                    return Ok((Answer::Emitted(routing), note));
                }
            }
            Ok(None) => break,
            Err(failed) => {
                let case = failed.error.case();
                let mapped = call::to_error(endpoint, failed.error, failed.call.retry_after_ms);
                let note = format!(
                    "{route} stream failed after {chunks} chunks: {case} ({})",
                    mapped.case()
                );
                return Err((mapped, note));
            }
        }
    }
    let c = stream.call();
    let note = format!(
        "{route} ({}) streamed: {chunks} chunks, {chars} chars, {} attempts, {} ms, {} + {} \
         tokens, {} micro-USD",
        c.model,
        c.attempts,
        c.latency_ms,
        c.usage.input_tokens,
        c.usage.output_tokens,
        c.cost_micro_usd
    );
    Ok((
        Answer::Emitted(Routing::remote(endpoint, reason, &c.model)),
        note,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{self, FakeHost};
    use hybrid_guest::remote::RemoteError;
    use hybrid_guest::signals::CircuitState;

    const BODY: &str = r#"{"model": "house-llm", "temperature": 0.3,
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "secret plans"}]}"#;

    fn call(host: &mut FakeHost, body: &str, metadata: &[(&str, &str)]) -> Result<Response, Error> {
        match answer(host, body, metadata)? {
            Answer::Complete(response) => Ok(response),
            Answer::Emitted(_) => panic!("streamed without stream: true"),
        }
    }

    fn answer(host: &mut FakeHost, body: &str, metadata: &[(&str, &str)]) -> Result<Answer, Error> {
        let request = Request::new("r1", "application/json", body).with_metadata_pairs(metadata);
        handle(host, &request)
    }

    const STREAMED: &str = r#"{"model": "house-llm", "stream": true,
        "messages": [{"role": "user", "content": "secret plans"}]}"#;

    fn record() -> hybrid_guest::remote::CallRecord {
        hybrid_guest::remote::CallRecord {
            model: "provider-llama-70b".into(),
            ..Default::default()
        }
    }

    const EMIT: (&str, &str) = ("setting.relay", "emit");

    #[test]
    fn a_streamed_request_is_forwarded_as_it_is() {
        let mut host = fake::host();
        host.on_stream_chat = fake::stream(&["Hello ", "from ", "the edge"], record());
        let Answer::Emitted(routing) = answer(&mut host, STREAMED, &[]).expect("served") else {
            panic!("answered whole");
        };
        assert_eq!(routing.route, "remote:chat");
        assert_eq!(routing.model, "provider-llama-70b");
        assert_eq!(host.forwards, 1, "the host relays it");
        let text: String = host.emitted.iter().map(|c| c.delta.as_str()).collect();
        assert_eq!(text, "Hello from the edge");
        assert!(
            host.logs[0].contains("forwarded: 3 chunks, 19 bytes"),
            "{}",
            host.logs[0]
        );
    }

    #[test]
    fn a_forward_that_breaks_off_ends_with_its_error_and_a_client_gone_quietly() {
        let mut host = fake::host();
        host.on_stream_chat = Box::new(|call: &fake::ChatCall| {
            let mut stream = fake::stream(&["partial", "more"], record())(call)?;
            stream.chunks.truncate(1);
            stream
                .chunks
                .push_back(Err(hybrid_guest::stream::Failure::new(
                    "chat",
                    RemoteError::Timeout("stopped sending".into()),
                )));
            Ok(stream)
        });
        let e = answer(&mut host, STREAMED, &[("setting.fallback", "backup")]).expect_err("failed");
        assert_eq!(e.case(), "timeout");
        assert_eq!(
            host.stream_chats.len(),
            1,
            "no fallback after the first chunk"
        );
        let mut host = fake::host();
        host.on_stream_chat = fake::stream(&["a ", "b ", "c"], record());
        host.client_listens_for = 1;
        let answered = answer(&mut host, STREAMED, &[]).expect("ended quietly");
        assert!(matches!(answered, Answer::Emitted(_)));
        assert!(
            host.logs[0].contains("forwarded: client went away"),
            "{}",
            host.logs[0]
        );
    }

    #[test]
    fn a_streamed_request_emits_each_chunk_as_it_arrives() {
        let mut host = fake::host();
        host.on_stream_chat = fake::stream(&["Hello ", "from ", "the edge"], record());
        let Answer::Emitted(routing) = answer(&mut host, STREAMED, &[EMIT]).expect("served") else {
            panic!("answered whole");
        };
        assert_eq!(host.forwards, 0, "read and emitted here");
        assert_eq!(routing.route, "remote:chat");
        assert_eq!(routing.model, "provider-llama-70b");
        let text: String = host.emitted.iter().map(|c| c.delta.as_str()).collect();
        assert_eq!(text, "Hello from the edge");
        assert_eq!(host.emitted[2].finish_reason.as_deref(), Some("stop"));
        assert!(host.chats.is_empty(), "no whole call");
        assert!(
            host.logs[0].contains("streamed: 4 chunks"),
            "{}",
            host.logs[0]
        );
    }

    #[test]
    fn a_stream_that_fails_before_its_first_chunk_falls_back() {
        let mut host = fake::host();
        host.on_stream_chat = Box::new(|call: &fake::ChatCall| {
            if call.endpoint == "chat" {
                Err(hybrid_guest::stream::Failure::new(
                    "chat",
                    RemoteError::Unavailable("answered 503 after 3 attempts".into()),
                ))
            } else {
                fake::stream(&["backup"], record())(call)
            }
        });
        let Answer::Emitted(routing) =
            answer(&mut host, STREAMED, &[("setting.fallback", "backup")]).expect("served")
        else {
            panic!("answered whole");
        };
        assert_eq!(routing.route, "remote:backup");
        assert!(
            routing
                .reason
                .ends_with("fell back from chat (unavailable)"),
            "{}",
            routing.reason
        );
        assert_eq!(host.stream_chats.len(), 2);
        assert_eq!(host.emitted[0].delta, "backup");
    }

    #[test]
    fn a_failure_after_the_first_chunk_ends_the_stream_with_its_error() {
        let mut host = fake::host();
        host.on_stream_chat = Box::new(|call: &fake::ChatCall| {
            let mut stream = fake::stream(&["partial"], record())(call)?;
            stream.chunks.truncate(1);
            stream
                .chunks
                .push_back(Err(hybrid_guest::stream::Failure::new(
                    "chat",
                    RemoteError::Timeout("stopped sending".into()),
                )));
            Ok(stream)
        });
        let e = answer(&mut host, STREAMED, &[("setting.fallback", "backup"), EMIT])
            .expect_err("failed");
        assert_eq!(e.case(), "timeout");
        assert_eq!(
            host.stream_chats.len(),
            1,
            "no fallback after the first chunk"
        );
        assert_eq!(host.emitted.len(), 1);
    }

    #[test]
    fn a_client_that_goes_away_stops_the_relay() {
        let mut host = fake::host();
        host.on_stream_chat = fake::stream(&["a ", "b ", "c ", "d"], record());
        host.client_listens_for = 1;
        let answered = answer(&mut host, STREAMED, &[EMIT]).expect("ended quietly");
        assert!(matches!(answered, Answer::Emitted(_)));
        assert_eq!(host.emitted.len(), 2, "stopped at the first refused emit");
        assert!(
            host.logs[0].contains("client went away"),
            "{}",
            host.logs[0]
        );
    }

    #[test]
    fn rate_limits_and_timeouts_reach_the_client_as_such() {
        let mut host = fake::host();
        host.on_chat = fake::fail(RemoteError::RateLimited(Some(1200)));
        let e = call(&mut host, BODY, &[]).expect_err("limited");
        assert_eq!(
            e,
            Error::RateLimited {
                message: "serverless endpoint \"chat\" is rate limited by the provider; retry after 1200 ms".into(),
                retry_after_ms: Some(1200)
            }
        );
        host.on_chat = fake::fail(RemoteError::Timeout("slow".into()));
        assert_eq!(
            call(&mut host, BODY, &[]).expect_err("slow").case(),
            "timeout"
        );
    }

    #[test]
    fn a_valid_request_is_answered_by_the_endpoint() {
        let mut host = fake::host();
        let answer = call(&mut host, BODY, &[]).expect("served");
        assert_eq!(answer.routing.route, "remote:chat");
        assert_eq!(
            answer.routing.reason,
            "no local chat model; endpoint chat healthy (error rate 0%)"
        );
        assert_eq!(answer.routing.model, "provider-llama-70b");
        assert_eq!(
            answer.routing.model_version, "",
            "providers report no version"
        );
        assert_eq!(answer.content_type, "application/json");
        let v: serde_json::Value = serde_json::from_slice(&answer.body).expect("JSON");
        assert_eq!(v["model"], "house-llm");
        assert_eq!(v["id"], "chatcmpl-r1");
        assert_eq!(
            v["choices"][0]["message"]["content"],
            "fake reply to: secret plans"
        );
        assert_eq!(v["usage"]["total_tokens"], 17);
        assert_eq!(v["hybrid"]["provider_model"], "provider-llama-70b");
        let fake::ChatCall {
            endpoint,
            messages,
            params,
        } = &host.chats[0];
        assert_eq!((endpoint.as_str(), messages.len()), ("chat", 2));
        assert_eq!(
            (params.temperature, params.model.as_deref()),
            (Some(0.3), None)
        );
        assert_eq!(host.logs.len(), 1);
        let log = &host.logs[0];
        assert!(
            log.starts_with("chat-router r1: ")
                && log.contains("2 messages, 20 chars (~5 input tokens)")
                && log.contains("remote:chat (provider-llama-70b): 1 attempts, 42 ms, 12 + 5 tokens, 11 micro-USD"),
            "{log}"
        );
        assert!(!log.contains("secret"), "the log line carries no content");
    }

    #[test]
    fn metadata_picks_the_endpoint_and_passes_the_model() {
        let mut host = fake::host();
        let answer = call(
            &mut host,
            BODY,
            &[("endpoint", "big"), ("pass_model", "true")],
        )
        .expect("served");
        assert_eq!(answer.routing.route, "remote:big");
        assert_eq!(host.chats[0].endpoint, "big");
        assert_eq!(host.chats[0].params.model.as_deref(), Some("house-llm"));
    }

    #[test]
    fn invalid_requests_and_metadata_never_reach_the_endpoint() {
        let mut host = fake::host();
        let e = call(&mut host, r#"{"model": "m", "messages": []}"#, &[]).expect_err("empty");
        assert!(matches!(e, Error::BadRequest(_)));
        let e = call(&mut host, BODY, &[("pass_model", "yes please")]).expect_err("flag");
        assert!(matches!(e, Error::BadRequest(_)));
        assert!(host.chats.is_empty());
        assert_eq!(host.logs.len(), 2);
        assert!(
            host.logs[0].ends_with("refused: invalid request (bad-request)"),
            "{}",
            host.logs[0]
        );
        assert!(
            host.logs[1].ends_with("refused: invalid metadata (bad-request)"),
            "{}",
            host.logs[1]
        );
    }

    #[test]
    fn an_open_circuit_or_a_spent_budget_fails_fast() {
        let mut host = fake::host();
        host.endpoints[0].circuit = CircuitState::Open;
        let e = call(&mut host, BODY, &[]).expect_err("open");
        assert!(
            matches!(&e, Error::Unavailable { message, .. } if message.contains("circuit open"))
        );
        let mut host = fake::host();
        host.spend[2].budget_micro_usd = Some(0);
        let e = call(&mut host, BODY, &[]).expect_err("spent");
        assert!(
            matches!(&e, Error::Unavailable { message, .. } if message.contains("per-day") && message.contains("budget"))
        );
        assert!(host.chats.is_empty());
        assert!(
            host.logs[0].ends_with("not called: per-day budget spent (unavailable)"),
            "{}",
            host.logs[0]
        );
    }

    #[test]
    fn a_whole_call_refused_by_the_host_keeps_its_records_wait() {
        // The signals said closed, but the host's breaker refused (it opened meanwhile):
        // the failure record's wait makes it a 503 with Retry-After, not a bad upstream.
        let mut host = fake::host();
        host.on_chat = fake::fail(RemoteError::Unavailable("circuit open".into()));
        let mut record =
            hybrid_guest::stream::Failure::new("chat", RemoteError::Timeout(String::new())).call;
        record.retry_after_ms = Some(7_000);
        host.failure_record = Some(record);
        let e = call(&mut host, BODY, &[]).expect_err("refused");
        assert!(
            matches!(
                e,
                Error::Unavailable {
                    retry_after_ms: Some(7_000),
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn a_failed_call_is_mapped_and_logged_without_the_providers_text() {
        let mut host = fake::host();
        host.on_chat = fake::fail(RemoteError::Rejected {
            status: 400,
            message: "cannot parse 'secret plans'".into(),
        });
        let e = call(&mut host, BODY, &[]).expect_err("rejected");
        assert!(matches!(&e, Error::BadRequest(m) if m.contains("HTTP 400")));
        let log = &host.logs[0];
        assert!(
            log.ends_with("remote:chat failed: rejected (bad-request)"),
            "{log}"
        );
        assert!(!log.contains("secret"));
    }
}
