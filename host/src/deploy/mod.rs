//! Deploying to a running box, durably: the [`Deployer`] puts every change through the
//! runtime's swap logic ([`crate::runtime::Runtime::deploy`] and friends) and keeps the
//! state directory in step, so a restarted host serves what was last deployed.
//!
//! The state directory (`[deploy] state_dir`, default `hybrid-state/` beside the config):
//! - `components/<sha256>.wasm`: every uploaded or watched component version;
//! - `models/<name>/<sha256>.onnx`: every uploaded model version;
//! - `compiled/<engine hash>/<sha256>.cwasm`: compiled components, so a restart or a
//!   redeploy of a known version does not compile again;
//! - `deployments.json`: what is live (see [`record`]).
//!
//! Start-up, the admin API and watch mode all come through here; the component's source
//! is recorded with each version (an upload today, a registry reference for fleets
//! later), never assumed to be a local path.

pub mod record;
pub mod watch;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::local::sha256_bytes;
use serde_json::{Value, json};

use crate::config::{Config, ModelConfig, PipelineConfig};
use crate::local::LocalModel;
use crate::runtime::{
    ComponentSource, DeployError, DeployReport, ModelSwap, Rollout, Runtime, RuntimeError,
};
use record::{
    ModelRecord, ModelVersionRecord, PipelineRecord, Record, VersionRecord, from_unix_ms, unix_ms,
};

/// A deploy failed: refused (nothing changed) or the state directory could not be
/// written (the change was undone).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Refused; see [`DeployError`].
    #[error(transparent)]
    Refused(#[from] DeployError),
    /// The state directory could not be written.
    #[error("cannot write the state directory {path:?}: {error}")]
    State {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
}

impl Error {
    /// The HTTP status the admin API answers with.
    pub fn status(&self) -> u16 {
        match self {
            Self::Refused(e) => e.status(),
            Self::State { .. } => 500,
        }
    }

    /// A machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Refused(e) => e.code(),
            Self::State { .. } => "state_not_written",
        }
    }
}

/// Deploys components and models into a running [`Runtime`] and keeps the state
/// directory in step.
pub struct Deployer {
    runtime: Arc<Runtime>,
    config: Config,
    dir: PathBuf,
    record: Mutex<Record>,
}

impl Deployer {
    /// Loads `config` and restores what was last deployed from its state directory:
    /// recorded model versions instead of the config's files, recorded component versions
    /// (stable, canary and previous) instead of the config's components. Every version
    /// goes through the same checks as a deploy, smoke requests included.
    pub fn start(config: &Config) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let dir = config.deploy.state_dir.clone();
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating the state directory {dir:?}"))?;
        let record = read_record(&dir)?;

