//! The voice pipeline's hybrid path end to end: the real voice-gate component finds the
//! speech with the real VAD model, and the host sends only that speech to the serverless
//! simulator's `/v1/audio/transcriptions` over loopback. Checked: the transcript and its
//! accounting, that silence sends nothing, and that a failing, missing or over-budget
//! endpoint still leaves a 200 answer with the segments and says why there is no
//! transcript.

use std::sync::Arc;

use hybrid::config::{BudgetConfig, EndpointConfig};
use hybrid::remote::Remote;
use hybrid::runtime::{Outcome, Runtime};
use hybrid_sim::{ApiKey, Scenario, SimConfig, SimHandle};
use hybrid_tests::{component, pipeline, request, runtime, runtime_with_remote, sample};
use serde_json::{Value, json};

/// The key the simulator accepts, handed to the host through [`KEY_VAR`].
/// A real-looking key (see `hybrid_tests::secrets`).
const KEY: &str = hybrid_tests::secrets::SERVERLESS_KEY;
/// The variable the endpoint config names; only the test's env closure answers it.
const KEY_VAR: &str = "HYBRID_TEST_TRANSCRIBE_KEY";
/// US dollars per second of audio.
const PRICE_PER_SECOND: f64 = 0.0001;
/// Attempts per call.
const MAX_ATTEMPTS: u32 = 2;
/// The simulator's transcription route.
const ROUTE: &str = "/v1/audio/transcriptions";

fn sim() -> SimHandle {
    hybrid_sim::spawn(SimConfig::with_key(
        ApiKey::new(KEY).expect("non-empty key"),
    ))
    .expect("simulator starts")
}

/// Endpoint `transcribe` at the simulator, with small timeouts and backoff.
fn endpoint(base_url: &str) -> EndpointConfig {
    serde_json::from_value(json!({
        "name": "transcribe",
        "kind": "transcription",
        "base_url": base_url,
        "api_key_env": KEY_VAR,
        "model": "whisper-large-v3",
        "price": {"per_audio_second": PRICE_PER_SECOND},
        "timeout_ms": 10_000,
        "max_attempts": MAX_ATTEMPTS,
        "backoff_ms": 10,
        "max_backoff_ms": 50,
    }))
    .expect("endpoint config")
}

/// A runtime whose `transcribe` endpoint is `sim`, under `budget`.
fn gate_runtime(sim: &SimHandle, budget: &BudgetConfig) -> Runtime {
    let remote = Remote::with_env(&[endpoint(&sim.base_url())], budget, &|var| {
        (var == KEY_VAR).then(|| KEY.to_owned())
    })
    .expect("remote set up");
    runtime_with_remote(Arc::new(remote), &[voice_gate()])
}

fn voice_gate() -> hybrid::config::PipelineConfig {
    pipeline("voice-gate", component("voice_gate"), 30_000, 256)
}

fn gate(rt: &Runtime, file: &str, metadata: &[(&str, &str)]) -> (Outcome, Value) {
    let outcome = rt
        .handle("voice-gate", &request(sample(file), "audio/wav", metadata))
        .unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(outcome.response.content_type, "application/json");
    let json = serde_json::from_slice(&outcome.response.body).expect("JSON body");
    (outcome, json)
}

/// Segment durations in milliseconds.
fn durations_ms(v: &Value) -> Vec<u64> {
    v["segments"]
        .as_array()
        .expect("segments array")
        .iter()
        .map(|s| s["end_ms"].as_u64().expect("end") - s["start_ms"].as_u64().expect("start"))
        .collect()
}

fn u64_at(v: &Value, path: &[&str]) -> u64 {
    path.iter()
        .fold(v, |v, key| &v[key])
        .as_u64()
        .unwrap_or_else(|| panic!("{path:?} is not a number in {v}"))
}

