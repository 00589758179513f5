//! Admission control: at most `max_concurrency` requests execute at once and at most
//! `max_queue` wait for a turn. A request beyond both is refused at once with 503 and
//! `Retry-After`, so an overloaded box answers quickly instead of hanging its clients.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::runtime::Load;

/// The box is full.
#[derive(Debug, Clone, Copy)]
pub struct Full {
    /// Requests waiting when this one was refused.
    pub queued: u32,
}

/// Bounded concurrency plus a bounded queue.
pub struct Admission {
    running: Arc<Semaphore>,
    queued: AtomicU32,
    max_queue: u32,
    load: Arc<Load>,
}

/// Leaves the queue when dropped, even if the waiting request is cancelled.
struct Waiting<'a>(&'a Admission);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let left = self.0.queued.fetch_sub(1, Ordering::SeqCst) - 1;
        self.0.load.set_queued(left);
    }
}

impl Admission {
    /// Limits for `max_concurrency` running and `max_queue` waiting requests, reported
    /// through `load`.
    pub fn new(max_concurrency: u32, max_queue: u32, load: Arc<Load>) -> Self {
        load.set_capacity(max_concurrency);
        Self {
            running: Arc::new(Semaphore::new(max_concurrency as usize)),
            queued: AtomicU32::new(0),
            max_queue,
            load,
        }
    }

    /// Waits for a turn, or refuses at once when the queue is full.
    pub async fn admit(&self) -> Result<OwnedSemaphorePermit, Full> {
        if let Ok(permit) = self.running.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let queued = self.queued.fetch_add(1, Ordering::SeqCst);
        if queued >= self.max_queue {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(Full { queued });
        }
        self.load.set_queued(queued + 1);
        let _waiting = Waiting(self);
        self.running
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Full { queued })
    }

    /// A turn only if one is free now and nobody is waiting for one: for work the box
    /// makes up itself (shadow requests), which must never queue ahead of clients.
    pub fn try_admit(&self) -> Option<OwnedSemaphorePermit> {
        if self.queued.load(Ordering::SeqCst) > 0 {
            return None;
        }
        self.running.clone().try_acquire_owned().ok()
    }

    /// Requests waiting now.
    #[cfg(test)]
    pub fn queued(&self) -> u32 {
        self.queued.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_beyond_the_queue_and_admits_as_permits_free() {
        let admission = Arc::new(Admission::new(1, 1, Arc::new(Load::new(0))));
        let first = admission.admit().await.expect("runs");
        let waiter = {
            let admission = admission.clone();
            tokio::spawn(async move { admission.admit().await.map(|_| ()) })
        };
        while admission.queued() == 0 {
            tokio::task::yield_now().await;
        }
        assert!(admission.admit().await.is_err(), "queue of one is full");
        drop(first);
        waiter
            .await
            .expect("join")
            .expect("admitted after the first finished");
        assert_eq!(admission.queued(), 0);
    }

    #[tokio::test]
    async fn made_up_work_never_waits_for_a_turn() {
        let admission = Arc::new(Admission::new(1, 1, Arc::new(Load::new(0))));
        let shadow = admission.try_admit().expect("a free turn");
        assert!(admission.try_admit().is_none(), "none free");
        let waiter = {
            let admission = admission.clone();
            tokio::spawn(async move { admission.admit().await.map(|_| ()) })
        };
        while admission.queued() == 0 {
            tokio::task::yield_now().await;
        }
        drop(shadow);
        waiter
            .await
            .expect("join")
            .expect("the client got the turn");
        assert_eq!(admission.queued(), 0);
    }
}
