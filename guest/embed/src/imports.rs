//! What the pipeline needs from the host, as a trait: the WIT `local`, `log` and `clock`
//! imports. The component implements it over the generated bindings; unit tests implement
//! it with a fake model so the whole request flow runs natively.

use crate::tensor::NamedTensor;

/// A model the host has loaded: the part of WIT `local.model-info` the pipeline reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedModel {
    /// The name guests run it by.
    pub name: String,
    /// The operator's version string.
    pub version: String,
    /// Lower-case hex SHA-256 of the model file.
    pub sha256: String,
}

/// The host functions the pipeline calls.
pub trait Imports {
    /// Every model loaded on the host (WIT `local.list-models`).
    fn list_models(&mut self) -> Vec<LoadedModel>;

    /// The bytes of asset `name` of `model` (WIT `local.asset`); the error is the local
    /// error's case name and message.
    fn asset(&mut self, model: &str, name: &str) -> Result<Vec<u8>, String>;

    /// Runs `model` once (WIT `local.run`); the error is the local error's case name and
    /// message, e.g. `shape-mismatch: ...`.
    fn run(&mut self, model: &str, inputs: Vec<NamedTensor>) -> Result<Vec<NamedTensor>, String>;

    /// Monotonic nanoseconds (WIT `clock.now`).
    fn now_ns(&mut self) -> u64;

    /// Writes an info line to the host's log (WIT `log.log`).
    fn log_info(&mut self, message: &str);
}
