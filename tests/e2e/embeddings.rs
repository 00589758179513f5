//! The embed pipeline end to end: OpenAI embeddings requests through the real component,
//! the guest's own WordPiece tokenizer and all-MiniLM-L6-v2 run by tract, checked against
//! the NumPy reference embeddings committed in `tests/data/embeddings/reference.json`;
//! and its serverless fallback against `hybrid-sim`, which never mixes models.

use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use hybrid::config::{BudgetConfig, EndpointConfig, EndpointKind, Prices};
use hybrid::remote::Remote;
use hybrid::runtime::{Outcome, PipelineError, Runtime};
use hybrid_sim::{ApiKey, SimConfig, SimHandle, spawn};
use hybrid_tests::{
    component, minilm_model, pipeline, request, runtime_with_models,
    runtime_with_models_and_remote, test_data,
};
use serde_json::{Value, json};

/// Agreement required with the reference (the acceptance bound).
const MIN_COSINE: f64 = 0.9999;
const MODEL: &str = "minilm-l6-v2";

/// One runtime for the file. Its model runs every shape on the generic plan
/// (`shape_plans = 0`), so that two requests of the same input agree bit for bit: a plan
/// made for one shape may differ in the last bits (`local_models.rs` tests those plans).
fn rt() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        let mut model = minilm_model();
        model.shape_plans = 0;
        runtime_with_models(
            &[model],
            &[pipeline("embed", component("embed"), 60_000, 256)],
        )
    })
}

fn embed(body: Value) -> Result<Outcome, PipelineError> {
    let body = serde_json::to_vec(&body).expect("JSON");
    rt().handle("embed", &request(body, "application/json", &[]))
}

fn json(outcome: &Outcome) -> Value {
    assert_eq!(outcome.response.content_type, "application/json");
    serde_json::from_slice(&outcome.response.body).expect("JSON body")
}

