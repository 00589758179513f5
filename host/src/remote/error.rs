//! Why a remote call failed (mirrors the WIT `remote.error`). Every message names the
//! endpoint and has been scrubbed of credentials.

use std::time::Duration;

/// A failed remote call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RemoteError {
    /// No attempt finished in time.
    #[error("timeout: {0}")]
    Timeout(String),
    /// The provider kept answering 429.
    #[error("rate-limited: {message}")]
    RateLimited {
        /// What happened.
        message: String,
        /// How long the provider asked to wait, if it said.
        retry_after: Option<Duration>,
    },
    /// The circuit is open, or the provider kept failing through every retry.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The provider rejected the request (4xx other than 429).
    #[error("rejected: HTTP {status}: {message}")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The provider's message.
        message: String,
    },
    /// The request or response exceeded the endpoint's size limit.
    #[error("too-large: {0}")]
    TooLarge(String),
    /// The spend budget is exhausted.
    #[error("budget-exceeded: {0}")]
    BudgetExceeded(String),
    /// No endpoint of that name, or of another kind.
    #[error("not-found: {0}")]
    NotFound(String),
    /// A 2xx answer whose body is not what the API promises.
    #[error("bad-response: {0}")]
    BadResponse(String),
}

impl RemoteError {
    /// Whether this failure says the endpoint is unhealthy (counts against its circuit
    /// breaker). Rejections and size limits are the request's fault, not the endpoint's.
    pub fn counts_against_endpoint(&self) -> bool {
        matches!(
            self,
            Self::Timeout(_) | Self::Unavailable(_) | Self::BadResponse(_)
        )
    }

    /// The error's case name, as in the WIT variant (for metrics and logs).
    pub fn case(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::RateLimited { .. } => "rate-limited",
            Self::Unavailable(_) => "unavailable",
            Self::Rejected { .. } => "rejected",
            Self::TooLarge(_) => "too-large",
            Self::BudgetExceeded(_) => "budget-exceeded",
            Self::NotFound(_) => "not-found",
            Self::BadResponse(_) => "bad-response",
        }
    }
}
