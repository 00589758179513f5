//! Streaming end to end (WIT 0.2), over real sockets on loopback: `hybrid serve` running
//! the chat-router component built from source, the serverless simulator behind it.
//!
//! Checked: each upstream delta reaches the client as it arrives (timestamps against a
//! simulator that spaces its deltas); a failing first endpoint is replaced by the next
//! before the first chunk, invisibly; a failure after the first chunk ends the stream with
//! an OpenAI-shaped error event and is counted; a client that disconnects cancels the
//! upstream call (the simulator sees the stream cut); each upstream failure kind reaches
//! the client with its status and `Retry-After`; failure records account for every error
//! kind; 0.1 components (kept as bytes in `tests/fixtures/`) are served unchanged.
//!
//! chat-router hands its streams to the host (WIT 0.2.1 `reply.forward`) unless told to
//! emit them itself, so these tests go through the forward path; `stream_forward.rs`
//! checks that it is the forward path, the emit path beside it, and 0.2.0 components.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hybrid::config::{BudgetConfig, EndpointConfig};
use hybrid::remote::{ChatRequest, Message, Remote, RemoteError};
use hybrid_sim::{Scenario, SimHandle};
use hybrid_tests::{hybrid_bin, root};
use serde_json::{Value, json};

mod streaming_support;

use streaming_support::*;

