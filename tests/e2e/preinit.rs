//! Pre-initialised components (WIT 0.2.2 `init`), end to end over HTTP with a real
//! `hybrid serve`: the embed guest parses its vocabulary once in `initialize` at deploy and
//! every request starts from the snapshot; the vectors are the ones it computes parsing
//! per request; an `initialize` that fails (an error it returns, a limit it runs past)
//! refuses the deploy and the old version keeps serving; the snapshot is cached with the
//! compiled code, reused after a restart and made again for a changed component or
//! vocabulary.

use std::path::Path;

use hybrid_tests::edge_box::{
    Answer, EdgeBox, Scratch, admin, agent, component_variant, echo_pipeline, send, sha256,
};
use hybrid_tests::{component, hybrid_bin, root};

const MINILM_SHA: &str = "e3696613144811e5b71c8dec5fa81ee78d3be5e0a10f7ffb5d8969206953a181";

/// The embed pipeline's lines in the box's log, which name where each request's
/// vocabulary came from.
const PRELOADED: &str = "vocabulary preloaded";
const PARSED: &str = "vocabulary parsed";

/// Writes `<dir>/hybrid.toml`: the admin API, MiniLM with the vocabulary at `vocab`
/// (none when `None`), and `pipelines`.
fn write_config(dir: &Path, vocab: Option<&Path>, pipelines: &str) {
    std::fs::write(dir.join("ping.txt"), b"ping").expect("smoke body");
    let asset = vocab.map_or_else(String::new, |path| {
        let bytes = std::fs::read(path).expect("vocabulary");
        format!(
            "[model.assets.vocab]\npath = \"{}\"\nsha256 = \"{}\"\n",
            path.display(),
            sha256(&bytes)
        )
    });
    let config = format!(
        r#"
[runtime]
max_instances = 16

[admin]
token_env = "HYBRID_ADMIN_TOKEN"
max_upload_bytes = 8388608

[[model]]
name = "minilm-l6-v2"
version = "0.1.0"
path = "{model}"
sha256 = "{MINILM_SHA}"
input = [
    {{ name = "input_ids", type = "i64", shape = ["B", "S"] }},
    {{ name = "attention_mask", type = "i64", shape = ["B", "S"] }},
]
{asset}
{pipelines}
"#,
        model = root().join("models/minilm-l6-v2.onnx").display(),
    );
    std::fs::write(dir.join("hybrid.toml"), config).expect("config");
}

fn vocab() -> std::path::PathBuf {
    root().join("models/minilm-vocab.txt")
}

/// An embed pipeline named `name` serving `component`; `extra` lines go into its table.
fn embed_pipeline(name: &str, component: &Path, extra: &str) -> String {
    format!(
        r#"
[[pipeline]]
name = "{name}"
component = "{}"
embedding_model = "minilm-l6-v2"
deadline_ms = 30000
memory_mib = 256
{extra}
"#,
        component.display()
    )
}

fn deploy(b: &EdgeBox, pipeline: &str, wasm: &[u8]) -> Answer {
    admin(
        b,
        "PUT",
        &format!("/admin/pipelines/{pipeline}/component"),
        Some(("application/wasm", wasm)),
    )
}

/// The stable version of `pipeline` as `GET /admin/pipelines/{name}` shows it.
fn stable(b: &EdgeBox, pipeline: &str) -> serde_json::Value {
    admin(b, "GET", &format!("/admin/pipelines/{pipeline}"), None).json()["versions"][0].clone()
}

fn embed(b: &EdgeBox, pipeline: &str, inputs: &[&str]) -> Answer {
    let body = serde_json::to_vec(&serde_json::json!({ "input": inputs })).expect("JSON");
    send(
        &agent(),
        "POST",
        &format!("{}/v1/pipelines/{pipeline}", b.base),
        None,
        Some(("application/json", &body)),
    )
}

