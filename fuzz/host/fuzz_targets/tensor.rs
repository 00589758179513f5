//! Tensors crossing the sandbox: what a guest passes to `local.run` (a name, an element
//! type, `u32` dimensions and little-endian bytes, as in the WIT `tensors` interface),
//! converted as the runtime does and validated by `ModelRegistry::run` before a backend
//! sees it.
//!
//! The oracle is a fake backend (an fp32 input with a dynamic and a fixed dimension, and
//! an i32 scalar): any input must be refused with a typed `LocalError` or reach the
//! backend exactly as declared (every input once, in the model's order, of its type and
//! rank, with as many bytes as its dimensions need), so tract's decoding can rely on it.
//! When the repo's digits model has been fetched (`models/digits-v1.onnx`, made by
//! `just setup`), inputs that pass validation also run through the real tract backend,
//! which must answer or fail with `execution-failed`, never panic (zero rows included).

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use hybrid::config::Config;
use hybrid::local::{
    Backend, ElementType, LocalModel, ModelRegistry, NamedTensor, Tensor, TensorSpec,
};
use libfuzzer_sys::fuzz_target;

/// The WIT `tensor`, as a guest can send it. The type and dimensions default to the
/// declared ones so that many inputs pass validation and reach the backend.
#[derive(Debug, Arbitrary)]
struct WitTensor {
    /// Picks a declared input name, or (one past the list) an unknown one.
    name: u8,
    /// The WIT `tensor-type` case; `None` for the declared one.
    ty: Option<u8>,
    /// Dimensions (see [`dimension`]); `None` for the declared shape with `rows` in
    /// every dynamic dimension.
    dimensions: Option<Vec<u8>>,
    rows: u8,
    /// Resize `data` to what the dimensions need (when that is at most 1 MiB);
    /// otherwise the bytes are as given.
    fit: bool,
    data: Vec<u8>,
}

#[derive(Debug, Arbitrary)]
struct Input {
    /// Runs the digits model (when present) instead of the fake one.
    digits: bool,
    tensors: Vec<WitTensor>,
}

/// A WIT `u32` dimension: the byte itself, or a large one that overflows a product.
fn dimension(b: u8) -> u32 {
    match b {
        251 => 1 << 16,
        252 => 1 << 24,
        253 => 1 << 31,
        254 => u32::MAX - 1,
        255 => u32::MAX,
        n => u32::from(n),
    }
}

const TYPES: [ElementType; 4] = [
    ElementType::Fp32,
    ElementType::U8,
    ElementType::I32,
    ElementType::I64,
];

/// Inputs of the fake model: a dynamic and a fixed dimension, and a scalar.
fn fake_specs() -> Vec<TensorSpec> {
    let spec = |name: &str, ty, shape: &[Option<usize>]| TensorSpec {
        name: name.to_owned(),
        ty,
        shape: shape.to_vec(),
    };
    vec![
        spec("input", ElementType::Fp32, &[None, Some(4)]),
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
    let specs = &registry.get(model).expect("loaded").info().inputs;
    let mut inputs = Vec::new();
    for t in input.tensors {
        let spec = specs.get(usize::from(t.name) % (specs.len() + 1));
        let name = spec.map_or("unknown", |s| s.name.as_str()).to_owned();
        let ty = match (t.ty, spec) {
            (None, Some(spec)) => spec.ty,
            (ty, _) => TYPES[usize::from(ty.unwrap_or(0)) % TYPES.len()],
        };
        // What a guest sends is WIT `u32` dimensions; the runtime's conversion
        // (`runtime::local_host`) widens them to `usize`, maps the type case for case and
        // moves the bytes as they are.
        let dimensions: Vec<u32> = match (t.dimensions, spec) {
            (None, Some(spec)) => spec
                .shape
                .iter()
                .map(|d| d.map_or(u32::from(t.rows), |n| n as u32))
                .collect(),
            (dims, _) => dims
                .unwrap_or_default()
                .into_iter()
                .map(dimension)
                .collect(),
        };
        let dims: Vec<usize> = dimensions.iter().map(|&d| d as usize).collect();
        let mut data = t.data;
        if t.fit {
            let bytes = dims
                .iter()
                .try_fold(ty.size(), |acc, &d| acc.checked_mul(d))
                .filter(|&n| n <= 1 << 20);
            if let Some(n) = bytes {
                data.resize(n, 0x3f);
            }
        }
        inputs.push(NamedTensor {
            name,
            tensor: Tensor { dims, ty, data },
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
