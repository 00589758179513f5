//! The tract backend: ONNX models run in-process on the CPU.
//!
//! Loading follows tract's chain, once per model at start:
//! `model_for_path` (parse the ONNX graph) -> `with_input_fact` (pin what the operator
//! declared) -> `into_typed` (read the declared inputs and outputs) -> `into_optimized`
//! -> `into_runnable`. The runnable plan is immutable and shared; each call spawns its own
//! state, so concurrent requests never contend on a lock. A model with symbolic input
//! dimensions also gets plans optimised for the shapes it is called with
//! ([`super::shape_plans`]), up to the config's `shape_plans`.
//!
//! Model bytes a guest sends through `wasi:nn` `load` take the same chain from
//! `model_for_read` on, with the model's own input declarations (there is no operator
//! config to pin them). Parsed from memory, a model has no directory: tract refuses any
//! external-data reference in it, so guest bytes can never make the host open a file.

use std::sync::Arc;

use anyhow::{Context, bail};
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::internal::DimLike;

use super::shape_plans::ShapePlans;
use super::{Backend, ElementType, Tensor, TensorSpec};
use crate::config::{Dim, ModelConfig};

/// One ONNX model loaded and optimised by tract.
pub struct TractModel {
    /// The plan for any shape, optimised with the symbolic dimensions unknown.
    plan: Arc<TypedRunnableModel>,
    /// Plans for the shapes seen most, when the model has symbolic dimensions.
    shapes: Option<ShapePlans>,
    inputs: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
}

impl TractModel {
    /// Parses, pins, optimises and prepares the model file named by `config`.
    pub fn load(config: &ModelConfig) -> anyhow::Result<Self> {
        Self::prepare(pinned(config)?, config.shape_plans)
    }

    /// Parses ONNX `bytes` (a guest's `wasi:nn` `load`) and prepares them as
    /// [`TractModel::load`] does, with the model's own input declarations and no
    /// shape-specialised plans (a guest's model lives for one request or so).
    pub fn from_onnx_bytes(bytes: &[u8]) -> Result<Self, BytesError> {
        let model = tract_onnx::onnx()
            .model_for_read(&mut &*bytes)
            .map_err(|e| BytesError::Parse(format!("{e:#}")))?;
        Self::prepare(model, 0).map_err(|e| BytesError::Prepare(format!("{e:#}")))
    }

    /// Steps 3 and 4 of the chain, shared by files and bytes; `shape_plans` is how many
    /// shape-specialised plans may be made later.
    fn prepare(model: InferenceModel, shape_plans: usize) -> anyhow::Result<Self> {
        // 3. Resolve types and shapes everywhere, and read the model's declared interface.
        let typed = model.into_typed().context("analysing the graph")?;
        let inputs = specs(&typed, typed.input_outlets()?)?;
        let outputs = specs(&typed, typed.output_outlets()?)?;
        let shapes = ShapePlans::new(&typed, shape_plans).context("reading the input symbols")?;
        // 4. Optimise and prepare the execution plan.
        let plan = typed
            .into_optimized()
            .context("optimising the graph")?
            .into_runnable()
            .context("preparing the execution plan")?;
        Ok(Self {
            plan,
            shapes,
            inputs,
            outputs,
        })
    }
}

/// Why ONNX bytes could not become a model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BytesError {
    /// The bytes are not an ONNX model (protobuf decoding or graph translation failed).
    #[error("not an ONNX model tract can read: {0}")]
    Parse(String),
    /// The model parsed but tract cannot type, optimise or plan it (an unsupported
    /// operator, unknown shapes).
    #[error("tract cannot prepare this ONNX model: {0}")]
    Prepare(String),
}

impl Backend for TractModel {
    fn inputs(&self) -> &[TensorSpec] {
        &self.inputs
    }

    fn outputs(&self) -> &[TensorSpec] {
        &self.outputs
    }

    fn shape_plans_ready(&self) -> usize {
        self.shapes.as_ref().map_or(0, ShapePlans::ready)
    }

    fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, String> {
        let values: TVec<TValue> = inputs
            .iter()
            .map(|t| to_tract(t).map(|t| t.into_tvalue()))
            .collect::<anyhow::Result<_>>()
            .map_err(|e| format!("{e:#}"))?;
        let dims: Vec<&[usize]> = inputs.iter().map(|t| t.dims.as_slice()).collect();
        let plan = self.shapes.as_ref().and_then(|s| s.plan_for(&dims));
        let outputs = plan.as_ref().unwrap_or(&self.plan).run(values);
        // tract's kernels leave the wide registers dirty, which slows every SSE
        // instruction after them, in the guest and here (see `vector_state`).
        super::vector_state::clear_upper_halves();
        let outputs = outputs.map_err(|e| format!("{e:#}"))?;
        outputs
            .iter()
            .map(|t| from_tract(t).map_err(|e| format!("{e:#}")))
            .collect()
    }
}

