//! The host side of the WIT `local` interface: guests run the box's models through it.
//!
//! Calls go to the shared [`ModelRegistry`], which validates every tensor before a backend
//! sees it. Each successful run is recorded (model, version, time) so the request's
//! routing record and metrics can say which model version answered and what it cost.

use std::sync::Arc;
use std::time::Duration;

use super::bindings::local::{self, ModelInfo, TensorSpec};
use super::bindings::tensors::{NamedTensor, Tensor, TensorType};
use crate::local::{self as models, ElementType, LocalError, ModelRegistry};

/// One model run made during a request.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRunRecord {
    /// Model name.
    pub model: String,
    /// Model version.
    pub version: String,
    /// Time spent running it.
    pub elapsed: Duration,
    /// Parts its batch was split into across free cores (1: not split).
    pub parts: usize,
}

/// Per-request context for `local`.
pub struct LocalCtx {
    models: Arc<ModelRegistry>,
    /// Successful runs, in call order.
    pub runs: Vec<ModelRunRecord>,
    /// Runs this request may still make (`limits.model_runs`).
    runs_left: u32,
    /// Set when the guest asked for a run past its limit.
    pub limit_hit: bool,
}

impl LocalCtx {
    /// A context over the shared registry.
    pub fn new(models: Arc<ModelRegistry>) -> Self {
        Self {
            models,
            runs: Vec::new(),
            runs_left: u32::MAX,
            limit_hit: false,
        }
    }

    /// Allows `runs` more model runs (a new request starts over).
    pub fn set_run_limit(&mut self, runs: u32) {
        self.runs_left = runs;
        self.limit_hit = false;
    }
}

impl local::Host for LocalCtx {
    fn list_models(&mut self) -> Vec<ModelInfo> {
        self.models
            .list()
            .map(|m| ModelInfo {
                name: m.name.clone(),
                version: m.version.clone(),
                sha256: m.sha256.clone(),
                inputs: m.inputs.iter().map(spec_to_wit).collect(),
                outputs: m.outputs.iter().map(spec_to_wit).collect(),
                assets: m.assets.clone(),
            })
            .collect()
    }

    fn asset(&mut self, model: String, name: String) -> Result<Vec<u8>, local::Error> {
        self.models
            .asset(&model, &name)
            .map(|bytes| bytes.to_vec())
            .map_err(error_to_wit)
    }

    fn run(
        &mut self,
        model: String,
        inputs: Vec<NamedTensor>,
    ) -> Result<Vec<NamedTensor>, local::Error> {
        self.take_run().map_err(error_to_wit)?;
        let inputs = inputs
            .into_iter()
            .map(tensor_from_wit)
            .collect::<Result<Vec<_>, _>>()?;
        let models = self.models.clone();
        let Some(loaded) = models.get(&model) else {
            return Err(error_to_wit(models.unknown(&model)));
        };
        let outputs = self
            .run_counted(loaded, &model, inputs)
            .map_err(error_to_wit)?;
        Ok(outputs.into_iter().map(tensor_to_wit).collect())
    }
}

impl LocalCtx {
    /// The request's set of models.
    pub(super) fn models(&self) -> &Arc<ModelRegistry> {
        &self.models
    }

    /// Counts one run against `limits.model_runs`, or refuses it (and remembers that it
    /// did, so the request ends with `limit_exceeded` whatever the guest does next).
    pub(super) fn take_run(&mut self) -> Result<(), LocalError> {
        if self.runs_left == 0 {
            self.limit_hit = true;
            return Err(LocalError::ExecutionFailed(
                "this request has run as many local models as its pipeline's \
                 limits.model_runs allows"
                    .to_owned(),
            ));
        }
        self.runs_left -= 1;
        Ok(())
    }

    /// Runs a model in hand (already counted with [`LocalCtx::take_run`]) and records the
    /// run under `label` (the name metrics and the routing record show). `local.run` and
    /// `wasi:nn` `compute` both come through here, so both are checked, bounded by the
    /// CPU slots and recorded the same way.
    pub(super) fn run_counted(
        &mut self,
        model: &models::LocalModel,
        label: &str,
        inputs: Vec<models::NamedTensor>,
    ) -> Result<Vec<models::NamedTensor>, LocalError> {
        let run = self.models.run_model(model, inputs)?;
        tracing::debug!(model = %label, elapsed_us = run.elapsed.as_micros() as u64, parts = run.parts, "local model run");
        self.runs.push(ModelRunRecord {
            model: label.to_owned(),
            version: run.version,
            elapsed: run.elapsed,
            parts: run.parts,
        });
        Ok(run.outputs)
    }
}

fn tensor_from_wit(t: NamedTensor) -> Result<models::NamedTensor, local::Error> {
    let dims = t
        .tensor
        .dimensions
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| {
            local::Error::ShapeMismatch(format!("input {:?}: dimension too large", t.name))
        })?;
    Ok(models::NamedTensor {
        name: t.name,
        tensor: models::Tensor {
            dims,
            ty: type_from_wit(t.tensor.ty),
            data: t.tensor.data,
        },
    })
}

fn tensor_to_wit(t: models::NamedTensor) -> NamedTensor {
    NamedTensor {
        name: t.name,
        tensor: Tensor {
            // Backends produce tensors that fit in guest memory only if each dimension
            // fits u32; saturate rather than wrap so a bad size shows as a length error.
            dimensions: t
                .tensor
                .dims
                .iter()
                .map(|&d| u32::try_from(d).unwrap_or(u32::MAX))
                .collect(),
            ty: type_to_wit(t.tensor.ty),
            data: t.tensor.data,
        },
    }
}

fn spec_to_wit(s: &models::TensorSpec) -> TensorSpec {
    TensorSpec {
        name: s.name.clone(),
        ty: type_to_wit(s.ty),
        shape: s
            .shape
            .iter()
            .map(|d| d.and_then(|n| u32::try_from(n).ok()))
            .collect(),
    }
}

fn type_from_wit(ty: TensorType) -> ElementType {
    match ty {
        TensorType::Fp32 => ElementType::Fp32,
        TensorType::U8 => ElementType::U8,
        TensorType::I32 => ElementType::I32,
        TensorType::I64 => ElementType::I64,
    }
}

fn type_to_wit(ty: ElementType) -> TensorType {
    match ty {
        ElementType::Fp32 => TensorType::Fp32,
        ElementType::U8 => TensorType::U8,
        ElementType::I32 => TensorType::I32,
        ElementType::I64 => TensorType::I64,
    }
}

fn error_to_wit(e: LocalError) -> local::Error {
    match e {
        LocalError::UnknownModel(m) => local::Error::UnknownModel(m),
        LocalError::BadInputName(m) => local::Error::BadInputName(m),
        LocalError::TypeMismatch(m) => local::Error::TypeMismatch(m),
        LocalError::ShapeMismatch(m) => local::Error::ShapeMismatch(m),
        LocalError::ExecutionFailed(m) => local::Error::ExecutionFailed(m),
    }
}
