//! [`spawn`]: the simulator on its own thread with its own tokio runtime, so synchronous
//! tests (the host's blocking ureq client) can start one in a line and talk to it over
//! loopback. The [`SimHandle`] shares the server's state: tests read stats and swap
//! scenarios directly, and dropping the handle shuts the server down.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{oneshot, watch};

use crate::config::SimConfig;
use crate::scenario::{Scenario, ScenarioError};
use crate::server::{SimError, serve_state};
use crate::state::SimState;
use crate::stats::StatsSnapshot;

/// A running simulator; shuts down when dropped.
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    state: Arc<SimState>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Starts a simulator on a free loopback port.
pub fn spawn(config: SimConfig) -> Result<SimHandle, SimError> {
    spawn_on(config, SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// Starts a simulator on `addr` (port 0 picks a free one).
pub fn spawn_on(config: SimConfig, addr: SocketAddr) -> Result<SimHandle, SimError> {
    config.scenario.validate()?;
    // Bind here, not on the thread, so the caller learns the port and any bind error at once.
    let bind_error = |source| SimError::Bind {
        addr: addr.to_string(),
        source,
    };
    let listener = StdListener::bind(addr).map_err(bind_error)?;
    listener.set_nonblocking(true).map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(SimError::Runtime)?;

    let (stop_sender, stopping) = watch::channel(false);
    let state = Arc::new(SimState::new(config, stopping));
    let (stop, stopped) = oneshot::channel::<()>();
    let served_state = Arc::clone(&state);
    let thread = std::thread::Builder::new()
        .name(format!("hybrid-sim {addr}"))
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => listener,
                    Err(error) => {
                        tracing::error!(%error, "adopting the listener");
                        return;
                    }
                };
                let shutdown = async move {
                    // Either an explicit stop or the handle being dropped.
                    let _ = stopped.await;
                };
                if let Err(error) = serve_state(served_state, listener, stop_sender, shutdown).await
                {
                    tracing::error!(error = %error, "simulator stopped");
                }
            });
        })
        .map_err(SimError::Runtime)?;
    tracing::debug!(%addr, "simulator spawned");
    Ok(SimHandle {
        addr,
        state,
        stop: Some(stop),
        thread: Some(thread),
    })
}

impl SimHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API base URL, `http://127.0.0.1:PORT/v1`, as a client would configure it.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The server root, `http://127.0.0.1:PORT`, for `/healthz` and `/sim/*`.
    pub fn root_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A copy of the counters.
    pub fn stats(&self) -> StatsSnapshot {
        self.state.stats.snapshot()
    }

    /// Zeroes the counters.
    pub fn reset_stats(&self) {
        self.state.stats.reset();
    }

    /// The scenario in force.
    pub fn scenario(&self) -> Scenario {
        self.state.scenario()
    }

    /// Replaces the scenario, restarting its sequence, RNG, bursts and quota windows.
    pub fn set_scenario(&self, scenario: Scenario) -> Result<(), ScenarioError> {
        self.state.set_scenario(scenario)
    }

    /// Stops the server: hung requests are released, in-flight answers get a short grace.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("simulator thread panicked");
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}
