//! `hybrid check`: does a `.wasm` file implement the `pipeline` world?
//!
//! Compiles the component with the same engine settings and linker as the server, so a
//! component that passes here instantiates there.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use crate::config::RuntimeConfig;
use crate::local::ModelRegistry;
use crate::runtime::{Runtime, WORLD};

/// Arguments of `hybrid check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The component to check.
    #[arg(value_name = "COMPONENT_WASM")]
    pub component: PathBuf,
}

impl CheckArgs {
    /// Prints what the component imports and exports, or what it is missing (exit 1).
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let bytes = std::fs::read(&self.component)
            .with_context(|| format!("reading {:?}", self.component))?;
        let runtime = Runtime::new(
            &RuntimeConfig::default(),
            Arc::new(ModelRegistry::default()),
        )?;
        match runtime.check_component(&bytes) {
            Ok(summary) => {
                println!("ok: {} implements {WORLD}", self.component.display());
                println!("  imports: {}", summary.imports.join(", "));
                println!("  exports: {}", summary.exports.join(", "));
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("error: {}: {e}", self.component.display());
                Ok(ExitCode::FAILURE)
            }
        }
    }
}
