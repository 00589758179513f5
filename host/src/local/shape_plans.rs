//! Plans optimised for the input shapes a model is actually called with.
//!
//! A model whose inputs have symbolic dimensions (MiniLM's `["B", "S"]`) is optimised once
//! at load with the sizes unknown. That generic plan runs every shape, but tract picks its
//! matrix kernels without knowing the sizes and cannot fuse the element-wise operators
//! around them. Told the sizes, it does much better: MiniLM with 32 inputs of 16 tokens
//! took 118 ms of CPU on a plan optimised for that shape against 216 ms on the generic one
//! (BENCHMARKS.md, "Where MiniLM's time goes").
//!
//! So the backend counts the shapes it is called with. A shape seen a second time gets a
//! plan of its own, optimised on a background thread at the lowest CPU priority (only idle
//! cycles go to it, so requests in flight are not slowed); runs of that shape use it as
//! soon as it is ready, and the generic plan meanwhile. No request ever waits for an
//! optimisation. At most `capacity` plans are kept: each holds its own packed copy of the
//! weights (about 45 MB for MiniLM). When they are all taken, a shape replaces the least
//! used plan only once it has been called more than twice as often since (counts are
//! halved every [`AGE_EVERY`] calls, so what counts is recent traffic): the plans follow
//! the traffic, and a stream of ever-new shapes cannot keep a core busy optimising.
//! Callers that control their shapes (the embed guest pads sequences to a few lengths)
//! get the most from it.
//!
//! A shape's plan computes the same function with other kernels, so its outputs may differ
//! from the generic plan's in the last bits (MiniLM at 1 x 16: none; Silero VAD: 6e-8):
//! the same request can come back a few ulps apart before and after its plan is ready.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tract_onnx::prelude::*;

/// A shape is optimised for once it has been seen this many times.
const SEEN_BEFORE_OPTIMISING: u32 = 2;
/// Shapes counted at most; the counts start over past it (a guard against unbounded
/// growth when callers send ever-new shapes).
const SHAPES_COUNTED: usize = 4096;
/// Every this many calls, all counts are halved: old traffic fades.
const AGE_EVERY: u32 = 1024;

/// Values of the model's input symbols, in [`ShapePlans::symbols`] order.
type ShapeKey = Vec<usize>;

/// The shape-specialised plans of one model, and what is needed to make more.
pub struct ShapePlans {
    /// The typed model, symbols unbound: the starting point of every specialisation.
    model: Arc<TypedModel>,
    /// Each input symbol, and where its value is read in a call's inputs.
    symbols: Vec<SymbolAt>,
    capacity: usize,
    state: Arc<Mutex<State>>,
}

/// A symbol and the first input axis that carries it.
#[derive(Debug, Clone)]
pub(super) struct SymbolAt {
    pub(super) symbol: Symbol,
    input: usize,
    axis: usize,
}

#[derive(Default)]
struct State {
    /// The plans made, with the calls they served (aged).
    ready: HashMap<ShapeKey, (Arc<TypedRunnableModel>, u32)>,
    /// Calls of shapes without a plan (aged).
    seen: HashMap<ShapeKey, u32>,
    /// Calls since the counts were last halved.
    calls: u32,
    optimising: HashSet<ShapeKey>,
    /// Shapes tract could not specialise (logged once, never retried).
    refused: HashSet<ShapeKey>,
}

impl ShapePlans {
    /// Plans for `model` (typed, not yet optimised), at most `capacity` of them; `None`
    /// when there is nothing to specialise: no symbolic input dimension, or capacity 0.
    pub fn new(model: &TypedModel, capacity: usize) -> TractResult<Option<Self>> {
        let symbols = input_symbols(model)?;
        if symbols.is_empty() || capacity == 0 {
            return Ok(None);
        }
        Ok(Some(Self {
            model: Arc::new(model.clone()),
            symbols,
            capacity,
            state: Arc::default(),
        }))
    }

