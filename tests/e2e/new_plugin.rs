//! `hybrid new`, end to end: the real binary writes a plugin project into a scratch
//! folder; cargo builds it with the lock file it ships (`--locked`), into the
//! repository's target dir so the guests' compiled dependencies are reused; `hybrid
//! check` accepts the component; `hybrid run` serves the project's own request through
//! the project's own config; a real box serves each of its paths (a local model, the
//! serverless simulator, the signals) and takes a redeploy; its unit tests pass natively
//! against the fake host, and it is fmt- and clippy-clean.
//!
//! `--lang python`: the project's `build` runs its unit tests under CPython and makes the
//! component with the componentize-py `guest-python/build` installed (`COMPONENTIZE_PY`,
//! so nothing is downloaded); `hybrid check` accepts it; a real box serves it with the
//! project's own config.
//!
//! Each step prints its wall time (`--nocapture` shows them).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use hybrid_sim::SimConfig;
use hybrid_tests::edge_box::{
    ADMIN_TOKEN, Answer, EdgeBox, Scratch, agent, component_variant, send, sha256,
};
use hybrid_tests::{hybrid_bin, root, target_dir};
use serde_json::Value;

const NAME: &str = "demo-plugin";
const PYTHON_NAME: &str = "demo-py";

/// Runs `command`, printing how long `what` took; its stdout, or a panic with its output.
fn run(what: &str, command: &mut Command) -> String {
    String::from_utf8_lossy(&ran(what, command).stdout).into_owned()
}

/// Runs `command`, printing how long `what` took; its output, or a panic with it.
fn ran(what: &str, command: &mut Command) -> Output {
    let started = Instant::now();
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    eprintln!("{what}: {:.1} s", started.elapsed().as_secs_f64());
    assert!(output.status.success(), "{what} failed: {}", shown(&output));
    output
}

fn shown(output: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn hybrid(dir: &Path) -> Command {
    let mut command = Command::new(hybrid_bin());
    command.current_dir(dir);
    command
}

/// `cargo` in `project`, building into the repository's target dir.
fn cargo(project: &Path) -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .current_dir(project)
        .env("CARGO_TARGET_DIR", target_dir());
    command
}

/// This machine's target triple, for the project's native unit tests.
fn host_triple() -> String {
    let version = run("rustc -vV", Command::new("rustc").arg("-vV"));
    version
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc names its host")
        .to_owned()
}

