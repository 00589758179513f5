//! Serverless inference through the host (WIT `remote`): the generated records, defaults
//! for the ones a guest fills in, and [`RemoteError`], the typed failure of every call
//! with a `case: message` display.

use std::fmt;

use crate::bindings::hybrid::inference::remote as wit;

pub use wit::{
    CallRecord, ChatParams, ChatResult, EmbeddingsResult, Message, RawResult, Rejection,
    TranscriptionResult, Usage,
};

impl Message {
    /// A message from `role` (`system`, `user`, `assistant` or `tool`).
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        Self {
            role: role.to_owned(),
            content: content.into(),
        }
    }
}

impl Default for ChatParams {
    /// Every parameter left to the provider, the endpoint's configured model.
    fn default() -> Self {
        Self {
            max_tokens: None,
            temperature: None,
            top_p: None,
            stop: Vec::new(),
            model: None,
        }
    }
}

impl Default for Usage {
    /// Nothing billed.
    fn default() -> Self {
        Self {
            input_tokens: 0,
            output_tokens: 0,
            audio_seconds: 0.0,
        }
    }
}

impl Default for CallRecord {
    /// An empty record: no endpoint or model, nothing billed, sent or received, one
    /// attempt. Mostly for tests and fakes, with `..CallRecord::default()`.
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            model: String::new(),
            usage: Usage::default(),
            cost_micro_usd: 0,
            bytes_sent: 0,
            bytes_received: 0,
            latency_ms: 0,
            attempts: 1,
        }
    }
}

/// Why a remote call failed (WIT `remote.error`); the host's messages name the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteError {
    /// No attempt finished within the endpoint's timeout (after retries).
    Timeout(String),
    /// The provider kept answering 429; milliseconds to wait when it said.
    RateLimited(Option<u32>),
    /// The circuit breaker is open, or the provider kept failing through every retry.
    Unavailable(String),
    /// The provider rejected the request (4xx other than 429); retrying will not help.
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The provider's message, credentials removed.
        message: String,
    },
    /// The request or the response exceeded the endpoint's size limit.
    TooLarge(String),
    /// The call would exceed the operator's spend budget.
    BudgetExceeded(String),
    /// No endpoint of that name, one of another kind, or (embeddings) one that does not
    /// serve the model this pipeline is bound to.
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

    /// Whether the host refused the call before sending anything (`not-found`,
    /// `budget-exceeded`): only then is it certain that no byte left the box, since the
    /// error carries no byte count.
    pub fn refused_before_sending(&self) -> bool {
        matches!(self, Self::NotFound(_) | Self::BudgetExceeded(_))
    }
}

impl fmt::Display for RemoteError {
    /// `case: message`, e.g. `unavailable: circuit open for "strong"`; a rate limit reads
    /// `rate-limited: retry after 250 ms` (or `... kept answering 429` when the provider
    /// said no wait), a rejection `rejected: HTTP 400: <message>`.
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

impl std::error::Error for RemoteError {}

impl From<wit::Error> for RemoteError {
    fn from(error: wit::Error) -> Self {
        match error {
            wit::Error::Timeout(m) => Self::Timeout(m),
            wit::Error::RateLimited(ms) => Self::RateLimited(ms),
            wit::Error::Unavailable(m) => Self::Unavailable(m),
            wit::Error::Rejected(r) => Self::Rejected {
                status: r.status,
                message: r.message,
            },
            wit::Error::TooLarge(m) => Self::TooLarge(m),
            wit::Error::BudgetExceeded(m) => Self::BudgetExceeded(m),
            wit::Error::NotFound(m) => Self::NotFound(m),
            wit::Error::BadResponse(m) => Self::BadResponse(m),
        }
    }
}

impl From<RemoteError> for wit::Error {
    fn from(error: RemoteError) -> Self {
        match error {
            RemoteError::Timeout(m) => Self::Timeout(m),
            RemoteError::RateLimited(ms) => Self::RateLimited(ms),
            RemoteError::Unavailable(m) => Self::Unavailable(m),
            RemoteError::Rejected { status, message } => {
                Self::Rejected(Rejection { status, message })
            }
            RemoteError::TooLarge(m) => Self::TooLarge(m),
            RemoteError::BudgetExceeded(m) => Self::BudgetExceeded(m),
            RemoteError::NotFound(m) => Self::NotFound(m),
            RemoteError::BadResponse(m) => Self::BadResponse(m),
        }
    }
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
            RemoteError::RateLimited(None).to_string(),
            "rate-limited: the provider kept answering 429"
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

    #[test]
    fn converts_one_to_one_with_the_wit_variant() {
        for e in [
            RemoteError::Timeout("a".into()),
            RemoteError::RateLimited(Some(5)),
            RemoteError::RateLimited(None),
            RemoteError::Unavailable("b".into()),
            RemoteError::Rejected {
                status: 401,
                message: "c".into(),
            },
            RemoteError::TooLarge("d".into()),
            RemoteError::BudgetExceeded("e".into()),
            RemoteError::NotFound("f".into()),
            RemoteError::BadResponse("g".into()),
        ] {
            assert_eq!(RemoteError::from(wit::Error::from(e.clone())), e);
        }
    }

    #[test]
    fn only_refusals_are_certain_to_have_sent_nothing() {
        assert!(RemoteError::NotFound("x".into()).refused_before_sending());
        assert!(RemoteError::BudgetExceeded("x".into()).refused_before_sending());
        assert!(!RemoteError::Timeout("x".into()).refused_before_sending());
        assert!(!RemoteError::TooLarge("x".into()).refused_before_sending());
    }
}
