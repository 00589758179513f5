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
mod local_host;
mod log_host;
mod state;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Engine, Store, Trap};

pub use bindings::messages::{Error as GuestError, Request, Response, Routing};
pub use component::{ComponentError, ComponentSummary, WORLD};
pub use local_host::ModelRunRecord;

use crate::config::{Config, PipelineConfig, RuntimeConfig};
use crate::local::{LoadError, ModelRegistry};
use bindings::PipelinePre;
use clock_host::ClockCtx;
use local_host::LocalCtx;
use log_host::LogCtx;
use state::RequestState;

/// The runtime could not start or a pipeline could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The engine could not be configured.
    #[error("cannot configure the WebAssembly engine: {0}")]
    Engine(String),
    /// A local model failed to load.
    #[error(transparent)]
    Model(#[from] LoadError),
    /// A component file could not be read.
    #[error("pipeline {pipeline:?}: cannot read component {path:?}: {source}")]
    ReadComponent {
        /// The pipeline.
        pipeline: String,
        /// The component file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A component is not a valid pipeline.
    #[error("pipeline {pipeline:?}: component {path:?}: {source}")]
    Component {
        /// The pipeline.
        pipeline: String,
        /// The component file.
        path: PathBuf,
        /// What is wrong with it.
        source: ComponentError,
    },
}

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
        /// `bad-request`, `unsupported`, `upstream` or `internal`.
        kind: &'static str,
        /// The guest's message.
        message: String,
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
    /// Every instance slot is in use.
    #[error("no free instance slot for pipeline {pipeline:?}: {message}")]
    Overloaded {
        /// The pipeline.
        pipeline: String,
        /// The allocator's explanation.
        message: String,
    },
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
                _ => 500,
            },
            Self::DeadlineExceeded { .. } => 504,
            Self::MemoryExceeded { .. } | Self::Trapped { .. } => 500,
            Self::Overloaded { .. } => 503,
        }
    }
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
    /// Stage timings.
    pub timings: Timings,
}

/// One loaded pipeline: its config and its prepared component.
pub struct Pipeline {
    /// The pipeline's configuration.
    pub config: PipelineConfig,
    /// The component's imports and exports.
    pub summary: ComponentSummary,
    pre: PipelinePre<RequestState>,
}

/// The engine, the models and the pipelines of one host process.
pub struct Runtime {
    engine: Engine,
    linker: Linker<RequestState>,
    models: Arc<ModelRegistry>,
    pipelines: RwLock<HashMap<String, Arc<Pipeline>>>,
    tick: Duration,
    next_id: AtomicU64,
    _ticker: engine::EpochTicker,
}

impl Runtime {
    /// Starts an engine with `config`'s limits over already-loaded models.
    pub fn new(config: &RuntimeConfig, models: Arc<ModelRegistry>) -> Result<Self, RuntimeError> {
        let engine = engine::build(config).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let linker = link(&engine).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let tick = Duration::from_millis(config.epoch_tick_ms);
        Ok(Self {
            _ticker: engine::EpochTicker::start(engine.clone(), tick),
            engine,
            linker,
            models,
            pipelines: RwLock::new(HashMap::new()),
            tick,
            next_id: AtomicU64::new(0),
        })
    }

