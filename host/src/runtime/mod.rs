//! The wasmtime side of the host: pipelines prepared once, a fresh sandbox per request.
//!
//! A [`Runtime`] owns the engine, the linker (WASI with an empty context plus the host
//! side of every `hybrid:inference` interface) and the table of pipelines. Serving a
//! request takes these steps:
//! 1. look up the pipeline (an `Arc`, so a pipeline swapped meanwhile does not disturb
//!    requests already holding the old one);
//! 2. create a `Store` with the request's contexts, its memory cap and epoch deadline;
//! 3. instantiate from the pipeline's `InstancePre` (pooled memory: microseconds);
//! 4. call `handle` (see [`PipelineInstance`]), then translate traps into [`PipelineError`]s that name the cause
//!    (deadline, memory cap, panic message) and read back the model runs the guest made.

mod bindings;
mod clock_host;
mod component;
mod engine;
mod error;
mod instance;
mod load;
mod local_host;
mod log_host;
mod remote_host;
mod signals_host;
mod state;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Engine, Store};

pub use bindings::messages::{Error as GuestError, Request, Response, Routing};
pub use component::{ComponentError, ComponentSummary, WORLD};
pub use error::PipelineError;
pub use instance::PipelineInstance;
pub use load::{Load, LoadSnapshot};
pub use local_host::ModelRunRecord;
pub use remote_host::RemoteObserver;

use crate::config::{Config, PipelineConfig, RuntimeConfig};
use crate::local::{LoadError, ModelRegistry};
use crate::remote::{CallRecord, FailedCall, Remote, SetupError};
use bindings::PipelinePre;
use clock_host::ClockCtx;
use error::failure;
use local_host::LocalCtx;
use log_host::LogCtx;
use remote_host::RemoteCtx;
use signals_host::SignalsCtx;
use state::{Contexts, RequestState};

/// The runtime could not start or a pipeline could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The engine could not be configured.
    #[error("cannot configure the WebAssembly engine: {0}")]
    Engine(String),
    /// A local model failed to load.
    #[error(transparent)]
    Model(#[from] LoadError),
    /// A serverless endpoint could not be set up.
    #[error(transparent)]
    Remote(#[from] SetupError),
    /// A component file could not be read.
    #[error("pipeline {pipeline:?}: cannot read component {path:?}: {error}")]
    ReadComponent {
        /// The pipeline.
        pipeline: String,
        /// The component file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// A component is not a valid pipeline.
    #[error("pipeline {pipeline:?}: component {path:?}: {error}")]
    Component {
        /// The pipeline.
        pipeline: String,
        /// The component file.
        path: PathBuf,
        /// What is wrong with it.
        error: ComponentError,
    },
}

/// How long each stage of a request took.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    /// Store creation and instantiation.
    pub instantiate: Duration,
    /// The guest's `handle`, including host calls it made.
    pub handle: Duration,
    /// Time inside local models (part of `handle`).
    pub local_models: Duration,
    /// Everything, start to finish.
    pub total: Duration,
}

/// A served request: the guest's response and what the host observed.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The guest's response, routing record included.
    pub response: Response,
    /// Local model runs made while serving it.
    pub model_runs: Vec<ModelRunRecord>,
    /// Successful serverless calls made while serving it.
    pub remote_calls: Vec<CallRecord>,
    /// Failed serverless calls made while serving it.
    pub remote_failures: Vec<FailedCall>,
    /// Stage timings.
    pub timings: Timings,
}

/// One loaded pipeline: its config and its prepared component.
pub struct Pipeline {
    /// The pipeline's configuration.
    pub config: PipelineConfig,
    /// The component's imports and exports.
    pub summary: ComponentSummary,
    /// Lower-case hex SHA-256 of the component file, reported in metrics.
    pub digest: String,
    /// The sha256 of the model its embeddings are bound to (`embedding_model`), resolved
    /// once at load.
    embedding_identity: Option<String>,
    pre: PipelinePre<RequestState>,
}

/// The engine, the models and the pipelines of one host process.
pub struct Runtime {
    engine: Engine,
    linker: Linker<RequestState>,
    models: Arc<ModelRegistry>,
    remote: Arc<Remote>,
    load: Arc<Load>,
    remote_observer: std::sync::OnceLock<RemoteObserver>,
    resume_slots: Arc<crate::local::CpuSlots>,
    pipelines: RwLock<HashMap<String, Arc<Pipeline>>>,
    tick: Duration,
    next_id: AtomicU64,
    _ticker: engine::EpochTicker,
}

