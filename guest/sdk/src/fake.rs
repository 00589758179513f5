//! A scriptable in-memory host for native unit tests (feature `fake`): every import of
//! [`Host`] answers from a field a test sets, and every call is recorded.
//!
//! - Data: `models` and `assets` (what `list-models` and `asset` return), `load`,
//!   `endpoints`, `spend` and `prices` (the signals), and the clock (`clock_ns`,
//!   advanced by `tick_ns` on each reading; `time_left_ns`).
//! - Scripts, functions of the call, for what is computed: `on_run_model` (the models;
//!   only called for a model listed in `models`, as the host refuses others with
//!   `unknown-model`), `on_chat`, `on_embed`, `on_transcribe`, `on_raw`,
//!   `on_stream_chat` (a [`FakeStream`]). Unscripted, every endpoint is missing
//!   (`not-found`), as on a box without serverless; [`always`], [`fail`], [`reply`] and
//!   [`stream`] build the common scripts. `client_listens_for` says how many emitted
//!   or forwarded chunks the client takes before it goes away; `failure_record` (and
//!   `transcribe_failure_record`) what the `*_recorded` calls report with a failure;
//!   `circuit_waits` and `budget_wait_ms` what the 0.2.1 wait signals say.
//! - Records: `runs`, `chats`, `embeds`, `transcriptions`, `raws`, `stream_chats` (each
//!   call's arguments, in order, failed calls included), the chunks the client got
//!   (`emitted`, forwarded ones included, and `forwards`, how many streams were
//!   forwarded), and `logs` with `log_levels`.
//!
//! ```
//! use hybrid_guest::Host;
//! use hybrid_guest::fake::{self, FakeHost};
//! use hybrid_guest::remote::{CallRecord, ChatParams, Message, RemoteError};
//!
//! let mut host = FakeHost::new();
//! host.on_chat = fake::reply("7", CallRecord { model: "big".into(), ..CallRecord::default() });
//! let asked = [Message::new("user", "which digit?")];
//! let answer = host.chat("strong", &asked, &ChatParams::default()).expect("scripted");
//! assert_eq!((answer.content.as_str(), answer.call.endpoint.as_str()), ("7", "strong"));
//! host.on_chat = fake::fail(RemoteError::Timeout("slow".into()));
//! assert!(host.chat("strong", &asked, &ChatParams::default()).is_err());
//! assert_eq!(host.chats.len(), 2);
//! ```

use std::collections::BTreeMap;
use std::fmt;

use crate::Response;
use crate::host::{Host, Level};
use crate::local::{LocalError, ModelInfo};
use crate::remote::{
    CallRecord, ChatParams, ChatResult, EmbeddingsResult, Message, RawResult, RemoteError,
    TranscriptionResult,
};
use crate::signals::{EndpointHealth, EndpointPrice, Load, WindowSpend};
use crate::stream::{ChatChunk, ChatChunks, Failure, FailureRecord, ForwardSummary};
use crate::tensor::NamedTensor;

/// A scripted chat stream: its chunks (or a failure in their place), then the end.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeStream {
    /// What `next_chunk` returns, in order; `Ok(None)` once empty.
    pub chunks: std::collections::VecDeque<Result<ChatChunk, Failure>>,
    /// The call's record.
    pub call: CallRecord,
}

impl ChatChunks for FakeStream {
    fn next_chunk(&mut self) -> Result<Option<ChatChunk>, Failure> {
        self.chunks.pop_front().transpose()
    }

    fn call(&self) -> CallRecord {
        self.call.clone()
    }
}

