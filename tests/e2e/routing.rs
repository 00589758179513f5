//! Routing between the local digits model and a serverless endpoint, end to end: the real
//! `hybrid serve` with the `cascade` and `policy` components, `digits-v1` run by tract,
//! and the serverless simulator behind endpoint `strong`, over loopback.
//!
//! The simulator stands in for a strong model with its classification workload: the test
//! builds it from the held-out digits, keyed by the integers of the prompt the components
//! send (the header's 0 and 16, then the 64 grey levels), answering every known image with
//! its true label. So a request that was escalated comes back right, and one that was not
//! carries the local model's answer: what the envelope says about who answered (route,
//! reason, remote calls, egress) can be checked against the held-out probabilities.
//!
//! Checked for the cascade: the share escalated grows with the threshold (and accuracy
//! with it); `route=local` never calls out; a failing or unreachable endpoint is answered
//! locally with the failure in the reason; `setting.fallback=error` makes that a 502.
//! For the policy, each rule: a private tag, personal data (kept, or sent redacted), an
//! open circuit, a spent budget, dear egress, the cost ceiling (which a client may lower
//! but not raise) and the spill to serverless at the queue bound.

use hybrid_sim::{Classifier, Scenario, SimConfig, SimHandle};
use hybrid_tests::edge_box::{Answer, EdgeBox, Scratch, agent, send};
use hybrid_tests::{component, test_data};
use serde_json::{Value, json};

/// The model id endpoint `strong` is configured with (the simulator echoes it).
const PROVIDER_MODEL: &str = "llama3.3-70b-instruct";
/// The simulator's chat route.
const CHAT: &str = "/v1/chat/completions";

/// One held-out image: grey levels 0..=16, its true label, and the top probability
/// scikit-learn gave it (tract agrees within 1e-5).
struct Sample {
    levels: Vec<u8>,
    label: String,
    confidence: f64,
}

/// The 64 held-out digits (`tests/data/digits/heldout.json`, pixels stored divided by 16).
fn heldout() -> Vec<Sample> {
    let data: Value =
        serde_json::from_slice(&test_data("digits/heldout.json")).expect("heldout.json");
    let rows = |key: &str| data[key].as_array().expect(key).clone();
    rows("pixels")
        .iter()
        .zip(rows("labels"))
        .zip(rows("probabilities"))
        .map(|((pixels, label), probabilities)| Sample {
            levels: pixels
                .as_array()
                .expect("row")
                .iter()
                .map(|p| (p.as_f64().expect("number") * 16.0).round() as u8)
                .collect(),
            label: label.to_string(),
            confidence: probabilities
                .as_array()
                .expect("row")
                .iter()
                .map(|p| p.as_f64().expect("number"))
                .fold(0.0, f64::max),
        })
        .collect()
}

/// The held-out image the local model is least sure of (top probability 0.38).
fn unsure() -> Sample {
    heldout()
        .into_iter()
        .min_by(|a, b| a.confidence.total_cmp(&b.confidence))
        .expect("samples")
}

/// The request body for `sample`, with `text` as context when given.
fn body(sample: &Sample, text: Option<&str>) -> Vec<u8> {
    let mut v = json!({"pixels": sample.levels});
    if let Some(text) = text {
        v["text"] = json!(text);
    }
    serde_json::to_vec(&v).expect("JSON")
}

/// A simulator answering every held-out image's prompt with its true label: its workload
/// is keyed by the 64 levels, the only integers of the prompt's last user message.
fn strong_model() -> SimHandle {
    let workload: String = heldout()
        .iter()
        .map(|s| format!("{}\n", json!({"body": s.levels, "label": s.label})))
        .collect();
    let classifier = Classifier::from_jsonl("heldout", &workload, 1.0).expect("workload");
    hybrid_sim::spawn(SimConfig::without_auth().classifier(classifier)).expect("sim starts")
}

/// A simulator answering every request 503.
fn failing_sim() -> SimHandle {
    let sim = hybrid_sim::spawn(SimConfig::without_auth()).expect("sim starts");
    sim.set_scenario(Scenario::from_toml("error_rate = 1.0\nerror_status = 503").expect("toml"))
        .expect("scenario");
    sim
}

/// A base URL nothing listens on.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}/v1")
}

/// The price of endpoints unless a test sets another (that of the default config's `strong`).
const PRICE: &str = "input_per_mtok = 0.65, output_per_mtok = 0.65";