#[test]
fn each_delta_reaches_the_client_as_it_arrives() {
    // 12 words 150 ms apart: the upstream produces its last word ~1.8 s after its first.
    let sim = sim("token_delay_ms = 150");
    let s = serve(&sim, &chat_router(), &endpoint("chat", ""), "");
    let (status, headers, events) = stream_chat(&s, &body(true, 10), &[], None);
    assert_eq!(status, 200);
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    let contents: Vec<(Duration, String)> = events
        .iter()
        .filter_map(|e| content_of(e).map(|c| (e.at, c)))
        .collect();
    let text: String = contents.iter().map(|(_, c)| c.as_str()).collect();
    assert_eq!(text, "sim reply to: w0 w1 w2 w3 w4 w5 w6 w7 w8 w9");
    assert!(contents.len() >= 10, "{} content chunks", contents.len());
    let first = contents[0].0;
    let last = contents[contents.len() - 1].0;
    // Eleven more deltas were 150 ms apart upstream: if the host buffered, they would come
    // together. Half the spacing is a generous margin for a loaded machine.
    assert!(
        last - first >= Duration::from_millis(750),
        "first chunk at {first:?}, last at {last:?}: not relayed as they arrived"
    );
    assert_eq!(events.last().map(|e| e.data.as_str()), Some("[DONE]"));
    let usage: Value = serde_json::from_str(&events[events.len() - 2].data).expect("usage chunk");
    assert!(
        usage["usage"]["completion_tokens"].as_u64() > Some(0),
        "{usage}"
    );
    assert_eq!(usage["hybrid"]["route"], "remote:chat", "{usage}");
    assert!(
        usage["hybrid"]["cost_usd"].as_f64() > Some(0.0),
        "the streamed call is priced from its final usage: {usage}"
    );
    assert_eq!(sim.stats().streams.completed, 1);
    let text = metrics(&s);
    assert!(
        text.contains("hybrid_streams_total{pipeline=\"chat\",outcome=\"completed\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("hybrid_cost_usd_total{pipeline=\"chat\",endpoint=\"chat\"}"),
        "the streamed call is priced: {text}"
    );
}

#[test]
fn a_pipeline_route_streams_to_a_client_that_accepts_events() {
    let sim = sim("token_delay_ms = 50");
    let s = serve(&sim, &chat_router(), &endpoint("chat", ""), "");
    let mut response = agent()
        .post(&format!("{}/v1/pipelines/chat", s.base))
        .header("content-type", "application/json")
        .header("accept", "text/event-stream")
        .send(body(true, 4).as_bytes())
        .expect("answered");
    assert_eq!(response.status().as_u16(), 200);
    let text = response.body_mut().read_to_string().expect("body");
    let events: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(events.last(), Some(&"[DONE]"), "{text}");
    let envelope: Value = serde_json::from_str(events[events.len() - 2]).expect("envelope");
    assert_eq!(envelope["routing"]["route"], "remote:chat", "{envelope}");
    let deltas: String = events[..events.len() - 2]
        .iter()
        .map(|e| {
            let v: Value = serde_json::from_str(e).expect("delta event");
            v["delta"].as_str().expect("delta").to_owned()
        })
        .collect();
    assert_eq!(deltas, "sim reply to: w0 w1 w2 w3");
}

#[test]
fn a_stream_past_the_pipelines_deadline_ends_with_an_error_event_naming_it() {
    // 40 words 100 ms apart cannot fit in a 1.5 s deadline.
    let sim = sim("token_delay_ms = 100");
    let s = serve(
        &sim,
        &chat_router(),
        &endpoint("chat", ""),
        "deadline_ms = 1500",
    );
    let (status, _, events) = stream_chat(&s, &body(true, 40), &[], None);
    assert_eq!(status, 200);
    assert!(events.iter().any(|e| content_of(e).is_some()));
    let last: Value = serde_json::from_str(&events.last().expect("events").data).expect("JSON");
    assert!(
        last["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("deadline")),
        "{last}"
    );
}

#[test]
fn a_failing_first_endpoint_is_replaced_before_the_first_chunk() {
    let sim = sim(r#"sequence = ["503"]"#);
    let endpoints = format!("{}{}", endpoint("chat", ""), endpoint("backup", ""));
    let s = serve(
        &sim,
        &chat_router(),
        &endpoints,
        "settings = { fallback = \"backup\" }",
    );
    let (status, _, events) = stream_chat(&s, &body(true, 3), &[], None);
    assert_eq!(status, 200);
    let text: String = events.iter().filter_map(content_of).collect();
    assert_eq!(text, "sim reply to: w0 w1 w2");
    assert!(
        events.iter().all(|e| !e.data.contains("\"error\"")),
        "the client never sees the first endpoint's failure"
    );
    assert_eq!(events.last().map(|e| e.data.as_str()), Some("[DONE]"));
    let stats = sim.stats();
    assert_eq!((stats.count(ROUTE, 503), stats.count(ROUTE, 200)), (1, 1));
}

#[test]
fn a_failure_after_the_first_chunk_ends_with_an_error_event() {
    // The simulator sends half the stream, then cuts the connection.
    let sim = sim(r#"sequence = ["drop"]"#);
    let endpoints = format!("{}{}", endpoint("chat", ""), endpoint("backup", ""));
    let s = serve(
        &sim,
        &chat_router(),
        &endpoints,
        "settings = { fallback = \"backup\" }",
    );
    let (status, _, events) = stream_chat(&s, &body(true, 40), &[], None);
    assert_eq!(status, 200, "the status went out with the first chunk");
    assert!(
        events.iter().any(|e| content_of(e).is_some()),
        "some text came first"
    );
    let last = events.last().expect("events");
    let error: Value = serde_json::from_str(&last.data).expect("a JSON error event");
    assert!(error["error"]["message"].as_str().is_some(), "{error}");
    assert_eq!(error["error"]["type"], "upstream_error", "{error}");
    assert!(events.iter().all(|e| e.data != "[DONE]"));
    assert_eq!(
        sim.stats().count(ROUTE, 200),
        1,
        "no fallback once text has gone out"
    );
    let text = metrics(&s);
    assert!(
        text.contains("hybrid_streams_total{pipeline=\"chat\",outcome=\"error\"} 1"),
        "{text}"
    );
}

#[test]
fn a_client_that_disconnects_cancels_the_upstream_call() {
    // 60 words 100 ms apart: ~6 s upstream, unless cancelled.
    let sim = sim("token_delay_ms = 100");
    let s = serve(&sim, &chat_router(), &endpoint("chat", ""), "");
    let (status, _, events) = stream_chat(&s, &body(true, 60), &[], Some(3));
    assert_eq!(status, 200);
    assert_eq!(events.len(), 3);
    let waited = Instant::now();
    while sim.stats().streams.cancelled == 0 && waited.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let streams = sim.stats().streams;
    assert_eq!(
        (streams.cancelled, streams.completed),
        (1, 0),
        "the simulator sees the stream cut"
    );
    let waited = Instant::now();
    let mut text = metrics(&s);
    while !text.contains("outcome=\"client_gone\"") && waited.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
        text = metrics(&s);
    }
    assert!(
        text.contains("hybrid_streams_total{pipeline=\"chat\",outcome=\"client_gone\"} 1"),
        "{text}"
    );
}

/// The status, `Retry-After` and error type of one request, streamed or not.
fn failure(s: &Served, stream: bool, headers: &[(&str, &str)]) -> (u16, Option<String>, Value) {
    let (status, h, body) = post_json(s, &body(stream, 2), headers);
    let retry = h
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, retry, body)
}

#[test]
fn each_upstream_failure_kind_reaches_the_client_with_its_status() {
    let sim = sim("");
    let endpoints = format!(
        "{}{}",
        endpoint("chat", "timeout_ms = 700\nbreaker_failures = 100"),
        endpoint("fragile", "breaker_failures = 1\nbreaker_open_ms = 20000"),
    );
    let s = serve(&sim, &chat_router(), &endpoints, "");
    let set = |toml: &str| {
        sim.set_scenario(Scenario::from_toml(toml).expect("scenario"))
            .expect("set")
    };
    for stream in [false, true] {
        // The provider rate-limits us: 429 with its Retry-After.
        set("sequence = [\"429\"]\nrate_limit = { burst_every = 1000000, retry_after_s = 7 }");
        let (status, retry, body) = failure(&s, stream, &[]);
        assert_eq!((status, retry.as_deref()), (429, Some("7")), "{body}");
        assert_eq!(body["error"]["code"], "rate_limited", "{body}");

        // No answer in time: 504.
        set("sequence = [\"hang\"]");
        let (status, _, body) = failure(&s, stream, &[]);
        assert_eq!(status, 504, "{body}");
        assert_eq!(body["error"]["code"], "upstream_timeout", "{body}");

        // A 2xx answer that is not what the API promises (an HTML page): 502. (A stream
        // cut after its first chunk is an error event instead: see above.)
        set("sequence = [\"wrong_content_type\"]");
        let (status, _, body) = failure(&s, stream, &[]);
        assert_eq!(status, 502, "{body}");
        assert_eq!(body["error"]["type"], "upstream_error", "{body}");
    }
    // One failure opens `fragile`'s circuit: then 503 with Retry-After, nothing sent.
    set("sequence = [\"503\"]");
    let fragile = [("x-hybrid-endpoint", "fragile")];
    let (status, _, _) = failure(&s, false, &fragile);
    assert_eq!(status, 502, "a provider failing through its attempts");
    let before = sim.stats().requests_total;
    for stream in [false, true] {
        let (status, retry, body) = failure(&s, stream, &fragile);
        assert_eq!(status, 503, "{body}");
        assert!(
            retry
                .as_deref()
                .and_then(|r| r.parse::<u32>().ok())
                .is_some_and(|r| r >= 1),
            "Retry-After {retry:?}"
        );
        assert_eq!(body["error"]["code"], "upstream_unavailable", "{body}");
    }
    assert_eq!(
        sim.stats().requests_total,
        before,
        "an open circuit sends nothing"
    );
}

#[test]
fn a_spent_budget_is_503_with_retry_after() {
    let sim = sim("");
    let budget = "\n[budget]\nper_minute = 0.01\n";
    let endpoints = format!(
        "{}{budget}",
        endpoint("chat", "price = { per_request = 0.01 }")
    );
    let s = serve(&sim, &chat_router(), &endpoints, "");
    let (status, _, _) = failure(&s, false, &[]);
    assert_eq!(status, 200, "the first call fits the budget");
    for stream in [false, true] {
        let (status, retry, body) = failure(&s, stream, &[]);
        assert_eq!(status, 503, "{body}");
        assert!(retry.is_some(), "Retry-After on a spent budget");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("per-minute")),
            "{body}"
        );
    }
}

