//! The `hybrid` command: parse arguments, run the subcommand, print the error chain.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hybrid::cli::{
    CheckArgs, DeployArgs, DeployModelArgs, ModelsArgs, NewArgs, PlanArgs, ProfileArgs,
    PromoteArgs, RollbackArgs, RunArgs, ServeArgs, StatusArgs,
};

/// hybrid: the hybrid inference edge host.
///
/// Runs sandboxed pipeline components that preprocess requests, run small ONNX models on
/// this box and decide what goes to serverless inference.
#[derive(Parser)]
#[command(name = "hybrid", version, propagate_version = true)]
struct Cli {
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `hybrid=debug,guest=info`.
    /// Logs go to stderr. Defaults to $HYBRID_LOG, else `warn`. The HTTP libraries never
    /// log below `info` (their traces would carry credentials).
    #[arg(long, global = true, value_name = "FILTER")]
    log: Option<String>,
    /// Log as JSON lines (for log shippers) instead of text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve pipelines over HTTP: `/v1/pipelines/{name}`, OpenAI-compatible `/v1/...`,
    /// `/metrics`, `/healthz`, `/readyz`.
    Serve(ServeArgs),
    /// Serve one request (an input file) through a pipeline and print the JSON result.
    Run(RunArgs),
    /// Verify and list the local models a config loads.
    Models(ModelsArgs),
    /// Time a local model's operators on this box, on the plan optimised for one input
    /// shape or on the plan for any shape.
    Profile(ProfileArgs),
    /// Check that a component implements the `hybrid:inference/pipeline` world.
    Check(CheckArgs),
    /// Deploy a component to a pipeline of a running box (admin API), optionally as a
    /// canary.
    Deploy(DeployArgs),
    /// Swap a new version of a local model into a running box (admin API).
    DeployModel(DeployModelArgs),
    /// Show what a running box serves: versions, traffic shares, counts, sources.
    Status(StatusArgs),
    /// Make a pipeline's canary its only version.
    Promote(PromoteArgs),
    /// Drop a pipeline's canary, or return it (or a model) to its previous version.
    Rollback(RollbackArgs),
    /// Replay a labelled workload through routing strategies (all-local, all-remote, a
    /// threshold sweep, any pipeline) and report accuracy, cost, latency, local share and
    /// egress, with the cost/accuracy frontier and a recommended threshold.
    Plan(PlanArgs),
    /// Write a plugin project that builds as it is: a Rust crate on the guest SDK, the WIT
    /// package, a config, and a README of the commands to build, check, run and deploy.
    New(NewArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve(_)) {
        end_quietly_when_stdout_closes();
    }
    let filter = cli
        .log
        .or_else(|| std::env::var("HYBRID_LOG").ok())
        .unwrap_or_else(|| "warn".to_owned());
    tracing_subscriber::fmt()
        .with_env_filter(hybrid::logging::filter(&filter))
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Serve(args) => args.execute(),
        Command::Run(args) => args.execute(),
        Command::Models(args) => args.execute(),
        Command::Profile(args) => args.execute(),
        Command::Check(args) => args.execute(),
        Command::Deploy(args) => args.execute(),
        Command::DeployModel(args) => args.execute(),
        Command::Status(args) => args.execute(),
        Command::Promote(args) => args.execute(),
        Command::Rollback(args) => args.execute(),
        Command::Plan(args) => args.execute(),
        Command::New(args) => args.execute(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `hybrid check x.wasm | head` must end the way any Unix tool does when the reader
/// goes away: by SIGPIPE, silently. Rust ignores SIGPIPE, so `println!` would panic with
/// "failed printing to stdout". Not for `serve`, which must outlive any one peer (its
/// sockets are written with `MSG_NOSIGNAL` anyway).
#[cfg(unix)]
#[allow(unsafe_code, reason = "one libc call, before any thread exists")]
fn end_quietly_when_stdout_closes() {
    // SAFETY: restoring a signal's default disposition at start-up, single-threaded.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn end_quietly_when_stdout_closes() {}
