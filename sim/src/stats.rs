//! Counters that let fault tests assert what the simulator saw: requests by route and final
//! status, faults injected by kind, and how often each `x-request-id` and `idempotency-key`
//! arrived, was answered, may have been carried out, and came back after that (so "no
//! request lost, none carried out twice" is checkable), and how the classification
//! stand-in ([`crate::classify`]) answered. Only ids, routes, statuses and counts are kept,
//! never payloads or headers beyond those two.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// How often one client-supplied id was seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdCount {
    /// Requests carrying the id that reached the simulator.
    pub arrived: u64,
    /// Of those, how many got a response (any status; hung requests never do).
    pub answered: u64,
    /// Of those, how many the upstream may have carried out: the route ran (whatever then
    /// happened to its answer: dropped, truncated...) or the request was held unanswered (a
    /// hang, which a client cannot tell from a slow success). An injected error status or
    /// 429, a quota or key refusal, is answered without running the route.
    #[serde(default)]
    pub processed: u64,
    /// Arrivals after one that may have been carried out: a client repeating a request the
    /// upstream may already have done, which for a non-idempotent call (a chat completion)
    /// may mean doing it twice. Retrying after a refusal (5xx, 429) is not counted.
    #[serde(default)]
    pub after_processed: u64,
}

/// A copy of the counters, as `GET /sim/stats` returns them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// Every request that arrived, on any route.
    pub requests_total: u64,
    /// Answered requests by path, then by status code.
    pub by_route: BTreeMap<String, BTreeMap<u16, u64>>,
    /// Injected faults by kind (`status_503`, `rate_limited`, `hang`, `drop`, `malformed`,
    /// `oversize`, `wrong_content_type`, and `quota` for real quota refusals).
    pub faults: BTreeMap<String, u64>,
    /// By `x-request-id` header value.
    pub request_ids: BTreeMap<String, IdCount>,
    /// By `idempotency-key` header value.
    pub idempotency_keys: BTreeMap<String, IdCount>,
    /// Chat answers of the classification stand-in (all zero without a workload).
    #[serde(default)]
    pub classified: ClassifiedCounts,
    /// Streamed chat answers, by how they ended.
    #[serde(default)]
    pub streams: StreamCounts,
}

/// How streamed chat answers (`stream: true`) ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamCounts {
    /// Every event, `[DONE]` included, was handed to the connection.
    pub completed: u64,
    /// The client closed the connection before the last event: the upstream saw the
    /// cancel and stopped generating.
    pub cancelled: u64,
}

/// How the classification stand-in answered the chat completions its route produced (a
/// fault may still damage an answer afterwards; a fault answered instead is not counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassifiedCounts {
    /// Answered with the example's true label.
    pub correct: u64,
    /// Answered with another label of the workload.
    pub wrong: u64,
    /// Prompts whose numbers matched no example, answered with the ordinary reply.
    pub unmatched: u64,
}

impl StatsSnapshot {
    /// Answered requests on `path` with `status`.
    pub fn count(&self, path: &str, status: u16) -> u64 {
        self.by_route
            .get(path)
            .and_then(|by_status| by_status.get(&status))
            .copied()
            .unwrap_or(0)
    }

    /// Injected faults of `kind`.
    pub fn faults_of(&self, kind: &str) -> u64 {
        self.faults.get(kind).copied().unwrap_or(0)
    }
}

/// The ids one request carried, remembered until it is answered.
#[derive(Debug, Clone, Default)]
pub struct RequestIds {
    /// The `x-request-id` header, if any.
    pub request_id: Option<String>,
    /// The `idempotency-key` header, if any.
    pub idempotency_key: Option<String>,
}

/// The live counters.
#[derive(Debug, Default)]
pub struct Stats {
    inner: Mutex<StatsSnapshot>,
}

impl Stats {
    fn with<R>(&self, f: impl FnOnce(&mut StatsSnapshot) -> R) -> R {
        // A panic elsewhere while counting leaves counters that are still worth reading.
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }

    /// Counts an arriving request and its ids.
    pub fn arrived(&self, ids: &RequestIds) {
        let arrive = |count: &mut IdCount| {
            count.arrived += 1;
            if count.processed > 0 {
                count.after_processed += 1;
            }
        };
        self.with(|s| {
            s.requests_total += 1;
            if let Some(id) = &ids.request_id {
                arrive(s.request_ids.entry(id.clone()).or_default());
            }
            if let Some(key) = &ids.idempotency_key {
                arrive(s.idempotency_keys.entry(key.clone()).or_default());
            }
        });
    }

    /// Counts a request the upstream may have carried out (its route ran, or it hangs),
    /// before its answer goes out, so a client's next attempt always arrives after it.
    pub fn processed(&self, ids: &RequestIds) {
        self.with(|s| {
            if let Some(id) = &ids.request_id {
                s.request_ids.entry(id.clone()).or_default().processed += 1;
            }
            if let Some(key) = &ids.idempotency_key {
                s.idempotency_keys.entry(key.clone()).or_default().processed += 1;
            }
        });
    }

    /// Counts an answer (whatever happens to its body afterwards).
    pub fn answered(&self, path: &str, status: u16, ids: &RequestIds) {
        self.with(|s| {
            *s.by_route
                .entry(path.to_string())
                .or_default()
                .entry(status)
                .or_default() += 1;
            if let Some(id) = &ids.request_id {
                s.request_ids.entry(id.clone()).or_default().answered += 1;
            }
            if let Some(key) = &ids.idempotency_key {
                s.idempotency_keys.entry(key.clone()).or_default().answered += 1;
            }
        });
    }

    /// Counts an injected fault.
    pub fn fault(&self, kind: &str) {
        self.with(|s| *s.faults.entry(kind.to_string()).or_default() += 1);
    }

    /// Counts one classification answer: `Some(correct)` for a known example, `None` for a
    /// prompt that matched none.
    pub fn classified(&self, correct: Option<bool>) {
        self.with(|s| match correct {
            Some(true) => s.classified.correct += 1,
            Some(false) => s.classified.wrong += 1,
            None => s.classified.unmatched += 1,
        });
    }

    /// Counts a streamed answer's end: `cancelled` when the client went away first.
    pub fn stream_ended(&self, cancelled: bool) {
        self.with(|s| {
            if cancelled {
                s.streams.cancelled += 1;
            } else {
                s.streams.completed += 1;
            }
        });
    }

    /// A copy of the counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        self.with(|s| s.clone())
    }

    /// Zeroes every counter.
    pub fn reset(&self) {
        self.with(|s| *s = StatsSnapshot::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_arrivals_after_a_processed_one_count_as_repeats() {
        let stats = Stats::default();
        let ids = RequestIds {
            request_id: Some("call-1".into()),
            idempotency_key: Some("call-1".into()),
        };
        stats.arrived(&ids); // refused with an injected 503: the route never ran
        stats.arrived(&ids);
        stats.processed(&ids); // the route ran, then the connection was cut mid-body
        stats.arrived(&ids); // the client tried again anyway
        let snapshot = stats.snapshot();
        for count in [
            snapshot.request_ids["call-1"],
            snapshot.idempotency_keys["call-1"],
        ] {
            assert_eq!(
                (count.arrived, count.processed, count.after_processed),
                (3, 1, 1)
            );
        }
    }
}
