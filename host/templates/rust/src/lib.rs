//! A pipeline component for the `hybrid` edge host, made by `hybrid new`.
//!
//! The host hands [`Plugin::handle`] one request (a body, its content type, metadata) and
//! the plugin answers with a response and a routing record saying who answered and why.
//! As written it echoes the request back as JSON with what it saw. The request's `action`
//! (a query parameter, `?action=model`, or the header `x-hybrid-action`) picks one of the
//! other paths, each a small working example of host calls to start from:
//!
//! - `echo` (the default): answered on the box, no model.
//! - `model`: runs a local model (`host.list_models()`, `host.run_model`) once on zeros
//!   of its declared input shapes and reports its outputs.
//! - `chat`: asks a serverless chat endpoint (`host.chat`): the one the operator names
//!   with the setting `endpoint`, else `chat`.
//! - `signals`: reads the box's load, endpoint health and prices (`host.local_load()`,
//!   `host.endpoints()`, `host.prices()`), what a routing policy decides on.
//!
//! When a model or an endpoint fails, the plugin still answers (an echo, on the box) and
//! the routing reason says what failed; a pipeline that cannot do without them returns
//! `Err(Error::upstream(..))` instead, which the client sees as HTTP 502.
//!
//! `cargo build --release` makes the component; the tests at the bottom run natively
//! against the SDK's fake host: `cargo test --target x86_64-unknown-linux-gnu`.

use hybrid_guest::local::TensorSpec;
use hybrid_guest::metadata::{Metadata, SETTING_PREFIX, setting};
use hybrid_guest::remote::{ChatParams, Message};
use hybrid_guest::signals::{self, CircuitState};
use hybrid_guest::tensor::{NamedTensor, TensorType, element_count};
use hybrid_guest::{Error, Host, Pipeline, Request, Response, Routing};
use serde_json::{Value, json};

/// The component's pipeline: one request in, one JSON answer out.
pub struct Plugin;

/// What the client asked for, from metadata `action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Echo,
    Model,
    Chat,
    Signals,
}

const ACTIONS: [(&str, Action); 4] = [
    ("echo", Action::Echo),
    ("model", Action::Model),
    ("chat", Action::Chat),
    ("signals", Action::Signals),
];

impl Pipeline for Plugin {
    fn handle(request: Request, host: &mut impl Host) -> Result<Response, Error> {
        let metadata = Metadata::of(&request);
        // An unknown action is the client's mistake: 400, naming the actions there are.
        let action = metadata.choice("action", &ACTIONS)?.unwrap_or(Action::Echo);
        let response = match action {
            Action::Echo => echo(&request, "echoed the request"),
            Action::Model => run_model(&request, &metadata, host),
            Action::Chat => chat(&request, &metadata, host),
            Action::Signals => read_signals(host),
        }?;
        // For the operator: sizes, routes and timings, never the body.
        host.log_info(&format!(
            "{} {}: {action:?}, {} body bytes, route {}",
            env!("CARGO_PKG_NAME"),
            request.id,
            request.body.len(),
            response.routing.route
        ));
        Ok(response)
    }
}

hybrid_guest::export_pipeline!(Plugin);

/// The request's body as JSON when it parses, else as text.
fn body_value(request: &Request) -> Value {
    serde_json::from_slice(&request.body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&request.body).into_owned()))
}

/// Echoes the body with what the plugin saw, answered on the box for `reason`.
fn echo(request: &Request, reason: &str) -> Result<Response, Error> {
    // The client's own metadata only: `setting.*` keys are the operator's configuration.
    let metadata: Vec<Value> = request
        .metadata
        .iter()
        .filter(|(key, _)| !key.starts_with(SETTING_PREFIX))
        .map(|(key, value)| json!([key, value]))
        .collect();
    let answer = json!({
        "echo": body_value(request),
        "seen": {
            "request_id": request.id,
            "content_type": request.content_type,
            "body_bytes": request.body.len(),
            "metadata": metadata,
        },
    });
    Response::json(&answer, Routing::local(reason, "", ""))
}

