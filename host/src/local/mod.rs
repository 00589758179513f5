//! Models that run on this edge box.
//!
//! The [`ModelRegistry`] owns every local model for the life of the process. At start it
//! checks each file against the sha256 the operator configured, loads it once through a
//! [`Backend`] (tract) and shares it across requests. Guests reach the models through
//! the `local` interface or standard `wasi:nn` (`crate::runtime` binds both); either way
//! every call is validated against the model's declared inputs before the backend sees
//! it, so a guest's mistake is a typed [`LocalError`] it can act on, never a host panic.
//! Every run holds one of the box's CPU slots; a model with `split_batch` set also runs
//! the parts of a batch on slots that are free at that moment ([`batch_split`]).

mod batch_split;
mod checksum;
mod cpu_slots;
pub mod profile;
mod shape_plans;
mod tensor;
mod tract_backend;
mod vector_state;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use batch_split::BatchSplit;
pub use checksum::{ChecksumError, sha256_bytes, sha256_file};
pub use cpu_slots::{CpuSlots, OwnedCpuSlot};
pub use tensor::{ElementType, NamedTensor, ShapeProblem, Tensor, TensorSpec};
pub use tract_backend::{BytesError, TractModel};

use crate::config::{Dim, ModelConfig};

/// An engine that can run one loaded model. Implementations must be shareable across
/// request threads; each `run` is independent (no state carried between calls).
pub trait Backend: Send + Sync {
    /// Declared inputs, in the model's order.
    fn inputs(&self) -> &[TensorSpec];
    /// Declared outputs, in the model's order.
    fn outputs(&self) -> &[TensorSpec];
    /// Runs the model once. `inputs` is in the order of [`Backend::inputs`] and has
    /// already been checked against it.
    fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, String>;
    /// How many plans optimised for one input shape each are ready (see
    /// [`shape_plans`]); 0 for backends without them.
    fn shape_plans_ready(&self) -> usize {
        0
    }
}

/// What a guest sees of a model (the WIT `model-info`).
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// Name guests use.
    pub name: String,
    /// Operator's version string.
    pub version: String,
    /// Verified lower-case hex SHA-256 of the file.
    pub sha256: String,
    /// Declared inputs.
    pub inputs: Vec<TensorSpec>,
    /// Declared outputs.
    pub outputs: Vec<TensorSpec>,
    /// Names of the files that ship with the model.
    pub assets: Vec<String>,
}

/// A failed model call (mirrors the WIT `local.error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocalError {
    /// No model of that name is loaded.
    #[error("unknown-model: {0}")]
    UnknownModel(String),
    /// An input was missing, repeated or unknown.
    #[error("bad-input-name: {0}")]
    BadInputName(String),
    /// An input had the wrong element type.
    #[error("type-mismatch: {0}")]
    TypeMismatch(String),
    /// An input had the wrong dimensions or byte length.
    #[error("shape-mismatch: {0}")]
    ShapeMismatch(String),
    /// The model failed while running.
    #[error("execution-failed: {0}")]
    ExecutionFailed(String),
}

/// A model could not be loaded at start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file's checksum is wrong or the file cannot be read.
    #[error("model {name:?}: {error}")]
    Checksum {
        /// The model's configured name.
        name: String,
        /// What went wrong.
        error: ChecksumError,
    },
    /// The backend could not parse or optimise the model.
    #[error("model {name:?}: cannot load {path:?}: {message}")]
    Backend {
        /// The model's configured name.
        name: String,
        /// The model file.
        path: PathBuf,
        /// The backend's explanation.
        message: String,
    },
}

/// One loaded model.
pub struct LocalModel {
    info: ModelInfo,
    backend: Box<dyn Backend>,
    assets: BTreeMap<String, Arc<[u8]>>,
    split: Option<BatchSplit>,
}

impl LocalModel {
    /// Wraps a backend under a name and version (used by tests with fake backends).
    pub fn new(name: &str, version: &str, sha256: &str, backend: Box<dyn Backend>) -> Self {
        let info = ModelInfo {
            name: name.to_owned(),
            version: version.to_owned(),
            sha256: sha256.to_owned(),
            inputs: backend.inputs().to_vec(),
            outputs: backend.outputs().to_vec(),
            assets: Vec::new(),
        };
        Self {
            info,
            backend,
            assets: BTreeMap::new(),
            split: None,
        }
    }

