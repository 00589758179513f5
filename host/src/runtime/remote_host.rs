//! The host side of the WIT `remote` interface: guests name an endpoint, the host makes
//! the call through [`Remote`] and returns the result with its accounting.
//!
//! Every call is bounded by the request's own deadline (host calls are not interrupted by
//! the guest's epoch deadline), and every call, successful or not, is kept in the
//! request's ledger so the response can report cost, egress and attempts; a failure goes
//! back to the guest with its record (bytes, attempts, latency, when to retry).
//!
//! Streamed chats (`stream-chat`) are kept in the context by handle until the guest drops
//! them or hands them to `reply.forward` (which takes them out, see
//! [`super::reply_host`]); a stream counts as one call and enters the ledger when it ends. Once the client
//! has gone away (see [`super::reply_host`]), reading a stream cancels it, and the ones
//! the guest still holds when `handle` returns are cancelled then
//! ([`RemoteCtx::close_streams`]): either way the connection closes and the provider stops.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use wasmtime::component::Resource;

use super::bindings::remote::{
    self, CallRecord as WitCallRecord, ChatChunk as WitChunk, ChatParams, ChatResult,
    EmbeddingsResult, Failure, FailureRecord, Message as WitMessage, RawResult, Rejection,
    TranscriptionResult, Usage as WitUsage,
};
use crate::local::{CpuSlots, OwnedCpuSlot};
use crate::remote::{
    Answer, CallRecord, ChatChunk, ChatRequest, ChatStream, FailedCall, Message, Remote,
    RemoteError, Settled, Usage,
};

/// Longest a guest waits for a resume slot after a serverless call before going ahead
/// without one.
pub const RESUME_PATIENCE: std::time::Duration = std::time::Duration::from_millis(250);

/// Called with the pipeline's name and each finished serverless call.
pub type RemoteObserver = Arc<dyn Fn(&str, Result<&CallRecord, &FailedCall>) + Send + Sync>;

/// Per-request context for `remote`.
pub struct RemoteCtx {
    remote: Arc<Remote>,
    request_id: String,
    deadline: Instant,
    /// The sha256 of the model this pipeline's embeddings must come from, if bound.
    embedding_identity: Option<String>,
    /// Told of every call as it finishes, so metrics count calls of failed requests too.
    observer: Option<(String, RemoteObserver)>,
    /// Slots for guests resuming after a serverless call, and the one this request holds.
    resume_slots: Option<Arc<CpuSlots>>,
    resumed: Option<OwnedCpuSlot>,
    /// Successful calls, in order.
    pub calls: Vec<CallRecord>,
    /// Failed calls, in order.
    pub failures: Vec<FailedCall>,
    /// Calls this request may still make (`limits.remote_calls`).
    calls_left: u32,
    /// Set when the guest asked for a call past its limit.
    pub limit_hit: bool,
    /// Open streams by handle.
    streams: BTreeMap<u32, ChatStream>,
    next_stream: u32,
    /// Set once the request's client has gone away.
    client_gone: Arc<AtomicBool>,
}

