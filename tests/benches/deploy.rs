//! What a deploy costs, from the end of an upload to the first answer of the new version,
//! for voice-gate with its smoke request (one second of speech, kept on the box):
//!
//! - `deploy/voice_gate_cold`: a version never seen before: compiled by Cranelift, the
//!   smoke request run, swapped in, then one request answered by it (target < 250 ms);
//! - `deploy/voice_gate_warm`: a version this process compiled and smoke-tested before
//!   (two versions deployed in turn): swapped in, then one request (target < 5 ms);
//! - `deploy/voice_gate_request`: the request alone, for reference.
//!
//! Measured on the runtime directly (`Runtime::deploy`, what the admin API calls on a
//! worker thread), so the upload itself is not included.

use std::time::{Duration, SystemTime};

use criterion::{Criterion, SamplingMode};
use hybrid::config::SmokeRequest;
use hybrid::runtime::{ComponentSource, Rollout};
use hybrid_tests::edge_box::component_variant;
use hybrid_tests::{component, pipeline, request, runtime, sample, wav_16k_mono, wav_samples};

fn deploy(c: &mut Criterion) {
    let speech = wav_16k_mono(&wav_samples(&sample("speech-16k.wav"))[16_000..32_000]);
    let dir = std::env::temp_dir().join(format!("hybrid-bench-deploy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let smoke_body = dir.join("speech.wav");
    std::fs::write(&smoke_body, &speech).expect("smoke body");
    let mut config = pipeline("voice-gate", component("voice_gate"), 10_000, 256);
    config.smoke = vec![SmokeRequest {
        body: smoke_body,
        content_type: "audio/wav".into(),
        metadata: [("transcribe".to_owned(), "off".to_owned())].into(),
        status: 200,
    }];
    let rt = runtime(&[config]);
    let wasm = std::fs::read(component("voice_gate")).expect("voice_gate.wasm");
    let req = request(speech, "audio/wav", &[("transcribe", "off")]);
    let go_live = |bytes: &[u8]| {
        rt.deploy(
            "voice-gate",
            bytes,
            ComponentSource::Upload,
            SystemTime::now(),
            Rollout::Replace,
        )
        .expect("deploys");
        let outcome = rt.handle("voice-gate", &req).expect("served");
        assert_eq!(outcome.response.routing.route, "local");
    };

    let mut group = c.benchmark_group("deploy");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));
    let mut n = 0u64;
    group.bench_function("voice_gate_cold", |b| {
        b.iter(|| {
            n += 1;
            go_live(&component_variant(&wasm, &format!("cold-{n}")));
        });
    });
    let versions = [
        component_variant(&wasm, "warm-a"),
        component_variant(&wasm, "warm-b"),
    ];
    go_live(&versions[0]);
    go_live(&versions[1]);
    group
        .sampling_mode(SamplingMode::Auto)
        .sample_size(50)
        .measurement_time(Duration::from_secs(4));
    let mut i = 0usize;
    group.bench_function("voice_gate_warm", |b| {
        b.iter(|| {
            i += 1;
            go_live(&versions[i % 2]);
        });
    });
    group.bench_function("voice_gate_request", |b| {
        b.iter(|| rt.handle("voice-gate", &req).expect("served"));
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    deploy(&mut criterion);
    criterion.final_summary();
}
