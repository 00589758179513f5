//! The JSON envelope of a served request, shared by `hybrid run` and `hybrid serve`: the
//! pipeline's body (embedded as JSON when it is JSON), its routing record, the local model
//! runs and serverless calls it made, and the timings.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::runtime::{Outcome, Request};

/// Total serverless spend of the request in US dollars (failed calls included: a stream
/// that broke mid-way is billed for what arrived).
pub fn cost_usd(outcome: &Outcome) -> f64 {
    let calls = outcome.remote_calls.iter().map(|c| c.cost_micro_usd);
    let failures = outcome.remote_failures.iter().map(|f| f.cost_micro_usd);
    calls.chain(failures).sum::<u64>() as f64 / 1e6
}

/// Bytes the request sent off the box to serverless endpoints (failed attempts included).
pub fn egress_bytes(outcome: &Outcome) -> u64 {
    outcome
        .remote_calls
        .iter()
        .map(|c| c.bytes_sent)
        .sum::<u64>()
        + outcome
            .remote_failures
            .iter()
            .map(|f| f.bytes_sent)
            .sum::<u64>()
}

/// `name@version` of the model that answered, or just the name when it has no version.
pub fn model_label(outcome: &Outcome) -> String {
    let routing = &outcome.response.routing;
    if routing.model_version.is_empty() {
        routing.model.clone()
    } else {
        format!("{}@{}", routing.model, routing.model_version)
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The envelope as JSON.
pub fn to_json(pipeline: &str, request: &Request, outcome: &Outcome) -> Value {
    let response = &outcome.response;
    let routing = &response.routing;
    let mut runs: Vec<Value> = Vec::new();
    for run in &outcome.model_runs {
        let existing = runs
            .iter_mut()
            .find(|r| r["model"] == run.model.as_str() && r["version"] == run.version.as_str());
        match existing {
            Some(r) => {
                r["calls"] = json!(r["calls"].as_u64().unwrap_or(0) + 1);
                r["elapsed_ms"] = json!(r["elapsed_ms"].as_f64().unwrap_or(0.0) + ms(run.elapsed));
            }
            None => runs.push(json!({
                "model": run.model, "version": run.version, "calls": 1, "elapsed_ms": ms(run.elapsed),
            })),
        }
    }
    let calls: Vec<Value> = outcome
        .remote_calls
        .iter()
        .map(|c| {
            json!({
                "endpoint": c.endpoint, "model": c.model, "attempts": c.attempts,
                "cost_usd": c.cost_micro_usd as f64 / 1e6, "bytes_sent": c.bytes_sent,
                "bytes_received": c.bytes_received, "latency_ms": ms(c.latency),
                "input_tokens": c.usage.input_tokens, "output_tokens": c.usage.output_tokens,
            })
        })
        .chain(outcome.remote_failures.iter().map(|f| {
            json!({
                "endpoint": f.endpoint, "attempts": f.attempts, "error": f.error.to_string(),
                "cost_usd": f.cost_micro_usd as f64 / 1e6, "bytes_sent": f.bytes_sent,
                "latency_ms": ms(f.latency),
            })
        }))
        .collect();
    let (body_key, body) = body_value(&response.content_type, &response.body);
    json!({
        "request_id": request.id,
        "pipeline": pipeline,
        "component": {
            "sha256": outcome.component.digest,
            "role": outcome.component.role.name(),
        },
        "content_type": response.content_type,
        body_key: body,
        "routing": {
            "route": routing.route,
            "reason": routing.reason,
            "model": routing.model,
            "model_version": routing.model_version,
        },
        "cost_usd": cost_usd(outcome),
        "egress_bytes": egress_bytes(outcome),
        "local_runs": runs,
        "remote_calls": calls,
        "timings_ms": {
            "instantiate": ms(outcome.timings.instantiate),
            "handle": ms(outcome.timings.handle),
            "local_models": ms(outcome.timings.local_models),
            "total": ms(outcome.timings.total),
        },
    })
}

/// JSON bodies are embedded as JSON, text as a string, anything else as base64.
pub fn body_value(content_type: &str, body: &[u8]) -> (&'static str, Value) {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if (essence == "application/json" || essence.ends_with("+json"))
        && let Ok(value) = serde_json::from_slice(body)
    {
        return ("body", value);
    }
    match std::str::from_utf8(body) {
        Ok(text) => ("body", Value::String(text.to_owned())),
        Err(_) => (
            "body_base64",
            json!(base64::engine::general_purpose::STANDARD.encode(body)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_shown_by_content_type() {
        assert_eq!(
            body_value("application/json", b"{\"a\":1}"),
            ("body", json!({"a": 1}))
        );
        assert_eq!(body_value("text/plain", b"hi"), ("body", json!("hi")));
        assert_eq!(
            body_value("application/octet-stream", &[0xff, 0]),
            ("body_base64", json!("/wA="))
        );
    }
}
