//! `hybrid serve`: load the config, then serve it over HTTP until SIGTERM or Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::config::Config;
use crate::runtime::Runtime;

/// Arguments of `hybrid serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The config file; without it, the built-in default (the repository's `hybrid.toml`,
    /// paths relative to the current directory).
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on, overriding `server.listen` (e.g. `0.0.0.0:8080`; port 0 picks
    /// a free port).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}

impl ServeArgs {
    /// Loads everything, then serves until stopped; exits 0 after a graceful drain.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::builtin(&std::env::current_dir()?)?,
        };
        let runtime = Arc::new(Runtime::from_config(&config)?);
        let listen = self.listen.unwrap_or_else(|| config.server.listen.clone());
        crate::server::serve(runtime, &config, &listen)?;
        Ok(ExitCode::SUCCESS)
    }
}
