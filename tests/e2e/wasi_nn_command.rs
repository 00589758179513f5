//! A `wasi:nn` component from outside this repository runs on `hybrid` unchanged:
//! `examples/wasi-nn-onnx-command`, a `wasi:cli` command built from the published
//! `wasi:nn` WIT alone (like wasmtime's own wasi-nn ONNX test programs: it reads its model
//! from a preopened `fixture/`, `load`s the bytes, computes, prints), served over HTTP by a
//! real `hybrid serve` with the real digits model.
//!
//! - its scores are bit for bit the probabilities `nn-classify` (through `load-by-name`)
//!   and tract directly give for the same digit; with `--raw`, the request body (stdin)
//!   comes back as the output tensor's bytes (stdout);
//! - a non-zero exit is a 500 naming the exit status; stderr reaches the log, under the
//!   log limits; stdout past `limits.response_bytes` is a limit;
//! - without a preopen the command cannot open its fixture; `..` and a symlink do not
//!   lead out of the preopened directory; a preopen that does not exist refuses the
//!   config when it is loaded; `hybrid check` says it is a `wasi:cli` command.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use hybrid::config::{Config, Limit};
use hybrid::local::{NamedTensor, Tensor};
use hybrid::runtime::{PipelineError, Runtime};
use hybrid_tests::edge_box::{Answer, EdgeBox, Scratch, agent, send};
use hybrid_tests::{component, configured_model, hybrid_bin, root};
use serde_json::{Value, json};

/// The command's file in the target directory (`just guests` builds it).
fn command_wasm() -> PathBuf {
    component("nn-onnx-command")
}

/// The grey levels of `samples/smoke/digit.json`.
fn digit_levels() -> Vec<f32> {
    let body = std::fs::read(root().join("samples/smoke/digit.json")).expect("digit.json");
    let json: Value = serde_json::from_slice(&body).expect("json");
    json["pixels"]
        .as_array()
        .expect("pixels")
        .iter()
        .map(|p| p.as_f64().expect("number") as f32)
        .collect()
}

/// The model's input for the digit: levels / 16, as little-endian FP32 bytes.
fn digit_tensor() -> Vec<u8> {
    digit_levels()
        .iter()
        .flat_map(|l| (l / 16.0).to_le_bytes())
        .collect()
}

/// A box serving the command as several pipelines (one per configuration under test) and
/// `nn-classify`, in a scratch folder holding `fixture/model.onnx` and, beside it,
/// `outside/model.onnx` that no pipeline preopens.
struct CommandBox {
    // Stops before the folder goes.
    edge: EdgeBox,
    dir: Scratch,
}

impl CommandBox {
    fn start() -> Self {
        let dir = Scratch::new("nn-command");
        let digits = configured_model("digits-v1", "models/train-digits");
        let onnx = std::fs::read(&digits.path).expect("digits model");
        for folder in ["fixture", "outside"] {
            std::fs::create_dir_all(dir.0.join(folder)).expect("folder");
            std::fs::write(dir.0.join(folder).join("model.onnx"), &onnx).expect("model");
        }
        #[cfg(unix)]
        std::os::unix::fs::symlink("../outside/model.onnx", dir.0.join("fixture/link.onnx"))
            .expect("symlink");
        let wasm = command_wasm();
        let pipeline = |name: &str, extra: &str| {
            format!(
                "[[pipeline]]\nname = \"{name}\"\ncomponent = {wasm:?}\n\
                 quarantine = {{ after = 0 }}\n{extra}\n"
            )
        };
        let fixture = "preopens = { \"fixture\" = \"fixture\" }";
        let probabilities = r#"args = ["--output", "probabilities"#;
        let mut config = format!(
            "[admin]\ntoken_env = \"HYBRID_ADMIN_TOKEN\"\n\n\
             [runtime.nn]\nload_bytes_max = 4096\n\n\
             [[model]]\nname = \"digits-v1\"\nversion = {:?}\npath = {:?}\nsha256 = {:?}\n\
             input = [{{ name = \"input\", type = \"fp32\", shape = [\"N\", 64] }}]\n\n\
             [[pipeline]]\nname = \"nn-classify\"\ncomponent = {:?}\n\n",
            digits.version,
            digits.path,
            digits.sha256,
            component("nn_classify"),
        );
        for (name, extra) in [
            (
                "command",
                format!("{fixture}\n{probabilities}\"]\ncontent_type = \"application/json\""),
            ),
            ("raw", format!("{fixture}\n{probabilities}\", \"--raw\"]")),
            ("bad-args", format!("{fixture}\nargs = [\"--bogus\"]")),
            (
                "verbose",
                format!("{fixture}\n{probabilities}\", \"--verbose\"]"),
            ),
            (
                "verbose-capped",
                format!(
                    "{fixture}\n{probabilities}\", \"--verbose\"]\nlimits = {{ log_lines = 2 }}"
                ),
            ),
            (
                "tiny",
                format!("{fixture}\n{probabilities}\"]\nlimits = {{ response_bytes = 16 }}"),
            ),
            (
                "env",
                format!(
                    "{fixture}\n{probabilities}\"]\nenv = {{ NN_ONNX_TOP = \"2\" }}\n\
                     content_type = \"application/json\""
                ),
            ),
            ("no-preopen", format!("{probabilities}\"]")),
            (
                "dot-dot",
                format!(
                    "{fixture}\n{probabilities}\", \"--model\", \"fixture/../outside/model.onnx\"]"
                ),
            ),
            (
                "symlink",
                format!("{fixture}\n{probabilities}\", \"--model\", \"fixture/link.onnx\"]"),
            ),
        ] {
            config.push_str(&pipeline(name, &extra));
        }
        std::fs::write(dir.0.join("hybrid.toml"), config).expect("config");
        // Set on the host: no guest may see it (only its pipeline's `env`).
        let edge = EdgeBox::start_with_env(&dir.0, &[], &[("NN_ONNX_TOP", "7")]);
        Self { edge, dir }
    }