    /// The plan made for the shapes `dims` (one per input, in the model's order) if there
    /// is one; otherwise counts the shape, starts optimising for it when it has earned a
    /// plan, and returns `None` (the caller runs the generic plan).
    pub fn plan_for(&self, dims: &[&[usize]]) -> Option<Arc<TypedRunnableModel>> {
        let key = self.key(dims)?;
        let mut state = lock(&self.state);
        state.age();
        if let Some((plan, served)) = state.ready.get_mut(&key) {
            *served = served.saturating_add(1);
            return Some(plan.clone());
        }
        if state.seen.len() >= SHAPES_COUNTED {
            state.seen.clear();
        }
        let seen = state.seen.entry(key.clone()).or_default();
        *seen = seen.saturating_add(1);
        let seen = *seen;
        if seen < SEEN_BEFORE_OPTIMISING
            || state.optimising.contains(&key)
            || state.refused.contains(&key)
        {
            return None;
        }
        if state.ready.len() + state.optimising.len() >= self.capacity {
            // Full: replace the least used plan, but only for a shape clearly busier.
            let least_used = state
                .ready
                .iter()
                .min_by_key(|(_, (_, served))| *served)
                .map(|(k, (_, served))| (k.clone(), *served));
            match least_used {
                Some((victim, served)) if seen > served.saturating_mul(2) => {
                    state.ready.remove(&victim);
                }
                _ => return None,
            }
        }
        state.optimising.insert(key.clone());
        drop(state);
        self.optimise_in_background(key);
        None
    }

    /// How many shape-specialised plans are ready.
    pub fn ready(&self) -> usize {
        lock(&self.state).ready.len()
    }

    /// The symbol values of a call, or `None` if an input lacks the axis (the registry
    /// checks shapes before a run, so that does not happen in practice).
    fn key(&self, dims: &[&[usize]]) -> Option<ShapeKey> {
        self.symbols
            .iter()
            .map(|s| dims.get(s.input)?.get(s.axis).copied())
            .collect()
    }

