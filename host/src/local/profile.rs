//! Where a local model's time goes, operator by operator (`hybrid profile`).
//!
//! The model is loaded as the server loads it (the config's input declarations pinned),
//! optimised either for one concrete input shape (the plan [`super::shape_plans`] would
//! make for it) or, with `generic`, with its symbolic dimensions unknown (the plan every
//! other shape runs on). Inputs are ones for integer types (a token id, an attention mask
//! that attends everywhere) and zeros for floats: the operators in the models this host
//! runs do the same work whatever the values, but all-zero masks and ids can push a
//! transformer's arithmetic into subnormal numbers, which CPUs run far slower. Each run's operators are
//! timed one by one and summed by operator (matrix products also by their sizes and the
//! kernel tract chose), and the plain runs are timed without the per-operator clock.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::plan::eval;
use tract_onnx::tract_hir::internal::DimLike;

use crate::config::ModelConfig;

/// What `hybrid profile` measured.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The symbol values the plan was made for; empty for the generic plan.
    pub shape: Vec<(String, usize)>,
    /// The time tract took to optimise and prepare the plan.
    pub optimise: Duration,
    /// Runs measured (after three warm-up runs).
    pub runs: usize,
    /// Mean wall time of one run, without the per-operator clock.
    pub per_run: Duration,
    /// Mean CPU time of one run on the thread that ran it (where the OS tells it:
    /// Linux), which other work on the machine inflates far less than wall time.
    pub cpu_per_run: Option<Duration>,
    /// Mean wall time of one run with every operator timed (the clock's own cost shows
    /// as the difference with `per_run`).
    pub per_run_timed: Duration,
    /// Time per run by operator, most expensive first.
    pub operators: Vec<OperatorTime>,
}

/// The time one kind of operator took per run.
#[derive(Debug, Clone)]
pub struct OperatorTime {
    /// tract's name of the operator; for matrix products, also the sizes (m, k, n) and
    /// the kernel chosen.
    pub operator: String,
    /// Nodes of the plan that run it.
    pub nodes: usize,
    /// Mean time per run, all its nodes together.
    pub per_run: Duration,
    /// Its share of the timed run.
    pub share: f64,
}

/// Profiles the model of `config` on inputs shaped by `symbols` (every symbolic input
/// dimension needs a value), `runs` times, on a plan optimised for that shape or, with
/// `generic`, on the plan for any shape.
pub fn profile(
    config: &ModelConfig,
    symbols: &[(String, usize)],
    runs: usize,
    generic: bool,
) -> anyhow::Result<Profile> {
    let typed = super::tract_backend::pinned(config)?
        .into_typed()
        .context("analysing the graph")?;
    let bound = bind_symbols(&typed, symbols)?;
    let values = bound
        .iter()
        .fold(SymbolValues::default(), |v, (s, n)| v.with(s, *n as i64));
    let inputs = sample_inputs(&typed, &values)?;
    let started = Instant::now();
    let plan = if generic {
        typed.into_optimized().and_then(|m| m.into_runnable())
    } else {
        super::shape_plans::specialise(&typed, &bound)
    }
    .context("optimising the graph")?;
    let optimise = started.elapsed();
    let mut state = plan.spawn()?;
    for _ in 0..3 {
        state.run(inputs.clone())?;
    }
    let runs = runs.max(1);
    let started = Instant::now();
    let cpu_before = thread_cpu_time();
    for _ in 0..runs {
        state.run(inputs.clone())?;
    }
    let per_run = started.elapsed() / runs as u32;
    let cpu_per_run = cpu_before
        .zip(thread_cpu_time())
        .map(|(before, after)| after.saturating_sub(before) / runs as u32);
    super::vector_state::clear_upper_halves();

    let mut by_operator: HashMap<String, (usize, Duration)> = HashMap::new();
    let started = Instant::now();
    for _ in 0..runs {
        state.run_plan_with_eval(inputs.clone(), |session, op_state, node, input| {
            let started = Instant::now();
            let outputs = eval(session, op_state, node, input);
            let entry = by_operator.entry(operator_label(node)).or_default();
            entry.0 += 1;
            entry.1 += started.elapsed();
            outputs
        })?;
    }
    let per_run_timed = started.elapsed() / runs as u32;
    super::vector_state::clear_upper_halves();
    let total: Duration = by_operator.values().map(|(_, t)| *t).sum();
    let mut operators: Vec<OperatorTime> = by_operator
        .into_iter()
        .map(|(operator, (nodes, time))| OperatorTime {
            operator,
            nodes: nodes / runs,
            per_run: time / runs as u32,
            share: time.as_secs_f64() / total.as_secs_f64().max(f64::MIN_POSITIVE),
        })
        .collect();
    operators.sort_by_key(|op| std::cmp::Reverse(op.per_run));
    Ok(Profile {
        shape: if generic {
            Vec::new()
        } else {
            symbols.to_vec()
        },
        optimise,
        runs,
        per_run,
        cpu_per_run,
        per_run_timed,
        operators,
    })
}

