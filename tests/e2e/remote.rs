//! The serverless client against `hybrid-sim` over loopback: every fault of the issue's
//! suite yields its typed error or a successful retry, no call is sent twice after the
//! provider answered, the circuit opens and closes, the budget refuses, and the key never
//! leaks into an error or a log line.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use hybrid::config::{BudgetConfig, EndpointConfig, EndpointKind, Prices};
use hybrid::remote::{ChatRequest, CircuitState, Message, Remote, RemoteError, SetupError};
use hybrid_sim::{ApiKey, Scenario, SimConfig, SimHandle, spawn};

/// A real-looking key (see `hybrid_tests::secrets`).
const KEY: &str = hybrid_tests::secrets::SERVERLESS_KEY;
const KEY_VAR: &str = "HYBRID_TEST_DO_KEY";

/// Everything logged by this test process, to check for the key.
fn logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || SharedWriter(writer.clone()))
            .try_init();
        buffer
    })
}

struct SharedWriter(Arc<Mutex<Vec<u8>>>);

impl Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn simulator(scenario: &str) -> SimHandle {
    logs();
    let scenario = Scenario::from_toml(scenario).expect("scenario");
    spawn(SimConfig::with_key(ApiKey::new(KEY).expect("key")).scenario(scenario))
        .expect("sim starts")
}

fn endpoint(name: &str, kind: EndpointKind, base_url: &str) -> EndpointConfig {
    EndpointConfig {
        name: name.into(),
        kind,
        base_url: base_url.into(),
        api_key_env: Some(KEY_VAR.into()),
        model: match kind {
            EndpointKind::Embeddings => "all-mini-lm-l6-v2",
            EndpointKind::Transcription => "whisper-large-v3",
            _ => "llama3.3-70b-instruct",
        }
        .into(),
        path: (kind == EndpointKind::Raw).then(|| "/raw/echo".into()),
        stream: false,
        model_sha256: None,
        price: Prices {
            input_per_mtok: 0.65,
            output_per_mtok: 0.65,
            per_audio_second: 0.0001,
            per_request: 0.0,
        },
        timeout_ms: 2_000,
        connect_timeout_ms: 500,
        max_attempts: 3,
        backoff_ms: 10,
        max_backoff_ms: 200,
        breaker_failures: 5,
        breaker_open_ms: 30_000,
        max_request_bytes: 1 << 20,
        max_response_bytes: 1 << 20,
    }
}

fn remote_with(endpoints: Vec<EndpointConfig>, budget: BudgetConfig) -> Remote {
    Remote::with_env(&endpoints, &budget, &|var| {
        (var == KEY_VAR).then(|| KEY.to_string())
    })
    .expect("remote")
}

