//! One configured endpoint at run time: its config, its credential, its connection pool,
//! its circuit breaker and its recent health.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::breaker::{Admission, Breaker, CircuitState};
use super::health::{Health, RateLimits};
use super::resolver::CachedResolver;
use super::secret::{ApiKey, scrub_bearer};
use super::{RemoteError, SetupError};
use crate::config::EndpointConfig;

/// Idle connections an endpoint keeps open for reuse. ureq's default keeps 10 in all,
/// whatever the per-host limit says: with more calls than that in flight at once, every
/// call past the tenth paid a new TCP connection (and freed and allocated its buffers),
/// measured as 10 open connections to an nginx mock under 32 concurrent clients. Each
/// endpoint has its own agent, so this bounds the connections to one provider that wait
/// between calls; more than this many calls at once still run, on new connections.
const POOLED_CONNECTIONS: usize = 128;

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
        let agent = ureq::Agent::with_parts(
            ureq::Agent::config_builder()
                .user_agent(concat!("hybrid/", env!("CARGO_PKG_VERSION")))
                .max_idle_connections(POOLED_CONNECTIONS)
                .max_idle_connections_per_host(POOLED_CONNECTIONS)
                .build(),
            ureq::unversioned::transport::DefaultConnector::default(),
            CachedResolver::default(),
        );
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

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};

    use super::*;

    /// A loopback HTTP/1.1 server answering every request with `ok` on a kept-alive
    /// connection; counts the connections it accepted.
    fn counting_server() -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let accepted = Arc::new(AtomicUsize::new(0));
        let counted = accepted.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                counted.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                    let mut writer = stream;
                    loop {
                        let mut length = 0usize;
                        loop {
                            let mut line = String::new();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            let line = line.trim_end();
                            if line.is_empty() {
                                break;
                            }
                            if let Some((name, value)) = line.split_once(':')
                                && name.eq_ignore_ascii_case("content-length")
                            {
                                length = value.trim().parse().unwrap_or(0);
                            }
                        }
                        let mut body = vec![0; length];
                        if reader.read_exact(&mut body).is_err() {
                            return;
                        }
                        let answer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if writer.write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (url, accepted)
    }

    #[test]
    fn concurrent_calls_reuse_their_connections() {
        let (url, accepted) = counting_server();
        let config: EndpointConfig = serde_json::from_value(serde_json::json!({
            "name": "chat", "kind": "chat", "base_url": url, "model": "m",
        }))
        .expect("config");
        let endpoint = Arc::new(Endpoint::new(config, &|_| None).expect("endpoint"));
        // More calls at once than ureq's default pool of 10, in rounds: the connections
        // of the first round must serve all the later ones.
        let (calls, rounds) = (24, 5);
        let barrier = Arc::new(Barrier::new(calls));
        let workers: Vec<_> = (0..calls)
            .map(|_| {
                let (endpoint, barrier, url) = (endpoint.clone(), barrier.clone(), url.clone());
                std::thread::spawn(move || {
                    for _ in 0..rounds {
                        barrier.wait();
                        let mut response = endpoint
                            .agent
                            .post(&format!("{url}/chat/completions"))
                            .send("{}")
                            .expect("answered");
                        let body = response.body_mut().read_to_string().expect("body");
                        assert_eq!(body, "ok");
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().expect("worker");
        }
        let opened = accepted.load(Ordering::SeqCst);
        assert!(
            opened <= calls,
            "{opened} connections for {calls} calls at once over {rounds} rounds"
        );
    }
}