fn remote_at(sim: &SimHandle, changes: Value, budget: &BudgetConfig) -> Remote {
    let mut config = json!({
        "name": "chat", "kind": "chat", "base_url": sim.base_url(), "api_key_env": KEY_VAR,
        "model": "llama3.3-70b-instruct", "price": {"per_request": 0.001},
        "timeout_ms": 700, "max_attempts": 1, "backoff_ms": 10, "max_backoff_ms": 50,
    });
    if let (Some(c), Value::Object(changes)) = (config.as_object_mut(), changes) {
        c.extend(changes);
    }
    let endpoint: EndpointConfig = serde_json::from_value(config).expect("endpoint");
    Remote::with_env(&[endpoint], budget, &|v| {
        (v == KEY_VAR).then(|| KEY.to_owned())
    })
    .expect("remote")
}

#[test]
fn failure_records_account_for_every_error_kind() {
    let sim = sim("");
    let remote = Arc::new(remote_at(
        &sim,
        json!({"breaker_failures": 100}),
        &BudgetConfig::default(),
    ));
    let request = ChatRequest {
        messages: vec![Message {
            role: "user".into(),
            content: "hello".into(),
        }],
        ..ChatRequest::default()
    };
    let far = || Instant::now() + Duration::from_secs(10);
    let cases = [
        ("sequence = [\"503\"]", "unavailable"),
        (
            "sequence = [\"429\"]\nrate_limit = { burst_every = 1000000, retry_after_s = 3 }",
            "rate-limited",
        ),
        ("sequence = [\"hang\"]", "timeout"),
        ("sequence = [\"malformed\"]", "bad-response"),
        ("sequence = [\"drop\"]", "unavailable"),
    ];
    for (scenario, case) in cases {
        for streamed in [false, true] {
            sim.set_scenario(Scenario::from_toml(scenario).expect("scenario"))
                .expect("set");
            let failed = if streamed {
                let opened = remote.stream_chat("chat", &request, "rec", far());
                match opened {
                    // A cut stream fails on a later chunk: read it to the end.
                    Ok(mut stream) => loop {
                        match stream.next_chunk() {
                            Ok(Some(_)) => continue,
                            Ok(None) => panic!("{scenario}: the stream ended well"),
                            Err(failed) => break failed,
                        }
                    },
                    Err(failed) => failed,
                }
            } else {
                remote
                    .chat("chat", &request, "rec", far())
                    .expect_err(scenario)
            };
            let what = format!("{scenario} (streamed: {streamed}): {failed:?}");
            assert_eq!(failed.error.case(), case, "{what}");
            assert_eq!(failed.endpoint, "chat", "{what}");
            assert_eq!(failed.attempts, 1, "{what}");
            assert!(failed.bytes_sent > 0, "{what}");
            assert!(failed.latency > Duration::ZERO, "{what}");
            if case != "timeout" {
                assert!(
                    failed.bytes_received > 0,
                    "the answer's bytes count: {what}"
                );
            }
            if case == "rate-limited" {
                assert_eq!(failed.retry_after, Some(Duration::from_secs(3)), "{what}");
            }
        }
    }
    // Refused before sending: an open circuit and a spent budget say when to come back.
    let fragile = remote_at(
        &sim,
        json!({"breaker_failures": 1, "breaker_open_ms": 5000}),
        &BudgetConfig::default(),
    );
    sim.set_scenario(Scenario::from_toml("sequence = [\"503\"]").expect("scenario"))
        .expect("set");
    fragile
        .chat("chat", &request, "rec", far())
        .expect_err("503");
    let open = fragile
        .chat("chat", &request, "rec", far())
        .expect_err("open");
    assert_eq!((open.attempts, open.bytes_sent), (0, 0));
    assert!(
        open.retry_after.is_some_and(|w| w > Duration::from_secs(3)),
        "{open:?}"
    );
    let budgeted = remote_at(
        &sim,
        json!({}),
        &BudgetConfig {
            per_minute: Some(0.001),
            ..BudgetConfig::default()
        },
    );
    sim.set_scenario(Scenario::default()).expect("set");
    budgeted.chat("chat", &request, "rec", far()).expect("fits");
    let spent = budgeted
        .chat("chat", &request, "rec", far())
        .expect_err("spent");
    assert!(
        matches!(spent.error, RemoteError::BudgetExceeded(_)),
        "{spent:?}"
    );
    assert!(
        spent
            .retry_after
            .is_some_and(|w| w <= Duration::from_secs(60)),
        "{spent:?}"
    );
}

