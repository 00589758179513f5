//! `hybrid serve`: the edge box's HTTP front.
//!
//! # Concurrency
//! HTTP is async (tokio + axum on a small multi-threaded runtime); guests are not.
//! wasmtime runs each request synchronously, and a guest's serverless call blocks its
//! thread for as long as the provider takes (seconds). So every admitted request runs on
//! tokio's blocking pool: one thread per request in flight, which costs memory, not CPU,
//! while it waits on the network. What must not be oversubscribed is the CPU, so local
//! model runs take one of a fixed number of per-core slots ([`crate::local::CpuSlots`]),
//! and a guest resuming after a serverless call first takes one of `cores - 1` resume
//! slots (released again before its next call). Hundreds of slow calls tend to come back
//! together; the resume slots make them finish their guest work on all but one core, so
//! local-only requests beside them always keep a core. Admission
//! ([`admission`]) bounds how many run at once (`server.max_concurrency`, at most the
//! pooling allocator's instance slots) and how many may wait (`server.max_queue`); beyond
//! that the answer is an immediate 503 with `Retry-After`. Shadow requests
//! ([`crate::shadow`]) start after a client's answer is built, on a thread of their own,
//! and only on a worker slot that is free at that moment with nobody queued for one.
//!
//! # Life cycle
//! Models load and components compile before the port is bound, so `/readyz` is true from
//! the first request. With `[admin]` configured and its token set, the admin API
//! ([`routes::admin`]) listens on its own address and deploys into the running box; with
//! `--watch`, changed component and model files are deployed too. SIGTERM or Ctrl-C stops
//! accepting connections, lets in-flight requests finish for up to
//! `server.drain_timeout_ms`, then exits 0.

mod admission;
pub mod metrics;
mod reply;
mod routes;
mod stream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::serve::ListenerExt;

use crate::config::{Config, OpenAiModel};
use crate::deploy::Deployer;
use crate::runtime::{ChunkSink, Outcome, PipelineError, Request, Runtime};
use crate::shadow::Shadows;
use admission::Admission;
use metrics::{Metrics, RemoteCallSample};

/// Everything a handler needs, shared across requests.
pub struct AppState {
    runtime: Arc<Runtime>,
    admission: Admission,
    metrics: Arc<Metrics>,
    shadows: Shadows,
    openai_models: Vec<OpenAiModel>,
    max_body_bytes: usize,
    retry_after_s: u32,
}

/// Why a request was not served by its pipeline.
pub enum Refusal {
    /// The box is full.
    Busy,
    /// The pipeline failed; the component version that failed, when one ran.
    Pipeline(PipelineError, Option<String>),
    /// The worker thread died (a host bug).
    Internal(String),
}

impl AppState {
    /// Runs `request` on pipeline `name` on a blocking worker once admitted, and records
    /// its metrics.
    async fn execute(&self, name: &str, request: Request) -> Result<(Request, Outcome), Refusal> {
        self.execute_streaming(name, request, None).await
    }

    /// [`Self::execute`], with the chunks the guest emits sent to `sink` as they come
    /// (see [`stream`]).
    async fn execute_streaming(
        &self,
        name: &str,
        request: Request,
        sink: Option<ChunkSink>,
    ) -> Result<(Request, Outcome), Refusal> {
        let started = std::time::Instant::now();
        let permit = self.admission.admit().await.map_err(|full| {
            tracing::warn!(
                pipeline = name,
                queued = full.queued,
                "refused: box is full"
            );
            self.metrics
                .request(name, "none", "none", "busy", started.elapsed());
            Refusal::Busy
        })?;
        let runtime = self.runtime.clone();
        let pipeline = name.to_owned();
        let joined = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let served = runtime.serve_streaming(&pipeline, &request, sink);
            (request, served)
        })
        .await;
        let (request, served) =
            joined.map_err(|e| Refusal::Internal(format!("worker failed: {e}")))?;
        let component = served
            .component
            .as_ref()
            .map_or("none", |c| c.short())
            .to_owned();
        match served.result {
            Ok(outcome) => {
                self.observe(name, &component, &outcome, started.elapsed());
                tracing::info!(
                    request_id = %request.id,
                    pipeline = name,
                    route = %outcome.response.routing.route,
                    reason = %outcome.response.routing.reason,
                    model = %crate::envelope::model_label(&outcome),
                    component = %component,
                    role = outcome.component.role.name(),
                    total_ms = started.elapsed().as_secs_f64() * 1e3,
                    "served"
                );
                Ok((request, outcome))
            }
            Err(error) => {
                let outcome = match &error {
                    PipelineError::DeadlineExceeded { .. } => "deadline",
                    PipelineError::Rejected { kind, .. } => kind,
                    PipelineError::UnknownPipeline { .. } => "unknown-pipeline",
                    PipelineError::Overloaded { .. } => "busy",
                    PipelineError::LimitExceeded { .. } => "limit",
                    PipelineError::Quarantined { .. } => "quarantined",
                    _ => "failed",
                };
                self.metrics
                    .request(name, &component, "none", outcome, started.elapsed());
                if let PipelineError::LimitExceeded { limit, .. } = &error {
                    self.metrics.limit_hit(name, limit.name());
                }
                if matches!(error, PipelineError::Quarantined { .. }) {
                    // Entering and leaving quarantine are logged; each refusal would flood.
                    tracing::debug!(request_id = %request.id, pipeline = name, "refused: pipeline quarantined");
                } else {
                    tracing::warn!(request_id = %request.id, pipeline = name, component = %component, status = error.status(), error = %error, "not served");
                }
                Err(Refusal::Pipeline(error, served.component.map(|c| c.digest)))
            }
        }
    }

    /// Offers a served request for shadow evaluation once its answer is built; returns at
    /// once. A shadow runs only on a worker slot that is free now with nobody waiting.
    fn shadow(&self, pipeline: &str, request: &Request, outcome: &Outcome) {
        self.shadows
            .offer(pipeline, request, outcome, || self.admission.try_admit());
    }

    fn observe(&self, pipeline: &str, component: &str, outcome: &Outcome, elapsed: Duration) {
        self.metrics.request(
            pipeline,
            component,
            &outcome.response.routing.route,
            "ok",
            elapsed,
        );
        for run in &outcome.model_runs {
            self.metrics.model_run(&run.model, run.elapsed, run.parts);
        }
    }
}

