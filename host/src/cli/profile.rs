//! `hybrid profile`: where a local model's time goes on this box, operator by operator.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::json;

use crate::config::Config;
use crate::local::profile::{Profile, profile};

/// Arguments of `hybrid profile`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example: hybrid profile -c hybrid.toml minilm-l6-v2 B=1 S=16\n\n\
    Inputs are ones for integer types and zeros for floats. Run it on a quiet machine: the figures are wall \
    time, and other work on the cores shows in them."
)]
pub struct ProfileArgs {
    /// The config file that declares the model.
    #[arg(long, short, value_name = "FILE")]
    pub config: PathBuf,
    /// The model's name in the config.
    pub model: String,
    /// A size for each symbolic input dimension, as NAME=SIZE (MiniLM: B=1 S=16).
    #[arg(value_name = "NAME=SIZE", value_parser = parse_size)]
    pub sizes: Vec<(String, usize)>,
    /// Timed runs (after three warm-up runs).
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub runs: usize,
    /// Profile the plan for any shape (what runs before a shape has a plan of its own)
    /// instead of the plan optimised for these sizes.
    #[arg(long)]
    pub generic: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl ProfileArgs {
    /// Loads the model as the server does, runs it and prints the time per operator.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let config = Config::load(&self.config)?;
        let Some(model) = config.models.iter().find(|m| m.name == self.model) else {
            let names: Vec<&str> = config.models.iter().map(|m| m.name.as_str()).collect();
            bail!(
                "{:?} declares no model {:?}; it has {names:?}",
                self.config,
                self.model
            );
        };
        let measured = profile(model, &self.sizes, self.runs, self.generic)
            .with_context(|| format!("profiling model {:?}", self.model))?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&as_json(&measured))?);
        } else {
            print_table(&self.model, &measured);
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn parse_size(arg: &str) -> Result<(String, usize), String> {
    let (name, size) = arg
        .split_once('=')
        .ok_or_else(|| format!("{arg:?} is not NAME=SIZE"))?;
    let size = size
        .parse()
        .map_err(|_| format!("{size:?} in {arg:?} is not a size"))?;
    Ok((name.to_owned(), size))
}

fn millis(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn plan_name(p: &Profile) -> String {
    if p.shape.is_empty() {
        return "the plan for any shape".to_owned();
    }
    let sizes: Vec<String> = p.shape.iter().map(|(n, v)| format!("{n}={v}")).collect();
    format!("the plan for {}", sizes.join(", "))
}

fn print_table(model: &str, p: &Profile) {
    let cpu = p
        .cpu_per_run
        .map(|c| format!(", {:.3} ms of CPU", millis(c)))
        .unwrap_or_default();
    println!(
        "{model}: {} (optimised in {:.0} ms), {} runs: {:.3} ms per run{cpu} ({:.3} ms with every operator timed)",
        plan_name(p),
        millis(p.optimise),
        p.runs,
        millis(p.per_run),
        millis(p.per_run_timed),
    );
    println!(
        "{:<64} {:>5} {:>10} {:>6}",
        "operator", "nodes", "ms/run", "share"
    );
    for op in &p.operators {
        println!(
            "{:<64} {:>5} {:>10.3} {:>5.1}%",
            op.operator,
            op.nodes,
            millis(op.per_run),
            op.share * 100.0
        );
    }
}

fn as_json(p: &Profile) -> serde_json::Value {
    json!({
        "shape": p.shape.iter().map(|(n, v)| (n.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "optimise_ms": millis(p.optimise),
        "runs": p.runs,
        "per_run_ms": millis(p.per_run),
        "cpu_per_run_ms": p.cpu_per_run.map(millis),
        "per_run_timed_ms": millis(p.per_run_timed),
        "operators": p.operators.iter().map(|op| json!({
            "operator": op.operator,
            "nodes": op.nodes,
            "per_run_ms": millis(op.per_run),
            "share": op.share,
        })).collect::<Vec<_>>(),
    })
}
