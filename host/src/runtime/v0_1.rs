//! What 0.1.x components see: the `hybrid:inference@0.1.1` host interfaces, each function
//! converting its arguments to the 0.2 types, calling the 0.2 implementation of the same
//! context (`*_host.rs`) and converting the result back. There is one implementation of
//! every host function; this module only translates between two shapes of the same data.
//!
//! What 0.1 cannot carry is dropped on the way back: a failed call's record (0.1's
//! `remote.error` has no bytes or attempts; the host's ledger and metrics still have them).
//! 0.1 components have no `reply` or `stream-chat`: they always answer whole.

use wasmtime::component::{HasSelf, Linker};

use super::bindings::{v0_1 as old, v0_2 as now};
use super::clock_host::ClockCtx;
use super::local_host::LocalCtx;
use super::log_host::LogCtx;
use super::remote_host::RemoteCtx;
use super::signals_host::SignalsCtx;
use super::state::RequestState;

/// Builds `$to { field: $value.field, ... }` for fields that are the same in both versions.
macro_rules! same_fields {
    ($value:expr => $to:path { $($field:ident),* $(,)? }) => {{
        let value = $value;
        $to { $($field: value.$field),* }
    }};
}

/// Adds the 0.1 interfaces to `linker`, beside the 0.2 ones (their names differ by version).
pub fn add_to_linker(linker: &mut Linker<RequestState>) -> wasmtime::Result<()> {
    old::local::add_to_linker::<_, HasSelf<LocalCtx>>(linker, |s| &mut s.local)?;
    old::log::add_to_linker::<_, HasSelf<LogCtx>>(linker, |s| &mut s.log)?;
    old::clock::add_to_linker::<_, HasSelf<ClockCtx>>(linker, |s| &mut s.clock)?;
    old::remote::add_to_linker::<_, HasSelf<RemoteCtx>>(linker, |s| &mut s.remote)?;
    old::signals::add_to_linker::<_, HasSelf<SignalsCtx>>(linker, |s| &mut s.signals)?;
    Ok(())
}

// ---- messages: the request in, the answer out ----

/// A request as a 0.1 guest takes it.
pub fn request_to_v0_1(request: &now::messages::Request) -> old::messages::Request {
    same_fields!(request.clone() => old::messages::Request { id, content_type, body, metadata })
}

/// A 0.1 guest's response in 0.2 terms.
pub fn response_from_v0_1(response: old::messages::Response) -> now::messages::Response {
    now::messages::Response {
        content_type: response.content_type,
        body: response.body,
        routing: same_fields!(response.routing => now::messages::Routing {
            route, reason, model, model_version
        }),
    }
}

/// A 0.1 guest's error in 0.2 terms.
pub fn error_from_v0_1(error: old::messages::Error) -> now::messages::Error {
    use now::messages::Error as E;
    match error {
        old::messages::Error::BadRequest(m) => E::BadRequest(m),
        old::messages::Error::Unsupported(m) => E::Unsupported(m),
        old::messages::Error::Upstream(m) => E::Upstream(m),
        old::messages::Error::Internal(m) => E::Internal(m),
    }
}

// ---- tensors and local ----

fn tensor_type_to_now(ty: old::tensors::TensorType) -> now::tensors::TensorType {
    use now::tensors::TensorType as T;
    match ty {
        old::tensors::TensorType::Fp32 => T::Fp32,
        old::tensors::TensorType::U8 => T::U8,
        old::tensors::TensorType::I32 => T::I32,
        old::tensors::TensorType::I64 => T::I64,
    }
}

fn tensor_type_to_old(ty: now::tensors::TensorType) -> old::tensors::TensorType {
    use old::tensors::TensorType as T;
    match ty {
        now::tensors::TensorType::Fp32 => T::Fp32,
        now::tensors::TensorType::U8 => T::U8,
        now::tensors::TensorType::I32 => T::I32,
        now::tensors::TensorType::I64 => T::I64,
    }
}

fn named_tensor_to_now(t: old::tensors::NamedTensor) -> now::tensors::NamedTensor {
    now::tensors::NamedTensor {
        name: t.name,
        tensor: now::tensors::Tensor {
            dimensions: t.tensor.dimensions,
            ty: tensor_type_to_now(t.tensor.ty),
            data: t.tensor.data,
        },
    }
}

