//! The policy's settings, read from request metadata on top of the cascade's
//! ([`classify::settings`]: model, endpoint, threshold, fallback):
//!
//! | key | who | values | default |
//! |---|---|---|---|
//! | `setting.redact` | operator | `deny` or `allow` | `deny` |
//! | `setting.egress` | operator | `cheap` or `dear` | `cheap` |
//! | `setting.max_egress_bytes` | operator | bytes, 0 to 2^32 - 1 | 4096 |
//! | `setting.spill_queue_depth` | operator | queued requests, 0 to 2^32 - 1 | 16 |
//! | `setting.max_cost_usd` | operator | US dollars per escalation, 0 or more | none |
//! | `max_cost_usd` | client | US dollars; lowers the operator's ceiling only | none |
//! | `private` | client | `true` or `false` | `false` |
//!
//! With `redact=deny` personal data in the text keeps the request on the box; with
//! `allow` the text leaves with it replaced by placeholders. With `dear` egress (a metered
//! link), bodies larger than `max_egress_bytes` stay local. From `spill_queue_depth`
//! requests waiting on the box, work spills to serverless (0: always).
//!
//! The client's `route` is not read: a client must not be able to force its data out past
//! the operator's rules.

use classify::settings::Settings;
use hybrid_guest::Error;
use hybrid_guest::metadata::{Metadata, setting};

/// `setting.max_egress_bytes` unless set.
pub const DEFAULT_MAX_EGRESS_BYTES: u64 = 4096;
/// `setting.spill_queue_depth` unless set.
pub const DEFAULT_SPILL_QUEUE_DEPTH: u32 = 16;

/// What to do with personal data found in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redact {
    /// Keep the request on the box.
    Deny,
    /// Let the text leave with the personal data replaced by placeholders.
    Allow,
}

/// What bytes leaving the box cost the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Egress {
    /// Little: body size does not matter.
    Cheap,
    /// Much (a metered link): bodies over `max_egress_bytes` stay local.
    Dear,
}

/// Who set the cost ceiling in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeilingSource {
    /// `setting.max_cost_usd`.
    Operator,
    /// The client's `max_cost_usd`, lower than the operator's (or the only one).
    Client,
}

/// The most one escalation may cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ceiling {
    /// US dollars.
    pub usd: f64,
    /// Who set it.
    pub source: CeilingSource,
}

/// The settings of one policy request.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicySettings {
    /// Model, endpoint, threshold and fallback, as the cascade reads them.
    pub cascade: Settings,
    /// What to do with personal data.
    pub redact: Redact,
    /// What egress costs.
    pub egress: Egress,
    /// Largest body that may leave when egress is dear, in bytes.
    pub max_egress_bytes: u64,
    /// Queue depth from which requests spill to serverless.
    pub spill_queue_depth: u32,
    /// The cost ceiling in force, if any.
    pub ceiling: Option<Ceiling>,
    /// Whether the client tagged the request private.
    pub private: bool,
}

impl PolicySettings {
    /// Reads the settings from `metadata`.
    pub fn from_metadata(metadata: &Metadata<'_>) -> Result<Self, Error> {
        let cascade = Settings::from_metadata(metadata)?;
        let redact = metadata
            .choice(
                &setting("redact"),
                &[("deny", Redact::Deny), ("allow", Redact::Allow)],
            )?
            .unwrap_or(Redact::Deny);
        let egress = metadata
            .choice(
                &setting("egress"),
                &[("cheap", Egress::Cheap), ("dear", Egress::Dear)],
            )?
            .unwrap_or(Egress::Cheap);
        let max_egress_bytes = metadata
            .whole(&setting("max_egress_bytes"), u64::from(u32::MAX))?
            .unwrap_or(DEFAULT_MAX_EGRESS_BYTES);
        let spill_queue_depth = metadata
            .whole(&setting("spill_queue_depth"), u64::from(u32::MAX))?
            .map_or(DEFAULT_SPILL_QUEUE_DEPTH, |n| n as u32);
        let ceiling = ceiling(
            metadata.non_negative(&setting("max_cost_usd"))?,
            metadata.non_negative("max_cost_usd")?,
        );
        let private = metadata
            .choice("private", &[("true", true), ("false", false)])?
            .unwrap_or(false);
        Ok(Self {
            cascade,
            redact,
            egress,
            max_egress_bytes,
            spill_queue_depth,
            ceiling,
            private,
        })
    }
}

