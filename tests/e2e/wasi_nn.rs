//! Standard `wasi:nn` on the host, end to end: real guest components built from the
//! published WIT, the real digits model from the registry.
//!
//! - `nn-classify` (the example written only against `wasi:nn`) classifies a digit with
//!   the probabilities tract gives for the same input, and its run is recorded like a
//!   `local.run`;
//! - `nn-probe` gets the same bytes through `wasi:nn` (`load-by-name` and `load`) as
//!   through `local.run`, and every error code a guest can reach: `not-found`,
//!   `unsupported-operation` (encoding, target), `security` (loading bytes off),
//!   `too-large`, `invalid-encoding`, `invalid-argument` (type, shape, FP16, name,
//!   builders);
//! - hostile guests are stopped: tensors past the memory cap trap, computes past
//!   `limits.model_runs` end the request.

use std::sync::Arc;

use hybrid::config::{NnConfig, PipelineConfig, RuntimeConfig};
use hybrid::local::{ModelRegistry, NamedTensor, Tensor};
use hybrid::remote::Remote;
use hybrid::runtime::{PipelineError, Runtime};
use hybrid_tests::{
    component, configured_model, nn_probe_body, pipeline, request, root, vad_model,
};
use serde_json::Value;

/// The grey levels of `samples/smoke/digit.json` (the same digit `nn-probe` runs).
fn digit_levels() -> Vec<f32> {
    let body = std::fs::read(root().join("samples/smoke/digit.json")).expect("digit.json");
    let json: Value = serde_json::from_slice(&body).expect("json");
    json["pixels"]
        .as_array()
        .expect("pixels")
        .iter()
        .map(|p| p.as_f64().expect("number") as f32)
        .collect()
}

fn digits_model_bytes() -> Vec<u8> {
    std::fs::read(configured_model("digits-v1", "models/train-digits").path).expect("model")
}

/// A runtime with `digits-v1`, `nn-classify`, `nn-probe` and `wasi:nn` settings `nn`.
fn runtime(nn: NnConfig, probe: PipelineConfig) -> Runtime {
    runtime_with(
        &[configured_model("digits-v1", "models/train-digits")],
        nn,
        probe,
    )
}

fn runtime_with(
    models: &[hybrid::config::ModelConfig],
    nn: NnConfig,
    probe: PipelineConfig,
) -> Runtime {
    let models = ModelRegistry::load(models).expect("models load");
    let config = RuntimeConfig {
        max_instances: 16,
        nn,
        ..RuntimeConfig::default()
    };
    let rt = Runtime::with_remote(&config, Arc::new(models), Arc::new(Remote::none()))
        .expect("runtime starts");
    rt.load_pipeline(&pipeline(
        "nn-classify",
        component("nn_classify"),
        10_000,
        64,
    ))
    .expect("nn-classify loads");
    rt.load_pipeline(&probe).expect("nn-probe loads");
    rt
}

fn probe_pipeline() -> PipelineConfig {
    pipeline("nn-probe", component("nn_probe"), 10_000, 64)
}

/// Loading bytes off (the default), no CPU fallback.
fn default_runtime() -> Runtime {
    runtime(NnConfig::default(), probe_pipeline())
}

/// Loading up to 4096 bytes (digits-v1 is 3327), CPU fallback on.
fn loading_runtime() -> Runtime {
    runtime(
        NnConfig {
            load_bytes_max: 4096,
            cpu_fallback: true,
        },
        probe_pipeline(),
    )
}

/// `nn-probe`'s JSON answer in `mode` with more metadata and `body`.
fn probe(rt: &Runtime, body: Vec<u8>, metadata: &[(&str, &str)]) -> Value {
    let outcome = rt
        .handle(
            "nn-probe",
            &request(body, "application/octet-stream", metadata),
        )
        .expect("nn-probe answers");
    serde_json::from_slice(&outcome.response.body).expect("JSON answer")
}

/// The code and data of a refused call, checking which call refused.
fn refused(answer: &Value, call: &str) -> (String, String) {
    assert_eq!(answer["call"], call, "{answer}");
    (
        answer["code"].as_str().expect("code").to_owned(),
        answer["data"].as_str().expect("data").to_owned(),
    )
}

