//! What the gate needs from the host, as a trait: the WIT `local`, `remote`, `log` and
//! `clock` imports. The component implements it over the generated bindings; unit tests
//! implement it with a fake model and a fake transcription endpoint so the whole request
//! flow, remote failures included, runs natively.

use std::fmt;

use crate::tensor::NamedTensor;

/// A model the host has loaded: the part of WIT `local.model-info` the gate reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedModel {
    /// The name guests run it by.
    pub name: String,
    /// The operator's version string.
    pub version: String,
}

/// What one remote call cost and who answered: the part of WIT `remote.call-record` the
/// gate reports.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    /// The endpoint name from the host config.
    pub endpoint: String,
    /// The model id the provider reported, or the configured one.
    pub model: String,
    /// Seconds of audio the provider billed (`usage.audio-seconds`).
    pub audio_seconds: f32,
    /// Cost in micro-dollars.
    pub cost_micro_usd: u64,
    /// Request bytes sent, over all attempts.
    pub bytes_sent: u64,
    /// Wall-clock time of the call, retries included, in milliseconds.
    pub latency_ms: u32,
    /// HTTP attempts made.
    pub attempts: u32,
}

/// A transcription and its accounting (WIT `remote.transcription-result`).
#[derive(Debug, Clone, PartialEq)]
pub struct Transcription {
    /// The transcribed text.
    pub text: String,
    /// Accounting for the call.
    pub call: CallRecord,
}

/// Why a remote call failed (WIT `remote.error`); each message names the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteError {
    /// No attempt finished within the endpoint's timeout.
    Timeout(String),
    /// The provider kept answering 429; milliseconds to wait when it said.
    RateLimited(Option<u32>),
    /// The circuit breaker is open, or the provider kept failing through every retry.
    Unavailable(String),
    /// The provider rejected the request with this HTTP status and message.
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The provider's message.
        message: String,
    },
    /// The request or the response exceeded the endpoint's size limit.
    TooLarge(String),
    /// The call would exceed the operator's spend budget.
    BudgetExceeded(String),
    /// No endpoint of that name, or one of another kind.
    NotFound(String),
    /// A 2xx answer whose body is not what the API promises.
    BadResponse(String),
}

impl RemoteError {
    /// The WIT case name, e.g. `budget-exceeded`.
    pub fn case(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::RateLimited(_) => "rate-limited",
            Self::Unavailable(_) => "unavailable",
            Self::Rejected { .. } => "rejected",
            Self::TooLarge(_) => "too-large",
            Self::BudgetExceeded(_) => "budget-exceeded",
            Self::NotFound(_) => "not-found",
            Self::BadResponse(_) => "bad-response",
        }
    }

    /// Whether the host refused the call before sending anything: only then is it
    /// certain that no byte left the box (the WIT error carries no byte count).
    pub fn refused_before_sending(&self) -> bool {
        matches!(self, Self::NotFound(_) | Self::BudgetExceeded(_))
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let case = self.case();
        match self {
            Self::Timeout(m)
            | Self::Unavailable(m)
            | Self::TooLarge(m)
            | Self::BudgetExceeded(m)
            | Self::NotFound(m)
            | Self::BadResponse(m) => write!(f, "{case}: {m}"),
            Self::RateLimited(Some(ms)) => {
                write!(f, "{case}: the provider asked to retry after {ms} ms")
            }
            Self::RateLimited(None) => write!(f, "{case}: the provider kept answering 429"),
            Self::Rejected { status, message } => write!(f, "{case}: HTTP {status}: {message}"),
        }
    }
}

/// The host functions the gate calls.
pub trait Imports {
    /// Every model loaded on the host (WIT `local.list-models`).
    fn list_models(&mut self) -> Vec<LoadedModel>;

    /// Runs `model` once (WIT `local.run`); the error is the local error's case name and
    /// message, e.g. `shape-mismatch: ...`.
    fn run(&mut self, model: &str, inputs: Vec<NamedTensor>) -> Result<Vec<NamedTensor>, String>;

    /// Transcribes `audio`, a file in `format` (e.g. `wav`), on the serverless `endpoint`
    /// (WIT `remote.transcribe`); `language` is an optional ISO-639-1 hint.
    fn transcribe(
        &mut self,
        endpoint: &str,
        audio: &[u8],
        format: &str,
        language: Option<&str>,
    ) -> Result<Transcription, RemoteError>;

    /// Monotonic nanoseconds (WIT `clock.now`).
    fn now_ns(&mut self) -> u64;

    /// Writes an info line to the host's log (WIT `log.log`).
    fn log_info(&mut self, message: &str);
}