    /// This model with its batches split across free CPU slots along `symbol`, the
    /// leading axis of the inputs named in `batched` (the config's `split_batch`). Fails,
    /// naming them, if an input named is not one of the model's, or if none is named.
    pub fn with_split_batch(mut self, symbol: &str, batched: &[&str]) -> Result<Self, String> {
        let known: Vec<&str> = self.info.inputs.iter().map(|s| s.name.as_str()).collect();
        if let Some(unknown) = batched.iter().find(|name| !known.contains(name)) {
            return Err(format!(
                "split_batch {symbol:?}: the model has no input {unknown:?}; its inputs are [{}]",
                known.join(", ")
            ));
        }
        let flags = known.iter().map(|name| batched.contains(name)).collect();
        self.split = Some(BatchSplit::new(symbol, flags).ok_or_else(|| {
            format!("split_batch {symbol:?}: no input of the model has it on axis 0")
        })?);
        Ok(self)
    }

    /// How this model's batches are split, if they are (`split_batch`).
    pub fn batch_split(&self) -> Option<&BatchSplit> {
        self.split.as_ref()
    }

    /// This model with `other`'s assets (a new version of a model keeps the files that
    /// ship with it, such as a tokenizer's vocabulary).
    pub fn with_assets_of(mut self, other: &LocalModel) -> Self {
        self.assets = other.assets.clone();
        self.info.assets = other.info.assets.clone();
        self
    }

    /// Attaches a file that ships with the model under `name`.
    pub fn with_asset(mut self, name: &str, bytes: Arc<[u8]>) -> Self {
        self.assets.insert(name.to_owned(), bytes);
        self.info.assets = self.assets.keys().cloned().collect();
        self
    }

    /// What guests see of this model.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// How many plans optimised for one input shape each are ready to run.
    pub fn shape_plans_ready(&self) -> usize {
        self.backend.shape_plans_ready()
    }

    /// Verifies `config`'s file and assets against their sha256 and loads the model
    /// with tract.
    pub fn load(config: &ModelConfig) -> Result<Self, LoadError> {
        let started = Instant::now();
        checksum::verify(&config.path, &config.sha256).map_err(|error| LoadError::Checksum {
            name: config.name.clone(),
            error,
        })?;
        let backend = TractModel::load(config).map_err(|e| LoadError::Backend {
            name: config.name.clone(),
            path: config.path.clone(),
            message: format!("{e:#}"),
        })?;
        tracing::info!(
            model = %config.name,
            version = %config.version,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "loaded local model"
        );
        let mut model = LocalModel::new(
            &config.name,
            &config.version,
            &config.sha256.to_ascii_lowercase(),
            Box::new(backend),
        );
        if let Some(symbol) = &config.split_batch {
            // The config checked that the symbol leads at least one declared input.
            let batched: Vec<&str> = config
                .inputs
                .iter()
                .filter(|i| i.shape.first() == Some(&Dim::Symbol(symbol.clone())))
                .map(|i| i.name.as_str())
                .collect();
            model = model
                .with_split_batch(symbol, &batched)
                .map_err(|message| LoadError::Backend {
                    name: config.name.clone(),
                    path: config.path.clone(),
                    message,
                })?;
        }
        for (asset, file) in &config.assets {
            let checksum_err = |error| LoadError::Checksum {
                name: format!("{}/{asset}", config.name),
                error,
            };
            checksum::verify(&file.path, &file.sha256).map_err(checksum_err)?;
            let bytes = std::fs::read(&file.path).map_err(|error| {
                checksum_err(ChecksumError::Read {
                    path: file.path.clone(),
                    error,
                })
            })?;
            model = model.with_asset(asset, bytes.into());
        }
        Ok(model)
    }

    /// How this model's declared inputs and outputs differ from `other`'s, if they do:
    /// a replacement must keep every name, element type and dimension.
    pub fn signature_difference(&self, other: &LocalModel) -> Option<String> {
        let show = |specs: &[TensorSpec]| {
            specs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (what, mine, theirs) in [
            ("inputs", &self.info.inputs, &other.info.inputs),
            ("outputs", &self.info.outputs, &other.info.outputs),
        ] {
            if mine != theirs {
                return Some(format!(
                    "its {what} are [{}], the current model's are [{}]",
                    show(mine),
                    show(theirs)
                ));
            }
        }
        None
    }
}

/// The result of one successful model call, with its timing for metrics and records.
#[derive(Debug, Clone)]
pub struct ModelRun {
    /// Version of the model that ran.
    pub version: String,
    /// Outputs in the model's order.
    pub outputs: Vec<NamedTensor>,
    /// Time spent in the backend.
    pub elapsed: Duration,
    /// Parts the batch was split into and run side by side (1: not split).
    pub parts: usize,
}

/// Every local model on this box, by name.
#[derive(Default)]
pub struct ModelRegistry {
    models: Vec<Arc<LocalModel>>,
    by_name: HashMap<String, usize>,
    cpu: Arc<CpuSlots>,
    generation: u64,
}

impl ModelRegistry {
    /// Verifies and loads every configured model with tract. Fails on the first model
    /// that does not load, naming it.
    pub fn load(configs: &[ModelConfig]) -> Result<Self, LoadError> {
        let mut registry = Self::default();
        for config in configs {
            registry.insert(LocalModel::load(config)?);
        }
        Ok(registry)
    }