/// The float vectors of a response, in `index` order.
fn vectors(v: &Value) -> Vec<Vec<f64>> {
    let data = v["data"].as_array().expect("data");
    data.iter()
        .enumerate()
        .map(|(i, item)| {
            assert_eq!(item["index"], i);
            assert_eq!(item["object"], "embedding");
            let values = item["embedding"].as_array().expect("float embedding");
            values.iter().map(|x| x.as_f64().expect("number")).collect()
        })
        .collect()
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

fn rejected(result: Result<Outcome, PipelineError>) -> (u16, String) {
    let err = result.expect_err("rejected");
    (err.status(), err.to_string())
}

#[test]
fn embeddings_agree_with_the_numpy_reference() {
    let reference: Value =
        serde_json::from_slice(&test_data("embeddings/reference.json")).expect("reference");
    let sentences = reference["sentences"].as_array().expect("sentences");
    assert!(sentences.len() >= 50);
    let texts: Vec<&str> = sentences
        .iter()
        .map(|s| s["text"].as_str().expect("text"))
        .collect();
    // The committed sentence list is what the reference was made from.
    let file = String::from_utf8(test_data("embeddings/sentences.txt")).expect("UTF-8");
    assert_eq!(
        file.lines().filter(|l| !l.is_empty()).collect::<Vec<_>>(),
        texts
    );

    // One request: two padded batches, so masking matters for the short sentences.
    let outcome = embed(json!({ "input": texts })).expect("served");
    assert_eq!(outcome.model_runs.len(), 2);
    let v = json(&outcome);
    let got = vectors(&v);
    let mut worst = (f64::INFINITY, "");
    for ((s, g), text) in sentences.iter().zip(&got).zip(&texts) {
        let expected: Vec<f64> = s["embedding"]
            .as_array()
            .expect("embedding")
            .iter()
            .map(|x| x.as_f64().expect("number"))
            .collect();
        assert_eq!(g.len(), 384);
        let c = cosine(g, &expected);
        if c < worst.0 {
            worst = (c, text);
        }
    }
    assert!(
        worst.0 >= MIN_COSINE,
        "cosine {} for {:?}",
        worst.0,
        worst.1
    );
    let tokens: u64 = sentences
        .iter()
        .map(|s| s["tokens"].as_u64().expect("tokens"))
        .sum();
    assert_eq!(v["usage"]["prompt_tokens"], tokens);
    assert_eq!(v["usage"]["total_tokens"], tokens);
    eprintln!(
        "min cosine vs reference: 1 - {:.1e} ({:?})",
        1.0 - worst.0,
        worst.1
    );
}

#[test]
fn paraphrases_are_closer_than_unrelated_sentences() {
    let v = json(
        &embed(json!({ "input": [
            "A man is playing a guitar.",
            "Someone plays an instrument.",
            "The stock market fell today.",
            "How do I reset my password?",
            "I forgot the password to my account and cannot log in.",
        ]}))
        .expect("served"),
    );
    let e = vectors(&v);
    let guitar_instrument = cosine(&e[0], &e[1]);
    let guitar_stocks = cosine(&e[0], &e[2]);
    let instrument_stocks = cosine(&e[1], &e[2]);
    assert!(
        guitar_instrument > guitar_stocks + 0.2 && guitar_instrument > instrument_stocks + 0.2,
        "{guitar_instrument} vs {guitar_stocks}, {instrument_stocks}"
    );
    assert!(cosine(&e[3], &e[4]) > cosine(&e[3], &e[2]) + 0.2);
    for v in &e {
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    }
}

#[test]
fn the_response_and_routing_record_name_the_model() {
    let outcome = embed(json!({
        "input": ["one", "two words", "three little words"],
        "model": "text-embedding-3-small",
    }))
    .expect("served");
    let routing = &outcome.response.routing;
    assert_eq!(routing.route, "local");
    assert_eq!(
        (routing.model.as_str(), routing.model_version.as_str()),
        (MODEL, "0.1.0")
    );
    // [CLS] + words + [SEP]: 3 + 4 + 5.
    assert_eq!(routing.reason, "3 inputs, 12 tokens, 1 batch");
    let v = json(&outcome);
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], MODEL);
    assert_eq!(v["model_sha256"], minilm_model().sha256);
    assert_eq!(v["usage"], json!({"prompt_tokens": 12, "total_tokens": 12}));
    assert!(
        outcome
            .model_runs
            .iter()
            .all(|r| r.model == MODEL && r.version == "0.1.0")
    );
}

#[test]
fn inputs_longer_than_256_tokens_are_truncated_not_rejected() {
    let long = "word ".repeat(1000);
    let outcome = embed(json!({ "input": long })).expect("served");
    let v = json(&outcome);
    assert_eq!(v["usage"]["prompt_tokens"], 256);
    assert_eq!(vectors(&v)[0].len(), 384);
    // Only the first 254 words count: 2000 words embed the same as 1000.
    let longer = json(&embed(json!({ "input": "word ".repeat(2000) })).expect("served"));
    assert!(cosine(&vectors(&v)[0], &vectors(&longer)[0]) > 0.999_999);
}

#[test]
fn empty_input_is_rejected_as_openai_does() {
    let (status, msg) = rejected(embed(json!({ "input": [] })));
    assert_eq!(status, 400, "{msg}");
    assert!(msg.contains("input must not be empty"), "{msg}");

    let (status, msg) = rejected(embed(json!({ "input": "" })));
    assert_eq!(status, 400, "{msg}");
    assert!(msg.contains("'$.input' is invalid"), "{msg}");

    let (status, msg) = rejected(embed(json!({ "input": ["fine", ""] })));
    assert_eq!(status, 400, "{msg}");
    assert!(msg.contains("'$.input[1]' is invalid"), "{msg}");
}

#[test]
fn unsupported_parameters_and_bodies_are_named() {
    let (status, msg) = rejected(embed(json!({ "input": "a", "dimensions": 128 })));
    assert_eq!(status, 400, "{msg}");
    assert!(msg.contains("dimensions"), "{msg}");
    let (status, msg) = rejected(rt().handle(
        "embed",
        &request(b"{\"input\": \"a\"}".to_vec(), "text/plain", &[]),
    ));
    assert_eq!(status, 415, "{msg}");
    let (status, msg) = rejected(rt().handle(
        "embed",
        &request(b"{not json".to_vec(), "application/json", &[]),
    ));
    assert_eq!(status, 400, "{msg}");
}

