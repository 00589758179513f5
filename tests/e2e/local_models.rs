//! The `local` side without wasm: the real Silero VAD model loaded by the registry and
//! called directly, as a guest's `local.run` would.

use hybrid::local::{ElementType, LocalError, ModelRegistry, NamedTensor, Tensor};
use hybrid_tests::vad_model;

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
