//! Everything a pipeline can ask of the host, as one trait over plain Rust values:
//! [`Host`] mirrors every import of the WIT world `pipeline` (`local`, `remote`,
//! `signals`, `log`, `clock`, `reply`).
//!
//! The calls of 0.1 (`chat`, `embed`, `transcribe`, `raw`) return a [`RemoteError`];
//! since 0.2 the host also sends each failure's record, which [`Host::stream_chat`] and
//! [`Host::forward`] return whole ([`Failure`]) and the `*_recorded` variants of the 0.1
//! calls return beside the error ([`Host::chat_recorded`], [`Host::embed_recorded`],
//! [`Host::transcribe_recorded`], [`Host::raw_recorded`]). [`WasmHost`] implements it over the component's imports;
//! unit tests implement it with `crate::fake::FakeHost` (feature `fake`), so a pipeline's
//! whole flow runs natively.
//!
//! A component imports only the functions its code calls: an import no code path reaches
//! is dropped when the component is built, so depending on the whole trait costs nothing.

use crate::bindings::hybrid::inference::{clock, local, log, remote, reply, signals};
use crate::local::{LocalError, ModelInfo};
use crate::remote::{
    ChatParams, ChatResult, EmbeddingsResult, Message, RawResult, RemoteError, TranscriptionResult,
};
use crate::signals::{EndpointHealth, EndpointPrice, Load, WindowSpend};
use crate::stream::{
    ChatChunk, ChatChunks, Failure, FailureRecord, ForwardSummary, WasmChatStream,
};
use crate::tensor::NamedTensor;

pub use log::Level;

/// The host functions a pipeline calls, one per WIT import.
pub trait Host {
    /// This host's open chat streams ([`Self::stream_chat`]).
    type Stream: ChatChunks;

    /// Every model loaded on this host, in configuration order (WIT `local.list-models`).
    fn list_models(&mut self) -> Vec<ModelInfo>;

    /// The bytes of asset `name` of `model`, e.g. a tokenizer's vocabulary (WIT
    /// `local.asset`). Errors: `unknown-model`, or `bad-input-name` for an unknown asset.
    fn asset(&mut self, model: &str, name: &str) -> Result<Vec<u8>, LocalError>;

    /// Runs `model` once on `inputs`, one tensor per model input in any order, and returns
    /// every output in the model's order (WIT `local.run`).
    fn run_model(
        &mut self,
        model: &str,
        inputs: &[NamedTensor],
    ) -> Result<Vec<NamedTensor>, LocalError>;

    /// A chat completion on `endpoint`, of kind `chat` (WIT `remote.chat`).
    fn chat(
        &mut self,
        endpoint: &str,
        messages: &[Message],
        params: &ChatParams,
    ) -> Result<ChatResult, RemoteError>;

    /// Starts a streamed chat completion on `endpoint`, of kind `chat`, returning once its
    /// first chunk has arrived (WIT `remote.stream-chat`): a failure before any text is an
    /// error here, so the caller can try another endpoint.
    fn stream_chat(
        &mut self,
        endpoint: &str,
        messages: &[Message],
        params: &ChatParams,
    ) -> Result<Self::Stream, Failure>;

    /// [`Self::chat`], with a failure's record (bytes sent and received, attempts, latency,
    /// when to retry) when the host reports one; `None` where it cannot be known (the
    /// default, e.g. a fake host with no record scripted).
    fn chat_recorded(
        &mut self,
        endpoint: &str,
        messages: &[Message],
        params: &ChatParams,
    ) -> Result<ChatResult, (RemoteError, Option<FailureRecord>)> {
        self.chat(endpoint, messages, params).map_err(|e| (e, None))
    }

    /// Sends `chunk` to the client now (WIT `reply.emit`); `false` once the client has gone
    /// away. Answer [`crate::Answer::Emitted`] after emitting.
    fn emit(&mut self, chunk: &ChatChunk) -> bool;

    /// Answers with `stream` as it is (WIT `reply.forward`, since 0.2.1): the host relays
    /// the rest of it to the client, each chunk as it arrives, without the chunks entering
    /// the guest, and returns once it has ended, with the call's record, the finish reason
    /// and what was relayed. Use it when there is nothing to change in the text ([`Self::emit`]
    /// is for transforms). A failure after the first chunk (the provider broke off, the
    /// deadline, the client went away, the response limit) comes with its record; the
    /// client keeps what it got, so return an error (or, for a client gone, just return).
    /// Answer [`crate::Answer::Emitted`] after forwarding.
    fn forward(&mut self, stream: Self::Stream) -> Result<ForwardSummary, Failure>;

