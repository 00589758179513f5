//! The routing rules: a pure function from [`Facts`] to a [`Decision`]. The first rule
//! that matches decides; a rule that keeps the request local means the endpoint is never
//! called.
//!
//! 1. Private: the client tagged it `private=true`: local.
//! 2. Personal data in the text: with `setting.redact=deny`, local; with `allow`, the
//!    text leaves redacted, the reason notes what was redacted, and the rules go on.
//! 3. The endpoint's circuit is open: local (the call would fail fast anyway).
//! 4. A budget window is spent: local.
//! 5. Egress is dear and the body is larger than `setting.max_egress_bytes`: local.
//! 6. The escalation, priced before it is made, would cost more than the ceiling in
//!    force (or cannot be priced while a ceiling is set): local.
//! 7. The box's queue is at least `setting.spill_queue_depth` deep: spill to serverless
//!    without running the local model.
//! 8. Otherwise the confidence cascade.
//!
//! Rules 3 to 6 apply whatever the local model would say: each is a reason the operator
//! does not want the endpoint called now, and applying them first means a request is
//! never escalated against them.

use crate::facts::Facts;
use crate::settings::{Egress, Redact};

/// Which rule decided (for logs and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// 1: tagged private.
    Private,
    /// 2: personal data with `redact=deny`.
    PersonalData,
    /// 3: circuit open.
    CircuitOpen,
    /// 4: budget spent.
    BudgetSpent,
    /// 5: egress too dear for the body.
    Egress,
    /// 6: over the cost ceiling.
    CostCeiling,
    /// 7: the box is busy.
    Spill,
    /// 8: no rule matched.
    Cascade,
}

impl Rule {
    /// The rule's name in log lines, e.g. `cost-ceiling`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::PersonalData => "personal-data",
            Self::CircuitOpen => "circuit-open",
            Self::BudgetSpent => "budget-spent",
            Self::Egress => "egress",
            Self::CostCeiling => "cost-ceiling",
            Self::Spill => "spill",
            Self::Cascade => "cascade",
        }
    }
}

/// What to do with the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Answer with the local model; never call the endpoint.
    Local,
    /// Escalate without running the local model (it runs only if the call fails).
    Spill,
    /// Run the confidence cascade.
    Cascade,
}

/// A decision and its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The rule that decided.
    pub rule: Rule,
    /// What to do.
    pub action: Action,
    /// Why, for the routing record. For [`Action::Cascade`] this is only what the rules
    /// have to add (what was redacted, or nothing); the cascade's own reason follows it.
    pub reason: String,
}

const STAYS: &str = "stays on the box";

/// Decides what to do with a request.
pub fn decide(facts: &Facts) -> Decision {
    let decision = |rule, action, reason| Decision {
        rule,
        action,
        reason,
    };
    if facts.private {
        return decision(
            Rule::Private,
            Action::Local,
            format!("tagged private: {STAYS}"),
        );
    }
    let mut note = None;
    if !facts.personal.is_empty() {
        match facts.redact {
            Redact::Deny => {
                return decision(
                    Rule::PersonalData,
                    Action::Local,
                    format!("personal data ({}) {STAYS}", facts.personal.kinds()),
                );
            }
            Redact::Allow => note = Some(format!("redacted {}", facts.personal)),
        }
    }
    let (rule, action, reason) = whether_to_call(facts);
    let reason = match (note, reason.is_empty()) {
        (Some(note), true) => note,
        (Some(note), false) => format!("{note}; {reason}"),
        (None, _) => reason,
    };
    decision(rule, action, reason)
}

