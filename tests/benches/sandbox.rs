//! Per-request sandbox overhead: what the host adds around a guest that does nothing.
//!
//! The guest is `test_pipeline.wasm` in `echo` mode with a 4-byte body, which copies the
//! body back, so almost all of the time measured is the host's. Two figures:
//! - `sandbox/fresh_instance`: [`Runtime::handle`], what every served request pays: a new
//!   `Store` with its WASI, log, clock and local contexts, instantiation from the
//!   pipeline's `InstancePre` (pooled memory), the call, and dropping the store;
//! - `sandbox/reused_instance`: [`PipelineInstance::handle`] on one live instance: only the
//!   call, lifting and lowering the request and response, and the deadline reset.
//!
//! The difference between the two is the cost of a fresh sandbox per request.
//!
//! [`Runtime::handle`]: hybrid::runtime::Runtime::handle
//! [`PipelineInstance::handle`]: hybrid::runtime::PipelineInstance::handle

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use hybrid_tests::{component, pipeline, request, runtime};

/// Generous limits: the echo guest needs neither.
const DEADLINE_MS: u64 = 1_000;
const MEMORY_MIB: u64 = 32;

fn sandbox(c: &mut Criterion) {
    let rt = runtime(&[pipeline(
        "echo",
        component("test_pipeline"),
        DEADLINE_MS,
        MEMORY_MIB,
    )]);
    let req = request(b"ping".to_vec(), "text/plain", &[("mode", "echo")]);
    let check = rt.handle("echo", &req).expect("echo serves");
    assert_eq!(check.response.body, b"ping");

    let mut group = c.benchmark_group("sandbox");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    group.bench_function("fresh_instance", |b| {
        b.iter(|| rt.handle("echo", black_box(&req)).expect("echo serves"));
    });
    let mut instance = rt.instantiate("echo", "bench").expect("instantiates");
    group.bench_function("reused_instance", |b| {
        b.iter(|| instance.handle(black_box(&req)).expect("echo serves"));
    });
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    sandbox(&mut criterion);
    criterion.final_summary();
}
