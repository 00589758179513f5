//! Everything the routing rules look at, gathered in one place before any rule runs: the
//! request (private tag, personal data, body size), the settings, and a snapshot of the
//! host's signals (the endpoint's circuit, the budget windows, the endpoint's price, the
//! box's queue). Gathering first keeps the rules ([`crate::rules`]) a pure function that
//! unit tests drive field by field.

use hybrid_guest::Host;
use hybrid_guest::remote::Message;
use hybrid_guest::signals::{self, WindowSpend};

use crate::cost;
use crate::pii::Counts;
use crate::settings::{Ceiling, Egress, PolicySettings, Redact};

/// The facts about one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    /// The client tagged it `private=true`.
    pub private: bool,
    /// Personal data found in its text.
    pub personal: Counts,
    /// What the operator allows with personal data.
    pub redact: Redact,
    /// The endpoint escalations go to.
    pub endpoint: String,
    /// Whether that endpoint's circuit breaker is open.
    pub circuit_open: bool,
    /// A budget window that is spent, if any.
    pub spent: Option<WindowSpend>,
    /// What egress costs.
    pub egress: Egress,
    /// The request body's size in bytes.
    pub body_bytes: u64,
    /// Largest body that may leave when egress is dear.
    pub max_egress_bytes: u64,
    /// The escalation's estimated cost in US dollars; `None` when the endpoint has no
    /// price in the signals.
    pub escalation_usd: Option<f64>,
    /// The cost ceiling in force, if any.
    pub ceiling: Option<Ceiling>,
    /// Requests waiting for a worker on this box.
    pub queue_depth: u32,
    /// Queue depth from which requests spill to serverless.
    pub spill_queue_depth: u32,
}

/// The facts for a request of `body_bytes` whose escalation would send `messages` with
/// `max_tokens`, with `personal` data in its text, under `settings`, reading the signals
/// from `host`.
pub fn gather(
    host: &mut impl Host,
    settings: &PolicySettings,
    personal: Counts,
    body_bytes: usize,
    messages: &[Message],
    max_tokens: u32,
) -> Facts {
    let endpoint = settings.cascade.endpoint.clone();
    let circuit_open = signals::circuit_open(&host.endpoints(), &endpoint);
    let spent = signals::spent_window(&host.spend()).cloned();
    let escalation_usd = host
        .prices()
        .iter()
        .find(|p| p.name == endpoint)
        .map(|price| cost::estimate_usd(messages, max_tokens, price));
    Facts {
        private: settings.private,
        personal,
        redact: settings.redact,
        endpoint,
        circuit_open,
        spent,
        egress: settings.egress,
        body_bytes: body_bytes as u64,
        max_egress_bytes: settings.max_egress_bytes,
        escalation_usd,
        ceiling: settings.ceiling,
        queue_depth: host.local_load().queue_depth,
        spill_queue_depth: settings.spill_queue_depth,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use classify::fake;
    use hybrid_guest::metadata::Metadata;
    use hybrid_guest::signals::CircuitState;

    #[test]
    fn reads_the_signals_of_the_configured_endpoint() {
        let mut host = fake::confident(1, 0.5);
        host.endpoints[0].circuit = CircuitState::Open;
        host.spend[1].budget_micro_usd = Some(10);
        host.spend[1].spent_micro_usd = 10;
        host.load.queue_depth = 3;
        let settings = PolicySettings::from_metadata(&Metadata::new(&[])).expect("defaults");
        let messages = [Message {
            role: "user".into(),
            content: "x".repeat(40),
        }];
        let facts = gather(&mut host, &settings, Counts::default(), 300, &messages, 2);
        assert!(facts.circuit_open);
        assert_eq!(facts.spent.map(|w| w.window), Some("hour".to_owned()));
        assert_eq!((facts.queue_depth, facts.body_bytes), (3, 300));
        // 10 tokens in, 2 out, at $1 per million each way.
        let usd = facts.escalation_usd.expect("priced");
        assert!((usd - 12e-6).abs() < 1e-12, "{usd}");

        let pairs = [("setting.endpoint".to_owned(), "unpriced".to_owned())];
        let settings = PolicySettings::from_metadata(&Metadata::new(&pairs)).expect("valid");
        let facts = gather(&mut host, &settings, Counts::default(), 300, &messages, 2);
        assert_eq!((facts.circuit_open, facts.escalation_usd), (false, None));
    }
}
