//! Silero VAD run by tract directly, against the same audio through the voice-gate guest.
//!
//! The audio is speech from `samples/generated/speech-16k.wav`, starting 2 s in. Two sizes:
//! - one 32 ms chunk (512 samples): tract on a [1, 576] input (64 zero samples of
//!   context, then the chunk) with zero `h`/`c` [1, 1, 128], against voice-gate handling
//!   a 16 kHz WAV of exactly those 512 samples;
//! - 31 chunks (15 872 samples, 992 ms: "one second" cut to whole chunks so both sides
//!   run the same rows): tract on [31, 576] against voice-gate on the 31-chunk WAV.
//!
//! The guest is measured both ways: `fresh` ([`Runtime::handle`]: new store and instance
//! per request, what serving costs) and `reused` ([`PipelineInstance::handle`]). The guest
//! makes one `local.run` call of the same shape as the tract figure, so the difference is
//! the sandbox plus the guest's own work (WAV parsing, framing, tensor copies across the
//! boundary, segmenting, the JSON report). Requests carry `transcribe=off`, so the guest
//! makes no remote call. The tract figure is `ModelRegistry::run`, input checks included,
//! with the inputs built outside the timed part.
//!
//! `vad_fuel` runs the fresh-instance guest again on an engine that meters fuel, with a
//! fuel limit it never reaches: the cost of `limits.fuel`.
//!
//! [`Runtime::handle`]: hybrid::runtime::Runtime::handle
//! [`PipelineInstance::handle`]: hybrid::runtime::PipelineInstance::handle

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkGroup, Criterion};
use std::sync::Arc;

use hybrid::config::{Limits, PipelineConfig, RuntimeConfig};
use hybrid::local::{NamedTensor, Tensor};
use hybrid::remote::Remote;
use hybrid::runtime::Runtime;
use hybrid_tests::{
    component, pipeline, request, runtime, runtime_with_engine, sample, test_engine, vad_model,
    wav_16k_mono, wav_samples,
};

/// New samples per model row (32 ms at 16 kHz).
const CHUNK: usize = 512;
/// Samples of the previous chunk each row starts with.
const CONTEXT: usize = 64;
/// Where in the sample the benchmark audio starts: 2 s in, inside the speech.
const OFFSET: usize = 2 * 16_000;
/// Chunks in the "one second" case.
const SECOND_CHUNKS: usize = 31;

const MODEL: &str = "silero-vad";
const PIPELINE: &str = "voice-gate";

/// Model rows for `audio`, built as voice-gate builds them: each row is the previous
/// chunk's last 64 samples (zeros before the first) and the next 512.
fn rows(audio: &[i16]) -> Vec<f32> {
    assert_eq!(audio.len() % CHUNK, 0, "whole chunks only");
    let scaled: Vec<f32> = audio.iter().map(|&s| f32::from(s) / 32768.0).collect();
    let mut out = Vec::with_capacity(audio.len() / CHUNK * (CONTEXT + CHUNK));
    for start in (0..scaled.len()).step_by(CHUNK) {
        let from = start.saturating_sub(CONTEXT);
        out.resize(out.len() + CONTEXT - (start - from), 0.0);
        out.extend_from_slice(&scaled[from..start + CHUNK]);
    }
    out
}

/// The model's three inputs for `audio`, with zero state.
fn model_inputs(audio: &[i16]) -> Vec<NamedTensor> {
    let named = |name: &str, dims: Vec<usize>, values: &[f32]| NamedTensor {
        name: name.into(),
        tensor: Tensor::from_f32(dims, values),
    };
    let zeros = [0.0f32; 128];
    vec![
        named(
            "input",
            vec![audio.len() / CHUNK, CONTEXT + CHUNK],
            &rows(audio),
        ),
        named("h", vec![1, 1, 128], &zeros),
        named("c", vec![1, 1, 128], &zeros),
    ]
}

/// Benchmarks tract, the fresh-instance guest and the reused-instance guest on `audio`,
/// under `label` (`1_chunk`, `31_chunks`).
fn compare(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &Runtime,
    label: &str,
    audio: &[i16],
) {
    let inputs = model_inputs(audio);
    let models = rt.models();
    group.bench_function(format!("tract/{label}"), |b| {
        b.iter_batched(
            || inputs.clone(),
            |inputs| models.run(MODEL, inputs).expect("model runs"),
            BatchSize::SmallInput,
        );
    });

    // `transcribe=off`: the VAD path only, no call to a serverless endpoint.
    let req = request(wav_16k_mono(audio), "audio/wav", &[("transcribe", "off")]);
    let outcome = rt.handle(PIPELINE, &req).expect("voice-gate serves");
    assert_eq!(
        outcome.model_runs.len(),
        1,
        "one model call, as on the tract side"
    );
    group.bench_function(format!("guest_fresh/{label}"), |b| {
        b.iter(|| {
            rt.handle(PIPELINE, black_box(&req))
                .expect("voice-gate serves")
        });
    });
    let mut instance = rt.instantiate(PIPELINE, "bench").expect("instantiates");
    group.bench_function(format!("guest_reused/{label}"), |b| {
        b.iter(|| instance.handle(black_box(&req)).expect("voice-gate serves"));
    });
}

fn vad(c: &mut Criterion) {
    let voice_gate = pipeline(PIPELINE, component("voice_gate"), 30_000, 256);
    let rt = runtime(std::slice::from_ref(&voice_gate));
    let speech = wav_samples(&sample("speech-16k.wav"));
    let second = &speech[OFFSET..OFFSET + SECOND_CHUNKS * CHUNK];

    let mut group = c.benchmark_group("vad");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    compare(&mut group, &rt, "1_chunk", &second[..CHUNK]);
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(5));
    compare(&mut group, &rt, "31_chunks", second);
    group.finish();

    // The same pipeline with fuel metering compiled in and a (never reached) fuel limit:
    // what `limits.fuel` costs.
    let metered = runtime_with_engine(
        &RuntimeConfig {
            fuel: true,
            ..test_engine()
        },
        &[vad_model()],
        Arc::new(Remote::none()),
        &[PipelineConfig {
            limits: Limits {
                fuel: Some(u64::MAX / 2),
                ..Limits::default()
            },
            ..voice_gate
        }],
    );
    let mut group = c.benchmark_group("vad_fuel");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for (label, audio) in [("1_chunk", &second[..CHUNK]), ("31_chunks", second)] {
        let req = request(wav_16k_mono(audio), "audio/wav", &[("transcribe", "off")]);
        group.bench_function(format!("guest_fresh/{label}"), |b| {
            b.iter(|| {
                metered
                    .handle(PIPELINE, black_box(&req))
                    .expect("voice-gate serves")
            });
        });
    }
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    vad(&mut criterion);
    criterion.final_summary();
}
