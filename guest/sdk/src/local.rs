//! The models on this box (WIT `local`): the generated records, and [`LocalError`], the
//! typed failure of `asset` and `run` with a `case: message` display.

use std::fmt;

use crate::bindings::hybrid::inference::local as wit;

pub use wit::{ModelInfo, TensorSpec};

/// Why a model call failed (WIT `local.error`); each case carries the host's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalError {
    /// No model of that name is loaded on this host.
    UnknownModel(String),
    /// An input was missing, given twice, or named something the model does not have;
    /// or the model has no asset of that name.
    BadInputName(String),
    /// An input's element type differs from the model's declared type.
    TypeMismatch(String),
    /// An input's dimensions do not fit the model's declared shape, or its byte length
    /// does not match its dimensions.
    ShapeMismatch(String),
    /// The tensors were well-formed but the model failed while running.
    ExecutionFailed(String),
}

impl LocalError {
    /// The WIT case name, e.g. `shape-mismatch`.
    pub fn case(&self) -> &'static str {
        match self {
            Self::UnknownModel(_) => "unknown-model",
            Self::BadInputName(_) => "bad-input-name",
            Self::TypeMismatch(_) => "type-mismatch",
            Self::ShapeMismatch(_) => "shape-mismatch",
            Self::ExecutionFailed(_) => "execution-failed",
        }
    }

    /// The host's message, without the case name.
    pub fn message(&self) -> &str {
        match self {
            Self::UnknownModel(m)
            | Self::BadInputName(m)
            | Self::TypeMismatch(m)
            | Self::ShapeMismatch(m)
            | Self::ExecutionFailed(m) => m,
        }
    }
}

impl fmt::Display for LocalError {
    /// `case: message`, e.g. `shape-mismatch: input is [1, 63]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.case(), self.message())
    }
}

impl std::error::Error for LocalError {}

impl From<wit::Error> for LocalError {
    fn from(error: wit::Error) -> Self {
        match error {
            wit::Error::UnknownModel(m) => Self::UnknownModel(m),
            wit::Error::BadInputName(m) => Self::BadInputName(m),
            wit::Error::TypeMismatch(m) => Self::TypeMismatch(m),
            wit::Error::ShapeMismatch(m) => Self::ShapeMismatch(m),
            wit::Error::ExecutionFailed(m) => Self::ExecutionFailed(m),
        }
    }
}

impl From<LocalError> for wit::Error {
    fn from(error: LocalError) -> Self {
        match error {
            LocalError::UnknownModel(m) => Self::UnknownModel(m),
            LocalError::BadInputName(m) => Self::BadInputName(m),
            LocalError::TypeMismatch(m) => Self::TypeMismatch(m),
            LocalError::ShapeMismatch(m) => Self::ShapeMismatch(m),
            LocalError::ExecutionFailed(m) => Self::ExecutionFailed(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_as_case_and_message_and_converts_with_the_wit_variant() {
        let e = LocalError::ShapeMismatch("input is [1, 63]".into());
        assert_eq!(e.to_string(), "shape-mismatch: input is [1, 63]");
        assert_eq!(e.message(), "input is [1, 63]");
        for e in [
            LocalError::UnknownModel("a".into()),
            LocalError::BadInputName("b".into()),
            LocalError::TypeMismatch("c".into()),
            LocalError::ShapeMismatch("d".into()),
            LocalError::ExecutionFailed("e".into()),
        ] {
            assert_eq!(LocalError::from(wit::Error::from(e.clone())), e);
        }
    }
}