/// An `[[endpoint]]` table for a chat endpoint at `base_url` with `price` (the inline
/// table's contents); `extra` adds lines.
fn endpoint(name: &str, base_url: &str, price: &str, extra: &str) -> String {
    format!(
        r#"
[[endpoint]]
name = "{name}"
kind = "chat"
base_url = "{base_url}"
model = "{PROVIDER_MODEL}"
price = {{ {price} }}
timeout_ms = 5000
max_attempts = 1
backoff_ms = 10
max_backoff_ms = 50
{extra}
"#
    )
}

/// A `[[pipeline]]` table running component `wasm` (`cascade` or `policy`) with the
/// inline `settings` table's contents.
fn pipeline(name: &str, wasm: &str, settings: &str) -> String {
    format!(
        r#"
[[pipeline]]
name = "{name}"
component = "{}"
deadline_ms = 10000
memory_mib = 64
settings = {{ {settings} }}
"#,
        component(wasm).display()
    )
}

/// A running box and the simulator behind it (dropped in this order).
struct Rig {
    edge: EdgeBox,
    sim: SimHandle,
    _scratch: Scratch,
}

impl Rig {
    /// Starts `hybrid serve` with `digits-v1`, the admin API, and `tables` (endpoints,
    /// pipelines, a budget), in a scratch folder named after `what`.
    fn start(what: &str, sim: SimHandle, tables: &[String]) -> Self {
        let scratch = Scratch::new(what);
        let config = format!(
            r#"
[admin]
token_env = "HYBRID_ADMIN_TOKEN"

[deploy]
state_dir = "{state}"

{digits}{tables}
"#,
            state = scratch.0.join("state").display(),
            digits = hybrid_tests::digits_model_toml("1"),
            tables = tables.concat(),
        );
        std::fs::write(scratch.0.join("hybrid.toml"), config).expect("config");
        let edge = EdgeBox::start(&scratch.0, &[]);
        Self {
            edge,
            sim,
            _scratch: scratch,
        }
    }

    /// POSTs `body` to `pipeline` with `query` (`key=value&...`, may be empty).
    fn ask(&self, pipeline: &str, query: &str, body: &[u8]) -> Answer {
        send(
            &agent(),
            "POST",
            &format!("{}/v1/pipelines/{pipeline}?{query}", self.edge.base),
            None,
            Some(("application/json", body)),
        )
    }