/// Steps 1 and 2 of the chain for the model file named by `config`: the parsed graph with
/// the operator's input declarations pinned.
pub(super) fn pinned(config: &ModelConfig) -> anyhow::Result<InferenceModel> {
    // 1. Parse the ONNX graph.
    let mut model = tract_onnx::onnx()
        .model_for_path(&config.path)
        .with_context(|| format!("parsing ONNX file {:?}", config.path))?;
    // 2. Pin the input facts the operator declared (type and shape, with symbols for
    //    dimensions chosen per call).
    for fact in &config.inputs {
        let index = input_index(&model, &fact.name)?;
        let ty = ElementType::parse(&fact.ty).map_err(anyhow::Error::msg)?;
        let shape: Vec<TDim> = fact
            .shape
            .iter()
            .map(|d| match d {
                Dim::Fixed(n) => TDim::from(*n as usize),
                Dim::Symbol(s) => model.sym(s).into(),
            })
            .collect();
        model = model
            .with_input_fact(index, InferenceFact::dt_shape(datum_type(ty), shape))
            .with_context(|| format!("pinning input {:?}", fact.name))?;
    }
    Ok(model)
}

fn input_index(model: &InferenceModel, name: &str) -> anyhow::Result<usize> {
    let outlets = model.input_outlets()?;
    if let Some(i) = outlets.iter().position(|o| model.node(o.node).name == name) {
        return Ok(i);
    }
    let known: Vec<&str> = outlets
        .iter()
        .map(|o| model.node(o.node).name.as_str())
        .collect();
    bail!("the config declares input {name:?}, but the model's inputs are {known:?}")
}

fn specs(model: &TypedModel, outlets: &[OutletId]) -> anyhow::Result<Vec<TensorSpec>> {
    outlets
        .iter()
        .map(|&outlet| {
            let fact = model.outlet_fact(outlet)?;
            let name = model
                .outlet_label(outlet)
                .unwrap_or(&model.node(outlet.node).name)
                .to_owned();
            let ty = element_type(fact.datum_type).with_context(|| format!("tensor {name:?}"))?;
            let shape = fact.shape.iter().map(|d| d.to_usize().ok()).collect();
            Ok(TensorSpec { name, ty, shape })
        })
        .collect()
}

fn datum_type(ty: ElementType) -> DatumType {
    match ty {
        ElementType::Fp32 => DatumType::F32,
        ElementType::U8 => DatumType::U8,
        ElementType::I32 => DatumType::I32,
        ElementType::I64 => DatumType::I64,
    }
}

fn element_type(dt: DatumType) -> anyhow::Result<ElementType> {
    Ok(match dt {
        DatumType::F32 => ElementType::Fp32,
        DatumType::U8 => ElementType::U8,
        DatumType::I32 => ElementType::I32,
        DatumType::I64 => ElementType::I64,
        other => bail!("element type {other:?} is not supported across the sandbox boundary"),
    })
}

fn to_tract(t: &Tensor) -> anyhow::Result<tract_onnx::prelude::Tensor> {
    fn decode<T: Datum + Copy, const N: usize>(
        t: &Tensor,
        from: fn([u8; N]) -> T,
    ) -> anyhow::Result<tract_onnx::prelude::Tensor> {
        let values: Vec<T> = t
            .data
            .chunks_exact(N)
            .map(|b| from(b.try_into().expect("chunks_exact yields N bytes")))
            .collect();
        tract_onnx::prelude::Tensor::from_shape(&t.dims, &values)
    }
    match t.ty {
        ElementType::Fp32 => decode(t, f32::from_le_bytes),
        ElementType::U8 => decode(t, u8::from_le_bytes),
        ElementType::I32 => decode(t, i32::from_le_bytes),
        ElementType::I64 => decode(t, i64::from_le_bytes),
    }
}

fn from_tract(t: &tract_onnx::prelude::Tensor) -> anyhow::Result<Tensor> {
    let ty = element_type(t.datum_type())?;
    let view = t.try_as_plain_ram()?;
    let data: Vec<u8> = match ty {
        ElementType::Fp32 => view
            .as_slice::<f32>()?
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        ElementType::U8 => view.as_slice::<u8>()?.to_vec(),
        ElementType::I32 => view
            .as_slice::<i32>()?
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        ElementType::I64 => view
            .as_slice::<i64>()?
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
    };
    Ok(Tensor {
        dims: t.shape().to_vec(),
        ty,
        data,
    })
}
