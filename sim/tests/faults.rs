//! Fault injection over loopback, as the host's client will meet it: scripted sequences,
//! 429 bursts with Retry-After, hangs, dropped connections, malformed, oversize and
//! mislabelled bodies, latency, route filters, and seeded determinism.

mod common;

use std::time::{Duration, Instant};

use common::{KEY, agent, agent_with_timeout, chat_body, post_json, start};
use hybrid_sim::Scenario;
use hybrid_sim::scenario::{RateLimitBurst, Step};
use serde_json::json;

fn chat_status(sim: &hybrid_sim::SimHandle) -> u16 {
    post_json(sim, "/v1/chat/completions", &chat_body("hi")).status
}

#[test]
fn sequence_503_503_ok_answers_exactly_that() {
    let sim = start(Scenario {
        sequence: vec![Step::Status(503), Step::Status(503), Step::Ok],
        ..Scenario::default()
    });
    let first = post_json(&sim, "/v1/chat/completions", &chat_body("hi"));
    assert_eq!(first.status, 503);
    assert_eq!(first.json()["error"]["type"], "server_error");
    assert_eq!(chat_status(&sim), 503);
    assert_eq!(chat_status(&sim), 200);
    // Exhausted, with no probabilistic faults: healthy from here on.
    assert_eq!(chat_status(&sim), 200);
    let stats = sim.stats();
    assert_eq!(stats.count("/v1/chat/completions", 503), 2);
    assert_eq!(stats.count("/v1/chat/completions", 200), 2);
    assert_eq!(stats.faults_of("status_503"), 2);

    // A new scenario restarts the script.
    sim.set_scenario(Scenario {
        sequence: vec![Step::Status(500), Step::Ok],
        ..Scenario::default()
    })
    .expect("valid scenario");
    assert_eq!(chat_status(&sim), 500);
    assert_eq!(chat_status(&sim), 200);
}

#[test]
fn bursts_answer_429_with_retry_after() {
    let sim = start(Scenario {
        rate_limit: Some(RateLimitBurst {
            burst_every: 3,
            burst_len: 2,
            retry_after_s: Some(7),
        }),
        ..Scenario::default()
    });
    let statuses: Vec<u16> = (0..6).map(|_| chat_status(&sim)).collect();
    assert_eq!(statuses, [200, 200, 429, 429, 200, 429]);
    sim.set_scenario(Scenario {
        sequence: vec![Step::Status(429)],
        rate_limit: Some(RateLimitBurst {
            burst_every: 1000,
            burst_len: 1,
            retry_after_s: Some(7),
        }),
        ..Scenario::default()
    })
    .expect("valid scenario");
    let limited = post_json(&sim, "/v1/chat/completions", &chat_body("hi"));
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), Some("7"));
    assert_eq!(limited.json()["error"]["code"], "too_many_requests");
    assert!(limited.header("x-ratelimit-remaining-requests").is_some());
}

#[test]
fn a_hung_request_times_out_while_others_are_answered() {
    let sim = start(Scenario {
        sequence: vec![Step::Hang],
        ..Scenario::default()
    });
    let url = format!("{}/chat/completions", sim.base_url());
    let hung = std::thread::spawn(move || {
        let started = Instant::now();
        let result = agent_with_timeout(Duration::from_millis(400))
            .post(&url)
            .header("Authorization", format!("Bearer {KEY}"))
            .send(chat_body("hang").to_string());
        (result.map(|r| r.status().as_u16()), started.elapsed())
    });
    // Let the hung request take the "hang" step first.
    while sim.stats().faults_of("hang") == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let started = Instant::now();
    assert_eq!(chat_status(&sim), 200);
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "not blocked by the hang"
    );
    let (result, waited) = hung.join().expect("client thread");
    assert!(matches!(result, Err(ureq::Error::Timeout(_))), "{result:?}");
    assert!(waited >= Duration::from_millis(400));
    // Shutdown releases the hung handler instead of waiting for it.
    let started = Instant::now();
    drop(sim);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn a_dropped_connection_fails_while_reading_the_body() {
    let sim = start(Scenario {
        sequence: vec![Step::Drop, Step::Ok],
        ..Scenario::default()
    });
    let mut response = agent()
        .post(format!("{}/chat/completions", sim.base_url()))
        .header("Authorization", format!("Bearer {KEY}"))
        .send(chat_body("drop me").to_string())
        .expect("headers arrive");
    assert_eq!(response.status(), 200);
    let declared: usize = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("content-length");
    assert!(declared > 0);
    assert!(
        response.body_mut().read_to_string().is_err(),
        "body must be cut short"
    );
    assert_eq!(
        chat_status(&sim),
        200,
        "the next request is answered normally"
    );
    assert_eq!(sim.stats().faults_of("drop"), 1);
}