        let restored = Config {
            models: config
                .models
                .iter()
                .map(|m| restored_model(&dir, m, record.models.get(&m.name)))
                .collect(),
            ..config.clone()
        };
        let runtime = Arc::new(Runtime::without_pipelines(&restored)?);
        runtime
            .cache_compiled_in(&dir.join("compiled"))
            .with_context(|| format!("creating the compiled cache in {dir:?}"))?;
        let deployer = Self {
            runtime,
            config: config.clone(),
            dir,
            record: Mutex::new(record.clone()),
        };
        for pipeline in &config.pipelines {
            match record.pipelines.get(&pipeline.name) {
                Some(saved) => deployer.restore_pipeline(pipeline, saved)?,
                None => {
                    deployer.runtime.load_pipeline(pipeline)?;
                }
            }
        }
        Ok(deployer)
    }

    /// The runtime this deployer changes.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.dir
    }

    /// The config the host started with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Deploys component `bytes` to `pipeline` (see [`Runtime::deploy`]) and records it.
    pub fn deploy_component(
        &self,
        pipeline: &str,
        bytes: &[u8],
        source: ComponentSource,
        rollout: Rollout,
    ) -> Result<DeployReport, Error> {
        let mut record = self.record.lock().unwrap_or_else(|p| p.into_inner());
        let digest = sha256_bytes(bytes);
        // Checked before the bytes are kept, so a wrong name leaves nothing behind.
        self.pipeline_config(pipeline)?;
        let path = self.component_path(&digest);
        if !path.exists() {
            crate::atomic_file::write(&path, bytes).map_err(|error| Error::State {
                path: path.clone(),
                error,
            })?;
        }
        let report = self
            .runtime
            .deploy(pipeline, bytes, source, SystemTime::now(), rollout)?;
        if let Err(e) = self.save_pipeline(&mut record, pipeline) {
            // Undo: the box must serve what the record says.
            let _ = self.runtime.rollback(pipeline);
            return Err(e);
        }
        Ok(report)
    }

    /// Promotes `pipeline`'s canary and records it.
    pub fn promote(&self, pipeline: &str) -> Result<String, Error> {
        let mut record = self.record.lock().unwrap_or_else(|p| p.into_inner());
        let version = self.runtime.promote(pipeline)?;
        self.save_pipeline(&mut record, pipeline)?;
        Ok(version.digest().to_owned())
    }

    /// Rolls `pipeline` back (drops its canary, or returns to its previous version) and
    /// records it.
    pub fn rollback(&self, pipeline: &str) -> Result<String, Error> {
        let mut record = self.record.lock().unwrap_or_else(|p| p.into_inner());
        let version = self.runtime.rollback(pipeline)?;
        self.save_pipeline(&mut record, pipeline)?;
        Ok(version.digest().to_owned())
    }

    /// Records `pipeline`'s live set after a change the runtime made by itself (an
    /// automatic canary rollback).
    pub fn note_change(&self, pipeline: &str) {
        let mut record = self.record.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = self.save_pipeline(&mut record, pipeline) {
            tracing::error!(pipeline, error = %e, "cannot record a pipeline change");
        }
    }

    /// Deploys ONNX `bytes` as version `version` of model `name`: kept in the state
    /// directory, loaded with the model's configured input facts, refused unless its
    /// inputs and outputs match the current version's, then swapped in.
    pub fn deploy_model(
        &self,
        name: &str,
        bytes: &[u8],
        version: &str,
        source: ComponentSource,
    ) -> Result<ModelSwap, Error> {
        let mut record = self.record.lock().unwrap_or_else(|p| p.into_inner());
        let configured = self.model_config(name)?;
        let sha256 = sha256_bytes(bytes);
        let path = self.model_path(name, &sha256);
        if !path.exists() {
            crate::atomic_file::write(&path, bytes).map_err(|error| Error::State {
                path: path.clone(),
                error,
            })?;
        }
        let config = ModelConfig {
            version: version.to_owned(),
            path,
            sha256: sha256.clone(),
            assets: BTreeMap::new(),
            ..configured.clone()
        };
        let model = LocalModel::load(&config).map_err(DeployError::from)?;
        let swap = self.runtime.replace_model(model)?;
        let previous = record
            .models
            .get(name)
            .map(|r| r.current.clone())
            .unwrap_or_else(|| configured_version(configured));
        let entry = ModelRecord {
            current: ModelVersionRecord {
                version: version.to_owned(),
                sha256,
                source,
                deployed_at_ms: unix_ms(SystemTime::now()),
            },
            previous: Some(previous),
        };
        let before = record.models.insert(name.to_owned(), entry);
        if let Err(e) = self.write_record(&record) {
            match before {
                Some(b) => record.models.insert(name.to_owned(), b),
                None => record.models.remove(name),
            };
            let _ = self.runtime.rollback_model(name);
            return Err(e);
        }
        Ok(swap)
    }

    /// Puts back the version model `name` had before its last swap, and records it.
    pub fn rollback_model(&self, name: &str) -> Result<ModelSwap, Error> {
        let mut record = self.record.lock().unwrap_or_else(|p| p.into_inner());
        let configured = self.model_config(name)?.clone();
        let saved = record.models.get(name).cloned();
        let swap = match self.runtime.rollback_model(name) {
            Ok(swap) => swap,
            // After a restart the previous version is loaded from its file on demand.
            Err(DeployError::NoPreviousModel(_)) => {
                let previous = saved
                    .as_ref()
                    .and_then(|r| r.previous.clone())
                    .ok_or_else(|| DeployError::NoPreviousModel(name.to_owned()))?;
                let config = self.model_version_config(&configured, &previous);
                let model = LocalModel::load(&config).map_err(DeployError::from)?;
                self.runtime.replace_model(model)?
            }
            Err(e) => return Err(e.into()),
        };
        let previous = saved.as_ref().map(|r| r.current.clone());
        let back_to = saved
            .and_then(|r| r.previous)
            .filter(|p| p.sha256 == swap.sha256);
        let configured_sha = configured.sha256.to_ascii_lowercase();
        match back_to {
            // Back on the config's file: nothing to restore at start.
            _ if swap.sha256 == configured_sha && swap.version == configured.version => {
                record.models.remove(name);
            }
            Some(current) => {
                record
                    .models
                    .insert(name.to_owned(), ModelRecord { current, previous });
            }
            None => {
                let current = ModelVersionRecord {
                    version: swap.version.clone(),
                    sha256: swap.sha256.clone(),
                    source: ComponentSource::Upload,
                    deployed_at_ms: unix_ms(SystemTime::now()),
                };
                record
                    .models
                    .insert(name.to_owned(), ModelRecord { current, previous });
            }
        }
        self.write_record(&record)?;
        Ok(swap)
    }

    /// Where model `name`'s live version came from, if it was deployed (not the
    /// config's file).
    pub fn model_source(&self, name: &str) -> Option<ComponentSource> {
        let record = self.record.lock().unwrap_or_else(|p| p.into_inner());
        record.models.get(name).map(|r| r.current.source.clone())
    }

    /// Everything `hybrid status` shows: each pipeline's live versions with their share,
    /// source, age and counts, and each model's version and source.
    pub fn status(&self) -> Value {
        json!({
            "state_dir": self.dir.display().to_string(),
            "pipelines": self.pipelines_status(),
            "models": self.models_status(),
        })
    }

    /// The status of every pipeline (see [`Deployer::pipeline_status`]).
    pub fn pipelines_status(&self) -> Vec<Value> {
        self.runtime
            .pipeline_names()
            .iter()
            .filter_map(|name| self.pipeline_status(name))
            .collect()
    }

    /// The status of one pipeline, `None` if it does not exist.
    pub fn pipeline_status(&self, name: &str) -> Option<Value> {
        let pipeline = self.runtime.pipeline(name).ok()?;
        let live = pipeline.live();
        let canary_share = live.canary.as_ref().map_or(0, |c| c.percent);
        let version = |v: &crate::runtime::ComponentVersion,
                       role: &str,
                       share: u8,
                       since: Option<SystemTime>| {
            let stats = v.stats.snapshot();
            json!({
                "role": role,
                "sha256": v.digest(),
                "size": v.compiled.size,
                "code": v.compiled.origin.name(),
                "preinitialised": v.compiled.preinitialised,
                "traffic_percent": share,
                "source": v.source,
                "deployed_at_ms": unix_ms(v.deployed_at),
                "live_since_ms": since.map(unix_ms),
                "requests": stats.requests,
                "errors": stats.errors,
                "error_rate": stats.error_rate(),
                "mean_latency_ms": stats.mean_ms(),
            })
        };
        let mut versions = vec![version(
            &live.stable,
            "stable",
            100 - canary_share,
            Some(live.stable_since),
        )];
        if let Some(c) = &live.canary {
            versions.push(version(&c.version, "canary", c.percent, Some(c.since)));
        }
        Some(json!({
            "name": name,
            "versions": versions,
            "previous": live.previous.as_deref().map(|p| version(p, "previous", 0, None)),
            "auto_rollback": pipeline.config.auto_rollback.as_ref().map(|r| json!({
                "margin": r.margin, "min_requests": r.min_requests,
            })),
            "smoke_requests": pipeline.config.smoke.len(),
            "quarantine": quarantine_json(&pipeline),
        }))
    }

    /// Each model's live version and where it came from.
    pub fn models_status(&self) -> Vec<Value> {
        let record = self.record.lock().unwrap_or_else(|p| p.into_inner());
        self.runtime
            .models()
            .list()
            .map(|m| {
                let saved = record.models.get(&m.name);
                let source = saved
                    .filter(|r| r.current.sha256 == m.sha256)
                    .map(|r| json!(r.current.source))
                    .unwrap_or_else(|| {
                        let path = self
                            .config
                            .models
                            .iter()
                            .find(|c| c.name == m.name)
                            .map(|c| c.path.display().to_string());
                        json!({"kind": "config", "path": path})
                    });
                json!({
                    "name": m.name,
                    "version": m.version,
                    "sha256": m.sha256,
                    "source": source,
                    "deployed_at_ms": saved.map(|r| r.current.deployed_at_ms),
                    "previous": saved.and_then(|r| r.previous.as_ref()).map(|p| json!({
                        "version": p.version, "sha256": p.sha256, "source": p.source,
                    })),
                    "inputs": m.inputs.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "outputs": m.outputs.iter().map(ToString::to_string).collect::<Vec<_>>(),
                })
            })
            .collect()
    }

    fn restore_pipeline(
        &self,
        config: &PipelineConfig,
        saved: &PipelineRecord,
    ) -> anyhow::Result<()> {
        let name = &config.name;
        let bytes = |v: &VersionRecord| self.version_bytes(v);
        let Some(stable) = bytes(&saved.stable) else {
            tracing::warn!(pipeline = %name, sha256 = %saved.stable.sha256, "recorded version is gone from the state directory; serving the config's file");
            self.runtime.load_pipeline(config)?;
            return Ok(());
        };
        let at = |v: &VersionRecord| from_unix_ms(v.deployed_at_ms);
        // The previous version first, so that deploying the stable one over it leaves
        // it as `previous` for a rollback.
        let previous = saved.previous.as_ref().and_then(|p| Some((p, bytes(p)?)));
        let mut added = false;
        if let Some((p, b)) = previous {
            match self
                .runtime
                .add_pipeline(config, &b, p.source.clone(), at(p))
            {
                Ok(_) => added = true,
                Err(e) => {
                    tracing::warn!(pipeline = %name, error = %e, "previous version not restored")
                }
            }
        }
        let restored = if added {
            self.runtime.deploy(
                name,
                &stable,
                saved.stable.source.clone(),
                at(&saved.stable),
                Rollout::Replace,
            )
        } else {
            self.runtime.add_pipeline(
                config,
                &stable,
                saved.stable.source.clone(),
                at(&saved.stable),
            )
        };
        let report = restored.map_err(|error| RuntimeError::Component {
            pipeline: name.clone(),
            path: self.component_path(&saved.stable.sha256),
            error: Box::new(error),
        })?;
        tracing::info!(
            pipeline = %name,
            version = %crate::runtime::short_digest(&report.digest),
            source = %saved.stable.source,
            origin = report.origin.name(),
            "restored the deployed version instead of the config's file"
        );
        if let Some(c) = &saved.canary
            && let Some(b) = bytes(&c.version)
            && let Err(e) = self.runtime.deploy(
                name,
                &b,
                c.version.source.clone(),
                at(&c.version),
                Rollout::Canary(c.percent),
            )
        {
            tracing::warn!(pipeline = %name, error = %e, "canary not restored");
        }
        Ok(())
    }

    /// The bytes of a recorded version, if still available with the same sha256.
    fn version_bytes(&self, v: &VersionRecord) -> Option<Vec<u8>> {
        let path = match &v.source {
            ComponentSource::Config { path } if !self.component_path(&v.sha256).exists() => {
                PathBuf::from(path)
            }
            _ => self.component_path(&v.sha256),
        };
        let bytes = std::fs::read(path).ok()?;
        (sha256_bytes(&bytes) == v.sha256).then_some(bytes)
    }

    fn save_pipeline(&self, record: &mut Record, pipeline: &str) -> Result<(), Error> {
        let Ok(p) = self.runtime.pipeline(pipeline) else {
            return Ok(());
        };
        let entry = PipelineRecord::of(&p.live());
        let before = if entry.deployed() {
            record.pipelines.insert(pipeline.to_owned(), entry)
        } else {
            record.pipelines.remove(pipeline)
        };
        self.write_record(record).inspect_err(|_| {
            match before {
                Some(b) => record.pipelines.insert(pipeline.to_owned(), b),
                None => record.pipelines.remove(pipeline),
            };
        })
    }

    fn write_record(&self, record: &Record) -> Result<(), Error> {
        let path = self.dir.join("deployments.json");
        let text = serde_json::to_vec_pretty(record).unwrap_or_default();
        crate::atomic_file::write(&path, &text).map_err(|error| Error::State { path, error })
    }

    fn component_path(&self, digest: &str) -> PathBuf {
        self.dir.join("components").join(format!("{digest}.wasm"))
    }

    fn model_path(&self, name: &str, sha256: &str) -> PathBuf {
        self.dir
            .join("models")
            .join(name)
            .join(format!("{sha256}.onnx"))
    }

    fn pipeline_config(&self, name: &str) -> Result<&PipelineConfig, DeployError> {
        self.config
            .pipeline(name)
            .ok_or_else(|| DeployError::UnknownPipeline {
                name: name.to_owned(),
                known: self.runtime.pipeline_names(),
            })
    }

    fn model_config(&self, name: &str) -> Result<&ModelConfig, DeployError> {
        self.config
            .models
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| DeployError::UnknownModel {
                name: name.to_owned(),
                known: self.config.models.iter().map(|m| m.name.clone()).collect(),
            })
    }

    fn model_version_config(
        &self,
        configured: &ModelConfig,
        v: &ModelVersionRecord,
    ) -> ModelConfig {
        if matches!(v.source, ComponentSource::Config { .. }) && v.sha256 == configured.sha256 {
            return ModelConfig {
                assets: BTreeMap::new(),
                ..configured.clone()
            };
        }
        ModelConfig {
            version: v.version.clone(),
            path: self.model_path(&configured.name, &v.sha256),
            sha256: v.sha256.clone(),
            assets: BTreeMap::new(),
            ..configured.clone()
        }
    }
}