/// Builds the router over a loaded runtime (tests use it with their own listener).
pub fn router(runtime: Arc<Runtime>, config: &Config) -> Router {
    router_with_metrics(runtime, config, Arc::new(Metrics::new()))
}

/// Builds the admin API's router: every route behind the bearer token.
pub fn admin_router(
    deployer: Arc<Deployer>,
    token: String,
    max_upload_bytes: usize,
    metrics: Arc<Metrics>,
) -> Router {
    use axum::routing::put;
    use routes::admin;
    let state = Arc::new(admin::AdminState {
        deployer,
        token,
        max_upload_bytes,
        metrics,
    });
    let guard = state.clone();
    Router::new()
        .route("/admin/status", get(admin::status))
        .route("/admin/pipelines", get(admin::pipelines))
        .route("/admin/pipelines/{name}", get(admin::pipeline))
        .route(
            "/admin/pipelines/{name}/component",
            put(admin::deploy_component),
        )
        .route("/admin/pipelines/{name}/promote", post(admin::promote))
        .route("/admin/pipelines/{name}/rollback", post(admin::rollback))
        .route("/admin/models", get(admin::models))
        .route("/admin/models/{name}", put(admin::deploy_model))
        .route("/admin/models/{name}/rollback", post(admin::rollback_model))
        .fallback(admin::not_found)
        // The token is checked before anything else; then the whole upload is read
        // before routing, so every refusal (bad query, unknown route) reaches a client
        // that is still sending instead of a reset connection.
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let guard = guard.clone();
                async move { admin::guard(&guard, request, next).await }
            },
        ))
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

fn router_with_metrics(runtime: Arc<Runtime>, config: &Config, metrics: Arc<Metrics>) -> Router {
    let server = &config.server;
    let observed = metrics.clone();
    runtime.set_remote_observer(Arc::new(move |pipeline, call| {
        let sample = match call {
            Ok(c) => RemoteCallSample {
                endpoint: &c.endpoint,
                attempts: c.attempts,
                elapsed: c.latency,
                bytes_sent: c.bytes_sent,
                cost_usd: c.cost_micro_usd as f64 / 1e6,
                error: None,
            },
            Err(f) => RemoteCallSample {
                endpoint: &f.endpoint,
                attempts: f.attempts,
                elapsed: f.latency,
                bytes_sent: f.bytes_sent,
                // A broken stream is billed for what arrived: count what the budget counts.
                cost_usd: f.cost_micro_usd as f64 / 1e6,
                error: Some(f.error.case()),
            },
        };
        observed.remote_call(pipeline, &sample);
    }));
    let observed = metrics.clone();
    runtime.set_quarantine_observer(Arc::new(move |pipeline| observed.quarantined(pipeline)));
    let observed = metrics.clone();
    let shadows = Shadows::new(
        runtime.clone(),
        Arc::new(move |report| {
            observed.shadow(
                report.pipeline,
                report.model,
                report.version,
                report.verdict.name(),
                report.cost_usd,
            );
        }),
    );
    let state = Arc::new(AppState {
        admission: Admission::new(
            server.concurrency(config.runtime.max_instances),
            server.max_queue,
            runtime.load().clone(),
        ),
        runtime,
        metrics,
        shadows,
        openai_models: config.openai_models.clone(),
        max_body_bytes: server.max_body_bytes,
        retry_after_s: server.retry_after_s,
    });
    Router::new()
        .route("/v1/pipelines/{name}", post(routes::pipelines::handle))
        .route("/v1/chat/completions", post(routes::openai::chat))
        .route("/v1/embeddings", post(routes::openai::embeddings))
        .route("/v1/models", get(routes::openai::models))
        .route("/metrics", get(routes::health::metrics))
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .fallback(routes::health::not_found)
        // The handlers enforce the configured limit themselves, with a clear message.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// How `hybrid serve` runs besides the main listener.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Deploy changed component and model files named in the config.
    pub watch: bool,
    /// Address of the admin API, overriding `admin.listen`.
    pub admin_listen: Option<String>,
}