#[test]
fn base64_decodes_to_the_same_floats() {
    // One input per request: a batch of one row is never split across cores, so both
    // requests run the same computation and must agree bit for bit (a batch split one
    // way or another may differ in the last bits; see `batch_split.rs`).
    for input in [
        "The cat sat on the mat.",
        "Crème brûlée",
        "東京は日本の首都です。",
    ] {
        let floats = vectors(&json(&embed(json!({ "input": [input] })).expect("served")));
        let v =
            json(&embed(json!({ "input": [input], "encoding_format": "base64" })).expect("served"));
        assert_decodes_to(&v, &floats);
    }
}

/// Each base64 vector of `v` decodes to the corresponding `floats` exactly.
fn assert_decodes_to(v: &Value, floats: &[Vec<f64>]) {
    assert_eq!(v["data"].as_array().expect("data").len(), floats.len());
    for (item, expected) in v["data"].as_array().expect("data").iter().zip(floats) {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(item["embedding"].as_str().expect("base64 string"))
            .expect("valid base64");
        let decoded: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let from_json: Vec<f32> = expected.iter().map(|&x| x as f32).collect();
        assert_eq!(decoded, from_json);
    }
}

#[test]
fn a_batch_of_40_inputs_takes_two_model_runs() {
    let inputs: Vec<String> = (0..40).map(|i| format!("Sentence number {i}.")).collect();
    let outcome = embed(json!({ "input": inputs })).expect("served");
    assert_eq!(outcome.model_runs.len(), 2);
    assert!(outcome.response.routing.reason.starts_with("40 inputs"));
    assert!(outcome.response.routing.reason.ends_with("2 batches"));
    let v = json(&outcome);
    let e = vectors(&v);
    assert_eq!(e.len(), 40);
    // Batched or alone, an input embeds the same.
    let alone = json(&embed(json!({ "input": "Sentence number 39." })).expect("served"));
    assert!(cosine(&e[39], &vectors(&alone)[0]) > 0.999_999);
}

/// A real-looking key (see `hybrid_tests::secrets`).
const SIM_KEY: &str = hybrid_tests::secrets::SERVERLESS_KEY;
const SIM_KEY_VAR: &str = "HYBRID_TEST_EMBED_KEY";

fn embeddings_endpoint(name: &str, sim: &SimHandle) -> EndpointConfig {
    EndpointConfig {
        name: name.into(),
        kind: EndpointKind::Embeddings,
        base_url: sim.base_url(),
        api_key_env: Some(SIM_KEY_VAR.into()),
        model: "all-mini-lm-l6-v2".into(),
        path: None,
        stream: false,
        model_sha256: None,
        price: Prices {
            input_per_mtok: 0.02,
            output_per_mtok: 0.0,
            per_audio_second: 0.0,
            per_request: 0.0,
        },
        timeout_ms: 5_000,
        connect_timeout_ms: 500,
        max_attempts: 2,
        backoff_ms: 10,
        max_backoff_ms: 200,
        breaker_failures: 5,
        breaker_open_ms: 30_000,
        max_request_bytes: 1 << 20,
        max_response_bytes: 1 << 20,
    }
}

/// A simulator and a runtime whose `embed` pipeline is bound to minilm-l6-v2, with two
/// embeddings endpoints on the simulator: `same` declares minilm's sha256, `other` no
/// model identity.
fn fallback_setup() -> (SimHandle, Runtime) {
    let sim = spawn(SimConfig::with_key(ApiKey::new(SIM_KEY).expect("key"))).expect("sim starts");
    let mut same = embeddings_endpoint("same", &sim);
    same.model_sha256 = Some(minilm_model().sha256);
    let other = embeddings_endpoint("other", &sim);
    let remote = Remote::with_env(&[same, other], &BudgetConfig::default(), &|var| {
        (var == SIM_KEY_VAR).then(|| SIM_KEY.to_string())
    })
    .expect("remote");
    let mut embed = pipeline("embed", component("embed"), 60_000, 256);
    embed.embedding_model = Some(MODEL.into());
    let rt = runtime_with_models_and_remote(&[minilm_model()], Arc::new(remote), &[embed]);
    (sim, rt)
}

