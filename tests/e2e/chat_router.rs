//! The chat-completions routing policy end to end: the real chat-router component calls
//! the serverless simulator's `/v1/chat/completions` through the host over loopback.
//! Checked: a valid request gets OpenAI's response shape with the provider's usage and a
//! `remote:chat` routing record; invalid bodies are 400 without any call; a provider
//! failing through every attempt is 502; an open circuit and a spent budget fail fast
//! (503, named) without reaching the simulator. Streaming, fallback and the statuses over
//! HTTP are in `streaming.rs`.

use std::sync::Arc;

use hybrid::config::{BudgetConfig, EndpointConfig, PipelineConfig};
use hybrid::remote::Remote;
use hybrid::runtime::{Outcome, PipelineError, Runtime};
use hybrid_sim::{ApiKey, Scenario, SimConfig, SimHandle};
use hybrid_tests::{component, pipeline, request, runtime_with_remote_only};
use serde_json::{Value, json};

/// The key the simulator accepts, handed to the host through [`KEY_VAR`].
/// A real-looking key (see `hybrid_tests::secrets`).
const KEY: &str = hybrid_tests::secrets::SERVERLESS_KEY;
/// The variable the endpoint config names; only the test's env closure answers it.
const KEY_VAR: &str = "HYBRID_TEST_CHAT_ROUTER_KEY";
/// The endpoint's configured model id.
const PROVIDER_MODEL: &str = "llama3.3-70b-instruct";
/// The simulator's chat route.
const ROUTE: &str = "/v1/chat/completions";

fn sim() -> SimHandle {
    hybrid_sim::spawn(SimConfig::with_key(
        ApiKey::new(KEY).expect("non-empty key"),
    ))
    .expect("simulator starts")
}

fn sim_with(scenario: &str) -> SimHandle {
    let sim = sim();
    sim.set_scenario(Scenario::from_toml(scenario).expect("scenario"))
        .expect("scenario set");
    sim
}

/// Endpoint `chat` at `sim` with small timeouts and backoff, `changes` merged in.
fn endpoint(sim: &SimHandle, changes: Value) -> EndpointConfig {
    let mut config = json!({
        "name": "chat",
        "kind": "chat",
        "base_url": sim.base_url(),
        "api_key_env": KEY_VAR,
        "model": PROVIDER_MODEL,
        "price": {"input_per_mtok": 0.65, "output_per_mtok": 0.65},
        "timeout_ms": 5_000,
        "max_attempts": 2,
        "backoff_ms": 10,
        "max_backoff_ms": 50,
    });
    if let (Some(config), Value::Object(changes)) = (config.as_object_mut(), changes) {
        config.extend(changes);
    }
    serde_json::from_value(config).expect("endpoint config")
}

fn chat_router() -> PipelineConfig {
    pipeline("chat-router", component("chat_router"), 30_000, 64)
}

/// A runtime whose only endpoint is `endpoint`, under `budget`.
fn router_runtime(endpoint: EndpointConfig, budget: &BudgetConfig) -> Runtime {
    let remote = Remote::with_env(&[endpoint], budget, &|var| {
        (var == KEY_VAR).then(|| KEY.to_owned())
    })
    .expect("remote set up");
    runtime_with_remote_only(Arc::new(remote), &[chat_router()])
}

fn send(rt: &Runtime, body: &str, metadata: &[(&str, &str)]) -> Result<Outcome, PipelineError> {
    rt.handle(
        "chat-router",
        &request(body.as_bytes().to_vec(), "application/json", metadata),
    )
}

/// A valid request asking for the operator's alias `house-llm`.
const HELLO: &str = r#"{"model": "house-llm", "max_tokens": 64, "messages": [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say hello to the edge box"}]}"#;

fn json_body(outcome: &Outcome) -> Value {
    assert_eq!(outcome.response.content_type, "application/json");
    serde_json::from_slice(&outcome.response.body).expect("JSON body")
}

#[test]
fn a_valid_request_gets_an_openai_answer_from_the_endpoint() {
    let sim = sim();
    let rt = router_runtime(endpoint(&sim, json!({})), &BudgetConfig::default());
    let outcome = send(&rt, HELLO, &[]).expect("served");
    let v = json_body(&outcome);

    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "house-llm", "the client's alias is echoed");
    assert!(
        v["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("chatcmpl-")),
        "{v}"
    );
    assert!(v["created"].is_u64(), "{v}");
    let choice = &v["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(
        choice["message"]["content"],
        "sim reply to: Say hello to the edge box"
    );
    assert_eq!(choice["finish_reason"], "stop");

    assert_eq!(outcome.remote_calls.len(), 1);
    let call = &outcome.remote_calls[0];
    let usage = &v["usage"];
    assert_eq!(usage["prompt_tokens"], call.usage.input_tokens);
    assert_eq!(usage["completion_tokens"], call.usage.output_tokens);
    assert_eq!(
        usage["total_tokens"],
        call.usage.input_tokens + call.usage.output_tokens
    );
    assert!(call.usage.input_tokens > 0 && call.usage.output_tokens > 0);

    let hybrid = &v["hybrid"];
    assert_eq!(hybrid["route"], "remote:chat");
    assert_eq!(hybrid["provider_model"], PROVIDER_MODEL);
    assert_eq!(hybrid["attempts"], 1);
    assert_eq!(
        hybrid["cost_usd"].as_f64(),
        Some(call.cost_micro_usd as f64 / 1e6)
    );
    assert!(call.cost_micro_usd > 0);

    let routing = &outcome.response.routing;
    assert_eq!(routing.route, "remote:chat");
    assert_eq!(
        routing.reason,
        "no local chat model; endpoint chat healthy (error rate 0%)"
    );
    assert_eq!(routing.model, PROVIDER_MODEL);
    assert_eq!(routing.model_version, "");

    let stats = sim.stats();
    assert_eq!(stats.count(ROUTE, 200), 1);
    assert_eq!(stats.requests_total, 1);
}

