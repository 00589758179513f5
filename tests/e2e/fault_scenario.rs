//! A fault scenario: 10,000 OpenAI chat completions through the real `hybrid serve`
//! (`POST /v1/chat/completions`, the `chat` pipeline's chat-router component, the host's
//! remote client) to an in-process serverless simulator that misbehaves on purpose.
//!
//! The scenario (seeded: every run draws the same faults in the same order of arrival,
//! though which request meets which depends on how the clients interleave): of the
//! requests reaching the simulator's `/v1/chat/completions`, 20% are answered 500, 502 or
//! 503; 5% hang (never answered: the endpoint's 250 ms call budget runs out); 5% are cut
//! mid-body (200, headers and half the JSON, then the connection closes); 2% are 200 with
//! truncated JSON; and every 97th starts a burst of eight 429s (no `Retry-After`, so the
//! host backs off on its own). The account quota is set out of reach, so the 429s are the
//! bursts only. The endpoint allows 3 attempts with 5-40 ms of backoff; its circuit
//! breaker is set out of reach too, since failing fast is `chat_router.rs`'s subject and
//! here every request must meet the retry logic. 24 client threads send the requests.
//!
//! Checked, per request and in total:
//! 1. every request is answered: 200 with a well-formed completion quoting its own prompt,
//!    or a typed error (status: 429 for rate limits, 504 for timeouts, 502 for the rest;
//!    JSON `error` with `code` and `message`); never a transport
//!    error, a hang (the client gives up after 30 s) or a 2xx with a broken body;
//! 2. no chat completion is sent upstream again once the upstream may have carried it out
//!    (the simulator counts, per `x-request-id`, the arrivals after one whose route ran or
//!    that hung); retries after 5xx and 429 are allowed and happen. A host-level test pins
//!    the edge the simulator cannot script: a connection closed after the request was
//!    written, before any answer, is not retried (a refused one is: `remote.rs`);
//! 3. the counts add up exactly: client outcomes = `hybrid_requests_total` by outcome;
//!    client error causes = `hybrid_remote_errors_total` by case; the host's
//!    `hybrid_remote_attempts_total` = the requests the simulator recorded = the sum of
//!    per-id arrivals; and each injected hang, drop and truncation is one client failure
//!    of the matching cause.
//!
//! Timings (wall time, latency percentiles) are printed, never asserted.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hybrid::config::{BudgetConfig, EndpointConfig};
use hybrid::remote::{ChatRequest, Message, Remote, RemoteError};
use hybrid_sim::scenario::{Quota, RateLimitBurst};
use hybrid_sim::stats::IdCount;
use hybrid_sim::{Scenario, SimConfig, StatsSnapshot};
use hybrid_tests::component;
use hybrid_tests::edge_box::{EdgeBox, Scratch};
use serde_json::{Value, json};

/// Requests sent through the box.
const REQUESTS: usize = 10_000;
/// Client threads, each with its own connection pool.
const CLIENTS: usize = 24;
/// The endpoint's whole-call budget (retries and backoff included): what a hang costs.
const TIMEOUT_MS: u64 = 250;
/// Attempts per call.
const MAX_ATTEMPTS: u64 = 3;
/// The model id clients ask for, mapped to the `chat` pipeline, and the provider's model.
const MODEL: &str = "llama3.3-70b-instruct";
/// The simulator's chat route.
const ROUTE: &str = "/v1/chat/completions";
/// How long a client waits for any answer before calling the request hung.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

fn scenario() -> Scenario {
    Scenario {
        seed: 20_240_601,
        error_rate: 0.20,
        hang_rate: 0.05,
        drop_rate: 0.05,
        malformed_rate: 0.02,
        rate_limit: Some(RateLimitBurst {
            burst_every: 97,
            burst_len: 8,
            retry_after_s: None,
        }),
        routes: vec![ROUTE.to_owned()],
        // The default 10,000 requests a minute would answer most of the run 429.
        quota: Quota {
            requests: 10_000_000,
            ..Quota::default()
        },
        ..Scenario::default()
    }
}

