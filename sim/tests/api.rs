//! The API over loopback without faults: each route's happy path and exact shape, the
//! OpenAI error bodies, authentication, the rate-limit headers and quota, the control routes.

mod common;

use base64::Engine as _;
use common::{KEY, agent, chat_body, get, multipart, post_json, post_raw, sse_data, start, wav};
use hybrid_sim::Scenario;
use hybrid_sim::scenario::Quota;
use serde_json::{Value, json};

#[test]
fn models_lists_the_configured_ids() {
    let sim = start(Scenario::default());
    let answer = get(&sim, "/v1/models");
    assert_eq!(answer.status, 200);
    let body = answer.json();
    assert_eq!(body["object"], "list");
    assert_eq!(
        body["data"][0],
        json!({"id": "llama3.3-70b-instruct", "object": "model", "created": 1_700_000_000u64, "owned_by": "hybrid-sim"})
    );
    assert_eq!(body["data"].as_array().map(Vec::len), Some(4));
    assert_eq!(
        get(&sim, "/v1/models/whisper-large-v3").json()["id"],
        "whisper-large-v3"
    );
    assert_eq!(get(&sim, "/v1/models/nope").status, 404);
}

#[test]
fn chat_completion_has_the_openai_shape() {
    let sim = start(Scenario::default());
    let body = json!({
        "model": "llama3.3-70b-instruct",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello world"}
        ],
        "temperature": 0.2,
        "top_p": 0.9
    });
    let answer = post_json(&sim, "/v1/chat/completions", &body);
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let reply = answer.json();
    assert!(
        reply["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("chatcmpl-"))
    );
    assert_eq!(reply["object"], "chat.completion");
    assert!(reply["created"].as_u64().is_some_and(|t| t > 1_700_000_000));
    assert_eq!(reply["model"], "llama3.3-70b-instruct");
    assert_eq!(
        reply["choices"],
        json!([{
            "index": 0,
            "message": {"role": "assistant", "content": "sim reply to: hello world"},
            "finish_reason": "stop"
        }])
    );
    // ceil(8/4) + ceil(11/4) prompt tokens; five words generated.
    assert_eq!(
        reply["usage"],
        json!({"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10})
    );
}

#[test]
fn chat_is_cut_to_max_tokens_with_finish_reason_length() {
    let sim = start(Scenario::default());
    let mut body = chat_body("one two three four");
    body["max_tokens"] = json!(4);
    let reply = post_json(&sim, "/v1/chat/completions", &body).json();
    assert_eq!(
        reply["choices"][0]["message"]["content"],
        "sim reply to: one"
    );
    assert_eq!(reply["choices"][0]["finish_reason"], "length");
    assert_eq!(reply["usage"]["completion_tokens"], 4);
    let long: String = "x".repeat(100);
    let reply = post_json(&sim, "/v1/chat/completions", &chat_body(&long)).json();
    let quoted = format!("sim reply to: {}", "x".repeat(60));
    assert_eq!(reply["choices"][0]["message"]["content"], quoted.as_str());
}

#[test]
fn chat_errors_use_the_openai_error_shape() {
    let sim = start(Scenario::default());
    let mut body = chat_body("hi");
    body["model"] = json!("x");
    let answer = post_json(&sim, "/v1/chat/completions", &body);
    assert_eq!(answer.status, 404);
    assert_eq!(
        answer.json(),
        json!({"error": {
            "message": "The model `x` does not exist",
            "type": "invalid_request_error",
            "param": "model",
            "code": "model_not_found"
        }})
    );

    let malformed = post_raw(
        &sim,
        "/v1/chat/completions",
        "application/json",
        b"{\"model\":",
    );
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.json()["error"]["type"], "invalid_request_error");

    let missing = post_json(
        &sim,
        "/v1/chat/completions",
        &json!({"model": "llama3.3-70b-instruct"}),
    );
    assert_eq!(missing.status, 400);
    let message = missing.json()["error"]["message"]
        .as_str()
        .map(str::to_owned);
    assert!(message.is_some_and(|m| m.contains("messages")));

    let mut hot = chat_body("hi");
    hot["temperature"] = json!(3.5);
    let answer = post_json(&sim, "/v1/chat/completions", &hot);
    assert_eq!(
        (answer.status, answer.json()["error"]["param"].clone()),
        (400, json!("temperature"))
    );
}

#[test]
fn chat_streams_word_chunks_then_usage_then_done() {
    let sim = start(Scenario::default());
    let mut body = chat_body("stream me");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let answer = post_json(&sim, "/v1/chat/completions", &body);
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("text/event-stream"));
    let events = sse_data(&answer.body);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).expect("chunk is JSON"))
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    let id = &chunks[0]["id"];
    assert!(chunks.iter().all(|c| &c["id"] == id));
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant"})
    );
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "sim reply to: stream me");
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage = &chunks[chunks.len() - 1];
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 5);

    // Without include_usage the last chunk before [DONE] carries the finish reason.
    body["stream_options"] = json!({"include_usage": false});
    let events = sse_data(&post_json(&sim, "/v1/chat/completions", &body).body);
    let last: Value = serde_json::from_str(&events[events.len() - 2]).expect("chunk");
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
}