#[test]
fn the_example_classifies_with_the_probabilities_tract_gives_and_is_recorded() {
    let rt = default_runtime();
    let levels = digit_levels();
    let body = serde_json::json!({ "pixels": levels })
        .to_string()
        .into_bytes();
    let outcome = rt
        .handle("nn-classify", &request(body, "application/json", &[]))
        .expect("nn-classify answers");
    let answer: Value = serde_json::from_slice(&outcome.response.body).expect("json");

    let input: Vec<f32> = levels.iter().map(|l| l / 16.0).collect();
    let direct = rt
        .models()
        .run(
            "digits-v1",
            vec![NamedTensor {
                name: "input".into(),
                tensor: Tensor::from_f32(vec![1, 64], &input),
            }],
        )
        .expect("tract runs");
    let expected = direct
        .outputs
        .iter()
        .find(|o| o.name == "probabilities")
        .and_then(|o| o.tensor.to_f32())
        .expect("probabilities");
    let got: Vec<f32> = answer["probabilities"]
        .as_array()
        .expect("probabilities")
        .iter()
        .map(|p| p.as_f64().expect("number") as f32)
        .collect();
    assert_eq!(got, expected, "bit for bit the same as tract directly");
    let best = (0..10).fold(0, |b, i| if expected[i] > expected[b] { i } else { b });
    assert_eq!(answer["label"], best);
    assert_eq!(answer["model"], "digits-v1");
    assert_eq!(answer["top"].as_array().map(Vec::len), Some(5));
    assert_eq!(outcome.response.routing.model, "digits-v1");

    assert_eq!(outcome.model_runs.len(), 1, "one compute, recorded");
    assert_eq!(outcome.model_runs[0].model, "digits-v1");
    assert_eq!(outcome.model_runs[0].version, "1.0.0");
}

#[test]
fn the_example_imports_wasi_nn_and_nothing_of_local() {
    let rt = default_runtime();
    let bytes = std::fs::read(component("nn_classify")).expect("component");
    let summary = rt.check_component(&bytes).expect("a valid pipeline");
    for interface in ["graph", "inference", "tensor", "errors"] {
        let name = format!("wasi:nn/{interface}@0.2.0-rc-2024-10-28");
        assert!(summary.imports.contains(&name), "{:?}", summary.imports);
    }
    assert!(
        !summary
            .imports
            .iter()
            .any(|i| i.starts_with("hybrid:inference/local")),
        "{:?}",
        summary.imports
    );
}

#[test]
fn an_unknown_model_name_is_not_found_and_lists_the_registry() {
    let rt = default_runtime();
    let answer = probe(&rt, Vec::new(), &[("model", "no-such-model")]);
    let (code, data) = refused(&answer, "load-by-name");
    assert_eq!(code, "not-found");
    assert!(data.contains("\"no-such-model\""), "{data}");
    assert!(
        data.contains("digits-v1"),
        "lists the loaded models: {data}"
    );
}

#[test]
fn wasi_nn_by_name_by_bytes_and_local_give_identical_outputs() {
    let rt = loading_runtime();
    let by_name = probe(&rt, Vec::new(), &[("mode", "by-name")]);
    let local = probe(&rt, Vec::new(), &[("mode", "local")]);
    let loaded = probe(&rt, digits_model_bytes(), &[("mode", "load")]);
    assert!(by_name["outputs"].is_array(), "{by_name}");
    assert_eq!(by_name["outputs"].as_array().map(Vec::len), Some(2));
    assert_eq!(by_name, local, "wasi:nn and local.run agree bit for bit");
    assert_eq!(
        by_name, loaded,
        "a model loaded from bytes agrees with the registry's"
    );
}

#[test]
fn the_vad_model_and_its_state_come_back_the_same_through_wasi_nn_and_local() {
    let rt = runtime_with(
        &[
            configured_model("digits-v1", "models/train-digits"),
            vad_model(),
        ],
        NnConfig::default(),
        probe_pipeline(),
    );
    let tone: Vec<f32> = (0..576).map(|i| (i as f32 / 9.0).sin() * 0.3).collect();
    let inputs = vec![
        NamedTensor {
            name: "input".into(),
            tensor: Tensor::from_f32(vec![1, 576], &tone),
        },
        NamedTensor {
            name: "h".into(),
            tensor: Tensor::from_f32(vec![1, 1, 128], &[0.0; 128]),
        },
        NamedTensor {
            name: "c".into(),
            tensor: Tensor::from_f32(vec![1, 1, 128], &[0.0; 128]),
        },
    ];
    let body = nn_probe_body(&inputs);
    let run = |via: &str| {
        probe(
            &rt,
            body.clone(),
            &[("mode", "run"), ("model", "silero-vad"), ("via", via)],
        )
    };
    let nn = run("nn");
    assert_eq!(nn["outputs"].as_array().map(Vec::len), Some(3), "{nn}");
    assert_eq!(nn, run("local"));
}

#[test]
fn loaded_models_are_recorded_under_one_label_with_their_digest() {
    let rt = loading_runtime();
    let outcome = rt
        .handle(
            "nn-probe",
            &request(
                digits_model_bytes(),
                "application/octet-stream",
                &[("mode", "load")],
            ),
        )
        .expect("answers");
    // The load and the compute both count as model runs; only the compute is recorded.
    assert_eq!(outcome.model_runs.len(), 1);
    assert_eq!(
        outcome.model_runs[0].model,
        hybrid::runtime::GUEST_BYTES_LABEL
    );
    let digest = hybrid::local::sha256_bytes(&digits_model_bytes());
    assert_eq!(
        outcome.model_runs[0].version,
        format!("sha256:{}", &digest[..12])
    );
}