impl Runtime {
    /// Starts an engine with `config`'s limits over already-loaded models and no
    /// serverless endpoints.
    pub fn new(config: &RuntimeConfig, models: Arc<ModelRegistry>) -> Result<Self, RuntimeError> {
        Self::with_remote(config, models, Arc::new(Remote::none()))
    }

    /// Starts an engine with `config`'s limits over already-loaded models and endpoints.
    pub fn with_remote(
        config: &RuntimeConfig,
        models: Arc<ModelRegistry>,
        remote: Arc<Remote>,
    ) -> Result<Self, RuntimeError> {
        let engine = engine::build(config).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let linker = link(&engine).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let tick = Duration::from_millis(config.epoch_tick_ms);
        Ok(Self {
            _ticker: engine::EpochTicker::start(engine.clone(), tick),
            engine,
            linker,
            models,
            remote,
            load: Arc::new(Load::new(config.max_instances)),
            remote_observer: std::sync::OnceLock::new(),
            // All cores but one: guests resuming after serverless calls never take the
            // last core from local-only requests.
            resume_slots: Arc::new(crate::local::CpuSlots::new(
                std::thread::available_parallelism()
                    .map_or(1, |n| n.get().saturating_sub(1).max(1)),
            )),
            pipelines: RwLock::new(HashMap::new()),
            tick,
            next_id: AtomicU64::new(0),
        })
    }

    /// Loads the models and every pipeline of `config`.
    pub fn from_config(config: &Config) -> Result<Self, RuntimeError> {
        let models = Arc::new(ModelRegistry::load(&config.models)?);
        let remote = Arc::new(Remote::from_config(&config.endpoints, &config.budget)?);
        let runtime = Self::with_remote(&config.runtime, models, remote)?;
        for pipeline in &config.pipelines {
            runtime.load_pipeline(pipeline)?;
        }
        Ok(runtime)
    }

    /// Compiles `config`'s component and installs it, replacing any pipeline of the same
    /// name. Requests already running keep the version they started with.
    pub fn load_pipeline(&self, config: &PipelineConfig) -> Result<(), RuntimeError> {
        let started = Instant::now();
        let bytes =
            std::fs::read(&config.component).map_err(|error| RuntimeError::ReadComponent {
                pipeline: config.name.clone(),
                path: config.component.clone(),
                error,
            })?;
        let prepared = self
            .prepare(&bytes)
            .map_err(|error| RuntimeError::Component {
                pipeline: config.name.clone(),
                path: config.component.clone(),
                error,
            })?;
        tracing::info!(
            pipeline = %config.name,
            bytes = bytes.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "compiled pipeline component"
        );
        let digest = {
            use sha2::Digest as _;
            hex::encode(sha2::Sha256::digest(&bytes))
        };
        let embedding_identity = config
            .embedding_model
            .as_ref()
            .and_then(|m| self.models.get(m))
            .map(|m| m.info().sha256.clone());
        let pipeline = Arc::new(Pipeline {
            config: config.clone(),
            summary: prepared.summary,
            digest,
            embedding_identity,
            pre: prepared.pre,
        });
        self.pipelines
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(config.name.clone(), pipeline);
        Ok(())
    }

    /// Compiles and type-checks component bytes against the `pipeline` world without
    /// installing them (what `hybrid check` does).
    pub fn check_component(&self, bytes: &[u8]) -> Result<ComponentSummary, ComponentError> {
        self.prepare(bytes).map(|p| p.summary)
    }

    fn prepare(&self, bytes: &[u8]) -> Result<component::Prepared, ComponentError> {
        component::prepare(&self.engine, &self.linker, bytes)
    }

    /// The local models.
    pub fn models(&self) -> &Arc<ModelRegistry> {
        &self.models
    }

    /// The serverless endpoints.
    pub fn remote(&self) -> &Arc<Remote> {
        &self.remote
    }

    /// Sets the function told of every serverless call as it finishes (once; the server
    /// uses it for metrics, which then include calls of requests that failed).
    pub fn set_remote_observer(&self, observer: RemoteObserver) {
        let _ = self.remote_observer.set(observer);
    }

