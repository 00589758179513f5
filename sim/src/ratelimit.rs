//! The account quota DigitalOcean reports on every answer: requests, tokens per minute and
//! tokens per day, each as `x-ratelimit-limit-*`, `x-ratelimit-remaining-*` and
//! `x-ratelimit-reset-*` (the reset being a Unix timestamp in seconds, as DigitalOcean
//! sends it). The simulator keeps fixed windows that open at the first request after the
//! previous one closed; a request over quota is answered 429 `too_many_requests`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use crate::scenario::Quota;

const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(86_400);

/// One fixed window: how much was used since it opened.
#[derive(Debug, Clone, Copy)]
struct Window {
    length: Duration,
    opened: Option<SystemTime>,
    used: u64,
}

impl Window {
    fn new(length: Duration) -> Self {
        Self {
            length,
            opened: None,
            used: 0,
        }
    }

    /// Closes the window if it has run out, so the next use opens a fresh one.
    fn roll(&mut self, now: SystemTime) {
        if let Some(opened) = self.opened
            && now.duration_since(opened).unwrap_or_default() >= self.length
        {
            self.opened = None;
            self.used = 0;
        }
    }

    fn charge(&mut self, now: SystemTime, amount: u64) {
        self.roll(now);
        self.opened.get_or_insert(now);
        self.used = self.used.saturating_add(amount);
    }

    /// Unix seconds at which the window refills: its end, or a second from now if no window
    /// is open (DigitalOcean's reset is always non-zero).
    fn reset_at(&self, now: SystemTime) -> u64 {
        let at = match self.opened {
            Some(opened) => opened + self.length,
            None => now + Duration::from_secs(1),
        };
        // Round up so a client waiting until the reset never retries early.
        let since_epoch = at.duration_since(UNIX_EPOCH).unwrap_or_default();
        since_epoch.as_secs() + u64::from(since_epoch.subsec_nanos() > 0)
    }
}

/// The quota in force and what has been used of it.
#[derive(Debug, Clone)]
pub struct QuotaState {
    quota: Quota,
    requests: Window,
    tokens_minute: Window,
    tokens_day: Window,
}

impl QuotaState {
    /// Fresh windows for a quota.
    pub fn new(quota: Quota) -> Self {
        Self {
            quota,
            requests: Window::new(MINUTE),
            tokens_minute: Window::new(MINUTE),
            tokens_day: Window::new(DAY),
        }
    }

    /// Counts one request; `Err` names the exhausted bucket when the request is over quota
    /// (a rejected request is not counted, like a token bucket that refuses to go negative).
    pub fn admit(&mut self, now: SystemTime) -> Result<(), &'static str> {
        self.requests.roll(now);
        self.tokens_minute.roll(now);
        self.tokens_day.roll(now);
        if self.requests.used >= self.quota.requests {
            return Err("requests");
        }
        if self.tokens_minute.used >= self.quota.tokens_per_minute {
            return Err("tokens per minute");
        }
        if self.tokens_day.used >= self.quota.tokens_per_day {
            return Err("tokens per day");
        }
        self.requests.charge(now, 1);
        Ok(())
    }

    /// Charges the tokens an answer used.
    pub fn charge_tokens(&mut self, now: SystemTime, tokens: u64) {
        self.tokens_minute.charge(now, tokens);
        self.tokens_day.charge(now, tokens);
    }

    /// Writes the nine `x-ratelimit-*` headers describing the quota after this request.
    pub fn write_headers(&mut self, now: SystemTime, headers: &mut HeaderMap) {
        let buckets = [
            ("requests", self.quota.requests, &mut self.requests),
            (
                "tokens-per-minute",
                self.quota.tokens_per_minute,
                &mut self.tokens_minute,
            ),
            (
                "tokens-per-day",
                self.quota.tokens_per_day,
                &mut self.tokens_day,
            ),
        ];
        for (name, limit, window) in buckets {
            window.roll(now);
            let remaining = limit.saturating_sub(window.used);
            let reset = window.reset_at(now);
            for (field, value) in [("limit", limit), ("remaining", remaining), ("reset", reset)] {
                if let Ok(header) = HeaderName::try_from(format!("x-ratelimit-{field}-{name}")) {
                    headers.insert(header, HeaderValue::from(value));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(requests: u64) -> Quota {
        Quota {
            requests,
            tokens_per_minute: 100,
            tokens_per_day: 1000,
        }
    }

    #[test]
    fn remaining_decrements_and_the_window_resets() {
        let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut state = QuotaState::new(quota(2));
        assert!(state.admit(start).is_ok());
        state.charge_tokens(start, 30);
        let mut headers = HeaderMap::new();
        state.write_headers(start, &mut headers);
        assert_eq!(headers["x-ratelimit-remaining-requests"], "1");
        assert_eq!(headers["x-ratelimit-remaining-tokens-per-minute"], "70");
        assert_eq!(headers["x-ratelimit-remaining-tokens-per-day"], "970");
        assert_eq!(headers["x-ratelimit-reset-requests"], "1700000060");
        assert!(state.admit(start).is_ok());
        assert_eq!(state.admit(start), Err("requests"));
        let later = start + Duration::from_secs(61);
        assert!(state.admit(later).is_ok());
    }

    #[test]
    fn token_quota_refuses_once_spent() {
        let now = UNIX_EPOCH + Duration::from_secs(10);
        let mut state = QuotaState::new(quota(100));
        assert!(state.admit(now).is_ok());
        state.charge_tokens(now, 100);
        assert_eq!(state.admit(now), Err("tokens per minute"));
    }
}