    /// One vector per input, in input order, from `endpoint`, of kind `embeddings` (WIT
    /// `remote.embed`).
    fn embed(&mut self, endpoint: &str, inputs: &[String])
    -> Result<EmbeddingsResult, RemoteError>;

    /// [`Self::embed`], with a failure's record when the host reports one (see
    /// [`Self::chat_recorded`]).
    fn embed_recorded(
        &mut self,
        endpoint: &str,
        inputs: &[String],
    ) -> Result<EmbeddingsResult, (RemoteError, Option<FailureRecord>)> {
        self.embed(endpoint, inputs).map_err(|e| (e, None))
    }

    /// Transcribes `audio`, a file in `format` (`wav`, `mp3`, ...), on `endpoint`, of kind
    /// `transcription`; `language` is an optional ISO-639-1 hint (WIT `remote.transcribe`).
    fn transcribe(
        &mut self,
        endpoint: &str,
        audio: &[u8],
        format: &str,
        language: Option<&str>,
    ) -> Result<TranscriptionResult, RemoteError>;

    /// [`Self::transcribe`], with a failure's record when the host reports one (a 0.2 host
    /// does: bytes sent and received, attempts, latency, when to retry); `None` where it
    /// cannot be known (the default, e.g. a fake host with no record scripted).
    fn transcribe_recorded(
        &mut self,
        endpoint: &str,
        audio: &[u8],
        format: &str,
        language: Option<&str>,
    ) -> Result<TranscriptionResult, (RemoteError, Option<FailureRecord>)> {
        self.transcribe(endpoint, audio, format, language)
            .map_err(|e| (e, None))
    }

    /// POSTs the JSON `body` to `endpoint`, of kind `raw`, and returns its JSON answer
    /// (WIT `remote.raw`).
    fn raw(&mut self, endpoint: &str, body: &str) -> Result<RawResult, RemoteError>;

    /// [`Self::raw`], with a failure's record when the host reports one (see
    /// [`Self::chat_recorded`]).
    fn raw_recorded(
        &mut self,
        endpoint: &str,
        body: &str,
    ) -> Result<RawResult, (RemoteError, Option<FailureRecord>)> {
        self.raw(endpoint, body).map_err(|e| (e, None))
    }

    /// The box's load now (WIT `signals.local-load`).
    fn local_load(&mut self) -> Load;

    /// Health of every configured endpoint (WIT `signals.endpoints`).
    fn endpoints(&mut self) -> Vec<EndpointHealth>;

    /// Spend in each budget window: minute, hour, day (WIT `signals.spend`).
    fn spend(&mut self) -> Vec<WindowSpend>;

    /// What every configured endpoint charges, in name order (WIT `signals.prices`).
    fn prices(&mut self) -> Vec<EndpointPrice>;

    /// Milliseconds until `endpoint`'s open circuit lets a probe through; `None` unless it
    /// is open (WIT `signals.circuit-retry-after-ms`, since 0.2.1). The wait to give a
    /// client refused because of the open circuit.
    fn circuit_retry_after_ms(&mut self, endpoint: &str) -> Option<u32>;

    /// Milliseconds until no budget window is spent any more; `None` when none is (WIT
    /// `signals.budget-retry-after-ms`, since 0.2.1). The wait to give a client refused
    /// because the budget is spent.
    fn budget_retry_after_ms(&mut self) -> Option<u32>;

    /// Writes `message` to the host's log at `level` (WIT `log.log`). For operators:
    /// sizes, shapes, routes and timings, never payloads.
    fn log(&mut self, level: Level, message: &str);

    /// Nanoseconds on a monotonic clock; only differences mean anything (WIT `clock.now`).
    fn now_ns(&mut self) -> u64;

    /// Nanoseconds left before the host stops this request, zero once past its deadline
    /// (WIT `clock.remaining`).
    fn remaining_ns(&mut self) -> u64;

    /// Writes `message` to the host's log at level info.
    fn log_info(&mut self, message: &str) {
        self.log(Level::Info, message);
    }
}

/// The real host: [`Host`] over the component's imports. [`crate::export_pipeline!`]
/// hands it to the pipeline; it only works inside a component (natively every call
/// panics, as there is no host to call).
#[derive(Debug, Clone, Copy, Default)]
pub struct WasmHost;