/// A pipeline's quarantine for the admin API: its phase, the failures counted, the last
/// one's message, when it was quarantined, when a probe may run, and its rule.
fn quarantine_json(pipeline: &crate::runtime::Pipeline) -> Value {
    let q = pipeline.quarantine.status(std::time::Instant::now());
    let rule = pipeline.quarantine.rule();
    json!({
        "state": q.phase.name(),
        "consecutive_failures": q.consecutive_failures,
        "reason": q.reason,
        "since_ms": q.since().map(unix_ms),
        "retry_after_s": q.retry_after_s,
        "times": q.times,
        "after": rule.after,
        "cool_down_ms": rule.cool_down_ms,
    })
}

/// The record of a model as the config names it.
fn configured_version(m: &ModelConfig) -> ModelVersionRecord {
    ModelVersionRecord {
        version: m.version.clone(),
        sha256: m.sha256.to_ascii_lowercase(),
        source: ComponentSource::Config {
            path: m.path.display().to_string(),
        },
        deployed_at_ms: 0,
    }
}

/// The config of `m` as last deployed: the recorded version's file if there is one.
fn restored_model(dir: &Path, m: &ModelConfig, saved: Option<&ModelRecord>) -> ModelConfig {
    let Some(r) = saved else {
        return m.clone();
    };
    if matches!(r.current.source, ComponentSource::Config { .. }) {
        return m.clone();
    }
    let path = dir
        .join("models")
        .join(&m.name)
        .join(format!("{}.onnx", r.current.sha256));
    tracing::info!(model = %m.name, version = %r.current.version, "restoring the deployed model version instead of the config's file");
    ModelConfig {
        version: r.current.version.clone(),
        path,
        sha256: r.current.sha256.clone(),
        ..m.clone()
    }
}

fn read_record(dir: &Path) -> anyhow::Result<Record> {
    use anyhow::Context as _;
    let path = dir.join("deployments.json");
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("reading {path:?} (delete it to start from the config)")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Record::default()),
        Err(e) => Err(e).with_context(|| format!("reading {path:?}")),
    }
}