/// A script streaming `deltas` as chunks (the last with finish reason `stop`), then a
/// chunk with the record's usage.
pub fn stream(deltas: &[&str], call: CallRecord) -> Script<ChatCall, Result<FakeStream, Failure>> {
    let deltas: Vec<String> = deltas.iter().map(|d| (*d).to_owned()).collect();
    Box::new(move |asked| {
        let last = deltas.len().saturating_sub(1);
        let mut chunks: std::collections::VecDeque<_> = deltas
            .iter()
            .enumerate()
            .map(|(i, d)| {
                Ok(ChatChunk {
                    delta: d.clone(),
                    finish_reason: (i == last).then(|| "stop".to_owned()),
                    usage: None,
                })
            })
            .collect();
        chunks.push_back(Ok(ChatChunk {
            delta: String::new(),
            finish_reason: None,
            usage: Some(call.usage),
        }));
        Ok(FakeStream {
            chunks,
            call: CallRecord {
                endpoint: asked.endpoint.clone(),
                ..call.clone()
            },
        })
    })
}

/// How the fake answers one kind of call: a function of the call's arguments.
pub type Script<C, R> = Box<dyn FnMut(&C) -> R>;

/// One `local.run` as the fake saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRun {
    /// The model asked for.
    pub model: String,
    /// The input tensors, as given.
    pub inputs: Vec<NamedTensor>,
}

impl ModelRun {
    /// The input called `name`, if it was given.
    pub fn input(&self, name: &str) -> Option<&NamedTensor> {
        self.inputs.iter().find(|t| t.name == name)
    }
}

/// One `remote.chat` as the fake saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatCall {
    /// The endpoint asked.
    pub endpoint: String,
    /// The messages sent.
    pub messages: Vec<Message>,
    /// The generation parameters.
    pub params: ChatParams,
}

/// One `remote.embed` as the fake saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedCall {
    /// The endpoint asked.
    pub endpoint: String,
    /// The texts to embed.
    pub inputs: Vec<String>,
}

/// One `remote.transcribe` as the fake saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct TranscribeCall {
    /// The endpoint asked.
    pub endpoint: String,
    /// The audio file.
    pub audio: Vec<u8>,
    /// Its declared format.
    pub format: String,
    /// The language hint.
    pub language: Option<String>,
}

/// One `remote.raw` as the fake saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct RawCall {
    /// The endpoint asked.
    pub endpoint: String,
    /// The JSON body.
    pub body: String,
}

/// A host whose every answer a test sets; see the [module](self) documentation.
pub struct FakeHost {
    /// What `list-models` returns; `run` and `asset` refuse any other model.
    pub models: Vec<ModelInfo>,
    /// Asset bytes by model and asset name.
    pub assets: BTreeMap<(String, String), Vec<u8>>,
    /// Runs a listed model. Unscripted: `execution-failed`.
    pub on_run_model: Script<ModelRun, Result<Vec<NamedTensor>, LocalError>>,
    /// Answers `remote.chat`. Unscripted: `not-found`.
    pub on_chat: Script<ChatCall, Result<ChatResult, RemoteError>>,
    /// Answers `remote.embed`. Unscripted: `not-found`.
    pub on_embed: Script<EmbedCall, Result<EmbeddingsResult, RemoteError>>,
    /// Answers `remote.transcribe`. Unscripted: `not-found`.
    pub on_transcribe: Script<TranscribeCall, Result<TranscriptionResult, RemoteError>>,
    /// Answers `remote.raw`. Unscripted: `not-found`.
    pub on_raw: Script<RawCall, Result<RawResult, RemoteError>>,
    /// Answers `stream-chat` (unscripted: no such endpoint).
    pub on_stream_chat: Script<ChatCall, Result<FakeStream, Failure>>,
    /// `emit` returns `true` for this many chunks, then `false` (the client went away).
    pub client_listens_for: usize,
    /// Every `stream-chat` call, failed ones included.
    pub stream_chats: Vec<ChatCall>,
    /// Every chunk sent to the client, emitted or forwarded, in order (those after the
    /// client went away included).
    pub emitted: Vec<ChatChunk>,
    /// How many streams were handed to `forward`.
    pub forwards: usize,
    /// The record a failed transcription reports through `transcribe_recorded` (`None`:
    /// none, as from a host that cannot say).
    pub transcribe_failure_record: Option<FailureRecord>,
    /// The record a failed chat, embeddings or raw call reports through `chat_recorded`,
    /// `embed_recorded` and `raw_recorded` (`None`: none).
    pub failure_record: Option<FailureRecord>,
    /// What `signals.circuit-retry-after-ms` says, by endpoint; unlisted: `None`.
    pub circuit_waits: BTreeMap<String, u32>,
    /// What `signals.budget-retry-after-ms` says; `None` by default.
    pub budget_wait_ms: Option<u32>,
    /// What `signals.local-load` returns; by default an idle box of 4 slots serving this
    /// request.
    pub load: Load,
    /// What `signals.endpoints` returns; by default none.
    pub endpoints: Vec<EndpointHealth>,
    /// What `signals.spend` returns; by default the minute, hour and day windows, nothing
    /// spent and no budget.
    pub spend: Vec<WindowSpend>,
    /// What `signals.prices` returns; by default none.
    pub prices: Vec<EndpointPrice>,
    /// What the next `clock.now` reads, in nanoseconds.
    pub clock_ns: u64,
    /// How far each `clock.now` reading advances the clock; 0 by default (time stands
    /// still).
    pub tick_ns: u64,
    /// What `clock.remaining` returns; 10 s by default.
    pub time_left_ns: u64,
    /// Every model run, in order.
    pub runs: Vec<ModelRun>,
    /// Every chat call, in order.
    pub chats: Vec<ChatCall>,
    /// Every embeddings call, in order.
    pub embeds: Vec<EmbedCall>,
    /// Every transcription call, in order.
    pub transcriptions: Vec<TranscribeCall>,
    /// Every raw call, in order.
    pub raws: Vec<RawCall>,
    /// Every log message, in order.
    pub logs: Vec<String>,
    /// The level of each message in `logs`.
    pub log_levels: Vec<Level>,
}

