//! `hybrid serve` over real sockets on loopback: every route, its errors, the
//! `x-hybrid-*` headers, admission control, metrics, and the life cycle (graceful drain on
//! SIGTERM, one-line errors for a taken port or an unreadable config).

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hybrid_sim::{ApiKey, Scenario, SimConfig, SimHandle, spawn};
use hybrid_tests::{component, hybrid_bin, root, sample};
use serde_json::{Value, json};

/// A real-looking key (see `hybrid_tests::secrets`).
const KEY: &str = hybrid_tests::secrets::SERVERLESS_KEY;

/// A running `hybrid serve` and the simulator behind it; both stop when dropped.
struct Served {
    child: Child,
    base: String,
    sim: SimHandle,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(sim_url: &str, extra: &str) -> String {
    let root = root();
    let vad = root.join("models/silero_vad_16k_sequence.onnx");
    format!(
        r#"
[runtime]
max_instances = 64

[[model]]
name = "silero-vad"
version = "6.2.3"
path = "{vad}"
sha256 = "9ccdacc4719d8aa7e45a77536bfabec45a03ba1f2fad5e241ab4060b24238a85"

[[pipeline]]
name = "voice-gate"
component = "{voice}"

[[pipeline]]
name = "test"
component = "{test}"
deadline_ms = 1500
memory_mib = 32

[[pipeline]]
name = "chat"
component = "{chat}"

[[openai_model]]
id = "llama3.3-70b-instruct"
kind = "chat"
pipeline = "chat"

[[endpoint]]
name = "chat"
kind = "chat"
base_url = "{sim_url}"
api_key_env = "HYBRID_SERVER_TEST_KEY"
model = "llama3.3-70b-instruct"
price = {{ input_per_mtok = 1.0, output_per_mtok = 2.0 }}
max_attempts = 1

[[endpoint]]
name = "transcribe"
kind = "transcription"
base_url = "{sim_url}"
api_key_env = "HYBRID_SERVER_TEST_KEY"
model = "whisper-large-v3"
price = {{ per_audio_second = 0.0001 }}

{extra}
"#,
        vad = vad.display(),
        voice = component("voice_gate").display(),
        test = component("test_pipeline").display(),
        chat = component("chat_router").display(),
    )
}

fn serve_with(extra: &str, scenario: &str) -> Served {
    let sim = spawn(
        SimConfig::with_key(ApiKey::new(KEY).expect("key"))
            .scenario(Scenario::from_toml(scenario).expect("scenario")),
    )
    .expect("sim");
    let dir = std::env::temp_dir().join(format!(
        "hybrid-serve-{}-{}",
        std::process::id(),
        fastrand_u32()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("hybrid.toml");
    std::fs::write(&path, config(&sim.base_url(), extra)).expect("config");
    let mut child = Command::new(hybrid_bin())
        .args([
            "serve",
            "--config",
            path.to_str().expect("utf8"),
            "--listen",
            "127.0.0.1:0",
        ])
        .env("HYBRID_SERVER_TEST_KEY", KEY)
        .env("HYBRID_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hybrid serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("first line");
    let base = line
        .trim()
        .strip_prefix("hybrid serving on ")
        .unwrap_or_else(|| {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("unexpected first line {line:?}; stderr: {err}")
        })
        .to_owned();
    Served {
        child,
        base,
        sim,
        _dir: TempDir(dir),
    }
}

fn serve() -> Served {
    serve_with("", "")
}

fn fastrand_u32() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent()
}

fn post(
    s: &Served,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, ureq::http::HeaderMap, Vec<u8>) {
    post_with(s, path, content_type, body, &[])
}

fn post_with(
    s: &Served,
    path: &str,
    content_type: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> (u16, ureq::http::HeaderMap, Vec<u8>) {
    let mut request = agent()
        .post(&format!("{}{path}", s.base))
        .header("content-type", content_type);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let mut response = request.send(body).expect("answered");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.body_mut().read_to_vec().expect("body");
    (status, headers, body)
}

fn get(s: &Served, path: &str) -> (u16, Vec<u8>) {
    let mut response = agent()
        .get(&format!("{}{path}", s.base))
        .call()
        .expect("answered");
    (
        response.status().as_u16(),
        response.body_mut().read_to_vec().expect("body"),
    )
}

/// Sends only a request head declaring `length` body bytes and reads the answer.
fn declared_only(s: &Served, path: &str, length: usize) -> (u16, String) {
    hybrid_tests::edge_box::declared_only(
        &s.base,
        &format!("POST {path}"),
        &["content-type: audio/wav"],
        length,
    )
}

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

fn header<'a>(headers: &'a ureq::http::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn chat_body(stream: bool) -> Vec<u8> {
    json!({
        "model": "llama3.3-70b-instruct",
        "messages": [{"role": "user", "content": "Is the edge box up?"}],
        "stream": stream,
        "stream_options": {"include_usage": true},
    })
    .to_string()
    .into_bytes()
}

#[test]
fn pipelines_answer_with_the_envelope_and_hybrid_headers() {
    let s = serve();
    let (status, headers, body) = post_with(
        &s,
        "/v1/pipelines/voice-gate?min_speech_ms=200",
        "audio/wav",
        &sample("speech-16k.wav"),
        &[("x-request-id", "client-id-42")],
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v = json(&body);
    assert_eq!(v["body"]["segments"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        v["body"]["params"]["min_speech_ms"], 200,
        "query parameters reach the guest"
    );
    assert_eq!(v["request_id"], "client-id-42");
    assert_eq!(header(&headers, "x-request-id"), "client-id-42");
    assert_eq!(
        header(&headers, "x-hybrid-route"),
        "local+remote:transcribe"
    );
    assert_eq!(header(&headers, "x-hybrid-model"), "whisper-large-v3");
    let egress: u64 = header(&headers, "x-hybrid-egress-bytes")
        .parse()
        .expect("egress");
    assert!(
        egress > 0 && egress < sample("speech-16k.wav").len() as u64,
        "only speech left the box: {egress}"
    );
    let cost: f64 = header(&headers, "x-hybrid-cost-usd").parse().expect("cost");
    assert!(cost > 0.0);

    // Metadata from x-hybrid-* headers: transcription off keeps everything on the box.
    let (status, headers, _) = post_with(
        &s,
        "/v1/pipelines/voice-gate",
        "audio/wav",
        &sample("speech-16k.wav"),
        &[("x-hybrid-transcribe", "off")],
    );
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "x-hybrid-route"), "local");
    assert_eq!(header(&headers, "x-hybrid-model"), "silero-vad@6.2.3");
    assert_eq!(header(&headers, "x-hybrid-cost-usd"), "0.000000");
    assert_eq!(header(&headers, "x-hybrid-egress-bytes"), "0");
    assert!(header(&headers, "x-request-id").starts_with("req-"));
}

#[test]
fn bad_requests_get_a_status_and_a_message_naming_the_problem() {
    let s = serve_with("[server]\nmax_body_bytes = 1048576", "");
    // A whole body (the limit, 1 MiB) is read before the refusal, so the client reads it.
    let (status, _, body) = post(&s, "/v1/pipelines/nope", "text/plain", &[b'x'; 1 << 20]);
    assert_eq!(status, 404);
    assert!(
        json(&body)["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("known pipelines: [chat, test, voice-gate]")
    );

    let (status, _, body) = post(
        &s,
        "/v1/pipelines/voice-gate?threshold=abc",
        "audio/wav",
        &sample("speech-16k.wav"),
    );
    assert_eq!(status, 400);
    assert!(
        json(&body)["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("threshold")
    );

    // The declared length alone is refused: the answer comes before any body is sent,
    // so the client never writes into a closed connection.
    let (status, body) = declared_only(&s, "/v1/pipelines/voice-gate", 2 << 20);
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("1048576"), "{body}");

    let (status, _, body) = post(&s, "/v1/chat/completions", "application/json", b"{not json");
    assert_eq!(status, 400);
    assert!(
        json(&body)["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("JSON")
    );

    let (status, _, _) = post(&s, "/v1/chat/completions", "text/plain", &chat_body(false));
    assert_eq!(status, 415);

    let (status, _, body) = post(
        &s,
        "/v1/chat/completions",
        "application/json",
        br#"{"model":"gpt-9","messages":[]}"#,
    );
    assert_eq!(status, 404);
    let error = &json(&body)["error"];
    assert_eq!(error["code"], "model_not_found");
    assert_eq!(error["param"], "model");
    assert_eq!(error["type"], "invalid_request_error");

    let (status, body) = get(&s, "/v2/nothing");
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("/v1/chat/completions"));

    let (status, _, body) = post_with(
        &s,
        "/v1/pipelines/test",
        "text/plain",
        b"x",
        &[("x-hybrid-mode", "trap")],
    );
    assert_eq!(status, 500);
    assert!(
        json(&body)["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("deliberate trap")
    );
}

#[test]
fn openai_chat_models_and_streaming() {
    let s = serve();
    let (status, body) = get(&s, "/v1/models");
    assert_eq!(status, 200);
    assert_eq!(json(&body)["data"][0]["id"], "llama3.3-70b-instruct");

    let (status, headers, body) = post(
        &s,
        "/v1/chat/completions",
        "application/json",
        &chat_body(false),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v = json(&body);
    assert_eq!(v["object"], "chat.completion");
    let content = v["choices"][0]["message"]["content"]
        .as_str()
        .expect("content")
        .to_owned();
    assert!(
        content.starts_with("sim reply to: Is the edge box up?"),
        "{content}"
    );
    assert!(v["usage"]["total_tokens"].as_u64() > Some(0));
    assert_eq!(header(&headers, "x-hybrid-route"), "remote:chat");

    let (status, headers, body) = post(
        &s,
        "/v1/chat/completions",
        "application/json",
        &chat_body(true),
    );
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), "text/event-stream");
    let text = String::from_utf8(body).expect("utf8");
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    let mut streamed = String::new();
    let mut usage = None;
    for data in text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
    {
        let chunk = json(data.as_bytes());
        assert_eq!(chunk["object"], "chat.completion.chunk");
        if let Some(piece) = chunk["choices"][0]["delta"]["content"].as_str() {
            streamed.push_str(piece);
        }
        if !chunk["usage"].is_null() {
            usage = Some(chunk["usage"].clone());
        }
    }
    assert_eq!(streamed, content);
    assert!(usage.is_some(), "include_usage adds a usage chunk");
}

#[test]
fn health_readiness_and_metrics() {
    let s = serve();
    assert_eq!(get(&s, "/healthz"), (200, b"ok".to_vec()));
    let (status, body) = get(&s, "/readyz");
    assert_eq!(status, 200);
    assert_eq!(json(&body)["ready"], true);
    post_with(
        &s,
        "/v1/pipelines/voice-gate",
        "audio/wav",
        &sample("speech-16k.wav"),
        &[],
    );
    post(
        &s,
        "/v1/chat/completions",
        "application/json",
        &chat_body(false),
    );
    let (status, body) = get(&s, "/metrics");
    assert_eq!(status, 200);
    let text = String::from_utf8(body).expect("utf8");
    let voice = short_sha("voice_gate");
    let chat = short_sha("chat_router");
    let full =
        hybrid_tests::edge_box::sha256(&std::fs::read(component("voice_gate")).expect("read"));
    for expected in [
        format!("hybrid_requests_total{{pipeline=\"voice-gate\",component=\"{voice}\",route=\"local+remote:transcribe\",outcome=\"ok\"}} 1"),
        format!("hybrid_requests_total{{pipeline=\"chat\",component=\"{chat}\",route=\"remote:chat\",outcome=\"ok\"}} 1"),
        format!("hybrid_component_traffic_percent{{pipeline=\"voice-gate\",component=\"{voice}\",sha256=\"{full}\",role=\"stable\"}} 100"),
    ]
    .iter()
    .map(String::as_str)
    .chain([
        "hybrid_local_model_duration_seconds_count{model=\"silero-vad\"}",
        "hybrid_remote_attempts_total{endpoint=\"chat\"} 1",
        "hybrid_cost_usd_total{pipeline=\"chat\",endpoint=\"chat\"}",
        "hybrid_egress_bytes_total{pipeline=\"voice-gate\",endpoint=\"transcribe\"}",
        "hybrid_circuit_state{endpoint=\"chat\"} 0",
        "hybrid_model_info{model=\"silero-vad\",version=\"6.2.3\"",
        "hybrid_in_flight 0",
    ]) {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}

#[test]
fn a_full_box_answers_503_with_retry_after_instead_of_hanging() {
    let s = serve_with(
        "[server]\nmax_concurrency = 1\nmax_queue = 0\nretry_after_s = 2",
        "",
    );
    let base = s.base.clone();
    let busy = std::thread::spawn(move || {
        agent()
            .post(&format!("{base}/v1/pipelines/test"))
            .header("x-hybrid-mode", "loop")
            .send(&b"x"[..])
            .map(|r| r.status().as_u16())
    });
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let (status, headers, body) = post(&s, "/v1/pipelines/test", "text/plain", b"x");
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    assert_eq!(header(&headers, "retry-after"), "2");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "refused at once"
    );
    assert_eq!(
        busy.join().expect("thread").expect("answered"),
        504,
        "the looping guest hits its deadline"
    );
}

#[test]
fn sigterm_drains_in_flight_requests_then_exits_zero() {
    let mut s = serve_with("", "latency_ms = 800");
    let base = s.base.clone();
    let in_flight = std::thread::spawn(move || {
        let mut response = agent()
            .post(&format!("{base}/v1/chat/completions"))
            .header("content-type", "application/json")
            .send(&chat_body(false)[..])
            .expect("answered");
        (
            response.status().as_u16(),
            response.body_mut().read_to_vec().expect("body"),
        )
    });
    std::thread::sleep(Duration::from_millis(300));
    let pid = s.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let (status, body) = in_flight.join().expect("thread");
    assert_eq!(
        status,
        200,
        "the in-flight request finished: {}",
        String::from_utf8_lossy(&body)
    );
    let exit = s.child.wait().expect("exits");
    assert_eq!(exit.code(), Some(0));
    assert_eq!(s.sim.stats().requests_total, 1);
}

#[test]
fn a_taken_port_and_an_unreadable_config_are_one_line_errors() {
    let s = serve();
    let addr = s.base.trim_start_matches("http://").to_owned();
    let dir = std::env::temp_dir().join(format!("hybrid-port-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("hybrid.toml");
    std::fs::write(&path, config(&s.sim.base_url(), "")).expect("config");
    let out = Command::new(hybrid_bin())
        .args([
            "serve",
            "--config",
            path.to_str().expect("utf8"),
            "--listen",
            &addr,
        ])
        .env("HYBRID_SERVER_TEST_KEY", KEY)
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("cannot listen on {addr}")) && err.trim().lines().count() == 1,
        "{err}"
    );

    let out = Command::new(hybrid_bin())
        .args(["serve", "--config", "/nonexistent/hybrid.toml"])
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.starts_with("error: cannot read config") && err.trim().lines().count() == 1,
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn failed_serverless_calls_are_counted_even_when_the_request_fails() {
    let s = serve_with("", "sequence = [\"503\"]");
    let (status, _, body) = post(
        &s,
        "/v1/chat/completions",
        "application/json",
        &chat_body(false),
    );
    assert_eq!(status, 502, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json(&body)["error"]["type"], "upstream_error");
    let (_, metrics) = get(&s, "/metrics");
    let text = String::from_utf8(metrics).expect("utf8");
    assert!(
        text.contains("hybrid_remote_errors_total{endpoint=\"chat\",error=\"unavailable\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("hybrid_remote_attempts_total{endpoint=\"chat\"} 1"),
        "{text}"
    );
    let chat = short_sha("chat_router");
    assert!(
        text.contains(&format!(
            "hybrid_requests_total{{pipeline=\"chat\",component=\"{chat}\",route=\"none\",outcome=\"upstream\"}} 1"
        )),
        "{text}"
    );
}

/// The first 12 hex digits of a built component's sha256, as metric labels show it.
fn short_sha(name: &str) -> String {
    let bytes = std::fs::read(component(name)).expect("read component");
    hybrid_tests::edge_box::sha256(&bytes)[..12].to_owned()
}
