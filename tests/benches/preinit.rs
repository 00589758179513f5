//! What pre-initialising a component (WIT 0.2.2 `init`) saves per request, and what it
//! costs at deploy: the embed guest, batch 1, one short sentence, served as `hybrid
//! serve` serves it (`Runtime::handle`, a fresh instance per request), from the same
//! bytes twice: pipeline `embed` pre-initialised (its `initialize` parsed the 30 522-token
//! vocabulary at deploy; requests start from the snapshot) and pipeline `embed-fresh` with
//! `preinit = false` (every request fetches and parses the vocabulary, as before 0.2.2).
//! Also tract alone on the same model input, for the guest's overhead.
//!
//! Before the measurements it prints each pipeline's deploy: compile (and, for `embed`,
//! instrument, instantiate, `initialize`, snapshot and compile the snapshot), each time
//! in a fresh runtime so nothing comes from a cache, best of 3.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion};
use hybrid::config::PipelineConfig;
use hybrid::local::{ElementType, NamedTensor, Tensor};
use hybrid::runtime::Runtime;
use hybrid_tests::{component, minilm_model, pipeline, request, runtime_with_models};

const MODEL: &str = "minilm-l6-v2";
const SENTENCE: &str = "hybrid inference at the edge";

fn embed(name: &str, preinit: bool) -> PipelineConfig {
    PipelineConfig {
        preinit,
        embedding_model: Some(MODEL.into()),
        ..pipeline(name, component("embed"), 60_000, 256)
    }
}

/// The model input the guest builds for [`SENTENCE`]: `[CLS] hybrid inference at the
/// edge [SEP]`.
fn model_inputs(rt: &Runtime) -> Vec<NamedTensor> {
    let req = request(
        serde_json::to_vec(&serde_json::json!({ "input": SENTENCE })).expect("JSON"),
        "application/json",
        &[],
    );
    let outcome = rt.handle("embed", &req).expect("embed serves");
    let body: serde_json::Value = serde_json::from_slice(&outcome.response.body).expect("JSON");
    let tokens = body["usage"]["prompt_tokens"]
        .as_u64()
        .expect("prompt_tokens") as usize;
    let tensor = |name: &str, values: Vec<i64>| NamedTensor {
        name: name.into(),
        tensor: Tensor {
            dims: vec![1, tokens],
            ty: ElementType::I64,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        },
    };
    // The ids do not change the time of a run of this shape; the shape is what matters.
    vec![
        tensor("input_ids", vec![101; tokens]),
        tensor("attention_mask", vec![1; tokens]),
    ]
}

fn deploy_times() {
    for (name, preinit) in [("embed", true), ("embed-fresh", false)] {
        let best = (0..3)
            .map(|_| {
                let rt = runtime_with_models(&[minilm_model()], &[]);
                let started = Instant::now();
                let report = rt.load_pipeline(&embed(name, preinit)).expect("loads");
                assert_eq!(report.preinitialised, preinit);
                started.elapsed()
            })
            .min()
            .unwrap_or_default();
        println!(
            "deploy {name} (preinit = {preinit}): {:.0} ms, best of 3",
            best.as_secs_f64() * 1e3
        );
    }
}

fn preinit(c: &mut Criterion) {
    deploy_times();
    let rt = runtime_with_models(
        &[minilm_model()],
        &[embed("embed", true), embed("embed-fresh", false)],
    );
    let req = request(
        serde_json::to_vec(&serde_json::json!({ "input": SENTENCE })).expect("JSON"),
        "application/json",
        &[],
    );
    let a = rt.handle("embed", &req).expect("embed serves");
    let b = rt.handle("embed-fresh", &req).expect("embed-fresh serves");
    assert_eq!(a.response.body, b.response.body, "the same answer");

    let mut group = c.benchmark_group("preinit");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let inputs = model_inputs(&rt);
    let models = rt.models();
    group.bench_function("tract/b1_short", |b| {
        b.iter_batched(
            || inputs.clone(),
            |inputs| models.run(MODEL, inputs).expect("model runs"),
            BatchSize::SmallInput,
        );
    });
    group.bench_function("guest-preinit/b1_short", |b| {
        b.iter(|| rt.handle("embed", black_box(&req)).expect("serves"));
    });
    group.bench_function("guest-fresh/b1_short", |b| {
        b.iter(|| rt.handle("embed-fresh", black_box(&req)).expect("serves"));
    });
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    preinit(&mut criterion);
    criterion.final_summary();
}