fn named_tensor_to_old(t: now::tensors::NamedTensor) -> old::tensors::NamedTensor {
    old::tensors::NamedTensor {
        name: t.name,
        tensor: old::tensors::Tensor {
            dimensions: t.tensor.dimensions,
            ty: tensor_type_to_old(t.tensor.ty),
            data: t.tensor.data,
        },
    }
}

fn spec_to_old(s: now::local::TensorSpec) -> old::local::TensorSpec {
    old::local::TensorSpec {
        name: s.name,
        ty: tensor_type_to_old(s.ty),
        shape: s.shape,
    }
}

fn local_error_to_old(e: now::local::Error) -> old::local::Error {
    use old::local::Error as E;
    match e {
        now::local::Error::UnknownModel(m) => E::UnknownModel(m),
        now::local::Error::BadInputName(m) => E::BadInputName(m),
        now::local::Error::TypeMismatch(m) => E::TypeMismatch(m),
        now::local::Error::ShapeMismatch(m) => E::ShapeMismatch(m),
        now::local::Error::ExecutionFailed(m) => E::ExecutionFailed(m),
    }
}

impl old::local::Host for LocalCtx {
    fn list_models(&mut self) -> Vec<old::local::ModelInfo> {
        now::local::Host::list_models(self)
            .into_iter()
            .map(|m| old::local::ModelInfo {
                name: m.name,
                version: m.version,
                sha256: m.sha256,
                inputs: m.inputs.into_iter().map(spec_to_old).collect(),
                outputs: m.outputs.into_iter().map(spec_to_old).collect(),
                assets: m.assets,
            })
            .collect()
    }

    fn asset(&mut self, model: String, name: String) -> Result<Vec<u8>, old::local::Error> {
        now::local::Host::asset(self, model, name).map_err(local_error_to_old)
    }

    fn run(
        &mut self,
        model: String,
        inputs: Vec<old::tensors::NamedTensor>,
    ) -> Result<Vec<old::tensors::NamedTensor>, old::local::Error> {
        let inputs = inputs.into_iter().map(named_tensor_to_now).collect();
        now::local::Host::run(self, model, inputs)
            .map(|outputs| outputs.into_iter().map(named_tensor_to_old).collect())
            .map_err(local_error_to_old)
    }
}

// ---- signals, log, clock ----

impl old::signals::Host for SignalsCtx {
    fn local_load(&mut self) -> old::signals::Load {
        same_fields!(now::signals::Host::local_load(self) => old::signals::Load {
            in_flight, queue_depth, capacity, recent_model_ms
        })
    }

    fn endpoints(&mut self) -> Vec<old::signals::EndpointHealth> {
        use old::signals::CircuitState as C;
        now::signals::Host::endpoints(self)
            .into_iter()
            .map(|e| old::signals::EndpointHealth {
                name: e.name,
                circuit: match e.circuit {
                    now::signals::CircuitState::Closed => C::Closed,
                    now::signals::CircuitState::Open => C::Open,
                    now::signals::CircuitState::HalfOpen => C::HalfOpen,
                },
                error_rate: e.error_rate,
                latency_ms: e.latency_ms,
                rate_limit_remaining: e.rate_limit_remaining,
            })
            .collect()
    }

    fn spend(&mut self) -> Vec<old::signals::WindowSpend> {
        now::signals::Host::spend(self)
            .into_iter()
            .map(|w| {
                same_fields!(w => old::signals::WindowSpend {
                    window, spent_micro_usd, budget_micro_usd
                })
            })
            .collect()
    }

    fn prices(&mut self) -> Vec<old::signals::EndpointPrice> {
        now::signals::Host::prices(self)
            .into_iter()
            .map(|p| {
                same_fields!(p => old::signals::EndpointPrice {
                    name, kind, input_usd_per_mtok, output_usd_per_mtok,
                    usd_per_audio_second, usd_per_request
                })
            })
            .collect()
    }
}