fn ping(b: &EdgeBox, pipeline: &str) -> Answer {
    send(
        &agent(),
        "POST",
        &format!("{}/v1/pipelines/{pipeline}", b.base),
        None,
        Some(("text/plain", b"ping")),
    )
}

fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("hybrid.log")).unwrap_or_default()
}

/// How many embed requests logged where their vocabulary came from.
fn count(log: &str, what: &str) -> usize {
    log.matches(what).count()
}

#[test]
fn embed_pre_initialised_answers_the_vectors_it_computes_parsing_per_request() {
    let scratch = Scratch::new("preinit-vectors");
    let wasm = component("embed");
    write_config(
        &scratch.0,
        Some(&vocab()),
        &(embed_pipeline("embed", &wasm, "")
            + &embed_pipeline("embed-fresh", &wasm, "preinit = false")),
    );
    let b = EdgeBox::start(&scratch.0, &[]);
    assert_eq!(stable(&b, "embed")["preinitialised"], true);
    assert_eq!(stable(&b, "embed-fresh")["preinitialised"], false);
    assert_eq!(count(&log(&scratch.0), "pre-initialised component"), 1);

    let inputs = [
        "hybrid inference at the edge",
        "Unaffable naïve façades, tokenised by WordPiece!",
    ];
    let snapshot = embed(&b, "embed", &inputs);
    let fresh = embed(&b, "embed-fresh", &inputs);
    assert_eq!(snapshot.status, 200, "{:?}", snapshot.json());
    assert_eq!(fresh.status, 200, "{:?}", fresh.json());
    let vectors = |a: &Answer| a.json()["body"]["data"].clone();
    assert_eq!(vectors(&snapshot).as_array().map(Vec::len), Some(2));
    assert_eq!(
        vectors(&snapshot),
        vectors(&fresh),
        "same vectors, bit for bit"
    );
    assert_eq!(
        snapshot.json()["body"]["usage"],
        fresh.json()["body"]["usage"]
    );

    // The pre-initialised pipeline's request found the vocabulary in its snapshot; the
    // other one parsed it.
    let log = log(&scratch.0);
    assert_eq!(count(&log, PRELOADED), 1, "{log}");
    assert_eq!(count(&log, PARSED), 1, "{log}");

    let out = std::process::Command::new(hybrid_bin())
        .args(["check", wasm.to_str().expect("utf8")])
        .output()
        .expect("hybrid check runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("pre-initialised by its init export (hybrid:inference/init@0.2.2)"),
        "{stdout}"
    );
}

#[test]
fn an_init_that_fails_refuses_the_deploy_and_the_old_version_keeps_serving() {
    let scratch = Scratch::new("preinit-refused");
    // The model without its vocabulary asset: embed's `initialize` returns an error.
    let echo = component("test_pipeline");
    write_config(&scratch.0, None, &echo_pipeline("p", &echo, 5000, 256, ""));
    let b = EdgeBox::start(&scratch.0, &[]);
    let echo_sha = sha256(&std::fs::read(&echo).expect("read"));
    let wasm = std::fs::read(component("embed")).expect("read");
    let short = &sha256(&wasm)[..12];

    let refused = deploy(&b, "p", &wasm);
    let error = &refused.json()["error"];
    assert_eq!(refused.status, 422, "{error}");
    assert_eq!(error["code"], "init_failed", "{error}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("component {short} could not be pre-initialised"))
            && message.contains("initialize returned an error")
            && message.contains("vocabulary of minilm-l6-v2")
            && message.contains("no asset"),
        "{message}"
    );
    let still = ping(&b, "p");
    assert_eq!(still.status, 200);
    assert_eq!(still.component, echo_sha, "the old version serves on");
    assert_eq!(stable(&b, "p")["sha256"], echo_sha.as_str());
}