impl RemoteCtx {
    /// A context for one request that must finish by `deadline`.
    pub fn new(remote: Arc<Remote>, request_id: &str, deadline: Instant) -> Self {
        Self {
            remote,
            request_id: request_id.to_owned(),
            deadline,
            embedding_identity: None,
            observer: None,
            resume_slots: None,
            resumed: None,
            calls: Vec::new(),
            failures: Vec::new(),
            calls_left: u32::MAX,
            limit_hit: false,
            streams: BTreeMap::new(),
            next_stream: 0,
            client_gone: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Shares the flag that says the client has gone away (set by `reply.emit`).
    pub fn watch_client(&mut self, gone: Arc<AtomicBool>) {
        self.client_gone = gone;
    }

    /// Cancels every stream the guest still holds (called once `handle` has returned),
    /// entering each in the ledger.
    pub fn close_streams(&mut self) {
        for (_, mut stream) in std::mem::take(&mut self.streams) {
            if let Some(settled) = stream.cancel() {
                self.enter(settled);
            }
        }
    }

    /// Takes the open stream behind handle `rep` out of the context (`reply.forward`
    /// consumes it).
    pub(super) fn take_stream(&mut self, rep: u32) -> Option<ChatStream> {
        self.streams.remove(&rep)
    }

    /// Gives the resume slot back before the request waits on the network.
    pub(super) fn before_waiting(&mut self) {
        self.resumed = None;
    }

    /// Enters a finished stream in the ledger and tells the observer.
    pub(super) fn enter(&mut self, settled: Settled) {
        if let Some((pipeline, observer)) = &self.observer {
            observer(pipeline, settled.as_ref());
        }
        match settled {
            Ok(call) => self.calls.push(call),
            Err(failed) => self.failures.push(failed),
        }
    }

    /// Allows `calls` more serverless calls (a new request starts over).
    pub fn set_call_limit(&mut self, calls: u32) {
        self.calls_left = calls;
        self.limit_hit = false;
    }

    /// After each serverless call the guest resumes only once it holds one of `slots`,
    /// until its next call or the end of the request. Hundreds of slow calls tend to
    /// return together; bounding how many of them run guest code at once leaves the other
    /// cores to local-only requests.
    pub fn resume_through(&mut self, slots: Arc<CpuSlots>) {
        self.resume_slots = Some(slots);
    }

    /// Counts the call against the request's limit (refusing it past the limit), then
    /// gives the resume slot back before the request waits on the network again.
    fn before_call(&mut self, endpoint: &str) -> Result<(), Failure> {
        if self.calls_left == 0 {
            self.limit_hit = true;
            return Err(failure_after(
                endpoint,
                remote::Error::Unavailable(
                    "this request has made as many serverless calls as its pipeline's \
                     limits.remote_calls allows"
                        .to_owned(),
                ),
                None,
            ));
        }
        self.calls_left -= 1;
        self.resumed = None;
        Ok(())
    }

    /// Takes a resume slot after a call, when resumption is bounded. The wait is capped
    /// at [`RESUME_PATIENCE`]: the slots are a fairness nudge, and a hostile guest that
    /// loops while holding one must not stall every other returning request.
    pub(super) fn after_call(&mut self) {
        if let Some(slots) = &self.resume_slots {
            self.resumed = slots.acquire_owned_within(RESUME_PATIENCE);
        }
    }

    /// Reports every finished call of `pipeline` to `observer`.
    pub fn observe(&mut self, pipeline: &str, observer: RemoteObserver) {
        self.observer = Some((pipeline.to_owned(), observer));
    }

    /// Binds the pipeline's embeddings to the model with this sha256.
    pub fn bind_embedding_identity(&mut self, sha256: Option<String>) {
        self.embedding_identity = sha256;
    }

    /// Moves the deadline (a reused instance serving its next request).
    pub fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }

    fn settle<T>(
        &mut self,
        result: Result<Answer<T>, FailedCall>,
    ) -> Result<(T, WitCallRecord), Failure> {
        self.after_call();
        if let Some((pipeline, observer)) = &self.observer {
            match &result {
                Ok(answer) => observer(pipeline, Ok(&answer.call)),
                Err(failed) => observer(pipeline, Err(failed)),
            }
        }
        match result {
            Ok(answer) => {
                let record = record_to_wit(&answer.call);
                self.calls.push(answer.call);
                Ok((answer.value, record))
            }
            Err(failed) => {
                let failure = failure_to_wit(&failed);
                self.failures.push(failed);
                Err(failure)
            }
        }
    }
}

impl remote::Host for RemoteCtx {
    fn chat(
        &mut self,
        endpoint: String,
        messages: Vec<WitMessage>,
        params: ChatParams,
    ) -> Result<ChatResult, Failure> {
        let request = chat_request(messages, params);
        self.before_call(&endpoint)?;
        let result = self
            .remote
            .chat(&endpoint, &request, &self.request_id, self.deadline);
        let (completion, call) = self.settle(result)?;
        Ok(ChatResult {
            content: completion.content,
            finish_reason: completion.finish_reason,
            call,
        })
    }

