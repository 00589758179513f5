//! Standard `wasi:nn` (`wasi:nn@0.2.0-rc-2024-10-28`) on the host, backed by tract and
//! the model registry, so ML components written for other runtimes run here unchanged.
//!
//! What it owns: the one `bindgen!` of the published WIT (`wit/deps/wasi-nn/wasi-nn.wit`,
//! byte for byte the file of WebAssembly/wasi-nn tag `0.2.0-rc-2024-10-28`, sha256
//! `362c214e8192a7b4754575c6c22813409323690d089742504e661f3e5f5d2fe2`, the same file
//! wasmtime 48 ships in `crates/wasi-nn/wit`), the host's types behind its four resources,
//! and a borrowed view ([`NnView`]) the linker hands each call. The calls themselves are
//! in [`host`]. A request's wasi:nn work takes these steps:
//! 1. `load-by-name(name)` finds `name` in the request's model registry and hands out a
//!    graph holding the loaded, optimised model (an `Arc`: nothing is copied or
//!    re-optimised per request); `load(builders, onnx, cpu)` parses and optimises guest
//!    bytes with tract, only if `[runtime.nn] load_bytes_max` allows it;
//! 2. `init-execution-context` is free: tract plans are immutable, each run has its own
//!    state;
//! 3. `compute` takes the input tensors from the resource table, checks them against the
//!    model's declared inputs (names, element types, shapes, byte lengths), counts the run
//!    against the pipeline's `limits.model_runs`, runs it on the registry's CPU slots and
//!    records it like a `local.run` (routing record, metrics), then hands back the
//!    outputs in the model's order under their names;
//! 4. every guest-actionable failure is an `error` resource with the matching code and a
//!    `data` string that says what to change; host bugs (a stale handle) trap.
//!
//! # Why not the `wasmtime-wasi-nn` crate
//!
//! The crate of the pinned wasmtime (48.x) was the first choice, and its `BackendInner`
//! trait and `GraphRegistry` do let a tract backend and our registry plug in with default
//! features off. It is not used, for three reasons read from its v48.0.0 source
//! (`crates/wasi-nn/src/wit.rs`): (1) it maps every backend failure of `load`,
//! `init-execution-context` and `compute` to `runtime-error`, so the codes this host must
//! give (`invalid-argument` for a wrong tensor type or shape, `too-large`,
//! `unsupported-operation` for a target, `security` when loading bytes is off) cannot be
//! produced, and an unknown encoding is `invalid-encoding` rather than
//! `unsupported-operation`; (2) its context owns the backends and registry by `&mut`
//! per store, with no hook for the per-request run limit, run records or the request's
//! registry snapshot (a model swap mid-request must not change what the request sees);
//! (3) it depends unconditionally on `wiggle` (the legacy WITX ABI) that no other crate
//! here builds: `cargo tree` adds `wiggle`, `wiggle-macro`, `wiggle-generate`, `witx`,
//! `wast` 35, `leb128` and `thiserror` 1, and a host-side `wasmtime-environ` for the
//! proc macro. Compiled alone on the 2-core development machine (2026-12-02, no other
//! build running; our dev profile): `witx` 22.1 s, `wiggle-generate` 16.1 s,
//! `thiserror-impl` 1.x 13.9 s, `wiggle-macro` 4.3 s, `wast` 3.1 s, the host-side
//! `wasmtime-environ` 21.9 s; a minute or more of a fresh clone's CI build for a WITX ABI
//! nobody here calls. What it would have saved is this module's plumbing, about 150
//! lines, written here in the same shape (one `bindgen!` with `with:` for the resources,
//! a context plus a borrowed view, an `add_to_linker`); the tract side would have been
//! the same either way.

mod host;

use std::sync::Arc;

use wasmtime::component::{HasData, Linker, ResourceTable};

use super::local_host::LocalCtx;
use crate::config::NnConfig;
use crate::local::LocalModel;

