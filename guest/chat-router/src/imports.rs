//! What the router needs from the host, as a trait: the WIT `signals`, `remote` and `log`
//! imports, as plain Rust types. The component implements it over the generated
//! bindings; unit tests implement it with [`fake::FakeHost`], whose endpoint health, spend
//! and chat answer each test sets, so every branch of the policy runs natively.

use std::fmt;

/// One chat message as `remote.chat` takes it (WIT `remote.message`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The message text.
    pub content: String,
}

/// Generation parameters (WIT `remote.chat-params`); `None` leaves the provider's default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatParams {
    /// Upper bound on generated tokens.
    pub max_tokens: Option<u32>,
    /// Sampling temperature, 0.0 to 2.0.
    pub temperature: Option<f32>,
    /// Nucleus sampling mass, 0.0 to 1.0.
    pub top_p: Option<f32>,
    /// Sequences that stop generation (at most 4).
    pub stop: Vec<String>,
    /// Override of the endpoint's configured model id.
    pub model: Option<String>,
}

/// What one remote call cost and who answered: the part of WIT `remote.call-record` the
/// router reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// The endpoint name from the host config.
    pub endpoint: String,
    /// The model id the provider reported, or the configured one.
    pub model: String,
    /// Prompt tokens the provider billed.
    pub input_tokens: u32,
    /// Completion tokens the provider billed.
    pub output_tokens: u32,
    /// Cost in micro-dollars.
    pub cost_micro_usd: u64,
    /// Wall-clock time of the call, retries included, in milliseconds.
    pub latency_ms: u32,
    /// HTTP attempts made.
    pub attempts: u32,
}

/// A chat completion (WIT `remote.chat-result`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatResult {
    /// The generated text of the first choice.
    pub content: String,
    /// Why generation stopped: `stop`, `length`, ...
    pub finish_reason: String,
    /// Accounting for the call.
    pub call: CallRecord,
}

/// Why a remote call failed (WIT `remote.error`); each message names the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteError {
    /// No attempt finished within the endpoint's timeout.
    Timeout(String),
    /// The provider kept answering 429; milliseconds to wait when it said.
    RateLimited(Option<u32>),
    /// The circuit breaker is open, or the provider kept failing through every retry.
    Unavailable(String),
    /// The provider rejected the request with this HTTP status and message.
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The provider's message.
        message: String,
    },
    /// The request or the response exceeded the endpoint's size limit.
    TooLarge(String),
    /// The call would exceed the operator's spend budget.
    BudgetExceeded(String),
    /// No endpoint of that name, or one of another kind.
    NotFound(String),
    /// A 2xx answer whose body is not what the API promises.
    BadResponse(String),
}

impl RemoteError {
    /// The WIT case name, e.g. `budget-exceeded`.
    pub fn case(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::RateLimited(_) => "rate-limited",
            Self::Unavailable(_) => "unavailable",
            Self::Rejected { .. } => "rejected",
            Self::TooLarge(_) => "too-large",
            Self::BudgetExceeded(_) => "budget-exceeded",
            Self::NotFound(_) => "not-found",
            Self::BadResponse(_) => "bad-response",
        }
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let case = self.case();
        match self {
            Self::Timeout(m)
            | Self::Unavailable(m)
            | Self::TooLarge(m)
            | Self::BudgetExceeded(m)
            | Self::NotFound(m)
            | Self::BadResponse(m) => write!(f, "{case}: {m}"),
            Self::RateLimited(Some(ms)) => write!(f, "{case}: retry after {ms} ms"),
            Self::RateLimited(None) => write!(f, "{case}: the provider kept answering 429"),
            Self::Rejected { status, message } => write!(f, "{case}: HTTP {status}: {message}"),
        }
    }
}

/// A circuit breaker's state (WIT `signals.circuit-state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Circuit {
    /// Calls flow normally.
    Closed,
    /// Calls fail fast until the cool-down ends.
    Open,
    /// One probe call is allowed through.
    HalfOpen,
}

