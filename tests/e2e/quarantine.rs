//! Quarantine, end to end: the real `hybrid serve` with two test-pipeline pipelines, one
//! of which is made to fail on purpose (`mode=trap` traps, `mode=loop` runs into its
//! deadline). After `after` failures in a row it answers 503 with `Retry-After` without
//! running anything, while the other keeps serving; a probe after the cool-down or a
//! deploy ends it.

use std::path::Path;
use std::time::{Duration, Instant};

use hybrid_tests::component;
use hybrid_tests::edge_box::{
    Answer, EdgeBox, Scratch, admin, agent, component_variant, echo_pipeline, send,
};
use serde_json::Value;

/// Writes `<dir>/hybrid.toml`: `fragile`, quarantined after 3 failures for
/// `cool_down_ms`, and `steady` with the defaults; both the test pipeline.
fn write_config(dir: &Path, cool_down_ms: u64) {
    std::fs::write(dir.join("ping.txt"), b"ping").expect("smoke body");
    let wasm = component("test_pipeline");
    let pipeline = |name: &str, extra: &str| echo_pipeline(name, &wasm, 1000, 32, extra);
    let config = format!(
        "[admin]\ntoken_env = \"HYBRID_ADMIN_TOKEN\"\n{}{}",
        pipeline(
            "fragile",
            &format!("quarantine = {{ after = 3, cool_down_ms = {cool_down_ms} }}"),
        ),
        pipeline("steady", ""),
    );
    std::fs::write(dir.join("hybrid.toml"), config).expect("config");
}

/// A pipeline's answer with its `Retry-After` header.
struct Reply {
    status: u16,
    retry_after: Option<u64>,
    body: Value,
}

impl Reply {
    fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }
}

/// `POST /v1/pipelines/{pipeline}?mode={mode}` with body `ping`.
fn call(b: &EdgeBox, pipeline: &str, mode: &str) -> Reply {
    let url = format!("{}/v1/pipelines/{pipeline}?mode={mode}", b.base);
    let mut response = agent()
        .post(&url)
        .header("content-type", "text/plain")
        .send(&b"ping"[..])
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.parse().expect("Retry-After is whole seconds"));
    let body = response.body_mut().read_to_vec().unwrap_or_default();
    Reply {
        status: response.status().as_u16(),
        retry_after,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    }
}

fn get(b: &EdgeBox, path: &str) -> Answer {
    send(&agent(), "GET", &format!("{}{path}", b.base), None, None)
}

fn quarantine_of(b: &EdgeBox, pipeline: &str) -> Value {
    admin(b, "GET", &format!("/admin/pipelines/{pipeline}"), None).json()["quarantine"].clone()
}

/// Requests `fragile`'s stable version has run (refused ones never reach it).
fn runs_of_fragile(b: &EdgeBox) -> u64 {
    admin(b, "GET", "/admin/pipelines/fragile", None).json()["versions"][0]["requests"]
        .as_u64()
        .expect("request count")
}

fn metrics(b: &EdgeBox) -> String {
    String::from_utf8(get(b, "/metrics").body).expect("utf8")
}

/// Three traps in a row quarantine `fragile`.
fn trap_three_times(b: &EdgeBox) {
    for _ in 0..3 {
        let reply = call(b, "fragile", "trap");
        assert_eq!(reply.status, 500, "{}", reply.body);
        assert!(
            reply.message().contains("deliberate trap"),
            "{}",
            reply.body
        );
    }
}

