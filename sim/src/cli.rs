//! The `hybrid-sim` command line. Flags mirror the scenario's main fields and override the
//! `--scenario` file field by field, so a file can hold the usual faults and a flag can
//! tweak one for a single run. `--classify` loads a labelled workload that turns chat
//! completions into a classification stand-in ([`crate::classify`]).

use std::path::PathBuf;

use clap::Parser;

use crate::auth::ApiKey;
use crate::classify::{Classifier, DEFAULT_ACCURACY};
use crate::config::{DEFAULT_EMBEDDING_DIM, DEFAULT_MODELS, SimConfig};
use crate::scenario::{RateLimitBurst, Scenario, Step};
use crate::server::SimError;

/// Serverless-inference simulator: the DigitalOcean / OpenAI-compatible API on loopback,
/// with deterministic answers and scripted faults.
#[derive(Debug, Parser)]
#[command(name = "hybrid-sim", version)]
pub struct Cli {
    /// Address to listen on; port 0 picks a free port (the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:8089")]
    pub listen: String,

    /// The API key clients must send as a bearer token. Prefer --api-key-env: a flag shows
    /// up in process listings.
    #[arg(long, conflicts_with = "no_auth")]
    pub api_key: Option<String>,

    /// Environment variable holding the API key, read when --api-key is not given.
    #[arg(long, default_value = "HYBRID_SIM_KEY")]
    pub api_key_env: String,

    /// Serve without checking the Authorization header.
    #[arg(long)]
    pub no_auth: bool,

    /// Model ids to list and accept, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_MODELS.iter().map(|m| m.to_string()))]
    pub models: Vec<String>,

    /// Length of embedding vectors.
    #[arg(long, default_value_t = DEFAULT_EMBEDDING_DIM)]
    pub embedding_dim: usize,

    /// Fault scenario file, TOML or JSON (by extension `.json`).
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,

    /// Seed of the fault RNG.
    #[arg(long)]
    pub seed: Option<u64>,

    /// Fixed added latency per request, in milliseconds.
    #[arg(long)]
    pub latency_ms: Option<u64>,

    /// Delay between streamed chunks, in milliseconds.
    #[arg(long)]
    pub token_delay_ms: Option<u64>,

    /// Fraction of requests answered with a 5xx.
    #[arg(long)]
    pub error_rate: Option<f64>,

    /// Status of injected errors (default: 500, 502 or 503 at random).
    #[arg(long)]
    pub error_status: Option<u16>,

    /// Fraction of requests never answered.
    #[arg(long)]
    pub hang_rate: Option<f64>,

    /// Fraction of requests whose connection is cut mid-body.
    #[arg(long)]
    pub drop_rate: Option<f64>,

    /// Fraction of requests answered 200 with invalid JSON.
    #[arg(long)]
    pub malformed_rate: Option<f64>,

    /// Pad every healthy answer to this many bytes of valid JSON.
    #[arg(long)]
    pub oversize_bytes: Option<usize>,

    /// Answer every healthy request with a 200 text/html page.
    #[arg(long)]
    pub wrong_content_type: bool,

    /// Scripted answers for the first requests, comma-separated: ok, a status such as 503,
    /// hang, drop, malformed, oversize, wrong_content_type.
    #[arg(long, value_delimiter = ',', value_parser = parse_step)]
    pub sequence: Option<Vec<Step>>,

    /// Path (exact or prefix) faults apply to; repeatable. Default: every /v1/ route.
    #[arg(long, value_delimiter = ',')]
    pub fault_route: Vec<String>,

    /// Every Nth request starts a burst of 429s.
    #[arg(long)]
    pub burst_every: Option<u64>,

    /// Length of each 429 burst.
    #[arg(long, default_value_t = 1, requires = "burst_every")]
    pub burst_len: u64,

    /// Retry-After seconds sent with burst (and scripted) 429s.
    #[arg(long, requires = "burst_every")]
    pub retry_after_s: Option<u64>,

    /// Quota: requests per minute.
    #[arg(long)]
    pub quota_requests: Option<u64>,

    /// Quota: tokens per minute.
    #[arg(long)]
    pub quota_tokens_per_minute: Option<u64>,

    /// Quota: tokens per day.
    #[arg(long)]
    pub quota_tokens_per_day: Option<u64>,

    /// Labelled JSONL workload (`{"body": ..., "label": ...}` a line): chat prompts carrying
    /// an example's numbers are answered with its label, right at --classify-accuracy.
    #[arg(long, value_name = "FILE")]
    pub classify: Option<PathBuf>,

    /// Probability (0..=1) that a classification answer is the true label [default: 0.98].
    #[arg(long, value_name = "F", requires = "classify")]
    pub classify_accuracy: Option<f64>,
}

fn parse_step(text: &str) -> Result<Step, String> {
    text.parse()
}

