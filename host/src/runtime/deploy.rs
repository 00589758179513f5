//! Changing what a running box serves: the one place where components and models are
//! swapped. Start-up, the admin API and watch mode all come through here.
//!
//! Deploying a component takes these steps, none of which touches live traffic until
//! the last:
//! 1. name the bytes by their sha256 and get them compiled and type-checked against
//!    the `pipeline` world (from memory or the disk cache when this version was seen
//!    before; see [`super::compiled_cache`]); a component exporting
//!    `hybrid:inference/init` is pre-initialised first, its `initialize` run in a sandbox
//!    of the pipeline and the snapshot compiled instead (see [`super::preinit`]);
//! 2. run the pipeline's smoke requests through the new version in fresh sandboxes,
//!    each of which must answer with its expected status (skipped for a version that
//!    already passed them against the same set of models);
//! 3. swap the pipeline's live set in one step: the new version becomes the stable one,
//!    or a canary taking a share of requests ([`Rollout`]).
//!
//! A model swap loads the new file, refuses it unless its inputs and outputs match the
//! current model's exactly, then replaces the model registry in one step; requests
//! already running keep the registry they started with.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::compiled_cache::Preinit;
use super::preinit::InitFailure;
use super::rollout::{Live, Pipeline, Role, judge};
use super::version::{CompileOrigin, ComponentSource, ComponentVersion};
use super::{ComponentError, Request, Runtime};
use crate::config::PipelineConfig;
use crate::local::LocalModel;

/// How a new version goes live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rollout {
    /// It replaces the stable version for every request.
    Replace,
    /// It takes this percentage (1 to 99) of requests; the stable version keeps the rest.
    Canary(u8),
}

/// What a successful deploy did.
#[derive(Debug, Clone)]
pub struct DeployReport {
    /// The pipeline.
    pub pipeline: String,
    /// The new version: lower-case hex sha256 of its bytes.
    pub digest: String,
    /// Size of the component in bytes.
    pub size: usize,
    /// How the code was obtained and what that cost (for a pre-initialised component,
    /// its `initialize` and the snapshot included).
    pub origin: CompileOrigin,
    /// The code is a snapshot taken after the component's `initialize` ran (it exports
    /// `hybrid:inference/init`; see [`super::preinit`]).
    pub preinitialised: bool,
    /// Smoke requests run (0 when skipped because this version passed them before).
    pub smoke_requests: usize,
    /// Time spent on smoke requests.
    pub smoke: Duration,
    /// Everything, from the bytes to live.
    pub total: Duration,
    /// How it went live.
    pub rollout: Rollout,
}

/// What a model swap or model rollback did.
#[derive(Debug, Clone)]
pub struct ModelSwap {
    /// The model's name.
    pub name: String,
    /// The version now live.
    pub version: String,
    /// Its sha256.
    pub sha256: String,
    /// The version it replaced.
    pub previous_version: String,
    /// The sha256 of the version it replaced.
    pub previous_sha256: String,
}

