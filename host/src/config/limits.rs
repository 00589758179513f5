//! Per-request limits of a pipeline beyond its deadline and memory cap: how many
//! serverless calls and local model runs one request may make, and how large its answer
//! may be. A request that goes past one ends with an error naming the limit (HTTP 500,
//! code `limit_exceeded`) and `hybrid_limit_hits_total{pipeline,limit}` counts it; the
//! call that would go past it is refused, so nothing beyond the limit is spent.

use serde::Deserialize;

/// `limits = { remote_calls = 32, model_runs = 1024, response_bytes = 16777216 }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Serverless calls (`remote.*`) per request.
    pub remote_calls: u32,
    /// Local model runs per request: `local.run`, and `wasi:nn` `compute` and `load`.
    pub model_runs: u32,
    /// Bytes of the answer's body.
    pub response_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            remote_calls: 32,
            model_runs: 1024,
            response_bytes: 16 << 20,
        }
    }
}

impl Limits {
    /// Refuses zero limits, which would make the pipeline unusable.
    pub fn validate(&self) -> Result<(), String> {
        if self.model_runs == 0 || self.response_bytes == 0 {
            return Err("limits.model_runs and limits.response_bytes must be > 0 \
                 (limits.remote_calls may be 0: no serverless calls at all)"
                .to_owned());
        }
        Ok(())
    }
}

/// Which limit a request went past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `limits.remote_calls`.
    RemoteCalls,
    /// `limits.model_runs`.
    ModelRuns,
    /// `limits.response_bytes`.
    ResponseBytes,
}

impl Limit {
    /// The limit's name in the config and in metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::RemoteCalls => "remote_calls",
            Self::ModelRuns => "model_runs",
            Self::ResponseBytes => "response_bytes",
        }
    }

    /// What it counts, for messages.
    pub fn unit(self) -> &'static str {
        match self {
            Self::RemoteCalls => "serverless calls",
            Self::ModelRuns => "local model runs",
            Self::ResponseBytes => "response bytes",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_partial_tables() {
        let l: Limits = toml::from_str("remote_calls = 2").expect("parses");
        assert_eq!(l.remote_calls, 2);
        assert_eq!(l.model_runs, Limits::default().model_runs);
        assert!(l.validate().is_ok());
        let zero: Limits = toml::from_str("model_runs = 0").expect("parses");
        assert!(zero.validate().is_err());
        assert!(toml::from_str::<Limits>("fuel = 3").is_err());
    }
}