    /// A copy of this registry with `model` in place of the model of the same name
    /// (cheap: the other models are shared, not reloaded). Requests holding this
    /// registry keep it; requests that start after the caller swaps the copy in see
    /// the new model.
    pub fn with_model(&self, model: Arc<LocalModel>) -> Self {
        let mut copy = Self {
            models: self.models.clone(),
            by_name: self.by_name.clone(),
            cpu: self.cpu.clone(),
            generation: self.generation + 1,
        };
        copy.put(model);
        copy
    }

    /// This registry with its model runs bounded by `slots` instead of one per core
    /// (tests use a fixed count to see what a box of that many cores does).
    pub fn with_cpu_slots(mut self, slots: Arc<CpuSlots>) -> Self {
        self.cpu = slots;
        self
    }

    /// The CPU slots every model run of this registry holds.
    pub fn cpu_slots(&self) -> &Arc<CpuSlots> {
        &self.cpu
    }

    /// Counts the model swaps that led to this registry: two registries of one process
    /// with the same generation hold the same models.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Adds a model, replacing any of the same name.
    pub fn insert(&mut self, model: LocalModel) {
        self.put(Arc::new(model));
    }

    fn put(&mut self, model: Arc<LocalModel>) {
        let name = model.info.name.clone();
        match self.by_name.get(&name) {
            Some(&i) => self.models[i] = model,
            None => {
                self.by_name.insert(name, self.models.len());
                self.models.push(model);
            }
        }
    }

    /// Every model, in configuration order.
    pub fn list(&self) -> impl Iterator<Item = &ModelInfo> {
        self.models.iter().map(|m| &m.info)
    }

    /// The model named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<LocalModel>> {
        self.by_name.get(name).map(|&i| &self.models[i])
    }

    /// The bytes of asset `name` of `model`.
    pub fn asset(&self, model: &str, name: &str) -> Result<Arc<[u8]>, LocalError> {
        let m = self.get(model).ok_or_else(|| self.unknown(model))?;
        m.assets.get(name).cloned().ok_or_else(|| {
            LocalError::BadInputName(format!(
                "model {model:?} has no asset {name:?}; its assets are [{}]",
                m.info.assets.join(", ")
            ))
        })
    }

    /// The error for a model name that is not loaded, listing the loaded ones.
    pub fn unknown(&self, model: &str) -> LocalError {
        let known: Vec<&str> = self.models.iter().map(|m| m.info.name.as_str()).collect();
        LocalError::UnknownModel(format!(
            "no local model named {model:?}; loaded: [{}]",
            known.join(", ")
        ))
    }

    /// Runs `model` on `inputs` (one per model input, any order) after checking names,
    /// types and shapes; returns outputs in the model's order.
    pub fn run(&self, model: &str, inputs: Vec<NamedTensor>) -> Result<ModelRun, LocalError> {
        let Some(model) = self.get(model) else {
            return Err(self.unknown(model));
        };
        self.run_model(model, inputs)
    }

