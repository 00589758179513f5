//! The voice-gate pipeline end to end: real WAV files through the real component, the
//! real model run by tract, checked against the true speech boundaries of the samples.

use std::sync::OnceLock;

use hybrid::runtime::{Outcome, PipelineError, Runtime};
use hybrid_tests::{component, pipeline, request, runtime, sample, truth};
use serde_json::Value;

/// Boundaries found must be within this of the truth (the acceptance bound).
const TOLERANCE_MS: i64 = 100;

fn rt() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| runtime(&[pipeline("voice-gate", component("voice_gate"), 30_000, 256)]))
}

fn gate(body: Vec<u8>, metadata: &[(&str, &str)]) -> Result<Outcome, PipelineError> {
    rt().handle("voice-gate", &request(body, "audio/wav", metadata))
}

fn json(outcome: &Outcome) -> Value {
    assert_eq!(outcome.response.content_type, "application/json");
    serde_json::from_slice(&outcome.response.body).expect("JSON body")
}

fn segments(v: &Value) -> Vec<(i64, i64)> {
    v["segments"]
        .as_array()
        .expect("segments array")
        .iter()
        .map(|s| {
            (
                s["start_ms"].as_i64().expect("start"),
                s["end_ms"].as_i64().expect("end"),
            )
        })
        .collect()
}

fn assert_matches_truth(file: &str) {
    let outcome = gate(sample(file), &[]).unwrap_or_else(|e| panic!("{file}: {e}"));
    let found = segments(&json(&outcome));
    let expected = segments(&truth()[file]);
    assert_eq!(
        found.len(),
        expected.len(),
        "{file}: found {found:?}, truth {expected:?}"
    );
    for ((fs, fe), (ts, te)) in found.iter().zip(&expected) {
        assert!(
            (fs - ts).abs() <= TOLERANCE_MS,
            "{file}: start {fs} vs true {ts}"
        );
        assert!(
            (fe - te).abs() <= TOLERANCE_MS,
            "{file}: end {fe} vs true {te}"
        );
    }
}

#[test]
fn finds_speech_within_100_ms_of_its_true_boundaries() {
    assert_matches_truth("speech-16k.wav");
    assert_matches_truth("speech-two-parts-16k.wav");
    assert_matches_truth("demo.wav");
}

#[test]
fn resampled_rates_find_the_same_speech() {
    for file in ["speech-8k.wav", "speech-44k.wav", "speech-48k.wav"] {
        assert_matches_truth(file);
    }
}

#[test]
fn silence_noise_and_hum_yield_no_segment() {
    for file in ["silence-16k.wav", "noise-16k.wav", "hum-16k.wav"] {
        let outcome = gate(sample(file), &[]).unwrap_or_else(|e| panic!("{file}: {e}"));
        let v = json(&outcome);
        assert_eq!(segments(&v), vec![], "{file}");
        assert_eq!(v["speech_ratio"].as_f64(), Some(0.0), "{file}");
        assert_eq!(
            outcome.response.routing.reason, "no speech detected",
            "{file}"
        );
    }
}

#[test]
fn the_routing_record_names_the_model_version_that_answered() {
    let outcome = gate(sample("speech-16k.wav"), &[]).expect("served");
    let routing = &outcome.response.routing;
    assert_eq!(routing.route, "local");
    assert_eq!(
        (routing.model.as_str(), routing.model_version.as_str()),
        ("silero-vad", "6.2.3")
    );
    assert!(!outcome.model_runs.is_empty());
    assert!(
        outcome
            .model_runs
            .iter()
            .all(|r| r.model == "silero-vad" && r.version == "6.2.3")
    );
}

#[test]
fn egress_counts_only_speech_when_gated() {
    let body = sample("speech-16k.wav");
    let len = body.len() as u64;
    let v = json(&gate(body, &[]).expect("served"));
    let all = v["egress_bytes"]["all_audio"].as_u64().expect("all");
    let speech = v["egress_bytes"]["speech_only"].as_u64().expect("speech");
    assert_eq!(all, len);
    let (start, end) = segments(&v)[0];
    // A 16 kHz 16-bit mono WAV of the segment: 44-byte header + 32 bytes per ms.
    let expected = 44 + 32 * (end - start) as u64;
    assert_eq!(
        speech, expected,
        "speech_only is the exact size of that WAV"
    );
    // No transcription endpoint on this runtime: nothing was sent, everything was saved.
    assert_eq!(v["egress_bytes"]["sent"].as_u64(), Some(0));
    assert_eq!(v["egress_bytes"]["saved"].as_u64(), Some(all));
}