fn client(config: EndpointConfig) -> Remote {
    remote_with(vec![config], BudgetConfig::default())
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

fn hello() -> ChatRequest {
    ChatRequest {
        messages: vec![Message {
            role: "user".into(),
            content: "Say hello to the edge box".into(),
        }],
        ..ChatRequest::default()
    }
}

fn chat_error(remote: &Remote) -> (RemoteError, u32) {
    let failed = remote
        .chat("chat", &hello(), "req", soon())
        .expect_err("fails");
    assert!(!failed.error.to_string().contains(KEY));
    (failed.error, failed.attempts)
}

#[test]
fn chat_reports_content_usage_cost_and_model() {
    let sim = simulator("");
    let remote = client(endpoint("chat", EndpointKind::Chat, &sim.base_url()));
    let answer = remote.chat("chat", &hello(), "req", soon()).expect("chat");
    assert!(
        answer.value.content.starts_with("sim reply to: Say hello"),
        "{}",
        answer.value.content
    );
    assert_eq!(answer.value.finish_reason, "stop");
    let call = &answer.call;
    assert_eq!(
        (call.endpoint.as_str(), call.model.as_str(), call.attempts),
        ("chat", "llama3.3-70b-instruct", 1)
    );
    assert!(call.usage.input_tokens > 0 && call.usage.output_tokens > 0);
    let expected =
        (f64::from(call.usage.input_tokens + call.usage.output_tokens) * 0.65).round() as u64;
    assert_eq!(call.cost_micro_usd, expected);
    assert!(call.bytes_sent > 0 && call.bytes_received > 0);
    assert_eq!(
        remote.health()[0].rate_limit_remaining.map(|r| r > 0),
        Some(true)
    );
}

#[test]
fn streamed_chat_reads_the_same_answer_incrementally() {
    let sim = simulator("");
    let plain = client(endpoint("chat", EndpointKind::Chat, &sim.base_url()));
    let mut config = endpoint("chat", EndpointKind::Chat, &sim.base_url());
    config.stream = true;
    let streamed = client(config);
    let a = plain.chat("chat", &hello(), "req", soon()).expect("plain");
    let b = streamed
        .chat("chat", &hello(), "req", soon())
        .expect("streamed");
    assert_eq!(a.value, b.value);
    assert_eq!(a.call.usage, b.call.usage);
}

#[test]
fn embeddings_transcription_and_raw_calls() {
    let sim = simulator("");
    let base = sim.base_url();
    let remote = remote_with(
        vec![
            endpoint("embed", EndpointKind::Embeddings, &base),
            endpoint("transcribe", EndpointKind::Transcription, &base),
            endpoint("raw", EndpointKind::Raw, &base),
        ],
        BudgetConfig::default(),
    );
    let inputs = vec!["edge".to_string(), "cloud".to_string()];
    let vectors = remote
        .embed("embed", &inputs, None, "req", soon())
        .expect("embed")
        .value;
    assert_eq!(vectors.len(), 2);
    assert_eq!(vectors[0].len(), 384);

    // One second of 16 kHz 16-bit silence as a WAV.
    let mut wav = Vec::new();
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36u32 + 32_000).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    for v in [
        16u32.to_le_bytes(),
        [1, 0, 1, 0],
        16_000u32.to_le_bytes(),
        32_000u32.to_le_bytes(),
        [2, 0, 16, 0],
    ] {
        wav.extend_from_slice(&v);
    }
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&32_000u32.to_le_bytes());
    wav.extend_from_slice(&[0; 32_000]);
    let answer = remote
        .transcribe("transcribe", &wav, "wav", Some("en"), "req", soon())
        .expect("transcribe");
    assert!(answer.value.contains("1.00 s"), "{}", answer.value);
    assert_eq!(answer.call.usage.audio_seconds, 1.0);
    assert_eq!(answer.call.cost_micro_usd, 100);

    let raw = remote
        .raw("raw", r#"{"ping": 1}"#, "req", soon())
        .expect("raw");
    assert!(raw.value.contains("\"ping\":1"), "{}", raw.value);
    let not_json = remote
        .raw("raw", "{nope", "req", soon())
        .expect_err("not json");
    assert!(matches!(
        not_json.error,
        RemoteError::Rejected { status: 400, .. }
    ));
}

#[test]
fn server_errors_are_retried_until_success_with_one_idempotency_key() {
    for status in [500, 502, 503] {
        let sim = simulator(&format!("sequence = [\"{status}\", \"{status}\", \"ok\"]"));
        let remote = client(endpoint("chat", EndpointKind::Chat, &sim.base_url()));
        let answer = remote
            .chat("chat", &hello(), "req-retry", soon())
            .expect("retried");
        assert_eq!(answer.call.attempts, 3);
        let stats = sim.stats();
        assert_eq!(stats.idempotency_keys.len(), 1, "one call, one key");
        let counts = stats.idempotency_keys.values().next().expect("key");
        assert_eq!((counts.arrived, counts.answered), (3, 3));
        assert_eq!(stats.count("/v1/chat/completions", 200), 1, "answered once");
    }
}