#[test]
fn loading_bytes_is_refused_unless_the_config_allows_it() {
    let rt = default_runtime();
    let answer = probe(&rt, digits_model_bytes(), &[("mode", "load")]);
    let (code, data) = refused(&answer, "load");
    assert_eq!(code, "security");
    assert!(data.contains("load_bytes_max"), "{data}");
}

#[test]
fn other_encodings_are_unsupported() {
    let rt = loading_runtime();
    for encoding in ["tensorflow", "openvino", "pytorch", "ggml", "autodetect"] {
        let answer = probe(
            &rt,
            digits_model_bytes(),
            &[("mode", "load"), ("encoding", encoding)],
        );
        let (code, data) = refused(&answer, "load");
        assert_eq!(code, "unsupported-operation", "{encoding}");
        assert!(data.contains(encoding), "{data}");
    }
}

#[test]
fn bytes_that_are_not_onnx_are_an_invalid_encoding() {
    let rt = loading_runtime();
    let answer = probe(
        &rt,
        b"certainly not a protobuf".to_vec(),
        &[("mode", "load")],
    );
    let (code, data) = refused(&answer, "load");
    assert_eq!(code, "invalid-encoding");
    assert!(data.contains("ONNX"), "{data}");
}

#[test]
fn a_model_over_the_byte_limit_is_too_large() {
    let rt = loading_runtime();
    let answer = probe(&rt, vec![0; 5000], &[("mode", "load")]);
    let (code, data) = refused(&answer, "load");
    assert_eq!(code, "too-large");
    assert!(data.contains("5000") && data.contains("4096"), "{data}");
}

#[test]
fn an_onnx_graph_is_one_builder() {
    let rt = loading_runtime();
    let answer = probe(
        &rt,
        digits_model_bytes(),
        &[("mode", "load"), ("split", "true")],
    );
    let (code, data) = refused(&answer, "load");
    assert_eq!(code, "invalid-argument");
    assert!(data.contains("got 2"), "{data}");
}

#[test]
fn gpu_and_tpu_fall_back_to_the_cpu_only_when_the_config_says_so() {
    let strict = default_runtime();
    let lenient = loading_runtime();
    let cpu = probe(&lenient, digits_model_bytes(), &[("mode", "load")]);
    for target in ["gpu", "tpu"] {
        let metadata = [("mode", "load"), ("target", target)];
        let answer = probe(&strict, digits_model_bytes(), &metadata);
        let (code, data) = refused(&answer, "load");
        assert_eq!(code, "unsupported-operation", "{target}");
        assert!(
            data.contains(target) && data.contains("cpu_fallback"),
            "{data}"
        );
        let fell_back = probe(&lenient, digits_model_bytes(), &metadata);
        assert_eq!(fell_back, cpu, "{target} ran on the CPU");
    }
}

#[test]
fn wrong_tensor_types_shapes_and_names_are_invalid_arguments() {
    let rt = default_runtime();
    for (mode, needle) in [
        ("wrong-type", "expected fp32, got i64"),
        ("wrong-shape", "expected shape [?, 64], got [1, 63]"),
        ("fp16", "FP16 is not supported"),
        ("bad-name", "has no input \"pixels\""),
    ] {
        let answer = probe(&rt, Vec::new(), &[("mode", mode)]);
        let (code, data) = refused(&answer, "compute");
        assert_eq!(code, "invalid-argument", "{mode}");
        assert!(data.contains(needle), "{mode}: {data}");
    }
}

#[test]
fn computes_count_against_the_model_run_limit() {
    let mut limited = probe_pipeline();
    limited.limits.model_runs = 3;
    let rt = runtime(NnConfig::default(), limited);
    let within = probe(&rt, Vec::new(), &[("mode", "compute-loop"), ("count", "3")]);
    assert!(within["outputs"].is_array(), "{within}");
    let err = rt
        .handle(
            "nn-probe",
            &request(Vec::new(), "", &[("mode", "compute-loop"), ("count", "4")]),
        )
        .expect_err("past the limit");
    assert!(matches!(err, PipelineError::LimitExceeded { .. }), "{err}");
}

#[test]
fn a_guest_hoarding_tensors_is_stopped_at_its_memory_cap() {
    let rt = default_runtime();
    let err = rt
        .handle(
            "nn-probe",
            &request(Vec::new(), "", &[("mode", "tensor-flood")]),
        )
        .expect_err("stopped");
    let message = err.to_string();
    assert!(message.contains("memory cap"), "{message}");
    // The host keeps serving.
    let answer = probe(&rt, Vec::new(), &[]);
    assert!(answer["outputs"].is_array(), "{answer}");
}
