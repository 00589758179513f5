//! The fault scenario: which faults the simulator injects, how often, and in what scripted
//! order. One schema serves the `--scenario` file (TOML or JSON), the command-line flags and
//! `POST /sim/scenario`, so a test can describe its faults once and send them anywhere.
//!
//! Every field is optional and the default is "no faults": an empty scenario makes a
//! well-behaved server. A scenario is validated when loaded, so a typo in a fault test fails
//! at setup rather than silently injecting nothing (unknown fields are rejected too).

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Body size used by an `"oversize"` sequence step when `oversize_bytes` is not set.
pub const DEFAULT_OVERSIZE_BYTES: usize = 4 << 20;

/// A fault scenario; `sim/README.md` tabulates the fields and `scenarios/flaky.toml` uses them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// Seed of the RNG that draws latencies and probabilistic faults; replacing the scenario
    /// reseeds it, so the same scenario gives the same faults in the same order.
    pub seed: u64,
    /// Fixed added latency before every answer, in milliseconds.
    pub latency_ms: Option<u64>,
    /// Random added latency before every answer; wins over `latency_ms` when both are set.
    pub latency: Option<Latency>,
    /// Delay between streamed chat chunks, in milliseconds.
    pub token_delay_ms: u64,
    /// Fraction of requests (0..=1) answered with a server error.
    pub error_rate: f64,
    /// Status of those errors; when unset the RNG picks 500, 502 or 503.
    pub error_status: Option<u16>,
    /// Periodic bursts of 429 answers.
    pub rate_limit: Option<RateLimitBurst>,
    /// Fraction of requests accepted and never answered (until the simulator shuts down).
    pub hang_rate: f64,
    /// Fraction of requests whose connection is cut after the headers and half the body.
    pub drop_rate: f64,
    /// Fraction of requests answered 200 with a truncated, invalid JSON body.
    pub malformed_rate: f64,
    /// When set, every otherwise healthy answer is padded to this many bytes of valid JSON.
    pub oversize_bytes: Option<usize>,
    /// When true, every otherwise healthy answer is a 200 `text/html` page.
    pub wrong_content_type: bool,
    /// Scripted answers for the next requests, in order (`["503", "503", "ok"]`); once
    /// exhausted the probabilistic faults above apply.
    pub sequence: Vec<Step>,
    /// Paths the faults apply to (exact or prefix, e.g. `/v1/chat/completions`); empty means
    /// every `/v1/` route. Requests to other routes are answered normally.
    pub routes: Vec<String>,
    /// The account quota behind the `x-ratelimit-*` headers; exceeding it answers 429.
    pub quota: Quota,
}

/// Random latency, drawn per request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Latency {
    /// Shape of the distribution.
    pub distribution: Distribution,
    /// Lower bound (uniform) or clamp (lognormal), in milliseconds.
    pub min_ms: Option<u64>,
    /// Upper bound (uniform) or clamp (lognormal), in milliseconds.
    pub max_ms: Option<u64>,
    /// The delay (fixed) or the median (lognormal), in milliseconds.
    pub median_ms: Option<u64>,
    /// The 99th percentile (lognormal), in milliseconds.
    pub p99_ms: Option<u64>,
}

/// Latency distribution shapes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Distribution {
    /// Always `median_ms` (or `min_ms`).
    #[default]
    Fixed,
    /// Uniform between `min_ms` and `max_ms`.
    Uniform,
    /// Log-normal with the given `median_ms` and `p99_ms`, clamped to `min_ms..=max_ms`.
    Lognormal,
}

/// Every `burst_every`-th request starts `burst_len` consecutive 429 answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitBurst {
    /// Period of the bursts, counted in fault-eligible requests (>= 1).
    pub burst_every: u64,
    /// Number of consecutive 429s in each burst (>= 1).
    #[serde(default = "one")]
    pub burst_len: u64,
    /// `Retry-After` seconds sent with each 429; no header when unset.
    #[serde(default)]
    pub retry_after_s: Option<u64>,
}

fn one() -> u64 {
    1
}