    fn embed(
        &mut self,
        endpoint: String,
        inputs: Vec<String>,
    ) -> Result<EmbeddingsResult, Failure> {
        self.before_call(&endpoint)?;
        let result = self.remote.embed(
            &endpoint,
            &inputs,
            self.embedding_identity.as_deref(),
            &self.request_id,
            self.deadline,
        );
        let (vectors, call) = self.settle(result)?;
        Ok(EmbeddingsResult { vectors, call })
    }

    fn transcribe(
        &mut self,
        endpoint: String,
        audio: Vec<u8>,
        format: String,
        language: Option<String>,
    ) -> Result<TranscriptionResult, Failure> {
        self.before_call(&endpoint)?;
        let result = self.remote.transcribe(
            &endpoint,
            &audio,
            &format,
            language.as_deref(),
            &self.request_id,
            self.deadline,
        );
        let (text, call) = self.settle(result)?;
        Ok(TranscriptionResult { text, call })
    }

    fn raw(&mut self, endpoint: String, body: String) -> Result<RawResult, Failure> {
        self.before_call(&endpoint)?;
        let result = self
            .remote
            .raw(&endpoint, &body, &self.request_id, self.deadline);
        let (body, call) = self.settle(result)?;
        Ok(RawResult {
            status: 200,
            body,
            call,
        })
    }

    fn stream_chat(
        &mut self,
        endpoint: String,
        messages: Vec<WitMessage>,
        params: ChatParams,
    ) -> Result<Resource<ChatStream>, Failure> {
        let request = chat_request(messages, params);
        self.before_call(&endpoint)?;
        let opened = self
            .remote
            .stream_chat(&endpoint, &request, &self.request_id, self.deadline);
        self.after_call();
        match opened {
            Ok(stream) => {
                let rep = self.next_stream;
                self.next_stream = self.next_stream.wrapping_add(1);
                self.streams.insert(rep, stream);
                Ok(Resource::new_own(rep))
            }
            Err(failed) => {
                let failure = failure_to_wit(&failed);
                self.enter(Err(failed));
                Err(failure)
            }
        }
    }
}

impl remote::HostChatStream for RemoteCtx {
    fn next(&mut self, stream: Resource<ChatStream>) -> Result<Option<WitChunk>, Failure> {
        let rep = stream.rep();
        let gone = self.client_gone.load(Ordering::Relaxed);
        let Some(open) = self.streams.get_mut(&rep) else {
            return Ok(None);
        };
        if gone {
            let name = open.endpoint().to_owned();
            let settled = open.cancel();
            if let Some(settled) = settled {
                self.enter(settled);
            }
            return Err(failure_after(
                &name,
                remote::Error::Unavailable(format!(
                    "the client went away; the stream from endpoint {name:?} was closed"
                )),
                None,
            ));
        }
        // Waiting on the network: give the resume slot back meanwhile.
        self.resumed = None;
        let next = open.next_chunk();
        let settled = open.take_settled();
        self.after_call();
        if let Some(settled) = settled {
            self.enter(settled);
        }
        next.map(|chunk| chunk.map(|c| chunk_to_wit(&c)))
            .map_err(|failed| failure_to_wit(&failed))
    }

    fn call(&mut self, stream: Resource<ChatStream>) -> WitCallRecord {
        match self.streams.get(&stream.rep()) {
            Some(open) => record_to_wit(&open.record()),
            // Entered in the ledger already: the last call of this endpoint there.
            None => WitCallRecord {
                endpoint: String::new(),
                model: String::new(),
                usage: usage_to_wit(&Usage::default()),
                cost_micro_usd: 0,
                bytes_sent: 0,
                bytes_received: 0,
                latency_ms: 0,
                attempts: 0,
            },
        }
    }

