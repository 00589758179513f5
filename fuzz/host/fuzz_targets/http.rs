//! The HTTP front in-process: arbitrary requests through the real axum router
//! (`server::router`) as a tower service, against a runtime serving the `test-pipeline`
//! component (`just guests` builds it) as pipeline `test` and as the OpenAI models
//! `fuzz-chat` and `fuzz-embed`.
//!
//! The input is a request written out like HTTP/1.1 without the version: a line
//! `METHOD TARGET`, header lines `name: value`, an empty line, the body (`seeds/http/`
//! has one per route and per component mode). Method, path, query, headers and body
//! are all the fuzzer's, so the pipelines route gets any metadata, the component's
//! `mode` (trap, loop, oom, recurse, huge, the local-model probes...) included. A short
//! deadline and small limits keep the misbehaving modes cheap, and quarantine is off so
//! failures keep reaching the component. Every request must get a response (never a
//! panic), and a body the host labels JSON must parse as JSON.

#![no_main]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request, header};
use hybrid::config::Config;
use hybrid::runtime::Runtime;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

const CONFIG: &str = r#"
[runtime]
max_instances = 8
max_memory_mib = 64
epoch_tick_ms = 5

[[pipeline]]
name = "test"
component = "${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release/test_pipeline.wasm"
deadline_ms = 100
memory_mib = 16
limits = { remote_calls = 4, model_runs = 16, response_bytes = 1048576 }
quarantine = { after = 0 }

[[openai_model]]
id = "fuzz-chat"
kind = "chat"
pipeline = "test"

[[openai_model]]
id = "fuzz-embed"
kind = "embeddings"
pipeline = "test"

[server]
max_concurrency = 4
max_queue = 4
max_body_bytes = 65536
"#;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The async runtime and the router, built once: compiling the component takes seconds.
fn app() -> &'static (tokio::runtime::Runtime, Router) {
    static APP: OnceLock<(tokio::runtime::Runtime, Router)> = OnceLock::new();
    APP.get_or_init(|| {
        let config = Config::parse(CONFIG, &repo()).expect("the fuzz config is valid");
        let component = &config.pipelines[0].component;
        assert!(
            component.exists(),
            "{} is missing: run `just guests` first",
            component.display()
        );
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let router = {
            let _entered = tokio.enter();
            let runtime = Runtime::from_config(&config).expect("the test pipeline loads");
            hybrid::server::router(Arc::new(runtime), &config)
        };
        (tokio, router)
    })
}

/// `METHOD TARGET\nname: value\n...\n\nbody` as a request; `None` when the head does not
/// make one (the router never sees what a client library could not send).
fn request(data: &[u8]) -> Option<Request<Body>> {
    let split = data.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match split {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &[][..]),
    };
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.split('\n');
    let (method, target) = lines.next()?.split_once(' ')?;
    let mut builder = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).ok()?)
        .uri(target);
    for line in lines {
        let (name, value) = line.split_once(':')?;
        builder = builder.header(
            HeaderName::from_bytes(name.as_bytes()).ok()?,
            HeaderValue::from_str(value.trim_start()).ok()?,
        );
    }
    builder.body(Body::from(body.to_vec())).ok()
}

fuzz_target!(|data: &[u8]| {
    let Some(request) = request(data) else {
        return;
    };
    let (tokio, router) = app();
    tokio.block_on(async {
        let response = router.clone().oneshot(request).await.expect("infallible");
        let json = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json"));
        let body = axum::body::to_bytes(response.into_body(), 64 << 20)
            .await
            .expect("the body is read");
        if json && let Err(e) = serde_json::from_slice::<serde_json::Value>(&body) {
            panic!(
                "a body labelled JSON does not parse ({e}): {:?}",
                String::from_utf8_lossy(&body)
            );
        }
    });
});
