//! The `wasi:nn` calls: graphs from the registry or from guest bytes, tensors in the
//! resource table, `compute` through the same checks, CPU slots and run records as
//! `local.run`, and errors as `error` resources.
//!
//! Which code a guest gets:
//! - `not-found`: `load-by-name` of a name the registry does not have (`data` lists the
//!   loaded models);
//! - `unsupported-operation`: `load` of an encoding other than `onnx`, or of target
//!   `gpu`/`tpu` unless `[runtime.nn] cpu_fallback` is on;
//! - `security`: `load` of bytes while `[runtime.nn] load_bytes_max` is 0 (the default);
//! - `too-large`: `load` of more bytes than `load_bytes_max`;
//! - `invalid-encoding`: `load` of bytes tract cannot read as ONNX;
//! - `invalid-argument`: `load` with other than one builder; `compute` with an unknown,
//!   missing or repeated input name, an element type other than the model's (or one tract
//!   cannot take: `FP16`, `FP64`, `BF16`), a shape or byte length that does not fit;
//! - `runtime-error`: tract failed preparing or running the model, or the run is past the
//!   pipeline's `limits.model_runs` (the request then ends with `limit_exceeded`).
//!
//! Log lines carry names, sizes, shapes and timings, never tensor data or model bytes.

use std::sync::Arc;

use wasmtime::component::Resource;

use super::generated::wasi::nn::{errors, graph, inference, tensor};
use super::{
    ErrorCode, ExecutionContext, GUEST_BYTES_LABEL, Graph, NnError, NnView, Tensor, TensorType,
};
use crate::local::{self as models, BytesError, ElementType, LocalError, LocalModel};
use graph::{ExecutionTarget, GraphEncoding};

/// What a fallible `wasi:nn` call returns: a trap, or the guest's result.
type NnResult<T> = wasmtime::Result<Result<T, Resource<NnError>>>;

impl NnView<'_> {
    /// Puts `error` in the table for the guest (logged at debug: guests probe on purpose).
    fn fail<T>(&mut self, code: ErrorCode, data: impl Into<String>) -> NnResult<T> {
        let error = NnError::new(code, data);
        tracing::debug!(code = ?error.code, data = %error.data, "wasi:nn call refused");
        Ok(Err(self.table.push(error)?))
    }

    /// Accounts for `bytes` more tensor data held for the guest; traps past the cap.
    fn hold(&mut self, bytes: usize) -> wasmtime::Result<()> {
        let held = self.ctx.held_bytes.saturating_add(bytes as u64);
        if held > self.ctx.held_max {
            wasmtime::bail!(
                "wasi:nn tensors held by this request would take {held} bytes, over the \
                 pipeline's memory cap of {} bytes",
                self.ctx.held_max
            );
        }
        self.ctx.held_bytes = held;
        Ok(())
    }

    /// Accounts for tensor data given back.
    fn release(&mut self, bytes: usize) {
        self.ctx.held_bytes = self.ctx.held_bytes.saturating_sub(bytes as u64);
    }

    fn push_graph(&mut self, model: Arc<LocalModel>, label: String) -> NnResult<Resource<Graph>> {
        Ok(Ok(self.table.push(Graph { model, label })?))
    }
}

