//! The `local` side without wasm: the real Silero VAD model (and MiniLM, for plans made
//! per input shape) loaded by the registry and called directly, as a guest's `local.run`
//! would.

use std::time::{Duration, Instant};

use hybrid::config::ModelConfig;
use hybrid::local::{ElementType, LocalError, ModelRegistry, NamedTensor, Tensor};
use hybrid_tests::{minilm_model, vad_model};

fn zeros(name: &str, dims: Vec<usize>) -> NamedTensor {
    let n = dims.iter().product();
    NamedTensor {
        name: name.into(),
        tensor: Tensor::from_f32(dims, &vec![0.0; n]),
    }
}

fn state() -> Vec<NamedTensor> {
    vec![zeros("h", vec![1, 1, 128]), zeros("c", vec![1, 1, 128])]
}

#[test]
fn silero_declares_its_inputs_and_outputs() {
    let registry = ModelRegistry::load(&[vad_model()]).expect("loads");
    let info = registry.list().next().expect("one model");
    assert_eq!(
        (info.name.as_str(), info.version.as_str()),
        ("silero-vad", "6.2.3")
    );
    let inputs: Vec<_> = info
        .inputs
        .iter()
        .map(|s| (s.name.as_str(), s.ty, s.shape.clone()))
        .collect();
    assert_eq!(
        inputs,
        vec![
            ("input", ElementType::Fp32, vec![None, Some(576)]),
            ("h", ElementType::Fp32, vec![Some(1), Some(1), Some(128)]),
            ("c", ElementType::Fp32, vec![Some(1), Some(1), Some(128)]),
        ]
    );
    let outputs: Vec<_> = info.outputs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(outputs, vec!["speech_probs", "hn", "cn"]);
}

#[test]
fn silence_scores_low_and_a_tone_burst_changes_the_state() {
    let registry = ModelRegistry::load(&[vad_model()]).expect("loads");
    let mut inputs = state();
    inputs.push(zeros("input", vec![4, 576]));
    let run = registry.run("silero-vad", inputs).expect("runs");
    let probs = run.outputs[0].tensor.to_f32().expect("fp32");
    assert_eq!(run.outputs[0].tensor.dims, vec![4]);
    assert!(probs.iter().all(|&p| p < 0.1), "silence scored {probs:?}");
    assert_eq!(run.outputs[1].tensor.dims, vec![1, 1, 128]);
}

#[test]
fn wrong_shapes_types_and_names_are_typed_errors() {
    let registry = ModelRegistry::load(&[vad_model()]).expect("loads");
    let mut short = state();
    short.push(zeros("input", vec![1, 100]));
    assert!(
        matches!(registry.run("silero-vad", short), Err(LocalError::ShapeMismatch(m)) if m.contains("[?, 576]"))
    );

    let mut ints = state();
    ints.push(NamedTensor {
        name: "input".into(),
        tensor: Tensor {
            dims: vec![1, 576],
            ty: ElementType::I64,
            data: vec![0; 576 * 8],
        },
    });
    assert!(
        matches!(registry.run("silero-vad", ints), Err(LocalError::TypeMismatch(m)) if m.contains("expected fp32, got i64"))
    );

    let err = registry.run("whisper", state()).expect_err("unknown model");
    assert!(matches!(err, LocalError::UnknownModel(m) if m.contains("loaded: [silero-vad]")));
}