/// Rules 3 to 8, once the text may leave: whether calling the endpoint is wanted now.
fn whether_to_call(facts: &Facts) -> (Rule, Action, String) {
    if facts.circuit_open {
        return (
            Rule::CircuitOpen,
            Action::Local,
            format!("endpoint {} circuit open: {STAYS}", facts.endpoint),
        );
    }
    if let Some(w) = &facts.spent {
        let usd = |micro: u64| micro as f64 / 1e6;
        return (
            Rule::BudgetSpent,
            Action::Local,
            format!(
                "per-{} budget spent (${:.6} of ${:.6}): {STAYS}",
                w.window,
                usd(w.spent_micro_usd),
                usd(w.budget_micro_usd.unwrap_or(0))
            ),
        );
    }
    if facts.egress == Egress::Dear && facts.body_bytes > facts.max_egress_bytes {
        return (
            Rule::Egress,
            Action::Local,
            format!(
                "egress dear and body {} bytes > {}: {STAYS}",
                facts.body_bytes, facts.max_egress_bytes
            ),
        );
    }
    if let Some(ceiling) = facts.ceiling {
        match facts.escalation_usd {
            Some(cost) if cost > ceiling.usd => {
                return (
                    Rule::CostCeiling,
                    Action::Local,
                    format!(
                        "escalation would cost ${cost:.6} > ceiling ${:.6}: {STAYS}",
                        ceiling.usd
                    ),
                );
            }
            Some(_) => {}
            None => {
                return (
                    Rule::CostCeiling,
                    Action::Local,
                    format!(
                        "escalation cannot be priced (no price for endpoint {}) under \
                         ceiling ${:.6}: {STAYS}",
                        facts.endpoint, ceiling.usd
                    ),
                );
            }
        }
    }
    if facts.queue_depth >= facts.spill_queue_depth {
        return (
            Rule::Spill,
            Action::Spill,
            format!(
                "queue depth {} >= {}: spilled to serverless",
                facts.queue_depth, facts.spill_queue_depth
            ),
        );
    }
    (Rule::Cascade, Action::Cascade, String::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pii::Counts;
    use crate::settings::{Ceiling, CeilingSource, PolicySettings};
    use hybrid_guest::metadata::Metadata;
    use hybrid_guest::signals::WindowSpend;

    /// Facts on which no rule matches: a quiet box, a healthy endpoint, no ceiling.
    fn quiet() -> Facts {
        Facts {
            private: false,
            personal: Counts::default(),
            redact: Redact::Deny,
            endpoint: "strong".into(),
            circuit_open: false,
            spent: None,
            egress: Egress::Cheap,
            body_bytes: 300,
            max_egress_bytes: 4096,
            escalation_usd: Some(0.00013),
            ceiling: None,
            queue_depth: 0,
            spill_queue_depth: 16,
        }
    }

    fn decided(facts: &Facts) -> (Rule, Action, String) {
        let d = decide(facts);
        (d.rule, d.action, d.reason)
    }

    #[test]
    fn no_rule_matching_means_the_cascade() {
        assert_eq!(
            decided(&quiet()),
            (Rule::Cascade, Action::Cascade, String::new())
        );
    }

    #[test]
    fn private_stays_local_before_anything_else() {
        let facts = Facts {
            private: true,
            queue_depth: 99,
            circuit_open: true,
            ..quiet()
        };
        assert_eq!(
            decided(&facts),
            (
                Rule::Private,
                Action::Local,
                "tagged private: stays on the box".into()
            )
        );
    }

    #[test]
    fn personal_data_stays_local_when_denied() {
        let facts = Facts {
            personal: Counts {
                emails: 1,
                phones: 0,
                cards: 2,
            },
            ..quiet()
        };
        assert_eq!(
            decided(&facts),
            (
                Rule::PersonalData,
                Action::Local,
                "personal data (e-mail, card) stays on the box".into()
            )
        );
    }

    #[test]
    fn personal_data_allowed_is_noted_and_the_rules_go_on() {
        let personal = Counts {
            emails: 1,
            phones: 0,
            cards: 1,
        };
        let allowed = Facts {
            personal,
            redact: Redact::Allow,
            ..quiet()
        };
        assert_eq!(
            decided(&allowed),
            (
                Rule::Cascade,
                Action::Cascade,
                "redacted 1 e-mail, 1 card".into()
            )
        );
        let then_open = Facts {
            circuit_open: true,
            ..allowed
        };
        assert_eq!(
            decided(&then_open).2,
            "redacted 1 e-mail, 1 card; endpoint strong circuit open: stays on the box"
        );
    }

    #[test]
    fn an_open_circuit_stays_local() {
        let facts = Facts {
            circuit_open: true,
            ..quiet()
        };
        assert_eq!(
            decided(&facts),
            (
                Rule::CircuitOpen,
                Action::Local,
                "endpoint strong circuit open: stays on the box".into()
            )
        );
    }

    #[test]
    fn a_spent_budget_window_stays_local() {
        let facts = Facts {
            spent: Some(WindowSpend {
                window: "minute".into(),
                spent_micro_usd: 10_250,
                budget_micro_usd: Some(10_000),
            }),
            ..quiet()
        };
        assert_eq!(
            decided(&facts),
            (
                Rule::BudgetSpent,
                Action::Local,
                "per-minute budget spent ($0.010250 of $0.010000): stays on the box".into()
            )
        );
    }

    #[test]
    fn a_large_body_stays_local_only_when_egress_is_dear() {
        let large = Facts {
            body_bytes: 5000,
            ..quiet()
        };
        assert_eq!(decided(&large).0, Rule::Cascade, "cheap egress");
        let dear = Facts {
            egress: Egress::Dear,
            ..large
        };
        assert_eq!(
            decided(&dear),
            (
                Rule::Egress,
                Action::Local,
                "egress dear and body 5000 bytes > 4096: stays on the box".into()
            )
        );
        let at_limit = Facts {
            body_bytes: 4096,
            ..dear
        };
        assert_eq!(
            decided(&at_limit).0,
            Rule::Cascade,
            "at the limit may leave"
        );
    }

    #[test]
    fn an_escalation_over_the_ceiling_stays_local() {
        let over = Facts {
            ceiling: Some(Ceiling {
                usd: 0.0001,
                source: CeilingSource::Operator,
            }),
            ..quiet()
        };
        assert_eq!(
            decided(&over),
            (
                Rule::CostCeiling,
                Action::Local,
                "escalation would cost $0.000130 > ceiling $0.000100: stays on the box".into()
            )
        );
        let under = Facts {
            escalation_usd: Some(0.0001),
            ..over.clone()
        };
        assert_eq!(decided(&under).0, Rule::Cascade, "at the ceiling may go");
        let unpriced = Facts {
            escalation_usd: None,
            ..over
        };
        assert_eq!(decided(&unpriced).0, Rule::CostCeiling);
        assert_eq!(
            decided(&Facts {
                escalation_usd: None,
                ..quiet()
            })
            .0,
            Rule::Cascade,
            "no ceiling, no need for a price"
        );
    }

    #[test]
    fn the_clients_ceiling_lowers_but_never_raises_the_operators() {
        let facts_for = |items: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = items
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let settings = PolicySettings::from_metadata(&Metadata::new(&pairs)).expect("valid");
            Facts {
                ceiling: settings.ceiling,
                ..quiet()
            }
        };
        // The escalation costs $0.00013.
        let operator_allows = facts_for(&[("setting.max_cost_usd", "0.0002")]);
        assert_eq!(decided(&operator_allows).0, Rule::Cascade);
        let client_lowers = facts_for(&[
            ("setting.max_cost_usd", "0.0002"),
            ("max_cost_usd", "0.0001"),
        ]);
        assert_eq!(decided(&client_lowers).0, Rule::CostCeiling);
        let client_raises = facts_for(&[("setting.max_cost_usd", "0.0001"), ("max_cost_usd", "1")]);
        assert_eq!(
            decided(&client_raises).2,
            "escalation would cost $0.000130 > ceiling $0.000100: stays on the box"
        );
    }

    #[test]
    fn a_queue_at_the_spill_depth_spills_and_below_it_does_not() {
        let at = Facts {
            queue_depth: 2,
            spill_queue_depth: 2,
            ..quiet()
        };
        assert_eq!(
            decided(&at),
            (
                Rule::Spill,
                Action::Spill,
                "queue depth 2 >= 2: spilled to serverless".into()
            )
        );
        let below = Facts {
            queue_depth: 1,
            ..at
        };
        assert_eq!(decided(&below).0, Rule::Cascade);
        let always = Facts {
            spill_queue_depth: 0,
            ..quiet()
        };
        assert_eq!(decided(&always).0, Rule::Spill, "depth 0 always spills");
    }

    #[test]
    fn rules_that_keep_it_local_come_before_the_spill() {
        let busy = Facts {
            queue_depth: 50,
            ..quiet()
        };
        for facts in [
            Facts {
                circuit_open: true,
                ..busy.clone()
            },
            Facts {
                egress: Egress::Dear,
                body_bytes: 10_000,
                ..busy.clone()
            },
        ] {
            assert_eq!(decide(&facts).action, Action::Local);
        }
    }
}
