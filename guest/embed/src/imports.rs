//! What the pipeline needs from the host, as a trait: the WIT `local`, `remote` (`embed`
//! only), `log` and `clock` imports. The component implements it over the generated bindings; unit tests implement
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

/// A successful WIT `remote.embed`: the vectors and the parts of its call record the
/// response and the log report.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteEmbeddings {
    /// One vector per input, in input order, as the provider returned them.
    pub vectors: Vec<Vec<f32>>,
    /// What the call cost, in micro-dollars.
    pub cost_micro_usd: u64,
    /// HTTP attempts the host made (1 when the first succeeded).
    pub attempts: u32,
    /// Prompt tokens the provider billed.
    pub input_tokens: u32,
    /// The model id the provider reported.
    pub model: String,
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

    /// Embeds `inputs` on serverless endpoint `endpoint` (WIT `remote.embed`); the error is
    /// the remote error's case name and message, e.g. `not-found: ... must not be mixed`.
    fn remote_embed(
        &mut self,
        endpoint: &str,
        inputs: &[String],
    ) -> Result<RemoteEmbeddings, String>;

    /// Monotonic nanoseconds (WIT `clock.now`).
    fn now_ns(&mut self) -> u64;

    /// Writes an info line to the host's log (WIT `log.log`).
    fn log_info(&mut self, message: &str);
}
