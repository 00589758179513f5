//! Serverless inference, called by the host on a guest's behalf.
//!
//! [`Remote`] holds every configured [`Endpoint`] and the shared spend [`budget`]. A call
//! takes these steps:
//! 1. find the endpoint by name and check it serves this kind of call (`not-found`);
//! 2. refuse if a spend window is exhausted (`budget-exceeded`);
//! 3. ask the endpoint's circuit breaker (`unavailable` while open);
//! 4. build the OpenAI-compatible body ([`openai`]) and send it with retries, backoff and
//!    size limits ([`transport`]), bounded by the caller's deadline, on the endpoint's
//!    pool of kept-alive connections (host names resolved once a while: [`resolver`]);
//! 5. record the outcome in the breaker and the health window, price the reported usage
//!    ([`accounting`]) and charge the budget.
//!
//! A streamed chat completion ([`stream`]) takes the same steps, reading the answer chunk
//! by chunk and accounting for the call when the stream ends.
//!
//! Credentials live only in [`Endpoint`]s; every message that leaves this module has
//! passed through the endpoint's scrubber ([`secret`]).

pub mod accounting;
mod backoff;
pub mod breaker;
pub mod budget;
mod endpoint;
mod error;
pub mod health;
pub mod openai;
mod resolver;
pub mod secret;
pub mod sse;
pub mod stream;
mod transport;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub use accounting::Usage;
pub use breaker::CircuitState;
pub use budget::{Budget, WindowSpend};
pub use endpoint::{Endpoint, EndpointHealth};
pub use error::RemoteError;
pub use openai::{ChatRequest, Completion, Message};
pub use stream::{ChatChunk, ChatStream, Settled};
pub use transport::BodyReader;

use crate::config::{BudgetConfig, EndpointConfig, EndpointKind};
use transport::Payload;

/// The remote side could not be set up from the config.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// An endpoint's key variable is unset or empty.
    #[error(
        "endpoint {endpoint:?} needs an API key, but environment variable {variable} is not set (or is empty)"
    )]
    MissingKey {
        /// The endpoint.
        endpoint: String,
        /// The variable the config names.
        variable: String,
    },
}

/// What one remote call cost and who answered (the WIT `call-record`).
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    /// Endpoint name.
    pub endpoint: String,
    /// Model id the provider reported, or the configured one.
    pub model: String,
    /// Usage the provider reported.
    pub usage: Usage,
    /// Cost in micro-dollars.
    pub cost_micro_usd: u64,
    /// Request bytes sent over all attempts.
    pub bytes_sent: u64,
    /// Response bytes received over all attempts.
    pub bytes_received: u64,
    /// Wall-clock time, retries included.
    pub latency: Duration,
    /// Attempts made.
    pub attempts: u32,
}

/// A successful call's value with its record.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer<T> {
    /// The value.
    pub value: T,
    /// The accounting.
    pub call: CallRecord,
}

/// A failed call with what it cost anyway (the WIT `failure-record`: bytes, attempts,
/// time, and when retrying may help).
#[derive(Debug, Clone, PartialEq)]
pub struct FailedCall {
    /// Endpoint name as asked for.
    pub endpoint: String,
    /// Why it failed.
    pub error: RemoteError,
    /// Attempts made (0 when refused before sending).
    pub attempts: u32,
    /// Request bytes sent.
    pub bytes_sent: u64,
    /// Response bytes received (error bodies and partial streams included).
    pub bytes_received: u64,
    /// Wall-clock time.
    pub latency: Duration,
    /// When the same call may succeed: the provider's `Retry-After`, the time until an
    /// open circuit lets a probe through, or until a spent budget window starts over.
    pub retry_after: Option<Duration>,
    /// What was charged to the budget for it in micro-dollars: 0 for a call that got no
    /// answer; a stream that broke after text arrived is billed for what arrived, so the
    /// cost metric and the envelope count what the budget counts.
    pub cost_micro_usd: u64,
}

impl FailedCall {
    /// A call refused before anything was sent.
    pub fn refused(endpoint: &str, error: RemoteError, started: Instant) -> Self {
        Self {
            endpoint: endpoint.to_owned(),
            retry_after: provider_retry_after(&error),
            error,
            attempts: 0,
            bytes_sent: 0,
            bytes_received: 0,
            latency: started.elapsed(),
            cost_micro_usd: 0,
        }
    }

    /// A call that failed after the transport tried it, `latency` after it started.
    pub fn after_trying(endpoint: &str, failed: transport::Failed, latency: Duration) -> Self {
        Self {
            endpoint: endpoint.to_owned(),
            retry_after: provider_retry_after(&failed.error),
            error: failed.error,
            attempts: failed.attempts,
            bytes_sent: failed.bytes_sent,
            bytes_received: failed.bytes_received,
            latency,
            cost_micro_usd: 0,
        }
    }

    /// Sets when retrying may help.
    pub fn retry_after(mut self, wait: Option<Duration>) -> Self {
        self.retry_after = wait;
        self
    }
}

