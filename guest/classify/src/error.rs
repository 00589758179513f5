//! The pipelines' failure type: one case per WIT `messages.error` case, so every module
//! can say which HTTP-level class a failure belongs to without seeing the generated
//! bindings. Each component maps it one-to-one onto the WIT variant.

use std::fmt;

/// Why a digits pipeline could not answer; each case carries a message naming the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PipelineError {
    /// The request is malformed: not JSON, bad pixels, a bad metadata value (HTTP 400).
    BadRequest(String),
    /// The body is not `application/json` (HTTP 415).
    Unsupported(String),
    /// The local model failed, or the escalation failed with `setting.fallback=error` (HTTP 502).
    Upstream(String),
    /// A bug or an unexpected answer from the host (HTTP 500).
    Internal(String),
}

impl PipelineError {
    /// Shorthand for [`PipelineError::BadRequest`].
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }

    /// Shorthand for [`PipelineError::Unsupported`].
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::Unsupported(message.into())
    }

    /// Shorthand for [`PipelineError::Upstream`].
    pub fn upstream(message: impl Into<String>) -> Self {
        Self::Upstream(message.into())
    }

    /// Shorthand for [`PipelineError::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal(message.into())
    }

    /// The WIT case name, e.g. `bad-request`.
    pub fn case(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad-request",
            Self::Unsupported(_) => "unsupported",
            Self::Upstream(_) => "upstream",
            Self::Internal(_) => "internal",
        }
    }

    /// The message without the case name.
    pub fn message(&self) -> &str {
        match self {
            Self::BadRequest(m) | Self::Unsupported(m) | Self::Upstream(m) | Self::Internal(m) => m,
        }
    }
}

impl fmt::Display for PipelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.case(), self.message())
    }
}

impl std::error::Error for PipelineError {}