/// `hybrid.toml` for a box whose only pipeline is `chat`, calling the simulator at
/// `base_url` (no key: the simulator runs without authentication).
fn write_config(dir: &Path, base_url: &str) {
    let config = format!(
        r#"
[runtime]
max_instances = 64

[admin]
token_env = "HYBRID_ADMIN_TOKEN"

[[pipeline]]
name = "chat"
component = "{component}"
deadline_ms = 10000
memory_mib = 64

[[openai_model]]
id = "{MODEL}"
kind = "chat"
pipeline = "chat"

[[endpoint]]
name = "chat"
kind = "chat"
base_url = "{base_url}"
model = "{MODEL}"
price = {{ input_per_mtok = 0.65, output_per_mtok = 0.65 }}
timeout_ms = {TIMEOUT_MS}
max_attempts = {MAX_ATTEMPTS}
backoff_ms = 5
max_backoff_ms = 40
# Out of reach: this test is about retries, not failing fast.
breaker_failures = 1000000
"#,
        component = component("chat_router").display(),
    );
    std::fs::write(dir.join("hybrid.toml"), config).expect("config");
}

/// What the client made of one answer.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    /// 200 with a well-formed completion of this request; the attempts it reports.
    Answered { attempts: u64 },
    /// A typed error: status, `error.code`, and the remote failure its message names.
    Refused {
        status: u16,
        code: String,
        cause: Cause,
        message: String,
    },
    /// Anything else: a transport error, an untyped error, a broken 2xx.
    Broken(String),
}

/// The remote failure behind a refusal, read from the message the client got: the case
/// (as `hybrid_remote_errors_total` names it) and how it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Cause {
    case: &'static str,
    how: &'static str,
}

fn cause_of(message: &str) -> Cause {
    let case = if message.contains("rate limited by the provider") {
        "rate-limited"
    } else if message.contains("did not answer in time") {
        "timeout"
    } else {
        [
            "timeout",
            "unavailable",
            "bad-response",
            "too-large",
            "rejected",
        ]
        .into_iter()
        .find(|case| message.contains(&format!("failed ({case}:")))
        .unwrap_or("other")
    };
    let how = [
        ("did not answer within", "no answer in time"),
        ("stopped sending its response", "body stalled"),
        ("dropped the connection", "dropped mid-body"),
        ("not the expected JSON", "truncated JSON"),
        ("answered 5", "5xx every attempt"),
        ("rate limited by the provider", "429 every attempt"),
        ("cannot reach endpoint", "connection failed"),
    ]
    .into_iter()
    .find(|(words, _)| message.contains(words))
    .map_or("other", |(_, how)| how);
    Cause { case, how }
}

fn prompt(index: usize) -> String {
    format!("fault scenario request {index}")
}

fn request_id(index: usize) -> String {
    format!("fault-{index:05}")
}

/// Sends request `index` and judges the answer.
fn send(agent: &ureq::Agent, url: &str, index: usize) -> Seen {
    let body = json!({
        "model": MODEL,
        "max_tokens": 32,
        "messages": [{"role": "user", "content": prompt(index)}],
    });
    let id = request_id(index);
    let result = agent
        .post(url)
        .header("content-type", "application/json")
        .header("x-request-id", &id)
        .send(body.to_string().as_bytes());
    let mut response = match result {
        Ok(r) => r,
        Err(e) => return Seen::Broken(format!("no answer: {e}")),
    };
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (content_type, echoed_id) = (header("content-type"), header("x-request-id"));
    let bytes = match response.body_mut().read_to_vec() {
        Ok(b) => b,
        Err(e) => return Seen::Broken(format!("{status} with a body cut short: {e}")),
    };
    let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
        return Seen::Broken(format!(
            "{status} with a body that is not JSON: {}",
            String::from_utf8_lossy(&bytes)
        ));
    };
    if !content_type.starts_with("application/json") || echoed_id != id {
        return Seen::Broken(format!(
            "{status} labelled {content_type:?}, x-request-id {echoed_id:?}: {v}"
        ));
    }
    if status == 200 {
        let attempts = v["hybrid"]["attempts"].as_u64().unwrap_or(0);
        let well_formed = v["object"] == "chat.completion"
            && v["model"] == MODEL
            && v["choices"][0]["message"]["content"] == format!("sim reply to: {}", prompt(index))
            && v["usage"]["completion_tokens"]
                .as_u64()
                .is_some_and(|n| n > 0)
            && v["hybrid"]["route"] == "remote:chat"
            && (1..=MAX_ATTEMPTS).contains(&attempts);
        return if well_formed {
            Seen::Answered { attempts }
        } else {
            Seen::Broken(format!("200 with a malformed completion: {v}"))
        };
    }
    match (v["error"]["code"].as_str(), v["error"]["message"].as_str()) {
        (Some(code), Some(message)) if !message.is_empty() && status >= 400 => Seen::Refused {
            status,
            code: code.to_owned(),
            cause: cause_of(message),
            message: message.to_owned(),
        },
        _ => Seen::Broken(format!("{status} without a typed error: {v}")),
    }
}