/// Host bindings for the published `wasi:nn` WIT: its `ml` world (the four interfaces).
mod generated {
    // Generated code carries no doc comments of its own; the WIT file documents it.
    #![allow(missing_docs)]

    wasmtime::component::bindgen!({
        path: "../wit/deps/wasi-nn",
        world: "wasi:nn/ml",
        with: {
            "wasi:nn/graph.graph": super::Graph,
            "wasi:nn/tensor.tensor": super::Tensor,
            "wasi:nn/inference.graph-execution-context": super::ExecutionContext,
            "wasi:nn/errors.error": super::NnError,
        },
        // Every call may trap: a stale handle from a broken guest is a host-side fault.
        imports: { default: trappable },
    });
}

use generated::wasi::nn::errors::ErrorCode;
use generated::wasi::nn::tensor::TensorType;

/// A `wasi:nn` graph: a model ready to run, shared with every other holder.
pub struct Graph {
    model: Arc<LocalModel>,
    /// What run records and metrics call it: the registry name, or
    /// [`GUEST_BYTES_LABEL`] for models a guest loaded.
    label: String,
}

/// The model label of runs of models a guest loaded from bytes: one label for all of
/// them, so metrics keep a bounded set of series (the version is the bytes' short sha256).
pub const GUEST_BYTES_LABEL: &str = "wasi-nn-bytes";

/// A `wasi:nn` execution context: the graph it runs (tract keeps no state between runs).
pub struct ExecutionContext {
    model: Arc<LocalModel>,
    label: String,
}

/// A `wasi:nn` tensor, held in the request's resource table until the guest drops it or
/// passes it to `compute`.
pub struct Tensor {
    dimensions: Vec<u32>,
    ty: TensorType,
    data: Vec<u8>,
}

/// A `wasi:nn` error: a code the guest can branch on and a message for people.
#[derive(Debug, Clone)]
pub struct NnError {
    code: ErrorCode,
    data: String,
}

impl NnError {
    fn new(code: ErrorCode, data: impl Into<String>) -> Self {
        Self {
            code,
            data: data.into(),
        }
    }
}

/// The `wasi:nn` state of one request.
pub struct NnCtx {
    config: NnConfig,
    /// Bytes of tensor data the request's table holds now.
    held_bytes: u64,
    /// The most it may hold (the pipeline's memory cap): past it the request traps, so
    /// a guest creating tensors in a loop cannot grow host memory without bound.
    held_max: u64,
}

impl NnCtx {
    /// A context under `config`, holding at most `held_max` bytes of tensors.
    pub fn new(config: NnConfig, held_max: u64) -> Self {
        Self {
            config,
            held_bytes: 0,
            held_max,
        }
    }
}

/// What each `wasi:nn` call borrows from the request's store: its own context, the
/// `local` context (the registry, the run limit and the run records it shares with
/// `local.run`) and the resource table.
pub struct NnView<'a> {
    ctx: &'a mut NnCtx,
    local: &'a mut LocalCtx,
    table: &'a mut ResourceTable,
}

impl<'a> NnView<'a> {
    /// A view over one request's state.
    pub fn new(ctx: &'a mut NnCtx, local: &'a mut LocalCtx, table: &'a mut ResourceTable) -> Self {
        Self { ctx, local, table }
    }
}

/// The linker's handle on [`NnView`].
struct HasNnView;

impl HasData for HasNnView {
    type Data<'a> = NnView<'a>;
}

/// Adds the four `wasi:nn` interfaces to `linker`.
pub fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> NnView<'_>,
) -> wasmtime::Result<()> {
    use generated::wasi::nn::{errors, graph, inference, tensor};
    errors::add_to_linker::<T, HasNnView>(linker, view)?;
    tensor::add_to_linker::<T, HasNnView>(linker, view)?;
    inference::add_to_linker::<T, HasNnView>(linker, view)?;
    graph::add_to_linker::<T, HasNnView>(linker, view)?;
    Ok(())
}