#[test]
fn embeddings_are_deterministic_unit_vectors_in_float_or_base64() {
    let sim = start(Scenario::default());
    let body = json!({"model": "all-mini-lm-l6-v2", "input": ["alpha", "beta"]});
    let answer = post_json(&sim, "/v1/embeddings", &body);
    assert_eq!(answer.status, 200);
    let reply = answer.json();
    assert_eq!(reply["object"], "list");
    assert_eq!(reply["model"], "all-mini-lm-l6-v2");
    assert_eq!(
        reply["usage"],
        json!({"prompt_tokens": 3, "total_tokens": 3})
    );
    let vectors: Vec<Vec<f32>> = reply["data"]
        .as_array()
        .expect("data")
        .iter()
        .enumerate()
        .map(|(i, item)| {
            assert_eq!(item["object"], "embedding");
            assert_eq!(item["index"], i);
            serde_json::from_value(item["embedding"].clone()).expect("floats")
        })
        .collect();
    assert_eq!(vectors[0].len(), 384);
    let norm: f32 = vectors[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4);
    assert_ne!(vectors[0], vectors[1]);

    let again = post_json(
        &sim,
        "/v1/embeddings",
        &json!({"model": "all-mini-lm-l6-v2", "input": "alpha"}),
    );
    let alpha: Vec<f32> =
        serde_json::from_value(again.json()["data"][0]["embedding"].clone()).expect("floats");
    assert_eq!(alpha, vectors[0]);

    let b64 = json!({"model": "all-mini-lm-l6-v2", "input": "alpha", "encoding_format": "base64"});
    let encoded = post_json(&sim, "/v1/embeddings", &b64).json()["data"][0]["embedding"].clone();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.as_str().expect("a base64 string"))
        .expect("valid base64");
    let decoded: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(decoded, vectors[0]);

    let dims = json!({"model": "all-mini-lm-l6-v2", "input": "alpha", "dimensions": 8});
    let short = post_json(&sim, "/v1/embeddings", &dims).json();
    assert_eq!(
        short["data"][0]["embedding"].as_array().map(Vec::len),
        Some(8)
    );
    assert_eq!(
        post_json(
            &sim,
            "/v1/embeddings",
            &json!({"model": "all-mini-lm-l6-v2", "input": []})
        )
        .status,
        400
    );
}

