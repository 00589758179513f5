//! The router's failure type: one case per WIT `messages.error` case, so every module can
//! say which HTTP-level class a failure belongs to without seeing the generated bindings.
//! The component glue maps it one-to-one onto the WIT variant.

use std::fmt;

/// Why the chat router could not answer; each case carries a message naming the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouterError {
    /// The request is malformed: not JSON, a missing or out-of-range field, a bad
    /// metadata value, or a request the provider rejected [400].
    BadRequest(String),
    /// Well-formed but asking for something this pipeline does not do (`n` > 1, tools,
    /// image parts, a non-JSON content type) [415].
    Unsupported(String),
    /// The serverless endpoint is unavailable, over budget, rate limited or failing [502].
    Upstream(String),
    /// A configuration problem or a bug: no such endpoint, credentials refused [500].
    Internal(String),
}

impl RouterError {
    /// Shorthand for [`RouterError::BadRequest`].
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }

    /// Shorthand for [`RouterError::Unsupported`].
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::Unsupported(message.into())
    }

    /// Shorthand for [`RouterError::Upstream`].
    pub fn upstream(message: impl Into<String>) -> Self {
        Self::Upstream(message.into())
    }

    /// Shorthand for [`RouterError::Internal`].
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

impl fmt::Display for RouterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.case(), self.message())
    }
}

impl std::error::Error for RouterError {}
