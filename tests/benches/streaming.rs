//! Streaming through hybrid: time to first token (TTFT) of a streamed chat completion
//! through `POST /v1/chat/completions` (the HTTP front, the chat-router guest, the host's
//! streaming client) against the same request sent straight to `hybrid-sim`; and the
//! throughput of streamed against whole chat completions at concurrency 32. Streams go
//! through chat-router both ways it relays them: forwarded by the host as they are (WIT
//! 0.2.1 `reply.forward`, pipeline `chat`, model `llama3.3-70b-instruct`) and read and
//! emitted chunk by chunk by the guest (`next` then `emit`, pipeline `chat-emit` with
//! setting `relay = "emit"`, model `emit`).
//!
//! The server runs in-process (the release build of the `hybrid` library's router on a
//! tokio runtime, as `hybrid serve` builds it), the simulator too, both on loopback, the
//! simulator with no added latency or delta spacing, so every difference is the host's.
//! TTFT is the time from sending the request to reading the first event that carries
//! text. Not criterion: a request is a stream, and the figures are percentiles over 1 000
//! requests per path (interleaved) and requests per second over 5 s per mode.
//!
//! Command: `cargo bench -p hybrid-tests --bench streaming`.

use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hybrid::config::Config;
use hybrid::local::ModelRegistry;
use hybrid::remote::Remote;
use hybrid::runtime::Runtime;
use hybrid_sim::{ApiKey, Scenario, SimConfig, spawn};
use hybrid_tests::{component, root};

const KEY: &str = "sk-bench-streaming";
const KEY_VAR: &str = "HYBRID_BENCH_STREAMING_KEY";
const MODEL: &str = "llama3.3-70b-instruct";
/// The model name that routes to the pipeline that emits.
const EMIT_MODEL: &str = "emit";
const TTFT_REQUESTS: usize = 1_000;
const CONCURRENCY: usize = 32;
const RUN: Duration = Duration::from_secs(5);

fn body(model: &str, stream: bool) -> String {
    format!(
        r#"{{"model":"{model}","stream":{stream},"messages":[{{"role":"user","content":"Is the edge box up and streaming its tokens today?"}}]}}"#
    )
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_idle_connections_per_host(CONCURRENCY * 2)
        .max_idle_connections(CONCURRENCY * 4)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent()
}