/// Account quota, as DigitalOcean reports it in `x-ratelimit-*` headers. Windows are fixed:
/// a minute for requests and tokens per minute, a day for tokens per day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Quota {
    /// Requests per minute.
    pub requests: u64,
    /// Prompt plus completion tokens per minute.
    pub tokens_per_minute: u64,
    /// Prompt plus completion tokens per day.
    pub tokens_per_day: u64,
}

impl Default for Quota {
    /// Generous enough that no test trips it by accident.
    fn default() -> Self {
        Self {
            requests: 10_000,
            tokens_per_minute: 10_000_000,
            tokens_per_day: 1_000_000_000,
        }
    }
}

/// One scripted answer in a `sequence`. Written as a string (`"ok"`, `"503"`, `"hang"`,
/// `"drop"`, `"malformed"`, `"oversize"`, `"wrong_content_type"`) or, in JSON, as a bare
/// status number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StepRepr", into = "String")]
pub enum Step {
    /// Answer normally.
    Ok,
    /// Answer with this status and an OpenAI error body (429 also gets `Retry-After` from
    /// `rate_limit.retry_after_s`).
    Status(u16),
    /// Never answer.
    Hang,
    /// Cut the connection mid-body.
    Drop,
    /// 200 with invalid JSON.
    Malformed,
    /// 200 with a valid body of `oversize_bytes` (default [`DEFAULT_OVERSIZE_BYTES`]).
    Oversize,
    /// 200 with a `text/html` page.
    WrongContentType,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StepRepr {
    Status(u16),
    Text(String),
}

impl TryFrom<StepRepr> for Step {
    type Error = String;

    fn try_from(repr: StepRepr) -> Result<Self, Self::Error> {
        match repr {
            StepRepr::Status(code) => Step::status(code),
            StepRepr::Text(text) => text.parse(),
        }
    }
}

impl FromStr for Step {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "ok" => Ok(Step::Ok),
            "hang" => Ok(Step::Hang),
            "drop" => Ok(Step::Drop),
            "malformed" => Ok(Step::Malformed),
            "oversize" => Ok(Step::Oversize),
            "wrong_content_type" => Ok(Step::WrongContentType),
            other => match other.parse::<u16>() {
                Ok(code) => Step::status(code),
                Err(_) => Err(format!(
                    "unknown sequence step {other:?}; expected ok, a status such as \"503\", \
                     hang, drop, malformed, oversize or wrong_content_type"
                )),
            },
        }
    }
}

impl Step {
    fn status(code: u16) -> Result<Self, String> {
        match code {
            200 => Ok(Step::Ok),
            400..=599 => Ok(Step::Status(code)),
            _ => Err(format!("sequence status {code} must be 200 or 400..=599")),
        }
    }
}

impl From<Step> for String {
    fn from(step: Step) -> Self {
        step.to_string()
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Ok => f.write_str("ok"),
            Step::Status(code) => write!(f, "{code}"),
            Step::Hang => f.write_str("hang"),
            Step::Drop => f.write_str("drop"),
            Step::Malformed => f.write_str("malformed"),
            Step::Oversize => f.write_str("oversize"),
            Step::WrongContentType => f.write_str("wrong_content_type"),
        }
    }
}

/// Why a scenario was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The scenario file could not be read.
    #[error("reading scenario {path:?}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The text is not a scenario in TOML or JSON.
    #[error("parsing scenario: {0}")]
    Parse(String),
    /// The scenario parses but makes no sense.
    #[error("invalid scenario: {0}")]
    Invalid(String),
}