impl graph::Host for NnView<'_> {
    fn load(
        &mut self,
        builders: Vec<graph::GraphBuilder>,
        encoding: GraphEncoding,
        target: ExecutionTarget,
    ) -> NnResult<Resource<Graph>> {
        let total: usize = builders.iter().map(Vec::len).sum();
        tracing::debug!(
            ?encoding,
            ?target,
            builders = builders.len(),
            bytes = total,
            "wasi:nn load"
        );
        if encoding != GraphEncoding::Onnx {
            return self.fail(
                ErrorCode::UnsupportedOperation,
                format!(
                    "graph encoding {} is not supported: this host runs ONNX models with \
                     tract; use encoding onnx, or load-by-name for the host's models",
                    encoding_name(encoding)
                ),
            );
        }
        if target != ExecutionTarget::Cpu && !self.ctx.config.cpu_fallback {
            return self.fail(
                ErrorCode::UnsupportedOperation,
                format!(
                    "execution target {} is not available: this host runs models on the \
                     CPU (the operator can allow CPU fallback with [runtime.nn] \
                     cpu_fallback = true); ask for target cpu",
                    target_name(target)
                ),
            );
        }
        let max = self.ctx.config.load_bytes_max;
        if max == 0 {
            return self.fail(
                ErrorCode::Security,
                "loading model bytes is turned off on this host ([runtime.nn] \
                 load_bytes_max = 0); use load-by-name with one of the host's models",
            );
        }
        if total as u64 > max {
            return self.fail(
                ErrorCode::TooLarge,
                format!(
                    "the model is {total} bytes; this host loads at most {max} bytes \
                     ([runtime.nn] load_bytes_max)"
                ),
            );
        }
        let [bytes] = builders.as_slice() else {
            return self.fail(
                ErrorCode::InvalidArgument,
                format!(
                    "an ONNX graph is one builder (the .onnx file's bytes), got {}",
                    builders.len()
                ),
            );
        };
        // Loading costs what a run costs: it counts against the pipeline's model runs.
        if let Err(e) = self.local.take_run() {
            return self.fail(ErrorCode::RuntimeError, local_message(&e));
        }
        let version = format!("sha256:{}", &models::sha256_bytes(bytes)[..12]);
        let loaded = self
            .local
            .models()
            .load_onnx_bytes(GUEST_BYTES_LABEL, &version, bytes);
        match loaded {
            Ok(model) => self.push_graph(Arc::new(model), GUEST_BYTES_LABEL.to_owned()),
            Err(e @ BytesError::Parse(_)) => self.fail(ErrorCode::InvalidEncoding, e.to_string()),
            Err(e @ BytesError::Prepare(_)) => self.fail(ErrorCode::RuntimeError, e.to_string()),
        }
    }

    fn load_by_name(&mut self, name: String) -> NnResult<Resource<Graph>> {
        tracing::debug!(model = %name, "wasi:nn load-by-name");
        let models = self.local.models().clone();
        match models.get(&name) {
            Some(model) => self.push_graph(model.clone(), name),
            None => {
                let message = local_message(&models.unknown(&name));
                self.fail(ErrorCode::NotFound, message)
            }
        }
    }
}

impl graph::HostGraph for NnView<'_> {
    fn init_execution_context(
        &mut self,
        graph: Resource<Graph>,
    ) -> NnResult<Resource<ExecutionContext>> {
        let graph = self.table.get(&graph)?;
        let context = ExecutionContext {
            model: graph.model.clone(),
            label: graph.label.clone(),
        };
        Ok(Ok(self.table.push(context)?))
    }

    fn drop(&mut self, graph: Resource<Graph>) -> wasmtime::Result<()> {
        self.table.delete(graph)?;
        Ok(())
    }
}

impl inference::Host for NnView<'_> {}

impl inference::HostGraphExecutionContext for NnView<'_> {
    fn compute(
        &mut self,
        context: Resource<ExecutionContext>,
        inputs: Vec<inference::NamedTensor>,
    ) -> NnResult<Vec<inference::NamedTensor>> {
        let (model, label) = {
            let context = self.table.get(&context)?;
            (context.model.clone(), context.label.clone())
        };
        // The inputs are owned by the call: take them out of the table first, so a
        // refused call leaves nothing behind either.
        let mut taken = Vec::with_capacity(inputs.len());
        for (name, tensor) in inputs {
            let tensor = self.table.delete(tensor)?;
            self.release(tensor.data.len());
            taken.push((name, tensor));
        }
        let mut named = Vec::with_capacity(taken.len());
        for (name, tensor) in taken {
            match tensor_to_local(&name, tensor) {
                Ok(t) => named.push(t),
                Err(message) => return self.fail(ErrorCode::InvalidArgument, message),
            }
        }
        tracing::debug!(model = %label, inputs = named.len(), "wasi:nn compute");
        if let Err(e) = self.local.take_run() {
            return self.fail(ErrorCode::RuntimeError, local_message(&e));
        }
        let outputs = match self.local.run_counted(&model, &label, named) {
            Ok(outputs) => outputs,
            Err(e) => {
                let code = match e {
                    LocalError::ExecutionFailed(_) => ErrorCode::RuntimeError,
                    LocalError::UnknownModel(_) => ErrorCode::NotFound,
                    LocalError::BadInputName(_)
                    | LocalError::TypeMismatch(_)
                    | LocalError::ShapeMismatch(_) => ErrorCode::InvalidArgument,
                };
                return self.fail(code, local_message(&e));
            }
        };
        let mut results = Vec::with_capacity(outputs.len());
        for output in outputs {
            self.hold(output.tensor.data.len())?;
            let tensor = tensor_from_local(output.tensor);
            results.push((output.name, self.table.push(tensor)?));
        }
        Ok(Ok(results))
    }

    fn drop(&mut self, context: Resource<ExecutionContext>) -> wasmtime::Result<()> {
        self.table.delete(context)?;
        Ok(())
    }
}