/// Sends one request for `model`; returns the time to the first event with text (for a
/// stream) and the total time, after reading the body to its end.
fn one(agent: &ureq::Agent, url: &str, model: &str, stream: bool) -> (Option<Duration>, Duration) {
    let started = Instant::now();
    let mut response = agent
        .post(url)
        .header("content-type", "application/json")
        .header("authorization", &format!("Bearer {KEY}"))
        .send(body(model, stream).as_bytes())
        .expect("answered");
    assert_eq!(response.status().as_u16(), 200, "{url}");
    let mut first = None;
    let mut reader = BufReader::new(response.body_mut().as_reader());
    if stream {
        let mut line = String::new();
        while reader.read_line(&mut line).expect("line") > 0 {
            if first.is_none() && line.starts_with("data: ") && line.contains("\"content\":\"") {
                // The role chunk carries `"content":""`; the first text is not empty.
                if !line.contains("\"content\":\"\"") {
                    first = Some(started.elapsed());
                }
            }
            line.clear();
        }
    } else {
        let mut sink = Vec::new();
        reader.read_to_end(&mut sink).expect("body");
    }
    (first, started.elapsed())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Requests per second of `CONCURRENCY` clients sending to `url` for [`RUN`].
fn throughput(url: &str, model: &'static str, stream: bool) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + RUN;
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (done, url) = (done.clone(), url.to_owned());
            std::thread::spawn(move || {
                let agent = agent();
                while Instant::now() < until {
                    one(&agent, &url, model, stream);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("client thread");
    }
    done.load(Ordering::Relaxed) as f64 / RUN.as_secs_f64()
}

fn main() {
    // The simulator's quota is per minute; lift it so the benchmark never sees 429.
    let scenario = Scenario::from_toml(
        "[quota]\nrequests = 100000000\ntokens_per_minute = 100000000000\ntokens_per_day = 100000000000",
    )
    .expect("scenario");
    let sim =
        spawn(SimConfig::with_key(ApiKey::new(KEY).expect("key")).scenario(scenario)).expect("sim");
    let config = Config::parse(
        &format!(
            r#"
[server]
max_concurrency = 64

[runtime]
max_instances = 128

[[pipeline]]
name = "chat"
component = "{chat}"

[[pipeline]]
name = "chat-emit"
component = "{chat}"
settings = {{ relay = "emit" }}

[[openai_model]]
id = "{MODEL}"
kind = "chat"
pipeline = "chat"

[[openai_model]]
id = "{EMIT_MODEL}"
kind = "chat"
pipeline = "chat-emit"

[[endpoint]]
name = "chat"
kind = "chat"
base_url = "{sim}"
api_key_env = "{KEY_VAR}"
model = "{MODEL}"
max_attempts = 1
"#,
            chat = component("chat_router").display(),
            sim = sim.base_url(),
        ),
        &root(),
    )
    .expect("config");
    // The key reaches the host through its env lookup, not the process environment.
    let remote = Remote::with_env(&config.endpoints, &config.budget, &|var| {
        (var == KEY_VAR).then(|| KEY.to_owned())
    })
    .expect("remote");
    let runtime = Runtime::with_remote(
        &config.runtime,
        Arc::new(ModelRegistry::default()),
        Arc::new(remote),
    )
    .expect("runtime");
    for pipeline in &config.pipelines {
        runtime.load_pipeline(pipeline).expect("chat pipelines");
    }
    let runtime = Arc::new(runtime);
    let app = hybrid::server::router(runtime, &config);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(256)
        .enable_all()
        .build()
        .expect("tokio");
    let listener = tokio
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    // As `hybrid serve` does: no Nagle delay on streamed answers.
    let listener = axum::serve::ListenerExt::tap_io(listener, hybrid::server::no_delay);
    tokio.spawn(async move { axum::serve(listener, app).await });
    let hybrid = format!("http://{addr}/v1/chat/completions");
    let direct = format!("{}/chat/completions", sim.base_url().trim_end_matches('/'));

    let agent = agent();
    for _ in 0..100 {
        one(&agent, &hybrid, MODEL, true);
        one(&agent, &hybrid, EMIT_MODEL, true);
        one(&agent, &direct, MODEL, true);
    }
    let (mut forwarded, mut emitted, mut straight) = (Vec::new(), Vec::new(), Vec::new());
    let first = |url: &str, model: &str| {
        one(&agent, url, model, true)
            .0
            .unwrap_or_else(|| panic!("text from {url} ({model})"))
    };
    for _ in 0..TTFT_REQUESTS {
        forwarded.push(first(&hybrid, MODEL));
        emitted.push(first(&hybrid, EMIT_MODEL));
        straight.push(first(&direct, MODEL));
    }
    for d in [&mut forwarded, &mut emitted, &mut straight] {
        d.sort_unstable();
    }
    println!("time to first token over {TTFT_REQUESTS} streamed requests each (interleaved):");
    for (what, d) in [
        ("simulator directly", &straight),
        ("hybrid, forward", &forwarded),
        ("hybrid, emit", &emitted),
    ] {
        println!(
            "  {what:20} p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms",
            ms(percentile(d, 0.5)),
            ms(percentile(d, 0.9)),
            ms(percentile(d, 0.99))
        );
    }
    for (what, d) in [("forward", &forwarded), ("emit", &emitted)] {
        println!(
            "  added by hybrid, {what:8} p50 {:.3} ms  p99 {:.3} ms (target: < 1 ms at p50)",
            ms(percentile(d, 0.5)) - ms(percentile(&straight, 0.5)),
            ms(percentile(d, 0.99)) - ms(percentile(&straight, 0.99))
        );
    }

    println!(
        "throughput at concurrency {CONCURRENCY}, {} s per mode:",
        RUN.as_secs()
    );
    for (what, url, model, stream) in [
        ("whole, through hybrid", &hybrid, MODEL, false),
        ("streamed, hybrid, forward", &hybrid, MODEL, true),
        ("streamed, hybrid, emit", &hybrid, EMIT_MODEL, true),
        ("streamed, simulator directly", &direct, MODEL, true),
    ] {
        println!("  {what:30} {:.0} req/s", throughput(url, model, stream));
    }
}
