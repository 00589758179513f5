//! `hybrid run`: one request through one pipeline, printed as JSON.
//!
//! Loads the config (models checksummed and optimised, components compiled), reads the
//! input file (or standard input), serves it exactly as the server would, and prints the response body with
//! the routing record, the local model runs and the timings.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::config::Config;
use crate::envelope;
use crate::runtime::{Request, Runtime};

/// Arguments of `hybrid run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The config file (models and pipelines).
    #[arg(long, short, value_name = "FILE")]
    pub config: PathBuf,
    /// The pipeline that serves the request.
    #[arg(long, short, value_name = "NAME")]
    pub pipeline: String,
    /// A request parameter passed to the pipeline as metadata (repeatable), e.g.
    /// `--param threshold=0.6`.
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// Content type of the input; guessed from the file extension when omitted.
    #[arg(long, value_name = "MIME")]
    pub content_type: Option<String>,
    /// The request body: a file, or `-` for standard input.
    #[arg(value_name = "INPUT_FILE")]
    pub input: PathBuf,
}

impl RunArgs {
    /// Runs the request and prints the result; a pipeline error exits with status 1.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let config = Config::load(&self.config)?;
        if config.pipeline(&self.pipeline).is_none() {
            let known: Vec<&str> = config.pipelines.iter().map(|p| p.name.as_str()).collect();
            bail!(
                "no pipeline {:?} in {:?}; configured pipelines: [{}]",
                self.pipeline,
                self.config,
                known.join(", ")
            );
        }
        let body = if self.input.as_os_str() == "-" {
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut body)
                .context("reading the request from standard input")?;
            body
        } else {
            std::fs::read(&self.input).with_context(|| format!("reading input {:?}", self.input))?
        };
        let runtime = Runtime::from_config(&config)?;
        let request = Request {
            id: runtime.new_request_id(),
            content_type: self
                .content_type
                .unwrap_or_else(|| guess_content_type(&self.input).to_owned()),
            body,
            metadata: self.params,
        };
        let outcome = runtime.handle(&self.pipeline, &request)?;
        println!(
            "{}",
            serde_json::to_string_pretty(&envelope::to_json(&self.pipeline, &request, &outcome))?
        );
        Ok(ExitCode::SUCCESS)
    }
}

fn parse_param(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.trim().to_ascii_lowercase(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

fn guess_content_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("wav") => "audio/wav",
        Some("json") => "application/json",
        Some("txt") => "text/plain",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_key_value_with_lower_case_keys() {
        assert_eq!(
            parse_param("Threshold=0.6"),
            Ok(("threshold".into(), "0.6".into()))
        );
        assert_eq!(parse_param("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(parse_param("novalue").is_err());
        assert!(parse_param("=x").is_err());
    }
}