    /// Loads the models and every pipeline of `config`.
    pub fn from_config(config: &Config) -> Result<Self, RuntimeError> {
        let models = Arc::new(ModelRegistry::load(&config.models)?);
        let runtime = Self::new(&config.runtime, models)?;
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
            std::fs::read(&config.component).map_err(|source| RuntimeError::ReadComponent {
                pipeline: config.name.clone(),
                path: config.component.clone(),
                source,
            })?;
        let prepared = self
            .prepare(&bytes)
            .map_err(|source| RuntimeError::Component {
                pipeline: config.name.clone(),
                path: config.component.clone(),
                source,
            })?;
        tracing::info!(
            pipeline = %config.name,
            bytes = bytes.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "compiled pipeline component"
        );
        let pipeline = Arc::new(Pipeline {
            config: config.clone(),
            summary: prepared.summary,
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
        let state = RequestState::new(
            LocalCtx::new(self.models.clone()),
            LogCtx::new(&config.name, request_id),
            ClockCtx::new(Instant::now() + config.deadline()),
            config.memory_bytes(),
        );
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        let deadline_ticks = self.deadline_ticks(config.deadline());
        store.set_epoch_deadline(deadline_ticks);
        let bindings = pipeline
            .pre
            .instantiate(&mut store)
            .map_err(|e| failure(&store, config, e))?;
        Ok(PipelineInstance {
            store,
            bindings,
            pipeline,
            deadline_ticks,
            poisoned: false,
        })
    }

    /// Epoch ticks that cover `deadline`, plus one for the partly elapsed current tick.
    fn deadline_ticks(&self, deadline: Duration) -> u64 {
        let tick = self.tick.as_nanos().max(1);
        u64::try_from(deadline.as_nanos().div_ceil(tick))
            .unwrap_or(u64::MAX)
            .saturating_add(1)
    }
}

/// A live instance of a pipeline's component. After a trap it is poisoned: the guest's
/// state is unknown, so further calls are refused.
pub struct PipelineInstance {
    store: Store<RequestState>,
    bindings: bindings::Pipeline,
    pipeline: Arc<Pipeline>,
    deadline_ticks: u64,
    poisoned: bool,
}

impl PipelineInstance {
    /// Calls the guest's `handle` with a fresh deadline.
    pub fn handle(&mut self, request: &Request) -> Result<Outcome, PipelineError> {
        let config = &self.pipeline.config;
        if self.poisoned {
            return Err(PipelineError::Trapped {
                pipeline: config.name.clone(),
                message: "this instance trapped earlier and cannot serve again".into(),
            });
        }
        let started = Instant::now();
        self.store.set_epoch_deadline(self.deadline_ticks);
        self.store.data_mut().clock = ClockCtx::new(started + config.deadline());
        let result = self
            .bindings
            .call_handle(&mut self.store, request)
            .map_err(|e| {
                self.poisoned = true;
                failure(&self.store, config, e)
            })?;
        let finished = Instant::now();
        let state = self.store.data_mut();
        if state.log.dropped > 0 {
            tracing::warn!(pipeline = %config.name, request_id = %request.id, dropped = state.log.dropped, "guest log lines dropped");
            state.log.dropped = 0;
        }
        let model_runs = std::mem::take(&mut state.local.runs);
        let response = result.map_err(|e| rejected(config, e))?;
        Ok(Outcome {
            timings: Timings {
                instantiate: Duration::ZERO,
                handle: finished - started,
                local_models: model_runs.iter().map(|r| r.elapsed).sum(),
                total: finished - started,
            },
            response,
            model_runs,
        })
    }
}

/// The linker every pipeline is resolved against: WASI (empty context) and our world.
fn link(engine: &Engine) -> wasmtime::Result<Linker<RequestState>> {
    let mut linker: Linker<RequestState> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    bindings::local::add_to_linker::<_, HasSelf<LocalCtx>>(&mut linker, |s| &mut s.local)?;
    bindings::log::add_to_linker::<_, HasSelf<LogCtx>>(&mut linker, |s| &mut s.log)?;
    bindings::clock::add_to_linker::<_, HasSelf<ClockCtx>>(&mut linker, |s| &mut s.clock)?;
    Ok(linker)
}

/// Names the cause of a trap or instantiation failure.
fn failure(
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
    if store.data().limits.exceeded {
        return PipelineError::MemoryExceeded {
            pipeline,
            cap_mib: config.memory_mib,
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

fn rejected(config: &PipelineConfig, error: GuestError) -> PipelineError {
    let (kind, message) = match error {
        GuestError::BadRequest(m) => ("bad-request", m),
        GuestError::Unsupported(m) => ("unsupported", m),
        GuestError::Upstream(m) => ("upstream", m),
        GuestError::Internal(m) => ("internal", m),
    };
    PipelineError::Rejected {
        pipeline: config.name.clone(),
        kind,
        message,
    }
}
