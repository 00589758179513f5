//! A circuit breaker per endpoint: after `threshold` consecutive failed calls the circuit
//! opens and calls fail fast for `open_for`; then one probe call is let through
//! (half-open). A successful probe closes the circuit, a failed one opens it again.
//!
//! Failing fast matters on an edge box: a dead endpoint must not tie up workers for a
//! full timeout per request, and routing policies read the state to go local instead.

use std::time::{Duration, Instant};

/// The breaker's state as routing policies see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    /// Calls flow.
    Closed,
    /// Calls fail fast.
    Open,
    /// One probe is allowed (or in flight).
    HalfOpen,
}

/// What the breaker allows for the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// A normal call.
    Call,
    /// The one probe of a half-open circuit.
    Probe,
}

/// Consecutive-failure circuit breaker.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    open_for: Duration,
    failures: u32,
    opened_at: Option<Instant>,
    probing: bool,
}

impl Breaker {
    /// A closed breaker that opens after `threshold` consecutive failures.
    pub fn new(threshold: u32, open_for: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            open_for,
            failures: 0,
            opened_at: None,
            probing: false,
        }
    }

    /// The state at `now`.
    pub fn state(&self, now: Instant) -> CircuitState {
        match self.opened_at {
            None => CircuitState::Closed,
            Some(at) if now.duration_since(at) >= self.open_for => CircuitState::HalfOpen,
            Some(_) => CircuitState::Open,
        }
    }

    /// How long until an open circuit lets a probe through; `None` unless it is open.
    pub fn cool_down_left(&self, now: Instant) -> Option<Duration> {
        match (self.state(now), self.opened_at) {
            (CircuitState::Open, Some(at)) => {
                Some(self.open_for.saturating_sub(now.duration_since(at)))
            }
            _ => None,
        }
    }

    /// Whether a call may start now; `Err` carries how long until a probe is allowed.
    pub fn admit(&mut self, now: Instant) -> Result<Admission, Duration> {
        match (self.state(now), self.opened_at) {
            (CircuitState::Closed, _) => Ok(Admission::Call),
            (CircuitState::HalfOpen, _) if !self.probing => {
                self.probing = true;
                Ok(Admission::Probe)
            }
            (CircuitState::HalfOpen, _) => Err(Duration::ZERO),
            (CircuitState::Open, Some(at)) => {
                Err(self.open_for.saturating_sub(now.duration_since(at)))
            }
            (CircuitState::Open, None) => Err(Duration::ZERO),
        }
    }

    /// Records a finished call.
    pub fn record(&mut self, admission: Admission, success: bool, now: Instant) {
        if admission == Admission::Probe {
            self.probing = false;
        }
        if success {
            self.failures = 0;
            self.opened_at = None;
            return;
        }
        self.failures = self.failures.saturating_add(1);
        if admission == Admission::Probe || self.failures >= self.threshold {
            self.opened_at = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: Duration = Duration::from_secs(10);

    #[test]
    fn opens_after_threshold_consecutive_failures() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, OPEN);
        for _ in 0..2 {
            let a = b.admit(t0).expect("closed");
            b.record(a, false, t0);
        }
        assert_eq!(b.state(t0), CircuitState::Closed);
        // A success in between resets the count.
        b.record(Admission::Call, true, t0);
        for _ in 0..3 {
            let a = b.admit(t0).expect("closed");
            b.record(a, false, t0);
        }
        assert_eq!(b.state(t0), CircuitState::Open);
        assert_eq!(
            b.admit(t0 + Duration::from_secs(4)),
            Err(Duration::from_secs(6))
        );
        assert_eq!(
            b.cool_down_left(t0 + Duration::from_secs(4)),
            Some(Duration::from_secs(6))
        );
        assert_eq!(b.cool_down_left(t0 + OPEN), None, "half-open: no wait");
    }

    #[test]
    fn half_open_lets_one_probe_through_and_closes_on_success() {
        let t0 = Instant::now();
        let mut b = Breaker::new(1, OPEN);
        b.record(Admission::Call, false, t0);
        let later = t0 + OPEN;
        assert_eq!(b.state(later), CircuitState::HalfOpen);
        assert_eq!(b.admit(later), Ok(Admission::Probe));
        assert!(b.admit(later).is_err(), "only one probe at a time");
        b.record(Admission::Probe, true, later);
        assert_eq!(b.state(later), CircuitState::Closed);
        assert_eq!(b.admit(later), Ok(Admission::Call));
    }

    #[test]
    fn a_failed_probe_opens_the_circuit_again() {
        let t0 = Instant::now();
        let mut b = Breaker::new(5, OPEN);
        for _ in 0..5 {
            b.record(Admission::Call, false, t0);
        }
        let later = t0 + OPEN;
        assert_eq!(b.admit(later), Ok(Admission::Probe));
        b.record(Admission::Probe, false, later);
        assert_eq!(b.state(later), CircuitState::Open);
        assert_eq!(b.state(later + OPEN), CircuitState::HalfOpen);
    }
}
