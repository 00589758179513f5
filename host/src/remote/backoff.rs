//! How long to wait before retrying: exponential backoff with full jitter, or the
//! provider's `Retry-After` when it gave one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Backoff before retry number `retry` (0 for the first retry): a uniformly random
/// duration in `[0, min(max, base * 2^retry)]`, so retries from many requests spread out.
pub fn delay(retry: u32, base: Duration, max: Duration) -> Duration {
    let ceiling = base.saturating_mul(1u32 << retry.min(16)).min(max);
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(if nanos == 0 {
        0
    } else {
        random() % (nanos + 1)
    })
}

/// Parses a `Retry-After` header given in seconds (the form providers use for 429s).
/// HTTP-dates are not supported and yield `None`, which falls back to backoff.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

/// A cheap, lock-free pseudo-random number (splitmix64): jitter needs spread, not secrecy.
fn random() -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut z = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed) ^ seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_up_to_the_cap() {
        let base = Duration::from_millis(100);
        let max = Duration::from_millis(1000);
        for retry in 0..8 {
            let ceiling = (base * 2u32.pow(retry)).min(max);
            for _ in 0..50 {
                assert!(delay(retry, base, max) <= ceiling);
            }
        }
        // Jitter spreads: 50 draws are not all equal.
        let draws: Vec<_> = (0..50).map(|_| delay(3, base, max)).collect();
        assert!(draws.iter().any(|d| *d != draws[0]));
    }

    #[test]
    fn retry_after_in_seconds() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }
}