/// Every input symbol of `model` with its value from `given`; an error names what is
/// missing or unknown.
fn bind_symbols(
    model: &TypedModel,
    given: &[(String, usize)],
) -> anyhow::Result<Vec<(Symbol, usize)>> {
    let declared: Vec<Symbol> = super::shape_plans::input_symbols(model)?
        .into_iter()
        .map(|s| s.symbol)
        .collect();
    let names: Vec<String> = declared.iter().map(|s| s.to_string()).collect();
    let mut bound = Vec::new();
    for (name, value) in given {
        let Some(symbol) = declared.iter().find(|s| s.to_string() == *name) else {
            bail!("the model's inputs have no dimension {name:?}; theirs: {names:?}");
        };
        bound.push((symbol.clone(), *value));
    }
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !given.iter().any(|(g, _)| g == *n))
        .collect();
    if !missing.is_empty() {
        bail!("give a size for every symbolic input dimension: missing {missing:?} (as NAME=SIZE)");
    }
    Ok(bound)
}

/// Each input at its type and shape, with the symbols at `values`: ones for integer types,
/// zeros for the others.
fn sample_inputs(model: &TypedModel, values: &SymbolValues) -> anyhow::Result<TVec<TValue>> {
    model
        .input_outlets()?
        .iter()
        .map(|outlet| {
            let fact = model.outlet_fact(*outlet)?;
            let dims: Vec<usize> = fact
                .shape
                .iter()
                .map(|d| d.eval(values).to_usize().map_err(anyhow::Error::from))
                .collect::<TractResult<_>>()?;
            let tensor = if fact.datum_type.is_integer() {
                tract_onnx::prelude::Tensor::from(tract_ndarray::ArrayD::<i64>::ones(dims))
                    .cast_to_dt(fact.datum_type)?
                    .into_owned()
            } else {
                tract_onnx::prelude::Tensor::zero_dt(fact.datum_type, &dims)?
            };
            Ok(tensor.into_tvalue())
        })
        .collect()
}

/// The CPU time the calling thread has used, from `/proc/thread-self/schedstat` (its
/// first field, in nanoseconds); `None` where there is no such file.
fn thread_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// `Softmax`, or for a matrix product `OptMatMul m:384 k:1536 n:16 avx512_mmm_f32_16x8`.
fn operator_label(node: &TypedNode) -> String {
    let name = node.op().name();
    if name != "OptMatMul" {
        return name.into_owned();
    }
    let info = node.op().info().unwrap_or_default();
    match info.iter().find_map(|line| line.strip_prefix("Mult: ")) {
        Some(mult) => format!("{name} {}", mult.replace("with [", "").replace(']', "")),
        None => name.into_owned(),
    }
}