/// `?action=model`: runs a local model once on zeros shaped as it declares its inputs.
/// Which model: the client's `model`, else the operator's setting `model`, else the first
/// one loaded on the box. Replace the zeros with your preprocessing of the body.
fn run_model(
    request: &Request,
    metadata: &Metadata,
    host: &mut impl Host,
) -> Result<Response, Error> {
    let wanted = match metadata.text("model")? {
        Some(name) => Some(name),
        None => metadata.text(&setting("model"))?,
    };
    let models = host.list_models();
    let model = match wanted {
        Some(name) => models.iter().find(|m| m.name == name),
        None => models.first(),
    };
    let Some(model) = model else {
        let reason = match wanted {
            Some(name) => format!("no local model {name:?} on this box: echoed"),
            None => "no local models on this box: echoed".to_owned(),
        };
        return echo(request, &reason);
    };
    let inputs = model
        .inputs
        .iter()
        .map(zeros)
        .collect::<Result<Vec<_>, _>>()?;
    match host.run_model(&model.name, &inputs) {
        Ok(outputs) => {
            let outputs: Vec<Value> = outputs
                .iter()
                .map(|t| json!({ "name": t.name, "dims": t.dims(), "first": first_values(t) }))
                .collect();
            let answer = json!({ "model": model.name, "outputs": outputs });
            let reason = format!("ran {} on zeros", model.name);
            Response::json(&answer, Routing::local(reason, &model.name, &model.version))
        }
        Err(e) => echo(
            request,
            &format!("model {} failed ({e}): echoed", model.name),
        ),
    }
}

/// A tensor of zeros for `spec`, each size chosen per call (`None`) set to 1.
fn zeros(spec: &TensorSpec) -> Result<NamedTensor, Error> {
    let dims: Vec<u32> = spec.shape.iter().map(|d| d.unwrap_or(1)).collect();
    let n = element_count(&dims)
        .ok_or_else(|| Error::internal(format!("input {} is too large", spec.name)))?;
    let tensor = match spec.ty {
        TensorType::Fp32 => NamedTensor::fp32(&spec.name, &dims, &vec![0.0; n]),
        TensorType::I64 => NamedTensor::i64(&spec.name, &dims, &vec![0; n]),
        TensorType::I32 => NamedTensor::i32(&spec.name, &dims, &vec![0; n]),
        TensorType::U8 => NamedTensor::u8(&spec.name, &dims, &vec![0; n]),
    };
    Ok(tensor?)
}

/// Up to the first 8 values of an output, as JSON numbers.
fn first_values(t: &NamedTensor) -> Value {
    const SHOWN: usize = 8;
    let values = match t.tensor.ty {
        TensorType::Fp32 => t.to_f32().map(|v| json!(v[..v.len().min(SHOWN)])),
        TensorType::I64 => t.to_i64().map(|v| json!(v[..v.len().min(SHOWN)])),
        TensorType::I32 => t.to_i32().map(|v| json!(v[..v.len().min(SHOWN)])),
        TensorType::U8 => t.to_u8().map(|v| json!(v[..v.len().min(SHOWN)])),
    };
    values.unwrap_or(Value::Null)
}

/// `?action=chat`: asks the serverless chat endpoint about the body's `text` (or the
/// whole body), unless its circuit is open.
fn chat(request: &Request, metadata: &Metadata, host: &mut impl Host) -> Result<Response, Error> {
    let endpoint = metadata.text(&setting("endpoint"))?.unwrap_or("chat");
    // A failing endpoint's breaker is open: do not wait for it to fail again.
    if signals::circuit_open(&host.endpoints(), endpoint) {
        return echo(request, &format!("endpoint {endpoint} is failing: echoed"));
    }
    let text = match body_value(request) {
        Value::Object(fields) => match fields.get("text") {
            Some(Value::String(text)) => text.clone(),
            _ => Value::Object(fields).to_string(),
        },
        Value::String(text) => text,
        other => other.to_string(),
    };
    let messages = [
        Message::new("system", "Answer in one short sentence."),
        Message::new("user", text),
    ];
    let params = ChatParams {
        max_tokens: Some(64),
        ..ChatParams::default()
    };
    match host.chat(endpoint, &messages, &params) {
        Ok(result) => {
            let answer = json!({
                "answer": result.content,
                "endpoint": endpoint,
                "cost_micro_usd": result.call.cost_micro_usd,
                "latency_ms": result.call.latency_ms,
            });
            let routing = Routing::remote(endpoint, "action=chat", &result.call.model);
            Response::json(&answer, routing)
        }
        Err(e) => echo(
            request,
            &format!("endpoint {endpoint} failed ({e}): echoed"),
        ),
    }
}

