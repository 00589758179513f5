//! The state one simulator shares between its connections: configuration (with the optional
//! classification workload), the scenario with its fault state, the quota windows, the
//! counters, the response id counter, and the shutdown signal that releases hung requests.
//! [`crate::SimHandle`] holds the same state, so in-process tests read stats and swap
//! scenarios without going through HTTP.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use axum::http::HeaderMap;
use tokio::sync::watch;

use crate::auth::ApiKey;
use crate::classify::Classifier;
use crate::config::SimConfig;
use crate::faults::FaultState;
use crate::ratelimit::QuotaState;
use crate::scenario::{Scenario, ScenarioError};
use crate::stats::Stats;

/// Everything the routes and the pipeline share.
#[derive(Debug)]
pub struct SimState {
    /// The key clients must present; `None` when authentication is off.
    pub api_key: Option<ApiKey>,
    /// Configured model ids.
    pub models: Vec<String>,
    /// Default embedding length.
    pub embedding_dim: usize,
    /// The classification stand-in, when a workload is configured.
    pub classifier: Option<Classifier>,
    /// Request counters.
    pub stats: Stats,
    faults: Mutex<FaultState>,
    quota: Mutex<QuotaState>,
    next_id: AtomicU64,
    shutdown: watch::Receiver<bool>,
}

/// Locks a mutex, still usable after a panic elsewhere: the simulator's state stays
/// consistent between statements, and a test server must keep answering.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl SimState {
    /// State for a configuration; `shutdown` turns true when the server stops.
    pub fn new(config: SimConfig, shutdown: watch::Receiver<bool>) -> Self {
        Self {
            api_key: config.api_key,
            models: config.models,
            embedding_dim: config.embedding_dim,
            classifier: config.classifier,
            stats: Stats::default(),
            quota: Mutex::new(QuotaState::new(config.scenario.quota.clone())),
            faults: Mutex::new(FaultState::new(config.scenario)),
            next_id: AtomicU64::new(1),
            shutdown,
        }
    }

    /// The scenario in force.
    pub fn scenario(&self) -> Scenario {
        lock(&self.faults).scenario().clone()
    }

    /// Validates and installs a scenario, restarting its sequence, RNG, bursts and quota.
    pub fn set_scenario(&self, scenario: Scenario) -> Result<(), ScenarioError> {
        scenario.validate()?;
        *lock(&self.quota) = QuotaState::new(scenario.quota.clone());
        *lock(&self.faults) = FaultState::new(scenario);
        Ok(())
    }

    /// The fault state, for the pipeline's per-request decision.
    pub fn faults(&self) -> MutexGuard<'_, FaultState> {
        lock(&self.faults)
    }

    /// Counts a request against the quota; `Err` names the exhausted bucket.
    pub fn admit(&self) -> Result<(), &'static str> {
        lock(&self.quota).admit(SystemTime::now())
    }

    /// Charges tokens an answer used.
    pub fn charge_tokens(&self, tokens: u64) {
        lock(&self.quota).charge_tokens(SystemTime::now(), tokens);
    }

    /// Writes the `x-ratelimit-*` headers.
    pub fn write_quota_headers(&self, headers: &mut HeaderMap) {
        lock(&self.quota).write_headers(SystemTime::now(), headers);
    }

    /// Whether `model` is one of the configured ids.
    pub fn has_model(&self, model: &str) -> bool {
        self.models.iter().any(|m| m == model)
    }

    /// A fresh number for response ids (`chatcmpl-<n>`), counting from 1 per simulator.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The current scenario's seed, which also seeds the classification stand-in.
    pub fn seed(&self) -> u64 {
        lock(&self.faults).scenario().seed
    }

    /// Delay between streamed chunks under the current scenario.
    pub fn token_delay(&self) -> Duration {
        Duration::from_millis(lock(&self.faults).scenario().token_delay_ms)
    }

    /// Resolves when the server begins shutting down (never, if the sender is gone without
    /// signalling, which only happens once nothing is being served).
    pub async fn shutting_down(&self) {
        let mut shutdown = self.shutdown.clone();
        if shutdown.wait_for(|stopping| *stopping).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
