//! Shadow evaluation end to end: the real binary serving the real `cascade` component with
//! the `digits-v1` model, and the simulator's strong-model stand-in behind the serverless
//! endpoints. Clients ask for local answers (`route=local`); the pipelines under test
//! shadow every one (`share = 1.0`) with `route=remote`, and the tests read the verdicts
//! from `/metrics`, the admin API and the simulator's own counters.

use std::time::{Duration, Instant};

use hybrid_sim::{Classifier, Scenario, SimConfig, SimHandle};
use hybrid_tests::edge_box::{ADMIN_TOKEN, EdgeBox, Scratch, agent, onnx_variant, send};
use hybrid_tests::{component, root};
use serde_json::Value;

/// The chat route the cascade escalates to.
const CHAT: &str = "/v1/chat/completions";

/// The held-out digits workload.
fn workload() -> std::path::PathBuf {
    root().join("workloads/digits-heldout.jsonl")
}

/// The first `n` labelled digits: (body, true label).
fn digits(n: usize) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(workload()).expect("workload");
    text.lines()
        .take(n)
        .map(|line| {
            let item: Value = serde_json::from_str(line).expect("JSON line");
            let label = item["label"].as_str().expect("label").to_owned();
            (item["body"].to_string(), label)
        })
        .collect()
}

/// A strong-model stand-in answering with the true label at `accuracy`, after `latency_ms`.
fn strong_model(accuracy: f64, latency_ms: Option<u64>) -> SimHandle {
    let classifier = Classifier::load(&workload(), accuracy).expect("workload loads");
    let scenario = Scenario {
        latency_ms,
        ..Scenario::default()
    };
    hybrid_sim::spawn(
        SimConfig::without_auth()
            .classifier(classifier)
            .scenario(scenario),
    )
    .expect("sim starts")
}

/// A chat endpoint on `sim` charging `per_request` dollars a call and nothing per token.
fn endpoint(name: &str, sim: &SimHandle, per_request: f64) -> String {
    format!(
        r#"
[[endpoint]]
name = "{name}"
kind = "chat"
base_url = "{sim}"
model = "llama3.3-70b-instruct"
price = {{ input_per_mtok = 0.0, output_per_mtok = 0.0, per_request = {per_request} }}
timeout_ms = 10000
max_attempts = 1
"#,
        sim = sim.base_url(),
    )
}

/// A cascade pipeline escalating to `endpoint`, with `shadow` (a TOML inline table) if any.
fn cascade(name: &str, endpoint: &str, shadow: Option<&str>) -> String {
    let shadow = shadow.map_or_else(String::new, |s| format!("shadow = {s}\n"));
    format!(
        r#"
[[pipeline]]
name = "{name}"
component = "{cascade}"
deadline_ms = 15000
memory_mib = 64
settings = {{ model = "digits-v1", endpoint = "{endpoint}" }}
{shadow}"#,
        cascade = component("cascade").display(),
    )
}

/// Every local answer shadowed by the serverless side.
const SHADOW_ALL: &str = r#"{ share = 1.0, params = { route = "remote" } }"#;

/// Writes `hybrid.toml` with the digits model, the admin API and `rest`.
fn write_config(dir: &std::path::Path, rest: &str) {
    let config = format!(
        r#"
{digits}
[admin]
token_env = "HYBRID_ADMIN_TOKEN"

[deploy]
state_dir = "{state}"
{rest}"#,
        // One plan for every digit, so that the shadowed and the plain pipeline's answers
        // agree bit for bit: a plan made for one shape may differ in the last bits.
        digits = hybrid_tests::digits_model_toml("1.0.0") + "shape_plans = 0\n",
        state = dir.join("state").display(),
    );
    std::fs::write(dir.join("hybrid.toml"), config).expect("config");
}

/// Asks `pipeline` for a local answer to `body`; returns the envelope.
fn ask_local(b: &EdgeBox, pipeline: &str, body: &str, id: &str) -> Value {
    let mut answer = agent()
        .post(&format!("{}/v1/pipelines/{pipeline}?route=local", b.base))
        .header("content-type", "application/json")
        .header("x-request-id", id)
        .send(body.as_bytes())
        .unwrap_or_else(|e| panic!("POST {pipeline}: {e}"));
    let status = answer.status().as_u16();
    let bytes = answer.body_mut().read_to_vec().expect("body");
    let envelope: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(envelope["routing"]["route"], "local", "{envelope}");
    envelope
}

