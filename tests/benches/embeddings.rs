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
//! shapes for comparison. Both run the model with `split_batch` off, one thread per run,
//! as onnxruntime does.
//!
//! Both cores for batches (`split_batch = "B"`, as `hybrid.toml` ships MiniLM): the
//! `tract_split` cases run batch 32 through a registry that splits it across the CPU
//! slots free at the time (on an idle box, all of them). Then, outside criterion, the
//! same registries under concurrent load: two clients each sending batches back to back,
//! and a batch client beside a client sending one sentence every 25 ms; each prints the
//! per-request latency percentiles, split and unsplit, and how many runs split.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkGroup, Criterion, Throughput};
use hybrid::config::ModelConfig;
use hybrid::local::{ElementType, ModelRegistry, NamedTensor, Tensor};
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

/// MiniLM as `hybrid.toml` declares it, with `split_batch` off.
fn unsplit_minilm() -> ModelConfig {
    ModelConfig {
        split_batch: None,
        ..minilm_model()
    }
}

/// Batch 32 through the registry, unsplit and split across the free CPU slots.
fn split_vs_unsplit(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    whole: &ModelRegistry,
    split: &ModelRegistry,
    seq: usize,
) {
    let label = format!("b32_s{seq}");
    group.throughput(Throughput::Elements(32));
    let inputs = model_inputs(32, seq);
    let probe = split.run(MODEL, inputs.clone()).expect("model runs");
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    assert_eq!(
        probe.parts,
        cores.min(32),
        "an idle registry splits across every core"
    );
    for (name, registry) in [("tract_unsplit", whole), ("tract_split", split)] {
        group.bench_function(format!("{name}/{label}"), |b| {
            b.iter_batched(
                || inputs.clone(),
                |inputs| registry.run(MODEL, inputs).expect("model runs"),
                BatchSize::SmallInput,
            );
        });
    }
}

/// Per-request latencies of one client, and how many of its runs were split.
struct Client {
    latencies: Vec<Duration>,
    split_runs: usize,
}

impl Client {
    /// Sends `requests` runs of `inputs` to `registry`, `gap` apart (back to back when
    /// zero).
    fn run(
        registry: &ModelRegistry,
        inputs: &[NamedTensor],
        requests: usize,
        gap: Duration,
    ) -> Self {
        let mut client = Self {
            latencies: Vec::with_capacity(requests),
            split_runs: 0,
        };
        for _ in 0..requests {
            let inputs = inputs.to_vec();
            let started = Instant::now();
            let run = registry.run(MODEL, inputs).expect("model runs");
            client.latencies.push(started.elapsed());
            client.split_runs += usize::from(run.parts > 1);
            if !gap.is_zero() {
                std::thread::sleep(gap);
            }
        }
        client
    }

    fn report(label: &str, clients: &[Client], wall: Duration) {
        let mut all: Vec<Duration> = clients.iter().flat_map(|c| c.latencies.clone()).collect();
        all.sort_unstable();
        let at = |q: f64| all[((all.len() as f64 * q).ceil() as usize).clamp(1, all.len()) - 1];
        let runs = all.len();
        let split: usize = clients.iter().map(|c| c.split_runs).sum();
        println!(
            "{label:<44} n={runs:<4} p50 {:>8.1} ms  p99 {:>8.1} ms  max {:>8.1} ms  split {split}/{runs}  wall {:.1} s",
            at(0.50).as_secs_f64() * 1e3,
            at(0.99).as_secs_f64() * 1e3,
            all[runs - 1].as_secs_f64() * 1e3,
            wall.as_secs_f64(),
        );
    }
}

/// Two clients each sending batch 32 back to back: with every slot busy nothing should
/// split, so the latencies should match the unsplit registry's.
fn two_batch_clients(registry: &Arc<ModelRegistry>, label: &str, seq: usize, per_client: usize) {
    let inputs = model_inputs(32, seq);
    let started = Instant::now();
    let clients: Vec<Client> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| s.spawn(|| Client::run(registry, &inputs, per_client, Duration::ZERO)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client"))
            .collect()
    });
    Client::report(
        &format!("2 clients x b32_s{seq}, {label}"),
        &clients,
        started.elapsed(),
    );
}

/// One client sending batch 32 x `seq` back to back beside one sending a single 16-token
/// sentence every 25 ms: the single sentences' latencies, with the batch split or not.
fn batch_beside_single(registry: &Arc<ModelRegistry>, label: &str, seq: usize, singles: usize) {
    let batch = model_inputs(32, seq);
    let single = model_inputs(1, 16);
    let done = std::sync::atomic::AtomicBool::new(false);
    let started = Instant::now();
    let (single_client, batch_client) = std::thread::scope(|s| {
        let batches = s.spawn(|| {
            let mut client = Client {
                latencies: Vec::new(),
                split_runs: 0,
            };
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let one = Client::run(registry, &batch, 1, Duration::ZERO);
                client.latencies.extend(one.latencies);
                client.split_runs += one.split_runs;
            }
            client
        });
        let single_client = Client::run(registry, &single, singles, Duration::from_millis(25));
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        (single_client, batches.join().expect("batch client"))
    });
    let wall = started.elapsed();
    Client::report(
        &format!("b1_s16 every 25 ms beside b32_s{seq}, {label}"),
        &[single_client],
        wall,
    );
    Client::report(
        &format!("  (the b32_s{seq} client beside it, {label})"),
        &[batch_client],
        wall,
    );
}

fn under_load(whole: &Arc<ModelRegistry>, split: &Arc<ModelRegistry>) {
    println!(
        "\nconcurrent load (tract through the registry, {} cores):",
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    for (seq, per_client) in [(16, 40), (128, 6)] {
        for (label, registry) in [("unsplit", whole), ("split", split)] {
            two_batch_clients(registry, label, seq, per_client);
        }
    }
    for (seq, singles) in [(16, 200), (128, 120)] {
        for (label, registry) in [("unsplit", whole), ("split", split)] {
            batch_beside_single(registry, label, seq, singles);
        }
    }
}

fn embeddings(c: &mut Criterion) {
    let rt = runtime_with_models(
        &[unsplit_minilm()],
        &[pipeline(PIPELINE, component("embed"), 60_000, 256)],
    );
    let whole = Arc::new(ModelRegistry::load(&[unsplit_minilm()]).expect("MiniLM loads"));
    let split = Arc::new(ModelRegistry::load(&[minilm_model()]).expect("MiniLM loads"));
    assert!(
        split.get(MODEL).and_then(|m| m.batch_split()).is_some(),
        "hybrid.toml splits MiniLM's batches"
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
    split_vs_unsplit(&mut group, &whole, &split, 16);
    split_vs_unsplit(&mut group, &whole, &split, 128);
    group.finish();
    if std::env::var_os("HYBRID_BENCH_SKIP_LOAD").is_none() {
        under_load(&whole, &split);
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    embeddings(&mut criterion);
    criterion.final_summary();
}
