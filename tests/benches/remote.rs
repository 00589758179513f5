//! Serverless client overhead: a chat completion through a guest (chat-router) and the
//! host's client to `hybrid-sim` with zero simulated latency, against the same request sent
//! by a bare ureq call. The difference is what the sandbox, the routing policy (signals
//! reads), the retry/breaker/budget machinery and the accounting add to a remote call.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use hybrid::config::{BudgetConfig, EndpointConfig, EndpointKind, Prices};
use hybrid::remote::Remote;
use hybrid_sim::{ApiKey, SimConfig, spawn};
use hybrid_tests::{component, pipeline, request, runtime_with_remote_only};

const KEY: &str = "sk-bench-remote";

fn endpoint(base_url: &str) -> EndpointConfig {
    EndpointConfig {
        name: "chat".into(),
        kind: EndpointKind::Chat,
        base_url: base_url.into(),
        api_key_env: Some("BENCH_KEY".into()),
        model: "llama3.3-70b-instruct".into(),
        path: None,
        stream: false,
        model_sha256: None,
        price: Prices::default(),
        timeout_ms: 10_000,
        connect_timeout_ms: 1_000,
        max_attempts: 1,
        backoff_ms: 10,
        max_backoff_ms: 100,
        breaker_failures: 1_000_000,
        breaker_open_ms: 1,
        max_request_bytes: 1 << 20,
        max_response_bytes: 1 << 20,
    }
}

fn remote(c: &mut Criterion) {
    // The simulator's request quota is per minute; lift it so the benchmark never sees 429.
    let scenario = hybrid_sim::Scenario::from_toml("[quota]\nrequests = 100000000\ntokens_per_minute = 100000000000\ntokens_per_day = 100000000000")
        .expect("scenario");
    let sim =
        spawn(SimConfig::with_key(ApiKey::new(KEY).expect("key")).scenario(scenario)).expect("sim");
    let remote = Remote::with_env(
        &[endpoint(&sim.base_url())],
        &BudgetConfig::default(),
        &|_| Some(KEY.into()),
    )
    .expect("remote");
    let rt = runtime_with_remote_only(
        Arc::new(remote),
        &[pipeline("chat", component("chat_router"), 10_000, 64)],
    );
    let body = br#"{"model":"llama3.3-70b-instruct","messages":[{"role":"user","content":"Is the edge box up?"}]}"#;
    let req = request(body.to_vec(), "application/json", &[]);
    rt.handle("chat", &req).expect("chat serves");

    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let url = format!("{}/chat/completions", sim.base_url());
    let wire = br#"{"model":"llama3.3-70b-instruct","messages":[{"role":"user","content":"Is the edge box up?"}]}"#;
    let bare = || {
        agent
            .post(&url)
            .header("authorization", format!("Bearer {KEY}"))
            .header("content-type", "application/json")
            .send(&wire[..])
            .expect("sim answers")
            .body_mut()
            .read_to_vec()
            .expect("body")
    };

    let mut group = c.benchmark_group("remote");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    group.bench_function("bare_ureq", |b| b.iter(|| black_box(bare())));
    group.bench_function("through_guest_and_host", |b| {
        b.iter(|| rt.handle("chat", black_box(&req)).expect("chat serves"));
    });
    group.finish();

    // Criterion reports medians; the issue also asks for p99: sample both paths directly.
    let p = |mut samples: Vec<Duration>, q: f64| {
        samples.sort();
        samples[((samples.len() as f64 - 1.0) * q) as usize]
    };
    let time = |f: &dyn Fn()| {
        (0..2_000)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect::<Vec<_>>()
    };
    let bare_t = time(&|| {
        bare();
    });
    let guest_t = time(&|| {
        rt.handle("chat", &req).expect("chat serves");
    });
    println!(
        "remote/added: median {:?}, p99 {:?} (bare ureq median {:?} p99 {:?}; through guest median {:?} p99 {:?})",
        p(guest_t.clone(), 0.5).saturating_sub(p(bare_t.clone(), 0.5)),
        p(guest_t.clone(), 0.99).saturating_sub(p(bare_t.clone(), 0.99)),
        p(bare_t.clone(), 0.5),
        p(bare_t, 0.99),
        p(guest_t.clone(), 0.5),
        p(guest_t, 0.99),
    );
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    remote(&mut criterion);
    criterion.final_summary();
}