    /// POSTs `body` to pipeline `name`.
    fn post(&self, name: &str, content_type: &str, body: &[u8]) -> Answer {
        let url = format!("{}/v1/pipelines/{name}", self.edge.base);
        send(&agent(), "POST", &url, None, Some((content_type, body)))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("hybrid.log")).expect("log")
    }
}

/// The body of an answer's envelope as bytes (JSON text, text, or base64).
fn body_bytes(envelope: &Value) -> Vec<u8> {
    match (&envelope["body_base64"], &envelope["body"]) {
        (Value::String(b64), _) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("base64"),
        (_, Value::String(text)) => text.as_bytes().to_vec(),
        (_, other) => other.to_string().into_bytes(),
    }
}

fn f32s(values: &Value) -> Vec<f32> {
    values
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| v.as_f64().expect("a number") as f32)
        .collect()
}

/// `digits-v1` on the digit, through tract directly.
fn tract_probabilities() -> Vec<f32> {
    let models =
        hybrid::local::ModelRegistry::load(&[configured_model("digits-v1", "models/train-digits")])
            .expect("model loads");
    let input: Vec<f32> = digit_levels().iter().map(|l| l / 16.0).collect();
    let run = models
        .run(
            "digits-v1",
            vec![NamedTensor {
                name: "input".into(),
                tensor: Tensor::from_f32(vec![1, 64], &input),
            }],
        )
        .expect("tract runs");
    run.outputs
        .iter()
        .find(|o| o.name == "probabilities")
        .and_then(|o| o.tensor.to_f32())
        .expect("probabilities")
}

fn error_message(answer: &Answer) -> String {
    answer.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn the_outside_command_gives_the_probabilities_nn_classify_and_tract_give() {
    let b = CommandBox::start();
    let answer = b.post("command", "application/octet-stream", &digit_tensor());
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let envelope = answer.json();
    assert_eq!(envelope["content_type"], "application/json");
    let scores = f32s(&envelope["body"]["scores"]);

    let pixels = json!({ "pixels": digit_levels() }).to_string();
    let classified = b.post("nn-classify", "application/json", pixels.as_bytes());
    assert_eq!(classified.status, 200);
    let probabilities = f32s(&classified.json()["body"]["probabilities"]);

    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(&scores),
        bits(&probabilities),
        "the same as nn-classify"
    );
    assert_eq!(
        bits(&scores),
        bits(&tract_probabilities()),
        "the same as tract"
    );
    let label = envelope["body"]["top"][0][0].as_u64().expect("top class");
    assert_eq!(json!(label), classified.json()["body"]["label"]);
    assert_eq!(envelope["local_runs"][0]["model"], "wasi-nn-bytes");
    assert_eq!(
        envelope["local_runs"][0]["calls"], 1,
        "one compute, recorded"
    );
}

