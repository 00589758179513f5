//! The `hybrid` binary as users type it: `run`, `models`, `profile`, `check` and their
//! errors.

use std::path::Path;
use std::process::{Command, Output};

use hybrid_tests::{component, hybrid_bin, root};

/// Runs `hybrid` from the repository root. The default config's endpoints need a key at
/// start; here they point at a closed port, so nothing leaves the machine.
fn hybrid(args: &[&str]) -> Output {
    Command::new(hybrid_bin())
        .args(args)
        .current_dir(root())
        .env("HYBRID_REMOTE_URL", "http://127.0.0.1:9/v1")
        .env("HYBRID_REMOTE_KEY_ENV", "HYBRID_TEST_KEY")
        .env("HYBRID_TEST_KEY", "test-key")
        .output()
        .expect("hybrid runs")
}

#[test]
fn a_named_but_unset_key_stops_the_host_at_start() {
    let out = Command::new(hybrid_bin())
        .args([
            "run",
            "-c",
            "hybrid.toml",
            "-p",
            "voice-gate",
            "samples/generated/demo.wav",
        ])
        .current_dir(root())
        .env_remove("DIGITALOCEAN_MODEL_ACCESS_KEY")
        .env_remove("HYBRID_REMOTE_KEY_ENV")
        .output()
        .expect("hybrid runs");
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("needs an API key") && err.contains("DIGITALOCEAN_MODEL_ACCESS_KEY"),
        "{err}"
    );
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn run_prints_segments_and_the_routing_record() {
    let out = hybrid(&[
        "run",
        "--config",
        "hybrid.toml",
        "--pipeline",
        "voice-gate",
        "--param",
        "transcribe=off",
        "samples/generated/demo.wav",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v["routing"]["route"], "local");
    assert_eq!(v["routing"]["model_version"], "6.2.3");
    assert_eq!(v["body"]["segments"].as_array().map(Vec::len), Some(3));
    assert!(v["local_runs"][0]["calls"].as_u64() >= Some(1));
}

#[test]
fn run_reports_a_rejected_request_on_stderr_with_a_failure_status() {
    let empty = std::env::temp_dir().join(format!("hybrid-empty-{}.wav", std::process::id()));
    std::fs::write(&empty, b"").expect("write");
    let out = hybrid(&[
        "run",
        "-c",
        "hybrid.toml",
        "-p",
        "voice-gate",
        empty.to_str().expect("utf8"),
    ]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("bad-request") && err.contains("empty body"),
        "{err}"
    );
    std::fs::remove_file(&empty).ok();
}

#[test]
fn unknown_pipeline_and_missing_config_are_one_line_errors() {
    let out = hybrid(&[
        "run",
        "-c",
        "hybrid.toml",
        "-p",
        "nope",
        "samples/generated/demo.wav",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("configured pipelines: [voice-gate"),
        "{}",
        text(&out.stderr)
    );

    let out = hybrid(&["models", "--config", "does-not-exist.toml"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.starts_with("error: cannot read config") && err.trim().lines().count() == 1,
        "{err}"
    );
}

#[test]
fn models_lists_silero_with_its_interface() {
    let out = hybrid(&["models", "--config", "hybrid.toml"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    assert!(listing.contains("silero-vad 6.2.3"), "{listing}");
    assert!(listing.contains("speech_probs"), "{listing}");
}

#[test]
fn profile_times_the_vad_operators_on_a_plan_for_the_given_size() {
    let out = hybrid(&[
        "profile",
        "-c",
        "hybrid.toml",
        "silero-vad",
        "N=4",
        "--runs",
        "3",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let p: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(p["shape"], serde_json::json!({ "N": 4 }));
    assert!(p["per_run_ms"].as_f64().expect("per run") > 0.0, "{p}");
    let operators = p["operators"].as_array().expect("operators");
    assert!(operators.len() > 3, "{p}");
    let shares: f64 = operators
        .iter()
        .map(|o| o["share"].as_f64().expect("share"))
        .sum();
    assert!((shares - 1.0).abs() < 1e-6, "shares add up to {shares}");
    let kernels = operators
        .iter()
        .filter_map(|o| o["operator"].as_str())
        .filter(|o| o.starts_with("OptMatMul m:"))
        .count();
    assert!(kernels > 0, "no matrix product named with its sizes: {p}");

    let generic = hybrid(&[
        "profile",
        "-c",
        "hybrid.toml",
        "silero-vad",
        "N=4",
        "--generic",
    ]);
    assert!(generic.status.success(), "{}", text(&generic.stderr));
    assert!(text(&generic.stdout).contains("the plan for any shape"));
}

#[test]
fn profile_names_a_missing_or_unknown_size() {
    let out = hybrid(&["profile", "-c", "hybrid.toml", "silero-vad"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("missing [\"N\"]"),
        "{}",
        text(&out.stderr)
    );
    let out = hybrid(&["profile", "-c", "hybrid.toml", "silero-vad", "N=1", "T=3"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no dimension \"T\""),
        "{}",
        text(&out.stderr)
    );
    let out = hybrid(&["profile", "-c", "hybrid.toml", "silero-vad", "N"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("is not NAME=SIZE"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn check_accepts_the_voice_gate_component() {
    let path = component("voice_gate");
    let out = hybrid(&["check", path.to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("implements hybrid:inference/pipeline@0.2.2 (contract 0.2)")
    );
}

/// `hybrid check x | head -1`: when the reader has gone, the command ends quietly (by
/// SIGPIPE, as Unix tools do) instead of panicking on the broken pipe.
#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let path = component("voice_gate");
    let mut child = Command::new(hybrid_bin())
        .args(["check", path.to_str().expect("utf8")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("hybrid runs");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("hybrid ends");
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.is_empty(), "nothing said: {stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        // SIGPIPE is 13 on Linux and the BSDs.
        assert_eq!(out.status.signal(), Some(13), "{:?}", out.status);
    }
}

fn check_rejects(name: &str, bytes: &[u8], expected: &str) {
    let path =
        std::env::temp_dir().join(format!("hybrid-check-{}-{name}.wasm", std::process::id()));
    std::fs::write(&path, bytes).expect("write");
    let out = hybrid(&["check", path.to_str().expect("utf8")]);
    std::fs::remove_file(&path).ok();
    assert!(!out.status.success(), "{name} was accepted");
    let err = text(&out.stderr);
    assert!(err.contains(expected), "{name}: {err}");
}

#[test]
fn check_rejects_core_modules_and_components_missing_the_world() {
    let core = wat::parse_str("(module (func (export \"handle\")))").expect("wat");
    check_rejects("core", &core, "core WebAssembly module, not a component");

    let empty = wat::parse_str("(component)").expect("wat");
    check_rejects("empty", &empty, "exports no function `handle`");

    let networked = wat::parse_str(
        r#"(component
             (import "evil:net/socket" (instance (export "connect" (func))))
             (core module $m (func (export "h")))
             (core instance $i (instantiate $m))
             (func (export "handle") (canon lift (core func $i "h"))))"#,
    )
    .expect("wat");
    check_rejects("networked", &networked, "evil:net/socket");

    // WASI sockets exist, but a pipeline is not granted them: serverless goes through
    // `remote`, where the host holds the keys and the limits.
    let sockets = wat::parse_str(
        r#"(component
             (import "wasi:sockets/instance-network@0.2.6" (instance (export "instance-network" (func))))
             (core module $m (func (export "h")))
             (core instance $i (instantiate $m))
             (func (export "handle") (canon lift (core func $i "h"))))"#,
    )
    .expect("wat");
    check_rejects(
        "sockets",
        &sockets,
        "wasi:sockets/instance-network@0.2.6, which pipelines are not granted",
    );

    check_rejects("text", b"not wasm", "not a WebAssembly binary");
    assert!(Path::new(&hybrid_bin()).exists());
}