#[test]
fn an_init_past_its_pipelines_limit_refuses_the_deploy() {
    let scratch = Scratch::new("preinit-limit");
    // Enough fuel for the echo pipeline's smoke request, not for parsing 30 522 tokens.
    let echo = component("test_pipeline");
    write_config(
        &scratch.0,
        Some(&vocab()),
        &echo_pipeline("p", &echo, 5000, 256, "limits = { fuel = 1000000 }"),
    );
    let b = EdgeBox::start(&scratch.0, &[]);
    let echo_sha = sha256(&std::fs::read(&echo).expect("read"));
    let wasm = std::fs::read(component("embed")).expect("read");

    let refused = deploy(&b, "p", &wasm);
    let error = &refused.json()["error"];
    assert_eq!(refused.status, 422, "{error}");
    assert_eq!(error["code"], "init_failed", "{error}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("could not be pre-initialised") && message.contains("limits.fuel"),
        "{message}"
    );
    assert_eq!(
        ping(&b, "p").component,
        echo_sha,
        "the old version serves on"
    );
}

#[test]
fn the_snapshot_is_cached_reused_after_a_restart_and_made_again_when_its_inputs_change() {
    let scratch = Scratch::new("preinit-cache");
    let wasm = component("embed");
    write_config(
        &scratch.0,
        Some(&vocab()),
        &embed_pipeline("embed", &wasm, ""),
    );
    let inputs = ["the same sentence, embedded after every change"];
    let vectors = |a: &Answer| a.json()["body"]["data"].clone();
    let inits = || count(&log(&scratch.0), "pre-initialised component");

    let b = EdgeBox::start(&scratch.0, &[]);
    let first = stable(&b, "embed");
    assert_eq!(first["preinitialised"], true, "{first}");
    assert_eq!(first["code"], "compiled", "{first}");
    let reference = embed(&b, "embed", &inputs);
    assert_eq!(reference.status, 200);
    assert_eq!(vectors(&reference).as_array().map(Vec::len), Some(1));
    b.kill();

    // Restarted: the snapshot comes from the disk cache, initialize does not run again.
    let b = EdgeBox::start(&scratch.0, &[]);
    let restarted = stable(&b, "embed");
    assert_eq!(restarted["code"], "disk-cache", "{restarted}");
    assert_eq!(restarted["preinitialised"], true, "{restarted}");
    assert_eq!(inits(), 1, "initialize ran at the first start only");
    let again = embed(&b, "embed", &inputs);
    assert_eq!(vectors(&again), vectors(&reference));
    assert_eq!(count(&log(&scratch.0), PRELOADED), 2);

    // A changed component is initialised and compiled again, not taken from the cache.
    let variant = component_variant(&std::fs::read(&wasm).expect("read"), "preinit");
    let deployed = deploy(&b, "embed", &variant);
    let report = deployed.json();
    assert_eq!(deployed.status, 200, "{report}");
    assert_eq!(report["compile"]["origin"], "compiled", "{report}");
    assert_eq!(report["preinitialised"], true, "{report}");
    assert_eq!(inits(), 2);
    b.kill();

    // A changed vocabulary (one more line: the same tokens, other bytes) is another
    // input to `initialize`: restarted on it, the box initialises again.
    let mut bytes = std::fs::read(vocab()).expect("vocabulary");
    bytes.extend_from_slice(b"\n");
    let changed = scratch.0.join("vocab.txt");
    std::fs::write(&changed, bytes).expect("write");
    write_config(
        &scratch.0,
        Some(&changed),
        &embed_pipeline("embed", &wasm, ""),
    );
    let b = EdgeBox::start(&scratch.0, &[]);
    let reinit = stable(&b, "embed");
    // The box restores the uploaded variant (and the config's version beside it):
    // neither comes from the disk cache, whose entries were for the old vocabulary.
    assert_eq!(reinit["code"], "compiled", "{reinit}");
    assert!(inits() > 2, "initialize ran again");
    let same = embed(&b, "embed", &inputs);
    assert_eq!(vectors(&same), vectors(&reference));
}
