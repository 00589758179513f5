//! Forwarding a serverless stream as it is (WIT 0.2.1 `reply.forward`), end to end over
//! loopback: `hybrid serve` running chat-router built from source, which hands its stream
//! to the host unless the operator's setting `relay = "emit"` makes it read and emit each
//! chunk itself, and the serverless simulator behind it.
//!
//! Checked: a forwarded stream reaches the client delta by delta (timestamps against a
//! simulator that spaces its deltas), and so does an emitted one; a client that asked for
//! no stream gets one answer; a client that disconnects cancels the upstream call; a
//! provider that breaks off mid-stream ends the client's stream with an error event; a
//! forwarded text past the pipeline's response limit is cut and refused; a 0.2.0 build of
//! chat-router (kept as bytes) is still served. And the accounting: a broken
//! stream's charge to the budget is counted by the cost metric too; refusals the guest
//! makes from the signals (open circuit, spent budget) carry the real wait as
//! `Retry-After`, not the server's default.

use std::process::Command;
use std::time::{Duration, Instant};

use hybrid_tests::{hybrid_bin, root};
use serde_json::Value;

mod streaming_support;

use streaming_support::*;

const EMIT: &str = "settings = { relay = \"emit\" }";

/// Content deltas with their arrival times.
fn contents(events: &[Event]) -> Vec<(Duration, String)> {
    events
        .iter()
        .filter_map(|e| content_of(e).map(|c| (e.at, c)))
        .collect()
}

/// Waits up to 10 s for `hybrid serve`'s log to contain `needle` (the guest logs after
/// the last event went out).
fn logged(s: &Served, needle: &str) -> String {
    let waited = Instant::now();
    let mut log = s.log();
    while !log.contains(needle) && waited.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
        log = s.log();
    }
    log
}

/// The value of metric line `series` (name and labels, exactly), if present.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

#[test]
fn a_forwarded_stream_reaches_the_client_delta_by_delta() {
    // 12 words 150 ms apart, for each relay: the host's (forward) and the guest's (emit).
    let sim = sim("token_delay_ms = 150");
    let relays = [
        ("", "forwarded: ", "chunks, 43 bytes"),
        (EMIT, "streamed: ", "chunks, 43 chars"),
    ];
    for (extra, note, size) in relays {
        let s = serve(&sim, &chat_router(), &endpoint("chat", ""), extra);
        let (status, headers, events) = stream_chat(&s, &body(true, 10), &[], None);
        assert_eq!(status, 200);
        assert_eq!(
            headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        let contents = contents(&events);
        let text: String = contents.iter().map(|(_, c)| c.as_str()).collect();
        assert_eq!(text, "sim reply to: w0 w1 w2 w3 w4 w5 w6 w7 w8 w9");
        let (first, last) = (contents[0].0, contents[contents.len() - 1].0);
        // Eleven more deltas 150 ms apart upstream: buffered, they would come together.
        assert!(
            last - first >= Duration::from_millis(750),
            "{note}: first chunk at {first:?}, last at {last:?}: not relayed as they arrived"
        );
        assert_eq!(events.last().map(|e| e.data.as_str()), Some("[DONE]"));
        let usage: Value = serde_json::from_str(&events[events.len() - 2].data).expect("usage");
        assert!(
            usage["usage"]["completion_tokens"].as_u64() > Some(0),
            "{usage}"
        );
        assert!(usage["hybrid"]["cost_usd"].as_f64() > Some(0.0), "{usage}");
        // The guest's log line says which relay ran, and what went through.
        let log = logged(&s, note);
        assert!(log.contains(note) && log.contains(size), "{note}: {log}");
    }
    assert_eq!(sim.stats().streams.completed, 2);
}

#[test]
fn a_forward_to_a_client_that_asked_for_no_stream_is_one_answer() {
    let sim = sim("token_delay_ms = 20");
    let s = serve(&sim, &chat_router(), &endpoint("chat", ""), "");
    // The pipeline route without `accept: text/event-stream`: the host collects.
    let mut response = agent()
        .post(&format!("{}/v1/pipelines/chat", s.base))
        .header("content-type", "application/json")
        .send(body(true, 4).as_bytes())
        .expect("answered");
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("application/json")),
        "{:?}",
        response.headers()
    );
    let envelope: Value =
        serde_json::from_str(&response.body_mut().read_to_string().expect("body")).expect("JSON");
    assert_eq!(envelope["body"], "sim reply to: w0 w1 w2 w3", "{envelope}");
    assert_eq!(envelope["routing"]["route"], "remote:chat", "{envelope}");
    assert!(envelope["cost_usd"].as_f64() > Some(0.0), "{envelope}");
    let log = logged(&s, "forwarded:");
    assert!(log.contains("chunks, 25 bytes"), "{log}");
}