#[test]
fn speech_alone_is_transcribed_by_the_serverless_endpoint() {
    let sim = sim();
    let rt = gate_runtime(&sim, &BudgetConfig::default());
    let (outcome, v) = gate(&rt, "speech-two-parts-16k.wav", &[("language", "en")]);

    // Both sentences, back to back, in one 16 kHz 16-bit mono WAV.
    let durations = durations_ms(&v);
    assert_eq!(durations.len(), 2, "{v}");
    let speech_only = u64_at(&v, &["egress_bytes", "speech_only"]);
    assert_eq!(speech_only, 44 + 32 * durations.iter().sum::<u64>());
    let seconds = (speech_only - 44) as f64 / 32_000.0;

    assert_eq!(outcome.remote_calls.len(), 1);
    assert!(outcome.remote_failures.is_empty());
    let call = &outcome.remote_calls[0];
    let t = &v["transcript"];
    assert_eq!(
        t["text"],
        format!("sim transcript of {seconds:.2} s of audio"),
        "{v}"
    );
    assert_eq!(t["endpoint"], "transcribe");
    assert_eq!(t["model"], "whisper-large-v3");
    assert_eq!(t["attempts"], 1);
    // The simulator bills whole seconds, as OpenAI does; the price applies to those.
    assert_eq!(call.usage.audio_seconds, seconds.ceil() as f32);
    assert_eq!(t["audio_seconds"].as_f64(), Some(seconds.ceil()));
    let cost = (seconds.ceil() * PRICE_PER_SECOND * 1e6).round() as u64;
    assert_eq!(u64_at(&v, &["transcript", "cost_micro_usd"]), cost);
    assert_eq!(call.cost_micro_usd, cost);
    assert_eq!(t["cost_usd"].as_f64(), Some(cost as f64 / 1e6));
    assert_eq!(u64_at(&v, &["transcript", "bytes_sent"]), call.bytes_sent);
    assert!(v.get("transcript_skipped").is_none(), "{v}");

    // Exactly the bytes the host sent, and everything else stayed on the box.
    let egress = &v["egress_bytes"];
    let all = u64_at(egress, &["all_audio"]);
    let sent = u64_at(egress, &["sent"]);
    assert_eq!(sent, call.bytes_sent);
    // The speech WAV plus the multipart framing around it.
    assert!(
        (speech_only..speech_only + 1024).contains(&sent),
        "sent {sent}, speech_only {speech_only}"
    );
    assert_eq!(u64_at(egress, &["saved"]), all - sent);

    let routing = &outcome.response.routing;
    assert_eq!(routing.route, "local+remote:transcribe");
    assert_eq!(routing.model, "whisper-large-v3");
    assert_eq!(routing.model_version, "");
    assert!(
        routing.reason.starts_with("2 speech segments, ")
            && routing
                .reason
                .ends_with(&format!("% speech; transcribed {seconds:.1} s of speech")),
        "{}",
        routing.reason
    );

    let stats = sim.stats();
    assert_eq!(stats.count(ROUTE, 200), 1);
    assert_eq!(stats.requests_total, 1);
}

#[test]
fn silence_sends_nothing() {
    let sim = sim();
    let rt = gate_runtime(&sim, &BudgetConfig::default());
    let (outcome, v) = gate(&rt, "silence-16k.wav", &[]);
    assert_eq!(v["transcript"], Value::Null);
    assert_eq!(v["transcript_skipped"], "no speech");
    assert_eq!(u64_at(&v, &["egress_bytes", "sent"]), 0);
    assert_eq!(
        u64_at(&v, &["egress_bytes", "saved"]),
        u64_at(&v, &["egress_bytes", "all_audio"])
    );
    assert_eq!(outcome.response.routing.route, "local");
    assert_eq!(outcome.response.routing.reason, "no speech detected");
    assert!(outcome.remote_calls.is_empty() && outcome.remote_failures.is_empty());
    assert_eq!(sim.stats().requests_total, 0);
}

#[test]
fn transcribe_off_keeps_the_speech_on_the_box() {
    let sim = sim();
    let rt = gate_runtime(&sim, &BudgetConfig::default());
    let (outcome, v) = gate(&rt, "speech-16k.wav", &[("transcribe", "off")]);
    assert_eq!(v["transcript"], Value::Null);
    assert_eq!(
        v["transcript_skipped"],
        "transcription turned off (metadata transcribe=off)"
    );
    assert_eq!(u64_at(&v, &["egress_bytes", "sent"]), 0);
    assert_eq!(outcome.response.routing.route, "local");
    assert_eq!(sim.stats().requests_total, 0);
}

