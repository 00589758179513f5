//! Spend across every endpoint against the operator's per-minute, per-hour and per-day
//! budgets. Windows are fixed (they reset when their length has passed since they
//! began), which is simple to reason about and to audit against a provider's bill.
//!
//! A call is refused while any window is already spent; a call in flight when the budget
//! runs out still completes and is charged, so a window can overshoot by one call.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::BudgetConfig;

/// Spend in one window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowSpend {
    /// `minute`, `hour` or `day`.
    pub window: &'static str,
    /// Micro-dollars spent in the current window.
    pub spent_micro_usd: u64,
    /// Budget in micro-dollars, if configured.
    pub budget_micro_usd: Option<u64>,
}

#[derive(Debug)]
struct Window {
    name: &'static str,
    length: Duration,
    budget: Option<u64>,
    started: Instant,
    spent: u64,
}

impl Window {
    fn roll(&mut self, now: Instant) {
        if now.duration_since(self.started) >= self.length {
            self.started = now;
            self.spent = 0;
        }
    }
}

/// Spend tracking shared by every endpoint.
#[derive(Debug)]
pub struct Budget {
    windows: Mutex<Vec<Window>>,
}

impl Budget {
    /// Budgets from the config (dollars) in micro-dollars.
    pub fn new(config: &BudgetConfig, now: Instant) -> Self {
        let micro = |usd: Option<f64>| usd.map(|v| (v * 1e6).round() as u64);
        let window = |name, secs, budget| Window {
            name,
            length: Duration::from_secs(secs),
            budget,
            started: now,
            spent: 0,
        };
        Self {
            windows: Mutex::new(vec![
                window("minute", 60, micro(config.per_minute)),
                window("hour", 3600, micro(config.per_hour)),
                window("day", 86_400, micro(config.per_day)),
            ]),
        }
    }

    /// `Err` naming the exhausted window if any budget is already spent, with the time
    /// until that window starts over (what a client is told to wait).
    pub fn check(&self, now: Instant) -> Result<(), (String, Duration)> {
        let mut windows = self.lock();
        for w in windows.iter_mut() {
            w.roll(now);
            if let Some(budget) = w.budget
                && w.spent >= budget
            {
                let message = format!(
                    "the per-{} budget of ${:.6} is spent (${:.6} so far)",
                    w.name,
                    budget as f64 / 1e6,
                    w.spent as f64 / 1e6
                );
                let wait = w
                    .length
                    .saturating_sub(now.saturating_duration_since(w.started));
                return Err((message, wait));
            }
        }
        Ok(())
    }

    /// How long until no window is spent any more (the longest time left in a spent
    /// window); `None` when none is spent.
    pub fn retry_after(&self, now: Instant) -> Option<Duration> {
        self.lock()
            .iter_mut()
            .filter_map(|w| {
                w.roll(now);
                let spent = w.budget.is_some_and(|budget| w.spent >= budget);
                spent.then(|| {
                    w.length
                        .saturating_sub(now.saturating_duration_since(w.started))
                })
            })
            .max()
    }

    /// Adds a finished call's cost to every window.
    pub fn charge(&self, micro_usd: u64, now: Instant) {
        for w in self.lock().iter_mut() {
            w.roll(now);
            w.spent = w.spent.saturating_add(micro_usd);
        }
    }

    /// Spend in each window now.
    pub fn snapshot(&self, now: Instant) -> Vec<WindowSpend> {
        self.lock()
            .iter_mut()
            .map(|w| {
                w.roll(now);
                WindowSpend {
                    window: w.name,
                    spent_micro_usd: w.spent,
                    budget_micro_usd: w.budget,
                }
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Window>> {
        self.windows.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_once_a_window_is_spent_and_resets_with_the_window() {
        let t0 = Instant::now();
        let budget = Budget::new(
            &BudgetConfig {
                per_minute: Some(0.01),
                per_hour: None,
                per_day: Some(1.0),
            },
            t0,
        );
        assert!(budget.check(t0).is_ok());
        budget.charge(6_000, t0);
        assert!(budget.check(t0).is_ok());
        budget.charge(6_000, t0);
        let (err, wait) = budget.check(t0).expect_err("spent");
        assert!(err.contains("per-minute budget of $0.010000"), "{err}");
        assert_eq!(
            wait,
            Duration::from_secs(60),
            "the minute window starts over then"
        );
        let later = t0 + Duration::from_secs(61);
        assert!(budget.check(later).is_ok());
        let snap = budget.snapshot(later);
        assert_eq!(snap[0].spent_micro_usd, 0);
        assert_eq!(snap[2].spent_micro_usd, 12_000);
        assert_eq!(snap[2].budget_micro_usd, Some(1_000_000));
        assert_eq!(snap[1].budget_micro_usd, None);
    }

    #[test]
    fn the_wait_is_the_longest_time_left_in_a_spent_window() {
        let t0 = Instant::now();
        let budget = Budget::new(
            &BudgetConfig {
                per_minute: Some(0.01),
                per_hour: Some(0.01),
                per_day: None,
            },
            t0,
        );
        assert_eq!(budget.retry_after(t0), None, "nothing spent");
        budget.charge(10_000, t0);
        let now = t0 + Duration::from_secs(20);
        // Both the minute and the hour are spent: a call succeeds once the hour is over.
        assert_eq!(budget.retry_after(now), Some(Duration::from_secs(3580)));
    }
}
