//! `hybrid check`: does a `.wasm` file implement the `pipeline` world, and of which
//! contract version (0.1.x or 0.2)? Or is it a `wasi:cli` command, which is served as a
//! pipeline too (stdin the request, stdout the answer)?
//!
//! Compiles the component with the same engine settings and linker as the server, so a
//! component that passes here instantiates there.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use crate::config::RuntimeConfig;
use crate::local::ModelRegistry;
use crate::runtime::{Contract, Runtime, WORLD};

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
        let started = std::time::Instant::now();
        match runtime.check_component(&bytes) {
            Ok(summary) => {
                let (ours, wasi): (Vec<&String>, Vec<&String>) = summary
                    .imports
                    .iter()
                    .partition(|name| name.starts_with("hybrid:inference/"));
                if summary.contract == Contract::Command {
                    let run = summary
                        .exports
                        .iter()
                        .find(|e| e.starts_with("wasi:cli/run@"))
                        .map_or("wasi:cli/run", String::as_str);
                    println!(
                        "ok: {} is a wasi:cli command (exports {run}): served as a pipeline, \
                         the request its stdin, its stdout the answer",
                        self.component.display(),
                    );
                } else {
                    println!(
                        "ok: {} implements {} (contract {})",
                        self.component.display(),
                        summary.contract.world(),
                        summary.contract.name()
                    );
                    println!("  built against: {}", contract_versions(&ours));
                }
                if let Some(init) = &summary.init {
                    println!(
                        "  pre-initialised by its init export ({init}): `initialize` runs once \
                         at deploy and every request starts from a snapshot of its state"
                    );
                }
                println!("  hybrid imports: {}", list(&ours));
                println!("  wasi imports: {}", list(&wasi));
                println!("  exports: {}", summary.exports.join(", "));
                println!(
                    "  {} bytes, compiled in {:.2} s",
                    bytes.len(),
                    started.elapsed().as_secs_f64()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("error: {}: {e}", self.component.display());
                Ok(ExitCode::FAILURE)
            }
        }
    }
}

fn list(names: &[&String]) -> String {
    if names.is_empty() {
        return "none".to_owned();
    }
    names
        .iter()
        .map(|n| n.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `hybrid:inference` versions a component's imports name, e.g. `hybrid:inference
/// 0.1.0 (served through 0.1.1's semver-compatible interfaces)`.
fn contract_versions(imports: &[&String]) -> String {
    let mut versions: Vec<&str> = imports
        .iter()
        .filter_map(|name| name.rsplit_once('@').map(|(_, v)| v))
        .collect();
    versions.sort_unstable();
    versions.dedup();
    let current = WORLD.rsplit_once('@').map_or("", |(_, v)| v);
    match versions.as_slice() {
        [] => "no hybrid:inference interface (it uses none of the host's)".to_owned(),
        [one] if *one == current => format!("hybrid:inference {one}, this host's version"),
        [one] if one.starts_with("0.1.") => format!(
            "hybrid:inference {one} (a 0.1 component: served unchanged through the 0.1 \
             bindings; this host's current version is {current})"
        ),
        [one] if one.starts_with("0.2.") => format!(
            "hybrid:inference {one} (served through {current}'s semver-compatible \
             interfaces, which only add to it)"
        ),
        [one] => format!("hybrid:inference {one} (this host serves {current} and 0.1.x)"),
        many => format!("hybrid:inference {} (mixed)", many.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_contract_version_a_component_was_built_against() {
        let (a, b) = (
            "hybrid:inference/local@0.1.0".to_owned(),
            "hybrid:inference/log@0.1.0".to_owned(),
        );
        assert!(
            contract_versions(&[&a, &b]).starts_with("hybrid:inference 0.1.0 (a 0.1 component")
        );
        let current = format!(
            "hybrid:inference/local@{}",
            WORLD.rsplit_once('@').map_or("", |(_, v)| v)
        );
        assert!(contract_versions(&[&current]).ends_with("this host's version"));
        let older = "hybrid:inference/reply@0.2.0".to_owned();
        assert!(
            contract_versions(&[&older]).contains("semver-compatible"),
            "{}",
            contract_versions(&[&older])
        );
        assert!(contract_versions(&[]).starts_with("no hybrid:inference"));
    }
}