impl tensor::Host for NnView<'_> {}

impl tensor::HostTensor for NnView<'_> {
    fn new(
        &mut self,
        dimensions: tensor::TensorDimensions,
        ty: TensorType,
        data: tensor::TensorData,
    ) -> wasmtime::Result<Resource<Tensor>> {
        self.hold(data.len())?;
        Ok(self.table.push(Tensor {
            dimensions,
            ty,
            data,
        })?)
    }

    fn dimensions(&mut self, tensor: Resource<Tensor>) -> wasmtime::Result<Vec<u32>> {
        Ok(self.table.get(&tensor)?.dimensions.clone())
    }

    fn ty(&mut self, tensor: Resource<Tensor>) -> wasmtime::Result<TensorType> {
        Ok(self.table.get(&tensor)?.ty)
    }

    fn data(&mut self, tensor: Resource<Tensor>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.table.get(&tensor)?.data.clone())
    }

    fn drop(&mut self, tensor: Resource<Tensor>) -> wasmtime::Result<()> {
        let tensor = self.table.delete(tensor)?;
        self.release(tensor.data.len());
        Ok(())
    }
}

impl errors::Host for NnView<'_> {}

impl errors::HostError for NnView<'_> {
    fn code(&mut self, error: Resource<NnError>) -> wasmtime::Result<ErrorCode> {
        Ok(self.table.get(&error)?.code)
    }

    fn data(&mut self, error: Resource<NnError>) -> wasmtime::Result<String> {
        Ok(self.table.get(&error)?.data.clone())
    }

    fn drop(&mut self, error: Resource<NnError>) -> wasmtime::Result<()> {
        self.table.delete(error)?;
        Ok(())
    }
}

/// A registry error's message without its `case: ` prefix (the code says the case).
fn local_message(e: &LocalError) -> String {
    match e {
        LocalError::UnknownModel(m)
        | LocalError::BadInputName(m)
        | LocalError::TypeMismatch(m)
        | LocalError::ShapeMismatch(m)
        | LocalError::ExecutionFailed(m) => m.clone(),
    }
}

/// A guest tensor as the registry takes it, or why it cannot be one.
fn tensor_to_local(name: &str, t: Tensor) -> Result<models::NamedTensor, String> {
    let ty = match t.ty {
        TensorType::Fp32 => ElementType::Fp32,
        TensorType::U8 => ElementType::U8,
        TensorType::I32 => ElementType::I32,
        TensorType::I64 => ElementType::I64,
        other => {
            return Err(format!(
                "input {name:?}: element type {} is not supported by this host (FP32, U8, \
                 I32 and I64 are)",
                type_name(other)
            ));
        }
    };
    let dims = t
        .dimensions
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| format!("input {name:?}: a dimension does not fit this host"))?;
    Ok(models::NamedTensor {
        name: name.to_owned(),
        tensor: models::Tensor {
            dims,
            ty,
            data: t.data,
        },
    })
}

/// A model output as a `wasi:nn` tensor.
fn tensor_from_local(t: models::Tensor) -> Tensor {
    Tensor {
        // Saturate rather than wrap: an output too large for the guest shows as a length
        // mismatch, never as a different shape.
        dimensions: t
            .dims
            .iter()
            .map(|&d| u32::try_from(d).unwrap_or(u32::MAX))
            .collect(),
        ty: match t.ty {
            ElementType::Fp32 => TensorType::Fp32,
            ElementType::U8 => TensorType::U8,
            ElementType::I32 => TensorType::I32,
            ElementType::I64 => TensorType::I64,
        },
        data: t.data,
    }
}

/// The WIT spelling of an encoding, for messages.
fn encoding_name(encoding: GraphEncoding) -> &'static str {
    match encoding {
        GraphEncoding::Openvino => "openvino",
        GraphEncoding::Onnx => "onnx",
        GraphEncoding::Tensorflow => "tensorflow",
        GraphEncoding::Pytorch => "pytorch",
        GraphEncoding::Tensorflowlite => "tensorflowlite",
        GraphEncoding::Ggml => "ggml",
        GraphEncoding::Autodetect => "autodetect",
    }
}

