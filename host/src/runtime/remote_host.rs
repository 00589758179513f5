//! The host side of the WIT `remote` interface: guests name an endpoint, the host makes
//! the call through [`Remote`] and returns the result with its accounting.
//!
//! Every call is bounded by the request's own deadline (host calls are not interrupted by
//! the guest's epoch deadline), and every call, successful or not, is kept in the
//! request's ledger so the response can report cost, egress and attempts.

use std::sync::Arc;
use std::time::Instant;

use super::bindings::remote::{
    self, CallRecord as WitCallRecord, ChatParams, ChatResult, EmbeddingsResult,
    Message as WitMessage, RawResult, Rejection, TranscriptionResult, Usage as WitUsage,
};
use crate::local::{CpuSlots, OwnedCpuSlot};
use crate::remote::{Answer, CallRecord, ChatRequest, FailedCall, Message, Remote, RemoteError};

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
    fn before_call(&mut self) -> Result<(), remote::Error> {
        if self.calls_left == 0 {
            self.limit_hit = true;
            return Err(remote::Error::Unavailable(
                "this request has made as many serverless calls as its pipeline's \
                 limits.remote_calls allows"
                    .to_owned(),
            ));
        }
        self.calls_left -= 1;
        self.resumed = None;
        Ok(())
    }

    /// Takes a resume slot after a call, when resumption is bounded. The wait is capped
    /// at [`RESUME_PATIENCE`]: the slots are a fairness nudge, and a hostile guest that
    /// loops while holding one must not stall every other returning request.
    fn after_call(&mut self) {
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
    ) -> Result<(T, WitCallRecord), remote::Error> {
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
                let error = error_to_wit(&failed.error);
                self.failures.push(failed);
                Err(error)
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
    ) -> Result<ChatResult, remote::Error> {
        let request = ChatRequest {
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
        };
        self.before_call()?;
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
    ) -> Result<EmbeddingsResult, remote::Error> {
        self.before_call()?;
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
    ) -> Result<TranscriptionResult, remote::Error> {
        self.before_call()?;
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

    fn raw(&mut self, endpoint: String, body: String) -> Result<RawResult, remote::Error> {
        self.before_call()?;
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
}

fn record_to_wit(call: &CallRecord) -> WitCallRecord {
    WitCallRecord {
        endpoint: call.endpoint.clone(),
        model: call.model.clone(),
        usage: WitUsage {
            input_tokens: call.usage.input_tokens,
            output_tokens: call.usage.output_tokens,
            audio_seconds: call.usage.audio_seconds,
        },
        cost_micro_usd: call.cost_micro_usd,
        bytes_sent: call.bytes_sent,
        bytes_received: call.bytes_received,
        latency_ms: u32::try_from(call.latency.as_millis()).unwrap_or(u32::MAX),
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