impl old::log::Host for LogCtx {
    fn log(&mut self, level: old::log::Level, message: String) {
        use now::log::Level as L;
        let level = match level {
            old::log::Level::Trace => L::Trace,
            old::log::Level::Debug => L::Debug,
            old::log::Level::Info => L::Info,
            old::log::Level::Warn => L::Warn,
            old::log::Level::Error => L::Error,
        };
        now::log::Host::log(self, level, message);
    }
}

impl old::clock::Host for ClockCtx {
    fn now(&mut self) -> u64 {
        now::clock::Host::now(self)
    }

    fn remaining(&mut self) -> u64 {
        now::clock::Host::remaining(self)
    }
}

// ---- remote ----

fn messages_to_now(messages: Vec<old::remote::Message>) -> Vec<now::remote::Message> {
    messages
        .into_iter()
        .map(|m| same_fields!(m => now::remote::Message { role, content }))
        .collect()
}

fn params_to_now(p: old::remote::ChatParams) -> now::remote::ChatParams {
    same_fields!(p => now::remote::ChatParams { max_tokens, temperature, top_p, stop, model })
}

fn record_to_old(c: now::remote::CallRecord) -> old::remote::CallRecord {
    old::remote::CallRecord {
        endpoint: c.endpoint,
        model: c.model,
        usage: same_fields!(c.usage => old::remote::Usage {
            input_tokens, output_tokens, audio_seconds
        }),
        cost_micro_usd: c.cost_micro_usd,
        bytes_sent: c.bytes_sent,
        bytes_received: c.bytes_received,
        latency_ms: c.latency_ms,
        attempts: c.attempts,
    }
}

/// A failure as 0.1 reports it: the error alone.
fn failure_to_old(f: now::remote::Failure) -> old::remote::Error {
    use old::remote::Error as E;
    match f.error {
        now::remote::Error::Timeout(m) => E::Timeout(m),
        now::remote::Error::RateLimited(ms) => E::RateLimited(ms),
        now::remote::Error::Unavailable(m) => E::Unavailable(m),
        now::remote::Error::Rejected(r) => E::Rejected(old::remote::Rejection {
            status: r.status,
            message: r.message,
        }),
        now::remote::Error::TooLarge(m) => E::TooLarge(m),
        now::remote::Error::BudgetExceeded(m) => E::BudgetExceeded(m),
        now::remote::Error::NotFound(m) => E::NotFound(m),
        now::remote::Error::BadResponse(m) => E::BadResponse(m),
    }
}

impl old::remote::Host for RemoteCtx {
    fn chat(
        &mut self,
        endpoint: String,
        messages: Vec<old::remote::Message>,
        params: old::remote::ChatParams,
    ) -> Result<old::remote::ChatResult, old::remote::Error> {
        now::remote::Host::chat(
            self,
            endpoint,
            messages_to_now(messages),
            params_to_now(params),
        )
        .map(|r| old::remote::ChatResult {
            content: r.content,
            finish_reason: r.finish_reason,
            call: record_to_old(r.call),
        })
        .map_err(failure_to_old)
    }

    fn embed(
        &mut self,
        endpoint: String,
        inputs: Vec<String>,
    ) -> Result<old::remote::EmbeddingsResult, old::remote::Error> {
        now::remote::Host::embed(self, endpoint, inputs)
            .map(|r| old::remote::EmbeddingsResult {
                vectors: r.vectors,
                call: record_to_old(r.call),
            })
            .map_err(failure_to_old)
    }

    fn transcribe(
        &mut self,
        endpoint: String,
        audio: Vec<u8>,
        format: String,
        language: Option<String>,
    ) -> Result<old::remote::TranscriptionResult, old::remote::Error> {
        now::remote::Host::transcribe(self, endpoint, audio, format, language)
            .map(|r| old::remote::TranscriptionResult {
                text: r.text,
                call: record_to_old(r.call),
            })
            .map_err(failure_to_old)
    }

    fn raw(
        &mut self,
        endpoint: String,
        body: String,
    ) -> Result<old::remote::RawResult, old::remote::Error> {
        now::remote::Host::raw(self, endpoint, body)
            .map(|r| old::remote::RawResult {
                status: r.status,
                body: r.body,
                call: record_to_old(r.call),
            })
            .map_err(failure_to_old)
    }
}