impl FakeHost {
    /// A host with no models and no endpoints, an idle box and a clock standing at 0.
    pub fn new() -> Self {
        Self {
            models: Vec::new(),
            assets: BTreeMap::new(),
            on_run_model: Box::new(|run| {
                Err(LocalError::ExecutionFailed(format!(
                    "no script runs model {:?} on this fake host",
                    run.model
                )))
            }),
            on_chat: Box::new(|call| Err(missing(&call.endpoint))),
            on_embed: Box::new(|call| Err(missing(&call.endpoint))),
            on_transcribe: Box::new(|call| Err(missing(&call.endpoint))),
            on_raw: Box::new(|call| Err(missing(&call.endpoint))),
            on_stream_chat: Box::new(|call| {
                Err(Failure::new(&call.endpoint, missing(&call.endpoint)))
            }),
            client_listens_for: usize::MAX,
            stream_chats: Vec::new(),
            emitted: Vec::new(),
            forwards: 0,
            transcribe_failure_record: None,
            failure_record: None,
            circuit_waits: BTreeMap::new(),
            budget_wait_ms: None,
            load: Load {
                in_flight: 1,
                queue_depth: 0,
                capacity: 4,
                recent_model_ms: 0.0,
            },
            endpoints: Vec::new(),
            spend: ["minute", "hour", "day"]
                .into_iter()
                .map(|window| WindowSpend {
                    window: window.into(),
                    spent_micro_usd: 0,
                    budget_micro_usd: None,
                })
                .collect(),
            prices: Vec::new(),
            clock_ns: 0,
            tick_ns: 0,
            time_left_ns: 10_000_000_000,
            runs: Vec::new(),
            chats: Vec::new(),
            embeds: Vec::new(),
            transcriptions: Vec::new(),
            raws: Vec::new(),
            logs: Vec::new(),
            log_levels: Vec::new(),
        }
    }

