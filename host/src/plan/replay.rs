//! Sending a workload's requests: in this process (the config's runtime, exactly as
//! `hybrid run` serves) or to a running box over HTTP (`POST /v1/pipelines/{name}`). Both
//! read the same envelope, so a strategy measures the same either way.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::spec::Strategy;
use super::workload::Item;
use crate::envelope;
use crate::runtime::{Request, Runtime};

/// What one request showed.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The answer's value of the compared field, when the request succeeded.
    pub answer: Option<String>,
    /// The routing record's route (`local`, `remote:<endpoint>`, ...), empty on failure.
    pub route: String,
    /// Serverless spend in US dollars.
    pub cost_usd: f64,
    /// Bytes sent off the box.
    pub egress_bytes: u64,
    /// Wall-clock time seen by the client.
    pub latency: Duration,
    /// Why the request failed, if it did.
    pub error: Option<String>,
}

/// Where requests go; shared by the replay's workers.
pub trait Target: Sync {
    /// Sends `item` to `strategy`'s pipeline with its parameters; `answer` names the
    /// field of the answer's body to read.
    fn send(&self, strategy: &Strategy, item: &Item, answer: &str) -> Observation;
}

/// The config's runtime, in this process.
pub struct InProcess {
    runtime: Runtime,
}

impl InProcess {
    /// Serves with `runtime`.
    pub fn new(runtime: Runtime) -> Self {
        Self { runtime }
    }
}

impl Target for InProcess {
    fn send(&self, strategy: &Strategy, item: &Item, answer: &str) -> Observation {
        let request = Request {
            id: self.runtime.new_request_id(),
            content_type: item.content_type.clone(),
            body: item.body.clone(),
            metadata: item
                .metadata
                .iter()
                .chain(&strategy.params)
                .cloned()
                .collect(),
        };
        let started = Instant::now();
        let result = self.runtime.handle(&strategy.pipeline, &request);
        let latency = started.elapsed();
        match result {
            Ok(outcome) => observe(
                &envelope::to_json(&strategy.pipeline, &request, &outcome),
                answer,
                latency,
            ),
            Err(e) => failed(format!("{} ({})", e, e.status()), latency),
        }
    }
}

/// A running box, over HTTP.
pub struct OverHttp {
    base: String,
    agent: ureq::Agent,
}

impl OverHttp {
    /// Sends to the box serving at `base` (`http://host:port`).
    pub fn new(base: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .new_agent();
        Self {
            base: base.trim_end_matches('/').to_owned(),
            agent,
        }
    }
}

impl Target for OverHttp {
    fn send(&self, strategy: &Strategy, item: &Item, answer: &str) -> Observation {
        let url = format!("{}/v1/pipelines/{}", self.base, strategy.pipeline);
        let mut request = self
            .agent
            .post(&url)
            .header("content-type", &item.content_type);
        for (k, v) in item.metadata.iter().chain(&strategy.params) {
            request = request.query(k, v);
        }
        let started = Instant::now();
        let result = request.send(&item.body[..]);
        let mut response = match result {
            Ok(r) => r,
            Err(e) => return failed(format!("POST {url}: {e}"), started.elapsed()),
        };
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .read_to_vec()
            .map_err(|e| e.to_string())
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).map_err(|e| e.to_string()));
        let latency = started.elapsed();
        match body {
            Ok(envelope) if status == 200 => observe(&envelope, answer, latency),
            Ok(error) => {
                let message = error["error"]["message"].as_str().unwrap_or("no message");
                failed(format!("{message} ({status})"), latency)
            }
            Err(e) => failed(format!("unreadable answer ({status}): {e}"), latency),
        }
    }
}

/// Reads an envelope (see [`crate::envelope`]).
fn observe(envelope: &Value, answer: &str, latency: Duration) -> Observation {
    let answer = match &envelope["body"][answer] {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    };
    Observation {
        error: answer
            .is_none()
            .then(|| "the answer has no field of that name".to_owned()),
        answer,
        route: envelope["routing"]["route"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        cost_usd: envelope["cost_usd"].as_f64().unwrap_or(0.0),
        egress_bytes: envelope["egress_bytes"].as_u64().unwrap_or(0),
        latency,
    }
}

fn failed(error: String, latency: Duration) -> Observation {
    Observation {
        answer: None,
        route: String::new(),
        cost_usd: 0.0,
        egress_bytes: 0,
        latency,
        error: Some(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_envelope_gives_the_answer_route_cost_and_egress() {
        let envelope = json!({
            "body": {"label": "7", "confidence": 0.5},
            "routing": {"route": "remote:strong"},
            "cost_usd": 0.00005,
            "egress_bytes": 410,
        });
        let seen = observe(&envelope, "label", Duration::from_millis(3));
        assert_eq!(seen.answer.as_deref(), Some("7"));
        assert_eq!(seen.route, "remote:strong");
        assert_eq!(seen.egress_bytes, 410);
        assert!(seen.error.is_none());
        let missing = observe(&envelope, "digit", Duration::ZERO);
        assert!(missing.error.is_some());
        assert_eq!(
            observe(&envelope, "confidence", Duration::ZERO)
                .answer
                .as_deref(),
            Some("0.5")
        );
    }
}
