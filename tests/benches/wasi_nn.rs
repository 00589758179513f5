//! One model run three ways: tract directly, a guest through `local.run`, a guest through
//! standard `wasi:nn`; for the classifier (`digits-v1`, one 8x8 digit) and Silero VAD
//! (one 32 ms chunk: input [1, 576], state `h`/`c` [1, 1, 128]).
//!
//! - `tract/<model>`: [`ModelRegistry::run`] (input checks, a CPU slot, tract), the
//!   inputs built outside the timed part;
//! - `local/<model>` and `wasi_nn/<model>`: `nn-probe` in mode `run` on one reused
//!   instance ([`PipelineInstance::handle`]), the same inputs in the request body; the
//!   guest decodes them and calls `local.run`, or `load-by-name` + `init-execution-context`
//!   + `compute` (the whole per-request `wasi:nn` sequence), then hex-encodes the outputs.
//!
//! Both guest paths do the same guest-side work, so `wasi_nn - local` is the cost of the
//! `wasi:nn` calls over `local.run` (resources in the table, one tensor copy per input and
//! output through `tensor.data`), and `local - tract` the sandbox and the copies across
//! the boundary.
//!
//!
//! `wasi_nn_request/*` is a whole request in a fresh sandbox ([`Runtime::handle`]: store,
//! instance, call, answer), the digit classified two portable ways: `nn-classify` (a
//! `pipeline` component: `load-by-name` of the registry's model, JSON in and out) and
//! `command` (`examples/wasi-nn-onnx-command`, a `wasi:cli` command: the tensor on stdin,
//! the model read from its preopened `fixture/` and passed to `load`, JSON on stdout);
//! between them, `nn-probe-load` (`nn-probe` in mode `load`, a `pipeline` component: the
//! model's bytes in the request body, passed to `load`, one compute), so `command` minus
//! `nn-probe-load` is what being a command costs (its start, the file read through the
//! preopen, stdio) and `nn-probe-load` minus `nn-classify` what `load` of the bytes costs
//! over `load-by-name` (tract parsing and optimising the model for each request).
//!
//! [`ModelRegistry::run`]: hybrid::local::ModelRegistry::run
//! [`Runtime::handle`]: hybrid::runtime::Runtime::handle
//! [`PipelineInstance::handle`]: hybrid::runtime::PipelineInstance::handle

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion};
use hybrid::config::RuntimeConfig;
use hybrid::local::{ModelRegistry, NamedTensor, Tensor};
use hybrid::remote::Remote;
use hybrid::runtime::Runtime;
use hybrid_tests::{component, configured_model, nn_probe_body, pipeline, request, vad_model};

const PROBE: &str = "nn-probe";

fn named(name: &str, dims: Vec<usize>, values: &[f32]) -> NamedTensor {
    NamedTensor {
        name: name.into(),
        tensor: Tensor::from_f32(dims, values),
    }
}

/// One digit from `samples/smoke/digit.json`, scaled as the model takes it.
fn digit() -> Vec<NamedTensor> {
    const LEVELS: [u8; 64] = [
        0, 0, 7, 16, 14, 3, 0, 0, 0, 0, 9, 14, 11, 15, 0, 0, 0, 0, 1, 5, 0, 15, 5, 0, 0, 0, 0, 0,
        0, 16, 5, 0, 0, 0, 0, 0, 3, 16, 4, 0, 0, 0, 0, 1, 12, 14, 1, 0, 0, 0, 5, 12, 16, 16, 14, 1,
        0, 0, 8, 16, 14, 10, 13, 3,
    ];
    let values: Vec<f32> = LEVELS.iter().map(|&l| f32::from(l) / 16.0).collect();
    vec![named("input", vec![1, 64], &values)]
}

/// One 32 ms VAD chunk (64 samples of context, 512 new) of a 440 Hz tone, zero state.
fn vad_chunk() -> Vec<NamedTensor> {
    let tone: Vec<f32> = (0..576)
        .map(|i| 0.3 * (i as f32 * 440.0 * std::f32::consts::TAU / 16_000.0).sin())
        .collect();
    let zeros = [0.0f32; 128];
    vec![
        named("input", vec![1, 576], &tone),
        named("h", vec![1, 1, 128], &zeros),
        named("c", vec![1, 1, 128], &zeros),
    ]
}

