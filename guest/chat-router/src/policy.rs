//! The routing decision, from the host's live signals.
//!
//! This box has no local generative model, so every valid request goes to a serverless
//! endpoint; what the policy decides is whether calling it now makes sense. Steps: read
//! the endpoint's health and refuse fast (`unavailable`, HTTP 503, without a call) while
//! its circuit is open; read the spend and refuse (`unavailable`) while any budget window
//! is spent. Either refusal carries the wait the signals give (WIT 0.2.1: the circuit's
//! cool-down left, the time until no budget window is spent), so the client's
//! `Retry-After` says when a call can succeed. A half-open
//! circuit lets the call through (it is the probe the breaker waits for), and an endpoint
//! the signals do not know is called anyway, so the host's `not-found` names the problem.
//! The reason recorded says which endpoint and in what health.

use hybrid_guest::signals::{CircuitState, EndpointHealth};
use hybrid_guest::{Error, Host};

/// Error rate from which a closed circuit's endpoint is reported `degraded`.
const DEGRADED_ERROR_RATE: f32 = 0.1;

/// Why a refusal happened, for the log line (the error carries the client's message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The endpoint's circuit breaker is open.
    CircuitOpen,
    /// The named budget window is spent.
    BudgetSpent(String),
}

/// Decides whether to call `endpoint` now: `Ok(reason)` for the routing record, or the
/// refusal and the error to answer with.
pub fn decide(host: &mut impl Host, endpoint: &str) -> Result<String, (Refusal, Error)> {
    let health = host.endpoints().into_iter().find(|h| h.name == endpoint);
    if let Some(h) = &health
        && h.circuit == CircuitState::Open
    {
        return Err((
            Refusal::CircuitOpen,
            Error::Unavailable {
                message: format!(
                    "serverless endpoint {endpoint:?} is unavailable (circuit open after \
                     repeated failures); try again later"
                ),
                retry_after_ms: host.circuit_retry_after_ms(endpoint),
            },
        ));
    }
    if let Some(w) = host.spend().into_iter().find(|w| w.is_spent()) {
        let usd = |micro: u64| micro as f64 / 1e6;
        return Err((
            Refusal::BudgetSpent(w.window.clone()),
            Error::Unavailable {
                message: format!(
                    "the per-{} serverless spend budget of ${:.6} is spent (${:.6} so far); \
                     try again when the window rolls over",
                    w.window,
                    usd(w.budget_micro_usd.unwrap_or(0)),
                    usd(w.spent_micro_usd)
                ),
                retry_after_ms: host.budget_retry_after_ms(),
            },
        ));
    }
    Ok(format!(
        "no local chat model; {}",
        health_words(endpoint, health.as_ref())
    ))
}

/// E.g. `endpoint chat healthy (error rate 0%)`.
fn health_words(endpoint: &str, health: Option<&EndpointHealth>) -> String {
    let Some(h) = health else {
        return format!("endpoint {endpoint} (no health signals for it)");
    };
    let rate = h.error_rate * 100.0;
    match h.circuit {
        CircuitState::HalfOpen => {
            format!("endpoint {endpoint} recovering (circuit half-open, error rate {rate:.0}%)")
        }
        _ if h.error_rate >= DEGRADED_ERROR_RATE => {
            format!("endpoint {endpoint} degraded (error rate {rate:.0}%)")
        }
        _ => format!("endpoint {endpoint} healthy (error rate {rate:.0}%)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{self, FakeHost};

    fn host_with(circuit: CircuitState, error_rate: f32) -> FakeHost {
        let mut host = fake::host();
        host.endpoints[0].circuit = circuit;
        host.endpoints[0].error_rate = error_rate;
        host
    }

    #[test]
    fn a_healthy_endpoint_is_called_and_the_reason_says_so() {
        let mut host = fake::host();
        assert_eq!(
            decide(&mut host, "chat"),
            Ok("no local chat model; endpoint chat healthy (error rate 0%)".into())
        );
        assert_eq!(
            decide(&mut host_with(CircuitState::Closed, 0.25), "chat"),
            Ok("no local chat model; endpoint chat degraded (error rate 25%)".into())
        );
        assert_eq!(
            decide(&mut host_with(CircuitState::HalfOpen, 1.0), "chat"),
            Ok("no local chat model; endpoint chat recovering (circuit half-open, error rate 100%)"
                .into())
        );
        assert_eq!(
            decide(&mut host, "other"),
            Ok("no local chat model; endpoint other (no health signals for it)".into())
        );
    }

    #[test]
    fn an_open_circuit_fails_fast() {
        let mut host = host_with(CircuitState::Open, 1.0);
        host.circuit_waits.insert("chat".into(), 4_200);
        let (refusal, error) = decide(&mut host, "chat").expect_err("open");
        assert_eq!(refusal, Refusal::CircuitOpen);
        assert_eq!(
            error,
            Error::Unavailable {
                message: "serverless endpoint \"chat\" is unavailable (circuit open after \
                          repeated failures); try again later"
                    .into(),
                retry_after_ms: Some(4_200),
            },
            "the cool-down left, for the client's Retry-After"
        );
    }

    #[test]
    fn a_spent_budget_window_is_named() {
        let mut host = fake::host();
        host.spend[0].budget_micro_usd = Some(10_000);
        host.spend[0].spent_micro_usd = 9_999;
        assert!(decide(&mut host, "chat").is_ok(), "not yet spent");
        host.spend[1].budget_micro_usd = Some(50_000);
        host.spend[1].spent_micro_usd = 50_000;
        host.budget_wait_ms = Some(1_800_000);
        let (refusal, error) = decide(&mut host, "chat").expect_err("spent");
        assert_eq!(refusal, Refusal::BudgetSpent("hour".into()));
        assert!(
            matches!(
                error,
                Error::Unavailable {
                    retry_after_ms: Some(1_800_000),
                    ..
                }
            ),
            "the window's time left, for the client's Retry-After"
        );
        assert_eq!(
            error.to_string(),
            "unavailable: the per-hour serverless spend budget of $0.050000 is spent \
             ($0.050000 so far); try again when the window rolls over"
        );
    }
}
