//! `hybrid deploy` and `hybrid deploy-model`: send a new component or model to a running
//! box through its admin API, and say what went live.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;

use super::admin_client::AdminArgs;

/// Arguments of `hybrid deploy`.
#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    /// The pipeline to deploy to.
    #[arg(value_name = "PIPELINE")]
    pub pipeline: String,
    /// The component (`.wasm`) implementing the `pipeline` world.
    #[arg(value_name = "COMPONENT_WASM")]
    pub component: PathBuf,
    /// Send only this percentage (1 to 99) of the pipeline's requests to the new version;
    /// `hybrid promote` or `hybrid rollback` ends the trial.
    #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(1..=99))]
    pub canary: Option<u8>,
    /// Where the admin API is and how to reach it.
    #[command(flatten)]
    pub admin: AdminArgs,
}

impl DeployArgs {
    /// Uploads the component and prints the new version, or why it was refused.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let bytes = std::fs::read(&self.component)
            .with_context(|| format!("reading {:?}", self.component))?;
        let path = match self.canary {
            Some(n) => format!("/admin/pipelines/{}/component?canary={n}", self.pipeline),
            None => format!("/admin/pipelines/{}/component", self.pipeline),
        };
        let reply = match self.admin.send("PUT", &path, Some(bytes)) {
            Ok(reply) => reply,
            Err(code) => return Ok(code),
        };
        Ok(self.admin.finish(&reply, deployed))
    }
}

fn deployed(r: &Value) -> String {
    let rollout = match r["rollout"]["kind"].as_str() {
        Some("canary") => format!("canary taking {}% of requests", r["rollout"]["percent"]),
        _ => "serving every request".to_owned(),
    };
    format!(
        "deployed {} to {}: {rollout}\n  size {} bytes; code {} in {:.1} ms; {} smoke requests in {:.1} ms; {:.1} ms in all",
        r["sha256"].as_str().unwrap_or("?"),
        r["pipeline"].as_str().unwrap_or("?"),
        r["size"],
        r["compile"]["origin"].as_str().unwrap_or("?"),
        r["compile"]["ms"].as_f64().unwrap_or(0.0),
        r["smoke"]["requests"],
        r["smoke"]["ms"].as_f64().unwrap_or(0.0),
        r["total_ms"].as_f64().unwrap_or(0.0),
    )
}

/// Arguments of `hybrid deploy-model`.
#[derive(Debug, clap::Args)]
pub struct DeployModelArgs {
    /// The model's name in the box's config.
    #[arg(value_name = "MODEL")]
    pub model: String,
    /// The ONNX file; its inputs and outputs must match the current version's.
    #[arg(value_name = "MODEL_ONNX")]
    pub file: PathBuf,
    /// The version string responses will report.
    #[arg(long, value_name = "VERSION")]
    pub version: String,
    /// Where the admin API is and how to reach it.
    #[command(flatten)]
    pub admin: AdminArgs,
}

impl DeployModelArgs {
    /// Uploads the model and prints the swap, or why it was refused.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let bytes =
            std::fs::read(&self.file).with_context(|| format!("reading {:?}", self.file))?;
        let version: String = self
            .version
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let path = format!("/admin/models/{}?version={version}", self.model);
        let reply = match self.admin.send("PUT", &path, Some(bytes)) {
            Ok(reply) => reply,
            Err(code) => return Ok(code),
        };
        Ok(self.admin.finish(&reply, swapped))
    }
}

/// The summary of a model swap or model rollback.
pub fn swapped(r: &Value) -> String {
    format!(
        "model {} is now version {} ({}); was {} ({})",
        r["model"].as_str().unwrap_or("?"),
        r["version"].as_str().unwrap_or("?"),
        r["sha256"].as_str().unwrap_or("?"),
        r["previous"]["version"].as_str().unwrap_or("?"),
        r["previous"]["sha256"].as_str().unwrap_or("?"),
    )
}