    /// Lists model `name` at `version` (digest of zeros, no declared inputs or outputs, no
    /// assets) and runs it with `script`, which replaces any earlier one.
    pub fn with_model(
        mut self,
        name: &str,
        version: &str,
        script: impl FnMut(&ModelRun) -> Result<Vec<NamedTensor>, LocalError> + 'static,
    ) -> Self {
        self.models.push(model(name, version));
        self.on_run_model = Box::new(script);
        self
    }

    /// Adds asset `name` of `model` holding `bytes`.
    pub fn with_asset(mut self, model: &str, name: &str, bytes: impl Into<Vec<u8>>) -> Self {
        self.assets
            .insert((model.to_owned(), name.to_owned()), bytes.into());
        self
    }

    fn listed(&self, model: &str) -> Result<(), LocalError> {
        if self.models.iter().any(|m| m.name == model) {
            Ok(())
        } else {
            Err(LocalError::UnknownModel(format!(
                "no model named {model:?} is loaded on this fake host"
            )))
        }
    }
}

impl Default for FakeHost {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for FakeHost {
    /// The data and the records; scripts are functions and print as nothing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeHost")
            .field("models", &self.models)
            .field("assets", &self.assets.keys().collect::<Vec<_>>())
            .field("load", &self.load)
            .field("endpoints", &self.endpoints)
            .field("spend", &self.spend)
            .field("prices", &self.prices)
            .field("clock_ns", &self.clock_ns)
            .field("runs", &self.runs.len())
            .field("chats", &self.chats)
            .field("embeds", &self.embeds)
            .field("transcriptions", &self.transcriptions.len())
            .field("raws", &self.raws)
            .field("logs", &self.logs)
            .finish_non_exhaustive()
    }
}

/// A model `name` at `version`, with a digest of zeros and nothing declared: the
/// `list-models` entry of a fake model.
pub fn model(name: &str, version: &str) -> ModelInfo {
    ModelInfo {
        name: name.to_owned(),
        version: version.to_owned(),
        sha256: "0".repeat(64),
        inputs: Vec::new(),
        outputs: Vec::new(),
        assets: Vec::new(),
    }
}

/// A script that always answers `result`.
pub fn always<C, T: Clone + 'static>(result: T) -> Script<C, T> {
    Box::new(move |_| result.clone())
}

/// A script that always fails with `error`.
pub fn fail<C, T, E: Clone + 'static>(error: E) -> Script<C, Result<T, E>> {
    Box::new(move |_| Err(error.clone()))
}

/// A chat script answering `content` (finish reason `stop`) with `call` as the call
/// record, its endpoint set to the one asked.
pub fn reply(content: &str, call: CallRecord) -> Script<ChatCall, Result<ChatResult, RemoteError>> {
    let content = content.to_owned();
    Box::new(move |asked| {
        Ok(ChatResult {
            content: content.clone(),
            finish_reason: "stop".into(),
            call: CallRecord {
                endpoint: asked.endpoint.clone(),
                ..call.clone()
            },
        })
    })
}

/// The body of `response` as JSON.
///
/// # Panics
///
/// When the body is not JSON: a test helper, the test fails.
pub fn json_body(response: &Response) -> serde_json::Value {
    match serde_json::from_slice(&response.body) {
        Ok(json) => json,
        Err(e) => panic!("the response body is not JSON ({e})"),
    }
}

/// What the host answers for an endpoint it does not have.
fn missing(endpoint: &str) -> RemoteError {
    RemoteError::NotFound(format!("no endpoint named {endpoint:?} on this fake host"))
}

impl Host for FakeHost {
    type Stream = FakeStream;

    fn list_models(&mut self) -> Vec<ModelInfo> {
        self.models.clone()
    }

    fn asset(&mut self, model: &str, name: &str) -> Result<Vec<u8>, LocalError> {
        self.listed(model)?;
        self.assets
            .get(&(model.to_owned(), name.to_owned()))
            .cloned()
            .ok_or_else(|| {
                LocalError::BadInputName(format!("model {model:?} has no asset {name:?}"))
            })
    }