/// One sample of the Prometheus text: name, labels, value.
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn parse_metrics(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .filter_map(|pair| {
                    let (k, v) = pair.split_once("=\"")?;
                    Some((k.to_owned(), v.trim_end_matches('"').to_owned()))
                })
                .collect();
            Some(Sample {
                name: name.to_owned(),
                labels,
                value: value.parse().ok()?,
            })
        })
        .collect()
}

/// Sums `name` over the samples carrying every label pair of `with`, grouped by the
/// value of label `by`.
fn tally(samples: &[Sample], name: &str, with: &[(&str, &str)], by: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for s in samples.iter().filter(|s| s.name == name) {
        if with
            .iter()
            .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        {
            let key = s.labels.get(by).cloned().unwrap_or_default();
            *out.entry(key).or_default() += s.value as u64;
        }
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

/// The simulator's per-id counts, keyed by the client's request id (the host's call id is
/// `<request id>-<call number>`); more than one call for a request is an error listed.
fn calls_by_request(stats: &StatsSnapshot) -> (BTreeMap<String, IdCount>, Vec<String>) {
    let mut by_request = BTreeMap::new();
    let mut extra = Vec::new();
    for (call_id, count) in &stats.request_ids {
        let request = call_id
            .rsplit_once('-')
            .map_or(call_id.as_str(), |(r, _)| r);
        if by_request.insert(request.to_owned(), *count).is_some() {
            extra.push(call_id.clone());
        }
    }
    (by_request, extra)
}

#[test]
fn ten_thousand_chat_completions_under_faults_are_each_answered_once_and_counted_exactly() {
    let sim = hybrid_sim::spawn(SimConfig::without_auth().scenario(scenario()))
        .expect("simulator starts");
    let scratch = Scratch::new("fault-scenario");
    write_config(&scratch.0, &sim.base_url());
    let b = EdgeBox::start(&scratch.0, &[]);
    let url = format!("{}/v1/chat/completions", b.base);

    // 1. The load: CLIENTS threads take request numbers until REQUESTS are sent.
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (next, url) = (next.clone(), url.clone());
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(CLIENT_TIMEOUT))
                    .build()
                    .new_agent();
                let mut seen = Vec::new();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= REQUESTS {
                        return seen;
                    }
                    let sent = Instant::now();
                    let answer = send(&agent, &url, index);
                    seen.push((index, answer, sent.elapsed()));
                }
            })
        })
        .collect();
    let mut seen: Vec<(usize, Seen, Duration)> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("client thread"))
        .collect();
    let wall = started.elapsed();
    seen.sort_by_key(|(index, _, _)| *index);
    assert_eq!(seen.len(), REQUESTS);

    let metrics = ureq::get(&format!("{}/metrics", b.base))
        .call()
        .expect("metrics")
        .body_mut()
        .read_to_string()
        .expect("metrics text");
    let samples = parse_metrics(&metrics);
    // Read before the simulator shuts down: shutting down answers the hung requests.
    let stats = sim.stats();

    // What the clients saw, and how long it took (printed, not asserted).
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    let mut causes: BTreeMap<String, u64> = BTreeMap::new();
    let mut hows: BTreeMap<&str, u64> = BTreeMap::new();
    let mut examples: BTreeMap<&str, &str> = BTreeMap::new();
    let mut broken = Vec::new();
    for (index, answer, _) in &seen {
        match answer {
            Seen::Answered { .. } => *outcomes.entry("ok".into()).or_default() += 1,
            Seen::Refused {
                status,
                code,
                cause,
                message,
            } => {
                examples.entry(cause.how).or_insert(message);
                *outcomes.entry(format!("{status} {code}")).or_default() += 1;
                *causes.entry(cause.case.to_owned()).or_default() += 1;
                *hows.entry(cause.how).or_default() += 1;
            }
            Seen::Broken(why) => broken.push(format!("request {index}: {why}")),
        }
    }
    let mut latencies: Vec<Duration> = seen.iter().map(|(_, _, d)| *d).collect();
    latencies.sort_unstable();
    println!(
        "{REQUESTS} requests from {CLIENTS} clients in {:.1} s ({:.0}/s); latency p50 {:?}, \
         p99 {:?}, max {:?}",
        wall.as_secs_f64(),
        REQUESTS as f64 / wall.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
    );
    println!("client outcomes: {outcomes:?}");
    println!("client error causes: {causes:?}");
    println!("client failures by how: {hows:?}");
    for (how, message) in &examples {
        println!("  e.g. {how}: {message}");
    }
    println!(
        "sim: {} requests, by status {:?}, faults {:?}",
        stats.requests_total,
        stats.by_route.get(ROUTE),
        stats.faults
    );

    // 1. Every request answered: a completion or a typed error, nothing else.
    assert!(
        broken.is_empty(),
        "{} requests got no proper answer, first ones:\n{}",
        broken.len(),
        broken[..broken.len().min(10)].join("\n")
    );

    // 2. Never sent again once the upstream may have carried it out; retries did happen.
    let (calls, extra) = calls_by_request(&stats);
    assert!(
        extra.is_empty(),
        "requests with more than one call: {extra:?}"
    );
    let repeated: Vec<_> = stats
        .request_ids
        .iter()
        .filter(|(_, c)| c.after_processed > 0 || c.processed > 1 || c.arrived > MAX_ATTEMPTS)
        .collect();
    assert!(
        repeated.is_empty(),
        "{} calls went upstream again after the upstream may have carried them out, first \
         ones: {:?}",
        repeated.len(),
        &repeated[..repeated.len().min(10)]
    );
    for (index, answer, _) in &seen {
        let count = calls.get(&request_id(*index)).copied().unwrap_or_default();
        if let Seen::Answered { attempts } = answer {
            assert_eq!(
                (count.arrived, count.processed),
                (*attempts, 1),
                "request {index}: the simulator's view of an answered call"
            );
        }
    }
    let retried = calls.values().filter(|c| c.arrived > 1).count();
    println!(
        "sim per call: {} calls, {retried} retried, {} with no upstream arrival",
        calls.len(),
        REQUESTS - calls.len()
    );
    assert!(retried > 0, "5xx and 429 answers are retried");

    // 3. The counts add up: client = /metrics = simulator.
    let by_outcome = tally(
        &samples,
        "hybrid_requests_total",
        &[("pipeline", "chat")],
        "outcome",
    );
    let client_by_outcome: BTreeMap<String, u64> = outcomes
        .iter()
        .map(|(k, n)| {
            let outcome = match k.as_str() {
                "ok" => "ok",
                "502 upstream" => "upstream",
                // Since WIT 0.2 the client learns what it can act on: a provider's rate
                // limit (429) and a timeout (504) are no longer plain 502s.
                "429 rate_limited" => "rate-limited",
                "504 upstream_timeout" => "timeout",
                other => other,
            };
            (outcome.to_owned(), *n)
        })
        .collect();
    println!("metrics hybrid_requests_total by outcome: {by_outcome:?}");
    assert_eq!(client_by_outcome, by_outcome, "requests by outcome");

    let remote_errors = tally(
        &samples,
        "hybrid_remote_errors_total",
        &[("endpoint", "chat")],
        "error",
    );
    println!("metrics hybrid_remote_errors_total by error: {remote_errors:?}");
    assert_eq!(causes, remote_errors, "failed calls by error case");

    let calls_made = tally(
        &samples,
        "hybrid_remote_duration_seconds_count",
        &[("endpoint", "chat")],
        "endpoint",
    );
    assert_eq!(
        calls_made.values().sum::<u64>(),
        REQUESTS as u64,
        "one call per request"
    );

    let attempts: u64 = tally(
        &samples,
        "hybrid_remote_attempts_total",
        &[("endpoint", "chat")],
        "endpoint",
    )
    .values()
    .sum();
    let arrivals: u64 = stats.request_ids.values().map(|c| c.arrived).sum();
    println!(
        "attempts: host {attempts}, simulator {} ({arrivals} by id)",
        stats.requests_total
    );
    assert_eq!(
        attempts, stats.requests_total,
        "host attempts = simulator requests"
    );
    assert_eq!(
        arrivals, stats.requests_total,
        "every attempt carried its call id"
    );

    let how = |h: &str| hows.get(h).copied().unwrap_or(0);
    assert_eq!(
        stats.faults_of("hang"),
        how("no answer in time"),
        "each hang is one call that timed out"
    );
    assert_eq!(
        stats.faults_of("drop"),
        how("dropped mid-body") + how("body stalled"),
        "each drop is one call that failed mid-body"
    );
    assert_eq!(
        stats.faults_of("malformed"),
        how("truncated JSON"),
        "each truncated body is one bad response"
    );
    let answered_200 = stats.count(ROUTE, 200);
    assert_eq!(
        answered_200,
        outcomes.get("ok").copied().unwrap_or(0)
            + stats.faults_of("drop")
            + stats.faults_of("malformed"),
        "every clean 200 the simulator sent reached a client"
    );
}

