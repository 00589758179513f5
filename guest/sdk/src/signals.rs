//! The live signals a routing policy reads (WIT `signals`): the generated records, and
//! the two questions every policy asks of them: is this endpoint's circuit open, and is a
//! budget window spent. Every host call is a snapshot taken at call time.

pub use crate::bindings::hybrid::inference::signals::{
    CircuitState, EndpointHealth, EndpointPrice, Load, WindowSpend,
};

impl WindowSpend {
    /// Whether the window has a budget and it is spent.
    pub fn is_spent(&self) -> bool {
        self.budget_micro_usd
            .is_some_and(|budget| self.spent_micro_usd >= budget)
    }
}

impl EndpointHealth {
    /// A closed circuit with no errors, no latency yet and no rate-limit report: an
    /// endpoint nothing is known against.
    pub fn healthy(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            circuit: CircuitState::Closed,
            error_rate: 0.0,
            latency_ms: 0.0,
            rate_limit_remaining: None,
        }
    }
}

/// Whether `endpoint`'s circuit is open. A half-open circuit is not: the call is the
/// probe the breaker waits for. An endpoint the signals do not list is not either; calling
/// it lets the host's `not-found` name the configuration problem.
pub fn circuit_open(endpoints: &[EndpointHealth], endpoint: &str) -> bool {
    endpoints
        .iter()
        .any(|h| h.name == endpoint && h.circuit == CircuitState::Open)
}

/// The first budget window that is spent, if any.
pub fn spent_window(spend: &[WindowSpend]) -> Option<&WindowSpend> {
    spend.iter().find(|w| w.is_spent())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(name: &str, circuit: CircuitState) -> EndpointHealth {
        EndpointHealth {
            circuit,
            ..EndpointHealth::healthy(name)
        }
    }

    #[test]
    fn only_an_open_circuit_of_that_endpoint_counts() {
        let endpoints = [
            health("strong", CircuitState::HalfOpen),
            health("other", CircuitState::Open),
        ];
        assert!(!circuit_open(&endpoints, "strong"));
        assert!(circuit_open(&endpoints, "other"));
        assert!(!circuit_open(&endpoints, "unknown"));
    }

    #[test]
    fn a_window_is_spent_at_its_budget_not_before() {
        let window = |spent, budget| WindowSpend {
            window: "minute".into(),
            spent_micro_usd: spent,
            budget_micro_usd: budget,
        };
        assert!(!window(5, None).is_spent());
        assert!(!window(99, Some(100)).is_spent());
        assert!(window(100, Some(100)).is_spent());
        let spend = [window(1_000, None), window(7, Some(7))];
        assert_eq!(spent_window(&spend), Some(&spend[1]));
    }
}
