//! `hybrid plan`: the routing decision as a measurement. A labelled workload is replayed
//! through strategies (a pipeline plus request parameters: all-local, all-remote, a
//! cascade at a sweep of thresholds, a policy, any deployed pipeline), in this process or
//! against a running box, and each strategy's accuracy, serverless cost, latency, share
//! served locally and egress are reported with the cost/accuracy frontier and the
//! strategy to run for a target accuracy or budget.
//!
//! # Layout
//! - [`spec`]: the plan file (workload, strategies, sweeps, target).
//! - [`workload`]: the labelled JSONL requests.
//! - [`replay`]: sending requests, in process or over HTTP, and reading the envelope.
//! - [`summary`]: per-strategy figures, the frontier, the recommendation.
//! - [`report`] and [`plot`]: `report.md`, `report.json`, `frontier.svg`.

pub mod plot;
pub mod replay;
pub mod report;
pub mod spec;
pub mod summary;
pub mod workload;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use replay::{Observation, Target};
use report::Report;
use spec::{PlanSpec, Strategy};
use workload::Item;

/// Why a plan could not run.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A file could not be read.
    #[error("cannot read {path:?}: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        message: String,
    },
    /// The plan file is malformed.
    #[error("plan {path:?}: {message}")]
    Spec {
        /// The plan file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A workload line is malformed.
    #[error("workload {path:?}:{line}: {message}")]
    Workload {
        /// The workload file.
        path: PathBuf,
        /// 1-based line number (0: the file as a whole).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A strategy names a pipeline the target does not serve.
    #[error("strategy {strategy:?}: {message}")]
    Strategy {
        /// The strategy.
        strategy: String,
        /// What is wrong.
        message: String,
    },
    /// A report file could not be written.
    #[error("cannot write {path:?}: {message}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The error.
        message: String,
    },
}

/// Replays `items` through every strategy of `spec`, `concurrency` requests at a time
/// (remote calls spend most of their time waiting), calling `progress` after each request,
/// and sums up.
pub fn run(
    spec: &PlanSpec,
    items: &[Item],
    target: &dyn Target,
    target_name: &str,
    concurrency: usize,
    progress: &(dyn Fn(&Strategy) + Sync),
) -> Report {
    let mut results = Vec::new();
    for strategy in spec.strategies() {
        let seen = replay(
            &strategy,
            items,
            target,
            &spec.answer,
            concurrency,
            progress,
        );
        results.push(summary::summarize(&strategy, items, &seen));
    }
    summary::mark_frontier(&mut results);
    let recommendation = summary::recommend(&results, &spec.target);
    Report {
        workload: spec.workload.clone(),
        requests: items.len(),
        concurrency,
        target: target_name.to_owned(),
        finished: httpdate::fmt_http_date(std::time::SystemTime::now()),
        strategies: results,
        recommendation,
    }
}

/// One strategy's observations, in item order.
fn replay(
    strategy: &Strategy,
    items: &[Item],
    target: &dyn Target,
    answer: &str,
    concurrency: usize,
    progress: &(dyn Fn(&Strategy) + Sync),
) -> Vec<Observation> {
    let next = AtomicUsize::new(0);
    let mut seen: Vec<(usize, Observation)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..concurrency.clamp(1, items.len().max(1)))
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        mine.push((i, target.send(strategy, item, answer)));
                        progress(strategy);
                    }
                    mine
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    seen.sort_by_key(|(i, _)| *i);
    seen.into_iter().map(|(_, o)| o).collect()
}
