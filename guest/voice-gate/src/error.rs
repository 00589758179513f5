//! The gate's failure type: one case per WIT `messages.error` case, so every module can
//! say which HTTP-level class a failure belongs to without seeing the generated bindings.
//! The component glue maps it one-to-one onto the WIT variant.

use std::fmt;

/// Why the voice gate could not answer; each case carries a message naming the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateError {
    /// The request is malformed: corrupt or truncated WAV, bad parameter value.
    BadRequest(String),
    /// Well-formed input in a format the gate does not handle (stereo, 24-bit, 22 kHz...).
    Unsupported(String),
    /// The voice model is missing or failed, or returned something unusable.
    Upstream(String),
    /// A bug inside the gate.
    Internal(String),
}

impl GateError {
    /// Shorthand for [`GateError::BadRequest`].
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }

    /// Shorthand for [`GateError::Unsupported`].
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::Unsupported(message.into())
    }

    /// Shorthand for [`GateError::Upstream`].
    pub fn upstream(message: impl Into<String>) -> Self {
        Self::Upstream(message.into())
    }

    /// The message without the case name.
    pub fn message(&self) -> &str {
        match self {
            Self::BadRequest(m) | Self::Unsupported(m) | Self::Upstream(m) | Self::Internal(m) => m,
        }
    }
}

impl fmt::Display for GateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let case = match self {
            Self::BadRequest(_) => "bad-request",
            Self::Unsupported(_) => "unsupported",
            Self::Upstream(_) => "upstream",
            Self::Internal(_) => "internal",
        };
        write!(f, "{case}: {}", self.message())
    }
}

impl std::error::Error for GateError {}