#[test]
fn parameters_change_the_decision() {
    let file = "speech-two-parts-16k.wav";
    let default = segments(&json(&gate(sample(file), &[]).expect("served")));
    assert_eq!(default.len(), 2);
    // A minimum silence longer than the 1.5 s pause merges the two sentences.
    let merged = segments(&json(
        &gate(sample(file), &[("min_silence_ms", "2000")]).expect("served"),
    ));
    assert_eq!(merged.len(), 1, "{merged:?}");
    assert!((merged[0].0 - default[0].0).abs() <= 1 && merged[0].1 >= default[1].1 - 1);
    // Extra padding widens each segment by the difference in padding.
    let padded = json(&gate(sample(file), &[("speech_pad_ms", "130")]).expect("served"));
    let wide = segments(&padded);
    assert_eq!(wide[0].0, default[0].0 - 100);
    assert_eq!(padded["params"]["speech_pad_ms"].as_u64(), Some(130));
    // Nothing is longer than a minute of speech.
    let long = json(&gate(sample(file), &[("min_speech_ms", "60000")]).expect("served"));
    assert_eq!(segments(&long), vec![]);
}

fn rejected(result: Result<Outcome, PipelineError>) -> (u16, String) {
    let err = result.expect_err("rejected");
    (err.status(), err.to_string())
}

#[test]
fn bad_parameters_are_named() {
    let (status, msg) = rejected(gate(sample("speech-16k.wav"), &[("threshold", "abc")]));
    assert_eq!(status, 400, "{msg}");
    assert!(msg.contains("threshold"), "{msg}");
}

#[test]
fn empty_corrupt_and_truncated_wavs_are_bad_requests() {
    let (status, msg) = rejected(gate(Vec::new(), &[]));
    assert_eq!(status, 400, "{msg}");
    assert!(msg.contains("empty body"), "{msg}");

    let (status, msg) = rejected(gate(b"this is not audio at all, just text".to_vec(), &[]));
    assert_eq!(status, 400, "{msg}");
    assert!(msg.contains("RIFF") || msg.contains("WAV"), "{msg}");

    let mut truncated = sample("speech-16k.wav");
    truncated.truncate(truncated.len() / 2);
    let (status, msg) = rejected(gate(truncated, &[]));
    assert_eq!(status, 400, "{msg}");
    assert!(msg.contains("truncated"), "{msg}");

    let mut corrupt = sample("speech-16k.wav");
    corrupt[8..12].copy_from_slice(b"AVI ");
    let (status, msg) = rejected(gate(corrupt, &[]));
    assert_eq!(status, 400, "{msg}");
}

#[test]
fn unsupported_formats_say_what_is_accepted() {
    for (file, what) in [
        ("stereo-16k.wav", "channel"),
        ("speech-16k-24bit.wav", "24"),
        ("speech-22k.wav", "22050"),
    ] {
        let (status, msg) = rejected(gate(sample(file), &[]));
        assert_eq!(status, 415, "{file}: {msg}");
        assert!(msg.contains(what), "{file}: {msg}");
    }
    let (status, msg) = rejected(rt().handle(
        "voice-gate",
        &request(sample("speech-16k.wav"), "image/png", &[]),
    ));
    assert_eq!(status, 415, "{msg}");
    assert!(msg.contains("image/png"), "{msg}");
}

/// The voice-gate build of 0.1.1, kept as bytes, answers exactly as the current (0.2)
/// build of the same source: 0.1 components run unchanged beside 0.2 ones.
#[test]
fn the_0_1_build_kept_as_bytes_answers_like_the_current_one() {
    let fixture = hybrid_tests::root().join("tests/fixtures/voice_gate-0.1.1.wasm");
    let rt = runtime(&[
        pipeline("voice-gate", component("voice_gate"), 30_000, 256),
        pipeline("voice-gate-0.1", fixture, 30_000, 256),
    ]);
    for file in ["speech-16k.wav", "speech-44k.wav", "silence-16k.wav"] {
        let asked = request(sample(file), "audio/wav", &[("transcribe", "off")]);
        let now = rt.handle("voice-gate", &asked).expect("0.2 build");
        let old = rt.handle("voice-gate-0.1", &asked).expect("0.1 build");
        assert_eq!(json(&old)["segments"], json(&now)["segments"], "{file}");
        let (o, n) = (&old.response.routing, &now.response.routing);
        assert_eq!(
            (&o.route, &o.reason, &o.model),
            (&n.route, &n.reason, &n.model),
            "{file}"
        );
        assert_eq!(old.model_runs.len(), now.model_runs.len(), "{file}");
    }
    let wrong = rt
        .handle(
            "voice-gate-0.1",
            &request(b"not a wav".to_vec(), "audio/wav", &[]),
        )
        .expect_err("not a wav");
    assert_eq!(wrong.status(), 400, "{wrong}");
}
