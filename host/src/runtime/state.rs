//! The data each request's `Store` carries: one context per imported interface, composed.
//!
//! A store lives for exactly one request, so nothing here outlives it: model runs and log
//! counts are read back once the guest returns. The WASI context is empty (no files,
//! network, environment or arguments) unless the operator's config names some (see
//! [`super::wasi_grant::context`]); stderr is captured, so a guest's panic message can be
//! reported in the error that names its trap, and a `wasi:cli` command's stdin and stdout
//! are the request and the answer ([`Stdio`]).

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::clock_host::ClockCtx;
use super::command_io::{CappedOutput, RequestStdin};
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

/// The standard streams of one sandbox. A `pipeline` component's stdin is empty and its
/// stdout discarded; only a `wasi:cli` command is given `stdin` and `stdout`.
#[derive(Clone)]
pub struct Stdio {
    /// The request body, for a command.
    pub stdin: RequestStdin,
    /// The answer's body, for a command; capped at `limits.response_bytes`.
    pub stdout: CappedOutput,
    /// Panic messages, and a command's log lines.
    pub stderr: CappedOutput,
}

/// Store data for one request.
pub struct RequestState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) stdio: Stdio,
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
    /// State with a WASI context made on `stdio`, the sandbox's limits and the request's
    /// contexts.
    pub fn new(limits: SandboxLimits, contexts: Contexts, wasi: WasiCtx, stdio: Stdio) -> Self {
        Self {
            wasi,
            table: ResourceTable::new(),
            stdio,
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
        String::from_utf8_lossy(&self.stdio.stderr.contents())
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
