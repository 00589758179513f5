//! The plan's report: `report.json` (every figure, for tools), `report.md` (the table, the
//! plot and the recommendation, for people) and `frontier.svg`, written atomically.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::PlanError;
use super::summary::{Recommendation, StrategyResult};

/// Everything a plan run found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The workload file replayed.
    pub workload: PathBuf,
    /// Requests per strategy.
    pub requests: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Where requests went: `in-process (<config>)` or the box's URL.
    pub target: String,
    /// When the run ended (an HTTP date, UTC).
    pub finished: String,
    /// Per strategy, in plan order.
    pub strategies: Vec<StrategyResult>,
    /// What the plan recommends.
    pub recommendation: Recommendation,
}

/// The file names written into the output folder.
pub const JSON: &str = "report.json";
/// The Markdown report.
pub const MARKDOWN: &str = "report.md";
/// The frontier plot.
pub const PLOT: &str = "frontier.svg";

impl Report {
    /// The Markdown report; it embeds `PLOT` from the same folder.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        md.push_str("# Routing plan\n\n");
        md.push_str(&format!(
            "{} requests from `{}` through {} strategies ({}, {} at a time), finished {}.\n\n",
            self.requests,
            self.workload.display(),
            self.strategies.len(),
            self.target,
            self.concurrency,
            self.finished
        ));
        md.push_str(
            "| strategy | accuracy | $ per 1k requests | p50 ms | p95 ms | served locally | egress bytes per request | errors |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for r in &self.strategies {
            let mark = if r.on_frontier { " ◆" } else { "" };
            md.push_str(&format!(
                "| {}{} | {:.2}% | {:.4} | {:.1} | {:.1} | {:.0}% | {:.0} | {} |\n",
                r.name,
                mark,
                r.accuracy * 100.0,
                r.usd_per_1k,
                r.p50_ms,
                r.p95_ms,
                r.local_share * 100.0,
                r.egress_bytes as f64 / r.requests.max(1) as f64,
                r.errors
            ));
        }
        md.push_str("\n◆ on the cost/accuracy frontier: no other strategy is cheaper and at least as accurate.\n\n");
        md.push_str(&format!("![cost/accuracy frontier]({PLOT})\n\n"));
        md.push_str("## Recommendation\n\n");
        md.push_str(&format!(
            "Target: {}. {}.\n\n",
            self.recommendation.target, self.recommendation.reason
        ));
        md.push_str(
            "## How to read it\n\n\
             Each point is a strategy: right is dearer, up is more accurate. A sweep's points are \
             joined in sweep order; the grey line is the frontier. Pick the leftmost point that is \
             high enough for you, or the highest that is far enough left. Failed requests count as \
             wrong answers; latencies are wall-clock times seen by the client.\n",
        );
        for r in self.strategies.iter().filter(|r| r.first_error.is_some()) {
            md.push_str(&format!(
                "\n`{}`: {} of {} requests failed; the first: {}\n",
                r.name,
                r.errors,
                r.requests,
                r.first_error.as_deref().unwrap_or_default()
            ));
        }
        md
    }

    /// Writes the three files into `folder` (created if missing).
    pub fn write(&self, folder: &Path, plot_svg: &str) -> Result<(), PlanError> {
        let write = |name: &str, bytes: &[u8]| {
            let path = folder.join(name);
            crate::atomic_file::write(&path, bytes).map_err(|e| PlanError::Write {
                path,
                message: e.to_string(),
            })
        };
        std::fs::create_dir_all(folder).map_err(|e| PlanError::Write {
            path: folder.to_owned(),
            message: e.to_string(),
        })?;
        let json = serde_json::to_vec_pretty(self).map_err(|e| PlanError::Write {
            path: folder.join(JSON),
            message: e.to_string(),
        })?;
        write(PLOT, plot_svg.as_bytes())?;
        write(JSON, &json)?;
        write(MARKDOWN, self.markdown().as_bytes())
    }
}