/// Why a deploy, promotion or rollback was refused. Nothing changed when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// No pipeline of that name.
    #[error("unknown pipeline {name:?}; configured pipelines: [{}]", known.join(", "))]
    UnknownPipeline {
        /// The name asked for.
        name: String,
        /// The configured pipelines.
        known: Vec<String>,
    },
    /// The bytes are not a component implementing the `pipeline` world.
    #[error(transparent)]
    Component(#[from] ComponentError),
    /// A directory the pipeline's config preopens for it does not exist (or is not a
    /// directory).
    #[error("{0}")]
    Preopen(String),
    /// A smoke request's body could not be read.
    #[error("cannot read smoke request {path:?}: {error}")]
    SmokeRead {
        /// The file.
        path: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// A smoke request did not get its expected status.
    #[error("smoke request {index} ({path}) answered {got} instead of {expected}: {message}")]
    Smoke {
        /// 1-based position in the pipeline's `smoke` list.
        index: usize,
        /// Its body file.
        path: String,
        /// The configured status.
        expected: u16,
        /// The status the new version produced.
        got: u16,
        /// The error, or `answered successfully`.
        message: String,
    },
    /// A canary percentage outside 1 to 99.
    #[error("canary share must be between 1 and 99 percent, got {0}")]
    BadShare(u32),
    /// `promote` without a canary.
    #[error("pipeline {0:?} has no canary to promote")]
    NoCanary(String),
    /// `rollback` with neither a canary nor a previous version.
    #[error("pipeline {0:?} has no canary and no previous version to roll back to")]
    NothingToRollBack(String),
    /// No model of that name.
    #[error("unknown model {name:?}; configured models: [{}]", known.join(", "))]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// The configured models.
        known: Vec<String>,
    },
    /// The new model file did not load.
    #[error(transparent)]
    ModelLoad(#[from] crate::local::LoadError),
    /// The new model's inputs or outputs differ from the current model's.
    #[error("model {name:?} refused: {difference}")]
    ModelSignature {
        /// The model.
        name: String,
        /// What differs.
        difference: String,
    },
    /// A model rollback with no earlier version in this process.
    #[error("model {0:?} has no previous version to roll back to")]
    NoPreviousModel(String),
}

impl DeployError {
    /// The HTTP status the admin API answers with.
    pub fn status(&self) -> u16 {
        match self {
            Self::UnknownPipeline { .. } | Self::UnknownModel { .. } => 404,
            Self::BadShare(_) => 400,
            Self::NoCanary(_) | Self::NothingToRollBack(_) | Self::NoPreviousModel(_) => 409,
            Self::SmokeRead { .. } | Self::Preopen(_) => 500,
            Self::Component(_)
            | Self::Smoke { .. }
            | Self::ModelLoad(_)
            | Self::ModelSignature { .. } => 422,
        }
    }

    /// A short machine-readable code for the admin API's error body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownPipeline { .. } => "pipeline_not_found",
            Self::UnknownModel { .. } => "model_not_found",
            Self::Component(ComponentError::NotWasm) => "not_wasm",
            Self::Component(ComponentError::CoreModule) => "core_module",
            Self::Component(ComponentError::Imports(_) | ComponentError::Exports(_)) => {
                "wrong_world"
            }
            Self::Component(ComponentError::Invalid(_)) => "invalid_component",
            Self::Component(ComponentError::Init { .. }) => "init_failed",
            Self::SmokeRead { .. } => "smoke_unreadable",
            Self::Preopen(_) => "preopen_missing",
            Self::Smoke { .. } => "smoke_failed",
            Self::BadShare(_) => "bad_canary_share",
            Self::NoCanary(_) => "no_canary",
            Self::NothingToRollBack(_) | Self::NoPreviousModel(_) => "nothing_to_roll_back",
            Self::ModelLoad(_) => "model_unloadable",
            Self::ModelSignature { .. } => "model_signature",
        }
    }
}

/// What model swaps remember: the version each model replaced, and which component
/// versions passed their pipeline's smoke requests against which set of models.
#[derive(Default)]
pub struct ModelHistory {
    previous: HashMap<String, Arc<LocalModel>>,
    smoke_passed: HashSet<(String, String, u64)>,
}

impl Runtime {
    /// Installs a new pipeline (or replaces one of the same name) with `bytes` as its
    /// only version, after its smoke requests pass.
    pub fn add_pipeline(
        &self,
        config: &PipelineConfig,
        bytes: &[u8],
        source: ComponentSource,
        deployed_at: SystemTime,
    ) -> Result<DeployReport, DeployError> {
        let started = Instant::now();
        super::wasi_grant::check_preopens(config).map_err(DeployError::Preopen)?;
        let version = self.version(config, bytes, source, deployed_at)?;
        let (smoke_requests, smoke) = self.smoke(config, &version)?;
        let report = report(
            config,
            &version,
            smoke_requests,
            smoke,
            started,
            Rollout::Replace,
        );
        let pipeline = Arc::new(Pipeline::new(config.clone(), Live::only(version)));
        self.pipelines
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(config.name.clone(), pipeline);
        Ok(report)
    }

