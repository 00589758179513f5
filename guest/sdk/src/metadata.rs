//! Reading request metadata: the client's keys (from `x-hybrid-*` headers or query
//! parameters) and the operator's settings, which the host adds from the pipeline's
//! `[pipeline.settings]` as keys prefixed [`SETTING_PREFIX`] after dropping any client key
//! with that prefix, so a `setting.*` key can be trusted. When a key repeats, its last
//! value wins; values are trimmed. The typed readers return `bad-request` errors naming
//! the key and the values it accepts.

use crate::{Error, Request};

/// The prefix of the operator's settings among the metadata keys.
pub const SETTING_PREFIX: &str = "setting.";

/// A view of a request's metadata pairs.
#[derive(Debug, Clone, Copy)]
pub struct Metadata<'a> {
    pairs: &'a [(String, String)],
}

impl<'a> Metadata<'a> {
    /// A view of `pairs`.
    pub fn new(pairs: &'a [(String, String)]) -> Self {
        Self { pairs }
    }

    /// A view of `request`'s metadata.
    pub fn of(request: &'a Request) -> Self {
        Self::new(&request.metadata)
    }

    /// The last value of `key`, trimmed.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
    }

    /// The last value of `key` as a non-empty string.
    pub fn text(&self, key: &str) -> Result<Option<&'a str>, Error> {
        match self.get(key) {
            Some("") => Err(Error::bad_request(format!(
                "metadata {key:?} is empty: give a value or leave the key out"
            ))),
            other => Ok(other),
        }
    }

    /// The last value of `key` as a number in `min..=max`.
    pub fn number(&self, key: &str, min: f64, max: f64) -> Result<Option<f64>, Error> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        match value.parse::<f64>() {
            Ok(n) if n.is_finite() && (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(Error::bad_request(format!(
                "metadata {key:?} must be a number from {} to {}, got {value:?}",
                show(min),
                show(max)
            ))),
        }
    }

    /// The last value of `key` as a non-negative number (no upper bound).
    pub fn non_negative(&self, key: &str) -> Result<Option<f64>, Error> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        match value.parse::<f64>() {
            Ok(n) if n.is_finite() && n >= 0.0 => Ok(Some(n)),
            _ => Err(Error::bad_request(format!(
                "metadata {key:?} must be a number of 0 or more, got {value:?}"
            ))),
        }
    }

    /// The last value of `key` as a whole number from 0 to `max`.
    pub fn whole(&self, key: &str, max: u64) -> Result<Option<u64>, Error> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        match value.parse::<u64>() {
            Ok(n) if n <= max => Ok(Some(n)),
            _ => Err(Error::bad_request(format!(
                "metadata {key:?} must be a whole number from 0 to {max}, got {value:?}"
            ))),
        }
    }

    /// The last value of `key` as one of `choices` (compared without regard to ASCII
    /// case), mapped to its value.
    pub fn choice<T: Copy>(&self, key: &str, choices: &[(&str, T)]) -> Result<Option<T>, Error> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        choices
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(value))
            .map(|&(_, v)| Some(v))
            .ok_or_else(|| {
                let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
                Error::bad_request(format!(
                    "metadata {key:?} must be {}, got {value:?}",
                    names.join(" or ")
                ))
            })
    }
}

/// The metadata key of operator setting `name`: `setting.<name>`.
pub fn setting(name: &str) -> String {
    format!("{SETTING_PREFIX}{name}")
}

/// `1`, `0.5`: a bound as a person writes it.
fn show(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.1}")
    } else {
        x.to_string()
    }
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
    fn the_last_value_wins_and_is_trimmed() {
        let p = pairs(&[("threshold", "0.2"), ("threshold", " 0.7 ")]);
        let m = Metadata::new(&p);
        assert_eq!(m.get("threshold"), Some("0.7"));
        assert_eq!(m.number("threshold", 0.0, 1.0), Ok(Some(0.7)));
        assert_eq!(m.get("absent"), None);
        assert_eq!(setting("redact"), "setting.redact");
    }

    #[test]
    fn errors_name_the_key_and_the_accepted_values() {
        let p = pairs(&[
            ("threshold", "1.5"),
            ("setting.fallback", "maybe"),
            ("setting.max_egress_bytes", "-3"),
            ("max_cost_usd", "NaN"),
            ("setting.endpoint", " "),
        ]);
        let m = Metadata::new(&p);
        let message = |e: Error| e.to_string();
        assert_eq!(
            message(m.number("threshold", 0.0, 1.0).expect_err("range")),
            "bad-request: metadata \"threshold\" must be a number from 0.0 to 1.0, got \"1.5\""
        );
        assert_eq!(
            message(
                m.choice("setting.fallback", &[("local", 0), ("error", 1)])
                    .expect_err("choice")
            ),
            "bad-request: metadata \"setting.fallback\" must be local or error, got \"maybe\""
        );
        assert!(
            message(
                m.whole("setting.max_egress_bytes", 100)
                    .expect_err("negative")
            )
            .contains("whole number from 0 to 100, got \"-3\"")
        );
        assert!(
            message(m.non_negative("max_cost_usd").expect_err("nan"))
                .contains("\"max_cost_usd\" must be a number of 0 or more")
        );
        assert!(
            message(m.text("setting.endpoint").expect_err("empty"))
                .contains("\"setting.endpoint\" is empty")
        );
    }

    #[test]
    fn choices_ignore_ascii_case() {
        let p = pairs(&[("route", "REMOTE")]);
        let m = Metadata::new(&p);
        assert_eq!(
            m.choice("route", &[("local", 1), ("remote", 2)]),
            Ok(Some(2))
        );
        assert_eq!(m.choice("other", &[("local", 1)]), Ok(None));
    }
}
