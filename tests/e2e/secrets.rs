//! No secret reaches a log line, a metric, an error body or admin output. A box holding
//! real-looking keys (see `hybrid_tests::secrets`), logging at trace level, is driven
//! through the paths most likely to leak one: a provider refusing the key, a provider
//! failing and answering garbage, streaming, hostile guests, the admin API with the
//! right token and a wrong one, refused deploys, `hybrid status` and `hybrid check`.
//! Everything it shows is searched for every secret and any 16-character piece of one.
//!
//! The rest of the suite checks the same way wherever the shared helpers read output
//! (every answer `edge_box::send` reads, every test box's log when it stops).

use std::process::Command;

use hybrid_sim::{ApiKey, Scenario, SimConfig, spawn};
use hybrid_tests::edge_box::{ADMIN_TOKEN, EdgeBox, Scratch, agent, echo_pipeline, send};
use hybrid_tests::secrets::{SERVERLESS_KEY, WRONG_SERVERLESS_KEY, assert_clean};
use hybrid_tests::{component, hybrid_bin};

/// Everything that handles requests, credentials or guest output at `trace`, the HTTP
/// libraries included (the host caps them: this proves the cap holds). Cranelift and
/// tract stay at `info`: their traces are megabytes per compile and carry no secrets.
const TRACE: &str =
    "info,hybrid=trace,guest=trace,ureq=trace,ureq_proto=trace,hyper=trace,axum=trace,rustls=trace";

fn endpoint(name: &str, url: &str, key_env: &str) -> String {
    format!(
        r#"
[[endpoint]]
name = "{name}"
kind = "chat"
base_url = "{url}"
api_key_env = "{key_env}"
model = "llama3.3-70b-instruct"
price = {{ input_per_mtok = 1.0, output_per_mtok = 2.0 }}
max_attempts = 2
"#
    )
}

#[test]
fn no_secret_reaches_logs_metrics_errors_or_admin_output() {
    let key = || ApiKey::new(SERVERLESS_KEY).expect("key");
    let healthy = spawn(SimConfig::with_key(key())).expect("sim");
    let flaky = spawn(
        SimConfig::with_key(key()).scenario(
            Scenario::from_toml("seed = 7\nerror_rate = 0.4\nmalformed_rate = 0.4\n")
                .expect("scenario"),
        ),
    )
    .expect("sim");

    let scratch = Scratch::new("secrets");
    let dir = &scratch.0;
    std::fs::write(dir.join("ping.txt"), b"ping").expect("smoke body");
    let test = component("test_pipeline");
    let config = format!(
        "[admin]\ntoken_env = \"HYBRID_ADMIN_TOKEN\"\n{}{}{}{}{}\n[[pipeline]]\nname = \"chat\"\ncomponent = \"{}\"\n\n[[openai_model]]\nid = \"llama3.3-70b-instruct\"\nkind = \"chat\"\npipeline = \"chat\"\n",
        endpoint("chat", &healthy.base_url(), "HYBRID_TEST_GOOD_KEY"),
        endpoint("refused", &healthy.base_url(), "HYBRID_TEST_WRONG_KEY"),
        endpoint("flaky", &flaky.base_url(), "HYBRID_TEST_GOOD_KEY"),
        echo_pipeline("test", &test, 1000, 64, "quarantine = { after = 0 }"),
        echo_pipeline("guarded", &test, 1000, 64, "quarantine = { after = 2 }"),
        component("chat_router").display(),
    );
    std::fs::write(dir.join("hybrid.toml"), config).expect("config");
    let b = EdgeBox::start_with_env(
        dir,
        &[],
        &[
            ("HYBRID_LOG", TRACE),
            ("HYBRID_TEST_GOOD_KEY", SERVERLESS_KEY),
            ("HYBRID_TEST_WRONG_KEY", WRONG_SERVERLESS_KEY),
        ],
    );
    let agent = agent();
    let mut seen = Vec::new();
    let mut post = |path: &str, content_type: &str, body: &[u8]| {
        let a = send(
            &agent,
            "POST",
            &format!("{}{path}", b.base),
            None,
            Some((content_type, body)),
        );
        seen.push((path.to_owned(), a.status));
    };

    let chat =
        br#"{"model": "llama3.3-70b-instruct", "messages": [{"role": "user", "content": "hi"}]}"#;
    let streamed = br#"{"model": "llama3.3-70b-instruct", "stream": true, "messages": [{"role": "user", "content": "hi"}]}"#;
    post("/v1/chat/completions", "application/json", chat);
    post("/v1/chat/completions", "application/json", streamed);
    for endpoint in ["refused", "flaky", "flaky", "flaky", "missing"] {
        post(
            &format!("/v1/pipelines/chat?endpoint={endpoint}"),
            "application/json",
            chat,
        );
    }
    post("/v1/chat/completions", "application/json", b"{not json");
    for mode in ["trap", "remote-loop", "log-flood", "sleep", "oom"] {
        post(
            &format!("/v1/pipelines/test?mode={mode}"),
            "text/plain",
            b"ping",
        );
    }
    for _ in 0..3 {
        post("/v1/pipelines/guarded?mode=trap", "text/plain", b"ping");
    }
    let statuses: Vec<u16> = seen.iter().map(|(_, s)| *s).collect();
    assert_eq!(statuses[..2], [200, 200], "{seen:?}");
    assert!(
        seen.iter().any(|(p, s)| p.contains("refused") && *s >= 500),
        "the refused key was reported as an error: {seen:?}"
    );
    assert!(
        seen.iter().any(|(_, s)| *s == 503),
        "the guarded pipeline was quarantined: {seen:?}"
    );

    // Read-only routes and the admin API, with the right token and wrong ones: `send`
    // checks each body.
    for path in ["/metrics", "/readyz", "/healthz", "/v1/models"] {
        send(&agent, "GET", &format!("{}{path}", b.base), None, None);
    }
    for token in [Some(ADMIN_TOKEN), Some(&ADMIN_TOKEN[..40]), None] {
        send(
            &agent,
            "GET",
            &format!("{}/admin/status", b.admin),
            token,
            None,
        );
    }
    let refused = send(
        &agent,
        "PUT",
        &format!("{}/admin/pipelines/test/component", b.admin),
        Some(ADMIN_TOKEN),
        Some(("application/wasm", b"\0asm not really")),
    );
    assert_eq!(refused.status, 422, "{:?}", refused.json());

    // Operator commands print what they found, never the token.
    for args in [
        vec!["status", "--admin", b.admin.as_str()],
        vec!["check", component("chat_router").to_str().expect("utf8")],
    ] {
        let out = Command::new(hybrid_bin())
            .args(&args)
            .env("HYBRID_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("HYBRID_LOG", TRACE)
            .output()
            .expect("hybrid runs");
        assert!(out.status.success(), "hybrid {args:?}: {out:?}");
        assert_clean(&format!("hybrid {args:?} stdout"), &out.stdout);
        assert_clean(&format!("hybrid {args:?} stderr"), &out.stderr);
    }

    // The trace log is long (a line per request, retry and call at least) and clean.
    let log_path = dir.join("hybrid.log");
    let log = std::fs::read(&log_path).expect("log");
    assert!(
        log.len() > 5_000,
        "trace logging was on ({} bytes)",
        log.len()
    );
    assert_clean("the trace-level log", &log);
    // `EdgeBox`'s drop checks the log once more after the process has stopped.
    drop(b);
}