#[test]
fn pass_model_sends_the_clients_model_to_the_provider() {
    let sim = sim();
    let rt = router_runtime(endpoint(&sim, json!({})), &BudgetConfig::default());
    let body = HELLO.replace("house-llm", "llama3-8b-instruct");
    let outcome = send(&rt, &body, &[("pass_model", "true")]).expect("served");
    assert_eq!(outcome.response.routing.model, "llama3-8b-instruct");
    assert_eq!(
        json_body(&outcome)["hybrid"]["provider_model"],
        "llama3-8b-instruct"
    );

    // A model the provider does not know is its rejection of the client's request: 400.
    let err = send(&rt, HELLO, &[("pass_model", "true")]).expect_err("unknown model");
    assert_eq!(err.status(), 400, "{err}");
    assert!(err.to_string().contains("HTTP 404"), "{err}");
}

#[test]
fn invalid_bodies_are_400_and_never_reach_the_provider() {
    let sim = sim();
    let rt = router_runtime(endpoint(&sim, json!({})), &BudgetConfig::default());
    let cases = [
        ("not json", "not valid JSON"),
        (r#"{"model": "m", "messages": []}"#, "'messages'"),
        (
            r#"{"model": "m", "temperature": 3, "messages": [{"role": "user", "content": "hi"}]}"#,
            "'temperature'",
        ),
        (
            r#"{"messages": [{"role": "user", "content": "hi"}]}"#,
            "'model'",
        ),
    ];
    for (body, names) in cases {
        let err = send(&rt, body, &[]).expect_err(body);
        assert_eq!(err.status(), 400, "{body}: {err}");
        assert!(err.to_string().contains(names), "{body}: {err}");
    }
    let err = send(
        &rt,
        r#"{"model": "m", "n": 2, "messages": [{"role": "user", "content": "hi"}]}"#,
        &[],
    )
    .expect_err("n = 2");
    assert_eq!(err.status(), 415, "{err}");
    assert_eq!(sim.stats().requests_total, 0);
}

#[test]
fn a_provider_failing_through_every_attempt_is_502() {
    let sim = sim_with(r#"sequence = ["503", "503"]"#);
    let rt = router_runtime(endpoint(&sim, json!({})), &BudgetConfig::default());
    let err = send(&rt, HELLO, &[]).expect_err("503 twice");
    assert_eq!(err.status(), 502, "{err}");
    assert!(
        err.to_string().contains("unavailable") && err.to_string().contains("503"),
        "{err}"
    );
    assert_eq!(sim.stats().count(ROUTE, 503), 2);
}

#[test]
fn an_open_circuit_fails_fast_without_calling_the_provider() {
    let sim = sim_with(r#"sequence = ["503"]"#);
    let rt = router_runtime(
        endpoint(&sim, json!({"breaker_failures": 1, "max_attempts": 1})),
        &BudgetConfig::default(),
    );
    let first = send(&rt, HELLO, &[]).expect_err("503");
    assert_eq!(first.status(), 502, "{first}");
    assert_eq!(sim.stats().requests_total, 1);

    let err = send(&rt, HELLO, &[]).expect_err("circuit open");
    assert_eq!(err.status(), 503, "{err}");
    assert!(
        err.to_string().contains(
            "serverless endpoint \"chat\" is unavailable (circuit open after repeated failures)"
        ),
        "{err}"
    );
    assert_eq!(
        sim.stats().requests_total,
        1,
        "an open circuit sends nothing"
    );
}

#[test]
fn a_spent_budget_fails_fast_naming_the_window() {
    let sim = sim();
    let rt = router_runtime(
        endpoint(&sim, json!({"price": {"per_request": 0.01}})),
        &BudgetConfig {
            per_minute: Some(0.01),
            ..BudgetConfig::default()
        },
    );
    send(&rt, HELLO, &[]).expect("the first call fits the budget");
    let err = send(&rt, HELLO, &[]).expect_err("budget spent");
    assert_eq!(err.status(), 503, "{err}");
    let message = err.to_string();
    assert!(
        message.contains("per-minute") && message.contains("budget") && message.contains("spent"),
        "{message}"
    );
    assert_eq!(sim.stats().requests_total, 1);
}
