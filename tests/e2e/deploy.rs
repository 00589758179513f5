//! Deploying into a running box, end to end: the real `hybrid serve` with its admin API on
//! loopback, real components and models, real HTTP clients under load.
//!
//! Second versions are the same component or model with a few bytes appended that their
//! parsers skip (see `hybrid_tests::edge_box`): a different sha256, the same behaviour, so
//! what a response reports is the only way to tell them apart.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hybrid_tests::edge_box::{
    self, ADMIN_TOKEN, Answer, EdgeBox, Scratch, admin, agent, component_variant, declared_only,
    onnx_variant, send, sha256,
};
use hybrid_tests::{component, hybrid_bin, root, sample, wav_16k_mono, wav_samples};

const VAD_SHA: &str = "9ccdacc4719d8aa7e45a77536bfabec45a03ba1f2fad5e241ab4060b24238a85";

fn vad_path() -> String {
    root()
        .join("models/silero_vad_16k_sequence.onnx")
        .display()
        .to_string()
}

/// One second of real speech, 16 kHz mono.
fn short_speech() -> Vec<u8> {
    let samples = wav_samples(&sample("speech-16k.wav"));
    wav_16k_mono(&samples[..16_000])
}

/// Writes `<dir>/hybrid.toml` with the admin API on, the VAD model, and `pipelines`;
/// smoke request bodies are written beside it.
fn write_config(dir: &Path, max_upload: usize, pipelines: &str) {
    std::fs::write(dir.join("ping.txt"), b"ping").expect("smoke body");
    std::fs::write(dir.join("speech.wav"), short_speech()).expect("smoke body");
    let config = format!(
        r#"
[runtime]
max_instances = 64

[admin]
token_env = "HYBRID_ADMIN_TOKEN"
max_upload_bytes = {max_upload}

[deploy]
watch_debounce_ms = 100

[[model]]
name = "silero-vad"
version = "6.2.3"
path = "{vad}"
sha256 = "{VAD_SHA}"
input = [
    {{ name = "input", type = "fp32", shape = ["N", 576] }},
    {{ name = "h", type = "fp32", shape = [1, 1, 128] }},
    {{ name = "c", type = "fp32", shape = [1, 1, 128] }},
]
{pipelines}
"#,
        vad = vad_path(),
    );
    std::fs::write(dir.join("hybrid.toml"), config).expect("config");
}

/// The test pipeline answering "ping" with 200.
fn echo_pipeline(name: &str, component: &Path, extra: &str) -> String {
    edge_box::echo_pipeline(name, component, 5000, 32, extra)
}

/// voice-gate, kept on the box (`transcribe=off`), with a real-speech smoke request.
fn vad_pipeline(name: &str, component: &Path, smoke_metadata: &str) -> String {
    format!(
        r#"
[[pipeline]]
name = "{name}"
component = "{}"
deadline_ms = 10000
memory_mib = 128

[[pipeline.smoke]]
body = "speech.wav"
content_type = "audio/wav"
metadata = {{ transcribe = "off"{smoke_metadata} }}
status = 200
"#,
        component.display()
    )
}

fn deploy(b: &EdgeBox, pipeline: &str, wasm: &[u8], query: &str) -> Answer {
    admin(
        b,
        "PUT",
        &format!("/admin/pipelines/{pipeline}/component{query}"),
        Some(("application/wasm", wasm)),
    )
}

/// Uploads an ONNX file as a new version of `model` (`version` left out to test that it
/// is required).
fn deploy_model(b: &EdgeBox, model: &str, version: Option<&str>, onnx: &[u8]) -> Answer {
    let query = version.map_or_else(String::new, |v| format!("?version={v}"));
    admin(
        b,
        "PUT",
        &format!("/admin/models/{model}{query}"),
        Some(("application/octet-stream", onnx)),
    )
}

