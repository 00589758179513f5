//! The WASI a pipeline is granted, and nothing more.
//!
//! A pipeline gets what Rust's and Python's standard libraries import to start and print:
//! `wasi:io` (errors, streams, and `poll` bounded by the deadline), `wasi:clocks` (the
//! monotonic clock's waits bounded by the deadline, see [`super::bounded_waits`]),
//! `wasi:random`, `wasi:cli` (environment, exit, stdio and terminals: all empty or
//! captured) and `wasi:filesystem` with no preopened directories, so there is no file to
//! open. The operator may give a pipeline more in its config ([`context`]): arguments,
//! environment variables, read-only preopened directories; a `wasi:cli` command also
//! gets the request as stdin and its stdout becomes the answer. It also gets `wasi:nn` (linked in [`super::wasi_nn`], on the host's models). It does not get `wasi:sockets`: a component importing any of it is refused at
//! load, and `hybrid check` names the import. Serverless calls go through the `remote`
//! interface, where the host holds the credentials and enforces limits.

use wasmtime::component::{HasData, Linker, ResourceTable};
use wasmtime_wasi::cli::{WasiCli, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, random, sync};
use wasmtime_wasi::random::WasiRandom;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiView};

use super::bounded_waits;
use super::state::{RequestState, Stdio};
use crate::config::PipelineConfig;

/// The WASI packages a pipeline may import; every other `wasi:` import is refused.
const GRANTED: [&str; 6] = [
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:cli/",
    "wasi:filesystem/",
    "wasi:nn/",
];

/// Why the rest is not granted, for the refusal.
pub const WHY_NOT: &str = "no sockets: a pipeline reaches serverless endpoints through the \
    `remote` interface, where the host holds the keys and enforces the limits";

/// Whether an import of this name is one a pipeline may have: not a WASI package other
/// than the granted ones (imports of other packages are left to the linker).
pub fn granted(import: &str) -> bool {
    !import.starts_with("wasi:") || GRANTED.iter().any(|p| import.starts_with(p))
}

/// The WASI context of one sandbox of pipeline `config`: `argv[0]` the pipeline's name,
/// then its `args`; its `env` and nothing of the host's environment; its `preopens`,
/// read-only (wasmtime-wasi's cap-std directories: no `..` or symlink leads out of
/// them); stderr captured. A `command` also reads `stdio.stdin` and writes
/// `stdio.stdout`; a `pipeline` component's stdin is empty and its stdout discarded.
/// Fails, naming the directory, when a preopen cannot be opened.
///
/// The sandbox of a component's `init` (`for_init`, see [`super::preinit`]) gets
/// deterministic WASI randomness (a fixed seed) and a wall clock stopped at the Unix
/// epoch, so the same bytes and models always give the same snapshot.
pub fn context(
    config: &PipelineConfig,
    command: bool,
    for_init: bool,
    stdio: &Stdio,
) -> Result<WasiCtx, String> {
    let mut builder = WasiCtxBuilder::new();
    if for_init {
        use rand::SeedableRng as _;
        builder
            .secure_random(rand::rngs::StdRng::seed_from_u64(INIT_SEED))
            .insecure_random(rand::rngs::StdRng::seed_from_u64(INIT_SEED))
            .insecure_random_seed(u128::from(INIT_SEED))
            .wall_clock(EpochWallClock);
    }
    builder
        .arg(&config.name)
        .args(&config.args)
        .stderr(stdio.stderr.clone())
        // Reads of a preopened file run on the request's own thread: they are what the
        // guest waits for anyway, and a hop to another thread only adds latency.
        .allow_blocking_current_thread(true);
    for (key, value) in &config.env {
        builder.env(key, value);
    }
    if command {
        builder
            .stdin(stdio.stdin.clone())
            .stdout(stdio.stdout.clone());
    }
    for (guest, host) in &config.preopens {
        builder
            .preopened_dir(host, guest, FsPerms::ReadOnly)
            .map_err(|e| preopen_error(guest, host, &e))?;
    }
    Ok(builder.build())
}

