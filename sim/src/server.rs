//! The router and the serving loop: every route behind the [`crate::pipeline`], served on a
//! caller-supplied listener until a shutdown future resolves. On shutdown, hung requests are
//! released and in-flight answers get a short grace period before the loop returns.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::classify::ClassifyError;
use crate::config::SimConfig;
use crate::pipeline::pipeline;
use crate::routes::{chat, control, embeddings, models, raw, transcriptions};
use crate::scenario::ScenarioError;
use crate::state::SimState;

/// Largest JSON request body the API routes accept; axum's 2 MiB default is smaller than
/// the long prompts and batched embedding inputs a real upstream takes.
pub const MAX_REQUEST_BODY: usize = 32 << 20;

/// Largest upload `/v1/audio/transcriptions` accepts (OpenAI's limit).
pub const MAX_AUDIO_UPLOAD: usize = 25 << 20;

/// How long in-flight answers may take to finish once shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Why the simulator could not start or keep serving.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Binding the listen address failed.
    #[error("binding {addr}")]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The accept loop failed.
    #[error("serving")]
    Serve(#[source] std::io::Error),
    /// The runtime or thread of a spawned simulator could not start.
    #[error("starting the simulator thread")]
    Runtime(#[source] std::io::Error),
    /// The scenario was refused.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The classification workload or accuracy was refused.
    #[error(transparent)]
    Classify(#[from] ClassifyError),
    /// No key was configured and authentication was not turned off.
    #[error(
        "no API key: pass --api-key, set the environment variable {env}, or run with --no-auth"
    )]
    NoApiKey {
        /// The environment variable that was consulted.
        env: String,
    },
}

/// The simulator's routes behind its pipeline.
pub fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/v1/models", get(models::list))
        .route("/v1/models/{model}", get(models::retrieve))
        .route("/v1/chat/completions", post(chat::create))
        .route("/v1/embeddings", post(embeddings::create))
        .route(
            "/v1/audio/transcriptions",
            post(transcriptions::create).layer(DefaultBodyLimit::max(MAX_AUDIO_UPLOAD)),
        )
        .route("/v1/raw/echo", post(raw::echo))
        .route("/healthz", get(control::healthz))
        .route(
            "/sim/stats",
            get(control::stats).delete(control::reset_stats),
        )
        .route(
            "/sim/scenario",
            get(control::scenario).post(control::set_scenario),
        )
        .fallback(control::unknown_route)
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BODY))
        .layer(from_fn_with_state(state.clone(), pipeline))
        .with_state(state)
}

/// Serves `config` on `listener` until the process ends.
pub async fn serve(config: SimConfig, listener: TcpListener) -> Result<(), SimError> {
    serve_with_shutdown(config, listener, std::future::pending()).await
}

/// Serves `config` on `listener` until `shutdown` resolves.
pub async fn serve_with_shutdown(
    config: SimConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SimError> {
    config.scenario.validate()?;
    let (stop, stopping) = watch::channel(false);
    let state = Arc::new(SimState::new(config, stopping));
    serve_state(state, listener, stop, shutdown).await
}

/// Serves prepared state; `stop` is the sender behind the state's shutdown signal.
pub(crate) async fn serve_state(
    state: Arc<SimState>,
    listener: TcpListener,
    stop: watch::Sender<bool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SimError> {
    let mut stopping = stop.subscribe();
    let signal = async move {
        shutdown.await;
        // Releases hung requests so graceful shutdown can complete.
        stop.send_replace(true);
    };
    // Streamed answers are many small writes: send each at once (no Nagle delay), as
    // providers do.
    let listener = listener.tap_io(|tcp: &mut tokio::net::TcpStream| {
        let _ = tcp.set_nodelay(true);
    });
    let server = axum::serve(listener, router(state)).with_graceful_shutdown(signal);
    let grace_over = async move {
        if stopping.wait_for(|stop| *stop).await.is_ok() {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        served = server => served.map_err(SimError::Serve),
        () = grace_over => {
            tracing::warn!("answers still in flight after the shutdown grace period; abandoning them");
            Ok(())
        }
    }
}
