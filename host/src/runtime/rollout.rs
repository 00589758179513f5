//! Which versions of a pipeline are live, and how its requests are split between them.
//!
//! A pipeline has one stable version and at most one canary taking a share of its
//! requests. The set of live versions is an immutable [`Live`] value behind an `Arc`:
//! a request picks its version from the `Live` it read, so a swap never shows a request
//! half of one deploy and half of another, and requests already running keep the
//! version they started with until they finish.
//!
//! Every change (deploy, canary, promote, rollback) builds a new `Live` and swaps it in
//! with [`Pipeline::replace`]; the caller (`Runtime`) serialises changes per pipeline.
//! A change also clears the pipeline's [`Quarantine`]: the failures were another
//! version's.

use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use super::quarantine::Quarantine;
use super::version::{ComponentVersion, StatsSnapshot};
use crate::config::{AutoRollback, PipelineConfig};

/// Which role a version played for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The stable version.
    Stable,
    /// The canary.
    Canary,
}

impl Role {
    /// `stable` or `canary`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Stable => "stable",
            Self::Canary => "canary",
        }
    }
}

/// A version taking a share of a pipeline's requests before it is promoted or dropped.
#[derive(Clone)]
pub struct Canary {
    /// The new version.
    pub version: Arc<ComponentVersion>,
    /// Share of requests it takes, 1 to 99 percent.
    pub percent: u8,
    /// When the canary started.
    pub since: SystemTime,
    /// The stable version's counts when the canary started: both are judged over the
    /// same window.
    pub stable_base: StatsSnapshot,
}

/// The live versions of one pipeline.
#[derive(Clone)]
pub struct Live {
    /// Serves every request the canary does not take.
    pub stable: Arc<ComponentVersion>,
    /// When the stable version went live.
    pub stable_since: SystemTime,
    /// A version on trial, if any.
    pub canary: Option<Canary>,
    /// The version the stable one replaced, kept for `rollback`.
    pub previous: Option<Arc<ComponentVersion>>,
}

impl Live {
    /// Only `stable`, live from now.
    pub fn only(stable: Arc<ComponentVersion>) -> Self {
        Self {
            stable,
            stable_since: SystemTime::now(),
            canary: None,
            previous: None,
        }
    }

    /// `next` replaces the stable version; the current one becomes `previous`; any
    /// canary is dropped.
    pub fn replaced_by(&self, next: Arc<ComponentVersion>) -> Self {
        Self {
            previous: Some(self.stable.clone()),
            stable: next,
            stable_since: SystemTime::now(),
            canary: None,
        }
    }

    /// The same stable version with `version` as a canary at `percent`.
    pub fn with_canary(&self, version: Arc<ComponentVersion>, percent: u8) -> Self {
        Self {
            canary: Some(Canary {
                version,
                percent,
                since: SystemTime::now(),
                stable_base: self.stable.stats.snapshot(),
            }),
            ..self.clone()
        }
    }

    /// The version for one request: the canary with probability `percent`/100.
    pub fn pick(&self) -> (Arc<ComponentVersion>, Role) {
        match &self.canary {
            Some(c) if fastrand::u8(0..100) < c.percent => (c.version.clone(), Role::Canary),
            _ => (self.stable.clone(), Role::Stable),
        }
    }
}

/// Why a canary should be dropped, when it should.
pub fn judge(canary: &Canary, stable_now: StatsSnapshot, rule: &AutoRollback) -> Option<String> {
    let tried = canary.version.stats.snapshot();
    if tried.requests < rule.min_requests {
        return None;
    }
    let stable = stable_now.since(canary.stable_base);
    let (c, s) = (tried.error_rate(), stable.error_rate());
    (c > s + rule.margin).then(|| {
        format!(
            "canary error rate {:.1}% over {} requests exceeds the stable version's {:.1}% over {} by more than {:.1} points",
            c * 100.0,
            tried.requests,
            s * 100.0,
            stable.requests,
            rule.margin * 100.0
        )
    })
}

/// A configured pipeline and its live versions.
pub struct Pipeline {
    /// The pipeline's configuration (limits, smoke requests, rollback rule).
    pub config: PipelineConfig,
    live: RwLock<Arc<Live>>,
    /// Held while a deploy, promote or rollback of this pipeline is under way.
    pub(super) changing: Mutex<()>,
    /// Whether its requests run, or are refused while its component keeps failing.
    pub quarantine: Quarantine,
}

impl Pipeline {
    /// A pipeline serving `live`.
    pub fn new(config: PipelineConfig, live: Live) -> Self {
        Self {
            live: RwLock::new(Arc::new(live)),
            changing: Mutex::new(()),
            quarantine: Quarantine::new(config.quarantine),
            config,
        }
    }

    /// The live versions now.
    pub fn live(&self) -> Arc<Live> {
        self.live
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Makes `live` the pipeline's live set and clears its quarantine; returns the set
    /// it replaced.
    pub fn replace(&self, live: Live) -> Arc<Live> {
        let stable = live.stable.short().to_owned();
        let mut slot = self
            .live
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let before = std::mem::replace(&mut *slot, Arc::new(live));
        drop(slot);
        if self.quarantine.clear() {
            tracing::info!(pipeline = %self.config.name, stable = %stable, "pipeline left quarantine: its live versions changed");
        }
        before
    }

    /// The stable version now.
    pub fn stable(&self) -> Arc<ComponentVersion> {
        self.live().stable.clone()
    }
}