    /// The box's load counters.
    pub fn load(&self) -> &Arc<Load> {
        &self.load
    }

    /// The wasmtime engine (for benchmarks and tools).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Names of the loaded pipelines, sorted.
    pub fn pipeline_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.read_pipelines().keys().cloned().collect();
        names.sort();
        names
    }

    /// The pipeline named `name`.
    pub fn pipeline(&self, name: &str) -> Result<Arc<Pipeline>, PipelineError> {
        self.read_pipelines()
            .get(name)
            .cloned()
            .ok_or_else(|| PipelineError::UnknownPipeline {
                name: name.to_owned(),
                known: self.pipeline_names(),
            })
    }

    fn read_pipelines(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Pipeline>>> {
        self.pipelines
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new request id, unique within this process and unlikely to repeat across restarts.
    pub fn new_request_id(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let start = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        format!("req-{start:x}-{n}")
    }

    /// Serves one request on pipeline `name` in a fresh sandbox.
    pub fn handle(&self, name: &str, request: &Request) -> Result<Outcome, PipelineError> {
        let started = Instant::now();
        let _in_flight = self.load.enter();
        let mut instance = self.instantiate(name, &request.id)?;
        let instantiated = Instant::now();
        let mut outcome = instance.handle(request)?;
        outcome.timings.instantiate = instantiated - started;
        outcome.timings.total = started.elapsed();
        Ok(outcome)
    }

    /// A sandbox of pipeline `name` that can serve several requests in turn (batch
    /// work, benchmarks). Its store, memory and state persist between calls; each call
    /// gets the pipeline's full deadline again. `request_id` tags its log lines.
    pub fn instantiate(
        &self,
        name: &str,
        request_id: &str,
    ) -> Result<PipelineInstance, PipelineError> {
        let pipeline = self.pipeline(name)?;
        let config = &pipeline.config;
        let deadline = Instant::now() + config.deadline();
        let mut remote = RemoteCtx::new(self.remote.clone(), request_id, deadline);
        if let Some(observer) = self.remote_observer.get() {
            remote.observe(&config.name, observer.clone());
        }
        remote.resume_through(self.resume_slots.clone());
        remote.bind_embedding_identity(pipeline.embedding_identity.clone());
        let state = RequestState::new(
            config.memory_bytes(),
            Contexts {
                local: LocalCtx::new(self.models.clone()),
                remote,
                signals: SignalsCtx::new(self.remote.clone(), self.load.clone()),
                log: LogCtx::new(&config.name, request_id),
                clock: ClockCtx::new(deadline),
            },
        );
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        let deadline_ticks = self.deadline_ticks(config.deadline());
        store.set_epoch_deadline(deadline_ticks);
        let bindings = pipeline
            .pre
            .instantiate(&mut store)
            .map_err(|e| failure(&store, config, e))?;
        Ok(PipelineInstance::new(
            store,
            bindings,
            pipeline,
            deadline_ticks,
            self.load.clone(),
        ))
    }

    /// Epoch ticks that cover `deadline`, plus one for the partly elapsed current tick.
    fn deadline_ticks(&self, deadline: Duration) -> u64 {
        let tick = self.tick.as_nanos().max(1);
        u64::try_from(deadline.as_nanos().div_ceil(tick))
            .unwrap_or(u64::MAX)
            .saturating_add(1)
    }
}

/// The linker every pipeline is resolved against: WASI (empty context) and our world.
fn link(engine: &Engine) -> wasmtime::Result<Linker<RequestState>> {
    let mut linker: Linker<RequestState> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    bindings::local::add_to_linker::<_, HasSelf<LocalCtx>>(&mut linker, |s| &mut s.local)?;
    bindings::log::add_to_linker::<_, HasSelf<LogCtx>>(&mut linker, |s| &mut s.log)?;
    bindings::clock::add_to_linker::<_, HasSelf<ClockCtx>>(&mut linker, |s| &mut s.clock)?;
    bindings::remote::add_to_linker::<_, HasSelf<RemoteCtx>>(&mut linker, |s| &mut s.remote)?;
    bindings::signals::add_to_linker::<_, HasSelf<SignalsCtx>>(&mut linker, |s| &mut s.signals)?;
    Ok(linker)
}
