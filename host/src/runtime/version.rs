//! One version of a pipeline's component: the compiled code, where it came from, and what
//! it has served.
//!
//! A version is named by the sha256 of its `.wasm` bytes, so the same bytes are the same
//! version wherever they came from. The compiled part ([`Compiled`]) is shared between
//! every pipeline and deploy that uses the same bytes; the rest ([`ComponentVersion`]) is
//! one deploy of it: its source, when it went live, and its request counts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::component::ComponentSummary;
use super::contract::PipelinePre;

/// Where a component version came from. Today: the config file, an upload to the admin
/// API, or a file watched by `hybrid serve --watch`; fleets will add registry references.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ComponentSource {
    /// The file the config names, read at start.
    Config {
        /// The file.
        path: String,
    },
    /// Bytes uploaded to `PUT /admin/pipelines/{name}/component`.
    Upload,
    /// A change to the config's file, picked up by watch mode.
    Watch {
        /// The file.
        path: String,
    },
}

impl std::fmt::Display for ComponentSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Config { path } => write!(f, "config file {path}"),
            Self::Upload => f.write_str("upload"),
            Self::Watch { path } => write!(f, "watched file {path}"),
        }
    }
}

/// A component compiled and type-checked against the `pipeline` world, ready to
/// instantiate. Shared by every deploy of the same bytes.
pub struct Compiled {
    /// Lower-case hex sha256 of the `.wasm` bytes: the version's name.
    pub digest: String,
    /// What the compiled cache files it under: the digest, or for a pre-initialised
    /// component the sha256 of the digest and of what its `initialize` could read.
    pub key: String,
    /// The code is a snapshot taken after the component's `initialize` (its
    /// `hybrid:inference/init` export) ran at deploy.
    pub preinitialised: bool,
    /// Size of the `.wasm` bytes.
    pub size: usize,
    /// The component's imports and exports.
    pub summary: ComponentSummary,
    /// How it was obtained: compiled now, loaded from the on-disk cache, or already in
    /// memory.
    pub origin: CompileOrigin,
    pub(super) pre: PipelinePre,
}

/// How a [`Compiled`] component was obtained, and what it cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompileOrigin {
    /// Compiled by Cranelift.
    Compiled(Duration),
    /// Loaded from a `.cwasm` in the compiled cache.
    DiskCache(Duration),
    /// Already compiled in this process.
    Memory,
}

impl CompileOrigin {
    /// Time spent obtaining the code.
    pub fn elapsed(self) -> Duration {
        match self {
            Self::Compiled(d) | Self::DiskCache(d) => d,
            Self::Memory => Duration::ZERO,
        }
    }

    /// `compiled`, `disk-cache` or `memory`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Compiled(_) => "compiled",
            Self::DiskCache(_) => "disk-cache",
            Self::Memory => "memory",
        }
    }
}

/// One deploy of a compiled component to a pipeline.
pub struct ComponentVersion {
    /// The compiled code.
    pub compiled: Arc<Compiled>,
    /// Where the bytes came from.
    pub source: ComponentSource,
    /// When this version was deployed (for a restored version: when it was first
    /// deployed, before the restart).
    pub deployed_at: SystemTime,
    /// What it has served since.
    pub stats: VersionStats,
}

impl ComponentVersion {
    /// A fresh deploy of `compiled`.
    pub fn new(compiled: Arc<Compiled>, source: ComponentSource, deployed_at: SystemTime) -> Self {
        Self {
            compiled,
            source,
            deployed_at,
            stats: VersionStats::default(),
        }
    }

    /// The version's name: the sha256 of its bytes.
    pub fn digest(&self) -> &str {
        &self.compiled.digest
    }

    /// The first 12 hex digits of the digest, as headers and metric labels show it.
    pub fn short(&self) -> &str {
        short_digest(&self.compiled.digest)
    }
}

/// The first 12 hex digits of a digest.
pub fn short_digest(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

/// Requests, failures and latency of one version, counted as requests finish.
#[derive(Debug, Default)]
pub struct VersionStats {
    requests: AtomicU64,
    errors: AtomicU64,
    latency_us: AtomicU64,
}

/// A reading of [`VersionStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StatsSnapshot {
    /// Requests served, failed ones included.
    pub requests: u64,
    /// Requests that did not get a successful answer.
    pub errors: u64,
    /// Total latency of those requests, in microseconds.
    pub latency_us: u64,
}

impl VersionStats {
    /// Counts one finished request.
    pub fn record(&self, ok: bool, elapsed: Duration) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.latency_us.fetch_add(us, Ordering::Relaxed);
    }

    /// The counts now.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            latency_us: self.latency_us.load(Ordering::Relaxed),
        }
    }
}

impl StatsSnapshot {
    /// The counts since `earlier`.
    pub fn since(self, earlier: StatsSnapshot) -> StatsSnapshot {
        StatsSnapshot {
            requests: self.requests.saturating_sub(earlier.requests),
            errors: self.errors.saturating_sub(earlier.errors),
            latency_us: self.latency_us.saturating_sub(earlier.latency_us),
        }
    }

    /// Errors per request, 0 when nothing was served.
    pub fn error_rate(self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }

    /// Mean latency in milliseconds, 0 when nothing was served.
    pub fn mean_ms(self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.latency_us as f64 / self.requests as f64 / 1e3
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_since_a_snapshot_give_rates_and_means() {
        let stats = VersionStats::default();
        stats.record(true, Duration::from_millis(2));
        let base = stats.snapshot();
        stats.record(false, Duration::from_millis(4));
        stats.record(true, Duration::from_millis(6));
        let window = stats.snapshot().since(base);
        assert_eq!(window.requests, 2);
        assert_eq!(window.errors, 1);
        assert!((window.error_rate() - 0.5).abs() < 1e-9);
        assert!((window.mean_ms() - 5.0).abs() < 1e-9);
        assert_eq!(StatsSnapshot::default().error_rate(), 0.0);
    }

    #[test]
    fn short_digests_are_twelve_hex_digits() {
        assert_eq!(short_digest("0123456789abcdef"), "0123456789ab");
        assert_eq!(short_digest("abc"), "abc");
    }
}