fn embed_with(rt: &Runtime, metadata: &[(&str, &str)]) -> Outcome {
    let body = serde_json::to_vec(&json!({"input": ["the edge box", "serverless"]})).expect("JSON");
    rt.handle("embed", &request(body, "application/json", metadata))
        .expect("served")
}

#[test]
fn prefer_remote_on_an_endpoint_of_the_same_model_is_served_remotely_under_its_identity() {
    let (sim, rt) = fallback_setup();
    let outcome = embed_with(&rt, &[("prefer", "remote"), ("fallback", "same")]);
    let routing = &outcome.response.routing;
    assert_eq!(routing.route, "remote:same");
    assert!(
        routing
            .reason
            .starts_with("prefer=remote; served by endpoint same (same model sha256 e3696613...)"),
        "{}",
        routing.reason
    );
    assert_eq!(
        (routing.model.as_str(), routing.model_version.as_str()),
        (MODEL, "0.1.0")
    );
    assert!(outcome.model_runs.is_empty(), "the local model did not run");
    assert_eq!(outcome.remote_calls.len(), 1);
    assert_eq!(sim.stats().requests_total, 1);

    let v = json(&outcome);
    assert_eq!(v["model"], MODEL);
    assert_eq!(v["model_sha256"], minilm_model().sha256);
    assert_eq!(v["hybrid"]["route"], "remote:same");
    assert_eq!(v["hybrid"]["attempts"], 1);
    assert!(v["hybrid"]["cost_usd"].as_f64().is_some());
    // [CLS] the edge box [SEP] + [CLS] server ##less [SEP], by the local tokenizer.
    assert_eq!(v["usage"]["prompt_tokens"], 9);
    let remote = vectors(&v);
    assert!(remote.iter().all(|e| e.len() == 384));

    // The simulator's vectors (a hash of the text), not the model's.
    let local = vectors(&json(&embed_with(&rt, &[])));
    assert!(cosine(&remote[0], &local[0]) < 0.9);
}

#[test]
fn prefer_remote_on_an_endpoint_of_another_model_is_served_locally_and_nothing_is_sent() {
    let (sim, rt) = fallback_setup();
    let outcome = embed_with(&rt, &[("prefer", "remote"), ("fallback", "other")]);
    let routing = &outcome.response.routing;
    assert_eq!(routing.route, "local");
    assert!(
        routing
            .reason
            .starts_with("prefer=remote, but endpoint other failed (not-found:")
            && routing
                .reason
                .contains("does not serve this pipeline's embedding model")
            && routing.reason.contains("must not be mixed")
            && routing
                .reason
                .ends_with("; served locally: 2 inputs, 9 tokens, 1 batch"),
        "{}",
        routing.reason
    );
    let v = json(&outcome);
    assert_eq!(v["model_sha256"], minilm_model().sha256);
    assert!(v.get("hybrid").is_none());
    assert_eq!(outcome.model_runs.len(), 1);
    assert_eq!(
        sim.stats().requests_total,
        0,
        "the mismatched call never left"
    );
}

#[test]
fn without_a_fallback_the_pipeline_is_local_only() {
    let (sim, rt) = fallback_setup();
    let outcome = embed_with(&rt, &[("prefer", "remote")]);
    let routing = &outcome.response.routing;
    assert_eq!(
        (routing.route.as_str(), routing.reason.as_str()),
        ("local", "2 inputs, 9 tokens, 1 batch")
    );
    assert!(json(&outcome).get("hybrid").is_none());
    assert!(outcome.remote_calls.is_empty() && outcome.remote_failures.is_empty());
    assert_eq!(sim.stats().requests_total, 0);
}