    /// Deploys `bytes` to pipeline `name`: compiled, smoke-tested, then live as the
    /// stable version or as a canary.
    pub fn deploy(
        &self,
        name: &str,
        bytes: &[u8],
        source: ComponentSource,
        deployed_at: SystemTime,
        rollout: Rollout,
    ) -> Result<DeployReport, DeployError> {
        let started = Instant::now();
        if let Rollout::Canary(share) = rollout
            && !(1..=99).contains(&share)
        {
            return Err(DeployError::BadShare(u32::from(share)));
        }
        let pipeline = self.deploy_target(name)?;
        let _changing = pipeline.changing.lock().unwrap_or_else(|p| p.into_inner());
        let version = self.version(&pipeline.config, bytes, source, deployed_at)?;
        let (smoke_requests, smoke) = self.smoke(&pipeline.config, &version)?;
        let live = pipeline.live();
        let next = match rollout {
            Rollout::Replace => live.replaced_by(version.clone()),
            Rollout::Canary(share) => live.with_canary(version.clone(), share),
        };
        pipeline.replace(next);
        let report = report(
            &pipeline.config,
            &version,
            smoke_requests,
            smoke,
            started,
            rollout,
        );
        tracing::info!(
            pipeline = name,
            version = %version.short(),
            source = %version.source,
            origin = report.origin.name(),
            compile_ms = report.origin.elapsed().as_secs_f64() * 1e3,
            preinitialised = report.preinitialised,
            smoke_requests,
            total_ms = report.total.as_secs_f64() * 1e3,
            rollout = ?rollout,
            "deployed component"
        );
        Ok(report)
    }

    /// Makes pipeline `name`'s canary its only version.
    pub fn promote(&self, name: &str) -> Result<Arc<ComponentVersion>, DeployError> {
        let pipeline = self.deploy_target(name)?;
        let _changing = pipeline.changing.lock().unwrap_or_else(|p| p.into_inner());
        let live = pipeline.live();
        let canary = live
            .canary
            .as_ref()
            .ok_or_else(|| DeployError::NoCanary(name.to_owned()))?;
        pipeline.replace(live.replaced_by(canary.version.clone()));
        tracing::info!(pipeline = name, version = %canary.version.short(), "promoted canary");
        Ok(canary.version.clone())
    }

    /// Drops pipeline `name`'s canary if it has one; otherwise makes the previous
    /// version stable again (and the current one previous, so a second rollback undoes
    /// the first). Returns the version now serving every request.
    pub fn rollback(&self, name: &str) -> Result<Arc<ComponentVersion>, DeployError> {
        let pipeline = self.deploy_target(name)?;
        let _changing = pipeline.changing.lock().unwrap_or_else(|p| p.into_inner());
        let live = pipeline.live();
        if let Some(canary) = &live.canary {
            pipeline.replace(Live {
                canary: None,
                ..(*live).clone()
            });
            tracing::info!(pipeline = name, dropped = %canary.version.short(), "rolled back canary");
            return Ok(live.stable.clone());
        }
        let previous = live
            .previous
            .clone()
            .ok_or_else(|| DeployError::NothingToRollBack(name.to_owned()))?;
        pipeline.replace(live.replaced_by(previous.clone()));
        tracing::info!(pipeline = name, from = %live.stable.short(), to = %previous.short(), "rolled back");
        Ok(previous)
    }