#[test]
fn malformed_oversize_and_wrong_content_type_answers() {
    let sim = start(Scenario {
        sequence: vec![Step::Malformed, Step::Oversize, Step::WrongContentType],
        oversize_bytes: None,
        ..Scenario::default()
    });
    let malformed = post_json(&sim, "/v1/chat/completions", &chat_body("hi"));
    assert_eq!(malformed.status, 200);
    assert_eq!(malformed.header("content-type"), Some("application/json"));
    assert!(serde_json::from_str::<serde_json::Value>(&malformed.body).is_err());

    sim.set_scenario(Scenario {
        sequence: vec![Step::Oversize],
        oversize_bytes: Some(3 << 20),
        ..Scenario::default()
    })
    .expect("valid scenario");
    let oversize = post_json(&sim, "/v1/chat/completions", &chat_body("hi"));
    assert_eq!(oversize.status, 200);
    assert_eq!(oversize.body.len(), 3 << 20);
    let body = oversize.json();
    assert_eq!(
        body["object"], "chat.completion",
        "still a valid answer, just huge"
    );

    sim.set_scenario(Scenario {
        wrong_content_type: true,
        ..Scenario::default()
    })
    .expect("valid scenario");
    let html = post_json(
        &sim,
        "/v1/embeddings",
        &json!({"model": "all-mini-lm-l6-v2", "input": "a"}),
    );
    assert_eq!(html.status, 200);
    assert!(
        html.header("content-type")
            .is_some_and(|t| t.starts_with("text/html"))
    );
    assert!(html.body.starts_with("<html>"));
}

#[test]
fn a_fixed_seed_gives_the_same_faults_in_the_same_order() {
    let scenario = Scenario {
        seed: 1234,
        error_rate: 0.4,
        ..Scenario::default()
    };
    let run = || {
        let sim = start(scenario.clone());
        (0..25).map(|_| chat_status(&sim)).collect::<Vec<_>>()
    };
    let first = run();
    assert_eq!(first, run());
    assert!(first.contains(&200));
    assert!(
        first.iter().any(|s| [500, 502, 503].contains(s)),
        "{first:?}"
    );
    assert!(
        first.iter().all(|s| [200, 500, 502, 503].contains(s)),
        "{first:?}"
    );
}

#[test]
fn latency_and_route_filters_apply() {
    let sim = start(Scenario {
        latency_ms: Some(150),
        error_rate: 1.0,
        error_status: Some(502),
        routes: vec!["/v1/chat/completions".into()],
        ..Scenario::default()
    });
    let started = Instant::now();
    assert_eq!(chat_status(&sim), 502);
    assert!(started.elapsed() >= Duration::from_millis(150));
    let started = Instant::now();
    let embedded = post_json(
        &sim,
        "/v1/embeddings",
        &json!({"model": "all-mini-lm-l6-v2", "input": "a"}),
    );
    assert_eq!(
        embedded.status, 200,
        "faults are confined to the listed routes"
    );
    assert!(started.elapsed() < Duration::from_millis(150));
}

#[test]
fn streaming_waits_between_tokens() {
    let sim = start(Scenario {
        token_delay_ms: 30,
        ..Scenario::default()
    });
    let mut body = chat_body("a b c");
    body["stream"] = json!(true);
    let started = Instant::now();
    let answer = post_json(&sim, "/v1/chat/completions", &body);
    assert_eq!(answer.status, 200);
    // Six words, one delay before each.
    assert!(
        started.elapsed() >= Duration::from_millis(180),
        "{:?}",
        started.elapsed()
    );
}
