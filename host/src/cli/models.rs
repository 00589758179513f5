//! `hybrid models`: the local models a config loads, verified and optimised as the
//! server would, with their declared inputs and outputs.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;

use crate::config::Config;
use crate::local::{ModelRegistry, TensorSpec};

/// Arguments of `hybrid models`.
#[derive(Debug, clap::Args)]
pub struct ModelsArgs {
    /// The config file.
    #[arg(long, short, value_name = "FILE")]
    pub config: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl ModelsArgs {
    /// Loads every model (checksums verified) and lists them.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let config = Config::load(&self.config)?;
        let registry = ModelRegistry::load(&config.models)?;
        if self.json {
            let models: Vec<_> = registry
                .list()
                .map(|m| {
                    json!({
                        "name": m.name, "version": m.version, "sha256": m.sha256,
                        "inputs": m.inputs.iter().map(spec_json).collect::<Vec<_>>(),
                        "outputs": m.outputs.iter().map(spec_json).collect::<Vec<_>>(),
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&models)?);
            return Ok(ExitCode::SUCCESS);
        }
        if registry.list().next().is_none() {
            println!("no models configured in {:?}", self.config);
        }
        for m in registry.list() {
            println!("{} {} (sha256 {})", m.name, m.version, m.sha256);
            for (dir, specs) in [("in ", &m.inputs), ("out", &m.outputs)] {
                for s in specs {
                    println!(
                        "  {dir} {:<16} {:<5} {}",
                        s.name,
                        s.ty.to_string(),
                        s.shape_string()
                    );
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn spec_json(s: &TensorSpec) -> serde_json::Value {
    json!({"name": s.name, "type": s.ty.to_string(), "shape": s.shape})
}
