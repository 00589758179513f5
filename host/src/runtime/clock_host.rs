//! The host side of the WIT `clock` interface: a monotonic clock and the time left
//! before the request's deadline.

use std::sync::OnceLock;
use std::time::Instant;

use super::bindings::clock;

/// Per-request context for `clock`.
pub struct ClockCtx {
    deadline: Instant,
}

impl ClockCtx {
    /// A clock for a request that must finish by `deadline`.
    pub fn new(deadline: Instant) -> Self {
        Self { deadline }
    }

    /// When the request must be done.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

/// The process-wide origin of `clock.now`: readings are nanoseconds since first use.
fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

impl clock::Host for ClockCtx {
    fn now(&mut self) -> u64 {
        u64::try_from(origin().elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn remaining(&mut self) -> u64 {
        let left = self.deadline.saturating_duration_since(Instant::now());
        u64::try_from(left.as_nanos()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clock::Host;
    use std::time::Duration;

    #[test]
    fn now_is_monotonic_and_remaining_counts_down_to_zero() {
        let mut ctx = ClockCtx::new(Instant::now() + Duration::from_secs(60));
        let a = ctx.now();
        let b = ctx.now();
        assert!(b >= a);
        let left = ctx.remaining();
        assert!(left > 0 && left <= 60_000_000_000);
        let mut past = ClockCtx::new(Instant::now() - Duration::from_secs(1));
        assert_eq!(past.remaining(), 0);
    }
}
