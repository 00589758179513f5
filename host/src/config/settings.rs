//! A pipeline's operator settings: `[pipeline.settings]` in the config, handed to the
//! component with every request as metadata keys `setting.<key>`.
//!
//! Settings are how an operator tells a routing component what it may do (send redacted
//! personal data out, the cost ceiling, the egress price) without a rebuild. The host drops
//! any client-sent metadata key with the `setting.` prefix before adding the operator's, so a
//! component can trust every `setting.*` key it sees.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The metadata prefix reserved for operator settings.
pub const PREFIX: &str = "setting.";

/// One setting's value as written in TOML: a string, number or boolean, passed to the
/// guest as its text.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum SettingValue {
    /// `redact = "allow"`.
    Text(String),
    /// `spill_queue_depth = 8`.
    Integer(i64),
    /// `threshold = 0.9`.
    Float(f64),
    /// `strict = true`.
    Flag(bool),
}

impl SettingValue {
    /// The value as the guest reads it.
    pub fn text(&self) -> String {
        match self {
            Self::Text(s) => s.clone(),
            Self::Integer(n) => n.to_string(),
            Self::Float(x) => x.to_string(),
            Self::Flag(b) => b.to_string(),
        }
    }
}

/// A pipeline's settings, by key.
pub type Settings = BTreeMap<String, SettingValue>;

/// Checks that every key is lower-case ASCII letters, digits, `_`, `-` or `.` (metadata
/// keys are lower-case), naming the first that is not.
pub fn validate(settings: &Settings) -> Result<(), String> {
    for key in settings.keys() {
        let ok = !key.is_empty()
            && key.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.')
            });
        if !ok {
            return Err(format!(
                "setting {key:?} must be lower-case ASCII letters, digits, '_', '-' or '.'"
            ));
        }
    }
    Ok(())
}

/// The metadata a component sees: the client's pairs without any `setting.*` key, then the
/// operator's settings as `setting.<key>`.
pub fn apply(settings: &Settings, client: &[(String, String)]) -> Vec<(String, String)> {
    client
        .iter()
        .filter(|(k, _)| !k.starts_with(PREFIX))
        .cloned()
        .chain(
            settings
                .iter()
                .map(|(k, v)| (format!("{PREFIX}{k}"), v.text())),
        )
        .collect()
}

/// Whether `apply` would change `client`: settings to add or client keys to drop.
pub fn changes(settings: &Settings, client: &[(String, String)]) -> bool {
    !settings.is_empty() || client.iter().any(|(k, _)| k.starts_with(PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn clients_cannot_set_settings_and_operators_values_arrive_as_text() {
        let settings: Settings = toml::from_str(
            "redact = \"allow\"\nspill_queue_depth = 8\nthreshold = 0.9\nstrict = true",
        )
        .expect("parses");
        let client = pairs(&[("threshold", "0.5"), ("setting.redact", "deny")]);
        assert!(changes(&settings, &client));
        assert_eq!(
            apply(&settings, &client),
            pairs(&[
                ("threshold", "0.5"),
                ("setting.redact", "allow"),
                ("setting.spill_queue_depth", "8"),
                ("setting.strict", "true"),
                ("setting.threshold", "0.9"),
            ])
        );
        let none = Settings::new();
        assert!(!changes(&none, &pairs(&[("threshold", "0.5")])));
        assert_eq!(apply(&none, &client), pairs(&[("threshold", "0.5")]));
    }

    #[test]
    fn keys_must_be_lower_case() {
        let settings: Settings = toml::from_str("Redact = \"allow\"").expect("parses");
        assert!(
            validate(&settings)
                .expect_err("refused")
                .contains("\"Redact\"")
        );
        let settings: Settings = toml::from_str("max_cost_usd = 0.001").expect("parses");
        assert!(validate(&settings).is_ok());
    }
}
