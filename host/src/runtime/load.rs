//! The box's own load, as routing policies read it through `signals.local-load`:
//! requests in flight, the queue in front of the workers, the capacity, and the median of
//! recent local-model run times.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Model runs remembered for the median.
const WINDOW: usize = 256;

/// Shared load counters, updated by the runtime and the server.
#[derive(Debug)]
pub struct Load {
    in_flight: AtomicU32,
    queued: AtomicU32,
    capacity: AtomicU32,
    model_runs: Mutex<VecDeque<Duration>>,
}

/// A snapshot of [`Load`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadSnapshot {
    /// Requests being served.
    pub in_flight: u32,
    /// Requests waiting for a worker.
    pub queued: u32,
    /// Requests served at once before queueing.
    pub capacity: u32,
    /// Median of recent local-model runs.
    pub recent_model: Duration,
}

/// Counts a request as in flight until dropped.
pub struct InFlight<'a>(&'a Load);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Load {
    /// Counters for a box serving `capacity` requests at once.
    pub fn new(capacity: u32) -> Self {
        Self {
            in_flight: AtomicU32::new(0),
            queued: AtomicU32::new(0),
            capacity: AtomicU32::new(capacity),
            model_runs: Mutex::new(VecDeque::with_capacity(WINDOW)),
        }
    }

    /// Marks a request in flight for the life of the guard.
    pub fn enter(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    /// Sets the queue depth (the server owns the queue).
    pub fn set_queued(&self, queued: u32) {
        self.queued.store(queued, Ordering::Relaxed);
    }

    /// Sets the capacity (the server decides it).
    pub fn set_capacity(&self, capacity: u32) {
        self.capacity.store(capacity, Ordering::Relaxed);
    }

    /// Remembers one local-model run time.
    pub fn record_model_run(&self, elapsed: Duration) {
        let mut runs = self.model_runs.lock().unwrap_or_else(|p| p.into_inner());
        if runs.len() == WINDOW {
            runs.pop_front();
        }
        runs.push_back(elapsed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> LoadSnapshot {
        let mut runs: Vec<Duration> = self
            .model_runs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .copied()
            .collect();
        runs.sort();
        LoadSnapshot {
            in_flight: self.in_flight.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::Relaxed),
            capacity: self.capacity.load(Ordering::Relaxed),
            recent_model: runs.get(runs.len() / 2).copied().unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_in_flight_requests_and_the_median_model_time() {
        let load = Load::new(4);
        {
            let _a = load.enter();
            let _b = load.enter();
            assert_eq!(load.snapshot().in_flight, 2);
        }
        assert_eq!(load.snapshot().in_flight, 0);
        for ms in [5, 1, 3] {
            load.record_model_run(Duration::from_millis(ms));
        }
        assert_eq!(load.snapshot().recent_model, Duration::from_millis(3));
        assert_eq!(load.snapshot().capacity, 4);
    }
}