#[test]
fn a_failing_endpoint_still_answers_with_the_segments() {
    let sim = sim();
    let scenario = Scenario::from_toml(r#"sequence = ["503", "503"]"#).expect("scenario");
    sim.set_scenario(scenario).expect("scenario set");
    let rt = gate_runtime(&sim, &BudgetConfig::default());
    let (outcome, v) = gate(&rt, "speech-16k.wav", &[]);

    assert_eq!(durations_ms(&v).len(), 1, "{v}");
    assert_eq!(v["transcript"], Value::Null);
    let skipped = v["transcript_skipped"].as_str().expect("skipped");
    assert!(skipped.starts_with("unavailable: "), "{skipped}");
    let routing = &outcome.response.routing;
    assert_eq!(routing.route, "local");
    assert_eq!(
        (routing.model.as_str(), routing.model_version.as_str()),
        ("silero-vad", "6.2.3")
    );
    assert!(
        routing
            .reason
            .ends_with("; transcript skipped (unavailable)"),
        "{}",
        routing.reason
    );

    // Every attempt reached the provider under one idempotency key.
    let stats = sim.stats();
    assert_eq!(stats.count(ROUTE, 503), u64::from(MAX_ATTEMPTS));
    assert_eq!(
        stats.idempotency_keys.len(),
        1,
        "{:?}",
        stats.idempotency_keys
    );
    let key = stats.idempotency_keys.values().next().expect("one key");
    assert_eq!(key.arrived, u64::from(MAX_ATTEMPTS));

    // The host knows what the failed attempts sent, and since WIT 0.2 tells the guest in
    // the failure record: the report counts every attempt's bytes, not "unknown".
    assert!(outcome.remote_calls.is_empty());
    assert_eq!(outcome.remote_failures.len(), 1);
    let failed = &outcome.remote_failures[0];
    assert_eq!(failed.attempts, MAX_ATTEMPTS);
    assert!(failed.bytes_sent > u64_at(&v, &["egress_bytes", "speech_only"]));
    assert_eq!(u64_at(&v, &["egress_bytes", "sent"]), failed.bytes_sent);
    let all = u64_at(&v, &["egress_bytes", "all_audio"]);
    assert_eq!(
        u64_at(&v, &["egress_bytes", "saved"]),
        all.saturating_sub(failed.bytes_sent)
    );
}

#[test]
fn a_box_without_serverless_answers_locally_and_says_so() {
    let rt = runtime(&[voice_gate()]);
    let (outcome, v) = gate(&rt, "speech-16k.wav", &[]);
    assert_eq!(durations_ms(&v).len(), 1, "{v}");
    assert_eq!(v["transcript"], Value::Null);
    let skipped = v["transcript_skipped"].as_str().expect("skipped");
    assert!(
        skipped.starts_with("not-found: no endpoint named \"transcribe\""),
        "{skipped}"
    );
    let routing = &outcome.response.routing;
    assert_eq!(routing.route, "local");
    assert!(
        routing
            .reason
            .ends_with("; transcript skipped (no transcription endpoint \"transcribe\")"),
        "{}",
        routing.reason
    );
    assert_eq!(u64_at(&v, &["egress_bytes", "sent"]), 0);
    assert_eq!(
        u64_at(&v, &["egress_bytes", "saved"]),
        u64_at(&v, &["egress_bytes", "all_audio"])
    );
    assert_eq!(outcome.remote_failures.len(), 1);
    assert_eq!(outcome.remote_failures[0].attempts, 0);
}

#[test]
fn a_spent_budget_skips_the_transcription() {
    let sim = sim();
    // One micro-dollar a minute: the first call spends it, the second is refused.
    let budget = BudgetConfig {
        per_minute: Some(0.000_001),
        ..BudgetConfig::default()
    };
    let rt = gate_runtime(&sim, &budget);
    let (first, v) = gate(&rt, "speech-16k.wav", &[]);
    assert_eq!(first.response.routing.route, "local+remote:transcribe");
    assert!(u64_at(&v, &["transcript", "cost_micro_usd"]) > 1);

    let (second, v) = gate(&rt, "speech-16k.wav", &[]);
    assert_eq!(v["transcript"], Value::Null);
    let skipped = v["transcript_skipped"].as_str().expect("skipped");
    assert!(skipped.starts_with("budget-exceeded: "), "{skipped}");
    assert_eq!(second.response.routing.route, "local");
    assert!(
        second
            .response
            .routing
            .reason
            .ends_with("; transcript skipped (budget-exceeded)"),
        "{}",
        second.response.routing.reason
    );
    assert_eq!(u64_at(&v, &["egress_bytes", "sent"]), 0);
    assert_eq!(sim.stats().count(ROUTE, 200), 1);
    assert_eq!(sim.stats().requests_total, 1);
}
