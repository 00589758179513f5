//! The `hybrid-sim` binary as tests and the demo run it: it prints exactly one listening
//! line on stdout, serves, never writes the key to its logs even at trace level, stops on
//! SIGTERM, and refuses to start without a key.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

const KEY: &str = "sk-sim-binary-3c9e11d0b4";

fn sim_binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hybrid-sim"))
}

#[test]
fn serves_and_never_logs_the_key() {
    let mut child = sim_binary()
        .args(["--listen", "127.0.0.1:0", "--sequence", "503,ok"])
        .env("HYBRID_SIM_KEY", KEY)
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("listening line");
    let base = line
        .trim_end()
        .strip_prefix("hybrid-sim listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    assert!(
        base.starts_with("http://127.0.0.1:") && base.ends_with("/v1"),
        "{base}"
    );

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .new_agent();
    let chat = r#"{"model":"llama3.3-70b-instruct","messages":[{"role":"user","content":"hi"}]}"#;
    let mut statuses = Vec::new();
    for authorization in [
        format!("Bearer {KEY}"),
        format!("Bearer {KEY}"),
        "Bearer wrong".into(),
    ] {
        let mut response = agent
            .post(format!("{base}/chat/completions"))
            .header("Authorization", authorization)
            .content_type("application/json")
            .send(chat)
            .expect("answered");
        statuses.push(response.status().as_u16());
        let body = response.body_mut().read_to_string().expect("body");
        assert!(!body.contains(KEY));
    }
    assert_eq!(statuses, [503, 200, 401]);

    // SIGTERM stops it cleanly.
    let terminated = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(terminated.success());
    let status = child.wait().expect("exits");
    assert!(status.success(), "{status:?}");

    let mut rest = String::new();
    stdout.read_to_string(&mut rest).expect("stdout");
    assert_eq!(rest, "", "stdout carries only the listening line");
    let mut logs = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut logs)
        .expect("stderr");
    assert!(logs.contains("answered"), "requests are logged: {logs}");
    assert!(!logs.contains(KEY), "the key leaked into the logs");
}

#[test]
fn refuses_to_start_without_a_key() {
    let output = sim_binary()
        .args([
            "--listen",
            "127.0.0.1:0",
            "--api-key-env",
            "HYBRID_SIM_TEST_NO_SUCH_VAR",
        ])
        .env_remove("HYBRID_SIM_KEY")
        .output()
        .expect("binary runs");
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no API key"), "{stderr}");
}
