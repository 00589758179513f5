//! Tensors crossing the sandbox: what a guest passes to `local.run` (a name, an element
//! type, `u32` dimensions and little-endian bytes, as in the WIT `tensors` interface),
//! converted as the runtime does and validated by `ModelRegistry::run` before a backend
//! sees it.
//!
//! The oracle is a fake backend with fixed and dynamic dimensions of every element type:
//! any input must be refused with a typed `LocalError` or reach the backend exactly as
//! declared (every input once, in the model's order, of its type and rank, with as many
//! bytes as its dimensions need), so tract's decoding can rely on it. When the repo's
//! digits model has been fetched (`models/digits-v1.onnx`, made by `just setup`), inputs
//! that pass validation also run through the real tract backend, which must answer or
//! fail with `execution-failed`, never panic.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use hybrid::config::Config;
use hybrid::local::{
    Backend, ElementType, LocalModel, ModelRegistry, NamedTensor, Tensor, TensorSpec,
};
use libfuzzer_sys::fuzz_target;

/// The WIT `tensor`, as a guest can send it.
#[derive(Debug, Arbitrary)]
struct WitTensor {
    /// Picks a declared input name, or (past the list) an unknown one.
    name: u8,
    /// The WIT `tensor-type` case.
    ty: u8,
    dimensions: Vec<u32>,
    data: Vec<u8>,
}

#[derive(Debug, Arbitrary)]
struct Input {
    /// Runs the digits model (when present) instead of the fake one.
    digits: bool,
    tensors: Vec<WitTensor>,
}

const TYPES: [ElementType; 4] = [
    ElementType::Fp32,
    ElementType::U8,
    ElementType::I32,
    ElementType::I64,
];

/// Inputs of the fake model: every element type, fixed and dynamic dimensions, a scalar.
fn fake_specs() -> Vec<TensorSpec> {
    let spec = |name: &str, ty, shape: &[Option<usize>]| TensorSpec {
        name: name.to_owned(),
        ty,
        shape: shape.to_vec(),
    };
    vec![
        spec("input", ElementType::Fp32, &[None, Some(4)]),
        spec("ids", ElementType::I64, &[Some(1), None]),
        spec("mask", ElementType::U8, &[None]),
        spec("scale", ElementType::I32, &[]),
    ]
}

/// Checks what validation promises, decodes like the tract backend, echoes `input`.
struct Oracle {
    inputs: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
}

impl Backend for Oracle {
    fn inputs(&self) -> &[TensorSpec] {
        &self.inputs
    }

    fn outputs(&self) -> &[TensorSpec] {
        &self.outputs
    }

    fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, String> {
        assert_eq!(inputs.len(), self.inputs.len());
        for (spec, tensor) in self.inputs.iter().zip(&inputs) {
            assert_eq!(spec.check(tensor), Ok(()));
            assert_eq!(tensor.ty, spec.ty);
            assert_eq!(tensor.dims.len(), spec.shape.len());
            let count = tensor.element_count().expect("validated dimensions fit");
            assert_eq!(tensor.data.len(), count * tensor.ty.size());
            assert_eq!(tensor.data.chunks_exact(tensor.ty.size()).len(), count);
        }
        let input = &inputs[0];
        let values = input.to_f32().expect("input is fp32");
        let echo = Tensor::from_f32(input.dims.clone(), &values);
        assert_eq!(echo.data, input.data, "fp32 bytes round-trip");
        Ok(vec![echo])
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The fake model, plus the digits model from the repo's default config when fetched.
fn registry() -> &'static ModelRegistry {
    static REGISTRY: OnceLock<ModelRegistry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut registry = ModelRegistry::default();
        let oracle = Oracle {
            inputs: fake_specs(),
            outputs: vec![TensorSpec {
                name: "output".to_owned(),
                ty: ElementType::Fp32,
                shape: vec![None, Some(4)],
            }],
        };
        registry.insert(LocalModel::new(
            "fake",
            "1",
            &"0".repeat(64),
            Box::new(oracle),
        ));
        let digits = Config::builtin(&repo())
            .ok()
            .and_then(|c| c.models.into_iter().find(|m| m.name == "digits-v1"))
            .and_then(|m| LocalModel::load(&m).ok());
        match digits {
            Some(model) => registry.insert(model),
            None => eprintln!("tensor: models/digits-v1.onnx not fetched; fake model only"),
        }
        registry
    })
}

fuzz_target!(|input: Input| {
    let registry = registry();
    let model = if input.digits && registry.get("digits-v1").is_some() {
        "digits-v1"
    } else {
        "fake"
    };
    let names: Vec<String> = registry
        .get(model)
        .expect("loaded")
        .info()
        .inputs
        .iter()
        .map(|s| s.name.clone())
        .collect();
    let mut inputs = Vec::new();
    for t in input.tensors {
        // The runtime's conversion (`runtime::local_host`): `u32` dimensions widen to
        // `usize`, the type maps case for case, the bytes are moved as they are.
        let name = names
            .get(usize::from(t.name))
            .cloned()
            .unwrap_or_else(|| format!("unknown-{}", t.name));
        let dims = t.dimensions.iter().map(|&d| d as usize).collect();
        let ty = TYPES[usize::from(t.ty) % TYPES.len()];
        inputs.push(NamedTensor {
            name,
            tensor: Tensor {
                dims,
                ty,
                data: t.data,
            },
        });
    }
    match registry.run(model, inputs) {
        Ok(run) => {
            if model == "fake" {
                assert_eq!(run.outputs.len(), 1);
            }
            for output in &run.outputs {
                assert_eq!(output.tensor.check_len(), Ok(()), "{}", output.name);
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
