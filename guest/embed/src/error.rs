//! The pipeline's failure type: one case per WIT `messages.error` case, so every module
//! can say which HTTP-level class a failure belongs to without seeing the generated
//! bindings. The component glue maps it one-to-one onto the WIT variant.

use std::fmt;

/// Why the embeddings pipeline could not answer; each case carries a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmbedError {
    /// The request is malformed: not JSON, empty input, bad parameter.
    BadRequest(String),
    /// Well-formed but not something this pipeline handles (a non-JSON content type).
    Unsupported(String),
    /// The model or its vocabulary is missing, failed, or answered something unusable.
    Upstream(String),
    /// A bug inside the pipeline.
    Internal(String),
}

impl EmbedError {
    /// Shorthand for [`EmbedError::BadRequest`].
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }

    /// Shorthand for [`EmbedError::Upstream`].
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

impl fmt::Display for EmbedError {
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

impl std::error::Error for EmbedError {}
