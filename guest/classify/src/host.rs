//! What a digits pipeline needs from the host to answer a request, as a trait over plain
//! Rust types: the WIT `local` (`list-models`, `run`), `remote` (`chat`) and `log`
//! imports. Each component implements [`Host`] over its generated bindings (in its
//! `imports.rs`); unit tests use `fake::FakeHost` (feature `fake`). The live signals a
//! routing policy reads are a separate trait, [`crate::signals::Signals`], so a component
//! that reads none does not import them.

use std::fmt;

use crate::tensor::NamedTensor;

/// A model the host has loaded: the part of WIT `local.model-info` the pipelines report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    /// The name guests run it by.
    pub name: String,
    /// The operator's version string, reported in routing records.
    pub version: String,
}

/// One chat message as `remote.chat` takes it (WIT `remote.message`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `system` or `user` here.
    pub role: String,
    /// The message text.
    pub content: String,
}

/// The generation parameters the escalation sets (the rest of WIT `remote.chat-params`
/// stays at the provider's defaults and the endpoint's configured model).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ChatParams {
    /// Upper bound on generated tokens.
    pub max_tokens: Option<u32>,
    /// Sampling temperature, 0.0 to 2.0.
    pub temperature: Option<f32>,
}

/// What one remote call cost and who answered: the part of WIT `remote.call-record` the
/// pipelines report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// The endpoint name from the host config.
    pub endpoint: String,
    /// The model id the provider reported, or the configured one.
    pub model: String,
    /// Cost in micro-dollars.
    pub cost_micro_usd: u64,
    /// Wall-clock time of the call, retries included, in milliseconds.
    pub latency_ms: u32,
    /// HTTP attempts made.
    pub attempts: u32,
}

/// A chat completion (WIT `remote.chat-result`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatResult {
    /// The generated text of the first choice.
    pub content: String,
    /// Accounting for the call.
    pub call: CallRecord,
}

/// Why a remote call failed (WIT `remote.error`); the host's messages name the endpoint.
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
            Self::RateLimited(Some(ms)) => write!(f, "{case}: retry after {ms} ms"),
            Self::RateLimited(None) => write!(f, "{case}: the provider kept answering 429"),
            Self::Rejected { status, message } => write!(f, "{case}: HTTP {status}: {message}"),
        }
    }
}

/// The host functions a digits pipeline calls to answer a request.
pub trait Host {
    /// Every model loaded on the host (WIT `local.list-models`).
    fn list_models(&mut self) -> Vec<ModelInfo>;

    /// Runs `model` once (WIT `local.run`); the error is the local error's case name and
    /// message, e.g. `shape-mismatch: ...`.
    fn run_model(
        &mut self,
        model: &str,
        inputs: Vec<NamedTensor>,
    ) -> Result<Vec<NamedTensor>, String>;

    /// Runs a chat completion on `endpoint` (WIT `remote.chat`).
    fn chat(
        &mut self,
        endpoint: &str,
        messages: Vec<Message>,
        params: ChatParams,
    ) -> Result<ChatResult, RemoteError>;

    /// Writes an info line to the host's log (WIT `log.log`).
    fn log_info(&mut self, message: &str);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_errors_read_as_case_and_message() {
        assert_eq!(
            RemoteError::Unavailable("circuit open for \"strong\"".into()).to_string(),
            "unavailable: circuit open for \"strong\""
        );
        assert_eq!(
            RemoteError::RateLimited(Some(250)).to_string(),
            "rate-limited: retry after 250 ms"
        );
        assert_eq!(
            RemoteError::Rejected {
                status: 400,
                message: "bad model".into()
            }
            .to_string(),
            "rejected: HTTP 400: bad model"
        );
    }
}
