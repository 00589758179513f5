//! Fault injection: decides, per fault-eligible request, how long to wait and whether to
//! misbehave, then builds the misbehaviour.
//!
//! The decision takes, in order: the next scripted `sequence` step; an active or starting
//! 429 burst; one RNG draw against the cumulative `hang`, `drop`, `error`, `malformed` rates;
//! then the always-on `oversize_bytes` and `wrong_content_type`. [`crate::damage`] builds
//! the misbehaving answers.

use std::time::Duration;

use crate::scenario::{DEFAULT_OVERSIZE_BYTES, Distribution, Latency, Scenario, Step};

/// One injected misbehaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status with an OpenAI error body instead of running the route.
    Status(u16),
    /// Answer 429, with `Retry-After` when the seconds are given.
    RateLimited(Option<u64>),
    /// Never answer.
    Hang,
    /// Send the headers and half the body, then cut the connection.
    Drop,
    /// 200 with the answer's JSON cut short.
    Malformed,
    /// 200 with the answer padded to this many bytes of valid JSON.
    Oversize(usize),
    /// 200 with an HTML page.
    WrongContentType,
}

impl Fault {
    /// The name counted in `/sim/stats` under `faults`.
    pub fn kind(&self) -> String {
        match self {
            Fault::Status(code) => format!("status_{code}"),
            Fault::RateLimited(_) => "rate_limited".into(),
            Fault::Hang => "hang".into(),
            Fault::Drop => "drop".into(),
            Fault::Malformed => "malformed".into(),
            Fault::Oversize(_) => "oversize".into(),
            Fault::WrongContentType => "wrong_content_type".into(),
        }
    }

    /// Whether the route runs first and its response is then damaged.
    pub fn corrupts_answer(&self) -> bool {
        matches!(
            self,
            Fault::Drop | Fault::Malformed | Fault::Oversize(_) | Fault::WrongContentType
        )
    }
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Added latency before answering.
    pub delay: Duration,
    /// The fault, if any.
    pub fault: Option<Fault>,
}

/// The scenario in force plus the state its decisions advance: RNG, sequence cursor and
/// burst counters. Replacing the scenario resets all of them.
#[derive(Debug)]
pub struct FaultState {
    scenario: Scenario,
    rng: fastrand::Rng,
    cursor: usize,
    eligible_seen: u64,
    burst_left: u64,
}

impl FaultState {
    /// Starts a scenario from its first step with a freshly seeded RNG.
    pub fn new(scenario: Scenario) -> Self {
        Self {
            rng: fastrand::Rng::with_seed(scenario.seed),
            scenario,
            cursor: 0,
            eligible_seen: 0,
            burst_left: 0,
        }
    }

    /// The scenario in force.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// Whether faults apply to this path.
    pub fn applies_to(&self, path: &str) -> bool {
        if self.scenario.routes.is_empty() {
            path.starts_with("/v1/")
        } else {
            self.scenario
                .routes
                .iter()
                .any(|r| path.starts_with(r.as_str()))
        }
    }

    /// Decides the latency and fault of the next fault-eligible request.
    pub fn decide(&mut self) -> Decision {
        let delay = self.draw_latency();
        self.eligible_seen += 1;
        let fault = self.next_fault();
        Decision { delay, fault }
    }

    fn next_fault(&mut self) -> Option<Fault> {
        let s = &self.scenario;
        let retry_after = s.rate_limit.as_ref().and_then(|b| b.retry_after_s);
        if let Some(step) = s.sequence.get(self.cursor).copied() {
            self.cursor += 1;
            return match step {
                Step::Ok => None,
                Step::Status(429) => Some(Fault::RateLimited(retry_after)),
                Step::Status(code) => Some(Fault::Status(code)),
                Step::Hang => Some(Fault::Hang),
                Step::Drop => Some(Fault::Drop),
                Step::Malformed => Some(Fault::Malformed),
                Step::Oversize => Some(Fault::Oversize(
                    s.oversize_bytes.unwrap_or(DEFAULT_OVERSIZE_BYTES),
                )),
                Step::WrongContentType => Some(Fault::WrongContentType),
            };
        }
        if let Some(burst) = &s.rate_limit {
            // Scripted requests count too, so "every Nth request" means every Nth eligible one.
            if self.eligible_seen.is_multiple_of(burst.burst_every) {
                self.burst_left = burst.burst_len;
            }
            if self.burst_left > 0 {
                self.burst_left -= 1;
                return Some(Fault::RateLimited(retry_after));
            }
        }
        // One draw against cumulative bands keeps the rates exact and mutually exclusive.
        let draw = self.rng.f64();
        let mut band = 0.0;
        let bands = [
            (s.hang_rate, Fault::Hang),
            (s.drop_rate, Fault::Drop),
            (s.error_rate, Fault::Status(0)),
            (s.malformed_rate, Fault::Malformed),
        ];
        for (rate, fault) in bands {
            band += rate;
            if draw < band {
                return Some(match fault {
                    Fault::Status(_) => Fault::Status(self.error_status()),
                    other => other,
                });
            }
        }
        if let Some(bytes) = s.oversize_bytes {
            return Some(Fault::Oversize(bytes));
        }
        if s.wrong_content_type {
            return Some(Fault::WrongContentType);
        }
        None
    }

