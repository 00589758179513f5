//! `hybrid serve`: load the config, then serve it over HTTP until SIGTERM or Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::config::Config;
use crate::deploy::Deployer;
use crate::server::ServeOptions;

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
    /// Address of the admin API, overriding `admin.listen` (it is on only when the
    /// config's `[admin] token_env` variable is set).
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<String>,
    /// Also deploy component and model files named in the config when they change on
    /// disk (debounced; a broken file is logged and the running version keeps serving).
    #[arg(long)]
    pub watch: bool,
}

impl ServeArgs {
    /// Loads everything (what was last deployed, from the state directory, else the
    /// config's files), then serves until stopped; exits 0 after a graceful drain.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::builtin(&std::env::current_dir()?)?,
        };
        let deployer = Arc::new(Deployer::start(&config)?);
        let listen = self.listen.unwrap_or_else(|| config.server.listen.clone());
        let options = ServeOptions {
            watch: self.watch,
            admin_listen: self.admin_listen,
        };
        crate::server::serve(deployer, &listen, &options)?;
        Ok(ExitCode::SUCCESS)
    }
}