#[test]
fn persistent_server_errors_end_unavailable_after_the_retry_budget() {
    let sim = simulator("sequence = [\"503\", \"503\", \"503\", \"ok\"]");
    let remote = client(endpoint("chat", EndpointKind::Chat, &sim.base_url()));
    let (error, attempts) = chat_error(&remote);
    assert_eq!(attempts, 3);
    assert!(
        matches!(&error, RemoteError::Unavailable(m) if m.contains("503")),
        "{error}"
    );
}

#[test]
fn rate_limits_honour_retry_after_or_give_up_when_it_is_too_long() {
    // 429 without Retry-After: backoff, then success.
    let sim = simulator("sequence = [\"429\", \"ok\"]");
    let remote = client(endpoint("chat", EndpointKind::Chat, &sim.base_url()));
    assert_eq!(
        remote
            .chat("chat", &hello(), "req", soon())
            .expect("retried")
            .call
            .attempts,
        2
    );

    // 429 with Retry-After: 1 s, within the 2 s backoff cap: waited, then success.
    let sim = simulator(
        "sequence = [\"429\", \"ok\"]\n[rate_limit]\nburst_every = 1000\nburst_len = 1\nretry_after_s = 1",
    );
    let mut config = endpoint("chat", EndpointKind::Chat, &sim.base_url());
    config.max_backoff_ms = 2_000;
    let remote = client(config);
    let started = Instant::now();
    let result = remote.chat("chat", &hello(), "req", soon());
    let waited = started.elapsed();
    match result {
        Ok(answer) => {
            assert!(answer.call.attempts >= 2);
            assert!(
                waited >= Duration::from_millis(950),
                "honoured Retry-After: waited {waited:?}"
            );
        }
        Err(failed) => panic!("expected success after Retry-After, got {}", failed.error),
    }

    // Retry-After longer than the cap: no wait, rate-limited with the provider's hint.
    let sim = simulator("[rate_limit]\nburst_every = 1\nburst_len = 5\nretry_after_s = 30");
    let remote = client(endpoint("chat", EndpointKind::Chat, &sim.base_url()));
    let started = Instant::now();
    let (error, attempts) = chat_error(&remote);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(attempts, 1);
    assert!(
        matches!(error, RemoteError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(30)),
        "{error:?}"
    );
}

#[test]
fn a_hanging_provider_times_out_without_retry() {
    let sim = simulator("sequence = [\"hang\", \"ok\"]");
    let mut config = endpoint("chat", EndpointKind::Chat, &sim.base_url());
    config.timeout_ms = 300;
    let remote = client(config);
    let started = Instant::now();
    let (error, attempts) = chat_error(&remote);
    assert!(matches!(error, RemoteError::Timeout(_)), "{error:?}");
    assert_eq!(attempts, 1);
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn the_callers_deadline_bounds_the_call() {
    let sim = simulator("latency_ms = 2000");
    let remote = client(endpoint("chat", EndpointKind::Chat, &sim.base_url()));
    let started = Instant::now();
    let failed = remote
        .chat(
            "chat",
            &hello(),
            "req",
            Instant::now() + Duration::from_millis(200),
        )
        .expect_err("deadline");
    assert!(
        matches!(failed.error, RemoteError::Timeout(_)),
        "{:?}",
        failed.error
    );
    assert!(started.elapsed() < Duration::from_millis(1_000));
}

#[test]
fn connection_refused_is_retried_then_unavailable() {
    // Bind and drop a listener: the port is free and nothing accepts on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let remote = client(endpoint(
        "chat",
        EndpointKind::Chat,
        &format!("http://127.0.0.1:{port}/v1"),
    ));
    let (error, attempts) = chat_error(&remote);
    assert_eq!(attempts, 3);
    assert!(
        matches!(&error, RemoteError::Unavailable(m) if m.contains("cannot reach")),
        "{error}"
    );
}