    /// Drops the canary of `pipeline` if it fails too often (its `auto_rollback` rule).
    pub(super) fn judge_canary(&self, pipeline: &Pipeline) {
        let Some(rule) = &pipeline.config.auto_rollback else {
            return;
        };
        let live = pipeline.live();
        let Some(canary) = &live.canary else {
            return;
        };
        let Some(reason) = judge(canary, live.stable.stats.snapshot(), rule) else {
            return;
        };
        // A deploy under way holds the lock; the canary's next request judges again.
        let Ok(_changing) = pipeline.changing.try_lock() else {
            return;
        };
        let now = pipeline.live();
        let same = now
            .canary
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(&c.version, &canary.version));
        if !same {
            return;
        }
        pipeline.replace(Live {
            canary: None,
            ..(*now).clone()
        });
        let name = &pipeline.config.name;
        tracing::warn!(pipeline = %name, dropped = %canary.version.short(), %reason, "canary rolled back automatically");
        if let Some(observer) = self.rollback_observer.get() {
            observer(name, canary.version.digest(), &reason);
        }
    }

    /// Replaces local model `model`'s current version with `model` (same name), if its
    /// inputs and outputs match exactly. The model's assets stay those of the current
    /// version. Requests already running keep the version they started with.
    pub fn replace_model(&self, model: LocalModel) -> Result<ModelSwap, DeployError> {
        let mut history = self
            .models_changing
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let current = self.models();
        let name = model.info().name.clone();
        let old = current
            .get(&name)
            .cloned()
            .ok_or_else(|| DeployError::UnknownModel {
                name: name.clone(),
                known: current.list().map(|m| m.name.clone()).collect(),
            })?;
        if let Some(difference) = model.signature_difference(&old) {
            return Err(DeployError::ModelSignature { name, difference });
        }
        let model = Arc::new(model.with_assets_of(&old));
        self.swap_models(current.with_model(model.clone()));
        history.previous.insert(name.clone(), old.clone());
        tracing::info!(model = %name, version = %model.info().version, replaced = %old.info().version, "swapped local model");
        Ok(swap_report(&model, &old))
    }

    /// Puts back the model version that model `name`'s last swap replaced.
    pub fn rollback_model(&self, name: &str) -> Result<ModelSwap, DeployError> {
        let mut history = self
            .models_changing
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let current = self.models();
        let now = current
            .get(name)
            .cloned()
            .ok_or_else(|| DeployError::UnknownModel {
                name: name.to_owned(),
                known: current.list().map(|m| m.name.clone()).collect(),
            })?;
        let previous = history
            .previous
            .remove(name)
            .ok_or_else(|| DeployError::NoPreviousModel(name.to_owned()))?;
        self.swap_models(current.with_model(previous.clone()));
        history.previous.insert(name.to_owned(), now.clone());
        tracing::info!(model = %name, version = %previous.info().version, replaced = %now.info().version, "rolled back local model");
        Ok(swap_report(&previous, &now))
    }

    fn swap_models(&self, registry: crate::local::ModelRegistry) {
        *self
            .models
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(registry);
    }

    fn deploy_target(&self, name: &str) -> Result<Arc<Pipeline>, DeployError> {
        self.pipeline(name)
            .map_err(|_| DeployError::UnknownPipeline {
                name: name.to_owned(),
                known: self.pipeline_names(),
            })
    }

    /// The compiled version of `bytes` for pipeline `config`: pre-initialised (unless
    /// the pipeline sets `preinit = false`) when the component exports `init`.
    fn version(
        &self,
        config: &PipelineConfig,
        bytes: &[u8],
        source: ComponentSource,
        deployed_at: SystemTime,
    ) -> Result<Arc<ComponentVersion>, DeployError> {
        let run = |bytes: &[u8], export: &str| self.initialize(config, bytes, export);
        let inputs = || super::preinit::inputs(&self.models());
        let preinit = config.preinit.then_some(Preinit {
            inputs: &inputs,
            run: &run,
        });
        let compiled = self
            .compiled
            .get(&self.engine, &self.linker, bytes, preinit.as_ref())?;
        Ok(Arc::new(ComponentVersion::new(
            compiled,
            source,
            deployed_at,
        )))
    }

    /// Runs the `initialize` of component `bytes` (its export `export`) in a sandbox of
    /// pipeline `config` and returns the snapshot (see [`super::preinit`]). Failures name
    /// the component and the reason, as a request's would (deadline, memory cap, fuel,
    /// trap with the guest's panic message, a per-request limit).
    fn initialize(
        &self,
        config: &PipelineConfig,
        bytes: &[u8],
        export: &str,
    ) -> Result<Vec<u8>, ComponentError> {
        let started = Instant::now();
        let digest = crate::local::sha256_bytes(bytes);
        let short = super::short_digest(&digest).to_owned();
        let fail = |reason: String| ComponentError::Init {
            digest: short.clone(),
            reason,
        };
        let request_id = format!("init-{short}");
        let mut store = self
            .sandbox(config, &request_id, None, false, true)
            .map_err(|e| fail(e.to_string()))?
            .store;
        let snapshot = super::preinit::snapshot(&self.linker, bytes, export, &mut store);
        let state = store.data();
        let limit = if state.local.limit_hit {
            Some(crate::config::Limit::ModelRuns)
        } else {
            state.log.limit_hit
        };
        if let Some(limit) = limit {
            return Err(fail(format!(
                "its initialize went past the limit of {} {} (limits.{})",
                config.limits.max(limit),
                limit.unit(),
                limit.name()
            )));
        }
        let snapshot = snapshot.map_err(|failure| {
            fail(match failure {
                InitFailure::Returned(message) => {
                    format!("its initialize returned an error: {message}")
                }
                InitFailure::Trapped(e) => super::error::failure(&store, config, e).to_string(),
                InitFailure::Unsupported(message) => {
                    format!("its state cannot be snapshotted: {message}")
                }
            })
        })?;
        tracing::info!(
            pipeline = %config.name,
            version = %short,
            init_ms = started.elapsed().as_secs_f64() * 1e3,
            snapshot_bytes = snapshot.len(),
            "pre-initialised component by its init export"
        );
        Ok(snapshot)
    }

    /// Runs `config`'s smoke requests through `version`; returns how many ran and how
    /// long they took.
    fn smoke(
        &self,
        config: &PipelineConfig,
        version: &Arc<ComponentVersion>,
    ) -> Result<(usize, Duration), DeployError> {
        if config.smoke.is_empty() {
            return Ok((0, Duration::ZERO));
        }
        let generation = self.models().generation();
        let key = (config.name.clone(), version.digest().to_owned(), generation);
        let passed = |history: &ModelHistory| history.smoke_passed.contains(&key);
        if passed(
            &self
                .models_changing
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        ) {
            return Ok((0, Duration::ZERO));
        }
        let started = Instant::now();
        for (i, smoke) in config.smoke.iter().enumerate() {
            let path = smoke.body.display().to_string();
            let body = std::fs::read(&smoke.body).map_err(|error| DeployError::SmokeRead {
                path: path.clone(),
                error,
            })?;
            let request = Request {
                id: format!("smoke-{}-{}", version.short(), i + 1),
                content_type: smoke.content_type.clone(),
                body,
                metadata: smoke
                    .metadata
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            };
            let served_by = super::ServedBy::new(version, Role::Canary);
            let result = self.run_version(config, version, served_by, &request, None);
            let (got, message) = match &result {
                Ok(_) => (200, "answered successfully".to_owned()),
                Err(e) => (e.status(), e.to_string()),
            };
            if got != smoke.status {
                return Err(DeployError::Smoke {
                    index: i + 1,
                    path,
                    expected: smoke.status,
                    got,
                    message,
                });
            }
        }
        self.models_changing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .smoke_passed
            .insert(key);
        Ok((config.smoke.len(), started.elapsed()))
    }
}

fn report(
    config: &PipelineConfig,
    version: &ComponentVersion,
    smoke_requests: usize,
    smoke: Duration,
    started: Instant,
    rollout: Rollout,
) -> DeployReport {
    DeployReport {
        pipeline: config.name.clone(),
        digest: version.digest().to_owned(),
        size: version.compiled.size,
        origin: version.compiled.origin,
        preinitialised: version.compiled.preinitialised,
        smoke_requests,
        smoke,
        total: started.elapsed(),
        rollout,
    }
}

fn swap_report(now: &LocalModel, before: &LocalModel) -> ModelSwap {
    ModelSwap {
        name: now.info().name.clone(),
        version: now.info().version.clone(),
        sha256: now.info().sha256.clone(),
        previous_version: before.info().version.clone(),
        previous_sha256: before.info().sha256.clone(),
    }
}