/// The seed of every WASI random source an `init` sees.
const INIT_SEED: u64 = 0x6879_6272_6964; // "hybrid"

/// A wall clock that always reads the Unix epoch (for `init`: a snapshot must not depend
/// on when it was made).
struct EpochWallClock;

impl wasmtime_wasi::HostWallClock for EpochWallClock {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }

    fn now(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

/// Checks every preopen of `config` names a directory the host can open (at load, so a
/// typo refuses the config instead of failing each request).
pub fn check_preopens(config: &PipelineConfig) -> Result<(), String> {
    for (guest, host) in &config.preopens {
        match std::fs::metadata(host) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(preopen_error(guest, host, &"not a directory")),
            Err(e) => return Err(preopen_error(guest, host, &e)),
        }
    }
    Ok(())
}

fn preopen_error(guest: &str, host: &std::path::Path, error: &dyn std::fmt::Display) -> String {
    format!(
        "preopens: {guest:?} = {:?} cannot be opened as a directory: {error}",
        host.display().to_string()
    )
}

/// The linker's handle on a request's resource table.
struct Table;

impl HasData for Table {
    type Data<'a> = &'a mut ResourceTable;
}

fn table(s: &mut RequestState) -> &mut ResourceTable {
    s.ctx().table
}

/// Adds the granted WASI interfaces to `linker`.
pub fn add_to_linker(linker: &mut Linker<RequestState>) -> wasmtime::Result<()> {
    let l = linker;
    sync::io::error::add_to_linker::<RequestState, Table>(l, table)?;
    sync::io::streams::add_to_linker::<RequestState, Table>(l, table)?;
    clocks::wall_clock::add_to_linker::<RequestState, WasiClocks>(l, |s| s.clocks())?;
    bounded_waits::add_to_linker(l)?;
    random::random::add_to_linker::<RequestState, WasiRandom>(l, |s| s.ctx().ctx.random())?;
    random::insecure::add_to_linker::<RequestState, WasiRandom>(l, |s| s.ctx().ctx.random())?;
    random::insecure_seed::add_to_linker::<RequestState, WasiRandom>(l, |s| s.ctx().ctx.random())?;
    cli::exit::add_to_linker::<RequestState, WasiCli>(l, |s| s.cli())?;
    cli::environment::add_to_linker::<RequestState, WasiCli>(l, |s| s.cli())?;
    cli::stdin::add_to_linker::<RequestState, WasiCli>(l, |s| s.cli())?;
    cli::stdout::add_to_linker::<RequestState, WasiCli>(l, |s| s.cli())?;
    cli::stderr::add_to_linker::<RequestState, WasiCli>(l, |s| s.cli())?;
    cli::terminal_input::add_to_linker::<RequestState, WasiCli>(l, |s| s.cli())?;
    cli::terminal_output::add_to_linker::<RequestState, WasiCli>(l, |s| s.cli())?;
    cli::terminal_stdin::add_to_linker::<RequestState, WasiCli>(l, |s| s.cli())?;
    cli::terminal_stdout::add_to_linker::<RequestState, WasiCli>(l, |s| s.cli())?;
    cli::terminal_stderr::add_to_linker::<RequestState, WasiCli>(l, |s| s.cli())?;
    filesystem::preopens::add_to_linker::<RequestState, WasiFilesystem>(l, |s| s.filesystem())?;
    sync::filesystem::types::add_to_linker::<RequestState, WasiFilesystem>(l, |s| s.filesystem())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_and_unknown_wasi_are_not_granted() {
        assert!(granted("wasi:io/poll@0.2.6"));
        assert!(granted("wasi:cli/stdout@0.2.0"));
        assert!(granted("hybrid:inference/local@0.1.0"));
        assert!(granted("wasi:nn/graph@0.2.0-rc-2024-10-28"));
        assert!(!granted("wasi:sockets/tcp@0.2.6"));
        assert!(!granted("wasi:http/outgoing-handler@0.2.6"));
    }
}