/// An upstream that reads each request whole, counts it, and closes the connection
/// without answering: a provider that crashed or was cut off after taking the request.
fn silent_upstream() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(AtomicUsize::new(0));
    let counted = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let mut reader = BufReader::new(stream);
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
                if line == "\r\n" {
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_ok() {
                        counted.fetch_add(1, Ordering::SeqCst);
                    }
                    break;
                }
            }
            // Dropping the stream closes the connection with no response.
        }
    });
    (format!("http://{addr}/v1"), seen)
}

fn remote_at(base_url: &str) -> Remote {
    let config: EndpointConfig = serde_json::from_value(json!({
        "name": "chat",
        "kind": "chat",
        "base_url": base_url,
        "model": MODEL,
        "timeout_ms": 5_000,
        "max_attempts": MAX_ATTEMPTS,
        "backoff_ms": 5,
        "max_backoff_ms": 20,
    }))
    .expect("endpoint config");
    Remote::with_env(&[config], &BudgetConfig::default(), &|_| None).expect("remote")
}

fn hello() -> ChatRequest {
    ChatRequest {
        messages: vec![Message {
            role: "user".into(),
            content: "hello".into(),
        }],
        ..ChatRequest::default()
    }
}

#[test]
fn a_connection_closed_after_the_request_was_sent_is_not_retried() {
    let (base_url, seen) = silent_upstream();
    let remote = remote_at(&base_url);
    let deadline = Instant::now() + Duration::from_secs(10);
    let failed = remote
        .chat("chat", &hello(), "closed-after-send", deadline)
        .expect_err("no answer");
    assert!(
        matches!(failed.error, RemoteError::Unavailable(_)),
        "{:?}",
        failed.error
    );
    assert_eq!(
        seen.load(Ordering::SeqCst),
        1,
        "the upstream may have carried the completion out: it must not get it twice ({})",
        failed.error
    );
    assert_eq!(failed.attempts, 1);
}