#[test]
fn transcription_reports_wav_duration_or_byte_count() {
    let sim = start(Scenario::default());
    let audio = wav(16_000, 37_600);
    let (content_type, body) = multipart(&[
        ("model", None, b"whisper-large-v3"),
        ("language", None, b"en"),
        ("file", Some("clip.wav"), &audio),
    ]);
    let answer = post_raw(&sim, "/v1/audio/transcriptions", &content_type, &body);
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.json(),
        json!({"text": "sim transcript of 2.35 s of audio", "usage": {"type": "duration", "seconds": 3}})
    );

    let (content_type, body) = multipart(&[
        ("file", Some("clip.mp3"), b"ID3 not really audio"),
        ("model", None, b"whisper-large-v3"),
        ("response_format", None, b"text"),
    ]);
    let answer = post_raw(&sim, "/v1/audio/transcriptions", &content_type, &body);
    assert_eq!(answer.status, 200);
    assert!(
        answer
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain"))
    );
    assert_eq!(answer.body, "sim transcript of 20 bytes");

    let (content_type, body) = multipart(&[("model", None, b"whisper-large-v3")]);
    let missing = post_raw(&sim, "/v1/audio/transcriptions", &content_type, &body);
    assert_eq!(missing.status, 400);
    assert_eq!(missing.json()["error"]["param"], "file");

    let not_a_form = post_json(&sim, "/v1/audio/transcriptions", &json!({}));
    assert_eq!(not_a_form.status, 400);
}

#[test]
fn raw_echo_returns_the_posted_json_with_usage() {
    let sim = start(Scenario::default());
    let body = json!({"anything": [1, 2, {"nested": true}]});
    let answer = post_json(&sim, "/v1/raw/echo", &body);
    assert_eq!(answer.status, 200);
    let reply = answer.json();
    assert_eq!(reply["echo"], body);
    assert_eq!(
        reply["usage"]["total_tokens"],
        reply["usage"]["prompt_tokens"]
    );
    assert_eq!(
        post_raw(&sim, "/v1/raw/echo", "application/json", b"not json").status,
        400
    );
}

#[test]
fn missing_or_wrong_key_is_401_and_healthz_needs_none() {
    let sim = start(Scenario::default());
    let url = format!("{}/chat/completions", sim.base_url());
    let expected = json!({"error": {
        "message": "Incorrect API key provided",
        "type": "invalid_request_error",
        "param": null,
        "code": "invalid_api_key"
    }});
    let attempts = [
        None,
        Some("Bearer wrong".to_owned()),
        Some(KEY.to_owned()),
        Some(format!("Bearer {KEY}x")),
    ];
    for authorization in attempts {
        let mut request = agent().post(&url).content_type("application/json");
        if let Some(value) = &authorization {
            request = request.header("Authorization", value);
        }
        let mut response = request.send(chat_body("hi").to_string()).expect("answered");
        assert_eq!(response.status(), 401, "{authorization:?}");
        assert!(
            response
                .headers()
                .contains_key("x-ratelimit-limit-requests")
        );
        let body: Value =
            serde_json::from_str(&response.body_mut().read_to_string().expect("body"))
                .expect("JSON");
        assert_eq!(body, expected);
    }
    let stats = agent()
        .get(format!("{}/sim/stats", sim.root_url()))
        .call()
        .expect("answered");
    assert_eq!(stats.status(), 401);
    let mut health = agent()
        .get(format!("{}/healthz", sim.root_url()))
        .call()
        .expect("answered");
    assert_eq!(health.status(), 200);
    assert_eq!(health.body_mut().read_to_string().expect("body"), "ok");
}

#[test]
fn the_key_never_appears_in_a_response() {
    let sim = start(Scenario::default());
    let (content_type, form) = multipart(&[
        ("model", None, b"whisper-large-v3"),
        ("file", Some("a"), b"abc"),
    ]);
    let mut stream = chat_body("hi");
    stream["stream"] = json!(true);
    let answers = [
        get(&sim, "/v1/models"),
        get(&sim, "/v1/nope"),
        get(&sim, "/sim/stats"),
        get(&sim, "/sim/scenario"),
        post_json(&sim, "/v1/chat/completions", &chat_body("hi")),
        post_json(&sim, "/v1/chat/completions", &stream),
        post_json(
            &sim,
            "/v1/embeddings",
            &json!({"model": "all-mini-lm-l6-v2", "input": "a"}),
        ),
        post_raw(&sim, "/v1/audio/transcriptions", &content_type, &form),
        post_json(&sim, "/v1/raw/echo", &json!({})),
        post_raw(&sim, "/v1/chat/completions", "application/json", b"{"),
    ];
    for answer in answers {
        assert!(
            !answer.body.contains(KEY),
            "key leaked in a {} body",
            answer.status
        );
        assert!(
            answer
                .headers
                .values()
                .all(|v| !v.as_bytes().windows(KEY.len()).any(|w| w == KEY.as_bytes())),
            "key leaked in headers"
        );
    }
}