fn wasi_nn(c: &mut Criterion) {
    let models = ModelRegistry::load(&[
        configured_model("digits-v1", "models/train-digits"),
        vad_model(),
    ])
    .expect("models load");
    let config = RuntimeConfig {
        max_instances: 16,
        ..RuntimeConfig::default()
    };
    let rt = Runtime::with_remote(&config, Arc::new(models), Arc::new(Remote::none()))
        .expect("runtime starts");
    rt.load_pipeline(&pipeline(PROBE, component("nn_probe"), 30_000, 64))
        .expect("nn-probe loads");

    let mut group = c.benchmark_group("wasi_nn");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for (label, model, inputs) in [
        ("digits", "digits-v1", digit()),
        ("vad", "silero-vad", vad_chunk()),
    ] {
        let registry = rt.models();
        group.bench_function(format!("tract/{label}"), |b| {
            b.iter_batched(
                || inputs.clone(),
                |inputs| registry.run(model, inputs).expect("model runs"),
                BatchSize::SmallInput,
            );
        });
        let body = nn_probe_body(&inputs);
        let mut answers = Vec::new();
        for via in ["local", "nn"] {
            let req = request(
                body.clone(),
                "application/octet-stream",
                &[("mode", "run"), ("model", model), ("via", via)],
            );
            let mut instance = rt.instantiate(PROBE, "bench").expect("instantiates");
            let outcome = instance.handle(&req).expect("nn-probe answers");
            assert_eq!(outcome.model_runs.len(), 1, "one model run per request");
            answers.push(outcome.response.body.clone());
            let name = if via == "nn" { "wasi_nn" } else { "local" };
            group.bench_function(format!("{name}/{label}"), |b| {
                b.iter(|| instance.handle(black_box(&req)).expect("nn-probe answers"));
            });
        }
        assert_eq!(
            answers[0], answers[1],
            "local and wasi:nn give the same outputs"
        );
    }
    group.finish();
}

/// `nn-classify` and the outside `wasi:cli` command, one digit each, a fresh sandbox per
/// request.
fn per_request(c: &mut Criterion) {
    let digits = configured_model("digits-v1", "models/train-digits");
    let dir = hybrid_tests::edge_box::Scratch::new("bench-nn-command");
    std::fs::create_dir_all(dir.0.join("fixture")).expect("fixture");
    std::fs::copy(&digits.path, dir.0.join("fixture/model.onnx")).expect("model");
    let config = format!(
        "[runtime]\nmax_instances = 16\n[runtime.nn]\nload_bytes_max = 4096\n\n\
         [[model]]\nname = \"digits-v1\"\nversion = {:?}\npath = {:?}\nsha256 = {:?}\n\n\
         [[pipeline]]\nname = \"nn-classify\"\ncomponent = {:?}\n\n\
         [[pipeline]]\nname = \"nn-probe\"\ncomponent = {:?}\n\n\
         [[pipeline]]\nname = \"command\"\ncomponent = {:?}\n\
         preopens = {{ \"fixture\" = \"fixture\" }}\nargs = [\"--output\", \"probabilities\"]\n\
         content_type = \"application/json\"\n",
        digits.version,
        digits.path,
        digits.sha256,
        component("nn_classify"),
        component("nn_probe"),
        component("nn-onnx-command"),
    );
    let path = dir.0.join("hybrid.toml");
    std::fs::write(&path, config).expect("config");
    let rt = Runtime::from_config(&hybrid::config::Config::load(&path).expect("config"))
        .expect("runtime starts");
    let values = digit().remove(0).tensor.to_f32().expect("fp32");
    let levels: Vec<f32> = values.iter().map(|v| v * 16.0).collect();
    let pixels = serde_json::json!({ "pixels": levels })
        .to_string()
        .into_bytes();
    let tensor: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut group = c.benchmark_group("wasi_nn_request");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    let onnx = std::fs::read(&digits.path).expect("model");
    for (label, name, body, content_type, mode) in [
        (
            "nn-classify",
            "nn-classify",
            pixels,
            "application/json",
            None,
        ),
        (
            "nn-probe-load",
            "nn-probe",
            onnx,
            "application/octet-stream",
            Some("load"),
        ),
        (
            "command",
            "command",
            tensor,
            "application/octet-stream",
            None,
        ),
    ] {
        let metadata: Vec<(&str, &str)> = mode.map(|m| ("mode", m)).into_iter().collect();
        let req = request(body, content_type, &metadata);
        let outcome = rt.handle(name, &req).expect("answers");
        assert_eq!(outcome.model_runs.len(), 1, "{label}: one compute");
        group.bench_function(label, |b| {
            b.iter(|| rt.handle(name, black_box(&req)).expect("answers"));
        });
    }
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    wasi_nn(&mut criterion);
    per_request(&mut criterion);
    criterion.final_summary();
}
