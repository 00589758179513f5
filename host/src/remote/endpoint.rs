//! One configured endpoint at run time: its config, its credential, its connection pool,
//! its circuit breaker and its recent health.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::breaker::{Admission, Breaker, CircuitState};
use super::health::{Health, RateLimits};
use super::secret::{ApiKey, scrub_bearer};
use super::{RemoteError, SetupError};
use crate::config::EndpointConfig;

/// A serverless endpoint the host calls for guests.
pub struct Endpoint {
    /// Its configuration.
    pub config: EndpointConfig,
    pub(super) key: Option<ApiKey>,
    pub(super) agent: ureq::Agent,
    breaker: Mutex<Breaker>,
    health: Mutex<Health>,
}

/// A snapshot of an endpoint's health (the WIT `signals.endpoint-health`).
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointHealth {
    /// Endpoint name.
    pub name: String,
    /// Circuit breaker state.
    pub circuit: CircuitState,
    /// Fraction of recent calls that failed.
    pub error_rate: f32,
    /// Median latency of recent successful calls.
    pub latency: Duration,
    /// Requests left in the provider's rate-limit window, if it said.
    pub rate_limit_remaining: Option<u64>,
}

impl Endpoint {
    /// Builds the endpoint, reading its key through `env` (the process environment in
    /// production). A configured key variable that is unset or empty is an error: no
    /// request ever leaves without the auth it needs.
    pub fn new(
        config: EndpointConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, SetupError> {
        let key = match &config.api_key_env {
            None => None,
            Some(var) => {
                Some(
                    env(var)
                        .and_then(ApiKey::new)
                        .ok_or_else(|| SetupError::MissingKey {
                            endpoint: config.name.clone(),
                            variable: var.clone(),
                        })?,
                )
            }
        };
        let agent = ureq::Agent::config_builder()
            .user_agent(concat!("hybrid/", env!("CARGO_PKG_VERSION")))
            .max_idle_connections_per_host(32)
            .build()
            .new_agent();
        let breaker = Breaker::new(
            config.breaker_failures,
            Duration::from_millis(config.breaker_open_ms),
        );
        Ok(Self {
            config,
            key,
            agent,
            breaker: Mutex::new(breaker),
            health: Mutex::new(Health::default()),
        })
    }

    /// Asks the breaker whether a call may start; a refusal says how long until a probe
    /// is let through.
    pub(super) fn admit(&self) -> Result<Admission, (RemoteError, Duration)> {
        let mut breaker = self.breaker.lock().unwrap_or_else(|p| p.into_inner());
        breaker.admit(Instant::now()).map_err(|wait| {
            let error = RemoteError::Unavailable(format!(
                "endpoint {:?} is failing: its circuit is open; next probe in {} ms",
                self.config.name,
                wait.as_millis()
            ));
            (error, wait)
        })
    }

    /// Records a finished call in the breaker and the health window.
    pub(super) fn finish(
        &self,
        admission: Admission,
        error: Option<&RemoteError>,
        latency: Duration,
    ) {
        let healthy = !error.is_some_and(RemoteError::counts_against_endpoint);
        self.breaker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(admission, healthy, Instant::now());
        self.health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(error.is_none(), latency);
    }

    pub(super) fn observe_rate_limits(&self, limits: RateLimits) {
        self.health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .rate_limited_by(limits);
    }

    /// Removes the credential (and bearer tokens) from text bound for a guest or a log.
    pub(super) fn scrub(&self, text: &str) -> String {
        match &self.key {
            Some(key) => key.scrub(text),
            None => scrub_bearer(text),
        }
    }

    /// How long until its open circuit lets a probe through; `None` unless it is open.
    pub fn cool_down_left(&self) -> Option<Duration> {
        self.breaker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .cool_down_left(Instant::now())
    }

    /// The endpoint's health now.
    pub fn health(&self) -> EndpointHealth {
        let circuit = self
            .breaker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .state(Instant::now());
        let health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        EndpointHealth {
            name: self.config.name.clone(),
            circuit,
            error_rate: health.error_rate(),
            latency: health.median_latency(),
            rate_limit_remaining: health.rate_limits().remaining_requests,
        }
    }
}
