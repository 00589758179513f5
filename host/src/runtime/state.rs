//! The data each request's `Store` carries: one context per imported interface, composed.
//!
//! A store lives for exactly one request, so nothing here outlives it: model runs and log
//! counts are read back once the guest returns. The WASI context is empty (no files,
//! network, environment or arguments); only stderr is captured, so a guest's panic message
//! can be reported in the error that names its trap.

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::clock_host::ClockCtx;
use super::local_host::LocalCtx;
use super::log_host::LogCtx;
use super::remote_host::RemoteCtx;
use super::signals_host::SignalsCtx;
use super::wasi_nn::{NnCtx, NnView};

/// How much of a guest's stderr the host keeps (panic messages and the like).
pub const MAX_GUEST_STDERR: usize = 16 * 1024;

/// Table elements a guest may grow to; generous for Rust, bounded for hostile guests.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// The per-interface contexts of one request, built by the runtime.
pub struct Contexts {
    /// `local`.
    pub local: LocalCtx,
    /// `remote`.
    pub remote: RemoteCtx,
    /// `signals`.
    pub signals: SignalsCtx,
    /// `log`.
    pub log: LogCtx,
    /// `clock`.
    pub clock: ClockCtx,
    /// `wasi:nn`.
    pub nn: NnCtx,
}

/// Store data for one request.
pub struct RequestState {
    wasi: WasiCtx,
    table: ResourceTable,
    stderr: MemoryOutputPipe,
    pub(super) limits: MemoryCap,
    pub(super) local: LocalCtx,
    pub(super) remote: RemoteCtx,
    pub(super) signals: SignalsCtx,
    pub(super) log: LogCtx,
    pub(super) clock: ClockCtx,
    nn: NnCtx,
}

impl RequestState {
    /// State with an empty WASI context, the memory cap and the request's contexts.
    pub fn new(memory_cap: usize, contexts: Contexts) -> Self {
        let stderr = MemoryOutputPipe::new(MAX_GUEST_STDERR);
        let wasi = WasiCtxBuilder::new().stderr(stderr.clone()).build();
        Self {
            wasi,
            table: ResourceTable::new(),
            stderr,
            limits: MemoryCap::new(memory_cap),
            local: contexts.local,
            remote: contexts.remote,
            signals: contexts.signals,
            log: contexts.log,
            clock: contexts.clock,
            nn: contexts.nn,
        }
    }

    /// What a `wasi:nn` call works on: its context, the `local` context it shares the
    /// registry, run limit and run records with, and the resource table.
    pub(super) fn nn(&mut self) -> NnView<'_> {
        NnView::new(&mut self.nn, &mut self.local, &mut self.table)
    }

    /// What the guest wrote to stderr, lossily decoded and trimmed.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents())
            .trim()
            .to_owned()
    }
}

impl WasiView for RequestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Refuses memory growth past a cap and remembers that it did, so a later trap can be
/// reported as "exceeded its memory cap" instead of a bare `unreachable`.
pub struct MemoryCap {
    cap: usize,
    /// Set when a growth request was refused.
    pub exceeded: bool,
}

impl MemoryCap {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            exceeded: false,
        }
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.cap {
            self.exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}
