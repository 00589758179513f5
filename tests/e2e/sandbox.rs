//! Hostile and broken guests: traps, infinite loops, memory hogs, log floods, bad tensors
//! and sandboxes past their fuel, instance and table limits each get an error naming the
//! problem, and the host keeps serving afterwards.

use std::sync::{Arc, OnceLock};

use hybrid::config::{Limit, Limits, PipelineConfig, RuntimeConfig};
use hybrid::remote::Remote;
use hybrid::runtime::{PipelineError, Runtime};
use hybrid_tests::{
    component, pipeline, request, runtime, runtime_with_engine, test_engine, vad_model,
};

const DEADLINE_MS: u64 = 300;
const MEMORY_MIB: u64 = 32;

fn rt() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        runtime(&[
            pipeline("test", component("test_pipeline"), DEADLINE_MS, MEMORY_MIB),
            // For the limits: time enough that no deadline comes first on a busy box.
            pipeline("roomy", component("test_pipeline"), 20_000, MEMORY_MIB),
        ])
    })
}

fn call(mode: &str) -> Result<hybrid::runtime::Outcome, PipelineError> {
    rt().handle(
        "test",
        &request(b"ping".to_vec(), "text/plain", &[("mode", mode)]),
    )
}

/// After any failure the same runtime still serves a normal request.
fn assert_still_serving() {
    let outcome = call("echo").expect("echo after a failure");
    assert_eq!(outcome.response.body, b"ping");
}

#[test]
fn echo_round_trips_the_body() {
    let outcome = call("echo").expect("echo");
    assert_eq!(outcome.response.body, b"ping");
    assert_eq!(outcome.response.content_type, "text/plain");
    assert_eq!(outcome.response.routing.reason, "echo");
}

#[test]
fn a_trapping_guest_reports_its_panic_message() {
    let err = call("trap").expect_err("trap");
    assert!(matches!(err, PipelineError::Trapped { .. }), "{err:?}");
    assert_eq!(err.status(), 500);
    assert!(err.to_string().contains("deliberate trap"), "{err}");
    assert_still_serving();
}

#[test]
fn a_looping_guest_is_stopped_at_its_deadline() {
    let err = call("loop").expect_err("loop");
    assert!(
        matches!(
            err,
            PipelineError::DeadlineExceeded {
                deadline_ms: DEADLINE_MS,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.status(), 504);
    assert!(err.to_string().contains("300 ms"), "{err}");
    assert_still_serving();
}

/// A guest blocked in the host (WASI `poll` on a clock, what `std::thread::sleep` does)
/// is out of epoch interruption's reach: the host bounds every clock wait by the deadline.
#[test]
fn a_sleeping_guest_is_stopped_at_its_deadline() {
    let started = std::time::Instant::now();
    let err = call("sleep").expect_err("the 30 s sleep must not finish");
    assert!(
        matches!(
            err,
            PipelineError::DeadlineExceeded {
                deadline_ms: DEADLINE_MS,
                ..
            }
        ),
        "{err:?} after {:?}",
        started.elapsed()
    );
    // Not a speed target: a host that let the wait run would answer only when the 30 s
    // sleep ends (and never, for a guest that waits forever). The margin is 50 deadlines.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "stopped only after {:?}, when the sleep ended, not at the 300 ms deadline",
        started.elapsed()
    );
    assert_still_serving();
}

#[test]
fn a_guest_allocating_past_its_cap_is_stopped() {
    let err = call("oom").expect_err("oom");
    assert!(
        matches!(
            err,
            PipelineError::MemoryExceeded {
                cap_mib: MEMORY_MIB,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("memory cap of 32 MiB"), "{err}");
    assert_still_serving();
}

#[test]
fn bad_tensors_from_a_guest_are_typed_errors_it_can_report() {
    for (mode, case, detail) in [
        ("bad-shape", "shape-mismatch", "[?, 576]"),
        ("bad-type", "type-mismatch", "expected fp32, got i64"),
        ("bad-bytes", "shape-mismatch", "got 10"),
        ("unknown-model", "unknown-model", "no-such-model"),
        ("missing-input", "bad-input-name", "\"c\" is missing"),
    ] {
        let err = call(mode).expect_err(mode);
        let msg = err.to_string();
        assert_eq!(err.status(), 502, "{mode}: {msg}");
        assert!(msg.contains(case) && msg.contains(detail), "{mode}: {msg}");
    }
    assert_still_serving();
}

#[test]
fn guests_see_the_models_the_host_loaded() {
    let outcome = call("models").expect("models");
    let models: serde_json::Value = serde_json::from_slice(&outcome.response.body).expect("JSON");
    let text = models.to_string();
    assert!(
        text.contains("silero-vad") && text.contains("6.2.3") && text.contains("speech_probs"),
        "{text}"
    );
}

#[test]
fn unknown_pipelines_list_the_known_ones() {
    let err = rt()
        .handle("nope", &request(vec![], "", &[]))
        .expect_err("unknown");
    assert_eq!(err.status(), 404);
    assert_eq!(
        err.to_string(),
        "unknown pipeline \"nope\"; known pipelines: [roomy, test]"
    );
}

#[test]
fn unknown_modes_are_bad_requests() {
    let err = call("fly").expect_err("unknown mode");
    assert_eq!(err.status(), 400, "{err}");
}

fn assert_limit(mode: &str, limit: Limit, max: u64) {
    let err = rt()
        .handle(
            "roomy",
            &request(b"ping".to_vec(), "text/plain", &[("mode", mode)]),
        )
        .expect_err(mode);
    match &err {
        PipelineError::LimitExceeded {
            limit: hit, max: m, ..
        } => {
            assert_eq!((*hit, *m), (limit, max), "{err}");
        }
        other => panic!("{mode}: expected the {} limit, got {other:?}", limit.name()),
    }
    assert_eq!(err.status(), 500);
    let message = err.to_string();
    assert!(
        message.contains(&format!("limits.{}", limit.name())),
        "{message}"
    );
    assert_still_serving();
}

/// A guest calling serverless in a tight loop is refused past `limits.remote_calls` and
/// its request ends with that limit's error, whatever it did with the refusals.
#[test]
fn host_calls_past_the_per_request_limits_end_the_request() {
    let limits = Limits::default();
    assert_limit(
        "remote-loop",
        Limit::RemoteCalls,
        limits.remote_calls.into(),
    );
    assert_limit("run-loop", Limit::ModelRuns, limits.model_runs.into());
}

#[test]
fn an_answer_over_the_size_limit_is_refused() {
    assert_limit(
        "huge",
        Limit::ResponseBytes,
        Limits::default().response_bytes,
    );
}

/// A guest flooding the log is cut off at `limits.log_bytes` and its request ends with
/// that limit's error; nothing past the limit reaches the host's log.
#[test]
fn a_log_flood_ends_the_request_at_the_log_limit() {
    assert_limit("log-flood", Limit::LogBytes, Limits::default().log_bytes);
}

/// A runtime whose engine meters fuel, with pipelines under fuel, instance and table
/// limits, and one without any of them beside them.
fn caged() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        let with = |name: &str, limits: Limits| PipelineConfig {
            limits,
            // Only `free` has the short deadline: the others must end by their limits.
            ..pipeline(
                name,
                component("test_pipeline"),
                if name == "free" { DEADLINE_MS } else { 20_000 },
                MEMORY_MIB,
            )
        };
        let defaults = Limits::default();
        let metered = RuntimeConfig {
            fuel: true,
            ..test_engine()
        };
        runtime_with_engine(
            &metered,
            &[vad_model()],
            Arc::new(Remote::none()),
            &[
                with("free", defaults),
                with(
                    "metered",
                    Limits {
                        fuel: Some(FUEL),
                        ..defaults
                    },
                ),
                with(
                    "one-instance",
                    Limits {
                        instances: 1,
                        ..defaults
                    },
                ),
                with(
                    "tiny-tables",
                    Limits {
                        table_elements: 1,
                        ..defaults
                    },
                ),
            ],
        )
    })
}

