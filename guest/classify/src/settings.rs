//! The settings both digits components read, from request metadata
//! ([`hybrid_guest::metadata`]):
//!
//! | key | who | values | default |
//! |---|---|---|---|
//! | `setting.model` | operator | a loaded model's name | [`DEFAULT_MODEL`] |
//! | `setting.endpoint` | operator | a configured chat endpoint | [`DEFAULT_ENDPOINT`] |
//! | `setting.threshold` | operator | 0.0 to 1.0 | [`DEFAULT_THRESHOLD`] |
//! | `threshold` | client | 0.0 to 1.0, overrides `setting.threshold` | |
//! | `setting.fallback` | operator | `local` or `error` | `local` |
//! | `route` | client (cascade only) | `auto`, `local` or `remote` | `auto` |
//!
//! The threshold is the lowest top probability at which the local model's answer stands;
//! below it the request is escalated. The client may move it either way: it trades its
//! own latency and cost for accuracy, and the policy component guards the operator's
//! limits separately. `route` forces the cascade's choice, to measure all-local and
//! all-remote accuracy; the policy component does not read it.

use hybrid_guest::Error;
use hybrid_guest::metadata::{Metadata, setting};

/// The local model used unless `setting.model` names another.
pub const DEFAULT_MODEL: &str = "digits-v1";
/// The serverless chat endpoint escalations go to unless `setting.endpoint` names another.
pub const DEFAULT_ENDPOINT: &str = "strong";
/// The confidence threshold unless the client or the operator sets one.
pub const DEFAULT_THRESHOLD: f64 = 0.9;

/// What to do when an escalation fails (any remote error, or a reply without a digit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// Answer with the local model's result; the routing reason says the escalation failed.
    Local,
    /// Fail the request with `upstream` (502), naming the endpoint's error.
    Error,
}

/// Which way the cascade goes, as the client asks with `route`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// By confidence against the threshold.
    Auto,
    /// Always answer locally; never call the endpoint.
    Local,
    /// Always escalate (the local model still runs, for the fallback and the body).
    Remote,
}

/// The settings of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The local model to run.
    pub model: String,
    /// The serverless chat endpoint to escalate to.
    pub endpoint: String,
    /// Lowest top probability at which the local answer stands, 0.0 to 1.0.
    pub threshold: f64,
    /// What to do when the escalation fails.
    pub fallback: Fallback,
}

impl Settings {
    /// Reads the settings from `metadata`.
    pub fn from_metadata(metadata: &Metadata<'_>) -> Result<Self, Error> {
        let model = metadata
            .text(&setting("model"))?
            .unwrap_or(DEFAULT_MODEL)
            .to_owned();
        let endpoint = metadata
            .text(&setting("endpoint"))?
            .unwrap_or(DEFAULT_ENDPOINT)
            .to_owned();
        // Both are validated, so a bad operator value is reported even when overridden.
        let operator = metadata.number(&setting("threshold"), 0.0, 1.0)?;
        let client = metadata.number("threshold", 0.0, 1.0)?;
        let threshold = client.or(operator).unwrap_or(DEFAULT_THRESHOLD);
        let fallback = metadata
            .choice(
                &setting("fallback"),
                &[("local", Fallback::Local), ("error", Fallback::Error)],
            )?
            .unwrap_or(Fallback::Local);
        Ok(Self {
            model,
            endpoint,
            threshold,
            fallback,
        })
    }
}

impl Route {
    /// Reads the client's `route` from `metadata`.
    pub fn from_metadata(metadata: &Metadata<'_>) -> Result<Self, Error> {
        Ok(metadata
            .choice(
                "route",
                &[
                    ("auto", Route::Auto),
                    ("local", Route::Local),
                    ("remote", Route::Remote),
                ],
            )?
            .unwrap_or(Route::Auto))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(items: &[(&str, &str)]) -> Result<Settings, Error> {
        let pairs: Vec<(String, String)> = items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_metadata(&Metadata::new(&pairs))
    }

    #[test]
    fn defaults() {
        assert_eq!(
            read(&[]),
            Ok(Settings {
                model: "digits-v1".into(),
                endpoint: "strong".into(),
                threshold: 0.9,
                fallback: Fallback::Local,
            })
        );
    }

    #[test]
    fn the_client_threshold_overrides_the_operators() {
        let s = read(&[
            ("setting.threshold", "0.8"),
            ("setting.endpoint", "big"),
            ("setting.fallback", "error"),
        ])
        .expect("valid");
        assert_eq!(
            (s.threshold, s.endpoint.as_str(), s.fallback),
            (0.8, "big", Fallback::Error)
        );
        let s = read(&[("setting.threshold", "0.8"), ("threshold", "0.99")]).expect("valid");
        assert_eq!(s.threshold, 0.99);
    }

    #[test]
    fn invalid_values_are_bad_requests_naming_the_key() {
        let e = read(&[("threshold", "high")]).expect_err("not a number");
        assert!(
            e.message()
                .contains("\"threshold\" must be a number from 0.0 to 1.0")
        );
        let e = read(&[("setting.threshold", "2"), ("threshold", "0.5")]).expect_err("operator");
        assert!(e.message().contains("\"setting.threshold\""));
        let e = read(&[("setting.fallback", "retry")]).expect_err("fallback");
        assert!(e.message().contains("must be local or error"));
        let pairs = [("route".to_owned(), "cloud".to_owned())];
        let e = Route::from_metadata(&Metadata::new(&pairs)).expect_err("route");
        assert!(
            e.message()
                .contains("\"route\" must be auto or local or remote")
        );
    }
}
