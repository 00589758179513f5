//! The wasmtime side of the host: pipelines prepared once, a fresh sandbox per request.
//!
//! A [`Runtime`] owns the engine, the linker (WASI with an empty context, the host side
//! of every `hybrid:inference` interface and standard `wasi:nn` on the same models), the
//! local models and the table of pipelines. Serving a request takes these steps:
//! 1. look up the pipeline; refuse the request at once if it is quarantined (see
//!    [`quarantine`]); pick the version that serves the request (the stable one,
//!    or a canary for its share; see [`rollout`]), and take the current set of local
//!    models: both are `Arc`s, so a swap meanwhile never changes what a running request
//!    sees, and a request never mixes two versions of anything;
//! 2. create a `Store` with the request's contexts, its memory cap and epoch deadline;
//! 3. instantiate from the version's `InstancePre` (pooled memory: microseconds); for a
//!    component pre-initialised by its `init` export this is the snapshot taken after
//!    its `initialize` ran at deploy ([`preinit`]);
//! 4. call `handle` (see [`PipelineInstance`]) through the bindings of the contract
//!    version the component targets ([`contract`]: 0.1.x or 0.2, both linked; 0.1 calls
//!    are served by the 0.2 host functions through [`v0_1`]), or a `wasi:cli` command's
//!    `run` with the request as its stdin and its stdout as the answer; chunks a 0.2
//!    guest emits go to the caller's [`ChunkSink`] as they come (streamed answers); then
//!    translate traps into [`PipelineError`]s that name the cause (deadline, memory cap,
//!    panic message) and read back the model runs the guest made;
//! 5. count the outcome against the version, and drop a canary that fails too often;
//!    count it against the pipeline's quarantine too.
//!
//! Changing what is served (deploys, canaries, promotions, rollbacks, model swaps) lives
//! in [`deploy`].

mod bindings;
mod bounded_waits;
mod clock_host;
mod command_io;
mod compiled_cache;
mod component;
mod contract;
mod deploy;
mod engine;
mod error;
mod instance;
mod load;
mod local_host;
mod log_host;
mod preinit;
pub mod quarantine;
mod remote_host;
mod reply_host;
pub mod rollout;
mod signals_host;
mod state;
mod v0_1;
mod version;
mod wasi_grant;
mod wasi_nn;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Engine, Store};

pub use bindings::messages::{Error as GuestError, Request, Response, Routing};
pub use component::{ComponentError, ComponentSummary, WORLD};
pub use contract::Contract;
pub use deploy::{DeployError, DeployReport, ModelSwap, Rollout};
pub use error::PipelineError;
pub use instance::PipelineInstance;
pub use load::{Load, LoadSnapshot};
pub use local_host::ModelRunRecord;
pub use quarantine::{Phase, QuarantineStatus};
pub use remote_host::RemoteObserver;
pub use reply_host::ChunkSink;
pub use rollout::{Live, Pipeline, Role};
pub use version::{
    CompileOrigin, Compiled, ComponentSource, ComponentVersion, StatsSnapshot, VersionStats,
    short_digest,
};
pub use wasi_nn::GUEST_BYTES_LABEL;