#[test]
fn a_forwarded_stream_whose_client_disconnects_is_cancelled_upstream() {
    // 60 words 100 ms apart: ~6 s upstream, unless cancelled.
    let sim = sim("token_delay_ms = 100");
    let s = serve(&sim, &chat_router(), &endpoint("chat", ""), "");
    let (status, _, events) = stream_chat(&s, &body(true, 60), &[], Some(3));
    assert_eq!((status, events.len()), (200, 3));
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
    let log = logged(&s, "forwarded: client went away");
    assert!(log.contains("forwarded: client went away"), "{log}");
}

#[test]
fn a_forwarded_stream_that_breaks_off_ends_with_an_error_event() {
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
    assert!(!contents(&events).is_empty(), "some text came first");
    let error: Value = serde_json::from_str(&events.last().expect("events").data).expect("JSON");
    assert_eq!(error["error"]["type"], "upstream_error", "{error}");
    assert!(events.iter().all(|e| e.data != "[DONE]"));
    assert_eq!(sim.stats().count(ROUTE, 200), 1, "no fallback after text");
    let log = logged(&s, "forward failed");
    assert!(
        log.contains("remote:chat forward failed: unavailable"),
        "{log}"
    );
}

#[test]
fn a_zero_two_zero_component_is_served_by_the_zero_two_two_host() {
    let fixture = root().join("tests/fixtures/chat_router-0.2.0.wasm");
    let out = Command::new(hybrid_bin())
        .args(["check", fixture.to_str().expect("utf8")])
        .output()
        .expect("check runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("(contract 0.2)"), "{stdout}");
    assert!(
        stdout.contains("built against: hybrid:inference 0.2.0 (served through 0.2.2's"),
        "{stdout}"
    );
    let sim = sim("token_delay_ms = 100");
    let s = serve(&sim, &fixture, &endpoint("chat", ""), "");
    let (status, _, whole) = post_json(&s, &body(false, 3), &[]);
    assert_eq!(status, 200, "{whole}");
    assert_eq!(
        whole["choices"][0]["message"]["content"],
        "sim reply to: w0 w1 w2"
    );
    // It streams the 0.2.0 way: each chunk through the guest, still as it arrives.
    let (status, _, events) = stream_chat(&s, &body(true, 8), &[], None);
    assert_eq!(status, 200);
    let contents = contents(&events);
    let text: String = contents.iter().map(|(_, c)| c.as_str()).collect();
    assert_eq!(text, "sim reply to: w0 w1 w2 w3 w4 w5 w6 w7");
    let spread = contents[contents.len() - 1].0 - contents[0].0;
    assert!(spread >= Duration::from_millis(400), "{spread:?}");
    assert_eq!(events.last().map(|e| e.data.as_str()), Some("[DONE]"));
}

#[test]
fn a_broken_streams_charge_is_in_the_cost_metric_as_in_the_budget() {
    // $0.01 per call and a $0.01 budget per minute: the broken stream spends it.
    let sim = sim(r#"sequence = ["drop"]"#);
    let endpoints = format!(
        "{}\n[budget]\nper_minute = 0.01\n",
        endpoint("chat", "price = { per_request = 0.01 }")
    );
    let s = serve(&sim, &chat_router(), &endpoints, "");
    let (status, _, events) = stream_chat(&s, &body(true, 40), &[], None);
    assert_eq!(status, 200);
    assert!(events.last().is_some_and(|e| e.data.contains("\"error\"")));
    // The budget charged it: the next call is refused.
    let (status, _, refused) = post_json(&s, &body(false, 2), &[]);
    assert_eq!(status, 503, "{refused}");
    // And the metric counts what the budget counted (it said $0 before).
    let text = metrics(&s);
    let cost = metric(
        &text,
        "hybrid_cost_usd_total{pipeline=\"chat\",endpoint=\"chat\"}",
    );
    assert_eq!(cost, Some(0.01), "{text}");
}

#[test]
fn refusals_from_the_signals_say_how_long_to_wait() {
    let sim = sim(r#"sequence = ["503"]"#);
    // One failure opens `fragile`'s circuit for 30 s; `chat` has a spent minute budget
    // after one $0.01 call.
    let endpoints = format!(
        "{}{}\n[budget]\nper_minute = 0.01\n",
        endpoint("fragile", "breaker_failures = 1\nbreaker_open_ms = 30000"),
        endpoint("chat", "price = { per_request = 0.01 }"),
    );
    let s = serve(&sim, &chat_router(), &endpoints, "");
    let retry_after = |h: &ureq::http::HeaderMap| -> u64 {
        h.get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .expect("Retry-After")
    };
    let fragile = [("x-hybrid-endpoint", "fragile")];
    let (status, _, _) = post_json(&s, &body(false, 2), &fragile);
    assert_eq!(status, 502, "the provider's 503 through its attempts");
    let before = sim.stats().requests_total;
    let (status, h, refused) = post_json(&s, &body(false, 2), &fragile);
    assert_eq!(status, 503, "{refused}");
    let wait = retry_after(&h);
    // The cool-down left (30 s less the time since), not the server's default of 1 s.
    assert!((20..=30).contains(&wait), "Retry-After {wait}: {refused}");
    assert_eq!(
        sim.stats().requests_total,
        before,
        "refused from the signals"
    );

    sim.set_scenario(hybrid_sim::Scenario::default())
        .expect("set");
    let (status, _, _) = post_json(&s, &body(false, 2), &[]);
    assert_eq!(status, 200, "the first call fits the budget");
    for stream in [false, true] {
        let (status, h, refused) = post_json(&s, &body(stream, 2), &[]);
        assert_eq!(status, 503, "{refused}");
        let wait = retry_after(&h);
        // The minute window's time left.
        assert!((30..=60).contains(&wait), "Retry-After {wait}: {refused}");
    }
}

#[test]
fn a_forwarded_stream_past_the_response_limit_is_cut_and_refused() {
    // 40 words against a 64-byte response limit, for a client that asked for no stream:
    // the host stops relaying, closes the provider's stream and answers the limit.
    let sim = sim("token_delay_ms = 10");
    let s = serve(
        &sim,
        &chat_router(),
        &endpoint("chat", ""),
        "limits = { response_bytes = 64 }",
    );
    let mut response = agent()
        .post(&format!("{}/v1/pipelines/chat", s.base))
        .header("content-type", "application/json")
        .send(body(true, 40).as_bytes())
        .expect("answered");
    let status = response.status().as_u16();
    let answer: Value =
        serde_json::from_str(&response.body_mut().read_to_string().expect("body")).expect("JSON");
    assert_eq!(status, 500, "{answer}");
    assert_eq!(answer["error"]["code"], "limit_exceeded", "{answer}");
    let waited = Instant::now();
    while sim.stats().streams.cancelled == 0 && waited.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        sim.stats().streams.cancelled,
        1,
        "the provider's stream was closed at the limit"
    );
}

#[test]
fn a_zero_two_one_component_is_served_by_the_zero_two_two_host() {
    let fixture = root().join("tests/fixtures/chat_router-0.2.1.wasm");
    let out = Command::new(hybrid_bin())
        .args(["check", fixture.to_str().expect("utf8")])
        .output()
        .expect("check runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("built against: hybrid:inference 0.2.1 (served through 0.2.2's"),
        "{stdout}"
    );
    assert!(!stdout.contains("pre-initialised"), "{stdout}");
    let sim = sim("token_delay_ms = 100");
    let s = serve(&sim, &fixture, &endpoint("chat", ""), "");
    let (status, _, whole) = post_json(&s, &body(false, 3), &[]);
    assert_eq!(status, 200, "{whole}");
    assert_eq!(
        whole["choices"][0]["message"]["content"],
        "sim reply to: w0 w1 w2"
    );
    // It streams the 0.2.1 way: the host forwards the stream, each chunk as it arrives.
    let (status, _, events) = stream_chat(&s, &body(true, 8), &[], None);
    assert_eq!(status, 200);
    let contents = contents(&events);
    let text: String = contents.iter().map(|(_, c)| c.as_str()).collect();
    assert_eq!(text, "sim reply to: w0 w1 w2 w3 w4 w5 w6 w7");
    let spread = contents[contents.len() - 1].0 - contents[0].0;
    assert!(spread >= Duration::from_millis(400), "{spread:?}");
    assert_eq!(events.last().map(|e| e.data.as_str()), Some("[DONE]"));
}