#[test]
fn zero_one_components_are_served_unchanged() {
    let fixture = root().join("tests/fixtures/chat_router-0.1.1.wasm");
    // `hybrid check` names the contract.
    let out = Command::new(hybrid_bin())
        .args(["check", fixture.to_str().expect("utf8")])
        .output()
        .expect("check runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("implements hybrid:inference/pipeline@0.1.1 (contract 0.1)"),
        "{stdout}"
    );
    let voice = root().join("tests/fixtures/voice_gate-0.1.1.wasm");
    let out = Command::new(hybrid_bin())
        .args(["check", voice.to_str().expect("utf8")])
        .output()
        .expect("check runs");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("(contract 0.1)"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The 0.1 chat-router answers whole, streamed or not, as it always did.
    let sim = sim("token_delay_ms = 20");
    let s = serve(&sim, &fixture, &endpoint("chat", ""), "");
    let (status, _, whole) = post_json(&s, &body(false, 3), &[]);
    assert_eq!(status, 200, "{whole}");
    assert_eq!(
        whole["choices"][0]["message"]["content"],
        "sim reply to: w0 w1 w2"
    );
    let (status, _, events) = stream_chat(&s, &body(true, 3), &[], None);
    assert_eq!(status, 200);
    let text: String = events.iter().filter_map(content_of).collect();
    assert_eq!(text, "sim reply to: w0 w1 w2");
    assert_eq!(events.last().map(|e| e.data.as_str()), Some("[DONE]"));
    // A 0.1 guest's errors keep their 0.1 statuses.
    sim.set_scenario(Scenario::from_toml("sequence = [\"429\"]").expect("scenario"))
        .expect("set");
    let (status, _, body) = post_json(&s, &body(false, 2), &[]);
    assert_eq!(status, 502, "0.1 has no rate-limited case: {body}");
}