    fn run_model(
        &mut self,
        model: &str,
        inputs: &[NamedTensor],
    ) -> Result<Vec<NamedTensor>, LocalError> {
        let run = ModelRun {
            model: model.to_owned(),
            inputs: inputs.to_vec(),
        };
        self.runs.push(run.clone());
        self.listed(model)?;
        (self.on_run_model)(&run)
    }

    fn chat(
        &mut self,
        endpoint: &str,
        messages: &[Message],
        params: &ChatParams,
    ) -> Result<ChatResult, RemoteError> {
        let call = ChatCall {
            endpoint: endpoint.to_owned(),
            messages: messages.to_vec(),
            params: params.clone(),
        };
        self.chats.push(call.clone());
        (self.on_chat)(&call)
    }

    fn stream_chat(
        &mut self,
        endpoint: &str,
        messages: &[Message],
        params: &ChatParams,
    ) -> Result<FakeStream, Failure> {
        let call = ChatCall {
            endpoint: endpoint.to_owned(),
            messages: messages.to_vec(),
            params: params.clone(),
        };
        self.stream_chats.push(call.clone());
        (self.on_stream_chat)(&call)
    }

    fn transcribe_recorded(
        &mut self,
        endpoint: &str,
        audio: &[u8],
        format: &str,
        language: Option<&str>,
    ) -> Result<TranscriptionResult, (RemoteError, Option<FailureRecord>)> {
        let record = self.transcribe_failure_record.clone();
        self.transcribe(endpoint, audio, format, language)
            .map_err(|e| (e, record))
    }

    fn chat_recorded(
        &mut self,
        endpoint: &str,
        messages: &[Message],
        params: &ChatParams,
    ) -> Result<ChatResult, (RemoteError, Option<FailureRecord>)> {
        let record = self.failure_record.clone();
        self.chat(endpoint, messages, params)
            .map_err(|e| (e, record))
    }

    fn embed_recorded(
        &mut self,
        endpoint: &str,
        inputs: &[String],
    ) -> Result<EmbeddingsResult, (RemoteError, Option<FailureRecord>)> {
        let record = self.failure_record.clone();
        self.embed(endpoint, inputs).map_err(|e| (e, record))
    }

    fn raw_recorded(
        &mut self,
        endpoint: &str,
        body: &str,
    ) -> Result<RawResult, (RemoteError, Option<FailureRecord>)> {
        let record = self.failure_record.clone();
        self.raw(endpoint, body).map_err(|e| (e, record))
    }

    fn emit(&mut self, chunk: &ChatChunk) -> bool {
        self.emitted.push(chunk.clone());
        self.emitted.len() <= self.client_listens_for
    }

    /// Relays the scripted chunks like the host: into `emitted`, the usage-only chunk
    /// left out; a scripted failure or the client going away ends it with a failure.
    fn forward(&mut self, mut stream: FakeStream) -> Result<ForwardSummary, Failure> {
        self.forwards += 1;
        let (mut chunks, mut text_bytes, mut finish_reason) = (0u32, 0u64, None);
        while let Some(chunk) = stream.next_chunk()? {
            if chunk.delta.is_empty() && chunk.finish_reason.is_none() {
                continue;
            }
            let (bytes, finish) = (chunk.delta.len() as u64, chunk.finish_reason.clone());
            if !self.emit(&chunk) {
                let call = stream.call();
                let mut failure = Failure::new(
                    &call.endpoint,
                    RemoteError::Unavailable(format!(
                        "the client went away; the stream from endpoint {:?} was closed",
                        call.endpoint
                    )),
                );
                failure.call.bytes_sent = call.bytes_sent;
                failure.call.bytes_received = call.bytes_received;
                failure.call.attempts = call.attempts;
                failure.call.latency_ms = call.latency_ms;
                return Err(failure);
            }
            chunks += 1;
            text_bytes += bytes;
            if finish.is_some() {
                finish_reason = finish;
            }
        }
        Ok(ForwardSummary {
            call: stream.call(),
            finish_reason,
            chunks,
            text_bytes,
        })
    }