/// The ceiling in force given the operator's and the client's: the lower of the two. A
/// client may set one where the operator set none, and lower the operator's, but a
/// client's higher value is ignored.
pub fn ceiling(operator: Option<f64>, client: Option<f64>) -> Option<Ceiling> {
    let of = |usd, source| Some(Ceiling { usd, source });
    match (operator, client) {
        (Some(o), Some(c)) if c < o => of(c, CeilingSource::Client),
        (Some(o), _) => of(o, CeilingSource::Operator),
        (None, Some(c)) => of(c, CeilingSource::Client),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(items: &[(&str, &str)]) -> Result<PolicySettings, Error> {
        let pairs: Vec<(String, String)> = items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        PolicySettings::from_metadata(&Metadata::new(&pairs))
    }

    #[test]
    fn defaults_keep_personal_data_home_and_set_no_ceiling() {
        let s = read(&[]).expect("valid");
        assert_eq!(
            (s.redact, s.egress, s.max_egress_bytes, s.spill_queue_depth),
            (Redact::Deny, Egress::Cheap, 4096, 16)
        );
        assert_eq!((s.ceiling, s.private), (None, false));
        assert_eq!(s.cascade.endpoint, "strong");
    }

    #[test]
    fn operator_settings_are_read() {
        let s = read(&[
            ("setting.redact", "allow"),
            ("setting.egress", "dear"),
            ("setting.max_egress_bytes", "100"),
            ("setting.spill_queue_depth", "0"),
            ("setting.max_cost_usd", "0.0001"),
            ("private", "TRUE"),
        ])
        .expect("valid");
        assert_eq!(
            (s.redact, s.egress, s.max_egress_bytes, s.spill_queue_depth),
            (Redact::Allow, Egress::Dear, 100, 0)
        );
        assert_eq!(
            s.ceiling,
            Some(Ceiling {
                usd: 0.0001,
                source: CeilingSource::Operator
            })
        );
        assert!(s.private);
    }

    #[test]
    fn a_client_may_lower_the_ceiling_but_not_raise_it() {
        let lowered = read(&[
            ("setting.max_cost_usd", "0.001"),
            ("max_cost_usd", "0.0005"),
        ]);
        assert_eq!(
            lowered.expect("valid").ceiling,
            Some(Ceiling {
                usd: 0.0005,
                source: CeilingSource::Client
            })
        );
        let raised = read(&[("setting.max_cost_usd", "0.001"), ("max_cost_usd", "5")]);
        assert_eq!(
            raised.expect("valid").ceiling,
            Some(Ceiling {
                usd: 0.001,
                source: CeilingSource::Operator
            })
        );
        let own = read(&[("max_cost_usd", "0.002")]).expect("valid");
        assert_eq!(own.ceiling.map(|c| c.source), Some(CeilingSource::Client));
    }

    #[test]
    fn invalid_values_name_the_key_and_the_choices() {
        let message = |items: &[(&str, &str)]| read(items).expect_err("invalid").to_string();
        assert!(
            message(&[("setting.redact", "maybe")])
                .contains("\"setting.redact\" must be deny or allow")
        );
        assert!(message(&[("setting.egress", "free")]).contains("must be cheap or dear"));
        assert!(message(&[("setting.max_egress_bytes", "1.5")]).contains("whole number"));
        assert!(
            message(&[("setting.spill_queue_depth", "-1")])
                .contains("\"setting.spill_queue_depth\"")
        );
        assert!(
            message(&[("max_cost_usd", "-0.01")])
                .contains("\"max_cost_usd\" must be a number of 0 or more")
        );
        assert!(message(&[("private", "yes")]).contains("\"private\" must be true or false"));
    }
}