    fn optimise_in_background(&self, key: ShapeKey) {
        let model = self.model.clone();
        let values: Vec<(Symbol, usize)> = self
            .symbols
            .iter()
            .zip(&key)
            .map(|(s, &v)| (s.symbol.clone(), v))
            .collect();
        let state = self.state.clone();
        let job_key = key.clone();
        let spawned = std::thread::Builder::new()
            .name("hybrid-plan".into())
            .spawn(move || {
                lowest_priority_for_this_thread();
                let started = Instant::now();
                let shape = describe(&values);
                let outcome = specialise(&model, &values);
                let mut state = lock(&state);
                state.optimising.remove(&job_key);
                match outcome {
                    Ok(plan) => {
                        tracing::info!(
                            shape = %shape,
                            elapsed_ms = started.elapsed().as_millis() as u64,
                            "optimised a model plan for an input shape"
                        );
                        let served = state.seen.remove(&job_key).unwrap_or_default();
                        state.ready.insert(job_key, (plan, served));
                    }
                    Err(e) => {
                        tracing::warn!(shape = %shape, error = %format!("{e:#}"),
                            "could not optimise a model plan for an input shape; the generic plan serves it");
                        state.refused.insert(job_key);
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not start the plan optimiser thread");
            lock(&self.state).optimising.remove(&key);
        }
    }
}

impl State {
    /// Counts one call; every [`AGE_EVERY`] calls, halves every count.
    fn age(&mut self) {
        self.calls += 1;
        if self.calls < AGE_EVERY {
            return;
        }
        self.calls = 0;
        for (_, served) in self.ready.values_mut() {
            *served /= 2;
        }
        self.seen.retain(|_, seen| {
            *seen /= 2;
            *seen > 0
        });
    }
}

/// Every symbol that is a whole dimension of one of `model`'s inputs, in input and axis
/// order, each with the first place it appears.
pub(super) fn input_symbols(model: &TypedModel) -> TractResult<Vec<SymbolAt>> {
    let mut symbols: Vec<SymbolAt> = Vec::new();
    for (input, outlet) in model.input_outlets()?.iter().enumerate() {
        for (axis, dim) in model.outlet_fact(*outlet)?.shape.iter().enumerate() {
            if let TDim::Sym(symbol) = dim
                && !symbols.iter().any(|s| &s.symbol == symbol)
            {
                symbols.push(SymbolAt {
                    symbol: symbol.clone(),
                    input,
                    axis,
                });
            }
        }
    }
    Ok(symbols)
}

/// `model` with the symbols bound to `values`, optimised and ready to run.
pub(super) fn specialise(
    model: &TypedModel,
    values: &[(Symbol, usize)],
) -> TractResult<Arc<TypedRunnableModel>> {
    let subs = values
        .iter()
        .map(|(s, v)| (s.clone(), TDim::from(*v)))
        .collect();
    model.set_symbols(&subs)?.into_optimized()?.into_runnable()
}

/// `B=1, S=16`, for the log.
fn describe(values: &[(Symbol, usize)]) -> String {
    values
        .iter()
        .map(|(s, v)| format!("{s}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// Lowers the calling thread to nice 19, so that optimising uses only idle CPU time. On
/// Linux the nice value is per thread (`setpriority` with `who = 0` means this thread).
/// Best effort: where it fails or is not supported, the thread keeps its priority.
fn lowest_priority_for_this_thread() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `setpriority` takes no pointers; any outcome is an error code.
        #[allow(unsafe_code)]
        let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// `x -> x` for `x: f32 [N, 2]`: the smallest model with a symbolic input dimension.
    fn identity() -> TypedModel {
        let mut model = TypedModel::default();
        let n = model.symbols.sym("N");
        let fact = f32::fact([TDim::from(n), TDim::from(2)]);
        let x = model.add_source("x", fact).expect("source");
        model.select_output_outlets(&[x]).expect("output");
        model
    }

    fn plans(capacity: usize) -> ShapePlans {
        ShapePlans::new(&identity(), capacity)
            .expect("reads the symbols")
            .expect("N is symbolic")
    }

    impl ShapePlans {
        /// Whether `n` rows have a plan, without counting a call.
        fn has_plan(&self, n: usize) -> bool {
            lock(&self.state).ready.contains_key(&vec![n])
        }

        fn wait_until(&self, what: impl Fn(&Self) -> bool) {
            let until = Instant::now() + Duration::from_secs(30);
            while !what(self) {
                assert!(Instant::now() < until, "timed out");
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }

    fn call(plans: &ShapePlans, n: usize) -> bool {
        plans.plan_for(&[&[n, 2]]).is_some()
    }

    #[test]
    fn a_shape_called_twice_gets_a_plan_that_later_calls_use() {
        let plans = plans(2);
        assert!(!call(&plans, 3));
        assert!(!call(&plans, 3), "the plan is made in the background");
        plans.wait_until(|p| p.has_plan(3));
        assert!(call(&plans, 3));
        assert_eq!(plans.ready(), 1);
        assert!(!plans.has_plan(4));
    }

    #[test]
    fn when_full_a_clearly_busier_shape_replaces_the_least_used_plan() {
        let plans = plans(1);
        call(&plans, 1);
        call(&plans, 1);
        plans.wait_until(|p| p.has_plan(1));
        // The plan for 1 row was earned with 2 calls: 3 must first exceed twice that.
        for _ in 0..4 {
            call(&plans, 3);
        }
        std::thread::sleep(Duration::from_millis(100));
        assert!(plans.has_plan(1) && !plans.has_plan(3));
        call(&plans, 3);
        plans.wait_until(|p| p.has_plan(3));
        assert!(!plans.has_plan(1));
        assert_eq!(plans.ready(), 1);
    }

    #[test]
    fn counts_fade_so_old_traffic_does_not_hold_a_plan_forever() {
        let plans = plans(1);
        call(&plans, 1);
        call(&plans, 1);
        plans.wait_until(|p| p.has_plan(1));
        for _ in 0..1000 {
            assert!(call(&plans, 1));
        }
        // 1,002 calls for one row: without ageing, five rows would need over 2,004 calls
        // to replace its plan; halving every 1,024 calls brings that near 1,000.
        for _ in 0..1500 {
            call(&plans, 5);
        }
        plans.wait_until(|p| p.has_plan(5));
        assert!(!plans.has_plan(1));
    }

    #[test]
    fn no_plans_without_a_symbolic_input_or_with_capacity_zero() {
        assert!(ShapePlans::new(&identity(), 0).expect("reads").is_none());
        let mut fixed = TypedModel::default();
        let x = fixed.add_source("x", f32::fact([3, 2])).expect("source");
        fixed.select_output_outlets(&[x]).expect("output");
        assert!(ShapePlans::new(&fixed, 4).expect("reads").is_none());
    }
}