    fn embed(
        &mut self,
        endpoint: &str,
        inputs: &[String],
    ) -> Result<EmbeddingsResult, RemoteError> {
        let call = EmbedCall {
            endpoint: endpoint.to_owned(),
            inputs: inputs.to_vec(),
        };
        self.embeds.push(call.clone());
        (self.on_embed)(&call)
    }

    fn transcribe(
        &mut self,
        endpoint: &str,
        audio: &[u8],
        format: &str,
        language: Option<&str>,
    ) -> Result<TranscriptionResult, RemoteError> {
        let call = TranscribeCall {
            endpoint: endpoint.to_owned(),
            audio: audio.to_vec(),
            format: format.to_owned(),
            language: language.map(str::to_owned),
        };
        self.transcriptions.push(call.clone());
        (self.on_transcribe)(&call)
    }

    fn raw(&mut self, endpoint: &str, body: &str) -> Result<RawResult, RemoteError> {
        let call = RawCall {
            endpoint: endpoint.to_owned(),
            body: body.to_owned(),
        };
        self.raws.push(call.clone());
        (self.on_raw)(&call)
    }

    fn local_load(&mut self) -> Load {
        self.load
    }

    fn endpoints(&mut self) -> Vec<EndpointHealth> {
        self.endpoints.clone()
    }

    fn spend(&mut self) -> Vec<WindowSpend> {
        self.spend.clone()
    }

    fn prices(&mut self) -> Vec<EndpointPrice> {
        self.prices.clone()
    }

    fn circuit_retry_after_ms(&mut self, endpoint: &str) -> Option<u32> {
        self.circuit_waits.get(endpoint).copied()
    }

    fn budget_retry_after_ms(&mut self) -> Option<u32> {
        self.budget_wait_ms
    }

    fn log(&mut self, level: Level, message: &str) {
        self.logs.push(message.to_owned());
        self.log_levels.push(level);
    }

    fn now_ns(&mut self) -> u64 {
        let now = self.clock_ns;
        self.clock_ns = self.clock_ns.saturating_add(self.tick_ns);
        now
    }