    /// Runs a model already in hand (a registry model a `wasi:nn` graph holds, or one a
    /// guest loaded from bytes) with the same checks as [`ModelRegistry::run`], on this
    /// registry's CPU slots. A backend panic is caught and reported as
    /// [`LocalError::ExecutionFailed`]: models a guest loaded are guest input.
    ///
    /// With `split_batch` set, a batch of two rows or more is split across the slots free
    /// at this moment (taken without waiting, and never one a waiting caller is owed), one
    /// part per slot, this thread running the first; with none free it runs whole.
    pub fn run_model(
        &self,
        model: &LocalModel,
        inputs: Vec<NamedTensor>,
    ) -> Result<ModelRun, LocalError> {
        let ordered = order_inputs(&model.info, inputs)?;
        let rows = match &model.split {
            Some(split) => Some(split.rows(&ordered, &model.info.inputs).map_err(|e| {
                LocalError::ShapeMismatch(format!("model {:?} {e}", model.info.name))
            })?),
            None => None,
        };
        let _slot = self.cpu.acquire();
        let started = Instant::now();
        let failed =
            |e: String| LocalError::ExecutionFailed(format!("model {:?}: {e}", model.info.name));
        let spare = match rows {
            Some(rows) if rows >= 2 => self.cpu.try_acquire_up_to(rows - 1),
            _ => Vec::new(),
        };
        let parts = spare.len() + 1;
        let outputs = match (&model.split, rows) {
            (Some(split), Some(rows)) if parts > 1 => {
                let sizes = batch_split::part_sizes(rows, parts);
                let inputs = batch_split::split_inputs(split, &ordered, &sizes);
                drop(ordered);
                let pieces = batch_split::run_parts(
                    model.backend.as_ref(),
                    split,
                    inputs,
                    &sizes,
                    spare,
                    &self.cpu,
                )
                .map_err(failed)?;
                if pieces.yielded > 0 {
                    tracing::debug!(model = %model.info.name, rows, parts, yielded = pieces.yielded, "split batch gave cores back to waiting runs");
                }
                batch_split::concat_outputs(pieces.outputs, &pieces.rows, &model.info.outputs)
                    .map_err(failed)?
            }
            _ => {
                let outputs = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    model.backend.run(ordered)
                }))
                .map_err(|_| failed("the backend panicked".to_owned()))?
                .map_err(failed)?;
                // A split model's outputs must be rows of the batch whether or not this
                // run was split, so a wrong `split_batch` fails the same way idle or busy.
                if let Some(rows) = rows {
                    batch_split::check_outputs(&outputs, rows, &model.info.outputs)
                        .map_err(failed)?;
                }
                outputs
            }
        };
        let elapsed = started.elapsed();
        let outputs = model
            .info
            .outputs
            .iter()
            .zip(outputs)
            .map(|(spec, tensor)| NamedTensor {
                name: spec.name.clone(),
                tensor,
            })
            .collect();
        Ok(ModelRun {
            version: model.info.version.clone(),
            outputs,
            elapsed,
            parts,
        })
    }
}

impl ModelRegistry {
    /// Parses and optimises ONNX `bytes` a guest sent (`wasi:nn` `load`) into a model
    /// named `name` at `version`, holding one of this registry's CPU slots meanwhile
    /// (optimising is as CPU-bound as running). The caller bounds the size. A tract
    /// panic on malformed bytes is caught and reported as [`BytesError::Parse`].
    pub fn load_onnx_bytes(
        &self,
        name: &str,
        version: &str,
        bytes: &[u8],
    ) -> Result<LocalModel, BytesError> {
        let _slot = self.cpu.acquire();
        let started = Instant::now();
        let backend = std::panic::catch_unwind(|| TractModel::from_onnx_bytes(bytes))
            .map_err(|_| BytesError::Parse("tract panicked while reading it".to_owned()))??;
        tracing::debug!(
            model = name,
            bytes = bytes.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "loaded model bytes from a guest"
        );
        Ok(LocalModel::new(
            name,
            version,
            &sha256_bytes(bytes),
            Box::new(backend),
        ))
    }
}

