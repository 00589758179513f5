//! `hybrid plan`: replays a labelled workload through routing strategies and writes the
//! report (see [`crate::plan`]).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::config::Config;
use crate::plan::replay::{InProcess, OverHttp, Target};
use crate::plan::spec::PlanSpec;
use crate::plan::{self, report};
use crate::runtime::Runtime;

/// Arguments of `hybrid plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The plan file: workload, strategies, target (e.g. `plans/digits.toml`).
    #[arg(value_name = "PLAN_FILE")]
    pub plan: PathBuf,
    /// Serve the requests in this process with this config's pipelines.
    #[arg(
        long,
        short,
        value_name = "FILE",
        required_unless_present = "host",
        conflicts_with = "host"
    )]
    pub config: Option<PathBuf>,
    /// Send the requests to a running box instead, e.g. `http://127.0.0.1:8080`.
    #[arg(long, value_name = "URL")]
    pub host: Option<String>,
    /// Replay this workload instead of the plan's.
    #[arg(long, value_name = "FILE")]
    pub workload: Option<PathBuf>,
    /// Replay only the first N requests.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Recommend the cheapest sweep point at least this accurate (0..1).
    #[arg(long, value_name = "FRACTION")]
    pub target_accuracy: Option<f64>,
    /// Recommend the most accurate sweep point within this many US dollars per 1,000
    /// requests.
    #[arg(long, value_name = "USD")]
    pub max_usd_per_1k: Option<f64>,
    /// Requests in flight at once (remote calls mostly wait; local latencies are measured
    /// under this much concurrency).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Folder for report.md, report.json and frontier.svg.
    #[arg(long, short, value_name = "DIR", default_value = "plan-report")]
    pub out: PathBuf,
}

impl PlanArgs {
    /// Runs the plan, writes the report and prints the table.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let mut spec = PlanSpec::load(&self.plan)?;
        if let Some(w) = self.workload {
            spec.workload = w;
        }
        if let Some(a) = self.target_accuracy {
            if !(0.0..=1.0).contains(&a) {
                bail!("--target-accuracy must be between 0 and 1, got {a}");
            }
            spec.target.accuracy = Some(a);
        }
        if self.max_usd_per_1k.is_some() {
            spec.target.max_usd_per_1k = self.max_usd_per_1k;
        }
        let mut items = plan::workload::load(&spec.workload)?;
        if let Some(n) = self.limit {
            items.truncate(n.max(1));
        }
        let (target, name): (Box<dyn Target>, String) = match (&self.host, &self.config) {
            (Some(url), _) => (Box::new(OverHttp::new(url)), url.clone()),
            (None, Some(path)) => {
                let config = Config::load(path)?;
                for s in spec.strategies() {
                    if config.pipeline(&s.pipeline).is_none() {
                        bail!(plan::PlanError::Strategy {
                            strategy: s.name,
                            message: format!("no pipeline {:?} in {path:?}", s.pipeline),
                        });
                    }
                }
                let runtime = Runtime::from_config(&config)
                    .with_context(|| format!("starting the pipelines of {path:?}"))?;
                (
                    Box::new(InProcess::new(runtime)),
                    format!("in-process, {}", path.display()),
                )
            }
            (None, None) => bail!("give --config FILE or --host URL"),
        };
        let total = (items.len() * spec.strategies().len()) as u64;
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg} ({eta} left)")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let report = plan::run(
            &spec,
            &items,
            target.as_ref(),
            &name,
            self.concurrency.into(),
            &|s| {
                bar.set_message(s.name.clone());
                bar.inc(1);
            },
        );
        bar.finish_and_clear();
        if let Some(error) = nothing_answered(&report) {
            bail!(
                "every request failed, so there is nothing to compare; the first failure: {error}"
            );
        }
        let svg = plan::plot::frontier_svg(
            &format!(
                "{}: cost vs accuracy",
                spec.workload
                    .file_stem()
                    .map_or_else(|| "plan".into(), |s| s.to_string_lossy())
            ),
            &report.strategies,
        )
        .map_err(anyhow::Error::msg)?;
        report.write(&self.out, &svg)?;
        print!("{}", report.markdown());
        println!(
            "\nwrote {}, {} and {}",
            self.out.join(report::MARKDOWN).display(),
            self.out.join(report::JSON).display(),
            self.out.join(report::PLOT).display()
        );
        Ok(ExitCode::SUCCESS)
    }
}

/// The first failure when no request of any strategy succeeded (a wrong `--host`, a
/// simulator that is not running): a report of nothing but errors would mislead.
fn nothing_answered(report: &report::Report) -> Option<String> {
    let all_failed = report.strategies.iter().all(|s| s.errors == s.requests);
    all_failed
        .then(|| report.strategies.iter().find_map(|s| s.first_error.clone()))
        .flatten()
}
