//! Models trained here (`models/train-digits`), run by tract through the registry, against
//! what the training library computed: the same probabilities within 1e-5.

use hybrid::config::{Dim, ModelConfig};
use hybrid::local::{ElementType, ModelRegistry, NamedTensor, Tensor};
use hybrid_tests::{fact, root, test_data};

#[test]
fn tract_gives_the_digits_classifier_the_probabilities_scikit_learn_gave() {
    let heldout: serde_json::Value =
        serde_json::from_slice(&test_data("digits/heldout.json")).expect("heldout.json");
    let path = root().join("models/digits-v1.onnx");
    assert!(
        path.exists(),
        "run `models/train-digits` (or `just setup`) first"
    );
    let config = ModelConfig {
        name: "digits-v1".into(),
        version: "1.0.0".into(),
        path,
        sha256: heldout["model_sha256"].as_str().expect("sha256").to_owned(),
        inputs: vec![fact(
            "input",
            "fp32",
            &[Dim::Symbol("N".into()), Dim::Fixed(64)],
        )],
        assets: Default::default(),
        shape_plans: hybrid::config::DEFAULT_SHAPE_PLANS,
        split_batch: None,
    };
    let registry = ModelRegistry::load(&[config]).expect("the trained model loads");
    let info = registry.list().next().expect("one model");
    let outputs: Vec<_> = info
        .outputs
        .iter()
        .map(|s| (s.name.as_str(), s.ty))
        .collect();
    assert_eq!(
        outputs,
        vec![
            ("label", ElementType::I64),
            ("probabilities", ElementType::Fp32)
        ]
    );

    let floats = |v: &serde_json::Value| -> Vec<f32> {
        v.as_array()
            .expect("array")
            .iter()
            .flat_map(|row| row.as_array().expect("row").iter())
            .map(|x| x.as_f64().expect("number") as f32)
            .collect()
    };
    let pixels = floats(&heldout["pixels"]);
    let expected = floats(&heldout["probabilities"]);
    let rows = pixels.len() / 64;
    assert_eq!(rows, 64);
    let run = registry
        .run(
            "digits-v1",
            vec![NamedTensor {
                name: "input".into(),
                tensor: Tensor::from_f32(vec![rows, 64], &pixels),
            }],
        )
        .expect("runs");
    let got = run.outputs[1].tensor.to_f32().expect("fp32 probabilities");
    assert_eq!(got.len(), expected.len());
    let worst = got
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst <= 1e-5,
        "largest difference from scikit-learn: {worst}"
    );

    // The label output is the arg-max of the probabilities, row by row.
    let labels = &run.outputs[0].tensor;
    assert_eq!(labels.dims, vec![rows]);
    for (row, bytes) in labels.data.chunks_exact(8).enumerate() {
        let label = i64::from_le_bytes(bytes.try_into().expect("8 bytes"));
        let p = &got[row * 10..row * 10 + 10];
        let best = (0..10).fold(0, |b, i| if p[i] > p[b] { i } else { b });
        assert_eq!(label, best as i64, "row {row}");
    }
}