#[test]
fn a_connection_dropped_mid_body_is_reported_not_retried() {
    let sim = simulator("sequence = [\"drop\", \"ok\"]");
    let remote = client(endpoint("chat", EndpointKind::Chat, &sim.base_url()));
    let (error, attempts) = chat_error(&remote);
    assert_eq!(attempts, 1, "the provider answered: never send it again");
    assert!(
        matches!(&error, RemoteError::Unavailable(m) if m.contains("dropped")),
        "{error}"
    );
    assert_eq!(sim.stats().requests_total, 1);
}

#[test]
fn malformed_oversized_and_mistyped_answers_are_typed_errors() {
    let sim = simulator("sequence = [\"malformed\"]");
    let (error, _) = chat_error(&client(endpoint(
        "chat",
        EndpointKind::Chat,
        &sim.base_url(),
    )));
    assert!(
        matches!(&error, RemoteError::BadResponse(m) if m.contains("not the expected JSON")),
        "{error}"
    );

    let sim = simulator("oversize_bytes = 3000000");
    let (error, _) = chat_error(&client(endpoint(
        "chat",
        EndpointKind::Chat,
        &sim.base_url(),
    )));
    assert!(
        matches!(&error, RemoteError::TooLarge(m) if m.contains("1048576")),
        "{error}"
    );

    let sim = simulator("wrong_content_type = true");
    let (error, _) = chat_error(&client(endpoint(
        "chat",
        EndpointKind::Chat,
        &sim.base_url(),
    )));
    assert!(
        matches!(&error, RemoteError::BadResponse(m) if m.contains("text/html")),
        "{error}"
    );
}

#[test]
fn an_oversized_request_never_leaves() {
    let sim = simulator("");
    let mut config = endpoint("chat", EndpointKind::Chat, &sim.base_url());
    config.max_request_bytes = 50;
    let (error, attempts) = chat_error(&client(config));
    assert!(matches!(error, RemoteError::TooLarge(_)));
    assert_eq!(attempts, 0);
    assert_eq!(sim.stats().requests_total, 0);
}

#[test]
fn unknown_endpoints_and_wrong_kinds_are_not_found() {
    let sim = simulator("");
    let remote = client(endpoint("chat", EndpointKind::Chat, &sim.base_url()));
    let failed = remote
        .chat("gpt", &hello(), "req", soon())
        .expect_err("unknown");
    assert!(
        matches!(&failed.error, RemoteError::NotFound(m) if m.contains("configured endpoints: [chat]"))
    );
    let failed = remote
        .embed("chat", &["x".into()], None, "req", soon())
        .expect_err("kind");
    assert!(
        matches!(&failed.error, RemoteError::NotFound(m) if m.contains("serves chat, not embeddings"))
    );
}

#[test]
fn embeddings_bound_to_a_model_identity_refuse_endpoints_that_serve_another() {
    let sim = simulator("");
    let mut same = endpoint("same", EndpointKind::Embeddings, &sim.base_url());
    same.model_sha256 = Some("AB".repeat(32));
    let other = endpoint("other", EndpointKind::Embeddings, &sim.base_url());
    let remote = remote_with(vec![same, other], BudgetConfig::default());
    let identity = "ab".repeat(32);
    let inputs = vec!["edge".to_string()];
    remote
        .embed("same", &inputs, Some(&identity), "req", soon())
        .expect("same model");
    let failed = remote
        .embed("other", &inputs, Some(&identity), "req", soon())
        .expect_err("other model");
    assert!(
        matches!(&failed.error, RemoteError::NotFound(m) if m.contains("must not be mixed") && m.contains("no model identity")),
        "{:?}",
        failed.error
    );
    assert_eq!(failed.attempts, 0);
    assert_eq!(
        sim.stats().requests_total,
        1,
        "the mismatched call never left"
    );
    remote
        .embed("other", &inputs, None, "req", soon())
        .expect("unbound callers may use any endpoint");
}

