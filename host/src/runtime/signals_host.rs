//! The host side of the WIT `signals` interface: live load, endpoint health, spend,
//! prices and (0.2.1) how long an open circuit or a spent budget lasts, read at call time
//! so a routing policy decides on current values and can tell its client when to retry.

use std::sync::Arc;

use super::bindings::signals::{
    self, CircuitState as WitCircuit, EndpointHealth, EndpointPrice, Load as WitLoad, WindowSpend,
};
use super::load::Load;
use crate::remote::{CircuitState, Remote};

/// Per-request context for `signals`.
pub struct SignalsCtx {
    remote: Arc<Remote>,
    load: Arc<Load>,
}

impl SignalsCtx {
    /// A context reading the shared counters.
    pub fn new(remote: Arc<Remote>, load: Arc<Load>) -> Self {
        Self { remote, load }
    }
}

impl signals::Host for SignalsCtx {
    fn local_load(&mut self) -> WitLoad {
        let load = self.load.snapshot();
        WitLoad {
            in_flight: load.in_flight,
            queue_depth: load.queued,
            capacity: load.capacity,
            recent_model_ms: load.recent_model.as_secs_f32() * 1e3,
        }
    }

    fn endpoints(&mut self) -> Vec<EndpointHealth> {
        self.remote
            .health()
            .into_iter()
            .map(|h| EndpointHealth {
                name: h.name,
                circuit: match h.circuit {
                    CircuitState::Closed => WitCircuit::Closed,
                    CircuitState::Open => WitCircuit::Open,
                    CircuitState::HalfOpen => WitCircuit::HalfOpen,
                },
                error_rate: h.error_rate,
                latency_ms: h.latency.as_secs_f32() * 1e3,
                rate_limit_remaining: h.rate_limit_remaining,
            })
            .collect()
    }

    fn spend(&mut self) -> Vec<WindowSpend> {
        self.remote
            .spend()
            .into_iter()
            .map(|w| WindowSpend {
                window: w.window.to_owned(),
                spent_micro_usd: w.spent_micro_usd,
                budget_micro_usd: w.budget_micro_usd,
            })
            .collect()
    }

    fn prices(&mut self) -> Vec<EndpointPrice> {
        self.remote
            .endpoints()
            .map(|e| {
                let (config, price) = (&e.config, &e.config.price);
                EndpointPrice {
                    name: config.name.clone(),
                    kind: config.kind.as_str().to_owned(),
                    input_usd_per_mtok: price.input_per_mtok,
                    output_usd_per_mtok: price.output_per_mtok,
                    usd_per_audio_second: price.per_audio_second,
                    usd_per_request: price.per_request,
                }
            })
            .collect()
    }

    fn circuit_retry_after_ms(&mut self, endpoint: String) -> Option<u32> {
        let wait = self.remote.endpoint(&endpoint)?.cool_down_left()?;
        Some(millis_at_least_1(wait))
    }

    fn budget_retry_after_ms(&mut self) -> Option<u32> {
        self.remote.budget_retry_after().map(millis_at_least_1)
    }
}

/// Milliseconds, rounded up and at least 1, so "open for a little longer" never reads 0.
fn millis_at_least_1(wait: std::time::Duration) -> u32 {
    let ms = wait.as_micros().div_ceil(1000).max(1);
    u32::try_from(ms).unwrap_or(u32::MAX)
}
