//! `[[endpoint]]` and `[budget]`: the serverless side of the config.
//!
//! An endpoint is one OpenAI-compatible route at a provider (DigitalOcean Serverless
//! Inference or any other) with its credentials, prices and the limits the host enforces
//! on every call: timeout, retries, circuit breaker and sizes. The key itself never
//! appears in the file: only the name of the environment variable holding it.

use std::time::Duration;

use serde::Deserialize;

/// What an endpoint serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointKind {
    /// `POST /chat/completions`.
    Chat,
    /// `POST /embeddings`.
    Embeddings,
    /// `POST /audio/transcriptions` (multipart upload).
    Transcription,
    /// A JSON `POST` to the endpoint's fixed `path`.
    Raw,
}

impl EndpointKind {
    /// The kind as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Embeddings => "embeddings",
            Self::Transcription => "transcription",
            Self::Raw => "raw",
        }
    }
}

/// One serverless endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// The name guests address it by.
    pub name: String,
    /// What it serves.
    pub kind: EndpointKind,
    /// Base URL up to and including the API version, e.g.
    /// `https://inference.do-ai.run/v1`.
    pub base_url: String,
    /// Name of the environment variable holding the API key. Omit only for endpoints
    /// that need no authentication; when given, the variable must be set at start.
    pub api_key_env: Option<String>,
    /// Model id sent to the provider.
    pub model: String,
    /// Path under `base_url` for `raw` endpoints (e.g. `/raw/echo`); other kinds use the
    /// OpenAI route for their kind.
    pub path: Option<String>,
    /// Stream chat completions over SSE (read incrementally) instead of one JSON body.
    #[serde(default)]
    pub stream: bool,
    /// Identity of the model behind the endpoint (sha256 of its weights), when the
    /// provider runs a known file: lets an embeddings pipeline fall back to it safely.
    pub model_sha256: Option<String>,
    /// Prices used to account for each call.
    #[serde(default)]
    pub price: Prices,
    /// Budget for one call, retries and backoff included, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Budget for establishing a connection, in milliseconds.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Attempts per call (1 = no retry). Retries happen on connection errors, 429 and 5xx.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// First backoff step in milliseconds; doubles per retry, with full jitter.
    #[serde(default = "default_backoff_ms")]
    pub backoff_ms: u64,
    /// Longest wait between attempts in milliseconds, `Retry-After` included: a provider
    /// asking for longer gets `rate-limited` back instead of a stalled request.
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
    /// Consecutive failed calls that open the circuit breaker.
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    /// How long an open circuit fails fast before a probe, in milliseconds.
    #[serde(default = "default_breaker_open_ms")]
    pub breaker_open_ms: u64,
    /// Largest request body sent, in bytes.
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: u64,
    /// Largest response body read, in bytes (enforced while reading).
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: u64,
}

/// Prices in US dollars; all default to zero.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Prices {
    /// Per million input (prompt) tokens.
    pub input_per_mtok: f64,
    /// Per million output (completion) tokens.
    pub output_per_mtok: f64,
    /// Per second of audio sent.
    pub per_audio_second: f64,
    /// Per call.
    pub per_request: f64,
}

/// Spend limits across every endpoint; each window is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetConfig {
    /// US dollars per minute.
    pub per_minute: Option<f64>,
    /// US dollars per hour.
    pub per_hour: Option<f64>,
    /// US dollars per day.
    pub per_day: Option<f64>,
}

fn default_timeout_ms() -> u64 {
    30_000
}
fn default_connect_timeout_ms() -> u64 {
    2_000
}
fn default_max_attempts() -> u32 {
    3
}
fn default_backoff_ms() -> u64 {
    100
}
fn default_max_backoff_ms() -> u64 {
    5_000
}
fn default_breaker_failures() -> u32 {
    5
}
fn default_breaker_open_ms() -> u64 {
    30_000
}
fn default_max_request_bytes() -> u64 {
    25 << 20
}
fn default_max_response_bytes() -> u64 {
    4 << 20
}

impl EndpointConfig {
    /// The call budget.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// The URL path (after `base_url`) this endpoint posts to.
    pub fn route(&self) -> &str {
        match self.kind {
            EndpointKind::Chat => "/chat/completions",
            EndpointKind::Embeddings => "/embeddings",
            EndpointKind::Transcription => "/audio/transcriptions",
            EndpointKind::Raw => self.path.as_deref().unwrap_or("/"),
        }
    }

    /// Checks the values; the message names the field.
    pub(super) fn validate(&self) -> Result<(), String> {
        let name = &self.name;
        if !(self.base_url.starts_with("http://") || self.base_url.starts_with("https://")) {
            return Err(format!(
                "endpoint {name:?}: base_url must start with http:// or https://"
            ));
        }
        if self.kind == EndpointKind::Raw
            && !self.path.as_deref().is_some_and(|p| p.starts_with('/'))
        {
            return Err(format!(
                "endpoint {name:?}: a raw endpoint needs a path starting with '/'"
            ));
        }
        if self.timeout_ms == 0 || self.connect_timeout_ms == 0 || self.max_attempts == 0 {
            return Err(format!(
                "endpoint {name:?}: timeout_ms, connect_timeout_ms and max_attempts must be > 0"
            ));
        }
        if self.breaker_failures == 0 {
            return Err(format!("endpoint {name:?}: breaker_failures must be > 0"));
        }
        let p = &self.price;
        if [
            p.input_per_mtok,
            p.output_per_mtok,
            p.per_audio_second,
            p.per_request,
        ]
        .iter()
        .any(|v| !v.is_finite() || *v < 0.0)
        {
            return Err(format!("endpoint {name:?}: prices must be finite and >= 0"));
        }
        if self.api_key_env.as_deref().is_some_and(str::is_empty) {
            return Err(format!(
                "endpoint {name:?}: api_key_env must name a variable"
            ));
        }
        Ok(())
    }
}