    /// Like [`Rig::ask`], expecting 200, returning the envelope.
    fn served(&self, pipeline: &str, query: &str, body: &[u8]) -> Value {
        let answer = self.ask(pipeline, query, body);
        assert_eq!(
            answer.status,
            200,
            "{pipeline}?{query}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        answer.json()
    }

    /// Chat requests the simulator has seen.
    fn chats(&self) -> u64 {
        self.sim.stats().requests_total
    }
}

fn route(envelope: &Value) -> &str {
    envelope["routing"]["route"].as_str().unwrap_or_default()
}

fn reason(envelope: &Value) -> &str {
    envelope["routing"]["reason"].as_str().unwrap_or_default()
}

/// Serverless calls the request made, failed ones included.
fn calls(envelope: &Value) -> usize {
    envelope["remote_calls"].as_array().map_or(0, Vec::len)
}

fn egress(envelope: &Value) -> u64 {
    envelope["egress_bytes"].as_u64().expect("egress_bytes")
}

fn local_runs(envelope: &Value) -> u64 {
    envelope["local_runs"]
        .as_array()
        .expect("local_runs")
        .iter()
        .map(|r| r["calls"].as_u64().unwrap_or(0))
        .sum()
}

/// Asserts the request stayed on the box: the local model answered, nothing was sent.
fn assert_kept_local(envelope: &Value, why: &str) {
    assert_eq!(route(envelope), "local", "{envelope}");
    assert_eq!(reason(envelope), why, "{envelope}");
    assert_eq!((calls(envelope), egress(envelope)), (0, 0), "{envelope}");
    assert_eq!(envelope["body"]["answered_by"], "local");
    assert_eq!(envelope["routing"]["model"], "digits-v1");
    assert_eq!(envelope["routing"]["model_version"], "1");
}

#[test]
fn cascade_escalates_a_larger_share_as_the_threshold_rises() {
    let sim = strong_model();
    let base = sim.base_url();
    let rig = Rig::start(
        "routing-sweep",
        sim,
        &[
            endpoint("strong", &base, PRICE, ""),
            pipeline("cascade", "cascade", ""),
        ],
    );
    let samples = heldout();
    let mut shares = Vec::new();
    let mut accuracies = Vec::new();
    for threshold in [0.5, 0.8, 0.95, 0.999] {
        let (mut escalated, mut correct) = (0, 0);
        for sample in &samples {
            let v = rig.served(
                "cascade",
                &format!("threshold={threshold}"),
                &body(sample, None),
            );
            let answer = &v["body"];
            if calls(&v) == 1 {
                escalated += 1;
                assert_eq!(route(&v), "remote:strong", "{v}");
                assert!(
                    reason(&v).starts_with("confidence ")
                        && reason(&v).contains(" < threshold ")
                        && reason(&v).ends_with(": escalated"),
                    "{v}"
                );
                assert_eq!(answer["answered_by"], "remote");
                assert!(answer["confidence"].is_null(), "{v}");
                assert_eq!(answer["remote"]["endpoint"], "strong");
                assert_eq!(v["routing"]["model"], PROVIDER_MODEL);
                assert_eq!(v["routing"]["model_version"], "");
                assert!(egress(&v) > 0 && v["cost_usd"].as_f64() > Some(0.0), "{v}");
            } else {
                assert_eq!(calls(&v), 0, "{v}");
                assert_eq!(route(&v), "local", "{v}");
                assert!(reason(&v).contains(">= threshold"), "{v}");
                let confidence = answer["confidence"].as_f64().expect("confidence");
                assert!((confidence - sample.confidence).abs() < 1e-4, "{v}");
                assert_eq!(
                    (egress(&v), &v["routing"]["model"]),
                    (0, &json!("digits-v1"))
                );
            }
            assert_eq!(local_runs(&v), 1, "the local model runs first: {v}");
            if answer["label"] == json!(sample.label) {
                correct += 1;
            }
        }
        // tract matches scikit-learn within 1e-5: only images that close to the
        // threshold may land on either side.
        let below = |t: f64| samples.iter().filter(|s| s.confidence < t).count();
        assert!(
            (below(threshold - 1e-4)..=below(threshold + 1e-4)).contains(&escalated),
            "threshold {threshold}: {escalated} escalated, expected about {}",
            below(threshold)
        );
        shares.push(escalated);
        accuracies.push(correct);
    }
    assert!(shares.is_sorted(), "escalated per threshold: {shares:?}");
    assert!(shares[0] < shares[3], "escalated per threshold: {shares:?}");
    assert!(
        accuracies.is_sorted(),
        "correct per threshold: {accuracies:?}"
    );
    assert_eq!(accuracies[3], 64, "every escalated image comes back right");
    assert_eq!(
        rig.sim.stats().classified.correct,
        shares.iter().sum::<usize>() as u64
    );
}

#[test]
fn route_local_never_calls_the_endpoint_and_route_remote_always_does() {
    let sim = strong_model();
    let base = sim.base_url();
    let rig = Rig::start(
        "routing-forced",
        sim,
        &[
            endpoint("strong", &base, PRICE, ""),
            pipeline("cascade", "cascade", "threshold = 0.999"),
        ],
    );
    for sample in heldout().iter().take(16) {
        let v = rig.served("cascade", "route=local", &body(sample, Some("row 3")));
        assert_eq!(route(&v), "local", "{v}");
        assert!(
            reason(&v).starts_with("route=local requested: answered locally (confidence "),
            "{v}"
        );
        assert_eq!((calls(&v), egress(&v)), (0, 0), "{v}");
    }
    assert_eq!(rig.chats(), 0, "route=local sent nothing");

    let sure = heldout()
        .into_iter()
        .max_by(|a, b| a.confidence.total_cmp(&b.confidence))
        .expect("samples");
    let v = rig.served("cascade", "route=remote&threshold=0.1", &body(&sure, None));
    assert_eq!(route(&v), "remote:strong", "{v}");
    assert_eq!(reason(&v), "route=remote requested: escalated");
    assert_eq!(v["body"]["label"], json!(sure.label));
    assert_eq!(rig.chats(), 1);
}

#[test]
fn a_failing_or_unreachable_endpoint_is_answered_locally_with_the_reason() {
    let sim = failing_sim();
    let base = sim.base_url();
    let rig = Rig::start(
        "routing-failing",
        sim,
        &[
            endpoint("strong", &base, PRICE, ""),
            endpoint("down", &closed_port(), PRICE, ""),
            pipeline("cascade", "cascade", ""),
            pipeline("cascade-down", "cascade", r#"endpoint = "down""#),
        ],
    );
    let sample = unsure();
    for (pipeline, failure) in [("cascade", "503"), ("cascade-down", "cannot reach")] {
        let v = rig.served(pipeline, "", &body(&sample, None));
        assert_eq!(route(&v), "local", "{v}");
        let why = reason(&v);
        assert!(
            why.starts_with("confidence 0.38 < threshold 0.90; escalation failed (unavailable: ")
                && why.contains(failure)
                && why.ends_with("): answered locally"),
            "{v}"
        );
        let answer = &v["body"];
        assert_eq!(answer["answered_by"], "local");
        assert_eq!(answer["label"], answer["local"]["label"]);
        assert!(
            answer["escalation_error"]
                .as_str()
                .is_some_and(|e| e.starts_with("unavailable: ") && e.contains(failure)),
            "{v}"
        );
        assert_eq!(calls(&v), 1, "the failed call is accounted: {v}");
        assert_eq!(v["cost_usd"], 0.0);
    }
    assert_eq!(rig.sim.stats().count(CHAT, 503), 1);
}

#[test]
fn fallback_error_answers_502_naming_the_endpoint() {
    let sim = failing_sim();
    let base = sim.base_url();
    let rig = Rig::start(
        "routing-strict",
        sim,
        &[
            endpoint("strong", &base, PRICE, ""),
            pipeline("cascade", "cascade", r#"fallback = "error""#),
            pipeline("policy", "policy", r#"fallback = "error""#),
        ],
    );
    for pipeline in ["cascade", "policy"] {
        let answer = rig.ask(pipeline, "", &body(&unsure(), None));
        assert_eq!(answer.status, 502, "{pipeline}");
        let message = answer.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            message.contains("escalation to endpoint \"strong\" failed (unavailable: ")
                && message.contains("setting.fallback is error"),
            "{pipeline}: {message}"
        );
    }
    // A confident image never escalates, so the fallback never matters.
    let sure = heldout()
        .into_iter()
        .max_by(|a, b| a.confidence.total_cmp(&b.confidence))
        .expect("samples");
    let v = rig.served("cascade", "", &body(&sure, None));
    assert_eq!(route(&v), "local");
}

#[test]
fn malformed_requests_are_refused_before_anything_runs() {
    let sim = strong_model();
    let base = sim.base_url();
    let rig = Rig::start(
        "routing-refused",
        sim,
        &[
            endpoint("strong", &base, PRICE, ""),
            pipeline("cascade", "cascade", ""),
            pipeline("policy", "policy", ""),
        ],
    );
    let good = body(&unsure(), None);
    let cases: [(&str, &str, &[u8], u16, &str); 5] = [
        ("cascade", "", b"{\"pixels\": [1, 2]}", 400, "has 2 values"),
        ("cascade", "", b"not json", 400, "not valid JSON"),
        ("cascade", "threshold=2", &good, 400, "\"threshold\""),
        ("policy", "private=perhaps", &good, 400, "\"private\""),
        ("policy", "max_cost_usd=-1", &good, 400, "\"max_cost_usd\""),
    ];
    for (pipeline, query, body, status, names) in cases {
        let answer = rig.ask(pipeline, query, body);
        assert_eq!(answer.status, status, "{pipeline}?{query}");
        let envelope = answer.json();
        let message = envelope["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(names), "{pipeline}?{query}: {message}");
    }
    let png = send(
        &agent(),
        "POST",
        &format!("{}/v1/pipelines/cascade", rig.edge.base),
        None,
        Some(("image/png", &good)),
    );
    assert_eq!(png.status, 415);
    assert_eq!(rig.chats(), 0);
}

#[test]
fn policy_keeps_private_requests_on_the_box() {
    let sim = strong_model();
    let base = sim.base_url();
    let rig = Rig::start(
        "routing-private",
        sim,
        &[
            endpoint("strong", &base, PRICE, ""),
            pipeline("policy", "policy", "threshold = 0.999"),
        ],
    );
    let sample = unsure();
    let v = rig.served(
        "policy",
        "private=true",
        &body(&sample, Some("quarterly form")),
    );
    assert_kept_local(&v, "tagged private: stays on the box");
    let v = rig.served(
        "policy",
        "private=false",
        &body(&sample, Some("quarterly form")),
    );
    assert_eq!(route(&v), "remote:strong", "{v}");
    assert_eq!(rig.chats(), 1);
}

#[test]
fn policy_keeps_personal_data_on_the_box_unless_redaction_is_allowed() {
    let sim = strong_model();
    let base = sim.base_url();
    let rig = Rig::start(
        "routing-pii",
        sim,
        &[
            endpoint("strong", &base, PRICE, ""),
            pipeline("policy", "policy", "threshold = 0.999"),
            pipeline(
                "policy-redact",
                "policy",
                r#"threshold = 0.999, redact = "allow""#,
            ),
        ],
    );
    let sample = unsure();
    let personal = "from jane.doe@example.com, please";
    let v = rig.served("policy", "", &body(&sample, Some(personal)));
    assert_kept_local(&v, "personal data (e-mail) stays on the box");
    let card = "card 4111 1111 1111 1111";
    let v = rig.served("policy", "", &body(&sample, Some(card)));
    assert_kept_local(&v, "personal data (card) stays on the box");
    assert_eq!(rig.chats(), 0);

    // Allowed out redacted: the prompt that leaves is the one a text already reading
    // `[EMAIL]` makes, byte for byte.
    let v = rig.served("policy-redact", "", &body(&sample, Some(personal)));
    assert_eq!(route(&v), "remote:strong", "{v}");
    assert_eq!(
        reason(&v),
        "redacted 1 e-mail; confidence 0.384 < threshold 0.999: escalated"
    );
    assert_eq!(v["body"]["label"], json!(sample.label));
    let placeholder = rig.served(
        "policy-redact",
        "",
        &body(&sample, Some("from [EMAIL], please")),
    );
    assert_eq!(
        reason(&placeholder),
        "confidence 0.384 < threshold 0.999: escalated",
        "a placeholder is not personal data"
    );
    // The address is 13 bytes longer than its placeholder: had it left, egress would differ.
    assert_eq!(egress(&v), egress(&placeholder), "{v}\n{placeholder}");
    assert_eq!(rig.chats(), 2);
}

#[test]
fn policy_stops_calling_an_endpoint_whose_circuit_opened() {
    let sim = failing_sim();
    let base = sim.base_url();
    let rig = Rig::start(
        "routing-circuit",
        sim,
        &[
            endpoint("strong", &base, PRICE, "breaker_failures = 1"),
            pipeline("policy", "policy", ""),
        ],
    );
    let sample = unsure();
    let first = rig.served("policy", "", &body(&sample, None));
    assert_eq!(route(&first), "local", "{first}");
    assert!(
        reason(&first).contains("; escalation failed (unavailable: "),
        "{first}"
    );
    assert_eq!(rig.chats(), 1);
    // One failure opened the breaker: the policy now keeps it local without trying.
    let second = rig.served("policy", "", &body(&sample, None));
    assert_kept_local(&second, "endpoint strong circuit open: stays on the box");
    assert_eq!(rig.chats(), 1, "nothing sent while the circuit is open");
}

#[test]
fn policy_stops_escalating_once_a_budget_window_is_spent() {
    let sim = strong_model();
    let base = sim.base_url();
    let rig = Rig::start(
        "routing-budget",
        sim,
        &[
            endpoint("strong", &base, "per_request = 0.01", ""),
            pipeline("policy", "policy", ""),
            "\n[budget]\nper_minute = 0.01\n".to_owned(),
        ],
    );
    let sample = unsure();
    let first = rig.served("policy", "", &body(&sample, None));
    assert_eq!(route(&first), "remote:strong", "{first}");
    assert_eq!(first["cost_usd"], 0.01);
    let second = rig.served("policy", "", &body(&sample, None));
    assert_kept_local(
        &second,
        "per-minute budget spent ($0.010000 of $0.010000): stays on the box",
    );
    assert_eq!(rig.chats(), 1);
}

#[test]
fn policy_keeps_large_bodies_local_when_egress_is_dear() {
    let sim = strong_model();
    let base = sim.base_url();
    let rig = Rig::start(
        "routing-egress",
        sim,
        &[
            endpoint("strong", &base, PRICE, ""),
            pipeline(
                "policy-dear",
                "policy",
                r#"egress = "dear", max_egress_bytes = 400"#,
            ),
            pipeline(
                "policy-cheap",
                "policy",
                r#"egress = "cheap", max_egress_bytes = 400"#,
            ),
        ],
    );
    let sample = unsure();
    let long_note = "scanned from the second page of the quarterly paper form ".repeat(5);
    let large = body(&sample, Some(&long_note));
    assert!(large.len() > 400);
    let v = rig.served("policy-dear", "", &large);
    assert_kept_local(
        &v,
        &format!(
            "egress dear and body {} bytes > 400: stays on the box",
            large.len()
        ),
    );
    let small = body(&sample, None);
    assert!(small.len() <= 400);
    let v = rig.served("policy-dear", "", &small);
    assert_eq!(route(&v), "remote:strong", "a small body may leave: {v}");
    let v = rig.served("policy-cheap", "", &large);
    assert_eq!(
        route(&v),
        "remote:strong",
        "cheap egress lets it leave: {v}"
    );
    assert!(egress(&v) > 0);
    assert_eq!(rig.chats(), 2);
}

#[test]
fn policy_prices_the_escalation_against_the_ceiling_before_calling() {
    let sim = strong_model();
    let base = sim.base_url();
    let rig = Rig::start(
        "routing-ceiling",
        sim,
        &[
            endpoint(
                "strong",
                &base,
                "input_per_mtok = 0.65, output_per_mtok = 0.65, per_request = 0.0001",
                "",
            ),
            pipeline("policy", "policy", "max_cost_usd = 0.001"),
            pipeline("policy-tight", "policy", "max_cost_usd = 0.0001"),
        ],
    );
    let sample = unsure();
    let request = body(&sample, None);
    // Over the operator's ceiling: about 70 tokens at $0.65 per million, plus $0.0001.
    let v = rig.served("policy-tight", "", &request);
    let why = reason(&v).to_owned();
    assert!(
        why.starts_with("escalation would cost $0.0001")
            && why.ends_with(" > ceiling $0.000100: stays on the box"),
        "{v}"
    );
    assert_kept_local(&v, &why);
    // A client cannot raise it...
    let v = rig.served("policy-tight", "max_cost_usd=1", &request);
    assert_kept_local(&v, &why);
    // ...but may lower a ceiling the call fits under.
    let v = rig.served("policy", "max_cost_usd=0.0001", &request);
    assert_kept_local(&v, &why);
    assert_eq!(rig.chats(), 0, "nothing sent over a ceiling");
    let v = rig.served("policy", "", &request);
    assert_eq!(route(&v), "remote:strong", "{v}");
    let cost = v["cost_usd"].as_f64().expect("cost");
    assert!(cost > 0.0001 && cost <= 0.001, "{v}");
    assert_eq!(rig.chats(), 1);
}

#[test]
fn policy_spills_to_serverless_at_the_queue_bound_without_running_the_model() {
    let sim = strong_model();
    let base = sim.base_url();
    let rig = Rig::start(
        "routing-spill",
        sim,
        &[
            endpoint("strong", &base, PRICE, ""),
            endpoint("down", &closed_port(), PRICE, ""),
            pipeline("policy-spill", "policy", "spill_queue_depth = 0"),
            pipeline("policy-below", "policy", "spill_queue_depth = 1"),
            pipeline(
                "policy-spill-down",
                "policy",
                r#"spill_queue_depth = 0, endpoint = "down""#,
            ),
        ],
    );
    // An idle box has an empty queue: depth 0 is at a bound of 0 and below a bound of 1.
    let sure = heldout()
        .into_iter()
        .max_by(|a, b| a.confidence.total_cmp(&b.confidence))
        .expect("samples");
    let v = rig.served("policy-spill", "", &body(&sure, None));
    assert_eq!(route(&v), "remote:strong", "{v}");
    assert_eq!(reason(&v), "queue depth 0 >= 0: spilled to serverless");
    assert_eq!(local_runs(&v), 0, "the local model did not run: {v}");
    assert!(v["body"].get("local").is_none(), "{v}");
    assert_eq!(v["body"]["label"], json!(sure.label));

    let v = rig.served("policy-below", "", &body(&sure, None));
    assert_eq!(route(&v), "local", "{v}");
    assert!(reason(&v).contains(">= threshold 0.90"), "{v}");
    assert_eq!((calls(&v), local_runs(&v)), (0, 1));

    // A failed spill falls back to the local model, which runs then.
    let v = rig.served("policy-spill-down", "", &body(&sure, None));
    assert_eq!(route(&v), "local", "{v}");
    assert!(
        reason(&v).starts_with(
            "queue depth 0 >= 0: spilled to serverless; escalation failed (unavailable: "
        ) && reason(&v).ends_with("): answered locally"),
        "{v}"
    );
    assert_eq!((calls(&v), local_runs(&v)), (1, 1));
    assert_eq!(rig.chats(), 1);
}