impl Host for WasmHost {
    type Stream = WasmChatStream;

    fn list_models(&mut self) -> Vec<ModelInfo> {
        local::list_models()
    }

    fn asset(&mut self, model: &str, name: &str) -> Result<Vec<u8>, LocalError> {
        local::asset(model, name).map_err(LocalError::from)
    }

    fn run_model(
        &mut self,
        model: &str,
        inputs: &[NamedTensor],
    ) -> Result<Vec<NamedTensor>, LocalError> {
        local::run(model, inputs).map_err(LocalError::from)
    }

    fn chat(
        &mut self,
        endpoint: &str,
        messages: &[Message],
        params: &ChatParams,
    ) -> Result<ChatResult, RemoteError> {
        remote::chat(endpoint, messages, params).map_err(|f| Failure::from(f).error)
    }

    fn stream_chat(
        &mut self,
        endpoint: &str,
        messages: &[Message],
        params: &ChatParams,
    ) -> Result<WasmChatStream, Failure> {
        remote::stream_chat(endpoint, messages, params)
            .map(WasmChatStream)
            .map_err(Failure::from)
    }

    fn chat_recorded(
        &mut self,
        endpoint: &str,
        messages: &[Message],
        params: &ChatParams,
    ) -> Result<ChatResult, (RemoteError, Option<FailureRecord>)> {
        remote::chat(endpoint, messages, params).map_err(recorded)
    }

    fn emit(&mut self, chunk: &ChatChunk) -> bool {
        reply::emit(chunk)
    }

    fn forward(&mut self, stream: WasmChatStream) -> Result<ForwardSummary, Failure> {
        reply::forward(stream.0).map_err(Failure::from)
    }

    fn embed_recorded(
        &mut self,
        endpoint: &str,
        inputs: &[String],
    ) -> Result<EmbeddingsResult, (RemoteError, Option<FailureRecord>)> {
        remote::embed(endpoint, inputs).map_err(recorded)
    }

    fn raw_recorded(
        &mut self,
        endpoint: &str,
        body: &str,
    ) -> Result<RawResult, (RemoteError, Option<FailureRecord>)> {
        remote::raw(endpoint, body).map_err(recorded)
    }

    fn embed(
        &mut self,
        endpoint: &str,
        inputs: &[String],
    ) -> Result<EmbeddingsResult, RemoteError> {
        remote::embed(endpoint, inputs).map_err(|f| Failure::from(f).error)
    }

    fn transcribe(
        &mut self,
        endpoint: &str,
        audio: &[u8],
        format: &str,
        language: Option<&str>,
    ) -> Result<TranscriptionResult, RemoteError> {
        remote::transcribe(endpoint, audio, format, language).map_err(|f| Failure::from(f).error)
    }

    fn raw(&mut self, endpoint: &str, body: &str) -> Result<RawResult, RemoteError> {
        remote::raw(endpoint, body).map_err(|f| Failure::from(f).error)
    }

    fn transcribe_recorded(
        &mut self,
        endpoint: &str,
        audio: &[u8],
        format: &str,
        language: Option<&str>,
    ) -> Result<TranscriptionResult, (RemoteError, Option<FailureRecord>)> {
        remote::transcribe(endpoint, audio, format, language).map_err(recorded)
    }

    fn local_load(&mut self) -> Load {
        signals::local_load()
    }

    fn endpoints(&mut self) -> Vec<EndpointHealth> {
        signals::endpoints()
    }

    fn spend(&mut self) -> Vec<WindowSpend> {
        signals::spend()
    }

    fn prices(&mut self) -> Vec<EndpointPrice> {
        signals::prices()
    }

    fn circuit_retry_after_ms(&mut self, endpoint: &str) -> Option<u32> {
        signals::circuit_retry_after_ms(endpoint)
    }

    fn budget_retry_after_ms(&mut self) -> Option<u32> {
        signals::budget_retry_after_ms()
    }

    fn log(&mut self, level: Level, message: &str) {
        log::log(level, message);
    }

    fn now_ns(&mut self) -> u64 {
        clock::now()
    }

    fn remaining_ns(&mut self) -> u64 {
        clock::remaining()
    }
}

/// A failed call's error with its record, for the `*_recorded` calls.
fn recorded(failure: remote::Failure) -> (RemoteError, Option<FailureRecord>) {
    let failure = Failure::from(failure);
    (failure.error, Some(failure.call))
}