/// The health of one endpoint: the part of WIT `signals.endpoint-health` the router reads.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointHealth {
    /// Endpoint name from the host config.
    pub name: String,
    /// Circuit breaker state.
    pub circuit: Circuit,
    /// Fraction of recent calls that failed, 0.0 to 1.0.
    pub error_rate: f32,
}

/// Spend in one budget window (WIT `signals.window-spend`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowSpend {
    /// `minute`, `hour` or `day`.
    pub window: String,
    /// Micro-dollars spent in the current window.
    pub spent_micro_usd: u64,
    /// The window's budget in micro-dollars, if one is configured.
    pub budget_micro_usd: Option<u64>,
}

/// The host functions the router calls.
pub trait Imports {
    /// Health of every configured endpoint (WIT `signals.endpoints`).
    fn endpoints(&mut self) -> Vec<EndpointHealth>;

    /// Spend in each budget window (WIT `signals.spend`).
    fn spend(&mut self) -> Vec<WindowSpend>;

    /// Runs a chat completion on `endpoint` (WIT `remote.chat`).
    fn chat(
        &mut self,
        endpoint: &str,
        messages: Vec<Message>,
        params: ChatParams,
    ) -> Result<ChatResult, RemoteError>;

    /// Writes an info line to the host's log (WIT `log.log`).
    fn log_info(&mut self, message: &str);
}

/// A scriptable host for unit tests.
#[cfg(test)]
pub mod fake {
    use super::*;

    /// Endpoint `chat`, closed and healthy; no budgets; the chat answer echoes the last
    /// message. Every call made is recorded.
    #[derive(Debug)]
    pub struct FakeHost {
        /// What `signals.endpoints` returns.
        pub endpoints: Vec<EndpointHealth>,
        /// What `signals.spend` returns.
        pub spend: Vec<WindowSpend>,
        /// When set, `chat` fails with this error.
        pub chat_error: Option<RemoteError>,
        /// The chat calls made: endpoint, messages, params.
        pub calls: Vec<(String, Vec<Message>, ChatParams)>,
        /// Every log line.
        pub logs: Vec<String>,
    }

    impl Default for FakeHost {
        fn default() -> Self {
            Self {
                endpoints: vec![EndpointHealth {
                    name: "chat".into(),
                    circuit: Circuit::Closed,
                    error_rate: 0.0,
                }],
                spend: ["minute", "hour", "day"]
                    .into_iter()
                    .map(|w| WindowSpend {
                        window: w.into(),
                        spent_micro_usd: 0,
                        budget_micro_usd: None,
                    })
                    .collect(),
                chat_error: None,
                calls: Vec::new(),
                logs: Vec::new(),
            }
        }
    }

    impl Imports for FakeHost {
        fn endpoints(&mut self) -> Vec<EndpointHealth> {
            self.endpoints.clone()
        }

        fn spend(&mut self) -> Vec<WindowSpend> {
            self.spend.clone()
        }

        fn chat(
            &mut self,
            endpoint: &str,
            messages: Vec<Message>,
            params: ChatParams,
        ) -> Result<ChatResult, RemoteError> {
            let last = messages
                .last()
                .map(|m| m.content.clone())
                .unwrap_or_default();
            self.calls.push((endpoint.to_owned(), messages, params));
            if let Some(error) = &self.chat_error {
                return Err(error.clone());
            }
            Ok(ChatResult {
                content: format!("fake reply to: {last}"),
                finish_reason: "stop".into(),
                call: CallRecord {
                    endpoint: endpoint.to_owned(),
                    model: "provider-llama-70b".into(),
                    input_tokens: 12,
                    output_tokens: 5,
                    cost_micro_usd: 11,
                    latency_ms: 42,
                    attempts: 1,
                },
            })
        }

        fn log_info(&mut self, message: &str) {
            self.logs.push(message.to_owned());
        }
    }
}
