//! `hybrid status`, `hybrid promote` and `hybrid rollback`: what a running box serves,
//! and ending a canary either way.

use std::fmt::Write as _;
use std::process::ExitCode;

use serde_json::Value;

use super::admin_client::AdminArgs;

/// Arguments of `hybrid status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Where the admin API is and how to reach it.
    #[command(flatten)]
    pub admin: AdminArgs,
}

impl StatusArgs {
    /// Prints every pipeline's live versions and every model's version.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let reply = match self.admin.send("GET", "/admin/status", None) {
            Ok(reply) => reply,
            Err(code) => return Ok(code),
        };
        Ok(self.admin.finish(&reply, summary))
    }
}

fn source(s: &Value) -> String {
    match s["kind"].as_str() {
        Some("upload") => "uploaded".to_owned(),
        Some("config") => format!("config file {}", s["path"].as_str().unwrap_or("?")),
        Some("watch") => format!("watched file {}", s["path"].as_str().unwrap_or("?")),
        _ => s.to_string(),
    }
}

fn summary(status: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "state directory: {}",
        status["state_dir"].as_str().unwrap_or("?")
    );
    let _ = writeln!(out, "pipelines:");
    for p in status["pipelines"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "  {}", p["name"].as_str().unwrap_or("?"));
        let q = &p["quarantine"];
        if matches!(q["state"].as_str(), Some("quarantined" | "probing")) {
            let _ = writeln!(
                out,
                "    {} after {} consecutive failures, probe in {} s: {}",
                q["state"].as_str().unwrap_or("?"),
                q["consecutive_failures"],
                q["retry_after_s"],
                q["reason"].as_str().unwrap_or("?"),
            );
        }
        let versions = p["versions"].as_array().into_iter().flatten();
        for v in versions.chain(p["previous"].as_object().map(|_| &p["previous"])) {
            let _ = writeln!(
                out,
                "    {:<8} {:.12}  {:>3}%  {} requests, {} errors, {:.2} ms mean  ({})",
                v["role"].as_str().unwrap_or("?"),
                v["sha256"].as_str().unwrap_or("?"),
                v["traffic_percent"],
                v["requests"],
                v["errors"],
                v["mean_latency_ms"].as_f64().unwrap_or(0.0),
                source(&v["source"]),
            );
        }
    }
    let _ = writeln!(out, "models:");
    for m in status["models"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "  {} {} {:.12}  ({})",
            m["name"].as_str().unwrap_or("?"),
            m["version"].as_str().unwrap_or("?"),
            m["sha256"].as_str().unwrap_or("?"),
            source(&m["source"]),
        );
    }
    out.trim_end().to_owned()
}

/// Arguments of `hybrid promote`.
#[derive(Debug, clap::Args)]
pub struct PromoteArgs {
    /// The pipeline whose canary becomes its only version.
    #[arg(value_name = "PIPELINE")]
    pub pipeline: String,
    /// Where the admin API is and how to reach it.
    #[command(flatten)]
    pub admin: AdminArgs,
}

impl PromoteArgs {
    /// Promotes the canary.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let path = format!("/admin/pipelines/{}/promote", self.pipeline);
        let reply = match self.admin.send("POST", &path, None) {
            Ok(reply) => reply,
            Err(code) => return Ok(code),
        };
        Ok(self.admin.finish(&reply, |r| {
            format!(
                "{}: {} now serves every request",
                r["pipeline"].as_str().unwrap_or("?"),
                r["stable"].as_str().unwrap_or("?")
            )
        }))
    }
}

/// Arguments of `hybrid rollback`.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// The pipeline (or, with `--model`, the model) to roll back.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Roll back a model instead of a pipeline.
    #[arg(long)]
    pub model: bool,
    /// Where the admin API is and how to reach it.
    #[command(flatten)]
    pub admin: AdminArgs,
}

impl RollbackArgs {
    /// Drops the pipeline's canary, or returns it (or the model) to its previous version.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let path = if self.model {
            format!("/admin/models/{}/rollback", self.name)
        } else {
            format!("/admin/pipelines/{}/rollback", self.name)
        };
        let reply = match self.admin.send("POST", &path, None) {
            Ok(reply) => reply,
            Err(code) => return Ok(code),
        };
        if self.model {
            return Ok(self.admin.finish(&reply, super::deploy::swapped));
        }
        Ok(self.admin.finish(&reply, |r| {
            format!(
                "{}: {} now serves every request",
                r["pipeline"].as_str().unwrap_or("?"),
                r["stable"].as_str().unwrap_or("?")
            )
        }))
    }
}