    fn drop(&mut self, stream: Resource<ChatStream>) -> wasmtime::Result<()> {
        if let Some(mut open) = self.streams.remove(&stream.rep())
            && let Some(settled) = open.cancel()
        {
            self.enter(settled);
        }
        Ok(())
    }
}

/// The host's chat request from the WIT call's arguments.
fn chat_request(messages: Vec<WitMessage>, params: ChatParams) -> ChatRequest {
    ChatRequest {
        messages: messages
            .into_iter()
            .map(|m| Message {
                role: m.role,
                content: m.content,
            })
            .collect(),
        max_tokens: params.max_tokens,
        temperature: params.temperature,
        top_p: params.top_p,
        stop: params.stop,
        model: params.model,
    }
}

/// A chunk as the guest sees it.
pub(super) fn chunk_to_wit(chunk: &ChatChunk) -> WitChunk {
    WitChunk {
        delta: chunk.delta.clone(),
        finish_reason: chunk.finish_reason.clone(),
        usage: chunk.usage.as_ref().map(usage_to_wit),
    }
}

/// A chunk as the host relays it.
pub(super) fn chunk_from_wit(chunk: WitChunk) -> ChatChunk {
    ChatChunk {
        delta: chunk.delta,
        finish_reason: chunk.finish_reason,
        usage: chunk.usage.map(|u| Usage {
            input_tokens: u.input_tokens,
            output_tokens: u.output_tokens,
            audio_seconds: u.audio_seconds,
        }),
    }
}

fn usage_to_wit(usage: &Usage) -> WitUsage {
    WitUsage {
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
        audio_seconds: usage.audio_seconds,
    }
}

fn millis(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// A call to `endpoint` that the host ended with `error` (not a failure the transport
/// reported): what it had sent and received, from `so_far`, or nothing.
pub(super) fn failure_after(
    endpoint: &str,
    error: remote::Error,
    so_far: Option<&CallRecord>,
) -> Failure {
    Failure {
        error,
        call: FailureRecord {
            endpoint: endpoint.to_owned(),
            bytes_sent: so_far.map_or(0, |r| r.bytes_sent),
            bytes_received: so_far.map_or(0, |r| r.bytes_received),
            attempts: so_far.map_or(0, |r| r.attempts),
            latency_ms: so_far.map_or(0, |r| millis(r.latency)),
            retry_after_ms: None,
        },
    }
}

pub(super) fn failure_to_wit(failed: &FailedCall) -> Failure {
    Failure {
        error: error_to_wit(&failed.error),
        call: FailureRecord {
            endpoint: failed.endpoint.clone(),
            bytes_sent: failed.bytes_sent,
            bytes_received: failed.bytes_received,
            attempts: failed.attempts,
            latency_ms: millis(failed.latency),
            retry_after_ms: failed.retry_after.map(millis),
        },
    }
}

pub(super) fn record_to_wit(call: &CallRecord) -> WitCallRecord {
    WitCallRecord {
        endpoint: call.endpoint.clone(),
        model: call.model.clone(),
        usage: usage_to_wit(&call.usage),
        cost_micro_usd: call.cost_micro_usd,
        bytes_sent: call.bytes_sent,
        bytes_received: call.bytes_received,
        latency_ms: millis(call.latency),
        attempts: call.attempts,
    }
}

fn error_to_wit(error: &RemoteError) -> remote::Error {
    match error.clone() {
        RemoteError::Timeout(m) => remote::Error::Timeout(m),
        RemoteError::RateLimited { retry_after, .. } => remote::Error::RateLimited(
            retry_after.map(|d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX)),
        ),
        RemoteError::Unavailable(m) => remote::Error::Unavailable(m),
        RemoteError::Rejected { status, message } => {
            remote::Error::Rejected(Rejection { status, message })
        }
        RemoteError::TooLarge(m) => remote::Error::TooLarge(m),
        RemoteError::BudgetExceeded(m) => remote::Error::BudgetExceeded(m),
        RemoteError::NotFound(m) => remote::Error::NotFound(m),
        RemoteError::BadResponse(m) => remote::Error::BadResponse(m),
    }
}