/// The provider's own `Retry-After`, when it rate-limited the call.
fn provider_retry_after(error: &RemoteError) -> Option<Duration> {
    match error {
        RemoteError::RateLimited { retry_after, .. } => *retry_after,
        _ => None,
    }
}

/// Every serverless endpoint of this host and the spend budget they share.
pub struct Remote {
    endpoints: BTreeMap<String, Arc<Endpoint>>,
    budget: Budget,
    next_call: AtomicU64,
}

impl Remote {
    /// Builds the endpoints, reading keys from the process environment.
    pub fn from_config(
        endpoints: &[EndpointConfig],
        budget: &BudgetConfig,
    ) -> Result<Self, SetupError> {
        Self::with_env(endpoints, budget, &|var| std::env::var(var).ok())
    }

    /// Builds the endpoints, reading keys through `env`.
    pub fn with_env(
        endpoints: &[EndpointConfig],
        budget: &BudgetConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, SetupError> {
        let endpoints = endpoints
            .iter()
            .map(|c| Ok((c.name.clone(), Arc::new(Endpoint::new(c.clone(), env)?))))
            .collect::<Result<_, SetupError>>()?;
        Ok(Self {
            endpoints,
            budget: Budget::new(budget, Instant::now()),
            next_call: AtomicU64::new(0),
        })
    }

    /// No endpoints at all.
    pub fn none() -> Self {
        Self {
            endpoints: BTreeMap::new(),
            budget: Budget::new(&BudgetConfig::default(), Instant::now()),
            next_call: AtomicU64::new(0),
        }
    }

    /// Health of every endpoint, by name.
    pub fn health(&self) -> Vec<EndpointHealth> {
        self.endpoints.values().map(|e| e.health()).collect()
    }

    /// Every endpoint, in name order.
    pub fn endpoints(&self) -> impl Iterator<Item = &Arc<Endpoint>> {
        self.endpoints.values()
    }

    /// Spend in each budget window.
    pub fn spend(&self) -> Vec<WindowSpend> {
        self.budget.snapshot(Instant::now())
    }

    /// How long until no budget window is spent any more; `None` when none is.
    pub fn budget_retry_after(&self) -> Option<Duration> {
        self.budget.retry_after(Instant::now())
    }

    /// The endpoint named `name`, if configured.
    pub fn endpoint(&self, name: &str) -> Option<&Arc<Endpoint>> {
        self.endpoints.get(name)
    }

    /// A chat completion on endpoint `name`.
    pub fn chat(
        &self,
        name: &str,
        request: &ChatRequest,
        request_id: &str,
        deadline: Instant,
    ) -> Result<Answer<Completion>, FailedCall> {
        self.call(
            name,
            EndpointKind::Chat,
            request_id,
            deadline,
            |endpoint| {
                let model = request
                    .model
                    .clone()
                    .unwrap_or_else(|| endpoint.config.model.clone());
                let stream = endpoint.config.stream;
                let body = openai::chat_body(request, &model, stream);
                let accept = if stream {
                    "text/event-stream"
                } else {
                    "application/json"
                };
                (body, "application/json".into(), accept, 0.0)
            },
            openai::parse_chat,
        )
    }

    /// Embeddings of `inputs` on endpoint `name`. With `identity` (the sha256 of the model
    /// the caller's vectors must come from), an endpoint that does not declare exactly
    /// that model is refused before anything is sent.
    pub fn embed(
        &self,
        name: &str,
        inputs: &[String],
        identity: Option<&str>,
        request_id: &str,
        deadline: Instant,
    ) -> Result<Answer<Vec<Vec<f32>>>, FailedCall> {
        if let (Some(required), Some(endpoint)) = (identity, self.endpoints.get(name)) {
            let declared = endpoint.config.model_sha256.as_deref();
            if !declared.is_some_and(|d| d.eq_ignore_ascii_case(required)) {
                return Err(FailedCall::refused(
                    name,
                    RemoteError::NotFound(format!(
                        "endpoint {name:?} does not serve this pipeline's embedding model (sha256 {required}); it declares {}: \
                         vectors from different models must not be mixed",
                        declared.map_or("no model identity".to_owned(), |d| format!("sha256 {d}"))
                    )),
                    Instant::now(),
                ));
            }
        }
        self.call(
            name,
            EndpointKind::Embeddings,
            request_id,
            deadline,
            |endpoint| {
                let body = openai::embeddings_body(inputs, &endpoint.config.model);
                (body, "application/json".into(), "application/json", 0.0)
            },
            |ep, reader, ct| openai::parse_embeddings(ep, reader, ct, inputs.len()),
        )
    }

    /// A transcription of `audio` (file format `format`) on endpoint `name`.
    pub fn transcribe(
        &self,
        name: &str,
        audio: &[u8],
        format: &str,
        language: Option<&str>,
        request_id: &str,
        deadline: Instant,
    ) -> Result<Answer<String>, FailedCall> {
        let boundary = format!("hybrid-{}", self.next_call.load(Ordering::Relaxed));
        let seconds = openai::wav_seconds(audio).unwrap_or(0.0);
        self.call(
            name,
            EndpointKind::Transcription,
            request_id,
            deadline,
            |endpoint| {
                let (body, content_type) = openai::transcription_body(
                    audio,
                    format,
                    &endpoint.config.model,
                    language,
                    &boundary,
                );
                (body, content_type, "application/json", seconds)
            },
            openai::parse_transcription,
        )
    }

    /// POSTs raw JSON `body` to endpoint `name`.
    pub fn raw(
        &self,
        name: &str,
        body: &str,
        request_id: &str,
        deadline: Instant,
    ) -> Result<Answer<String>, FailedCall> {
        if let Err(e) = serde_json::from_str::<serde_json::Value>(body) {
            return Err(FailedCall::refused(
                name,
                RemoteError::Rejected {
                    status: 400,
                    message: format!("the raw body is not JSON: {e}"),
                },
                Instant::now(),
            ));
        }
        self.call(
            name,
            EndpointKind::Raw,
            request_id,
            deadline,
            |_| {
                (
                    body.as_bytes().to_vec(),
                    "application/json".into(),
                    "application/json",
                    0.0,
                )
            },
            openai::parse_raw,
        )
    }

    /// Steps 1 to 3 of the module doc: the endpoint of `name` serving `kind`, once the
    /// budget and its circuit breaker let a call start.
    fn admit(
        &self,
        name: &str,
        kind: EndpointKind,
        started: Instant,
    ) -> Result<(&Arc<Endpoint>, breaker::Admission), FailedCall> {
        let refuse = |error| FailedCall::refused(name, error, started);
        let endpoint = match self.endpoints.get(name) {
            Some(e) if e.config.kind == kind => e,
            Some(e) => {
                return Err(refuse(RemoteError::NotFound(format!(
                    "endpoint {name:?} serves {}, not {}",
                    e.config.kind.as_str(),
                    kind.as_str()
                ))));
            }
            None => {
                let known: Vec<&str> = self.endpoints.keys().map(String::as_str).collect();
                return Err(refuse(RemoteError::NotFound(format!(
                    "no endpoint named {name:?}; configured endpoints: [{}]",
                    known.join(", ")
                ))));
            }
        };
        self.budget.check(started).map_err(|(message, wait)| {
            refuse(RemoteError::BudgetExceeded(message)).retry_after(Some(wait))
        })?;
        let admission = endpoint
            .admit()
            .map_err(|(error, wait)| refuse(error).retry_after(Some(wait)))?;
        Ok((endpoint, admission))
    }

    /// The steps of the module doc, shared by every kind of call. `build` returns the body,
    /// its content type, the `Accept` header and the audio seconds sent (for pricing when
    /// the provider reports none).
    fn call<T>(
        &self,
        name: &str,
        kind: EndpointKind,
        request_id: &str,
        deadline: Instant,
        build: impl FnOnce(&Endpoint) -> (Vec<u8>, String, &'static str, f32),
        mut parse: impl FnMut(&str, &mut BodyReader<'_>, &str) -> Result<openai::Parsed<T>, RemoteError>,
    ) -> Result<Answer<T>, FailedCall> {
        let started = Instant::now();
        let (endpoint, admission) = self.admit(name, kind, started)?;
        let deadline = deadline.min(started + endpoint.config.timeout());
        let (body, content_type, accept, audio_seconds) = build(endpoint);
        let call_id = format!(
            "{request_id}-{}",
            self.next_call.fetch_add(1, Ordering::Relaxed)
        );
        let payload = Payload {
            body: &body,
            content_type: &content_type,
            accept,
            call_id: &call_id,
        };
        let result = transport::post(endpoint, &payload, deadline, |reader, ct| {
            parse(name, reader, ct)
        });
        let latency = started.elapsed();
        endpoint.finish(admission, result.as_ref().err().map(|f| &f.error), latency);
        match result {
            Ok(delivered) => {
                let parsed = delivered.value;
                let mut usage = parsed.usage;
                if usage.audio_seconds == 0.0 {
                    usage.audio_seconds = audio_seconds;
                }
                let cost_micro_usd = accounting::cost_micro_usd(&endpoint.config.price, &usage);
                self.budget.charge(cost_micro_usd, Instant::now());
                tracing::info!(
                    endpoint = name,
                    attempts = delivered.attempts,
                    bytes_sent = delivered.bytes_sent,
                    bytes_received = delivered.bytes_received,
                    latency_ms = latency.as_millis() as u64,
                    cost_micro_usd,
                    "remote call"
                );
                Ok(Answer {
                    value: parsed.value,
                    call: CallRecord {
                        endpoint: name.to_owned(),
                        model: parsed
                            .model
                            .unwrap_or_else(|| endpoint.config.model.clone()),
                        usage,
                        cost_micro_usd,
                        bytes_sent: delivered.bytes_sent,
                        bytes_received: delivered.bytes_received,
                        latency,
                        attempts: delivered.attempts,
                    },
                })
            }
            Err(failed) => {
                tracing::warn!(
                    endpoint = name,
                    attempts = failed.attempts,
                    latency_ms = latency.as_millis() as u64,
                    error = %failed.error,
                    "remote call failed"
                );
                Err(FailedCall::after_trying(name, failed, latency))
            }
        }
    }
}
