//! The `hybrid` command: parse arguments, run the subcommand, print the error chain.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hybrid::cli::{CheckArgs, ModelsArgs, RunArgs, ServeArgs};

/// hybrid: the hybrid inference edge host.
///
/// Runs sandboxed pipeline components that preprocess requests, run small ONNX models on
/// this box and decide what goes to serverless inference.
#[derive(Parser)]
#[command(name = "hybrid", version, propagate_version = true)]
struct Cli {
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `hybrid=debug,guest=info`.
    /// Logs go to stderr. Defaults to $HYBRID_LOG, else `warn`.
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
    /// Check that a component implements the `hybrid:inference/pipeline` world.
    Check(CheckArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = cli
        .log
        .or_else(|| std::env::var("HYBRID_LOG").ok())
        .unwrap_or_else(|| "warn".to_owned());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Serve(args) => args.execute(),
        Command::Run(args) => args.execute(),
        Command::Models(args) => args.execute(),
        Command::Check(args) => args.execute(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