impl Cli {
    /// The configuration and listen address these arguments describe.
    pub fn into_config(self) -> Result<(SimConfig, String), SimError> {
        let api_key = if self.no_auth {
            None
        } else {
            let from_env = || std::env::var(&self.api_key_env).ok().and_then(ApiKey::new);
            let key = self.api_key.clone().and_then(ApiKey::new).or_else(from_env);
            Some(key.ok_or_else(|| SimError::NoApiKey {
                env: self.api_key_env.clone(),
            })?)
        };
        let scenario = self.scenario()?;
        let classifier = match &self.classify {
            Some(path) => Some(Classifier::load(
                path,
                self.classify_accuracy.unwrap_or(DEFAULT_ACCURACY),
            )?),
            None => None,
        };
        let models: Vec<String> = self
            .models
            .iter()
            .map(|m| m.trim().to_owned())
            .filter(|m| !m.is_empty())
            .collect();
        let config = SimConfig {
            api_key,
            models,
            embedding_dim: self.embedding_dim,
            scenario,
            classifier,
        };
        Ok((config, self.listen))
    }

    /// The scenario file (or the empty scenario) with the flags applied over it.
    fn scenario(&self) -> Result<Scenario, SimError> {
        let mut s = match &self.scenario {
            Some(path) => Scenario::load(path)?,
            None => Scenario::default(),
        };
        let set = |field: &mut f64, value: Option<f64>| {
            if let Some(value) = value {
                *field = value;
            }
        };
        set(&mut s.error_rate, self.error_rate);
        set(&mut s.hang_rate, self.hang_rate);
        set(&mut s.drop_rate, self.drop_rate);
        set(&mut s.malformed_rate, self.malformed_rate);
        s.seed = self.seed.unwrap_or(s.seed);
        s.latency_ms = self.latency_ms.or(s.latency_ms);
        s.token_delay_ms = self.token_delay_ms.unwrap_or(s.token_delay_ms);
        s.error_status = self.error_status.or(s.error_status);
        s.oversize_bytes = self.oversize_bytes.or(s.oversize_bytes);
        s.wrong_content_type |= self.wrong_content_type;
        if let Some(sequence) = &self.sequence {
            s.sequence = sequence.clone();
        }
        if !self.fault_route.is_empty() {
            s.routes = self.fault_route.clone();
        }
        if let Some(burst_every) = self.burst_every {
            s.rate_limit = Some(RateLimitBurst {
                burst_every,
                burst_len: self.burst_len,
                retry_after_s: self.retry_after_s,
            });
        }
        s.quota.requests = self.quota_requests.unwrap_or(s.quota.requests);
        s.quota.tokens_per_minute = self
            .quota_tokens_per_minute
            .unwrap_or(s.quota.tokens_per_minute);
        s.quota.tokens_per_day = self.quota_tokens_per_day.unwrap_or(s.quota.tokens_per_day);
        s.validate()?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_build_a_scenario() {
        let cli = Cli::parse_from([
            "hybrid-sim",
            "--no-auth",
            "--sequence",
            "503,503,ok",
            "--error-rate",
            "0.1",
            "--burst-every",
            "5",
            "--retry-after-s",
            "2",
            "--models",
            "a,b",
        ]);
        let (config, listen) = cli.into_config().expect("valid flags");
        assert_eq!(listen, "127.0.0.1:8089");
        assert!(config.api_key.is_none());
        assert_eq!(config.models, ["a", "b"]);
        assert_eq!(
            config.scenario.sequence,
            [Step::Status(503), Step::Status(503), Step::Ok]
        );
        assert_eq!(config.scenario.error_rate, 0.1);
        assert_eq!(
            config
                .scenario
                .rate_limit
                .map(|b| (b.burst_every, b.burst_len, b.retry_after_s)),
            Some((5, 1, Some(2)))
        );
    }

    #[test]
    fn missing_key_is_an_error() {
        let cli = Cli::parse_from(["hybrid-sim", "--api-key-env", "HYBRID_SIM_TEST_UNSET_VAR"]);
        assert!(matches!(cli.into_config(), Err(SimError::NoApiKey { .. })));
    }

    #[test]
    fn classify_flags_load_the_workload() {
        let path =
            std::env::temp_dir().join(format!("hybrid-sim-cli-{}.jsonl", std::process::id()));
        std::fs::write(&path, "{\"body\":[1,2],\"label\":\"a\"}\n").expect("temp file");
        let path_arg = path.display().to_string();
        let parse = |extra: &[&str]| {
            let args = ["hybrid-sim", "--no-auth", "--classify", &path_arg];
            Cli::parse_from(args.iter().chain(extra)).into_config()
        };
        let default = parse(&[]).expect("valid flags").0.classifier;
        assert_eq!(default.map(|c| c.accuracy()), Some(DEFAULT_ACCURACY));
        let set = parse(&["--classify-accuracy", "0.5"]).expect("valid flags");
        assert_eq!(set.0.classifier.map(|c| c.accuracy()), Some(0.5));
        assert!(matches!(
            parse(&["--classify-accuracy", "1.5"]),
            Err(SimError::Classify(_))
        ));
        let _ = std::fs::remove_file(&path);
        assert!(
            Cli::try_parse_from(["hybrid-sim", "--no-auth", "--classify-accuracy", "0.5"]).is_err()
        );
    }

    #[test]
    fn bad_flags_are_refused() {
        assert!(Cli::try_parse_from(["hybrid-sim", "--sequence", "teapot"]).is_err());
        let cli = Cli::parse_from(["hybrid-sim", "--no-auth", "--error-rate", "2"]);
        assert!(cli.into_config().is_err());
    }
}
