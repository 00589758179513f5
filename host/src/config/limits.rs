//! Per-request limits of a pipeline beyond its deadline and memory cap: how many
//! serverless calls, local model runs, log lines and logged bytes one request may make,
//! how large its answer may be, how much CPU it may burn in fuel, and how many core
//! instances and table elements its sandbox may hold. A request that goes past one ends
//! with an error naming the limit (HTTP 500, code `limit_exceeded`) and
//! `hybrid_limit_hits_total{pipeline,limit}` counts it; the call that would go past it is
//! refused (a log line past a log limit is dropped), so nothing beyond the limit is spent.
//!
//! Fuel is the one limit with an engine-wide cost: metering is compiled into every
//! component's code, so it is on only when some pipeline sets `limits.fuel` (or
//! `[runtime] fuel = true`); BENCHMARKS.md has what it costs on the VAD pipeline.

use serde::Deserialize;

/// `limits = { remote_calls = 32, model_runs = 1024, response_bytes = 16777216, ... }`;
/// every key is optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Serverless calls (`remote.*`) per request.
    pub remote_calls: u32,
    /// Local model runs per request: `local.run`, and `wasi:nn` `compute` and `load`.
    pub model_runs: u32,
    /// Bytes of the answer's body.
    pub response_bytes: u64,
    /// Lines a request may log (`log.log` calls, whatever their level).
    pub log_lines: u32,
    /// Bytes a request may log, counted before each message is cut at 4 KiB.
    pub log_bytes: u64,
    /// Fuel per request: a deterministic CPU budget (about one unit per WebAssembly
    /// instruction), unlike the deadline, which is wall-clock time. Unset: unmetered.
    pub fuel: Option<u64>,
    /// Core WebAssembly instances one request's sandbox may create (a Rust component is
    /// a handful; a Python one a few dozen at most).
    pub instances: u32,
    /// Elements each of the sandbox's tables may grow to.
    pub table_elements: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            remote_calls: 32,
            model_runs: 1024,
            response_bytes: 16 << 20,
            log_lines: 1000,
            log_bytes: 256 << 10,
            fuel: None,
            instances: 64,
            table_elements: 100_000,
        }
    }
}

impl Limits {
    /// Refuses zero limits, which would make the pipeline unusable.
    pub fn validate(&self) -> Result<(), String> {
        if self.model_runs == 0
            || self.response_bytes == 0
            || self.instances == 0
            || self.table_elements == 0
            || self.fuel == Some(0)
        {
            return Err(
                "limits.model_runs, response_bytes, instances, table_elements and \
                 fuel must be > 0 (limits.remote_calls, log_lines and log_bytes may be 0: \
                 no serverless calls or no logging at all)"
                    .to_owned(),
            );
        }
        Ok(())
    }

    /// The configured value of `limit`, for messages (`u64::MAX` for unmetered fuel).
    pub fn max(&self, limit: Limit) -> u64 {
        match limit {
            Limit::RemoteCalls => self.remote_calls.into(),
            Limit::ModelRuns => self.model_runs.into(),
            Limit::ResponseBytes => self.response_bytes,
            Limit::LogLines => self.log_lines.into(),
            Limit::LogBytes => self.log_bytes,
            Limit::Fuel => self.fuel.unwrap_or(u64::MAX),
            Limit::Instances => self.instances.into(),
            Limit::TableElements => self.table_elements.into(),
        }
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
    /// `limits.log_lines`.
    LogLines,
    /// `limits.log_bytes`.
    LogBytes,
    /// `limits.fuel`.
    Fuel,
    /// `limits.instances`.
    Instances,
    /// `limits.table_elements`.
    TableElements,
}

impl Limit {
    /// The limit's name in the config and in metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::RemoteCalls => "remote_calls",
            Self::ModelRuns => "model_runs",
            Self::ResponseBytes => "response_bytes",
            Self::LogLines => "log_lines",
            Self::LogBytes => "log_bytes",
            Self::Fuel => "fuel",
            Self::Instances => "instances",
            Self::TableElements => "table_elements",
        }
    }

    /// What it counts, for messages.
    pub fn unit(self) -> &'static str {
        match self {
            Self::RemoteCalls => "serverless calls",
            Self::ModelRuns => "local model runs",
            Self::ResponseBytes => "response bytes",
            Self::LogLines => "log lines",
            Self::LogBytes => "logged bytes",
            Self::Fuel => "units of fuel",
            Self::Instances => "core instances",
            Self::TableElements => "table elements",
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
        assert!(toml::from_str::<Limits>("cpu = 3").is_err());
        let fuel: Limits = toml::from_str("fuel = 5_000_000").expect("parses");
        assert_eq!(fuel.fuel, Some(5_000_000));
        assert_eq!(fuel.max(Limit::Fuel), 5_000_000);
        assert!(
            toml::from_str::<Limits>("fuel = 0")
                .expect("parses")
                .validate()
                .is_err()
        );
        assert_eq!(Limits::default().max(Limit::Fuel), u64::MAX);
    }
}
