//! A pipeline written in Python, end to end: `guest-python/redact_chat` built into a
//! component by componentize-py (`guest-python/build`), served by the real `hybrid serve`
//! over loopback, calling the serverless simulator's `/v1/chat/completions`.
//!
//! Checked: a chat holding an e-mail address and a phone number is answered 200 with the
//! redacted count and a `remote:chat` routing record, and the text that reached the
//! simulator (which quotes the last user message in its reply) holds placeholders, not the
//! personal data; the guest's one log line reaches the host's log; bad JSON is 400 without
//! a serverless call.

use std::path::{Path, PathBuf};

use hybrid_sim::{SimConfig, SimHandle};
use hybrid_tests::edge_box::{EdgeBox, Scratch, agent, send};
use hybrid_tests::target_dir;
use serde_json::{Value, json};

/// The simulator's chat route.
const ROUTE: &str = "/v1/chat/completions";
/// The endpoint's configured model id.
const PROVIDER_MODEL: &str = "llama3.3-70b-instruct";
/// The personal data in the test chat.
const EMAIL: &str = "ada.lovelace@example.com";
const PHONE: &str = "+44 20 7946 0958";

/// The component `guest-python/build` makes; its absence fails the test, naming the fix.
fn redact_chat_wasm() -> PathBuf {
    let path = target_dir().join("wasm32-wasip2/release/redact_chat.wasm");
    assert!(
        path.exists(),
        "{} is missing: run `guest-python/build` (needs python3 and PyPI) first",
        path.display()
    );
    path
}

/// Writes `<dir>/hybrid.toml`: the admin API (which `EdgeBox` needs), the `chat` endpoint
/// on `sim`, and the Python pipeline as `redact`.
fn write_config(dir: &Path, sim: &SimHandle, wasm: &Path) {
    let config = format!(
        r#"
[admin]
token_env = "HYBRID_ADMIN_TOKEN"

[deploy]
state_dir = "{state}"

[[endpoint]]
name = "chat"
kind = "chat"
base_url = "{sim}"
model = "{PROVIDER_MODEL}"
price = {{ input_per_mtok = 0.65, output_per_mtok = 0.65 }}
timeout_ms = 10000
max_attempts = 1

# CPython's pre-initialised heap is 12.4 MiB before the first request.
[[pipeline]]
name = "redact"
component = "{wasm}"
deadline_ms = 10000
memory_mib = 32
"#,
        state = dir.join("state").display(),
        sim = sim.base_url(),
        wasm = wasm.display(),
    );
    std::fs::write(dir.join("hybrid.toml"), config).expect("config");
}

fn post(b: &EdgeBox, content_type: &str, body: &[u8]) -> (u16, Value) {
    let answer = send(
        &agent(),
        "POST",
        &format!("{}/v1/pipelines/redact", b.base),
        None,
        Some((content_type, body)),
    );
    (answer.status, answer.json())
}

#[test]
fn personal_data_is_redacted_before_the_serverless_call() {
    let wasm = redact_chat_wasm();
    let scratch = Scratch::new("python-plugin");
    let sim = hybrid_sim::spawn(SimConfig::without_auth()).expect("simulator starts");
    write_config(&scratch.0, &sim, &wasm);
    let b = EdgeBox::start(&scratch.0, &[]);

    let chat = json!({"messages": [
        {"role": "system", "content": format!("Never repeat {EMAIL}.")},
        {"role": "user", "content": format!("Mail {EMAIL} or call {PHONE} today")},
    ]});
    let (status, envelope) = post(&b, "application/json", chat.to_string().as_bytes());
    assert_eq!(status, 200, "{envelope}");

    let body = &envelope["body"];
    assert_eq!(body["redacted"], 3, "two e-mails and a phone: {envelope}");
    // The simulator quotes the last user message as it arrived: redacted.
    assert_eq!(
        body["content"],
        "sim reply to: Mail [EMAIL] or call [PHONE] today"
    );
    let reply = body["content"].as_str().unwrap_or_default();
    assert!(!reply.contains(EMAIL) && !reply.contains("7946"), "{reply}");

    let routing = &envelope["routing"];
    assert_eq!(routing["route"], "remote:chat");
    assert_eq!(
        routing["reason"],
        "redacted 3 item(s) (2 e-mail, 1 phone) before the serverless call"
    );
    assert_eq!(routing["model"], PROVIDER_MODEL);
    assert_eq!(sim.stats().count(ROUTE, 200), 1);

    // The guest's log line (counts, never text) went through the `log` import.
    let log = std::fs::read_to_string(scratch.0.join("hybrid.log")).expect("host log");
    assert!(
        log.contains("redacted 2 e-mail(s) and 1 phone number(s) in 2 message(s)"),
        "{log}"
    );
    assert!(!log.contains(EMAIL), "the log holds personal data:\n{log}");

    // Bad JSON is the guest's `bad-request`: 400, and nothing leaves the box.
    let (status, error) = post(&b, "application/json", b"{\"messages\": [");
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["error"]["code"], "bad_request", "{error}");
    let message = error["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("not valid JSON"), "{error}");
    assert_eq!(
        sim.stats().requests_total,
        1,
        "bad JSON reached the provider"
    );
}