#[test]
fn a_missing_key_fails_at_start_and_a_wrong_key_is_rejected_without_leaking() {
    let sim = simulator("");
    let config = endpoint("chat", EndpointKind::Chat, &sim.base_url());
    let err = Remote::with_env(
        std::slice::from_ref(&config),
        &BudgetConfig::default(),
        &|_| None,
    )
    .err()
    .expect("missing key");
    assert!(matches!(&err, SetupError::MissingKey { variable, .. } if variable == KEY_VAR));
    assert!(err.to_string().contains(KEY_VAR));

    let wrong = Remote::with_env(&[config], &BudgetConfig::default(), &|_| {
        Some("sk-wrong-key-0000".into())
    })
    .expect("remote");
    let failed = wrong
        .chat("chat", &hello(), "req", soon())
        .expect_err("401");
    assert!(
        matches!(&failed.error, RemoteError::Rejected { status: 401, .. }),
        "{:?}",
        failed.error
    );
    assert_eq!(failed.attempts, 1, "4xx is not retried");
    assert!(!failed.error.to_string().contains("sk-wrong-key-0000"));
}

#[test]
fn the_circuit_opens_after_failures_and_closes_after_a_good_probe() {
    let sim = simulator("sequence = [\"503\", \"503\", \"ok\", \"ok\"]");
    let mut config = endpoint("chat", EndpointKind::Chat, &sim.base_url());
    config.max_attempts = 1;
    config.breaker_failures = 2;
    config.breaker_open_ms = 300;
    let remote = client(config);
    chat_error(&remote);
    chat_error(&remote);
    assert_eq!(remote.health()[0].circuit, CircuitState::Open);
    let (error, attempts) = chat_error(&remote);
    assert!(
        matches!(&error, RemoteError::Unavailable(m) if m.contains("circuit is open")),
        "{error}"
    );
    assert_eq!(attempts, 0);
    assert_eq!(
        sim.stats().requests_total,
        2,
        "an open circuit sends nothing"
    );
    std::thread::sleep(Duration::from_millis(350));
    assert_eq!(remote.health()[0].circuit, CircuitState::HalfOpen);
    remote
        .chat("chat", &hello(), "req", soon())
        .expect("probe succeeds");
    assert_eq!(remote.health()[0].circuit, CircuitState::Closed);
    assert!(remote.health()[0].error_rate > 0.0);
}

#[test]
fn the_budget_refuses_calls_once_spent() {
    let sim = simulator("");
    let mut config = endpoint("chat", EndpointKind::Chat, &sim.base_url());
    config.price.per_request = 0.01;
    let remote = remote_with(
        vec![config],
        BudgetConfig {
            per_minute: Some(0.015),
            ..BudgetConfig::default()
        },
    );
    remote.chat("chat", &hello(), "req", soon()).expect("first");
    remote
        .chat("chat", &hello(), "req", soon())
        .expect("second: budget not yet spent");
    let failed = remote
        .chat("chat", &hello(), "req", soon())
        .expect_err("spent");
    assert!(
        matches!(&failed.error, RemoteError::BudgetExceeded(m) if m.contains("per-minute")),
        "{:?}",
        failed.error
    );
    assert_eq!(sim.stats().requests_total, 2);
    assert!(remote.spend()[0].spent_micro_usd >= 20_000);
}

#[test]
fn the_key_never_reaches_a_log_line() {
    // Exercise success and failure paths, then search everything logged so far.
    let sim = simulator("sequence = [\"503\", \"ok\", \"malformed\", \"429\", \"429\", \"429\"]");
    let remote = client(endpoint("chat", EndpointKind::Chat, &sim.base_url()));
    for _ in 0..3 {
        let _ = remote.chat("chat", &hello(), "req", soon());
    }
    let logs = logs().lock().expect("logs");
    let text = String::from_utf8_lossy(&logs);
    assert!(text.contains("remote call"), "the client logs its calls");
    assert!(!text.contains(KEY), "the key leaked into a log line");
}