/// Matches named inputs to the model's declared inputs and checks each one.
fn order_inputs(info: &ModelInfo, inputs: Vec<NamedTensor>) -> Result<Vec<Tensor>, LocalError> {
    let mut slots: Vec<Option<Tensor>> = vec![None; info.inputs.len()];
    for input in inputs {
        let Some(i) = info.inputs.iter().position(|s| s.name == input.name) else {
            let known: Vec<&str> = info.inputs.iter().map(|s| s.name.as_str()).collect();
            return Err(LocalError::BadInputName(format!(
                "model {:?} has no input {:?}; its inputs are [{}]",
                info.name,
                input.name,
                known.join(", ")
            )));
        };
        if slots[i].is_some() {
            return Err(LocalError::BadInputName(format!(
                "input {:?} given twice",
                input.name
            )));
        }
        info.inputs[i].check(&input.tensor).map_err(|p| match p {
            ShapeProblem::Type(m) => LocalError::TypeMismatch(format!("model {:?} {m}", info.name)),
            ShapeProblem::Shape(m) => {
                LocalError::ShapeMismatch(format!("model {:?} {m}", info.name))
            }
        })?;
        slots[i] = Some(input.tensor);
    }
    slots
        .into_iter()
        .zip(&info.inputs)
        .map(|(slot, spec)| {
            slot.ok_or_else(|| {
                LocalError::BadInputName(format!(
                    "model {:?} input {:?} is missing",
                    info.name, spec.name
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adds its two fp32 inputs element-wise: enough to test validation and ordering.
    struct Adder {
        inputs: Vec<TensorSpec>,
        outputs: Vec<TensorSpec>,
    }

    impl Adder {
        fn new() -> Self {
            let spec = |name: &str| TensorSpec {
                name: name.into(),
                ty: ElementType::Fp32,
                shape: vec![None, Some(2)],
            };
            Self {
                inputs: vec![spec("a"), spec("b")],
                outputs: vec![spec("sum")],
            }
        }
    }

    impl Backend for Adder {
        fn inputs(&self) -> &[TensorSpec] {
            &self.inputs
        }
        fn outputs(&self) -> &[TensorSpec] {
            &self.outputs
        }
        fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, String> {
            let a = inputs[0].to_f32().ok_or("a is not fp32")?;
            let b = inputs[1].to_f32().ok_or("b is not fp32")?;
            let sum: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
            Ok(vec![Tensor::from_f32(inputs[0].dims.clone(), &sum)])
        }
    }

    fn registry() -> ModelRegistry {
        let mut r = ModelRegistry::default();
        r.insert(LocalModel::new(
            "adder",
            "1.0",
            "00",
            Box::new(Adder::new()),
        ));
        r
    }

    fn named(name: &str, values: &[f32]) -> NamedTensor {
        NamedTensor {
            name: name.into(),
            tensor: Tensor::from_f32(vec![values.len() / 2, 2], values),
        }
    }

    #[test]
    fn runs_with_inputs_in_any_order() {
        let run = registry()
            .run(
                "adder",
                vec![named("b", &[10.0, 20.0]), named("a", &[1.0, 2.0])],
            )
            .expect("run");
        assert_eq!(run.outputs[0].name, "sum");
        assert_eq!(run.outputs[0].tensor.to_f32(), Some(vec![11.0, 22.0]));
    }

    #[test]
    fn unknown_model_lists_the_loaded_ones() {
        let err = registry().run("nope", vec![]).expect_err("unknown");
        assert_eq!(
            err,
            LocalError::UnknownModel("no local model named \"nope\"; loaded: [adder]".into())
        );
    }

    #[test]
    fn missing_repeated_and_unknown_inputs_are_named() {
        let r = registry();
        let missing = r
            .run("adder", vec![named("a", &[1.0, 2.0])])
            .expect_err("missing");
        assert!(matches!(missing, LocalError::BadInputName(m) if m.contains("\"b\" is missing")));
        let twice = r
            .run(
                "adder",
                vec![named("a", &[1.0, 2.0]), named("a", &[1.0, 2.0])],
            )
            .expect_err("twice");
        assert!(matches!(twice, LocalError::BadInputName(m) if m.contains("given twice")));
        let unknown = r
            .run("adder", vec![named("z", &[1.0, 2.0])])
            .expect_err("unknown");
        assert!(matches!(unknown, LocalError::BadInputName(m) if m.contains("inputs are [a, b]")));
    }

    #[test]
    fn wrong_shapes_and_types_never_reach_the_backend() {
        let r = registry();
        let bad = NamedTensor {
            name: "a".into(),
            tensor: Tensor::from_f32(vec![1, 3], &[1.0, 2.0, 3.0]),
        };
        let err = r
            .run("adder", vec![bad, named("b", &[1.0, 2.0])])
            .expect_err("shape");
        assert!(
            matches!(err, LocalError::ShapeMismatch(m) if m.contains("expected shape [?, 2], got [1, 3]"))
        );
        let int = NamedTensor {
            name: "a".into(),
            tensor: Tensor {
                dims: vec![1, 2],
                ty: ElementType::I32,
                data: vec![0; 8],
            },
        };
        let err = r
            .run("adder", vec![int, named("b", &[1.0, 2.0])])
            .expect_err("type");
        assert!(matches!(err, LocalError::TypeMismatch(_)));
    }

    #[test]
    fn a_replacement_must_keep_every_input_and_output() {
        let same = LocalModel::new("adder", "2.0", "11", Box::new(Adder::new()));
        let current = LocalModel::new("adder", "1.0", "00", Box::new(Adder::new()));
        assert_eq!(same.signature_difference(&current), None);
        let mut renamed = Adder::new();
        renamed.outputs[0].name = "total".into();
        let renamed = LocalModel::new("adder", "2.0", "22", Box::new(renamed));
        let difference = renamed.signature_difference(&current).expect("differs");
        assert_eq!(
            difference,
            "its outputs are [total: fp32 [?, 2]], the current model's are [sum: fp32 [?, 2]]"
        );
    }

    /// Doubles its `[B, 2]` input `x` (`h` is passed along untouched) and records the
    /// rows of every run; panics on a row starting with 13.0; with `pooled`, returns a
    /// `[1, 2]` output that is not a row of the batch.
    struct Rows {
        inputs: Vec<TensorSpec>,
        outputs: Vec<TensorSpec>,
        seen: Arc<std::sync::Mutex<Vec<usize>>>,
        pooled: bool,
        /// When a run holds a row starting with this value, a caller starts waiting for
        /// one of these slots.
        waiter: Option<(f32, Arc<CpuSlots>)>,
        /// Rows that must have run (on any thread) before a run holding row 0 goes on:
        /// makes the helpers start their parts before the calling thread, which would
        /// otherwise take their rows from the back, is done with its own.
        gate: Vec<f32>,
        /// Which thread ran each row (by its first value).
        threads: Arc<std::sync::Mutex<Vec<(f32, std::thread::ThreadId)>>>,
    }

    impl Rows {
        fn new(pooled: bool, seen: Arc<std::sync::Mutex<Vec<usize>>>) -> Self {
            let spec = |name: &str, first: Option<usize>| TensorSpec {
                name: name.into(),
                ty: ElementType::Fp32,
                shape: vec![first, Some(2)],
            };
            Self {
                inputs: vec![spec("x", None), spec("h", Some(1))],
                outputs: vec![spec("y", None)],
                seen,
                pooled,
                waiter: None,
                gate: Vec::new(),
                threads: Arc::default(),
            }
        }
    }

    impl Backend for Rows {
        fn inputs(&self) -> &[TensorSpec] {
            &self.inputs
        }
        fn outputs(&self) -> &[TensorSpec] {
            &self.outputs
        }
        fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, String> {
            assert_eq!(inputs[1].dims, vec![1, 2], "h is passed whole");
            let x = inputs[0].to_f32().ok_or("x is not fp32")?;
            self.seen.lock().expect("lock").push(inputs[0].dims[0]);
            if x.chunks(2).any(|row| row[0] == 13.0) {
                panic!("row 13");
            }
            if let Some((row, slots)) = &self.waiter
                && x.chunks(2).any(|r| r[0] == *row)
            {
                slots.pretend_waiting(1);
            }
            if x.first() == Some(&0.0) {
                // A guard against a hang if nothing runs the gate's rows: the assertions
                // on which thread ran what then fail.
                let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
                while std::time::Instant::now() < until {
                    let ran = self.threads.lock().expect("lock");
                    if self
                        .gate
                        .iter()
                        .all(|g| ran.iter().any(|(row, _)| row == g))
                    {
                        break;
                    }
                    drop(ran);
                    std::thread::yield_now();
                }
            }
            let me = std::thread::current().id();
            let mut threads = self.threads.lock().expect("lock");
            threads.extend(x.chunks(2).map(|r| (r[0], me)));
            if self.pooled {
                return Ok(vec![Tensor::from_f32(vec![1, 2], &[0.0, 0.0])]);
            }
            let y: Vec<f32> = x.iter().map(|v| v * 2.0).collect();
            Ok(vec![Tensor::from_f32(inputs[0].dims.clone(), &y)])
        }
    }

    type Seen = Arc<std::sync::Mutex<Vec<usize>>>;

    type Threads = Arc<std::sync::Mutex<Vec<(f32, std::thread::ThreadId)>>>;

    /// A registry of `slots` CPU slots with one model, `rows`, whose batches split (and
    /// whose row 0 waits for the rows in `gate`); the rows of each of its backend runs;
    /// and which thread ran each row.
    fn splitting(slots: usize, pooled: bool, gate: &[f32]) -> (ModelRegistry, Seen, Threads) {
        let seen = Seen::default();
        let mut backend = Rows::new(pooled, seen.clone());
        backend.gate = gate.to_vec();
        let threads = backend.threads.clone();
        let model = LocalModel::new("rows", "1", "00", Box::new(backend))
            .with_split_batch("B", &["x"])
            .expect("x is an input");
        let mut r = ModelRegistry::default().with_cpu_slots(Arc::new(CpuSlots::new(slots)));
        r.insert(model);
        (r, seen, threads)
    }

    /// The rows each thread ran since the last call (the calling thread's first), each
    /// in order.
    fn rows_by_thread(threads: &Threads) -> Vec<Vec<f32>> {
        let ran = std::mem::take(&mut *threads.lock().expect("lock"));
        let me = std::thread::current().id();
        let mut ids: Vec<std::thread::ThreadId> = vec![me];
        for (_, t) in &ran {
            if !ids.contains(t) {
                ids.push(*t);
            }
        }
        let mut groups: Vec<Vec<f32>> = ids
            .iter()
            .map(|id| {
                let mut rows: Vec<f32> = ran
                    .iter()
                    .filter(|(_, t)| t == id)
                    .map(|(row, _)| *row)
                    .collect();
                rows.sort_by(f32::total_cmp);
                rows
            })
            .collect();
        groups[1..].sort_by(|a, b| a[0].total_cmp(&b[0]));
        groups
    }

    fn batch(rows: usize) -> Vec<NamedTensor> {
        let x: Vec<f32> = (0..rows).flat_map(|r| [r as f32, 0.5]).collect();
        vec![
            NamedTensor {
                name: "x".into(),
                tensor: Tensor::from_f32(vec![rows, 2], &x),
            },
            named("h", &[1.0, 1.0]),
        ]
    }

    /// The rows of the runs since the last call, smallest first.
    fn seen(runs: &Seen) -> Vec<usize> {
        let mut rows = std::mem::take(&mut *runs.lock().expect("lock"));
        rows.sort_unstable();
        rows
    }

    #[test]
    fn a_batch_splits_across_free_slots_and_comes_back_in_order() {
        // Parts of 3, 2 and 2 contiguous rows; the helpers start with rows 3 and 5.
        let (r, seen_runs, threads) = splitting(3, false, &[3.0, 5.0]);
        let run = r.run("rows", batch(7)).expect("runs");
        assert_eq!(run.parts, 3);
        let by_thread = rows_by_thread(&threads);
        assert_eq!(by_thread.len(), 3, "{by_thread:?}");
        assert_eq!(by_thread[0][..3], [0.0, 1.0, 2.0], "the first part, here");
        assert_eq!(by_thread[1][0], 3.0, "{by_thread:?}");
        assert_eq!(by_thread[2][0], 5.0, "{by_thread:?}");
        let mut every: Vec<f32> = by_thread.concat();
        every.sort_by(f32::total_cmp);
        assert_eq!(
            every,
            (0..7).map(|r| r as f32).collect::<Vec<_>>(),
            "each row once"
        );
        assert!(seen(&seen_runs).contains(&3), "the first part in one run");
        let expected: Vec<f32> = (0..7).flat_map(|r| [2.0 * r as f32, 1.0]).collect();
        assert_eq!(run.outputs[0].tensor.dims, vec![7, 2]);
        assert_eq!(run.outputs[0].tensor.to_f32(), Some(expected));
        // Every slot is back.
        assert_eq!(r.cpu_slots().try_acquire_up_to(3).len(), 3);
    }

    #[test]
    fn nothing_splits_when_every_other_slot_is_held() {
        let (r, seen_runs, threads) = splitting(2, false, &[]);
        let held = r.cpu_slots().acquire();
        let run = r.run("rows", batch(6)).expect("runs");
        assert_eq!(run.parts, 1);
        assert_eq!(seen(&seen_runs), vec![6]);
        assert_eq!(
            rows_by_thread(&threads).len(),
            1,
            "all on the calling thread"
        );
        drop(held);
        let (r, _, threads) = splitting(2, false, &[3.0]);
        let run = r.run("rows", batch(6)).expect("runs");
        assert_eq!(run.parts, 2, "the slot is free");
        let by_thread = rows_by_thread(&threads);
        assert_eq!(by_thread.len(), 2, "{by_thread:?}");
        assert_eq!(
            by_thread[1][0], 3.0,
            "the second part starts on its own thread"
        );
    }

    #[test]
    fn one_row_or_no_split_batch_runs_whole() {
        let (r, seen_runs, _) = splitting(4, false, &[]);
        assert_eq!(r.run("rows", batch(1)).expect("runs").parts, 1);
        assert_eq!(seen(&seen_runs), vec![1]);
        let mut plain = ModelRegistry::default().with_cpu_slots(Arc::new(CpuSlots::new(4)));
        plain.insert(LocalModel::new(
            "rows",
            "1",
            "00",
            Box::new(Rows::new(false, Seen::default())),
        ));
        let run = plain.run("rows", batch(8)).expect("runs");
        assert_eq!(run.parts, 1);
    }

    #[test]
    fn a_helper_gives_its_core_back_to_a_waiting_run_and_the_caller_finishes_its_rows() {
        let slots = Arc::new(CpuSlots::new(2));
        let mut backend = Rows::new(false, Seen::default());
        // Rows 0..10 split 5 + 5; the helper starts with rows 5 and 6, and a caller starts
        // waiting for a slot during that piece.
        backend.waiter = Some((5.0, slots.clone()));
        backend.gate = vec![5.0];
        let threads = backend.threads.clone();
        let model = LocalModel::new("rows", "1", "00", Box::new(backend))
            .with_split_batch("B", &["x"])
            .expect("x is an input");
        let mut r = ModelRegistry::default().with_cpu_slots(slots.clone());
        r.insert(model);
        let run = r.run("rows", batch(10)).expect("runs");
        assert_eq!(run.parts, 2);
        let expected: Vec<f32> = (0..10).flat_map(|r| [2.0 * r as f32, 1.0]).collect();
        assert_eq!(
            run.outputs[0].tensor.to_f32(),
            Some(expected),
            "rows in order"
        );
        // The helper ran rows 5 and 6 only; rows 0..5 and 7..10 ran on this thread.
        let me = std::thread::current().id();
        let threads = threads.lock().expect("lock").clone();
        let elsewhere: Vec<f32> = threads
            .iter()
            .filter(|(_, t)| *t != me)
            .map(|(row, _)| *row)
            .collect();
        assert_eq!(elsewhere, vec![5.0, 6.0]);
        assert_eq!(threads.len(), 10);
        slots.pretend_waiting(0);
        assert_eq!(
            r.cpu_slots().try_acquire_up_to(2).len(),
            2,
            "every slot back"
        );
    }

    #[test]
    fn a_panic_in_one_part_fails_the_run_and_frees_every_slot() {
        let (r, _, _) = splitting(2, false, &[]);
        // Rows 0..14 split 7 + 7: row 13 is in the second part, on the spawned thread.
        let err = r.run("rows", batch(14)).expect_err("panicked");
        assert_eq!(
            err,
            LocalError::ExecutionFailed(
                "model \"rows\": the backend panicked (part 2 of 2 of a split batch)".into()
            )
        );
        assert_eq!(r.cpu_slots().try_acquire_up_to(2).len(), 2);
        // Unsplit, the same panic is reported as before.
        let held = r.cpu_slots().acquire();
        let err = r.run("rows", batch(14)).expect_err("panicked");
        assert_eq!(
            err,
            LocalError::ExecutionFailed("model \"rows\": the backend panicked".into())
        );
        drop(held);
    }

    #[test]
    fn outputs_not_in_rows_of_the_batch_are_an_error_split_or_not() {
        let (r, _, _) = splitting(2, true, &[]);
        for hold in [false, true] {
            let held = hold.then(|| r.cpu_slots().acquire());
            let err = r.run("rows", batch(4)).expect_err("not rows");
            assert!(
                matches!(&err, LocalError::ExecutionFailed(m)
                    if m.contains("output \"y\" has shape [1, 2]: with split_batch set")),
                "{err:?}"
            );
            drop(held);
        }
    }

    #[test]
    fn batched_inputs_of_different_rows_are_refused() {
        let model = LocalModel::new(
            "rows",
            "1",
            "00",
            Box::new(Rows::new(false, Seen::default())),
        )
        .with_split_batch("B", &["x", "h"])
        .expect("both inputs");
        let mut r = ModelRegistry::default();
        r.insert(model);
        let err = r.run("rows", batch(3)).expect_err("3 and 1 rows");
        assert_eq!(
            err,
            LocalError::ShapeMismatch(
                "model \"rows\" inputs \"x\" and \"h\" disagree on the batch \"B\": 3 and 1 rows"
                    .into()
            )
        );
        let err = LocalModel::new(
            "rows",
            "1",
            "00",
            Box::new(Rows::new(false, Seen::default())),
        )
        .with_split_batch("B", &["z"])
        .err()
        .expect("no input z");
        assert!(
            err.contains("no input \"z\"; its inputs are [x, h]"),
            "{err}"
        );
    }

    #[test]
    fn a_registry_copy_with_a_new_model_leaves_the_original_alone() {
        let before = registry();
        let after = before.with_model(Arc::new(LocalModel::new(
            "adder",
            "2.0",
            "11",
            Box::new(Adder::new()),
        )));
        assert_eq!(
            before.get("adder").map(|m| m.info().version.as_str()),
            Some("1.0")
        );
        assert_eq!(
            after.get("adder").map(|m| m.info().version.as_str()),
            Some("2.0")
        );
        assert_eq!(after.generation(), before.generation() + 1);
        assert_eq!(after.list().count(), 1);
    }
}