/// Enough fuel for an echo many times over, and a few milliseconds of looping.
const FUEL: u64 = 20_000_000;

fn call_caged(pipeline: &str, mode: &str) -> Result<hybrid::runtime::Outcome, PipelineError> {
    caged().handle(
        pipeline,
        &request(b"ping".to_vec(), "text/plain", &[("mode", mode)]),
    )
}

fn limit_of(result: Result<hybrid::runtime::Outcome, PipelineError>) -> (Limit, u64, String) {
    match result {
        Err(e @ PipelineError::LimitExceeded { limit, max, .. }) => (limit, max, e.to_string()),
        other => panic!(
            "expected a limit error, got {:?}",
            other.map(|o| o.response.body)
        ),
    }
}

/// Fuel is a CPU budget independent of the clock: a looping guest with `limits.fuel`
/// is stopped by it, long before its 20 s deadline, while the same loop in a pipeline
/// without fuel runs to the deadline, and fuel is given afresh to every request.
#[test]
fn fuel_stops_a_loop_before_the_deadline_and_only_where_configured() {
    for _ in 0..3 {
        let echo = call_caged("metered", "echo").expect("an echo fits in the fuel");
        assert_eq!(echo.response.body, b"ping");
    }
    // The metered pipeline's deadline is 20 s: the loop ends by fuel, not by the clock.
    let (limit, max, message) = limit_of(call_caged("metered", "loop"));
    assert_eq!((limit, max), (Limit::Fuel, FUEL), "{message}");
    assert!(message.contains("limits.fuel"), "{message}");
    match call_caged("free", "loop") {
        Err(PipelineError::DeadlineExceeded { .. }) => {}
        other => panic!("unmetered loop: {:?}", other.map(|o| o.response.body)),
    }
    assert_eq!(
        call_caged("metered", "echo").expect("echo").response.body,
        b"ping"
    );
}

/// A sandbox that would need more core instances or table elements than its pipeline's
/// limits allow is refused with the limit's name.
#[test]
fn instance_and_table_caps_refuse_the_sandbox_with_the_limit_named() {
    let (limit, max, message) = limit_of(call_caged("one-instance", "echo"));
    assert_eq!((limit, max), (Limit::Instances, 1), "{message}");
    assert!(message.contains("limits.instances"), "{message}");
    let (limit, max, message) = limit_of(call_caged("tiny-tables", "echo"));
    assert_eq!((limit, max), (Limit::TableElements, 1), "{message}");
    assert!(message.contains("limits.table_elements"), "{message}");
    assert_eq!(
        call_caged("free", "echo").expect("echo").response.body,
        b"ping"
    );
}