#[test]
fn repeated_traps_quarantine_a_pipeline_while_others_serve_until_a_deploy_clears_it() {
    let scratch = Scratch::new("quarantine-deploy");
    write_config(&scratch.0, 60_000);
    let b = EdgeBox::start(&scratch.0, &[]);
    trap_three_times(&b);

    // Refused at once, even a request that would succeed, without running the component.
    let runs = runs_of_fragile(&b);
    assert_eq!(runs, 3);
    let started = Instant::now();
    for _ in 0..5 {
        let reply = call(&b, "fragile", "echo");
        assert_eq!(reply.status, 503, "{}", reply.body);
        assert_eq!(reply.body["error"]["code"], "pipeline_quarantined");
        let message = reply.message();
        assert!(
            message.contains("pipeline \"fragile\" is quarantined after 3 consecutive failures"),
            "{message}"
        );
        assert!(message.contains("deliberate trap"), "{message}");
        assert!(
            message.contains("will be let through as a probe"),
            "{message}"
        );
        let retry = reply.retry_after.expect("Retry-After");
        assert!((50..=60).contains(&retry), "Retry-After {retry}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refused at once"
    );
    assert_eq!(runs_of_fragile(&b), runs, "nothing was instantiated");

    // The other pipeline in the box serves normally.
    for _ in 0..3 {
        let reply = call(&b, "steady", "echo");
        assert_eq!(reply.status, 200, "{}", reply.body);
    }

    // /readyz: still ready, saying which pipeline is quarantined and why.
    let ready = get(&b, "/readyz");
    assert_eq!(ready.status, 200);
    let ready = ready.json();
    assert_eq!(ready["ready"], true);
    assert_eq!(
        ready["quarantined"].as_array().map(Vec::len),
        Some(1),
        "{ready}"
    );
    assert_eq!(ready["quarantined"][0]["pipeline"], "fragile");
    assert_eq!(ready["quarantined"][0]["state"], "quarantined");
    let reason = ready["quarantined"][0]["reason"].as_str().unwrap_or("");
    assert!(reason.contains("deliberate trap"), "{ready}");

    let text = metrics(&b);
    for expected in [
        "hybrid_pipeline_quarantined{pipeline=\"fragile\"} 1",
        "hybrid_pipeline_quarantined{pipeline=\"steady\"} 0",
        "hybrid_quarantines_total{pipeline=\"fragile\"} 1",
        "hybrid_requests_total{pipeline=\"fragile\",component=\"none\",route=\"none\",outcome=\"quarantined\"} 5",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }

    let q = quarantine_of(&b, "fragile");
    assert_eq!(q["state"], "quarantined", "{q}");
    assert_eq!(q["consecutive_failures"], 3, "{q}");
    assert!(q["since_ms"].as_u64().is_some(), "{q}");
    assert!(q["retry_after_s"].as_u64().is_some_and(|s| s > 50), "{q}");
    assert!(
        q["reason"]
            .as_str()
            .is_some_and(|r| r.contains("deliberate trap")),
        "{q}"
    );
    assert_eq!(quarantine_of(&b, "steady")["state"], "healthy");
    let listed = admin(&b, "GET", "/admin/pipelines", None).json();
    assert_eq!(listed[0]["name"], "fragile", "{listed}");
    assert_eq!(listed[0]["quarantine"]["state"], "quarantined", "{listed}");

    // A new version clears it at once, long before the cool-down ends.
    let bytes = std::fs::read(component("test_pipeline")).expect("read");
    let fixed = component_variant(&bytes, "fixed");
    let deployed = admin(
        &b,
        "PUT",
        "/admin/pipelines/fragile/component",
        Some(("application/wasm", &fixed)),
    );
    assert_eq!(deployed.status, 200, "{:?}", deployed.json());
    let reply = call(&b, "fragile", "echo");
    assert_eq!(reply.status, 200, "{}", reply.body);
    let q = quarantine_of(&b, "fragile");
    assert_eq!(
        (&q["state"], &q["consecutive_failures"]),
        (&"healthy".into(), &0.into()),
        "{q}"
    );
    assert_eq!(
        get(&b, "/readyz").json()["quarantined"],
        Value::Array(vec![])
    );
    assert!(metrics(&b).contains("hybrid_pipeline_quarantined{pipeline=\"fragile\"} 0"));
}

#[test]
fn after_the_cool_down_one_probe_runs_a_failing_one_starts_it_over_a_good_one_recovers() {
    const COOL_DOWN: Duration = Duration::from_millis(300);
    let scratch = Scratch::new("quarantine-probe");
    write_config(&scratch.0, COOL_DOWN.as_millis() as u64);
    let b = EdgeBox::start(&scratch.0, &[]);
    trap_three_times(&b);
    let refused = call(&b, "fragile", "echo");
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.retry_after, Some(1), "at least 1 s");

    // After the cool-down, a looping request is the probe: it runs (into its 1 s
    // deadline) while every other request is refused.
    std::thread::sleep(COOL_DOWN + Duration::from_millis(100));
    let base = b.base.clone();
    let probe = std::thread::spawn(move || {
        agent()
            .post(&format!("{base}/v1/pipelines/fragile?mode=loop"))
            .send(&b"ping"[..])
            .map(|r| r.status().as_u16())
    });
    let waited = Instant::now();
    while quarantine_of(&b, "fragile")["state"] != "probing" {
        assert!(
            waited.elapsed() < Duration::from_millis(900),
            "the looping request never became the probe: {}",
            quarantine_of(&b, "fragile")
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let during = call(&b, "fragile", "echo");
    assert_eq!(during.status, 503, "{}", during.body);
    assert!(
        during.message().contains("a probe request is running now"),
        "{}",
        during.body
    );
    assert_eq!(during.retry_after, Some(1));
    assert_eq!(
        probe.join().expect("thread").expect("answered"),
        504,
        "the probe ran into its deadline"
    );

    // The failed probe started the cool-down over: quarantined, now for its deadline.
    let q = quarantine_of(&b, "fragile");
    assert_eq!(q["state"], "quarantined", "{q}");
    assert_eq!(q["consecutive_failures"], 4, "{q}");
    assert!(
        q["reason"].as_str().is_some_and(|r| r.contains("deadline")),
        "{q}"
    );

    // After the next cool-down a good request is the probe, and the pipeline recovers.
    std::thread::sleep(COOL_DOWN + Duration::from_millis(100));
    let runs = runs_of_fragile(&b);
    let recovered = call(&b, "fragile", "echo");
    assert_eq!(recovered.status, 200, "{}", recovered.body);
    assert_eq!(runs_of_fragile(&b), runs + 1, "the probe ran");
    for _ in 0..3 {
        assert_eq!(call(&b, "fragile", "echo").status, 200);
    }
    let q = quarantine_of(&b, "fragile");
    assert_eq!(q["state"], "healthy", "{q}");
    assert_eq!(q["times"], 1, "one quarantine, probes included: {q}");
    let text = metrics(&b);
    for expected in [
        "hybrid_pipeline_quarantined{pipeline=\"fragile\"} 0",
        "hybrid_quarantines_total{pipeline=\"fragile\"} 1",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}