use crate::config::{Config, NnConfig, PipelineConfig, RuntimeConfig, settings};
use crate::local::{LoadError, ModelRegistry};
use crate::remote::{CallRecord, FailedCall, Remote, SetupError};
use clock_host::ClockCtx;
use command_io::{CappedOutput, RequestStdin};
use compiled_cache::CompiledCache;
use error::failure;
use local_host::LocalCtx;
use log_host::LogCtx;
use remote_host::RemoteCtx;
use reply_host::{HasReply, ReplyCtx, ReplyView};
use signals_host::SignalsCtx;
use state::{Contexts, MAX_GUEST_STDERR, RequestState, SandboxLimits, Stdio};
use wasi_nn::NnCtx;

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
    /// A component could not be deployed (not a valid pipeline, or a smoke request
    /// failed).
    #[error("pipeline {pipeline:?}: component {path:?}: {error}")]
    Component {
        /// The pipeline.
        pipeline: String,
        /// The component file.
        path: PathBuf,
        /// What is wrong with it.
        error: Box<DeployError>,
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

impl Timings {
    /// A call on an instance that already existed: `handle` is all of it, and the model
    /// time is the sum of `runs`.
    pub fn of_call(handle: Duration, runs: &[ModelRunRecord]) -> Self {
        Self {
            instantiate: Duration::ZERO,
            handle,
            local_models: runs.iter().map(|r| r.elapsed).sum(),
            total: handle,
        }
    }
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
    /// The component version that served it (sha256 of its bytes), and in which role.
    pub component: ServedBy,
    /// The answer's chunks already went to the caller's [`ChunkSink`] as they were emitted
    /// (`response.body` then holds their text, for the record).
    pub streamed: bool,
}

/// Which component version served a request.
#[derive(Debug, Clone)]
pub struct ServedBy {
    /// Lower-case hex sha256 of the component's bytes.
    pub digest: String,
    /// Stable or canary.
    pub role: Role,
}

impl ServedBy {
    /// `version` in `role`.
    pub fn new(version: &ComponentVersion, role: Role) -> Self {
        Self {
            digest: version.digest().to_owned(),
            role,
        }
    }

    /// The first 12 hex digits of the digest, as headers and metric labels show it.
    pub fn short(&self) -> &str {
        short_digest(&self.digest)
    }
}

/// The engine, the models and the pipelines of one host process.
pub struct Runtime {
    engine: Engine,
    linker: Linker<RequestState>,
    models: RwLock<Arc<ModelRegistry>>,
    remote: Arc<Remote>,
    load: Arc<Load>,
    remote_observer: std::sync::OnceLock<RemoteObserver>,
    resume_slots: Arc<crate::local::CpuSlots>,
    pipelines: RwLock<HashMap<String, Arc<Pipeline>>>,
    compiled: CompiledCache,
    /// Serialises model swaps.
    models_changing: std::sync::Mutex<deploy::ModelHistory>,
    /// Told of every automatic canary rollback (the server counts them).
    rollback_observer: std::sync::OnceLock<RollbackObserver>,
    /// Told of every pipeline entering quarantine (the server counts them).
    quarantine_observer: std::sync::OnceLock<QuarantineObserver>,
    tick: Duration,
    /// `[runtime.nn]`: what guests may do through `wasi:nn`.
    nn: NnConfig,
    next_id: AtomicU64,
    /// The engine meters fuel: every store is given its pipeline's `limits.fuel`.
    fuel: bool,
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
            models: RwLock::new(models),
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
            compiled: CompiledCache::default(),
            models_changing: std::sync::Mutex::new(deploy::ModelHistory::default()),
            rollback_observer: std::sync::OnceLock::new(),
            quarantine_observer: std::sync::OnceLock::new(),
            tick,
            fuel: config.fuel,
            nn: config.nn,
            next_id: AtomicU64::new(0),
        })
    }

    /// Loads the models and every pipeline of `config`.
    pub fn from_config(config: &Config) -> Result<Self, RuntimeError> {
        let runtime = Self::without_pipelines(config)?;
        for pipeline in &config.pipelines {
            runtime.load_pipeline(pipeline)?;
        }
        Ok(runtime)
    }

    /// Loads the models and endpoints of `config`, but none of its pipelines (the
    /// deployer installs them, from the state directory or the config).
    pub fn without_pipelines(config: &Config) -> Result<Self, RuntimeError> {
        let models = Arc::new(ModelRegistry::load(&config.models)?);
        let remote = Arc::new(Remote::from_config(&config.endpoints, &config.budget)?);
        Self::with_remote(&config.runtime, models, remote)
    }

    /// Reads `config`'s component file and installs it as the pipeline's only version
    /// (after its smoke requests pass), replacing any pipeline of the same name.
    /// Requests already running keep the version they started with.
    pub fn load_pipeline(&self, config: &PipelineConfig) -> Result<DeployReport, RuntimeError> {
        let bytes =
            std::fs::read(&config.component).map_err(|error| RuntimeError::ReadComponent {
                pipeline: config.name.clone(),
                path: config.component.clone(),
                error,
            })?;
        let source = ComponentSource::Config {
            path: config.component.display().to_string(),
        };
        self.add_pipeline(config, &bytes, source, std::time::SystemTime::now())
            .map_err(|error| RuntimeError::Component {
                pipeline: config.name.clone(),
                path: config.component.clone(),
                error: Box::new(error),
            })
    }

    /// Compiles and type-checks component bytes against the `pipeline` world without
    /// installing them (what `hybrid check` does).
    pub fn check_component(&self, bytes: &[u8]) -> Result<ComponentSummary, ComponentError> {
        self.prepare(bytes).map(|p| p.summary)
    }

    fn prepare(&self, bytes: &[u8]) -> Result<component::Prepared, ComponentError> {
        component::prepare(&self.engine, &self.linker, bytes)
    }

    /// The local models now. A model swap replaces the registry; holders of this one
    /// keep seeing the models it had.
    pub fn models(&self) -> Arc<ModelRegistry> {
        self.models
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Turns on the on-disk cache of compiled components under `dir`, so a restarted
    /// host loads the versions it compiled before instead of compiling them again.
    pub fn cache_compiled_in(&self, dir: &std::path::Path) -> std::io::Result<()> {
        self.compiled.use_disk(&self.engine, dir)
    }

    /// Sets the function told of every automatic canary rollback (once).
    pub fn set_rollback_observer(&self, observer: RollbackObserver) {
        let _ = self.rollback_observer.set(observer);
    }

    /// Sets the function told of every pipeline entering quarantine (once).
    pub fn set_quarantine_observer(&self, observer: QuarantineObserver) {
        let _ = self.quarantine_observer.set(observer);
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
        self.serve(name, request).result
    }

    /// Serves one request on pipeline `name` in a fresh sandbox and says which version
    /// served it, whether it succeeded or not. A quarantined pipeline refuses it without
    /// running anything, or lets it through as the probe once the cool-down is over.
    pub fn serve(&self, name: &str, request: &Request) -> Served {
        self.serve_streaming(name, request, None)
    }

    /// [`Self::serve`], sending the chunks a 0.2 guest emits to `sink` as they come (see
    /// the WIT `reply` interface): the caller relays them to its client. Without a sink
    /// they are only collected into the outcome's response.
    pub fn serve_streaming(
        &self,
        name: &str,
        request: &Request,
        sink: Option<ChunkSink>,
    ) -> Served {
        let pipeline = match self.pipeline(name) {
            Ok(p) => p,
            Err(e) => {
                return Served {
                    component: None,
                    result: Err(e),
                };
            }
        };
        let pass = match pipeline.quarantine.admit(Instant::now()) {
            Ok(pass) => pass,
            Err(refusal) => {
                return Served {
                    component: None,
                    result: Err(refusal.into_error(name)),
                };
            }
        };
        if pass.is_probe() {
            tracing::info!(
                pipeline = name,
                request_id = %request.id,
                "quarantine cool-down over: letting one request through as a probe"
            );
        }
        let live = pipeline.live();
        let (version, role) = live.pick();
        let started = Instant::now();
        let served_by = ServedBy::new(&version, role);
        let result = self.run_version(&pipeline.config, &version, served_by.clone(), request, sink);
        version.stats.record(result.is_ok(), started.elapsed());
        if let Some(change) = pass.finish(quarantine::Verdict::of(&result), Instant::now()) {
            change.log(name);
            if let (quarantine::Transition::Entered { .. }, Some(observer)) =
                (&change, self.quarantine_observer.get())
            {
                observer(name);
            }
        }
        if role == Role::Canary {
            self.judge_canary(&pipeline);
        }
        Served {
            component: Some(served_by),
            result,
        }
    }

    /// Serves a request the host made up itself (a shadow of a served one, see
    /// [`crate::shadow`]) with the live version whose sha256 is `digest`, or the stable
    /// version if that one is no longer live. It is not counted against the version: made-up
    /// traffic (and its failures, such as a spent budget) never shows in the version's
    /// request counts, judges a canary or counts towards a quarantine; a quarantined
    /// pipeline refuses it.
    pub fn serve_uncounted(&self, name: &str, digest: &str, request: &Request) -> Served {
        let pipeline = match self.pipeline(name) {
            Ok(p) => p,
            Err(e) => {
                return Served {
                    component: None,
                    result: Err(e),
                };
            }
        };
        if let Some(refusal) = pipeline.quarantine.refusal(Instant::now()) {
            return Served {
                component: None,
                result: Err(refusal.into_error(name)),
            };
        }
        let live = pipeline.live();
        let (version, role) = match &live.canary {
            Some(c) if c.version.digest() == digest => (c.version.clone(), Role::Canary),
            _ => (live.stable.clone(), Role::Stable),
        };
        let served_by = ServedBy::new(&version, role);
        let result = self.run_version(&pipeline.config, &version, served_by.clone(), request, None);
        Served {
            component: Some(served_by),
            result,
        }
    }

    /// Serves `request` with one particular version of a pipeline (smoke requests use
    /// it before the version goes live).
    fn run_version(
        &self,
        config: &PipelineConfig,
        version: &Arc<ComponentVersion>,
        served_by: ServedBy,
        request: &Request,
        sink: Option<ChunkSink>,
    ) -> Result<Outcome, PipelineError> {
        let started = Instant::now();
        let _in_flight = self.load.enter();
        let mut instance =
            self.instantiate_version(config, version, served_by, &request.id, sink)?;
        let instantiated = Instant::now();
        let with_settings;
        let request = if settings::changes(&config.settings, &request.metadata) {
            with_settings = Request {
                metadata: settings::apply(&config.settings, &request.metadata),
                ..request.clone()
            };
            &with_settings
        } else {
            request
        };
        let mut outcome = instance.handle(request)?;
        outcome.timings.instantiate = instantiated - started;
        outcome.timings.total = started.elapsed();
        Ok(outcome)
    }

    /// A sandbox of pipeline `name`'s stable version that can serve several requests in
    /// turn (batch work, benchmarks). Its store, memory and state persist between calls;
    /// each call gets the pipeline's full deadline again. `request_id` tags its log lines.
    pub fn instantiate(
        &self,
        name: &str,
        request_id: &str,
    ) -> Result<PipelineInstance, PipelineError> {
        let pipeline = self.pipeline(name)?;
        let version = pipeline.stable();
        let served_by = ServedBy::new(&version, Role::Stable);
        self.instantiate_version(&pipeline.config, &version, served_by, request_id, None)
    }

    fn instantiate_version(
        &self,
        config: &PipelineConfig,
        version: &Arc<ComponentVersion>,
        served_by: ServedBy,
        request_id: &str,
        sink: Option<ChunkSink>,
    ) -> Result<PipelineInstance, PipelineError> {
        let command = version.compiled.summary.contract == Contract::Command;
        let sandbox = self.sandbox(config, request_id, sink, command, false)?;
        let mut store = sandbox.store;
        let bindings = version
            .compiled
            .pre
            .instantiate(&mut store)
            .map_err(|e| failure(&store, config, e))?;
        Ok(PipelineInstance::new(
            store,
            bindings,
            config.clone(),
            served_by,
            sandbox.deadline_ticks,
            sandbox.fuel,
            self.load.clone(),
        ))
    }

    /// A store for one sandbox of `config`: the request's contexts, its memory cap,
    /// epoch deadline and fuel. The sandbox of a component's `init` (`for_init`) has no
    /// serverless endpoints (remote calls answer `not-found`, signals list none),
    /// deterministic WASI randomness and an epoch wall clock (see [`preinit`]).
    fn sandbox(
        &self,
        config: &PipelineConfig,
        request_id: &str,
        sink: Option<ChunkSink>,
        command: bool,
        for_init: bool,
    ) -> Result<Sandbox, PipelineError> {
        let deadline = Instant::now() + config.deadline();
        let client_gone = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // One set of models for the whole request: a swap meanwhile is seen by the next.
        let models = self.models();
        let endpoints = if for_init {
            Arc::new(Remote::none())
        } else {
            self.remote.clone()
        };
        let mut remote = RemoteCtx::new(endpoints.clone(), request_id, deadline);
        if !for_init {
            if let Some(observer) = self.remote_observer.get() {
                remote.observe(&config.name, observer.clone());
            }
            remote.resume_through(self.resume_slots.clone());
        }
        remote.watch_client(client_gone.clone());
        remote.bind_embedding_identity(
            config
                .embedding_model
                .as_ref()
                .and_then(|m| models.get(m))
                .map(|m| m.info().sha256.clone()),
        );
        let cap = |bytes: u64| usize::try_from(bytes).unwrap_or(usize::MAX);
        let stdio = Stdio {
            stdin: RequestStdin::default(),
            stdout: CappedOutput::new(cap(config.limits.response_bytes)),
            // A command's stderr is its log: capped like the log. Anyone else's holds at
            // most a panic message.
            stderr: CappedOutput::new(if command {
                cap(config.limits.log_bytes)
            } else {
                MAX_GUEST_STDERR
            }),
        };
        let wasi = wasi_grant::context(config, command, for_init, &stdio).map_err(|message| {
            PipelineError::Trapped {
                pipeline: config.name.clone(),
                message,
            }
        })?;
        let mut log = LogCtx::new(&config.name, request_id);
        log.set_limits(config.limits.log_lines, config.limits.log_bytes);
        let mut local = LocalCtx::new(models);
        local.set_run_limit(config.limits.model_runs);
        let state = RequestState::new(
            SandboxLimits::new(
                config.memory_bytes(),
                config.limits.instances,
                config.limits.table_elements,
            ),
            Contexts {
                local,
                remote,
                signals: SignalsCtx::new(endpoints, self.load.clone()),
                log,
                clock: ClockCtx::new(deadline),
                reply: ReplyCtx::new(sink, client_gone),
                nn: NnCtx::new(self.nn, config.memory_bytes() as u64),
            },
            wasi,
            stdio,
        );
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        let deadline_ticks = self.deadline_ticks(config.deadline());
        store.set_epoch_deadline(deadline_ticks);
        let fuel = self.fuel.then(|| config.limits.fuel.unwrap_or(u64::MAX));
        if let Some(fuel) = fuel {
            store
                .set_fuel(fuel)
                .map_err(|e| failure(&store, config, e))?;
        }
        Ok(Sandbox {
            store,
            deadline_ticks,
            fuel,
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

/// A store ready for an instance, with the deadline and fuel each call gets.
struct Sandbox {
    store: Store<RequestState>,
    deadline_ticks: u64,
    fuel: Option<u64>,
}

/// What [`Runtime::serve`] returns: the result and the version that produced it.
pub struct Served {
    /// The version that served the request; `None` when the pipeline does not exist.
    pub component: Option<ServedBy>,
    /// The outcome.
    pub result: Result<Outcome, PipelineError>,
}

/// Called with the pipeline's name, the dropped canary's digest and the reason, after a
/// canary is rolled back automatically.
pub type RollbackObserver = Arc<dyn Fn(&str, &str, &str) + Send + Sync>;

/// Called with the pipeline's name when it enters quarantine.
pub type QuarantineObserver = Arc<dyn Fn(&str) + Send + Sync>;

/// The linker every pipeline is resolved against: the WASI it is granted (empty context,
/// waits bounded by the request's deadline, no sockets), our world in both contract
/// versions (0.2 and, delegating to it, 0.1.x), and standard `wasi:nn` on the same
/// models (see [`wasi_nn`]).
fn link(engine: &Engine) -> wasmtime::Result<Linker<RequestState>> {
    let mut linker: Linker<RequestState> = Linker::new(engine);
    wasi_grant::add_to_linker(&mut linker)?;
    bindings::local::add_to_linker::<_, HasSelf<LocalCtx>>(&mut linker, |s| &mut s.local)?;
    bindings::log::add_to_linker::<_, HasSelf<LogCtx>>(&mut linker, |s| &mut s.log)?;
    bindings::clock::add_to_linker::<_, HasSelf<ClockCtx>>(&mut linker, |s| &mut s.clock)?;
    bindings::remote::add_to_linker::<_, HasSelf<RemoteCtx>>(&mut linker, |s| &mut s.remote)?;
    bindings::signals::add_to_linker::<_, HasSelf<SignalsCtx>>(&mut linker, |s| &mut s.signals)?;
    bindings::reply::add_to_linker::<_, HasReply>(&mut linker, |s| {
        ReplyView::new(&mut s.reply, &mut s.remote)
    })?;
    v0_1::add_to_linker(&mut linker)?;
    wasi_nn::add_to_linker(&mut linker, RequestState::nn)?;
    Ok(linker)
}