fn ping(agent: &ureq::Agent, b: &EdgeBox, pipeline: &str) -> Answer {
    send(
        agent,
        "POST",
        &format!("{}/v1/pipelines/{pipeline}", b.base),
        None,
        Some(("text/plain", b"ping")),
    )
}

/// One second of speech to a voice-gate pipeline, kept on the box.
fn speak(agent: &ureq::Agent, b: &EdgeBox, pipeline: &str) -> Answer {
    send(
        agent,
        "POST",
        &format!("{}/v1/pipelines/{pipeline}?transcribe=off", b.base),
        None,
        Some(("audio/wav", &short_speech())),
    )
}

fn stable_of(b: &EdgeBox, pipeline: &str) -> String {
    let status = admin(b, "GET", &format!("/admin/pipelines/{pipeline}"), None).json();
    status["versions"][0]["sha256"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// One change seen from the client: sent at, confirmed at, and the version it made live.
struct Change {
    sent: Instant,
    done: Instant,
    version: String,
}

/// The versions that may have served a request made between `a` and `b`: those live at
/// some moment in between, given when each change was sent and confirmed.
fn possible<'a>(initial: &'a str, changes: &'a [Change], a: Instant, b: Instant) -> Vec<&'a str> {
    let mut out = Vec::new();
    for j in 0..=changes.len() {
        let (version, from) = match j {
            0 => (initial, None),
            _ => (changes[j - 1].version.as_str(), Some(changes[j - 1].sent)),
        };
        let until = changes.get(j).map(|c| c.done);
        if from.is_none_or(|f| f <= b) && until.is_none_or(|u| u >= a) {
            out.push(version);
        }
    }
    out
}

/// What a load thread saw of one request.
struct Seen {
    sent: Instant,
    received: Instant,
    answer: Answer,
}

fn load(
    b: &EdgeBox,
    pipeline: &str,
    body: Vec<u8>,
    ct: &'static str,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<Seen>> {
    let url = format!("{}/v1/pipelines/{pipeline}", b.base);
    std::thread::spawn(move || {
        let agent = agent();
        let mut seen = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let sent = Instant::now();
            let answer = send(&agent, "POST", &url, None, Some((ct, &body)));
            seen.push(Seen {
                sent,
                received: Instant::now(),
                answer,
            });
        }
        seen
    })
}

#[test]
fn swapping_components_and_models_under_load_fails_no_request() {
    let scratch = Scratch::new("deploy-load");
    let echo_a = std::fs::read(component("test_pipeline")).expect("test pipeline");
    let echo_b = component_variant(&echo_a, "b");
    let vad_a = std::fs::read(vad_path()).expect("vad model");
    let vad_b = onnx_variant(&vad_a, "b");
    let pipelines = echo_pipeline("echo", &component("test_pipeline"), "")
        + &vad_pipeline("vad", &component("voice_gate"), "");
    write_config(&scratch.0, 8 << 20, &pipelines);
    let b = EdgeBox::start(&scratch.0, &[]);

    let stop = Arc::new(AtomicBool::new(false));
    let speech = short_speech();
    let mut loaders = Vec::new();
    for _ in 0..3 {
        loaders.push((
            "echo",
            load(&b, "echo", b"ping".to_vec(), "text/plain", stop.clone()),
        ));
    }
    for _ in 0..2 {
        let mut url_body = speech.clone();
        url_body.shrink_to_fit();
        loaders.push((
            "vad",
            load(
                &b,
                "vad?transcribe=off",
                url_body,
                "audio/wav",
                stop.clone(),
            ),
        ));
    }
    let started = Instant::now();

    // 50 component swaps on one thread, 10 model swaps on another, both under load.
    let swaps = std::thread::scope(|s| {
        let components = s.spawn(|| {
            let mut changes = Vec::new();
            for i in 0..50 {
                let (bytes, sha) = if i % 2 == 0 {
                    (&echo_b, sha256(&echo_b))
                } else {
                    (&echo_a, sha256(&echo_a))
                };
                let sent = Instant::now();
                let reply = deploy(&b, "echo", bytes, "");
                assert_eq!(reply.status, 200, "swap {i}: {:?}", reply.json());
                assert_eq!(reply.json()["sha256"], sha.as_str());
                changes.push(Change {
                    sent,
                    done: Instant::now(),
                    version: sha,
                });
                std::thread::sleep(Duration::from_millis(60));
            }
            changes
        });
        let models = s.spawn(|| {
            let mut changes = Vec::new();
            for i in 0..10 {
                let (bytes, version) = if i % 2 == 0 {
                    (&vad_b, "6.2.3-b")
                } else {
                    (&vad_a, "6.2.3")
                };
                let sent = Instant::now();
                let reply = deploy_model(&b, "silero-vad", Some(version), bytes);
                assert_eq!(reply.status, 200, "model swap {i}: {:?}", reply.json());
                changes.push(Change {
                    sent,
                    done: Instant::now(),
                    version: format!("silero-vad@{version}"),
                });
                std::thread::sleep(Duration::from_millis(250));
            }
            changes
        });
        (
            components.join().expect("component swaps"),
            models.join().expect("model swaps"),
        )
    });
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let (component_changes, model_changes) = swaps;

    let (a_sha, b_sha) = (sha256(&echo_a), sha256(&echo_b));
    let mut counts = std::collections::BTreeMap::new();
    for (pipeline, loader) in loaders {
        for seen in loader.join().expect("load thread") {
            let a = &seen.answer;
            assert_eq!(
                a.status,
                200,
                "{pipeline}: a request failed during swaps: {}",
                String::from_utf8_lossy(&a.body)
            );
            *counts.entry(pipeline).or_insert(0u64) += 1;
            if pipeline == "echo" {
                assert!(
                    a.component == a_sha || a.component == b_sha,
                    "{}",
                    a.component
                );
                let ok = possible(&a_sha, &component_changes, seen.sent, seen.received);
                assert!(
                    ok.contains(&a.component.as_str()),
                    "echo answered by {} outside its live window",
                    a.component
                );
            } else {
                let ok = possible("silero-vad@6.2.3", &model_changes, seen.sent, seen.received);
                assert!(
                    ok.contains(&a.model.as_str()),
                    "vad answered by {} outside its live window (possible: {ok:?})",
                    a.model
                );
            }
        }
    }
    let total: u64 = counts.values().sum();
    eprintln!(
        "served {counts:?} in {:.1} s ({:.0} requests/s) during 50 component and 10 model swaps, none failed",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    assert!(counts["echo"] > 100 && counts["vad"] > 20, "{counts:?}");
}

#[test]
fn a_canary_takes_its_share_and_promote_and_rollback_end_it() {
    let scratch = Scratch::new("deploy-canary");
    let a = std::fs::read(component("test_pipeline")).expect("test pipeline");
    let bb = component_variant(&a, "canary");
    write_config(
        &scratch.0,
        8 << 20,
        &echo_pipeline("echo", &component("test_pipeline"), ""),
    );
    let b = EdgeBox::start(&scratch.0, &[]);
    let (a_sha, b_sha) = (sha256(&a), sha256(&bb));

    let reply = deploy(&b, "echo", &bb, "?canary=20");
    assert_eq!(reply.status, 200, "{:?}", reply.json());
    assert_eq!(reply.json()["rollout"]["percent"], 20);
    let agent = agent();
    let mut canary = 0;
    for _ in 0..2000 {
        let answer = ping(&agent, &b, "echo");
        assert_eq!(answer.status, 200);
        if answer.component == b_sha {
            canary += 1;
        } else {
            assert_eq!(answer.component, a_sha);
        }
    }
    // Binomial(2000, 0.2): mean 400, sd 17.9; five sd either side.
    assert!(
        (310..=490).contains(&canary),
        "canary took {canary} of 2000"
    );
    let status = admin(&b, "GET", "/admin/pipelines/echo", None).json();
    assert_eq!(status["versions"][1]["role"], "canary");
    assert_eq!(status["versions"][1]["requests"], canary);
    assert_eq!(status["versions"][0]["traffic_percent"], 80);

    let promoted = admin(&b, "POST", "/admin/pipelines/echo/promote", None);
    assert_eq!(promoted.status, 200);
    for _ in 0..20 {
        assert_eq!(ping(&agent, &b, "echo").component, b_sha);
    }
    let again = admin(&b, "POST", "/admin/pipelines/echo/promote", None);
    assert_eq!(again.status, 409, "no canary left to promote");
    let back = admin(&b, "POST", "/admin/pipelines/echo/rollback", None);
    assert_eq!(back.status, 200);
    assert_eq!(back.json()["stable"], a_sha.as_str());
    for _ in 0..20 {
        assert_eq!(ping(&agent, &b, "echo").component, a_sha);
    }
}

#[test]
fn a_canary_failing_every_request_is_rolled_back_by_itself() {
    let scratch = Scratch::new("deploy-auto-rollback");
    // The stable version echoes anything; the canary (voice-gate) passes the smoke
    // request (speech) but refuses the traffic (text): a regression smoke tests missed.
    let pipeline = vad_pipeline("guarded", &component("test_pipeline"), "").replace(
        "memory_mib = 128\n",
        "memory_mib = 128\nauto_rollback = { margin = 0.05, min_requests = 30 }\n",
    );
    write_config(&scratch.0, 8 << 20, &pipeline);
    let b = EdgeBox::start(&scratch.0, &[]);
    let stable = sha256(&std::fs::read(component("test_pipeline")).expect("read"));
    let canary_bytes = std::fs::read(component("voice_gate")).expect("read");
    let canary = sha256(&canary_bytes);

    let reply = deploy(&b, "guarded", &canary_bytes, "?canary=25");
    assert_eq!(reply.status, 200, "{:?}", reply.json());
    let agent = agent();
    let mut canary_failures = 0;
    for _ in 0..600 {
        let answer = ping(&agent, &b, "guarded");
        if answer.component == canary {
            assert_ne!(answer.status, 200);
            canary_failures += 1;
        } else {
            assert_eq!(answer.component, stable);
            assert_eq!(answer.status, 200, "the stable version never fails");
        }
    }
    // Judged after each of its requests: dropped at exactly its 30th.
    assert_eq!(canary_failures, 30);
    let status = admin(&b, "GET", "/admin/pipelines/guarded", None).json();
    assert_eq!(
        status["versions"].as_array().map(Vec::len),
        Some(1),
        "{status}"
    );
    assert_eq!(status["versions"][0]["sha256"], stable.as_str());
    let metrics = send(&agent, "GET", &format!("{}/metrics", b.base), None, None);
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.contains("hybrid_canary_rollbacks_total{pipeline=\"guarded\"} 1"),
        "{text}"
    );
}

#[test]
fn refused_deploys_say_why_and_change_nothing() {
    let scratch = Scratch::new("deploy-refusals");
    let pipelines = echo_pipeline("echo", &component("test_pipeline"), "")
        + &vad_pipeline("careful", &component("voice_gate"), ", mode = \"trap\"");
    write_config(&scratch.0, 100 << 20, &pipelines);
    let b = EdgeBox::start(&scratch.0, &[]);
    let echo = stable_of(&b, "echo");
    let careful = stable_of(&b, "careful");
    let test_pipeline = std::fs::read(component("test_pipeline")).expect("read");

    let cases: Vec<(&str, Vec<u8>, &str, u16, &str)> = vec![
        (
            "echo",
            b"hello, not wasm".to_vec(),
            "not_wasm",
            422,
            "not a WebAssembly binary",
        ),
        (
            "echo",
            wat::parse_str("(module)").expect("wat"),
            "core_module",
            422,
            "core WebAssembly module",
        ),
        (
            "echo",
            wat::parse_str("(component)").expect("wat"),
            "wrong_world",
            422,
            "exports no function `handle`",
        ),
        // test-pipeline traps on the smoke request's `mode=trap`; voice-gate ignores it.
        (
            "careful",
            test_pipeline.clone(),
            "smoke_failed",
            422,
            "deliberate trap",
        ),
        (
            "nope",
            test_pipeline.clone(),
            "pipeline_not_found",
            404,
            "unknown pipeline \"nope\"",
        ),
    ];
    for (pipeline, bytes, code, status, words) in cases {
        let reply = deploy(&b, pipeline, &bytes, "");
        let body = reply.json();
        assert_eq!(reply.status, status, "{body}");
        assert_eq!(body["error"]["code"], code, "{body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(words), "{message}");
    }
    // Refusals that need no body still come after reading it: a client that is still
    // sending (32 MiB does not fit in the socket buffers) reads the reason, not a reset.
    let large = vec![0u8; 32 << 20];
    let canary = deploy(&b, "echo", &large, "?canary=100");
    assert_eq!(canary.status, 400, "{:?}", canary.json());

    // Over the upload limit: 413 from the declared length, before the body is read.
    let auth = format!("authorization: Bearer {ADMIN_TOKEN}");
    let (status, answer) = declared_only(
        &b.admin,
        "PUT /admin/pipelines/echo/component",
        &[&auth],
        200 << 20,
    );
    assert_eq!(status, 413, "{answer}");
    assert!(answer.contains("exceeds this server's limit"), "{answer}");

    // A model whose inputs are not the configured ones.
    let minilm = std::fs::read(root().join("models/minilm-l6-v2.onnx")).expect("minilm");
    let reply = deploy_model(&b, "silero-vad", Some("x"), &minilm);
    let body = reply.json();
    assert_eq!(reply.status, 422, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("the model's inputs are [\"input_ids\", \"attention_mask\"]"),
        "{message}"
    );
    let reply = deploy_model(&b, "silero-vad", None, &large);
    assert_eq!(
        reply.status,
        400,
        "a model needs a version: {:?}",
        reply.json()
    );

    // Tokens: missing and wrong are both 401 and say which.
    let url = format!("{}/admin/pipelines/echo/component", b.admin);
    let agent = agent();
    let missing = send(
        &agent,
        "PUT",
        &url,
        None,
        Some(("application/wasm", &test_pipeline)),
    );
    assert_eq!(missing.status, 401);
    assert!(String::from_utf8_lossy(&missing.body).contains("missing bearer token"));
    let wrong = send(
        &agent,
        "PUT",
        &url,
        Some("not-the-token-at-all"),
        Some(("application/wasm", &test_pipeline)),
    );
    assert_eq!(wrong.status, 401);
    assert!(String::from_utf8_lossy(&wrong.body).contains("wrong bearer token"));

    // Nothing changed, and both pipelines still serve.
    assert_eq!(stable_of(&b, "echo"), echo);
    assert_eq!(stable_of(&b, "careful"), careful);
    assert_eq!(ping(&agent, &b, "echo").status, 200);
    let speech = speak(&agent, &b, "careful");
    assert_eq!(speech.status, 200);
    assert_eq!(speech.model, "silero-vad@6.2.3");
}

#[test]
fn a_restarted_box_serves_what_was_deployed_from_the_cache() {
    let scratch = Scratch::new("deploy-restart");
    let pipelines = echo_pipeline("echo", &component("test_pipeline"), "")
        + &vad_pipeline("vad", &component("voice_gate"), "");
    write_config(&scratch.0, 8 << 20, &pipelines);
    let b = EdgeBox::start(&scratch.0, &[]);
    let a = std::fs::read(component("test_pipeline")).expect("read");
    let variant = component_variant(&a, "restart");
    let file = scratch.0.join("echo-v2.wasm");
    std::fs::write(&file, &variant).expect("write");

    // Deploy with the CLI, as an operator would.
    let out = std::process::Command::new(hybrid_bin())
        .args([
            "deploy",
            "echo",
            file.to_str().expect("utf8"),
            "--admin",
            &b.admin,
        ])
        .env("HYBRID_ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .expect("hybrid deploy runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("deployed {}", sha256(&variant))),
        "{stdout}"
    );
    let vad_b = onnx_variant(&std::fs::read(vad_path()).expect("vad"), "restart");
    let reply = deploy_model(&b, "silero-vad", Some("6.2.3-r"), &vad_b);
    assert_eq!(reply.status, 200, "{:?}", reply.json());
    b.kill();

    let b = EdgeBox::start(&scratch.0, &[]);
    let agent = agent();
    assert_eq!(ping(&agent, &b, "echo").component, sha256(&variant));
    let speech = speak(&agent, &b, "vad");
    assert_eq!(speech.status, 200);
    assert_eq!(speech.model, "silero-vad@6.2.3-r");
    let status = admin(&b, "GET", "/admin/status", None).json();
    let echo = &status["pipelines"]
        .as_array()
        .expect("pipelines")
        .iter()
        .find(|p| p["name"] == "echo")
        .expect("echo")["versions"][0];
    assert_eq!(echo["source"]["kind"], "upload", "{status}");
    assert_eq!(
        echo["code"], "disk-cache",
        "restored without compiling: {status}"
    );
    assert_eq!(status["models"][0]["source"]["kind"], "upload", "{status}");

    // `hybrid status` and `hybrid rollback`, and their exit codes.
    let cli = |args: &[&str], token: Option<&str>| {
        let mut c = std::process::Command::new(hybrid_bin());
        c.args(args)
            .args(["--admin", &b.admin])
            .env_remove("HYBRID_ADMIN_TOKEN");
        if let Some(t) = token {
            c.env("HYBRID_ADMIN_TOKEN", t);
        }
        let out = c.output().expect("hybrid runs");
        let what = format!("the output of hybrid {}", args.join(" "));
        hybrid_tests::secrets::assert_clean(&what, &out.stdout);
        hybrid_tests::secrets::assert_clean(&what, &out.stderr);
        out
    };
    let shown = cli(&["status"], Some(ADMIN_TOKEN));
    assert!(shown.status.success());
    assert!(String::from_utf8_lossy(&shown.stdout).contains("uploaded"));
    assert_eq!(cli(&["status"], None).status.code(), Some(3), "no token");
    assert_eq!(
        cli(&["promote", "echo"], Some(ADMIN_TOKEN)).status.code(),
        Some(1),
        "no canary"
    );
    let back = cli(&["rollback", "echo"], Some(ADMIN_TOKEN));
    assert!(
        back.status.success(),
        "{}",
        String::from_utf8_lossy(&back.stderr)
    );
    assert_eq!(ping(&agent, &b, "echo").component, sha256(&a));
    let model_back = cli(&["rollback", "--model", "silero-vad"], Some(ADMIN_TOKEN));
    assert!(
        model_back.status.success(),
        "{}",
        String::from_utf8_lossy(&model_back.stderr)
    );
    let speech = speak(&agent, &b, "vad");
    assert_eq!(speech.model, "silero-vad@6.2.3");
}

#[test]
fn watch_mode_deploys_a_changed_file_and_ignores_a_broken_one() {
    let scratch = Scratch::new("deploy-watch");
    let a = std::fs::read(component("test_pipeline")).expect("read");
    let watched = scratch.0.join("components").join("echo.wasm");
    std::fs::create_dir_all(watched.parent().expect("folder")).expect("folder");
    std::fs::write(&watched, &a).expect("write");
    write_config(&scratch.0, 8 << 20, &echo_pipeline("echo", &watched, ""));
    let b = EdgeBox::start(&scratch.0, &["--watch"]);
    let agent = agent();
    assert_eq!(ping(&agent, &b, "echo").component, sha256(&a));

    // A new build lands the way cargo writes it: a new file renamed over the old.
    let variant = component_variant(&a, "watched");
    let tmp = scratch.0.join("components").join(".echo.wasm.tmp");
    std::fs::write(&tmp, &variant).expect("write");
    std::fs::rename(&tmp, &watched).expect("rename");
    let deadline = Instant::now() + Duration::from_secs(20);
    while stable_of(&b, "echo") != sha256(&variant) {
        assert!(
            Instant::now() < deadline,
            "the changed file was not deployed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(ping(&agent, &b, "echo").component, sha256(&variant));

    // A broken file is refused; the running version keeps serving.
    std::fs::write(&watched, b"half a component").expect("write");
    let log = scratch.0.join("hybrid.log");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("changed component refused")
    {
        assert!(Instant::now() < deadline, "the broken file was not noticed");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(stable_of(&b, "echo"), sha256(&variant));
    let answer = ping(&agent, &b, "echo");
    assert_eq!((answer.status, answer.component), (200, sha256(&variant)));
}

#[test]
fn embeddings_report_the_new_model_identity_from_the_first_request_after_a_swap() {
    let scratch = Scratch::new("deploy-embed");
    let minilm = hybrid_tests::minilm_model();
    let pipeline = format!(
        r#"
[[model]]
name = "minilm-l6-v2"
version = "0.1.0"
path = "{}"
sha256 = "{}"
input = [
    {{ name = "input_ids", type = "i64", shape = ["B", "S"] }},
    {{ name = "attention_mask", type = "i64", shape = ["B", "S"] }},
]
[model.assets.vocab]
path = "{}"
sha256 = "{}"

[[pipeline]]
name = "embed"
component = "{}"
embedding_model = "minilm-l6-v2"
deadline_ms = 30000
memory_mib = 256
"#,
        minilm.path.display(),
        minilm.sha256,
        minilm.assets["vocab"].path.display(),
        minilm.assets["vocab"].sha256,
        component("embed").display(),
    );
    write_config(&scratch.0, 128 << 20, &pipeline);
    let b = EdgeBox::start(&scratch.0, &[]);
    let v2 = onnx_variant(&std::fs::read(&minilm.path).expect("minilm"), "v2");
    let identities = [
        ("minilm-l6-v2@0.1.0", minilm.sha256.clone()),
        ("minilm-l6-v2@0.2.0", sha256(&v2)),
    ];
    let embed = |agent: &ureq::Agent| {
        let body = br#"{"model": "minilm-l6-v2", "input": ["hybrid inference", "at the edge"]}"#;
        let answer = send(
            agent,
            "POST",
            &format!("{}/v1/pipelines/embed", b.base),
            None,
            Some(("application/json", body)),
        );
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        let sha = answer.json()["body"]["model_sha256"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        (answer.model, sha)
    };

    // Requests run throughout the swap; each must name one model, in header and body.
    let stop = AtomicBool::new(false);
    let seen = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let agent = agent();
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                seen.push(embed(&agent));
            }
            seen
        });
        let reply = deploy_model(&b, "minilm-l6-v2", Some("0.2.0"), &v2);
        assert_eq!(reply.status, 200, "{:?}", reply.json());
        // The first request after the swap answered reports the new identity.
        assert_eq!(
            embed(&agent()),
            (identities[1].0.to_owned(), identities[1].1.clone())
        );
        stop.store(true, Ordering::Relaxed);
        reader.join().expect("reader")
    });
    assert!(!seen.is_empty());
    for (model, sha) in &seen {
        assert!(
            identities.iter().any(|(m, s)| m == model && s == sha),
            "a response mixed model versions: {model} with vectors of {sha}"
        );
    }
}
