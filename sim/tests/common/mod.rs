//! Shared helpers for the simulator's integration tests: start a simulator in-process on a
//! free loopback port, talk to it with ureq 3 (the host's client), and pick apart answers.

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the helpers"
)]

use std::time::Duration;

use hybrid_sim::{ApiKey, Scenario, SimConfig, SimHandle};
use serde_json::Value;
use ureq::http::HeaderMap;

/// The key every in-process simulator accepts.
pub const KEY: &str = "sk-sim-test-5f1c0b7e9a2d";

/// A simulator with the default models, requiring [`KEY`].
pub fn start(scenario: Scenario) -> SimHandle {
    let key = ApiKey::new(KEY).expect("non-empty key");
    hybrid_sim::spawn(SimConfig::with_key(key).scenario(scenario)).expect("simulator starts")
}

/// A client that returns every status as a response, with a generous overall timeout.
pub fn agent() -> ureq::Agent {
    agent_with_timeout(Duration::from_secs(5))
}

/// A client whose whole call (connect, send, headers, body) must finish within `timeout`.
pub fn agent_with_timeout(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .new_agent()
}

/// A fully read answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:.200}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

fn read(response: ureq::http::Response<ureq::Body>) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .expect("body reads");
    Answer {
        status,
        headers,
        body,
    }
}

/// POSTs JSON with the right key.
pub fn post_json(sim: &SimHandle, path: &str, body: &Value) -> Answer {
    post_raw(sim, path, "application/json", body.to_string().as_bytes())
}

/// POSTs bytes with the right key.
pub fn post_raw(sim: &SimHandle, path: &str, content_type: &str, body: &[u8]) -> Answer {
    let response = agent()
        .post(format!("{}{path}", sim.root_url()))
        .header("Authorization", format!("Bearer {KEY}"))
        .content_type(content_type)
        .send(body)
        .expect("request is answered");
    read(response)
}

/// GETs with the right key.
pub fn get(sim: &SimHandle, path: &str) -> Answer {
    let response = agent()
        .get(format!("{}{path}", sim.root_url()))
        .header("Authorization", format!("Bearer {KEY}"))
        .call()
        .expect("request is answered");
    read(response)
}

/// A minimal chat request.
pub fn chat_body(content: &str) -> Value {
    serde_json::json!({
        "model": "llama3.3-70b-instruct",
        "messages": [{"role": "user", "content": content}],
    })
}

/// A multipart/form-data body of `(name, filename, bytes)` parts, and its content type.
pub fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    const BOUNDARY: &str = "hybrid-sim-test-boundary-7d1f";
    let mut body = Vec::new();
    for (name, filename, bytes) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match filename {
            Some(file) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={BOUNDARY}"), body)
}

/// The `data:` payloads of a server-sent-events body, in order.
pub fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter(|event| !event.trim().is_empty())
        .map(|event| {
            event
                .lines()
                .filter_map(|line| line.strip_prefix("data: "))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect()
}

/// A silent 16-bit mono PCM WAV of `samples` samples at `rate` Hz.
pub fn wav(rate: u32, samples: usize) -> Vec<u8> {
    let data_len = (samples * 2) as u32;
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.resize(out.len() + samples * 2, 0);
    out
}