    fn error_status(&mut self) -> u16 {
        match self.scenario.error_status {
            Some(status) => status,
            None => [500, 502, 503][self.rng.usize(0..3)],
        }
    }

    fn draw_latency(&mut self) -> Duration {
        let ms = match (&self.scenario.latency, self.scenario.latency_ms) {
            (Some(latency), _) => sample_latency(latency, &mut self.rng),
            (None, Some(ms)) => ms,
            (None, None) => 0,
        };
        Duration::from_millis(ms)
    }
}

/// Draws one latency in milliseconds from a validated distribution.
fn sample_latency(latency: &Latency, rng: &mut fastrand::Rng) -> u64 {
    let min = latency.min_ms.unwrap_or(0);
    let max = latency.max_ms.unwrap_or(u64::MAX);
    match latency.distribution {
        Distribution::Fixed => latency.median_ms.unwrap_or(min),
        Distribution::Uniform => rng.u64(min..=max),
        Distribution::Lognormal => {
            // ln(X) ~ N(mu, sigma): the median is e^mu and the 99th percentile e^(mu + z99*sigma).
            const Z99: f64 = 2.326_347_874;
            let median = latency.median_ms.unwrap_or(1).max(1) as f64;
            let p99 = latency.p99_ms.unwrap_or(1).max(1) as f64;
            let mu = median.ln();
            let sigma = (p99.ln() - mu) / Z99;
            let ms = (mu + sigma * standard_normal(rng)).exp();
            (ms.round() as u64).clamp(min, max)
        }
    }
}

/// A standard normal sample by the Box-Muller transform (no `rand_distr` needed).
fn standard_normal(rng: &mut fastrand::Rng) -> f64 {
    let u1 = 1.0 - rng.f64(); // in (0, 1], so the logarithm is finite
    let u2 = rng.f64();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::RateLimitBurst;

    #[test]
    fn sequence_then_fallback() {
        let scenario = Scenario {
            sequence: vec![
                Step::Status(503),
                Step::Status(500),
                Step::Ok,
                Step::Status(429),
            ],
            ..Scenario::default()
        };
        let mut state = FaultState::new(scenario);
        let faults: Vec<_> = (0..5).map(|_| state.decide().fault).collect();
        assert_eq!(
            faults,
            [
                Some(Fault::Status(503)),
                Some(Fault::Status(500)),
                None,
                Some(Fault::RateLimited(None)),
                None
            ]
        );
    }

    #[test]
    fn bursts_start_every_nth_request() {
        let scenario = Scenario {
            rate_limit: Some(RateLimitBurst {
                burst_every: 3,
                burst_len: 2,
                retry_after_s: Some(7),
            }),
            ..Scenario::default()
        };
        let mut state = FaultState::new(scenario);
        let limited: Vec<bool> = (0..8).map(|_| state.decide().fault.is_some()).collect();
        assert_eq!(
            limited,
            [false, false, true, true, false, true, true, false]
        );
    }

    #[test]
    fn rates_are_seeded_and_roughly_right() {
        let scenario = Scenario {
            seed: 7,
            error_rate: 0.25,
            error_status: Some(502),
            ..Scenario::default()
        };
        let run = || {
            let mut state = FaultState::new(scenario.clone());
            (0..400).map(|_| state.decide().fault).collect::<Vec<_>>()
        };
        let first = run();
        assert_eq!(first, run(), "same seed, same faults");
        let errors = first
            .iter()
            .filter(|f| **f == Some(Fault::Status(502)))
            .count();
        assert!((60..140).contains(&errors), "about a quarter, got {errors}");
    }

    #[test]
    fn lognormal_latency_stays_in_bounds_with_the_right_median() {
        let latency = Latency {
            distribution: Distribution::Lognormal,
            median_ms: Some(40),
            p99_ms: Some(400),
            min_ms: Some(5),
            max_ms: Some(2000),
        };
        let mut rng = fastrand::Rng::with_seed(1);
        let mut samples: Vec<u64> = (0..2001)
            .map(|_| sample_latency(&latency, &mut rng))
            .collect();
        samples.sort_unstable();
        assert!(samples.iter().all(|ms| (5..=2000).contains(ms)));
        let median = samples[1000];
        assert!((30..=50).contains(&median), "median {median}");
    }
}
