//! [`Host`] and [`Signals`] over the real host functions: the WIT `local`
//! (`list-models`, `run`), `remote` (`chat`), `signals` and `log` imports, converted to
//! and from the plain types of [`classify::host`] and [`classify::signals`].

use classify::host::{CallRecord, ChatParams, ChatResult, Host, Message, ModelInfo, RemoteError};
use classify::signals::{Circuit, EndpointHealth, EndpointPrice, Load, Signals, WindowSpend};
use classify::tensor::{ElementType, NamedTensor};

use crate::component::bindings::hybrid::inference::{local, log, remote, signals, tensors};

/// The host, reached through the component's imports.
pub struct HostImports;

impl Host for HostImports {
    fn list_models(&mut self) -> Vec<ModelInfo> {
        local::list_models()
            .into_iter()
            .map(|m| ModelInfo {
                name: m.name,
                version: m.version,
            })
            .collect()
    }

    fn run_model(
        &mut self,
        model: &str,
        inputs: Vec<NamedTensor>,
    ) -> Result<Vec<NamedTensor>, String> {
        let inputs: Vec<tensors::NamedTensor> = inputs.into_iter().map(to_wit_tensor).collect();
        match local::run(model, &inputs) {
            Ok(outputs) => Ok(outputs.into_iter().map(from_wit_tensor).collect()),
            Err(e) => Err(local_error(e)),
        }
    }

    fn chat(
        &mut self,
        endpoint: &str,
        messages: Vec<Message>,
        params: ChatParams,
    ) -> Result<ChatResult, RemoteError> {
        let messages: Vec<remote::Message> = messages
            .into_iter()
            .map(|m| remote::Message {
                role: m.role,
                content: m.content,
            })
            .collect();
        let params = remote::ChatParams {
            max_tokens: params.max_tokens,
            temperature: params.temperature,
            top_p: None,
            stop: Vec::new(),
            model: None,
        };
        match remote::chat(endpoint, &messages, &params) {
            Ok(result) => Ok(ChatResult {
                content: result.content,
                call: CallRecord {
                    endpoint: result.call.endpoint,
                    model: result.call.model,
                    cost_micro_usd: result.call.cost_micro_usd,
                    latency_ms: result.call.latency_ms,
                    attempts: result.call.attempts,
                },
            }),
            Err(e) => Err(from_wit_remote_error(e)),
        }
    }

    fn log_info(&mut self, message: &str) {
        log::log(log::Level::Info, message);
    }
}

impl Signals for HostImports {
    fn local_load(&mut self) -> Load {
        let load = signals::local_load();
        Load {
            in_flight: load.in_flight,
            queue_depth: load.queue_depth,
            capacity: load.capacity,
        }
    }

    fn endpoints(&mut self) -> Vec<EndpointHealth> {
        signals::endpoints()
            .into_iter()
            .map(|h| EndpointHealth {
                name: h.name,
                circuit: match h.circuit {
                    signals::CircuitState::Closed => Circuit::Closed,
                    signals::CircuitState::Open => Circuit::Open,
                    signals::CircuitState::HalfOpen => Circuit::HalfOpen,
                },
                error_rate: h.error_rate,
            })
            .collect()
    }

    fn spend(&mut self) -> Vec<WindowSpend> {
        signals::spend()
            .into_iter()
            .map(|w| WindowSpend {
                window: w.window,
                spent_micro_usd: w.spent_micro_usd,
                budget_micro_usd: w.budget_micro_usd,
            })
            .collect()
    }

    fn prices(&mut self) -> Vec<EndpointPrice> {
        signals::prices()
            .into_iter()
            .map(|p| EndpointPrice {
                name: p.name,
                input_usd_per_mtok: p.input_usd_per_mtok,
                output_usd_per_mtok: p.output_usd_per_mtok,
                usd_per_request: p.usd_per_request,
            })
            .collect()
    }
}

/// `case-name: message` for a local model error.
fn local_error(error: local::Error) -> String {
    let (case, message) = match error {
        local::Error::UnknownModel(m) => ("unknown-model", m),
        local::Error::BadInputName(m) => ("bad-input-name", m),
        local::Error::TypeMismatch(m) => ("type-mismatch", m),
        local::Error::ShapeMismatch(m) => ("shape-mismatch", m),
        local::Error::ExecutionFailed(m) => ("execution-failed", m),
    };
    format!("{case}: {message}")
}

fn from_wit_remote_error(error: remote::Error) -> RemoteError {
    match error {
        remote::Error::Timeout(m) => RemoteError::Timeout(m),
        remote::Error::RateLimited(ms) => RemoteError::RateLimited(ms),
        remote::Error::Unavailable(m) => RemoteError::Unavailable(m),
        remote::Error::Rejected(r) => RemoteError::Rejected {
            status: r.status,
            message: r.message,
        },
        remote::Error::TooLarge(m) => RemoteError::TooLarge(m),
        remote::Error::BudgetExceeded(m) => RemoteError::BudgetExceeded(m),
        remote::Error::NotFound(m) => RemoteError::NotFound(m),
        remote::Error::BadResponse(m) => RemoteError::BadResponse(m),
    }
}

fn to_wit_tensor(t: NamedTensor) -> tensors::NamedTensor {
    let ty = match t.ty {
        ElementType::Fp32 => tensors::TensorType::Fp32,
        ElementType::U8 => tensors::TensorType::U8,
        ElementType::I32 => tensors::TensorType::I32,
        ElementType::I64 => tensors::TensorType::I64,
    };
    tensors::NamedTensor {
        name: t.name,
        tensor: tensors::Tensor {
            dimensions: t.dims,
            ty,
            data: t.data,
        },
    }
}

fn from_wit_tensor(t: tensors::NamedTensor) -> NamedTensor {
    let ty = match t.tensor.ty {
        tensors::TensorType::Fp32 => ElementType::Fp32,
        tensors::TensorType::U8 => ElementType::U8,
        tensors::TensorType::I32 => ElementType::I32,
        tensors::TensorType::I64 => ElementType::I64,
    };
    NamedTensor {
        name: t.name,
        dims: t.tensor.dimensions,
        ty,
        data: t.tensor.data,
    }
}