/// `?action=signals`: what the box knows now about itself and its endpoints. A routing
/// policy reads these to decide, e.g. go remote when the box is queueing, stay local
/// when the endpoint's circuit is open or the budget is spent.
fn read_signals(host: &mut impl Host) -> Result<Response, Error> {
    let load = host.local_load();
    let endpoints: Vec<Value> = host
        .endpoints()
        .iter()
        .map(|h| {
            let circuit = match h.circuit {
                CircuitState::Closed => "closed",
                CircuitState::Open => "open",
                CircuitState::HalfOpen => "half-open",
            };
            json!({
                "name": h.name,
                "circuit": circuit,
                "error_rate": h.error_rate,
                "latency_ms": h.latency_ms,
            })
        })
        .collect();
    let prices: Vec<Value> = host
        .prices()
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "kind": p.kind,
                "input_usd_per_mtok": p.input_usd_per_mtok,
                "output_usd_per_mtok": p.output_usd_per_mtok,
                "usd_per_request": p.usd_per_request,
            })
        })
        .collect();
    let spend = host.spend();
    let answer = json!({
        "load": {
            "in_flight": load.in_flight,
            "queue_depth": load.queue_depth,
            "capacity": load.capacity,
            "recent_model_ms": load.recent_model_ms,
        },
        "endpoints": endpoints,
        "prices": prices,
        "budget_spent": signals::spent_window(&spend).map(|w| w.window.as_str()),
    });
    Response::json(&answer, Routing::local("read the box's signals", "", ""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hybrid_guest::fake::{self, FakeHost};
    use hybrid_guest::remote::{CallRecord, RemoteError};
    use hybrid_guest::signals::{EndpointHealth, EndpointPrice};

    fn ask(host: &mut FakeHost, action: Option<&str>) -> Response {
        let mut request = Request::new("r1", "application/json", r#"{"text": "hello"}"#);
        if let Some(action) = action {
            request = request.with_metadata("action", action);
        }
        Plugin::handle(request, host).expect("answered")
    }

    #[test]
    fn echoes_the_body_with_what_it_saw() {
        let mut host = FakeHost::new();
        let a = ask(&mut host, None);
        let body = fake::json_body(&a);
        assert_eq!(body["echo"]["text"], "hello");
        assert_eq!(body["seen"]["body_bytes"], 17);
        assert_eq!(a.routing.route, "local");
        assert_eq!(host.logs.len(), 1);
        assert!(!host.logs[0].contains("hello"), "the body is never logged");
    }

    #[test]
    fn action_model_runs_a_local_model_on_zeros() {
        let mut host = FakeHost::new().with_model("digits", "1", |run| {
            assert_eq!(run.inputs[0].dims(), [1, 4]);
            let out = NamedTensor::fp32("probabilities", &[1, 2], &[0.25, 0.75]);
            Ok(vec![out.expect("fits")])
        });
        host.models[0].inputs = vec![TensorSpec {
            name: "input".into(),
            ty: TensorType::Fp32,
            shape: vec![None, Some(4)],
        }];
        let a = ask(&mut host, Some("model"));
        assert_eq!(fake::json_body(&a)["outputs"][0]["first"][1], 0.75);
        assert_eq!(
            (a.routing.model.as_str(), a.routing.model_version.as_str()),
            ("digits", "1")
        );

        let a = ask(&mut FakeHost::new(), Some("model"));
        assert_eq!(a.routing.reason, "no local models on this box: echoed");
    }

    #[test]
    fn action_chat_asks_the_endpoint_and_answers_locally_when_it_fails() {
        let mut host = FakeHost::new();
        let call = CallRecord {
            model: "llama".into(),
            ..CallRecord::default()
        };
        host.on_chat = fake::reply("Yes.", call);
        let a = ask(&mut host, Some("chat"));
        assert_eq!(fake::json_body(&a)["answer"], "Yes.");
        assert_eq!(
            (a.routing.route.as_str(), a.routing.model.as_str()),
            ("remote:chat", "llama")
        );
        assert_eq!(host.chats[0].messages[1].content, "hello");

        host.on_chat = fake::fail(RemoteError::Timeout("slow".into()));
        let a = ask(&mut host, Some("chat"));
        assert_eq!(a.routing.route, "local");
        assert_eq!(
            a.routing.reason,
            "endpoint chat failed (timeout: slow): echoed"
        );
    }

    #[test]
    fn action_signals_reports_load_endpoints_and_prices() {
        let mut host = FakeHost::new();
        host.endpoints = vec![EndpointHealth::healthy("chat")];
        host.prices = vec![EndpointPrice {
            name: "chat".into(),
            kind: "chat".into(),
            input_usd_per_mtok: 0.65,
            output_usd_per_mtok: 0.65,
            usd_per_audio_second: 0.0,
            usd_per_request: 0.0,
        }];
        let body = fake::json_body(&ask(&mut host, Some("signals")));
        assert_eq!(body["load"]["capacity"], 4);
        assert_eq!(body["endpoints"][0]["circuit"], "closed");
        assert_eq!(body["prices"][0]["input_usd_per_mtok"], 0.65);
    }

    #[test]
    fn an_unknown_action_is_a_bad_request() {
        let request = Request::new("r1", "", "").with_metadata("action", "dance");
        let e = Plugin::handle(request, &mut FakeHost::new()).expect_err("refused");
        assert_eq!(e.case(), "bad-request");
    }
}