#[test]
fn stdin_to_stdout_round_trip_gives_the_output_tensor_bit_for_bit() {
    let b = CommandBox::start();
    let answer = b.post("raw", "application/octet-stream", &digit_tensor());
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let envelope = answer.json();
    assert_eq!(
        envelope["content_type"], "application/octet-stream",
        "the default"
    );
    let expected: Vec<u8> = tract_probabilities()
        .iter()
        .flat_map(|p| p.to_le_bytes())
        .collect();
    assert_eq!(body_bytes(&envelope), expected);
}

#[test]
fn a_non_zero_exit_is_a_500_naming_the_exit_status_and_the_reason() {
    let b = CommandBox::start();
    let short = b.post("command", "application/octet-stream", b"abc");
    assert_eq!(short.status, 500);
    let message = error_message(&short);
    assert!(
        message.contains("exited with status 1")
            && message.contains("the tensor has 3 bytes; FP32 values take 4 bytes each"),
        "{message}"
    );
    assert_eq!(short.json()["error"]["code"], "command_failed");

    // The command ends with `ExitCode::from(2)` here; WASI 0.2's `exit` carries only
    // success or failure (`exit-with-code` is unstable), so the status is 1.
    let bad_args = b.post("bad-args", "application/octet-stream", &digit_tensor());
    assert_eq!(bad_args.status, 500);
    let message = error_message(&bad_args);
    assert!(
        message.contains("exited with status 1")
            && message.contains("unknown argument \"--bogus\""),
        "{message}"
    );

    let wrong_shape = b.post("command", "application/octet-stream", &[0u8; 4 * 63]);
    let message = error_message(&wrong_shape);
    assert!(
        message.contains("exited with status 1") && message.contains("compute: invalid-argument"),
        "{message}"
    );
}

#[test]
fn stderr_reaches_the_log_under_the_log_limits() {
    let b = CommandBox::start();
    let answer = b.post("verbose", "application/octet-stream", &digit_tensor());
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let log = b.log();
    let line = log
        .lines()
        .find(|l| l.contains("model \"fixture/model.onnx\": 3327 bytes"))
        .unwrap_or_else(|| panic!("the command's stderr is in the log:\n{log}"));
    assert!(line.contains("verbose"), "tagged with the pipeline: {line}");

    let capped = b.post(
        "verbose-capped",
        "application/octet-stream",
        &digit_tensor(),
    );
    assert_eq!(capped.status, 500);
    let message = error_message(&capped);
    assert!(message.contains("limits.log_lines"), "{message}");
    assert_eq!(capped.json()["error"]["code"], "limit_exceeded");
}

#[test]
fn the_command_sees_its_pipelines_env_and_nothing_of_the_hosts() {
    let b = CommandBox::start();
    let top = |pipeline: &str| {
        let answer = b.post(pipeline, "application/octet-stream", &digit_tensor());
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        answer.json()["body"]["top"].as_array().map(Vec::len)
    };
    assert_eq!(top("env"), Some(2), "NN_ONNX_TOP from the pipeline's env");
    assert_eq!(top("command"), Some(5), "not the host's NN_ONNX_TOP=7");
}

/// An in-process runtime serving the command as pipeline `command` with `extra` config
/// lines, its fixture in `dir`.
fn command_runtime(dir: &Scratch, extra: &str) -> Runtime {
    std::fs::create_dir_all(dir.0.join("fixture")).expect("fixture");
    let digits = configured_model("digits-v1", "models/train-digits");
    std::fs::copy(&digits.path, dir.0.join("fixture/model.onnx")).expect("model");
    let config = format!(
        "[runtime.nn]\nload_bytes_max = 4096\n\n[[pipeline]]\nname = \"command\"\n\
         component = {:?}\npreopens = {{ \"fixture\" = \"fixture\" }}\n\
         args = [\"--output\", \"probabilities\"]\n{extra}\n",
        command_wasm()
    );
    let path = dir.0.join("hybrid.toml");
    std::fs::write(&path, config).expect("config");
    Runtime::from_config(&Config::load(&path).expect("config")).expect("loads")
}