/// Serves `deployer`'s runtime on `listen` (and the admin API, if configured) until
/// SIGTERM or Ctrl-C, then drains.
pub fn serve(deployer: Arc<Deployer>, listen: &str, options: &ServeOptions) -> anyhow::Result<()> {
    let config = deployer.config().clone();
    let runtime = deployer.runtime().clone();
    let admin = admin_listener(&config, options)?;
    let metrics = Arc::new(Metrics::new());
    {
        let metrics = metrics.clone();
        let deployer = Arc::downgrade(&deployer);
        runtime.set_rollback_observer(Arc::new(move |pipeline, _digest, _reason| {
            metrics.canary_rolled_back(pipeline);
            if let Some(deployer) = deployer.upgrade() {
                // Recorded off the request's thread: it writes the state directory.
                let pipeline = pipeline.to_owned();
                std::thread::spawn(move || deployer.note_change(&pipeline));
            }
        }));
    }
    let _watcher = if options.watch {
        Some(crate::deploy::watch::start(deployer.clone())?)
    } else {
        None
    };
    let workers = std::thread::available_parallelism().map_or(2, usize::from);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        // One blocking thread per request that may execute at once, plus headroom.
        .max_blocking_threads(config.server.concurrency(config.runtime.max_instances) as usize + 16)
        .thread_name("hybrid-http")
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let drain = Duration::from_millis(config.server.drain_timeout_ms);
    tokio.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr: SocketAddr = listener.local_addr()?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut admin_task = None;
        if let Some((admin_listen, token, max_upload)) = admin {
            let admin_listener = tokio::net::TcpListener::bind(&admin_listen)
                .await
                .with_context(|| format!("cannot listen on {admin_listen} (admin API)"))?;
            let admin_addr: SocketAddr = admin_listener.local_addr()?;
            println!("hybrid admin API on http://{admin_addr}");
            tracing::info!(%admin_addr, "admin API listening");
            let app = admin_router(deployer.clone(), token, max_upload, metrics.clone());
            let mut stopped = stop_rx.clone();
            let server = axum::serve(admin_listener, app).with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            });
            admin_task = Some(tokio::spawn(async move { server.await }));
        }
        println!("hybrid serving on http://{addr}");
        tracing::info!(%addr, pipelines = ?runtime.pipeline_names(), "serving");
        let app = router_with_metrics(runtime, &config, metrics);
        let mut stopped = stop_rx.clone();
        let listener = listener.tap_io(no_delay);
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stopped.wait_for(|s| *s).await;
        });
        let server = tokio::spawn(async move { server.await });
        shutdown_signal().await;
        tracing::info!(
            drain_ms = drain.as_millis() as u64,
            "shutting down: draining in-flight requests"
        );
        let _ = stop_tx.send(true);
        match tokio::time::timeout(drain, server).await {
            Ok(Ok(Ok(()))) => tracing::info!("drained; exiting"),
            Ok(Ok(Err(e))) => tracing::error!(error = %e, "server error while draining"),
            Ok(Err(e)) => tracing::error!(error = %e, "server task failed"),
            Err(_) => {
                tracing::warn!("drain deadline passed with requests still in flight; exiting")
            }
        }
        if let Some(task) = admin_task {
            let _ = tokio::time::timeout(Duration::from_millis(500), task).await;
        }
        drop(stop_rx);
        Ok::<(), anyhow::Error>(())
    })?;
    // Blocking workers still running past the drain deadline are abandoned.
    tokio.shutdown_timeout(Duration::from_millis(100));
    Ok(())
}

/// The admin API's address, token and upload limit, if it is on. It is on when
/// `[admin]` names a token variable and that variable is set; named but unset is logged
/// and leaves it off (the box still serves).
fn admin_listener(
    config: &Config,
    options: &ServeOptions,
) -> anyhow::Result<Option<(String, String, usize)>> {
    let Some(admin) = &config.admin else {
        return Ok(None);
    };
    let Some(var) = &admin.token_env else {
        tracing::warn!("admin API off: [admin] names no token_env");
        return Ok(None);
    };
    match std::env::var(var) {
        Ok(token) if token.len() >= 16 => {
            let listen = options
                .admin_listen
                .clone()
                .unwrap_or_else(|| admin.listen.clone());
            Ok(Some((listen, token, admin.max_upload_bytes)))
        }
        Ok(_) => anyhow::bail!(
            "the admin token in ${var} is shorter than 16 characters; use a long random one \
             (e.g. `openssl rand -hex 32`)"
        ),
        Err(_) => {
            tracing::warn!(variable = %var, "admin API off: the token variable is not set");
            eprintln!("hybrid: admin API off (set {var} to turn it on)");
            Ok(None)
        }
    }
}

/// Turns off Nagle's algorithm on an accepted connection: a streamed answer is many small
/// writes, and each must leave when it is written, not wait for the client's delayed ACK
/// (up to 40 ms per chunk otherwise).
pub fn no_delay(tcp: &mut tokio::net::TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY on a connection");
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