/// `hybrid_shadow_total` of `pipeline` as (version, outcome, count) rows.
fn shadow_rows(b: &EdgeBox, pipeline: &str) -> Vec<(String, String, u64)> {
    let metrics = send(&agent(), "GET", &format!("{}/metrics", b.base), None, None);
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    let prefix = format!("hybrid_shadow_total{{pipeline=\"{pipeline}\",model=\"digits-v1\",");
    text.lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .map(|rest| {
            let (labels, value) = rest.split_once("} ").expect("a sample");
            let label = |name: &str| {
                labels
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(&format!("{name}=\"")))
                    .map(|v| v.trim_end_matches('"').to_owned())
                    .expect("label")
            };
            (
                label("version"),
                label("outcome"),
                value.parse().expect("count"),
            )
        })
        .collect()
}

/// Shadows of `pipeline` counted under `version` with `outcome`.
fn shadows(b: &EdgeBox, pipeline: &str, version: &str, outcome: &str) -> u64 {
    shadow_rows(b, pipeline)
        .into_iter()
        .filter(|(v, o, _)| v == version && o == outcome)
        .map(|(_, _, n)| n)
        .sum()
}

/// Every shadow verdict of `pipeline` so far, skipped ones included.
fn verdicts(b: &EdgeBox, pipeline: &str) -> u64 {
    shadow_rows(b, pipeline).iter().map(|(_, _, n)| n).sum()
}

/// A metric sample's value, 0 when absent.
fn sample(b: &EdgeBox, line_prefix: &str) -> f64 {
    let metrics = send(&agent(), "GET", &format!("{}/metrics", b.base), None, None);
    String::from_utf8_lossy(&metrics.body)
        .lines()
        .find_map(|l| l.strip_prefix(line_prefix))
        .map_or(0.0, |v| v.trim().parse().expect("number"))
}

