//! Bounds concurrent local-model runs to the number of cores.
//!
//! Model runs are CPU-bound: running more at once than there are cores only adds context
//! switches and stretches every run. Requests waiting on serverless calls hold worker
//! threads but no slot, so a flood of slow remote calls cannot crowd out local work.

use std::sync::{Condvar, Mutex};

/// A counting semaphore for model runs.
#[derive(Debug)]
pub struct CpuSlots {
    free: Mutex<Count>,
    released: Condvar,
}

/// Free slots, and callers blocked waiting for one (a slot given back is theirs, not a
/// try-acquirer's).
#[derive(Debug, Default)]
struct Count {
    free: usize,
    waiting: usize,
}

/// A held slot, given back when dropped.
pub struct CpuSlot<'a>(&'a CpuSlots);

/// A held slot that owns its semaphore, for holders that outlive a borrow.
pub struct OwnedCpuSlot(std::sync::Arc<CpuSlots>);

impl CpuSlots {
    /// `n` slots (at least one).
    pub fn new(n: usize) -> Self {
        Self {
            free: Mutex::new(Count {
                free: n.max(1),
                waiting: 0,
            }),
            released: Condvar::new(),
        }
    }

    /// One slot per core the process may use.
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, usize::from))
    }

    /// Waits for a free slot.
    pub fn acquire(&self) -> CpuSlot<'_> {
        self.take();
        CpuSlot(self)
    }

    /// Waits for a free slot, held by an owning guard.
    pub fn acquire_owned(self: &std::sync::Arc<Self>) -> OwnedCpuSlot {
        self.take();
        OwnedCpuSlot(self.clone())
    }

    /// Waits at most `patience` for a free slot; `None` if none freed up in time.
    pub fn acquire_owned_within(
        self: &std::sync::Arc<Self>,
        patience: std::time::Duration,
    ) -> Option<OwnedCpuSlot> {
        let until = std::time::Instant::now() + patience;
        let mut count = self.free.lock().unwrap_or_else(|p| p.into_inner());
        count.waiting += 1;
        while count.free == 0 {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                count.waiting -= 1;
                return None;
            }
            count = self
                .released
                .wait_timeout(count, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        count.waiting -= 1;
        count.free -= 1;
        Some(OwnedCpuSlot(self.clone()))
    }

    /// Takes up to `most` slots that are free right now and wanted by no caller already
    /// waiting; never waits. A batch split across cores uses this, so it only ever runs
    /// on cores that would otherwise sit idle: under load it gets none.
    pub fn try_acquire_up_to(&self, most: usize) -> Vec<CpuSlot<'_>> {
        let mut count = self.free.lock().unwrap_or_else(|p| p.into_inner());
        let spare = count.free.saturating_sub(count.waiting).min(most);
        count.free -= spare;
        drop(count);
        (0..spare).map(|_| CpuSlot(self)).collect()
    }

    /// Whether a caller is blocked waiting for a slot right now (a core lent to a split
    /// batch is then given back; see `batch_split`).
    pub fn has_waiters(&self) -> bool {
        self.free.lock().unwrap_or_else(|p| p.into_inner()).waiting > 0
    }

    /// Pretends `n` callers are waiting (tests of what yields to them).
    #[cfg(test)]
    pub(crate) fn pretend_waiting(&self, n: usize) {
        self.free.lock().unwrap_or_else(|p| p.into_inner()).waiting = n;
    }

    fn take(&self) {
        let mut count = self.free.lock().unwrap_or_else(|p| p.into_inner());
        count.waiting += 1;
        while count.free == 0 {
            count = self.released.wait(count).unwrap_or_else(|p| p.into_inner());
        }
        count.waiting -= 1;
        count.free -= 1;
    }

    fn give(&self) {
        self.free.lock().unwrap_or_else(|p| p.into_inner()).free += 1;
        self.released.notify_one();
    }
}

impl Default for CpuSlots {
    fn default() -> Self {
        Self::per_core()
    }
}

impl Drop for CpuSlot<'_> {
    fn drop(&mut self) {
        self.0.give();
    }
}

impl Drop for OwnedCpuSlot {
    fn drop(&mut self) {
        self.0.give();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_bounded_wait_gives_up_when_no_slot_frees() {
        let slots = Arc::new(CpuSlots::new(1));
        let held = slots.acquire_owned();
        assert!(
            slots
                .acquire_owned_within(std::time::Duration::from_millis(20))
                .is_none()
        );
        drop(held);
        assert!(
            slots
                .acquire_owned_within(std::time::Duration::from_millis(20))
                .is_some()
        );
    }

    #[test]
    fn try_acquire_takes_only_free_slots_and_never_waits() {
        let slots = CpuSlots::new(3);
        let first = slots.acquire();
        let spare = slots.try_acquire_up_to(5);
        assert_eq!(spare.len(), 2, "two free of three");
        assert!(
            slots.try_acquire_up_to(1).is_empty(),
            "all held: none, at once"
        );
        drop(spare);
        assert_eq!(slots.try_acquire_up_to(1).len(), 1, "bounded by `most`");
        drop(first);
        assert_eq!(slots.try_acquire_up_to(0).len(), 0);
    }

    #[test]
    fn try_acquire_leaves_a_freed_slot_to_the_caller_waiting_for_it() {
        let slots = CpuSlots::new(2);
        // A slot just given back while a caller is still waking up for it.
        *slots.free.lock().expect("lock") = Count {
            free: 1,
            waiting: 1,
        };
        assert!(slots.try_acquire_up_to(1).is_empty(), "the waiter's slot");
        slots.free.lock().expect("lock").waiting = 0;
        assert_eq!(slots.try_acquire_up_to(1).len(), 1);
    }

    #[test]
    fn never_more_holders_than_slots() {
        let slots = Arc::new(CpuSlots::new(2));
        let holding = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (slots, holding, peak) = (slots.clone(), holding.clone(), peak.clone());
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        let _slot = slots.acquire();
                        let now = holding.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        std::thread::yield_now();
                        holding.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert!(peak.load(Ordering::SeqCst) <= 2);
        assert!(peak.load(Ordering::SeqCst) >= 1);
    }
}