#[test]
fn a_command_stopped_by_a_limit_is_named_like_any_pipeline() {
    let request = hybrid_tests::request(digit_tensor(), "application/octet-stream", &[]);
    let dir = Scratch::new("nn-command-fuel");
    let rt = command_runtime(&dir, "limits = { fuel = 2000 }");
    let error = rt.handle("command", &request).expect_err("out of fuel");
    assert!(
        matches!(
            &error,
            PipelineError::LimitExceeded {
                limit: Limit::Fuel,
                ..
            }
        ),
        "{error:?}"
    );
    let dir = Scratch::new("nn-command-runs");
    let rt = command_runtime(&dir, "limits = { model_runs = 1 }");
    // `load` and `compute` are a model run each: the compute is refused, the command
    // exits 1, and the request ends with the limit rather than the exit.
    let error = rt.handle("command", &request).expect_err("past model_runs");
    assert!(
        matches!(
            &error,
            PipelineError::LimitExceeded {
                limit: Limit::ModelRuns,
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn a_command_runs_once_per_instance() {
    let dir = Scratch::new("nn-command-once");
    let rt = command_runtime(&dir, "");
    let mut instance = rt.instantiate("command", "once").expect("instantiates");
    let request = hybrid_tests::request(digit_tensor(), "application/octet-stream", &[]);
    let first = instance.handle(&request).expect("the first run answers");
    assert!(
        first
            .response
            .body
            .starts_with(b"{\"output\":\"probabilities\"")
    );
    let second = instance
        .handle(&request)
        .expect_err("no second run")
        .to_string();
    assert!(second.contains("runs once per instance"), "{second}");
    // Each request of the server gets its own instance.
    for _ in 0..2 {
        rt.handle("command", &request)
            .expect("a fresh instance answers");
    }
}

#[test]
fn stdout_past_the_response_limit_ends_the_request() {
    let b = CommandBox::start();
    let answer = b.post("tiny", "application/octet-stream", &digit_tensor());
    assert_eq!(answer.status, 500);
    let message = error_message(&answer);
    assert!(message.contains("limits.response_bytes"), "{message}");
}

#[test]
fn without_a_preopen_the_command_cannot_open_its_fixture() {
    let b = CommandBox::start();
    let answer = b.post("no-preopen", "application/octet-stream", &digit_tensor());
    assert_eq!(answer.status, 500);
    let message = error_message(&answer);
    assert!(
        message.contains("exited with status 1")
            && message.contains("cannot read the model \"fixture/model.onnx\""),
        "{message}"
    );
}

#[test]
fn the_guest_cannot_leave_its_preopened_directory() {
    let b = CommandBox::start();
    for (pipeline, path) in [
        ("dot-dot", "fixture/../outside/model.onnx"),
        ("symlink", "fixture/link.onnx"),
    ] {
        let answer = b.post(pipeline, "application/octet-stream", &digit_tensor());
        assert_eq!(answer.status, 500, "{pipeline}: the model outside was read");
        let message = error_message(&answer);
        assert!(
            message.contains(&format!("cannot read the model {path:?}")),
            "{pipeline}: {message}"
        );
    }
    // The same model inside the directory is read: the refusals above are the escapes'.
    let inside = b.post("command", "application/octet-stream", &digit_tensor());
    assert_eq!(inside.status, 200);
}

#[test]
fn a_missing_preopen_directory_refuses_the_config_when_it_is_loaded() {
    let dir = Scratch::new("nn-command-missing");
    let config = format!(
        "[[pipeline]]\nname = \"command\"\ncomponent = {:?}\n\
         preopens = {{ \"fixture\" = \"no-such-dir\" }}\n",
        command_wasm()
    );
    let path = dir.0.join("hybrid.toml");
    std::fs::write(&path, config).expect("config");
    let config = Config::load(&path).expect("the config parses: paths are checked at load");
    let error = Runtime::from_config(&config)
        .err()
        .expect("refused at load")
        .to_string();
    assert!(
        error.contains("pipeline \"command\"")
            && error.contains("preopens: \"fixture\"")
            && error.contains("no-such-dir")
            && error.contains("cannot be opened as a directory"),
        "{error}"
    );
    assert!(Path::new(&dir.0).join("hybrid.toml").exists());
}

#[test]
fn hybrid_check_names_it_a_wasi_cli_command() {
    let out = std::process::Command::new(hybrid_bin())
        .arg("check")
        .arg(command_wasm())
        .output()
        .expect("hybrid check runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("is a wasi:cli command (exports wasi:cli/run@0.2."),
        "{stdout}"
    );
    assert!(stdout.contains("hybrid imports: none"), "{stdout}");
    assert!(
        stdout.contains("wasi:nn/graph@0.2.0-rc-2024-10-28"),
        "{stdout}"
    );
}
