//! `[server]` and `[[openai_model]]`: how `hybrid serve` listens, what it admits, and
//! which pipeline serves each OpenAI-facing model id.

use serde::Deserialize;

/// Limits and address of the HTTP front.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on; `--listen` overrides it.
    pub listen: String,
    /// Largest request body accepted, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Requests executing at once (each holds a worker thread and a guest instance);
    /// at most `runtime.max_instances`, which is also the default (capped at 512).
    pub max_concurrency: Option<u32>,
    /// Requests allowed to wait for a worker; beyond it the answer is 503 with
    /// `Retry-After`, never a hang.
    pub max_queue: u32,
    /// Seconds clients are told to wait in `Retry-After` when the box is full.
    pub retry_after_s: u32,
    /// How long a shutdown waits for in-flight requests, in milliseconds.
    pub drain_timeout_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 25 << 20,
            max_concurrency: None,
            max_queue: 256,
            retry_after_s: 1,
            drain_timeout_ms: 10_000,
        }
    }
}

impl ServerConfig {
    /// The concurrency bound given the runtime's instance slots.
    pub fn concurrency(&self, max_instances: u32) -> u32 {
        self.max_concurrency.unwrap_or(max_instances.min(512))
    }
}

/// Which OpenAI route an `[[openai_model]]` serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpenAiKind {
    /// `POST /v1/chat/completions`.
    Chat,
    /// `POST /v1/embeddings`.
    Embeddings,
}

/// One model id that OpenAI clients may ask for, and the pipeline that serves it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiModel {
    /// The id clients put in `model` (and that `GET /v1/models` lists).
    pub id: String,
    /// The route it serves.
    pub kind: OpenAiKind,
    /// The pipeline whose component decides how to serve it.
    pub pipeline: String,
}
