//! Recent outcomes of an endpoint's calls, for the `signals` interface and metrics: error
//! rate and median latency over a sliding window of calls, and the provider's last
//! reported rate-limit headroom.

use std::collections::VecDeque;
use std::time::Duration;

/// Calls remembered per endpoint.
const WINDOW: usize = 100;

/// The provider's rate-limit headers from the latest response
/// (`x-ratelimit-remaining-requests` and friends).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimits {
    /// Requests left in the current window.
    pub remaining_requests: Option<u64>,
    /// Tokens left this minute.
    pub remaining_tokens_per_minute: Option<u64>,
    /// Tokens left today.
    pub remaining_tokens_per_day: Option<u64>,
}

impl RateLimits {
    /// Reads the headers DigitalOcean (and OpenAI, for requests) send.
    pub fn from_headers(get: impl Fn(&str) -> Option<String>) -> Self {
        let num = |name: &str| get(name).and_then(|v| v.trim().parse().ok());
        Self {
            remaining_requests: num("x-ratelimit-remaining-requests"),
            remaining_tokens_per_minute: num("x-ratelimit-remaining-tokens-per-minute")
                .or_else(|| num("x-ratelimit-remaining-tokens")),
            remaining_tokens_per_day: num("x-ratelimit-remaining-tokens-per-day"),
        }
    }

    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Sliding-window statistics of one endpoint.
#[derive(Debug, Default)]
pub struct Health {
    outcomes: VecDeque<(bool, Duration)>,
    rate_limits: RateLimits,
}

impl Health {
    /// Records one finished call.
    pub fn record(&mut self, success: bool, latency: Duration) {
        if self.outcomes.len() == WINDOW {
            self.outcomes.pop_front();
        }
        self.outcomes.push_back((success, latency));
    }

    /// Remembers rate-limit headers, if the response had any.
    pub fn rate_limited_by(&mut self, limits: RateLimits) {
        if !limits.is_empty() {
            self.rate_limits = limits;
        }
    }

    /// Fraction of remembered calls that failed.
    pub fn error_rate(&self) -> f32 {
        if self.outcomes.is_empty() {
            return 0.0;
        }
        let failed = self.outcomes.iter().filter(|(ok, _)| !ok).count();
        failed as f32 / self.outcomes.len() as f32
    }

    /// Median latency of remembered successful calls, zero when there are none.
    pub fn median_latency(&self) -> Duration {
        let mut ok: Vec<Duration> = self
            .outcomes
            .iter()
            .filter(|(s, _)| *s)
            .map(|(_, d)| *d)
            .collect();
        if ok.is_empty() {
            return Duration::ZERO;
        }
        ok.sort();
        ok[ok.len() / 2]
    }

    /// The latest rate-limit headroom.
    pub fn rate_limits(&self) -> RateLimits {
        self.rate_limits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_rate_and_median_over_a_sliding_window() {
        let mut h = Health::default();
        assert_eq!((h.error_rate(), h.median_latency()), (0.0, Duration::ZERO));
        for ms in [10, 30, 20] {
            h.record(true, Duration::from_millis(ms));
        }
        h.record(false, Duration::from_millis(999));
        assert_eq!(h.error_rate(), 0.25);
        assert_eq!(h.median_latency(), Duration::from_millis(20));
        for _ in 0..WINDOW {
            h.record(true, Duration::from_millis(5));
        }
        assert_eq!(h.error_rate(), 0.0);
    }

    #[test]
    fn parses_rate_limit_headers() {
        let limits = RateLimits::from_headers(|name| match name {
            "x-ratelimit-remaining-requests" => Some("41".into()),
            "x-ratelimit-remaining-tokens-per-day" => Some(" 9000 ".into()),
            _ => None,
        });
        assert_eq!(limits.remaining_requests, Some(41));
        assert_eq!(limits.remaining_tokens_per_day, Some(9000));
        assert_eq!(limits.remaining_tokens_per_minute, None);
    }
}