#[test]
fn ratelimit_headers_are_present_and_remaining_decrements() {
    let sim = start(Scenario::default());
    let first = get(&sim, "/v1/models");
    let second = post_json(&sim, "/v1/chat/completions", &chat_body("hello world"));
    for field in ["limit", "remaining", "reset"] {
        for bucket in ["requests", "tokens-per-minute", "tokens-per-day"] {
            let name = format!("x-ratelimit-{field}-{bucket}");
            assert!(second.header(&name).is_some(), "{name} missing");
        }
    }
    let number = |answer: &common::Answer, name: &str| -> u64 {
        answer
            .header(name)
            .and_then(|v| v.parse().ok())
            .expect(name)
    };
    assert_eq!(number(&first, "x-ratelimit-limit-requests"), 10_000);
    assert_eq!(number(&first, "x-ratelimit-remaining-requests"), 9_999);
    assert_eq!(number(&second, "x-ratelimit-remaining-requests"), 9_998);
    let tokens_used = second.json()["usage"]["total_tokens"]
        .as_u64()
        .expect("usage");
    assert_eq!(
        number(&first, "x-ratelimit-remaining-tokens-per-minute")
            - number(&second, "x-ratelimit-remaining-tokens-per-minute"),
        tokens_used
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let reset = number(&second, "x-ratelimit-reset-requests");
    assert!(
        (now..=now + 61).contains(&reset),
        "reset {reset} is a Unix time within the minute"
    );
}

#[test]
fn exhausted_quota_answers_429_too_many_requests() {
    let scenario = Scenario {
        quota: Quota {
            requests: 2,
            ..Quota::default()
        },
        ..Scenario::default()
    };
    let sim = start(scenario);
    assert_eq!(get(&sim, "/v1/models").status, 200);
    assert_eq!(get(&sim, "/v1/models").status, 200);
    let refused = get(&sim, "/v1/models");
    assert_eq!(refused.status, 429);
    assert_eq!(refused.json()["error"]["code"], "too_many_requests");
    assert_eq!(refused.header("x-ratelimit-remaining-requests"), Some("0"));
    assert_eq!(sim.stats().faults_of("quota"), 1);
}

#[test]
fn scenario_can_be_replaced_over_http_and_stats_count_ids() {
    let sim = start(Scenario::default());
    let set = post_json(
        &sim,
        "/sim/scenario",
        &json!({"sequence": ["502", "ok"], "seed": 9}),
    );
    assert_eq!(set.status, 200);
    assert_eq!(
        get(&sim, "/sim/scenario").json()["sequence"],
        json!(["502", "ok"])
    );
    assert_eq!(
        post_json(&sim, "/sim/scenario", &json!({"error_rate": 7})).status,
        400
    );
    assert_eq!(
        post_json(&sim, "/sim/scenario", &json!({"typo_rate": 0.1})).status,
        400
    );

    for _ in 0..2 {
        let response = agent()
            .post(format!("{}/raw/echo", sim.base_url()))
            .header("Authorization", format!("Bearer {KEY}"))
            .header("x-request-id", "req-1")
            .header("idempotency-key", "idem-1")
            .send("{}")
            .expect("answered");
        assert!(response.status() == 502 || response.status() == 200);
    }
    let stats = get(&sim, "/sim/stats").json();
    assert_eq!(
        stats["request_ids"]["req-1"],
        json!({"arrived": 2, "answered": 2, "processed": 1, "after_processed": 0})
    );
    assert_eq!(
        stats["idempotency_keys"]["idem-1"],
        json!({"arrived": 2, "answered": 2, "processed": 1, "after_processed": 0})
    );
    assert_eq!(
        stats["by_route"]["/v1/raw/echo"],
        json!({"200": 1, "502": 1})
    );
    assert_eq!(stats["faults"]["status_502"], 1);
    assert_eq!(
        get(&sim, "/v1/unknown").json()["error"]["message"],
        "Invalid URL (GET /v1/unknown)"
    );
}
