//! The state directory's record of what is live: `deployments.json`, rewritten whole
//! (atomically) after every change, read once at start.
//!
//! Only pipelines and models changed since start-up (by the admin API or watch mode) are
//! recorded; the others are served from the files the config names. Each recorded
//! version names its bytes by sha256: uploads are kept in `components/` and `models/`,
//! versions that came from the config name their file and are restored only while that
//! file still has the same sha256.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::runtime::{ComponentSource, ComponentVersion, Live};

/// The whole record.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Record {
    /// Pipelines by name.
    #[serde(default)]
    pub pipelines: BTreeMap<String, PipelineRecord>,
    /// Models by name.
    #[serde(default)]
    pub models: BTreeMap<String, ModelRecord>,
}

/// The live versions of one pipeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PipelineRecord {
    /// The stable version.
    pub stable: VersionRecord,
    /// The canary and its share, if any.
    #[serde(default)]
    pub canary: Option<CanaryRecord>,
    /// The version the stable one replaced.
    #[serde(default)]
    pub previous: Option<VersionRecord>,
}

/// One component version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionRecord {
    /// sha256 of the bytes.
    pub sha256: String,
    /// Where they came from.
    pub source: ComponentSource,
    /// When it was deployed, in milliseconds since the Unix epoch.
    pub deployed_at_ms: u64,
}

/// A canary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CanaryRecord {
    /// The version.
    #[serde(flatten)]
    pub version: VersionRecord,
    /// Its share of requests in percent.
    pub percent: u8,
}

/// The current and previous version of one model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelRecord {
    /// The version serving now.
    pub current: ModelVersionRecord,
    /// The version it replaced.
    #[serde(default)]
    pub previous: Option<ModelVersionRecord>,
}

/// One model version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelVersionRecord {
    /// The operator's version string.
    pub version: String,
    /// sha256 of the ONNX file.
    pub sha256: String,
    /// Where it came from.
    pub source: ComponentSource,
    /// When it was deployed, in milliseconds since the Unix epoch.
    pub deployed_at_ms: u64,
}

impl PipelineRecord {
    /// The record of `live`.
    pub fn of(live: &Live) -> Self {
        Self {
            stable: VersionRecord::of(&live.stable),
            canary: live.canary.as_ref().map(|c| CanaryRecord {
                version: VersionRecord::of(&c.version),
                percent: c.percent,
            }),
            previous: live.previous.as_deref().map(VersionRecord::of),
        }
    }

    /// Whether anything in it came from somewhere other than the config.
    pub fn deployed(&self) -> bool {
        std::iter::once(&self.stable)
            .chain(self.canary.as_ref().map(|c| &c.version))
            .chain(self.previous.as_ref())
            .any(|v| !matches!(v.source, ComponentSource::Config { .. }))
    }
}

impl VersionRecord {
    /// The record of `version`.
    pub fn of(version: &ComponentVersion) -> Self {
        Self {
            sha256: version.digest().to_owned(),
            source: version.source.clone(),
            deployed_at_ms: unix_ms(version.deployed_at),
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The time `ms` milliseconds after the Unix epoch.
pub fn from_unix_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}