#[test]
fn a_model_file_with_the_wrong_checksum_is_refused() {
    let dir = std::env::temp_dir().join(format!("hybrid-badsum-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut model = vad_model();
    let mut bytes = std::fs::read(&model.path).expect("read model");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    let tampered = dir.join("tampered.onnx");
    std::fs::write(&tampered, &bytes).expect("write");
    model.path = tampered;
    let err = ModelRegistry::load(&[model])
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("silero-vad") && err.contains("checksum mismatch"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A registry with `config`'s model allowed at most `plans` shape-specialised plans.
fn with_shape_plans(mut config: ModelConfig, plans: usize) -> ModelRegistry {
    config.shape_plans = plans;
    ModelRegistry::load(&[config]).expect("loads")
}

/// VAD inputs for `chunks` chunks of a 440 Hz tone, with a zero state.
fn tone(chunks: usize) -> Vec<NamedTensor> {
    let samples: Vec<f32> = (0..chunks * 576)
        .map(|i| 0.3 * (i as f32 * 440.0 * std::f32::consts::TAU / 16_000.0).sin())
        .collect();
    let mut inputs = state();
    inputs.push(NamedTensor {
        name: "input".into(),
        tensor: Tensor::from_f32(vec![chunks, 576], &samples),
    });
    inputs
}

/// MiniLM inputs: one sequence of `[CLS]`, `seq - 2` varied word ids, `[SEP]`.
fn sentence(seq: usize) -> Vec<NamedTensor> {
    let ids: Vec<i64> = (0..seq as i64)
        .map(|i| match i {
            0 => 101,
            i if i == seq as i64 - 1 => 102,
            i => 2000 + 37 * i,
        })
        .collect();
    let tensor = |name: &str, values: &[i64]| NamedTensor {
        name: name.into(),
        tensor: Tensor {
            dims: vec![1, seq],
            ty: ElementType::I64,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        },
    };
    vec![
        tensor("input_ids", &ids),
        tensor("attention_mask", &vec![1; seq]),
    ]
}

/// Waits (up to a minute: the optimiser runs at the lowest priority) until `model` has
/// `n` shape plans ready.
fn wait_for_plans(registry: &ModelRegistry, model: &str, n: usize) {
    let model = registry.get(model).expect("loaded");
    let until = Instant::now() + Duration::from_secs(60);
    while model.shape_plans_ready() < n {
        assert!(
            Instant::now() < until,
            "{} shape plans after a minute, expected {n}",
            model.shape_plans_ready()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The largest difference between two runs' fp32 outputs, output by output.
fn largest_difference(a: &[NamedTensor], b: &[NamedTensor]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|(a, b)| {
            assert_eq!((&a.name, &a.tensor.dims), (&b.name, &b.tensor.dims));
            let (a, b) = (
                a.tensor.to_f32().expect("fp32"),
                b.tensor.to_f32().expect("fp32"),
            );
            a.into_iter().zip(b).map(|(x, y)| (x - y).abs())
        })
        .fold(0.0, f32::max)
}

/// Runs `inputs` on the generic plan, earns the shape its own plan, waits for it, and
/// returns the generic and the specialised outputs.
fn generic_then_specialised(
    registry: &ModelRegistry,
    model: &str,
    inputs: impl Fn() -> Vec<NamedTensor>,
) -> (Vec<NamedTensor>, Vec<NamedTensor>) {
    let generic = registry.run(model, inputs()).expect("runs").outputs;
    let handle = registry.get(model).expect("loaded");
    assert_eq!(
        handle.shape_plans_ready(),
        0,
        "a shape used once earns no plan"
    );
    registry.run(model, inputs()).expect("runs");
    wait_for_plans(registry, model, 1);
    let specialised = registry.run(model, inputs()).expect("runs").outputs;
    (generic, specialised)
}

#[test]
fn a_vad_shape_used_twice_gets_a_plan_of_its_own_that_answers_the_same() {
    let registry = with_shape_plans(vad_model(), 4);
    let (generic, specialised) = generic_then_specialised(&registry, "silero-vad", || tone(3));
    let probs = generic[0].tensor.to_f32().expect("fp32");
    assert!(probs.iter().any(|&p| p > 0.0), "the tone scored {probs:?}");
    let difference = largest_difference(&generic, &specialised);
    assert!(difference <= 1e-5, "outputs differ by {difference}");
}

#[test]
fn a_minilm_shape_used_twice_gets_a_plan_of_its_own_that_answers_the_same() {
    let registry = with_shape_plans(minilm_model(), 2);
    let (generic, specialised) =
        generic_then_specialised(&registry, "minilm-l6-v2", || sentence(16));
    let difference = largest_difference(&generic, &specialised);
    assert!(
        difference <= 1e-4,
        "last_hidden_state differs by {difference}"
    );
}

#[test]
fn shape_plans_stop_at_the_configured_number() {
    let registry = with_shape_plans(vad_model(), 1);
    for _ in 0..2 {
        registry.run("silero-vad", tone(2)).expect("runs");
    }
    wait_for_plans(&registry, "silero-vad", 1);
    for _ in 0..3 {
        registry.run("silero-vad", tone(5)).expect("runs");
    }
    std::thread::sleep(Duration::from_secs(1));
    let model = registry.get("silero-vad").expect("loaded");
    assert_eq!(model.shape_plans_ready(), 1, "a second shape got a plan");
}

#[test]
fn no_shape_plans_when_the_config_says_zero() {
    let registry = with_shape_plans(vad_model(), 0);
    for _ in 0..3 {
        registry.run("silero-vad", tone(2)).expect("runs");
    }
    std::thread::sleep(Duration::from_secs(1));
    let model = registry.get("silero-vad").expect("loaded");
    assert_eq!(model.shape_plans_ready(), 0);
}
