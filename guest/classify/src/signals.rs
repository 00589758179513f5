//! The live signals a routing policy reads (WIT `signals`), as a trait over plain Rust
//! types, with the two questions every policy asks of them: is this endpoint's circuit
//! open, and is a budget window spent. Every call is a snapshot taken at call time.

/// Load on this box (WIT `signals.load`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Load {
    /// Requests being served right now, this one included.
    pub in_flight: u32,
    /// Requests waiting for a worker.
    pub queue_depth: u32,
    /// Requests the box serves at once before queueing.
    pub capacity: u32,
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

/// The health of one endpoint: the part of WIT `signals.endpoint-health` policies read.
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

impl WindowSpend {
    /// Whether the window has a budget and it is spent.
    pub fn is_spent(&self) -> bool {
        self.budget_micro_usd
            .is_some_and(|budget| self.spent_micro_usd >= budget)
    }
}

/// What one endpoint charges (WIT `signals.endpoint-price`), in US dollars.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointPrice {
    /// Endpoint name from the host config.
    pub name: String,
    /// Per million input (prompt) tokens.
    pub input_usd_per_mtok: f64,
    /// Per million output (completion) tokens.
    pub output_usd_per_mtok: f64,
    /// Per call, on top of the above.
    pub usd_per_request: f64,
}

/// The host's live signals (WIT `signals`).
pub trait Signals {
    /// The box's load now (WIT `signals.local-load`).
    fn local_load(&mut self) -> Load;

    /// Health of every configured endpoint (WIT `signals.endpoints`).
    fn endpoints(&mut self) -> Vec<EndpointHealth>;

    /// Spend in each budget window (WIT `signals.spend`).
    fn spend(&mut self) -> Vec<WindowSpend>;

    /// Prices of every configured endpoint (WIT `signals.prices`).
    fn prices(&mut self) -> Vec<EndpointPrice>;
}

/// Whether `endpoint`'s circuit is open. A half-open circuit is not: the call is the
/// probe the breaker waits for. An endpoint the signals do not list is not either; calling
/// it lets the host's `not-found` name the configuration problem.
pub fn circuit_open(endpoints: &[EndpointHealth], endpoint: &str) -> bool {
    endpoints
        .iter()
        .any(|h| h.name == endpoint && h.circuit == Circuit::Open)
}

/// The first budget window that is spent, if any.
pub fn spent_window(spend: &[WindowSpend]) -> Option<&WindowSpend> {
    spend.iter().find(|w| w.is_spent())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(name: &str, circuit: Circuit) -> EndpointHealth {
        EndpointHealth {
            name: name.into(),
            circuit,
            error_rate: 0.0,
        }
    }

    #[test]
    fn only_an_open_circuit_of_that_endpoint_counts() {
        let endpoints = [
            health("strong", Circuit::HalfOpen),
            health("other", Circuit::Open),
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