/// Waits (up to 30 s) until `pipeline` has `n` shadow verdicts.
fn wait_for_verdicts(b: &EdgeBox, pipeline: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen = verdicts(b, pipeline);
        assert!(seen <= n, "{pipeline}: {seen} verdicts, expected {n}");
        if seen == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{pipeline}: only {seen} of {n} shadow verdicts after 30 s: {:?}",
            shadow_rows(b, pipeline)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The parts of an envelope a shadow could change: the answer, the routing record, the
/// cost and the serverless calls.
fn answer_of(envelope: &Value) -> Value {
    serde_json::json!({
        "body": envelope["body"], "routing": envelope["routing"],
        "cost_usd": envelope["cost_usd"], "egress_bytes": envelope["egress_bytes"],
        "remote_calls": envelope["remote_calls"],
    })
}

#[test]
fn shadow_calls_never_change_or_delay_an_answer() {
    let scratch = Scratch::new("shadow-answers");
    // The strong model holds every answer 3 s: a client that waited for its shadow would
    // be seen waiting, and four shadows stay in flight long enough to fill the slots.
    let sim = strong_model(1.0, Some(3000));
    write_config(
        &scratch.0,
        &(endpoint("strong", &sim, 0.0001)
            + &cascade("shadowed", "strong", Some(SHADOW_ALL))
            + &cascade("plain", "strong", None)),
    );
    let b = EdgeBox::start(&scratch.0, &[]);
    let items = digits(11);

    // One at a time: each answer is back before its shadow reaches a verdict, and equals
    // the answer of the same pipeline without shadows.
    for (i, (body, _)) in items.iter().take(3).enumerate() {
        let started = Instant::now();
        let shadowed = ask_local(&b, "shadowed", body, &format!("one-{i}"));
        let took = started.elapsed();
        assert_eq!(
            verdicts(&b, "shadowed"),
            i as u64,
            "shadow {i} judged early"
        );
        // A very loose sanity check: the answer did not wait for the 3 s shadow.
        assert!(took < Duration::from_secs(3), "answer {i} took {took:?}");
        let plain = ask_local(&b, "plain", body, &format!("plain-{i}"));
        assert_eq!(answer_of(&shadowed), answer_of(&plain), "item {i}");
        assert_eq!(shadowed["cost_usd"], 0.0);
        wait_for_verdicts(&b, "shadowed", i as u64 + 1);
    }
    let stats = sim.stats();
    assert_eq!(stats.count(CHAT, 200), 3);
    let ids: Vec<&String> = stats.request_ids.keys().collect();
    assert_eq!(
        ids.iter()
            .filter(|id| id.starts_with("one-") && id.contains("-shadow-"))
            .count(),
        3,
        "shadow calls carry their own request ids: {ids:?}"
    );

    // Four at once fill the shadow slots; while the strong model holds them, four more
    // answers come back at once and their shadows are skipped, not queued.
    for (i, (body, _)) in items[3..7].iter().enumerate() {
        ask_local(&b, "shadowed", body, &format!("burst-{i}"));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while sim.stats().requests_total < 7 {
        assert!(Instant::now() < deadline, "four shadows reach the sim");
        std::thread::sleep(Duration::from_millis(10));
    }
    let full: Vec<Value> = items[7..11]
        .iter()
        .enumerate()
        .map(|(i, (body, _))| ask_local(&b, "shadowed", body, &format!("full-{i}")))
        .collect();
    assert_eq!(shadows(&b, "shadowed", "1.0.0", "skipped"), 4);
    for (i, ((body, _), shadowed)) in items[7..11].iter().zip(&full).enumerate() {
        let plain = ask_local(&b, "plain", body, &format!("plain-full-{i}"));
        assert_eq!(answer_of(shadowed), answer_of(&plain), "item {}", i + 7);
    }
    wait_for_verdicts(&b, "shadowed", 11);
    assert_eq!(
        sim.stats().requests_total,
        7,
        "skipped shadows send nothing"
    );
    let compared =
        shadows(&b, "shadowed", "1.0.0", "agree") + shadows(&b, "shadowed", "1.0.0", "disagree");
    assert_eq!(compared, 7, "{:?}", shadow_rows(&b, "shadowed"));
    assert!(
        shadow_rows(&b, "plain").is_empty(),
        "no shadows without the option"
    );
    let cost = sample(&b, "hybrid_shadow_cost_usd_total{pipeline=\"shadowed\"} ");
    assert!((cost - 7.0 * 0.0001).abs() < 1e-9, "shadow spend {cost}");
}

#[test]
fn agreement_is_counted_per_local_model_version() {
    let scratch = Scratch::new("shadow-agreement");
    let right = strong_model(1.0, None);
    let wrong = strong_model(0.0, None);
    write_config(
        &scratch.0,
        &(endpoint("right", &right, 0.0001)
            + &endpoint("wrong", &wrong, 0.0001)
            + &cascade("vs-right", "right", Some(SHADOW_ALL))
            + &cascade("vs-wrong", "wrong", Some(SHADOW_ALL))),
    );
    let b = EdgeBox::start(&scratch.0, &[]);
    let items = digits(30);
    let (before, after) = items.split_at(15);

    // What each half should show: against a strong model that is always right, agreement
    // is exactly the local model's accuracy; against one that is always wrong, every
    // digit the local model got right disagrees.
    let mut judged = 0;
    let mut run = |items: &[(String, String)], version: &str| {
        let (mut local_right, mut local_wrong) = (0u64, 0u64);
        for (i, (body, label)) in items.iter().enumerate() {
            let mut labels = Vec::new();
            for pipeline in ["vs-right", "vs-wrong"] {
                let envelope = ask_local(&b, pipeline, body, &format!("{version}-{i}"));
                assert_eq!(envelope["routing"]["model_version"], version);
                labels.push(envelope["body"]["label"].clone());
            }
            assert_eq!(labels[0], labels[1], "one model, one answer");
            if labels[0] == label.as_str() {
                local_right += 1;
            } else {
                local_wrong += 1;
            }
            judged += 1;
            wait_for_verdicts(&b, "vs-right", judged);
            wait_for_verdicts(&b, "vs-wrong", judged);
        }
        assert_eq!(shadows(&b, "vs-right", version, "agree"), local_right);
        assert_eq!(shadows(&b, "vs-right", version, "disagree"), local_wrong);
        let (agree, disagree) = (
            shadows(&b, "vs-wrong", version, "agree"),
            shadows(&b, "vs-wrong", version, "disagree"),
        );
        assert_eq!(agree + disagree, items.len() as u64);
        assert!(disagree >= local_right, "{disagree} < {local_right}");
        for pipeline in ["vs-right", "vs-wrong"] {
            for outcome in ["error", "skipped"] {
                assert_eq!(shadows(&b, pipeline, version, outcome), 0, "{pipeline}");
            }
        }
        local_right
    };
    let right_before = run(before, "1.0.0");
    assert!(right_before >= 12, "the local model is ~97% accurate");

    // A model swap: from the next request on, verdicts count under the new version.
    let onnx = std::fs::read(root().join("models/digits-v1.onnx")).expect("model");
    let swap = send(
        &agent(),
        "PUT",
        &format!("{}/admin/models/digits-v1?version=1.0.1", b.admin),
        Some(ADMIN_TOKEN),
        Some(("application/octet-stream", &onnx_variant(&onnx, "shadow"))),
    );
    assert_eq!(swap.status, 200, "{:?}", swap.json());
    let right_after = run(after, "1.0.1");
    assert_eq!(shadows(&b, "vs-right", "1.0.0", "agree"), right_before);

    let status = send(
        &agent(),
        "GET",
        &format!("{}/admin/pipelines/vs-right", b.admin),
        Some(ADMIN_TOKEN),
        None,
    )
    .json();
    let shadow = &status["shadow"];
    assert_eq!(shadow["share"], 1.0, "{status}");
    assert_eq!(shadow["params"]["route"], "remote", "{status}");
    let versions = shadow["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 2, "{status}");
    assert_eq!(versions[1]["version"], "1.0.1", "{status}");
    assert_eq!(versions[1]["agree"], right_after, "{status}");
    let agreement = versions[1]["agreement"].as_f64().expect("agreement");
    assert!(
        (agreement - right_after as f64 / after.len() as f64).abs() < 1e-9,
        "{status}"
    );
}

#[test]
fn shadow_calls_stop_when_the_budget_is_spent() {
    let scratch = Scratch::new("shadow-budget");
    let sim = strong_model(1.0, None);
    // Two calls at $0.01 spend the day's $0.02; later calls are refused before sending.
    write_config(
        &scratch.0,
        &(endpoint("strong", &sim, 0.01)
            + &cascade("cascade", "strong", Some(SHADOW_ALL))
            + "\n[budget]\nper_day = 0.02\n"),
    );
    let b = EdgeBox::start(&scratch.0, &[]);
    for (i, (body, _)) in digits(6).iter().enumerate() {
        let envelope = ask_local(&b, "cascade", body, &format!("budget-{i}"));
        assert_eq!(envelope["cost_usd"], 0.0, "local answers cost nothing");
        wait_for_verdicts(&b, "cascade", i as u64 + 1);
    }
    let compared =
        shadows(&b, "cascade", "1.0.0", "agree") + shadows(&b, "cascade", "1.0.0", "disagree");
    assert_eq!(compared, 2, "{:?}", shadow_rows(&b, "cascade"));
    assert_eq!(shadows(&b, "cascade", "1.0.0", "error"), 4);
    assert_eq!(sim.stats().requests_total, 2, "the sim saw no more calls");
    let spent = sample(&b, "hybrid_shadow_cost_usd_total{pipeline=\"cascade\"} ");
    assert!((spent - 0.02).abs() < 1e-9, "shadow spend {spent}");
    // The shadow spend is the box's spend: counted against the budget like any call.
    let total = sample(
        &b,
        "hybrid_cost_usd_total{pipeline=\"cascade\",endpoint=\"strong\"} ",
    );
    assert!((total - 0.02).abs() < 1e-9, "total spend {total}");
}