/// Every file under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(at) = todo.pop() {
        for entry in std::fs::read_dir(&at).expect("folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                todo.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

/// A box serving the plugin as pipeline `demo-plugin`, with the digits model (for
/// `?action=model`) and a chat endpoint `chat` on the simulator (for `?action=chat`).
fn write_box_config(dir: &Path, wasm: &Path, sim: &str, project: &Path) {
    std::fs::copy(project.join("request.json"), dir.join("request.json")).expect("smoke body");
    let config = format!(
        r#"
[admin]
token_env = "HYBRID_ADMIN_TOKEN"

[deploy]
state_dir = "{state}"

{digits}
[[endpoint]]
name = "chat"
kind = "chat"
base_url = "{sim}"
model = "llama3.3-70b-instruct"
timeout_ms = 10000
max_attempts = 1

[[pipeline]]
name = "{NAME}"
component = "{wasm}"
deadline_ms = 5000
memory_mib = 64
settings = {{ endpoint = "chat", model = "digits-v1" }}

[[pipeline.smoke]]
body = "request.json"
content_type = "application/json"
status = 200
"#,
        state = dir.join("state").display(),
        digits = hybrid_tests::digits_model_toml("1.0.0"),
        wasm = wasm.display(),
    );
    std::fs::write(dir.join("hybrid.toml"), config).expect("config");
}

/// POSTs `body` to `pipeline` with `query` and the `x-hybrid-*` `headers`; the envelope.
fn ask(b: &EdgeBox, pipeline: &str, query: &str, headers: &[(&str, &str)], body: &str) -> Value {
    let mut request = agent().post(&format!("{}/v1/pipelines/{pipeline}{query}", b.base));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut answer = request
        .header("content-type", "application/json")
        .send(body.as_bytes())
        .unwrap_or_else(|e| panic!("POST {query}: {e}"));
    let bytes = answer.body_mut().read_to_vec().expect("body");
    assert_eq!(
        answer.status().as_u16(),
        200,
        "{query}: {}",
        String::from_utf8_lossy(&bytes)
    );
    serde_json::from_slice(&bytes).expect("a JSON envelope")
}

#[test]
fn a_new_plugin_builds_checks_runs_serves_deploys_and_passes_its_tests() {
    let started = Instant::now();
    let scratch = Scratch::new("new-plugin");
    let said = run(
        "hybrid new",
        hybrid(&scratch.0).args(["new", NAME, "--dir", scratch.0.to_str().expect("utf8")]),
    );
    let project = scratch.0.join(NAME);
    for next in [
        "cargo build --release",
        "hybrid check target/wasm32-wasip2/release/demo_plugin.wasm",
        "hybrid run --config hybrid.toml --pipeline demo-plugin request.json",
        "src/lib.rs",
    ] {
        assert!(said.contains(next), "{next:?} not in:\n{said}");
    }

    // Self-contained: no path into this repository, no workspace inheritance.
    let repo = root().display().to_string();
    for file in files(&project) {
        let text = std::fs::read_to_string(&file).expect("text");
        assert!(!text.contains(&repo), "{} names {repo}", file.display());
        assert!(!text.contains("workspace = true"), "{}", file.display());
    }

    run(
        "cargo build --release --locked",
        cargo(&project).args(["build", "--release", "--locked"]),
    );
    let wasm = target_dir().join("wasm32-wasip2/release/demo_plugin.wasm");
    let checked = run("hybrid check", hybrid(&project).arg("check").arg(&wasm));
    assert!(checked.starts_with("ok: "), "{checked}");

    // The README's run command, with the project's own config and request.
    let envelope = run(
        "hybrid run",
        hybrid(&project)
            .args(["run", "--config", "hybrid.toml", "--pipeline", NAME])
            .arg("request.json")
            .env("CARGO_TARGET_DIR", target_dir()),
    );
    let envelope: Value = serde_json::from_str(&envelope).expect("JSON");
    assert_eq!(
        envelope["body"]["echo"]["text"],
        "Is this pipeline working?"
    );
    assert_eq!(envelope["routing"]["route"], "local");

    serve_every_path_and_redeploy(&scratch.0, &project, &wasm);

    let triple = host_triple();
    let tests = run(
        "cargo test (native)",
        cargo(&project).args(["test", "--target", &triple]),
    );
    assert!(
        tests.contains("test result: ok.") && !tests.contains("ok. 0 passed"),
        "{tests}"
    );
    run(
        "cargo fmt --check",
        cargo(&project).args(["fmt", "--check"]),
    );
    run(
        "cargo clippy (native)",
        cargo(&project).args([
            "clippy",
            "--all-targets",
            "--target",
            &triple,
            "--",
            "-D",
            "warnings",
        ]),
    );
    eprintln!("in all: {:.1} s", started.elapsed().as_secs_f64());
}

fn serve_every_path_and_redeploy(scratch: &Path, project: &Path, wasm: &Path) {
    let started = Instant::now();
    let sim = hybrid_sim::spawn(SimConfig::without_auth()).expect("sim starts");
    let dir = scratch.join("box");
    std::fs::create_dir_all(&dir).expect("box folder");
    write_box_config(&dir, wasm, &sim.base_url(), project);
    let b = EdgeBox::start(&dir, &[]);

    let echo = ask(
        &b,
        NAME,
        "?lang=en",
        &[],
        r#"{"text": "hello from the test"}"#,
    );
    assert_eq!(echo["body"]["echo"]["text"], "hello from the test");
    assert_eq!(
        echo["body"]["seen"]["metadata"],
        serde_json::json!([["lang", "en"]])
    );
    assert_eq!(
        (&echo["routing"]["route"], &echo["routing"]["reason"]),
        (&"local".into(), &"echoed the request".into())
    );

    let model = ask(&b, NAME, "?action=model", &[], "{}");
    assert_eq!(model["routing"]["model"], "digits-v1", "{model}");
    assert_eq!(model["body"]["outputs"][0]["dims"][0], 1, "{model}");
    assert_eq!(model["local_runs"][0]["model"], "digits-v1");

    let chat = ask(
        &b,
        NAME,
        "?action=chat",
        &[],
        r#"{"text": "one two three"}"#,
    );
    assert_eq!(chat["routing"]["route"], "remote:chat", "{chat}");
    assert!(chat["body"]["answer"].is_string(), "{chat}");
    assert_eq!(chat["remote_calls"][0]["endpoint"], "chat");

    let signals = ask(&b, NAME, "", &[("x-hybrid-action", "signals")], "{}");
    assert!(
        signals["body"]["load"]["capacity"].as_u64() > Some(0),
        "{signals}"
    );
    assert_eq!(signals["body"]["endpoints"][0]["name"], "chat", "{signals}");
    assert_eq!(signals["body"]["prices"][0]["name"], "chat", "{signals}");

    // The README's deploy command, against the box's admin API.
    let variant = component_variant(&std::fs::read(wasm).expect("wasm"), "v2");
    let variant_path = scratch.join("demo_plugin_v2.wasm");
    std::fs::write(&variant_path, &variant).expect("variant");
    let deployed = run(
        "hybrid deploy",
        hybrid(project)
            .args(["deploy", NAME])
            .arg(&variant_path)
            .args(["--admin", &b.admin])
            .env("HYBRID_ADMIN_TOKEN", ADMIN_TOKEN),
    );
    assert!(deployed.contains("serving every request"), "{deployed}");
    let again = ask(&b, NAME, "", &[], r#"{"text": "after the deploy"}"#);
    assert_eq!(again["component"]["sha256"], sha256(&variant), "{again}");
    assert_eq!(again["body"]["echo"]["text"], "after the deploy");

    let refused: Answer = send(
        &agent(),
        "POST",
        &format!("{}/v1/pipelines/{NAME}?action=dance", b.base),
        None,
        Some(("application/json", b"{}")),
    );
    assert_eq!(
        refused.status,
        400,
        "{}",
        String::from_utf8_lossy(&refused.body)
    );
    eprintln!("serving: {:.1} s", started.elapsed().as_secs_f64());
}

/// The componentize-py `guest-python/build` installs (`just test` runs it first): the
/// Python project's build uses it instead of installing its own from PyPI.
fn componentize_py() -> PathBuf {
    let path = root().join("guest-python/.venv/bin/componentize-py");
    assert!(
        path.is_file(),
        "{} is missing: run `guest-python/build` (needs python3 3.11+ and PyPI) first",
        path.display()
    );
    path
}

/// The project's `build`, run from `cwd` (it works from any folder) with the repository's
/// componentize-py.
fn python_build(project: &Path, cwd: &Path) -> Command {
    let mut command = Command::new(project.join("build"));
    command
        .current_dir(cwd)
        .env("COMPONENTIZE_PY", componentize_py());
    command
}

#[test]
fn a_new_python_plugin_builds_checks_and_serves() {
    let started = Instant::now();
    componentize_py();
    let scratch = Scratch::new("new-python-plugin");
    let said = run(
        "hybrid new --lang python",
        hybrid(&scratch.0)
            .args(["new", PYTHON_NAME, "--lang", "python", "--dir"])
            .arg(&scratch.0),
    );
    let project = scratch.0.join(PYTHON_NAME);
    for next in [
        "created demo-py (python)",
        "app.py",
        "test_app.py",
        "./build",
        "hybrid check target/demo_py.wasm",
        "hybrid run --config hybrid.toml --pipeline demo-py request.json",
        "hybrid deploy demo-py target/demo_py.wasm",
    ] {
        assert!(said.contains(next), "{next:?} not in:\n{said}");
    }
    let repo = root().display().to_string();
    for file in files(&project) {
        let text = std::fs::read_to_string(&file).expect("text");
        assert!(!text.contains(&repo), "{} names {repo}", file.display());
    }

    let help = run(
        "build --help",
        python_build(&project, &project).arg("--help"),
    );
    assert!(help.starts_with("Usage: ./build"), "{help}");
    assert!(help.contains("COMPONENTIZE_PY"), "{help}");

    // From the scratch folder: the script finds its project by its own path.
    let built = ran("build", &mut python_build(&project, &scratch.0));
    let log = String::from_utf8_lossy(&built.stderr);
    assert!(log.contains("demo-py: unit tests: Ran "), "{log}");
    assert!(
        log.contains(" tests, OK") && !log.contains("Ran 0 tests"),
        "{log}"
    );
    let wasm = project.join("target/demo_py.wasm");
    assert!(wasm.is_file(), "{log}");
    assert!(
        !project.join(".venv").exists(),
        "COMPONENTIZE_PY is used, nothing installed"
    );
    assert!(
        project
            .join(".bindings/wit_world/imports/remote.py")
            .is_file()
    );
    let cached = files(&project)
        .into_iter()
        .filter(|f| f.to_string_lossy().contains("__pycache__"))
        .count();
    assert_eq!(cached, 0, "no bytecode left in the project");
    let again = ran(
        "build (nothing changed)",
        &mut python_build(&project, &project),
    );
    let log = String::from_utf8_lossy(&again.stderr);
    assert!(log.contains("target/demo_py.wasm is up to date"), "{log}");

    let checked = run(
        "hybrid check",
        hybrid(&project).args(["check", "target/demo_py.wasm"]),
    );
    assert!(checked.starts_with("ok: "), "{checked}");
    assert!(
        checked.contains("wasi imports: none"),
        "--stub-wasi: {checked}"
    );

    // The project's own config (its pipeline, smoke request and memory limit), served.
    let serving = Instant::now();
    let b = EdgeBox::start(&project, &[]);
    eprintln!(
        "hybrid serve (compiles, then smoke): {:.1} s",
        serving.elapsed().as_secs_f64()
    );
    // Not the smoke request's size, so its log line is told apart.
    let body = r#"{"text": "hello from python"}"#;
    let echo = ask(&b, PYTHON_NAME, "?lang=en", &[], body);
    assert_eq!(echo["body"]["echo"]["text"], "hello from python", "{echo}");
    // The operator's `setting.endpoint` is not echoed, the client's `lang` is.
    assert_eq!(
        echo["body"]["seen"]["metadata"],
        serde_json::json!([["lang", "en"]])
    );
    assert_eq!(echo["body"]["seen"]["body_bytes"], body.len());
    assert_eq!(echo["body"]["seen"]["request_id"], echo["request_id"]);
    assert_eq!(
        (&echo["routing"]["route"], &echo["routing"]["reason"]),
        (&"local".into(), &"echoed the request".into())
    );
    let signals = ask(&b, PYTHON_NAME, "", &[("x-hybrid-action", "signals")], "{}");
    assert!(
        signals["body"]["load"]["capacity"].as_u64() > Some(0),
        "{signals}"
    );

    let refused: Answer = send(
        &agent(),
        "POST",
        &format!("{}/v1/pipelines/{PYTHON_NAME}?action=dance", b.base),
        None,
        Some(("application/json", b"{}")),
    );
    let error = refused.json();
    assert_eq!(refused.status, 400, "{error}");
    assert_eq!(error["error"]["code"], "bad_request", "{error}");
    // The guest's log line (sizes and routes, never the body) went through `log`.
    let host_log = std::fs::read_to_string(project.join("hybrid.log")).expect("host log");
    assert!(
        host_log.contains(&format!("echo: {} body bytes, route local", body.len())),
        "{host_log}"
    );
    assert!(!host_log.contains("hello from python"), "{host_log}");
    eprintln!("in all: {:.1} s", started.elapsed().as_secs_f64());
}

#[test]
fn hybrid_new_refuses_a_bad_name_and_a_full_folder() {
    let scratch = Scratch::new("new-plugin-refusals");
    let refused = |args: &[&str]| {
        let output = hybrid(&scratch.0).args(args).output().expect("hybrid runs");
        assert!(
            !output.status.success(),
            "{args:?} succeeded: {}",
            shown(&output)
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    for (bad, why) in [
        ("Demo", "does not start with a lowercase letter"),
        ("1st-plugin", "does not start with a lowercase letter"),
        ("my_plugin", "contains '_'"),
        ("hybrid-guest", "a crate the project depends on"),
    ] {
        let stderr = refused(&["new", bad]);
        assert!(stderr.contains(why), "{bad}: {stderr}");
    }

    let full = scratch.0.join("taken");
    std::fs::create_dir_all(&full).expect("folder");
    std::fs::write(full.join("keep.txt"), "mine").expect("a file");
    let stderr = refused(&["new", "taken"]);
    assert!(
        stderr.contains("already exists and is not empty"),
        "{stderr}"
    );
    assert_eq!(files(&full), [full.join("keep.txt")]);

    // Without --dir the project goes into the current folder.
    run(
        "hybrid new (here)",
        hybrid(&scratch.0).args(["new", "here"]),
    );
    assert!(scratch.0.join("here/src/lib.rs").is_file());
    let mut left: Vec<String> = std::fs::read_dir(&scratch.0)
        .expect("scratch")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["here", "taken"],
        "nothing else written, no staging left"
    );
}
