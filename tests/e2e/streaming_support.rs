//! What the streaming tests share: `hybrid serve` running a chat pipeline against the
//! serverless simulator, and a client that reads server-sent events as they arrive, with
//! their arrival times.

#![allow(dead_code)] // Each test binary uses its own part.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hybrid_sim::{ApiKey, Scenario, SimConfig, SimHandle, spawn};
use hybrid_tests::{component, hybrid_bin};
use serde_json::{Value, json};

pub const KEY: &str = "sk-streaming-test-51c0";
pub const KEY_VAR: &str = "HYBRID_STREAMING_TEST_KEY";
pub const ROUTE: &str = "/v1/chat/completions";

/// A running `hybrid serve`; stops when dropped.
pub struct Served {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    dir: PathBuf,
}

impl Served {
    /// What `hybrid serve` has logged so far (stderr): sizes, routes and timings, and the
    /// guests' log lines.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn sim(scenario: &str) -> SimHandle {
    spawn(
        SimConfig::with_key(ApiKey::new(KEY).expect("key"))
            .scenario(Scenario::from_toml(scenario).expect("scenario")),
    )
    .expect("simulator starts")
}

/// `hybrid serve` with pipeline `chat` (chat-router built from source, or `chat_wasm`)
/// and `endpoints` (TOML) at `sim`; `extra` is appended.
pub fn serve(sim: &SimHandle, chat_wasm: &std::path::Path, endpoints: &str, extra: &str) -> Served {
    let dir = std::env::temp_dir().join(format!(
        "hybrid-streaming-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let deadline = if extra.contains("deadline_ms") {
        ""
    } else {
        "deadline_ms = 30000"
    };
    let config = format!(
        r#"
[[pipeline]]
name = "chat"
component = "{chat}"
{deadline}
{extra}

[[openai_model]]
id = "house-llm"
kind = "chat"
pipeline = "chat"

{endpoints}
"#,
        chat = chat_wasm.display(),
        endpoints = endpoints.replace("SIM_URL", &sim.base_url()),
    );
    let path = dir.join("hybrid.toml");
    std::fs::write(&path, config).expect("config");
    let mut child = Command::new(hybrid_bin())
        .args(["serve", "--config", path.to_str().expect("utf8")])
        .args(["--listen", "127.0.0.1:0"])
        .env(KEY_VAR, KEY)
        // The guests' log lines (info) say how each stream was relayed.
        .env("HYBRID_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("stderr")).expect("stderr file"))
        .spawn()
        .expect("hybrid serve starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("first line");
    let base = line
        .trim()
        .strip_prefix("hybrid serving on ")
        .unwrap_or_else(|| {
            let _ = child.wait();
            let stderr = std::fs::read_to_string(dir.join("stderr")).unwrap_or_default();
            panic!("unexpected first line {line:?}; stderr: {stderr}")
        })
        .to_owned();
    Served { child, base, dir }
}

/// One chat endpoint named `name` at the simulator, `settings` (TOML pairs) added; the
/// price is `settings`' if it sets one.
pub fn endpoint(name: &str, settings: &str) -> String {
    let price = if settings.contains("price") {
        ""
    } else {
        "price = { input_per_mtok = 1.0, output_per_mtok = 2.0 }"
    };
    format!(
        r#"
[[endpoint]]
name = "{name}"
kind = "chat"
base_url = "SIM_URL"
api_key_env = "{KEY_VAR}"
model = "llama3.3-70b-instruct"
max_attempts = 1
{price}
{settings}
"#
    )
}

pub fn chat_router() -> PathBuf {
    component("chat_router")
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent()
}

/// A request whose reply (the simulator quotes the last message) has `words` words.
pub fn body(stream: bool, words: usize) -> String {
    let text: Vec<String> = (0..words).map(|i| format!("w{i}")).collect();
    json!({
        "model": "house-llm",
        "stream": stream,
        "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": text.join(" ")}],
    })
    .to_string()
}

/// An SSE event as the client saw it, with when it arrived.
pub struct Event {
    /// Since the request was sent.
    pub at: Duration,
    /// The `data:` line.
    pub data: String,
}

/// POSTs a streamed chat and reads the events as they arrive; `stop_after` events, if
/// set, then drops the connection.
pub fn stream_chat(
    s: &Served,
    body: &str,
    headers: &[(&str, &str)],
    stop_after: Option<usize>,
) -> (u16, ureq::http::HeaderMap, Vec<Event>) {
    let started = Instant::now();
    let mut request = agent()
        .post(&format!("{}{ROUTE}", s.base))
        .header("content-type", "application/json");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let mut response = request.send(body.as_bytes()).expect("answered");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let mut events = Vec::new();
    let reader = BufReader::new(response.body_mut().as_reader());
    for line in reader.lines() {
        let Ok(line) = line else { break };
        if let Some(data) = line.strip_prefix("data: ") {
            events.push(Event {
                at: started.elapsed(),
                data: data.to_owned(),
            });
            if stop_after.is_some_and(|n| events.len() >= n) {
                break;
            }
        }
    }
    (status, headers, events)
}

pub fn content_of(event: &Event) -> Option<String> {
    let v: Value = serde_json::from_str(&event.data).ok()?;
    v.pointer("/choices/0/delta/content")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
}

pub fn post_json(
    s: &Served,
    body: &str,
    headers: &[(&str, &str)],
) -> (u16, ureq::http::HeaderMap, Value) {
    let mut request = agent()
        .post(&format!("{}{ROUTE}", s.base))
        .header("content-type", "application/json");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let mut response = request.send(body.as_bytes()).expect("answered");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.body_mut().read_to_string().expect("body");
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

pub fn metrics(s: &Served) -> String {
    agent()
        .get(&format!("{}/metrics", s.base))
        .call()
        .expect("metrics")
        .body_mut()
        .read_to_string()
        .expect("text")
}