    fn remaining_ns(&mut self) -> u64 {
        self.time_left_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Tensor;

    fn doubler() -> FakeHost {
        FakeHost::new()
            .with_model("double", "2", |run| {
                let x = run.input("x").expect("input x").to_f32().expect("fp32");
                let y: Vec<f32> = x.iter().map(|v| v * 2.0).collect();
                Ok(vec![
                    NamedTensor::fp32("y", run.inputs[0].dims(), &y).expect("fits"),
                ])
            })
            .with_asset("double", "labels", "a\nb\n")
    }

    #[test]
    fn models_run_their_script_and_every_run_is_recorded() {
        let mut host = doubler();
        let x = NamedTensor::fp32("x", &[2], &[1.0, -3.0]).expect("fits");
        let out = host
            .run_model("double", std::slice::from_ref(&x))
            .expect("runs");
        assert_eq!(out[0].to_f32(), Ok(vec![2.0, -6.0]));
        let e = host.run_model("triple", &[x]).expect_err("not listed");
        assert_eq!(e.case(), "unknown-model");
        assert_eq!(host.runs.len(), 2);
        assert_eq!(host.runs[1].model, "triple");
        assert_eq!(host.list_models()[0].version, "2");
    }

    #[test]
    fn assets_are_found_by_model_and_name() {
        let mut host = doubler();
        assert_eq!(host.asset("double", "labels"), Ok(b"a\nb\n".to_vec()));
        assert_eq!(
            host.asset("double", "vocab").expect_err("absent").case(),
            "bad-input-name"
        );
        assert_eq!(
            host.asset("triple", "labels").expect_err("absent").case(),
            "unknown-model"
        );
        let mut unscripted = FakeHost::new();
        unscripted.models.push(model("m", "1"));
        let input = NamedTensor::new("x", Tensor::from_u8(&[1], &[1]).expect("fits"));
        assert_eq!(
            unscripted
                .run_model("m", &[input])
                .expect_err("no script")
                .case(),
            "execution-failed"
        );
    }

    #[test]
    fn unscripted_endpoints_are_missing_and_calls_are_recorded() {
        let mut host = FakeHost::new();
        let e = host.embed("e", &["a".into()]).expect_err("missing");
        assert!(e.refused_before_sending(), "{e}");
        assert!(host.transcribe("t", b"RIFF", "wav", Some("en")).is_err());
        assert!(host.raw("r", "{}").is_err());
        assert!(host.chat("c", &[], &ChatParams::default()).is_err());
        assert_eq!(host.embeds[0].inputs, ["a"]);
        assert_eq!(host.transcriptions[0].language.as_deref(), Some("en"));
        assert_eq!(host.raws[0].body, "{}");
        assert_eq!(host.chats[0].endpoint, "c");
        host.on_embed = always(Ok(EmbeddingsResult {
            vectors: vec![vec![1.0]],
            call: CallRecord::default(),
        }));
        assert_eq!(
            host.embed("e", &["b".into()]).map(|r| r.vectors),
            Ok(vec![vec![1.0]])
        );
    }

    #[test]
    fn signals_clock_and_log_answer_from_the_fields() {
        let mut host = FakeHost::new();
        host.load.queue_depth = 3;
        host.endpoints.push(EndpointHealth::healthy("strong"));
        assert_eq!(host.local_load().queue_depth, 3);
        assert_eq!(host.endpoints()[0].name, "strong");
        assert_eq!(host.spend().len(), 3);
        assert!(host.prices().is_empty());
        host.tick_ns = 5;
        assert_eq!((host.now_ns(), host.now_ns()), (0, 5));
        assert_eq!(host.remaining_ns(), 10_000_000_000);
        host.log_info("one");
        host.log(Level::Warn, "two");
        assert_eq!(host.logs, ["one", "two"]);
        assert_eq!(host.log_levels, [Level::Info, Level::Warn]);
    }

    #[test]
    fn forwarded_streams_reach_the_client_without_their_usage_chunk() {
        let mut host = FakeHost::new();
        host.on_stream_chat = stream(&["Hello ", "edge"], CallRecord::default());
        let opened = host.stream_chat("chat", &[], &ChatParams::default());
        let summary = host.forward(opened.expect("scripted")).expect("relayed");
        assert_eq!((summary.chunks, summary.text_bytes), (2, 10));
        assert_eq!(summary.finish_reason.as_deref(), Some("stop"));
        assert_eq!(summary.call.endpoint, "chat");
        assert_eq!((host.forwards, host.emitted.len()), (1, 2));
        host.client_listens_for = 3;
        let opened = host.stream_chat("chat", &[], &ChatParams::default());
        let gone = host
            .forward(opened.expect("scripted"))
            .expect_err("client gone");
        assert_eq!(gone.error.case(), "unavailable");
        assert_eq!(host.emitted.len(), 4, "stopped at the first refused chunk");
    }

    #[test]
    fn recorded_calls_return_the_failure_record() {
        let mut host = FakeHost::new();
        let (e, record) = host
            .chat_recorded("c", &[], &ChatParams::default())
            .expect_err("missing");
        assert_eq!((e.case(), record), ("not-found", None));
        let sent = FailureRecord {
            endpoint: "c".into(),
            bytes_sent: 120,
            bytes_received: 0,
            attempts: 3,
            latency_ms: 900,
            retry_after_ms: None,
        };
        host.failure_record = Some(sent.clone());
        for (_, record) in [
            host.chat_recorded("c", &[], &ChatParams::default())
                .expect_err("missing"),
            host.embed_recorded("c", &["a".into()])
                .expect_err("missing"),
            host.raw_recorded("c", "{}").expect_err("missing"),
        ] {
            assert_eq!(record.as_ref(), Some(&sent));
        }
    }
}
