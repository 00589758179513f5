//! all-MiniLM-L6-v2 sentence embeddings: run by tract directly, and through the embed
//! guest, for batches of 1 and 32 inputs of 16 and 128 tokens each.
//!
//! Every input is `[CLS]`, `S - 2` times the word "hello", `[SEP]` (the guest's request
//! text is "hello hello ...", which it tokenises to exactly that), so both sides run the
//! model on the same `[B, S]` shape with no padding. The tract figure is
//! `ModelRegistry::run` (input checks included, inputs built outside the timed part);
//! the guest figure is `Runtime::handle` with a fresh instance per request, as served:
//! JSON parsing, fetching and parsing the 30 522-token vocabulary, tokenisation, the
//! model run(s), pooling and the JSON response. Throughput is in embeddings (inputs) per
//! second. `models/minilm/bench_ort.py` measures onnxruntime (one thread) on the same
//! shapes for comparison.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkGroup, Criterion, Throughput};
use hybrid::local::{ElementType, NamedTensor, Tensor};
use hybrid::runtime::Runtime;
use hybrid_tests::{component, minilm_model, pipeline, request, runtime_with_models};

const MODEL: &str = "minilm-l6-v2";
const PIPELINE: &str = "embed";
/// Vocabulary ids of `[CLS]`, `[SEP]` and "hello".
const CLS: i64 = 101;
const SEP: i64 = 102;
const HELLO: i64 = 7592;

fn i64_tensor(name: &str, dims: Vec<usize>, values: &[i64]) -> NamedTensor {
    NamedTensor {
        name: name.into(),
        tensor: Tensor {
            dims,
            ty: ElementType::I64,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        },
    }
}

/// The model inputs for `batch` sequences of `seq` tokens.
fn model_inputs(batch: usize, seq: usize) -> Vec<NamedTensor> {
    let mut row = vec![HELLO; seq];
    row[0] = CLS;
    row[seq - 1] = SEP;
    let ids: Vec<i64> = row.iter().copied().cycle().take(batch * seq).collect();
    vec![
        i64_tensor("input_ids", vec![batch, seq], &ids),
        i64_tensor("attention_mask", vec![batch, seq], &vec![1; batch * seq]),
    ]
}

/// The OpenAI request body for the same inputs.
fn request_body(batch: usize, seq: usize) -> Vec<u8> {
    let text = vec!["hello"; seq - 2].join(" ");
    serde_json::to_vec(&serde_json::json!({ "input": vec![text; batch] })).expect("JSON")
}

fn compare(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &Runtime,
    batch: usize,
    seq: usize,
) {
    let label = format!("b{batch}_s{seq}");
    group.throughput(Throughput::Elements(batch as u64));
    let inputs = model_inputs(batch, seq);
    let models = rt.models();
    group.bench_function(format!("tract/{label}"), |b| {
        b.iter_batched(
            || inputs.clone(),
            |inputs| models.run(MODEL, inputs).expect("model runs"),
            BatchSize::SmallInput,
        );
    });

    let req = request(request_body(batch, seq), "application/json", &[]);
    let outcome = rt.handle(PIPELINE, &req).expect("embed serves");
    assert_eq!(
        outcome.model_runs.len(),
        1,
        "one model run, as on the tract side"
    );
    let v: serde_json::Value = serde_json::from_slice(&outcome.response.body).expect("JSON");
    assert_eq!(
        v["usage"]["prompt_tokens"],
        batch * seq,
        "same shape as tract"
    );
    group.bench_function(format!("guest/{label}"), |b| {
        b.iter(|| rt.handle(PIPELINE, black_box(&req)).expect("embed serves"));
    });
}

fn embeddings(c: &mut Criterion) {
    let rt = runtime_with_models(
        &[minilm_model()],
        &[pipeline(PIPELINE, component("embed"), 60_000, 256)],
    );
    let mut group = c.benchmark_group("embeddings");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    compare(&mut group, &rt, 1, 16);
    compare(&mut group, &rt, 1, 128);
    // A batch of 32 x 128 tokens takes seconds: the fewest samples criterion allows.
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    compare(&mut group, &rt, 32, 16);
    compare(&mut group, &rt, 32, 128);
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    embeddings(&mut criterion);
    criterion.final_summary();
}
