//! The pipeline's failure type: one case per WIT `messages.error` case, so every module of
//! a guest can say which HTTP-level class a failure belongs to, with a message naming the
//! problem, and `?` carries it out of [`crate::Pipeline::handle`]. The export glue turns
//! it into the WIT variant (`bad-request` 400, `unsupported` 415, `upstream` 502,
//! `internal` 500).

use std::fmt;

use crate::bindings::hybrid::inference::messages;

pub use messages::RetryLater;

/// Why a pipeline could not answer; each case carries a message naming the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The request is malformed: a corrupt body, a bad parameter value (HTTP 400).
    BadRequest(String),
    /// The body is well-formed but in a format this pipeline does not handle (HTTP 415).
    Unsupported(String),
    /// A model or upstream the pipeline depends on failed (HTTP 502).
    Upstream(String),
    /// A bug or an unexpected state inside the pipeline (HTTP 500).
    Internal(String),
    /// A serverless provider rate-limited a call this request needed (HTTP 429 with
    /// `Retry-After`).
    RateLimited {
        /// What happened, naming the endpoint.
        message: String,
        /// When retrying may help, in milliseconds, if known.
        retry_after_ms: Option<u32>,
    },
    /// A serverless endpoint this request needs is unavailable for now: circuit open,
    /// budget spent (HTTP 503 with `Retry-After`).
    Unavailable {
        /// What happened, naming the endpoint.
        message: String,
        /// When retrying may help, in milliseconds, if known.
        retry_after_ms: Option<u32>,
    },
    /// A serverless endpoint did not answer in time (HTTP 504).
    Timeout(String),
}

impl Error {
    /// Shorthand for [`Error::BadRequest`].
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }

    /// Shorthand for [`Error::Unsupported`].
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::Unsupported(message.into())
    }

    /// Shorthand for [`Error::Upstream`].
    pub fn upstream(message: impl Into<String>) -> Self {
        Self::Upstream(message.into())
    }

    /// Shorthand for [`Error::Internal`].
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
            Self::RateLimited { .. } => "rate-limited",
            Self::Unavailable { .. } => "unavailable",
            Self::Timeout(_) => "timeout",
        }
    }

    /// The message without the case name.
    pub fn message(&self) -> &str {
        match self {
            Self::BadRequest(m)
            | Self::Unsupported(m)
            | Self::Upstream(m)
            | Self::Internal(m)
            | Self::Timeout(m)
            | Self::RateLimited { message: m, .. }
            | Self::Unavailable { message: m, .. } => m,
        }
    }
}

impl fmt::Display for Error {
    /// `case: message`, e.g. `bad-request: "pixels" is missing`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.case(), self.message())
    }
}

impl std::error::Error for Error {}

impl From<Error> for messages::Error {
    fn from(error: Error) -> Self {
        match error {
            Error::BadRequest(m) => Self::BadRequest(m),
            Error::Unsupported(m) => Self::Unsupported(m),
            Error::Upstream(m) => Self::Upstream(m),
            Error::Internal(m) => Self::Internal(m),
            Error::RateLimited {
                message,
                retry_after_ms,
            } => Self::RateLimited(RetryLater {
                message,
                retry_after_ms,
            }),
            Error::Unavailable {
                message,
                retry_after_ms,
            } => Self::Unavailable(RetryLater {
                message,
                retry_after_ms,
            }),
            Error::Timeout(m) => Self::Timeout(m),
        }
    }
}

impl From<messages::Error> for Error {
    fn from(error: messages::Error) -> Self {
        match error {
            messages::Error::BadRequest(m) => Self::BadRequest(m),
            messages::Error::Unsupported(m) => Self::Unsupported(m),
            messages::Error::Upstream(m) => Self::Upstream(m),
            messages::Error::Internal(m) => Self::Internal(m),
            messages::Error::RateLimited(r) => Self::RateLimited {
                message: r.message,
                retry_after_ms: r.retry_after_ms,
            },
            messages::Error::Unavailable(r) => Self::Unavailable {
                message: r.message,
                retry_after_ms: r.retry_after_ms,
            },
            messages::Error::Timeout(m) => Self::Timeout(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_as_case_and_message() {
        let e = Error::upstream("local model \"digits-v1\" is not loaded on this host");
        assert_eq!(e.case(), "upstream");
        assert_eq!(
            e.to_string(),
            "upstream: local model \"digits-v1\" is not loaded on this host"
        );
        assert_eq!(Error::bad_request("x").message(), "x");
    }

    #[test]
    fn converts_one_to_one_with_the_wit_variant() {
        for error in [
            Error::bad_request("a"),
            Error::unsupported("b"),
            Error::upstream("c"),
            Error::internal("d"),
            Error::RateLimited {
                message: "e".into(),
                retry_after_ms: Some(1500),
            },
            Error::Unavailable {
                message: "f".into(),
                retry_after_ms: None,
            },
            Error::Timeout("g".into()),
        ] {
            let wit = messages::Error::from(error.clone());
            assert_eq!(Error::from(wit), error);
        }
        assert!(matches!(
            messages::Error::from(Error::unsupported("png")),
            messages::Error::Unsupported(m) if m == "png"
        ));
    }
}
