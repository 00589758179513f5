//! What loading a pipeline costs: compiling voice-gate, against loading it precompiled.
//!
//! - `compile/component_new`: `Component::new` on `voice_gate.wasm` with the runtime's
//!   engine (Cranelift, parallel compilation on this machine's cores), what
//!   `Runtime::load_pipeline` pays today at start and on every hot swap;
//! - `compile/component_deserialize`: `Component::deserialize` of the same component's
//!   `Component::serialize` output, what a load from a precompiled artefact (`.cwasm`)
//!   would cost instead.
//!
//! Neither includes type-checking against the linker or building the `InstancePre`.

use std::time::Duration;

use criterion::{Criterion, SamplingMode};
use hybrid_tests::{component, runtime};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Loads a component serialized by this same engine.
///
/// `Component::deserialize` is unsafe because it maps the bytes as executable code
/// without validating them; here they come from `Component::serialize` on the same
/// engine in this process, which is the contract it asks for.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, bytes: &[u8]) -> Component {
    // SAFETY: `bytes` is `Component::serialize` output from `engine`, unmodified.
    unsafe { Component::deserialize(engine, bytes) }.expect("deserializes")
}

fn compile(c: &mut Criterion) {
    let rt = runtime(&[]);
    let engine = rt.engine();
    let wasm = std::fs::read(component("voice_gate")).expect("read voice_gate.wasm");

    let mut group = c.benchmark_group("compile");
    // Each compile takes hundreds of milliseconds: ten flat samples are enough.
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    group.bench_function("component_new", |b| {
        b.iter(|| Component::new(engine, &wasm).expect("compiles"));
    });

    let serialized = Component::new(engine, &wasm)
        .and_then(|c| c.serialize())
        .expect("serializes");
    group
        .sampling_mode(SamplingMode::Auto)
        .sample_size(50)
        .measurement_time(Duration::from_secs(4));
    group.bench_function("component_deserialize", |b| {
        b.iter(|| deserialize(engine, &serialized));
    });
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    compile(&mut criterion);
    criterion.final_summary();
}
