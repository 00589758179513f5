//! A real `hybrid serve` process with its admin API on loopback, in a folder of its own
//! (config, state directory, logs), for the deploy tests; and the ways tests make a
//! second version of a component or model.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::hybrid_bin;

/// The admin token every test box is started with.
pub use crate::secrets::ADMIN_TOKEN;

/// A running `hybrid serve`; killed when dropped (its folder stays until the test's
/// [`Scratch`] goes).
pub struct EdgeBox {
    child: Child,
    /// Its log file, checked for secrets when the box stops.
    log: PathBuf,
    /// `http://127.0.0.1:<port>` of the main listener.
    pub base: String,
    /// `http://127.0.0.1:<port>` of the admin API.
    pub admin: String,
}

/// A temporary folder removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A new empty folder named after `what`.
    pub fn new(what: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "hybrid-{what}-{}-{:08x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).expect("scratch folder");
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl EdgeBox {
    /// Starts `hybrid serve --config <dir>/hybrid.toml` with `extra` arguments, main and
    /// admin listeners on free ports, and waits until it serves. `config` must have an
    /// `[admin]` section naming `HYBRID_ADMIN_TOKEN`.
    pub fn start(dir: &Path, extra: &[&str]) -> Self {
        Self::start_with_env(dir, extra, &[])
    }

    /// [`EdgeBox::start`] with environment variables added (or overriding the defaults:
    /// the admin token and `HYBRID_LOG=info`).
    pub fn start_with_env(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let config = dir.join("hybrid.toml");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("hybrid.log"))
            .expect("log file");
        let mut child = Command::new(hybrid_bin())
            .args(["serve", "--config", config.to_str().expect("utf8")])
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .args(extra)
            .env("HYBRID_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("HYBRID_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("hybrid serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut admin = None;
        let mut base = None;
        while base.is_none() {
            let Some(Ok(line)) = lines.next() else {
                let log = std::fs::read_to_string(dir.join("hybrid.log")).unwrap_or_default();
                panic!("hybrid serve stopped before serving; log:\n{log}");
            };
            if let Some(url) = line.strip_prefix("hybrid admin API on ") {
                admin = Some(url.to_owned());
            } else if let Some(url) = line.strip_prefix("hybrid serving on ") {
                base = Some(url.to_owned());
            }
        }
        // Keep draining stdout so the process never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self {
            child,
            log: dir.join("hybrid.log"),
            base: base.unwrap_or_default(),
            admin: admin.expect("the admin API is on"),
        }
    }

    /// Stops the process (SIGKILL: a crash, the harshest restart).
    pub fn kill(self) {
        drop(self);
    }
}

impl Drop for EdgeBox {
    /// Stops the process and checks its whole log for secrets (unless the test is
    /// already failing: its own message matters more).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let log = std::fs::read(&self.log).unwrap_or_default();
            crate::secrets::assert_clean(&format!("the log {}", self.log.display()), &log);
        }
    }
}

/// An HTTP agent that returns every status as a response.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .new_agent()
}

/// An answer: status, the `x-hybrid-*` headers asked for, and the body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// `x-hybrid-component`, empty if absent.
    pub component: String,
    /// `x-hybrid-model`, empty if absent.
    pub model: String,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON (`null` if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Sends `method path` to `b`'s admin API with the admin token.
pub fn admin(b: &EdgeBox, method: &str, path: &str, body: Option<(&str, &[u8])>) -> Answer {
    send(
        &agent(),
        method,
        &format!("{}{path}", b.admin),
        Some(ADMIN_TOKEN),
        body,
    )
}

/// Sends `method url` with an optional bearer token and body.
pub fn send(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<(&str, &[u8])>,
) -> Answer {
    let auth = token.map(|t| format!("Bearer {t}"));
    let result = match (method, body) {
        ("GET", _) => {
            let mut r = agent.get(url);
            if let Some(a) = &auth {
                r = r.header("authorization", a);
            }
            r.call()
        }
        (m, body) => {
            let mut r = if m == "PUT" {
                agent.put(url)
            } else {
                agent.post(url)
            };
            if let Some(a) = &auth {
                r = r.header("authorization", a);
            }
            match body {
                Some((ct, bytes)) => r.header("content-type", ct).send(bytes),
                None => r.send_empty(),
            }
        }
    };
    let mut response = result.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (component, model) = (header("x-hybrid-component"), header("x-hybrid-model"));
    let body = response.body_mut().read_to_vec().unwrap_or_default();
    crate::secrets::assert_clean(&format!("the answer to {method} {url}"), &body);
    Answer {
        status: response.status().as_u16(),
        component,
        model,
        body,
    }
}

/// Sends only a request head (`request` is `METHOD /path`) with `headers`, declaring
/// `length` body bytes, to `base` (`http://host:port`), and reads the answer: how a server
/// refuses an oversized body before reading it.
pub fn declared_only(base: &str, request: &str, headers: &[&str], length: usize) -> (u16, String) {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut head = format!("{request} HTTP/1.1\r\nhost: {addr}\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str(&format!(
        "content-length: {length}\r\nconnection: close\r\n\r\n"
    ));
    stream.write_all(head.as_bytes()).expect("write head");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

/// A second version of a component: the same code with a custom section appended
/// (custom sections may appear anywhere in a component), so its sha256 differs.
pub fn component_variant(wasm: &[u8], tag: &str) -> Vec<u8> {
    let mut payload = Vec::new();
    let name = b"hybrid-test-variant";
    leb128(&mut payload, name.len() as u64);
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    let mut out = wasm.to_vec();
    out.push(0); // custom section id
    leb128(&mut out, payload.len() as u64);
    out.extend_from_slice(&payload);
    out
}

/// A second version of an ONNX model: the same graph with an unknown protobuf field
/// (number 1000) appended to the `ModelProto`, which parsers skip, so its sha256 differs.
pub fn onnx_variant(onnx: &[u8], tag: &str) -> Vec<u8> {
    let mut out = onnx.to_vec();
    leb128(&mut out, (1000 << 3) | 2); // field 1000, length-delimited
    leb128(&mut out, tag.len() as u64);
    out.extend_from_slice(tag.as_bytes());
    out
}

fn leb128(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// The sha256 of `bytes` in lower-case hex.
pub fn sha256(bytes: &[u8]) -> String {
    hybrid::local::sha256_bytes(bytes)
}

/// A `[[pipeline]]` table for the test pipeline at `component`, with a smoke request
/// that posts `ping.txt` (the caller writes it beside the config) and wants 200; `extra`
/// lines go into the table (`quarantine = ...`, `limits = ...`).
pub fn echo_pipeline(
    name: &str,
    component: &Path,
    deadline_ms: u64,
    memory_mib: u64,
    extra: &str,
) -> String {
    format!(
        r#"
[[pipeline]]
name = "{name}"
component = "{}"
deadline_ms = {deadline_ms}
memory_mib = {memory_mib}
{extra}
[[pipeline.smoke]]
body = "ping.txt"
content_type = "text/plain"
status = 200
"#,
        component.display()
    )
}
