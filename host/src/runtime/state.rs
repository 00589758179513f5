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
use super::reply_host::ReplyCtx;
use super::signals_host::SignalsCtx;
use super::wasi_nn::{NnCtx, NnView};

/// How much of a guest's stderr the host keeps (panic messages and the like).
pub const MAX_GUEST_STDERR: usize = 16 * 1024;

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
    /// `reply` (0.2).
    pub reply: ReplyCtx,
    /// `wasi:nn`.
    pub nn: NnCtx,
}

/// Store data for one request.
pub struct RequestState {
    wasi: WasiCtx,
    table: ResourceTable,
    stderr: MemoryOutputPipe,
    pub(super) limits: SandboxLimits,
    pub(super) local: LocalCtx,
    pub(super) remote: RemoteCtx,
    pub(super) signals: SignalsCtx,
    pub(super) log: LogCtx,
    pub(super) clock: ClockCtx,
    pub(super) reply: ReplyCtx,
    nn: NnCtx,
}

impl RequestState {
    /// State with an empty WASI context, the sandbox's limits and the request's contexts.
    pub fn new(limits: SandboxLimits, contexts: Contexts) -> Self {
        let stderr = MemoryOutputPipe::new(MAX_GUEST_STDERR);
        let wasi = WasiCtxBuilder::new().stderr(stderr.clone()).build();
        Self {
            wasi,
            table: ResourceTable::new(),
            stderr,
            limits,
            local: contexts.local,
            remote: contexts.remote,
            signals: contexts.signals,
            log: contexts.log,
            clock: contexts.clock,
            reply: contexts.reply,
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

/// What one request's sandbox may hold: memory, core instances and table elements. A
/// refused growth is remembered, so the trap that usually follows can be reported as the
/// limit it hit instead of a bare `unreachable`.
pub struct SandboxLimits {
    memory_bytes: usize,
    instances: usize,
    table_elements: usize,
    /// Set when memory growth was refused.
    pub memory_exceeded: bool,
    /// Set when table growth was refused.
    pub table_exceeded: bool,
}

impl SandboxLimits {
    /// Limits of `memory_bytes` per memory, `instances` core instances and
    /// `table_elements` per table.
    pub fn new(memory_bytes: usize, instances: u32, table_elements: u32) -> Self {
        Self {
            memory_bytes,
            instances: instances as usize,
            table_elements: table_elements as usize,
            memory_exceeded: false,
            table_exceeded: false,
        }
    }
}

impl ResourceLimiter for SandboxLimits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.memory_exceeded = true;
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
        if desired > self.table_elements {
            self.table_exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.instances
    }
}
