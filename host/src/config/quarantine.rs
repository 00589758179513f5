//! `quarantine = { ... }` on a `[[pipeline]]`: when its component keeps failing, stop
//! instantiating it for a while (outlier ejection, as Envoy does for upstream hosts).
//!
//! After `after` consecutive requests in which the component misbehaved (a trap, the
//! deadline, the memory cap or another per-request limit), the pipeline's requests are
//! answered 503 with `Retry-After` at once, without running anything, for
//! `cool_down_ms`; then one request at a time is let through as a probe. See
//! [`crate::runtime::quarantine`] for the state machine.

use std::time::Duration;

use serde::Deserialize;

/// When a failing pipeline is quarantined and for how long.
///
/// ```toml
/// [[pipeline]]
/// name = "echo"
/// quarantine = { after = 5, cool_down_ms = 30000 }   # the defaults; after = 0 turns it off
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuarantineConfig {
    /// Consecutive failing requests (traps, deadlines, memory cap and other limit hits)
    /// that quarantine the pipeline; a request the component answers resets the count.
    /// 0 never quarantines it.
    pub after: u32,
    /// How long a quarantined pipeline refuses requests before one is let through as a
    /// probe, in milliseconds; a failing probe starts the cool-down over.
    pub cool_down_ms: u64,
}

impl Default for QuarantineConfig {
    fn default() -> Self {
        Self {
            after: 5,
            cool_down_ms: 30_000,
        }
    }
}

impl QuarantineConfig {
    /// The cool-down.
    pub fn cool_down(&self) -> Duration {
        Duration::from_millis(self.cool_down_ms)
    }

    /// Whether failures can quarantine the pipeline at all.
    pub fn enabled(&self) -> bool {
        self.after > 0
    }

    /// Refuses a zero cool-down when quarantine is on (every request would be a probe).
    pub fn validate(&self) -> Result<(), String> {
        if self.enabled() && self.cool_down_ms == 0 {
            return Err(
                "quarantine.cool_down_ms must be > 0 (use quarantine.after = 0 to turn quarantine off)"
                    .to_owned(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_a_partial_table_and_zero_turns_it_off() {
        let q: QuarantineConfig = toml::from_str("after = 3").expect("parses");
        assert_eq!((q.after, q.cool_down_ms), (3, 30_000));
        assert!(q.validate().is_ok());
        let off: QuarantineConfig = toml::from_str("after = 0\ncool_down_ms = 0").expect("parses");
        assert!(!off.enabled());
        assert!(off.validate().is_ok());
        let zero: QuarantineConfig = toml::from_str("cool_down_ms = 0").expect("parses");
        assert!(
            zero.validate()
                .expect_err("refused")
                .contains("cool_down_ms")
        );
        let typo = toml::from_str::<QuarantineConfig>("afer = 3").expect_err("typo");
        assert!(typo.to_string().contains("afer"), "{typo}");
    }
}
