//! Hostile guests against a running box: while a healthy pipeline is under steady load,
//! a second pipeline is made to loop, sleep, allocate without end, overflow its stack,
//! answer 20 MiB, call serverless and a model 10,000 times, flood the log and trap. Each
//! hostile request gets its own error naming the cause, and the healthy pipeline answers every one of its requests.
//! Latency under this load is a benchmark's business, not this test's.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use hybrid_tests::component;
use hybrid_tests::edge_box::{EdgeBox, Scratch, agent, echo_pipeline, send};

fn write_config(dir: &Path) {
    std::fs::write(dir.join("ping.txt"), b"ping").expect("smoke body");
    let wasm = component("test_pipeline");
    let pipeline = |name: &str, extra: &str| echo_pipeline(name, &wasm, 1000, 64, extra);
    let config = format!(
        "[admin]\ntoken_env = \"HYBRID_ADMIN_TOKEN\"\n{}{}",
        pipeline("healthy", ""),
        // Quarantine off: every hostile request must run and fail on its own.
        pipeline("hostile", "quarantine = { after = 0 }"),
    );
    std::fs::write(dir.join("hybrid.toml"), config).expect("config");
}

/// What each hostile mode must come back with: status, error code, words of the message.
const HOSTILE: [(&str, u16, &str, &str); 9] = [
    ("loop", 504, "deadline_exceeded", "deadline of 1000 ms"),
    ("sleep", 504, "deadline_exceeded", "deadline of 1000 ms"),
    ("oom", 500, "memory_exceeded", "memory cap of 64 MiB"),
    ("recurse", 500, "pipeline_failed", "call stack exhausted"),
    ("huge", 500, "limit_exceeded", "limits.response_bytes"),
    ("remote-loop", 500, "limit_exceeded", "limits.remote_calls"),
    ("run-loop", 500, "limit_exceeded", "limits.model_runs"),
    ("trap", 500, "pipeline_failed", "deliberate trap"),
    ("log-flood", 500, "limit_exceeded", "limits.log_bytes"),
];

#[test]
fn hostile_guests_get_their_own_errors_while_a_healthy_pipeline_serves_every_request() {
    let scratch = Scratch::new("hostile");
    write_config(&scratch.0);
    let b = EdgeBox::start(&scratch.0, &[]);

    let done = Arc::new(AtomicBool::new(false));
    let (served, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load: Vec<_> = (0..2)
        .map(|_| {
            let (done, served, failed) = (done.clone(), served.clone(), failed.clone());
            let url = format!("{}/v1/pipelines/healthy", b.base);
            std::thread::spawn(move || {
                let agent = agent();
                while !done.load(Ordering::Relaxed) {
                    let a = send(&agent, "POST", &url, None, Some(("text/plain", b"ping")));
                    if a.status == 200 && a.json()["body"] == "ping" {
                        served.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();

    let agent = agent();
    for (mode, status, code, words) in HOSTILE {
        let url = format!("{}/v1/pipelines/hostile?mode={mode}", b.base);
        let a = send(&agent, "POST", &url, None, Some(("text/plain", b"ping")));
        let body = a.json();
        assert_eq!(a.status, status, "{mode}: {body}");
        if status != 200 {
            assert_eq!(body["error"]["code"], code, "{mode}: {body}");
            let message = body["error"]["message"].as_str().unwrap_or("");
            assert!(message.contains(words), "{mode}: {message}");
        }
    }
    done.store(true, Ordering::Relaxed);
    for t in load {
        t.join().expect("load thread");
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "healthy requests failed");
    assert!(served.load(Ordering::Relaxed) > 0, "the load never ran");

    // The log flood was cut at limits.log_bytes (256 KiB, 64 lines of 4 KiB), not
    // written: the log stays small.
    let log = std::fs::read_to_string(scratch.0.join("hybrid.log")).expect("log");
    let guest_lines = log
        .lines()
        .filter(|l| l.contains("xxxxxxxxxxxxxxxx"))
        .count();
    assert!(
        guest_lines <= 64,
        "{guest_lines} flood lines reached the log"
    );

    // The host still serves both.
    let metrics = send(&agent, "GET", &format!("{}/metrics", b.base), None, None);
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.contains("hybrid_limit_hits_total{pipeline=\"hostile\",limit=\"remote_calls\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("hybrid_limit_hits_total{pipeline=\"hostile\",limit=\"log_bytes\"} 1"),
        "{text}"
    );
    let echo = send(
        &agent,
        "POST",
        &format!("{}/v1/pipelines/hostile?mode=echo", b.base),
        None,
        Some(("text/plain", b"ping")),
    );
    assert_eq!(echo.status, 200);
}