/// The WIT spelling of a target, for messages.
fn target_name(target: ExecutionTarget) -> &'static str {
    match target {
        ExecutionTarget::Cpu => "cpu",
        ExecutionTarget::Gpu => "gpu",
        ExecutionTarget::Tpu => "tpu",
    }
}

/// The WIT spelling of an element type, for messages.
fn type_name(ty: TensorType) -> &'static str {
    match ty {
        TensorType::Fp16 => "FP16",
        TensorType::Fp32 => "FP32",
        TensorType::Fp64 => "FP64",
        TensorType::Bf16 => "BF16",
        TensorType::U8 => "U8",
        TensorType::I32 => "I32",
        TensorType::I64 => "I64",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NnConfig;
    use crate::local::{Backend, ModelRegistry, TensorSpec};
    use crate::runtime::local_host::LocalCtx;
    use crate::runtime::wasi_nn::NnCtx;
    use errors::HostError;
    use graph::{Host as _, HostGraph as _};
    use inference::HostGraphExecutionContext as _;
    use tensor::HostTensor as _;
    use wasmtime::component::ResourceTable;

    /// Doubles its fp32 input `x` ([?, 2]) into `y`.
    struct Doubler(Vec<TensorSpec>);

    impl Doubler {
        fn new() -> Self {
            Self(vec![TensorSpec {
                name: "x".into(),
                ty: ElementType::Fp32,
                shape: vec![None, Some(2)],
            }])
        }
    }

    impl Backend for Doubler {
        fn inputs(&self) -> &[TensorSpec] {
            &self.0
        }
        fn outputs(&self) -> &[TensorSpec] {
            &self.0
        }
        fn run(&self, inputs: Vec<models::Tensor>) -> Result<Vec<models::Tensor>, String> {
            let x = inputs[0].to_f32().ok_or("not fp32")?;
            let y: Vec<f32> = x.iter().map(|v| v * 2.0).collect();
            Ok(vec![models::Tensor::from_f32(inputs[0].dims.clone(), &y)])
        }
    }

    struct Fixture {
        nn: NnCtx,
        local: LocalCtx,
        table: ResourceTable,
    }

    impl Fixture {
        fn new(config: NnConfig, held_max: u64) -> Self {
            let mut registry = ModelRegistry::default();
            registry.insert(LocalModel::new(
                "double",
                "1",
                "00",
                Box::new(Doubler::new()),
            ));
            Self {
                nn: NnCtx::new(config, held_max),
                local: LocalCtx::new(Arc::new(registry)),
                table: ResourceTable::new(),
            }
        }

        fn view(&mut self) -> NnView<'_> {
            NnView::new(&mut self.nn, &mut self.local, &mut self.table)
        }
    }

    fn borrow<T: 'static>(r: &Resource<T>) -> Resource<T> {
        Resource::new_borrow(r.rep())
    }

    /// The code and data of a refused call.
    fn refusal<T>(view: &mut NnView<'_>, result: NnResult<T>) -> (ErrorCode, String) {
        let Ok(Err(error)) = result else {
            panic!("expected a wasi:nn error")
        };
        let code = HostError::code(view, borrow(&error)).expect("code");
        let data = HostError::data(view, borrow(&error)).expect("data");
        (code, data)
    }

    fn fp32(view: &mut NnView<'_>, dims: Vec<u32>, values: &[f32]) -> Resource<Tensor> {
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        view.new(dims, TensorType::Fp32, data).expect("tensor")
    }

    #[test]
    fn runs_a_registry_model_by_name_and_records_the_run() {
        let mut fixture = Fixture::new(NnConfig::default(), 1 << 20);
        let mut view = fixture.view();
        let graph = view
            .load_by_name("double".into())
            .expect("no trap")
            .expect("found");
        let context = view
            .init_execution_context(borrow(&graph))
            .expect("no trap")
            .expect("context");
        let x = fp32(&mut view, vec![1, 2], &[1.5, -2.0]);
        let outputs = view
            .compute(borrow(&context), vec![("x".into(), x)])
            .expect("no trap")
            .expect("computed");
        assert_eq!(outputs.len(), 1);
        let (name, y) = &outputs[0];
        assert_eq!(name, "x");
        let data = tensor::HostTensor::data(&mut view, borrow(y)).expect("data");
        assert_eq!(
            models::Tensor::from_f32(vec![1, 2], &[3.0, -4.0]).data,
            data
        );
        assert_eq!(fixture.local.runs.len(), 1);
        assert_eq!(fixture.local.runs[0].model, "double");
        // The input went to the host with the call: only the output's 8 bytes are held.
        assert_eq!(fixture.nn.held_bytes, 8);
    }

    #[test]
    fn refusals_carry_the_right_codes() {
        let mut fixture = Fixture::new(NnConfig::default(), 1 << 20);
        let mut view = fixture.view();
        let r = view.load_by_name("nope".into());
        let (code, data) = refusal(&mut view, r);
        assert_eq!(code, ErrorCode::NotFound);
        assert!(data.contains("loaded: [double]"), "{data}");

        let r = view.load(
            vec![vec![0; 4]],
            GraphEncoding::Tensorflow,
            ExecutionTarget::Cpu,
        );
        assert_eq!(refusal(&mut view, r).0, ErrorCode::UnsupportedOperation);
        let r = view.load(vec![vec![0; 4]], GraphEncoding::Onnx, ExecutionTarget::Gpu);
        assert_eq!(refusal(&mut view, r).0, ErrorCode::UnsupportedOperation);
        let r = view.load(vec![vec![0; 4]], GraphEncoding::Onnx, ExecutionTarget::Cpu);
        assert_eq!(refusal(&mut view, r).0, ErrorCode::Security);

        let graph = view
            .load_by_name("double".into())
            .expect("ok")
            .expect("found");
        let context = view
            .init_execution_context(borrow(&graph))
            .expect("ok")
            .expect("context");
        let wrong_shape = fp32(&mut view, vec![1, 3], &[1.0, 2.0, 3.0]);
        let r = view.compute(borrow(&context), vec![("x".into(), wrong_shape)]);
        let (code, data) = refusal(&mut view, r);
        assert_eq!(code, ErrorCode::InvalidArgument);
        assert!(data.contains("expected shape [?, 2], got [1, 3]"), "{data}");
        let half = view
            .new(vec![1, 2], TensorType::Fp16, vec![0; 4])
            .expect("tensor");
        let r = view.compute(borrow(&context), vec![("x".into(), half)]);
        let (code, data) = refusal(&mut view, r);
        assert_eq!(code, ErrorCode::InvalidArgument);
        assert!(data.contains("FP16 is not supported"), "{data}");
        assert_eq!(fixture.nn.held_bytes, 0, "refused inputs are released");
    }

    #[test]
    fn bytes_are_refused_past_the_limit_and_when_they_are_not_onnx() {
        let config = NnConfig {
            load_bytes_max: 16,
            cpu_fallback: true,
        };
        let mut fixture = Fixture::new(config, 1 << 20);
        let mut view = fixture.view();
        let r = view.load(vec![vec![0; 17]], GraphEncoding::Onnx, ExecutionTarget::Cpu);
        assert_eq!(refusal(&mut view, r).0, ErrorCode::TooLarge);
        let r = view.load(
            vec![vec![1; 8], vec![2; 8]],
            GraphEncoding::Onnx,
            ExecutionTarget::Tpu,
        );
        assert_eq!(refusal(&mut view, r).0, ErrorCode::InvalidArgument);
        let r = view.load(
            vec![b"not a model".to_vec()],
            GraphEncoding::Onnx,
            ExecutionTarget::Gpu,
        );
        assert_eq!(refusal(&mut view, r).0, ErrorCode::InvalidEncoding);
    }

    #[test]
    fn tensors_past_the_cap_trap() {
        let mut fixture = Fixture::new(NnConfig::default(), 16);
        let mut view = fixture.view();
        let kept = view
            .new(vec![16], TensorType::U8, vec![0; 16])
            .expect("fits");
        let err = view
            .new(vec![1], TensorType::U8, vec![0])
            .expect_err("past the cap");
        assert!(err.to_string().contains("memory cap of 16 bytes"), "{err}");
        tensor::HostTensor::drop(&mut view, kept).expect("dropped");
        assert_eq!(fixture.nn.held_bytes, 0);
    }
}
