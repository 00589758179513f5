//! Why a request could not be served, in words a client can act on, and how wasmtime's
//! traps map onto those causes.

use wasmtime::{Store, Trap};

use super::GuestError;
use super::state::RequestState;
use crate::config::{Limit, PipelineConfig};

/// A request could not be served. Every case names the pipeline's problem in words a
/// client can act on; [`PipelineError::status`] gives the matching HTTP status.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PipelineError {
    /// No pipeline of that name is loaded.
    #[error("unknown pipeline {name:?}; known pipelines: [{}]", known.join(", "))]
    UnknownPipeline {
        /// The name asked for.
        name: String,
        /// The loaded pipelines.
        known: Vec<String>,
    },
    /// The guest answered with an error (the WIT `messages.error`).
    #[error("pipeline {pipeline:?} rejected the request ({kind}): {message}")]
    Rejected {
        /// The pipeline.
        pipeline: String,
        /// `bad-request`, `unsupported`, `upstream`, `internal`, and since 0.2
        /// `rate-limited`, `unavailable` and `timeout`.
        kind: &'static str,
        /// The guest's message.
        message: String,
        /// When retrying may help, in milliseconds, if the guest said (`rate-limited`,
        /// `unavailable`).
        retry_after_ms: Option<u32>,
    },
    /// The guest ran past its deadline and was stopped.
    #[error("pipeline {pipeline:?} exceeded its deadline of {deadline_ms} ms and was stopped")]
    DeadlineExceeded {
        /// The pipeline.
        pipeline: String,
        /// The configured deadline.
        deadline_ms: u64,
    },
    /// The guest tried to grow its memory past its cap and then failed.
    #[error("pipeline {pipeline:?} exceeded its memory cap of {cap_mib} MiB and was stopped")]
    MemoryExceeded {
        /// The pipeline.
        pipeline: String,
        /// The configured cap.
        cap_mib: u64,
    },
    /// The guest trapped (a panic, an out-of-bounds access, ...).
    #[error("pipeline {pipeline:?} crashed: {message}")]
    Trapped {
        /// The pipeline.
        pipeline: String,
        /// The trap, with the guest's panic message when it printed one.
        message: String,
    },
    /// A `wasi:cli` command exited with a status other than 0 (or its `run` returned an
    /// error, which is status 1).
    #[error(
        "pipeline {pipeline:?} (a wasi:cli command) exited with status {status}{}",
        stderr_tail(message)
    )]
    Exited {
        /// The pipeline.
        pipeline: String,
        /// The exit status.
        status: i32,
        /// What it wrote on stderr, trimmed and cut (may be empty).
        message: String,
    },
    /// The request went past one of its pipeline's per-request limits.
    #[error("pipeline {pipeline:?} went past its limit of {max} {} per request (limits.{})", limit.unit(), limit.name())]
    LimitExceeded {
        /// The pipeline.
        pipeline: String,
        /// Which limit.
        limit: Limit,
        /// Its configured value.
        max: u64,
    },
    /// Every instance slot is in use.
    #[error("no free instance slot for pipeline {pipeline:?}: {message}")]
    Overloaded {
        /// The pipeline.
        pipeline: String,
        /// The allocator's explanation.
        message: String,
    },
    /// The pipeline is quarantined: its component failed too many requests in a row, so
    /// it is not run until its cool-down ends (see [`super::quarantine`]).
    #[error(
        "pipeline {pipeline:?} is quarantined after {failures} consecutive failures (the last: {reason}); {}",
        next_probe(*probing, *retry_after_s)
    )]
    Quarantined {
        /// The pipeline.
        pipeline: String,
        /// The last failure's message.
        reason: String,
        /// Consecutive failures so far.
        failures: u32,
        /// Seconds until a request may be let through as a probe, at least 1.
        retry_after_s: u64,
        /// A probe request is running now.
        probing: bool,
    },
}

/// `: <stderr>` when the command wrote something.
fn stderr_tail(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!("; its stderr: {message}")
    }
}

/// When a quarantined pipeline is tried again, for its error message.
fn next_probe(probing: bool, retry_after_s: u64) -> String {
    if probing {
        format!("a probe request is running now; retry in {retry_after_s} s")
    } else {
        format!("the first request after {retry_after_s} s will be let through as a probe")
    }
}

impl PipelineError {
    /// The HTTP status this error maps to.
    pub fn status(&self) -> u16 {
        match self {
            Self::UnknownPipeline { .. } => 404,
            Self::Rejected { kind, .. } => match *kind {
                "bad-request" => 400,
                "unsupported" => 415,
                "upstream" => 502,
                "rate-limited" => 429,
                "unavailable" => 503,
                "timeout" => 504,
                _ => 500,
            },
            Self::DeadlineExceeded { .. } => 504,
            Self::MemoryExceeded { .. }
            | Self::Trapped { .. }
            | Self::LimitExceeded { .. }
            | Self::Exited { .. } => 500,
            Self::Overloaded { .. } | Self::Quarantined { .. } => 503,
        }
    }
}

/// Names the cause of a trap or instantiation failure.
pub(super) fn failure(
    store: &Store<RequestState>,
    config: &PipelineConfig,
    error: wasmtime::Error,
) -> PipelineError {
    let pipeline = config.name.clone();
    if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        return PipelineError::DeadlineExceeded {
            pipeline,
            deadline_ms: config.deadline_ms,
        };
    }
    let limits = &store.data().limits;
    if limits.memory_exceeded {
        return PipelineError::MemoryExceeded {
            pipeline,
            cap_mib: config.memory_mib,
        };
    }
    let limit = if error.downcast_ref::<Trap>() == Some(&Trap::OutOfFuel) {
        Some(Limit::Fuel)
    } else if limits.table_exceeded {
        Some(Limit::TableElements)
    } else if format!("{error:#}").contains("instance count too high") {
        // wasmtime's words when instantiation passes `ResourceLimiter::instances`.
        Some(Limit::Instances)
    } else {
        None
    };
    if let Some(limit) = limit {
        return PipelineError::LimitExceeded {
            pipeline,
            limit,
            max: config.limits.max(limit),
        };
    }
    if let Some(limit) = error.downcast_ref::<wasmtime::PoolConcurrencyLimitError>() {
        return PipelineError::Overloaded {
            pipeline,
            message: limit.to_string(),
        };
    }
    let cause = match error.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{error:#}"),
    };
    let stderr = store.data().stderr();
    let message = if stderr.is_empty() {
        cause
    } else {
        format!("{cause}; guest stderr: {stderr}")
    };
    PipelineError::Trapped { pipeline, message }
}

pub(super) fn rejected(config: &PipelineConfig, error: GuestError) -> PipelineError {
    let (kind, message, retry_after_ms) = match error {
        GuestError::BadRequest(m) => ("bad-request", m, None),
        GuestError::Unsupported(m) => ("unsupported", m, None),
        GuestError::Upstream(m) => ("upstream", m, None),
        GuestError::Internal(m) => ("internal", m, None),
        GuestError::RateLimited(r) => ("rate-limited", r.message, r.retry_after_ms),
        GuestError::Unavailable(r) => ("unavailable", r.message, r.retry_after_ms),
        GuestError::Timeout(m) => ("timeout", m, None),
    };
    PipelineError::Rejected {
        pipeline: config.name.clone(),
        kind,
        message,
        retry_after_ms,
    }
}