impl Scenario {
    /// Loads and validates a scenario file: `.json` is JSON, anything else TOML.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let is_json = path.extension().is_some_and(|ext| ext == "json");
        if is_json {
            Self::from_json(&text)
        } else {
            Self::from_toml(&text)
        }
    }

    /// Parses and validates a TOML scenario.
    pub fn from_toml(text: &str) -> Result<Self, ScenarioError> {
        let scenario: Self =
            toml::from_str(text).map_err(|e| ScenarioError::Parse(e.to_string()))?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Parses and validates a JSON scenario.
    pub fn from_json(text: &str) -> Result<Self, ScenarioError> {
        let scenario: Self =
            serde_json::from_str(text).map_err(|e| ScenarioError::Parse(e.to_string()))?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Checks ranges and combinations that serde cannot.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let invalid = |msg: String| Err(ScenarioError::Invalid(msg));
        let rates = [
            ("error_rate", self.error_rate),
            ("hang_rate", self.hang_rate),
            ("drop_rate", self.drop_rate),
            ("malformed_rate", self.malformed_rate),
        ];
        for (name, rate) in rates {
            if !(0.0..=1.0).contains(&rate) {
                return invalid(format!("{name} must be within 0..=1, got {rate}"));
            }
        }
        let total: f64 = rates.iter().map(|(_, rate)| rate).sum();
        if total > 1.0 + 1e-9 {
            return invalid(format!(
                "error_rate + hang_rate + drop_rate + malformed_rate must not exceed 1, got {total}"
            ));
        }
        if let Some(status) = self.error_status
            && !(400..=599).contains(&status)
        {
            return invalid(format!(
                "error_status must be within 400..=599, got {status}"
            ));
        }
        if let Some(burst) = &self.rate_limit
            && (burst.burst_every == 0 || burst.burst_len == 0)
        {
            return invalid("rate_limit.burst_every and burst_len must be at least 1".into());
        }
        if let Some(latency) = &self.latency {
            latency.validate()?;
        }
        if let Some(route) = self.routes.iter().find(|r| !r.starts_with('/')) {
            return invalid(format!(
                "routes entries are paths starting with '/', got {route:?}"
            ));
        }
        if self.quota.requests == 0
            || self.quota.tokens_per_minute == 0
            || self.quota.tokens_per_day == 0
        {
            return invalid("quota limits must be at least 1".into());
        }
        Ok(())
    }
}

impl Latency {
    fn validate(&self) -> Result<(), ScenarioError> {
        let invalid = |msg: &str| Err(ScenarioError::Invalid(format!("latency: {msg}")));
        if let (Some(min), Some(max)) = (self.min_ms, self.max_ms)
            && min > max
        {
            return invalid("min_ms must not exceed max_ms");
        }
        match self.distribution {
            Distribution::Fixed if self.median_ms.is_none() && self.min_ms.is_none() => {
                invalid("fixed needs median_ms")
            }
            Distribution::Uniform if self.min_ms.is_none() || self.max_ms.is_none() => {
                invalid("uniform needs min_ms and max_ms")
            }
            Distribution::Lognormal => match (self.median_ms, self.p99_ms) {
                (Some(median), Some(p99)) if median > 0 && p99 >= median => Ok(()),
                _ => invalid("lognormal needs median_ms > 0 and p99_ms >= median_ms"),
            },
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_scenario_is_fault_free() {
        let scenario = Scenario::from_toml("").expect("empty parses");
        assert_eq!(scenario, Scenario::default());
        assert!(scenario.sequence.is_empty());
    }

    #[test]
    fn sequence_accepts_strings_and_numbers() {
        let scenario = Scenario::from_json(r#"{"sequence": ["503", 502, "ok", "hang", "drop"]}"#)
            .expect("parses");
        assert_eq!(
            scenario.sequence,
            [
                Step::Status(503),
                Step::Status(502),
                Step::Ok,
                Step::Hang,
                Step::Drop
            ]
        );
        let back = serde_json::to_value(&scenario.sequence).expect("serialises");
        assert_eq!(
            back,
            serde_json::json!(["503", "502", "ok", "hang", "drop"])
        );
    }

    #[test]
    fn bad_scenarios_are_refused() {
        assert!(Scenario::from_toml("error_rate = 1.5").is_err());
        assert!(Scenario::from_toml("error_rate = 0.6\nhang_rate = 0.6").is_err());
        assert!(Scenario::from_toml("sequence = [\"teapot\"]").is_err());
        assert!(Scenario::from_toml("sequence = [\"302\"]").is_err());
        assert!(Scenario::from_toml("eror_rate = 0.1").is_err());
        assert!(Scenario::from_toml("[rate_limit]\nburst_every = 0").is_err());
        assert!(Scenario::from_toml("[latency]\ndistribution = \"uniform\"\nmin_ms = 5").is_err());
    }

    #[test]
    fn example_file_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/flaky.toml");
        let scenario = Scenario::load(&path).expect("flaky.toml is valid");
        assert!(!scenario.sequence.is_empty());
    }
}
