//! Plans optimised for the input shapes a model is actually called with.
//!
//! A model whose inputs have symbolic dimensions (MiniLM's `["B", "S"]`) is optimised once
//! at load with the sizes unknown. That generic plan runs every shape, but tract picks its
//! matrix kernels without knowing the sizes and cannot fuse the element-wise operators
//! around them. Told the sizes, it does much better: MiniLM with 32 inputs of 16 tokens
//! ran in 108 ms on a plan optimised for that shape against 169 ms on the generic one
//! (BENCHMARKS.md, "Where MiniLM's time goes").
//!
//! So the backend counts the shapes it is called with. A shape seen a second time gets a
//! plan of its own, optimised on a background thread at the lowest CPU priority (only idle
//! cycles go to it, so requests in flight are not slowed); runs of that shape use it as
//! soon as it is ready, and the generic plan meanwhile. No request ever waits for an
//! optimisation. At most `capacity` plans are kept, first come first served and never
//! evicted: each holds its own packed copy of the weights (about 45 MB for MiniLM), and a
//! stream of ever-new shapes must not keep a core busy optimising. Callers that control
//! their shapes (the embed guest pads sequences to a few lengths) get the most from it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tract_onnx::prelude::*;

/// A shape is optimised for once it has been seen this many times.
const SEEN_BEFORE_OPTIMISING: u32 = 2;
/// Shapes counted at most; the counts start over past it (a guard against unbounded
/// growth when callers send ever-new shapes).
const SHAPES_COUNTED: usize = 4096;

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
struct SymbolAt {
    symbol: Symbol,
    input: usize,
    axis: usize,
}

#[derive(Default)]
struct State {
    ready: HashMap<ShapeKey, Arc<TypedRunnableModel>>,
    seen: HashMap<ShapeKey, u32>,
    optimising: HashSet<ShapeKey>,
    /// Shapes tract could not specialise (logged once, never retried).
    refused: HashSet<ShapeKey>,
}

impl ShapePlans {
    /// Plans for `model` (typed, not yet optimised), at most `capacity` of them; `None`
    /// when there is nothing to specialise: no symbolic input dimension, or capacity 0.
    pub fn new(model: &TypedModel, capacity: usize) -> TractResult<Option<Self>> {
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
        if let Some(plan) = state.ready.get(&key) {
            return Some(plan.clone());
        }
        if state.seen.len() >= SHAPES_COUNTED {
            state.seen.clear();
        }
        let seen = state.seen.entry(key.clone()).or_default();
        *seen = seen.saturating_add(1);
        let earned = *seen >= SEEN_BEFORE_OPTIMISING;
        let room = state.ready.len() + state.optimising.len() < self.capacity;
        if earned && room && !state.optimising.contains(&key) && !state.refused.contains(&key) {
            state.optimising.insert(key.clone());
            drop(state);
            self.optimise_in_background(key);
        }
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
                        state.ready.insert(job_key, plan);
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

/// `model` with the symbols bound to `values`, optimised and ready to run.
fn specialise(
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
