//! The plan file: which workload to replay, through which strategies, and what to aim for.
//!
//! ```toml
//! workload = "../workloads/digits-heldout.jsonl"   # relative to this file
//! answer = "label"                                  # field of the answer to compare
//! target = { accuracy = 0.97 }                      # or { max_usd_per_1k = 0.01 }
//!
//! [[strategy]]
//! name = "all-local"
//! pipeline = "cascade"
//! params = { route = "local" }
//!
//! [[strategy]]
//! name = "cascade"
//! pipeline = "cascade"
//! sweep = { param = "threshold", values = [0.5, 0.9, 0.99] }
//! ```
//!
//! A strategy is a pipeline plus request parameters; a sweep expands into one strategy
//! per value. Any pipeline the box serves can be a strategy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::PlanError;
use crate::config::settings::SettingValue;

/// A plan file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanSpec {
    /// The workload, relative to the plan file.
    pub workload: PathBuf,
    /// Top-level field of the answer's JSON body compared with each request's label.
    #[serde(default = "default_answer")]
    pub answer: String,
    /// What the recommendation aims for.
    #[serde(default)]
    pub target: Target,
    /// The strategies, in report order.
    pub strategy: Vec<StrategySpec>,
}

/// What the recommended strategy must reach.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Lowest acceptable accuracy (0..1). Default: the most accurate strategy's, less 0.01.
    pub accuracy: Option<f64>,
    /// Highest acceptable cost per 1,000 requests in US dollars; when set, the most
    /// accurate sweep point within it is recommended instead.
    pub max_usd_per_1k: Option<f64>,
}

/// One strategy as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategySpec {
    /// Its name in the report.
    pub name: String,
    /// The pipeline that serves its requests.
    pub pipeline: String,
    /// Request parameters added to every request.
    #[serde(default)]
    pub params: BTreeMap<String, SettingValue>,
    /// Expand into one strategy per value of one parameter.
    pub sweep: Option<Sweep>,
}

/// A parameter sweep.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    /// The parameter, e.g. `threshold`.
    pub param: String,
    /// Its values, in report order.
    pub values: Vec<f64>,
}

/// A concrete strategy: a pipeline and the parameters of each request.
#[derive(Debug, Clone, PartialEq)]
pub struct Strategy {
    /// `cascade threshold=0.9` for a sweep point, else the spec's name.
    pub name: String,
    /// The spec's name (sweep points share it).
    pub group: String,
    /// The pipeline.
    pub pipeline: String,
    /// Request parameters.
    pub params: Vec<(String, String)>,
    /// The swept parameter and its value, for sweep points.
    pub sweep: Option<(String, f64)>,
}

fn default_answer() -> String {
    "label".to_owned()
}

impl PlanSpec {
    /// Reads a plan file; the workload path is resolved against the file's folder.
    pub fn load(path: &Path) -> Result<Self, PlanError> {
        let text = std::fs::read_to_string(path).map_err(|e| PlanError::Read {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let bad = |message: String| PlanError::Spec {
            path: path.to_owned(),
            message,
        };
        let mut spec: PlanSpec = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if spec.strategy.is_empty() {
            return Err(bad("no [[strategy]]: name at least one".to_owned()));
        }
        for s in &spec.strategy {
            if let Some(sweep) = &s.sweep
                && sweep.values.is_empty()
            {
                return Err(bad(format!("strategy {:?}: sweep has no values", s.name)));
            }
        }
        if let Some(folder) = path.parent() {
            spec.workload = folder.join(&spec.workload);
        }
        Ok(spec)
    }

    /// Every concrete strategy, sweeps expanded, in report order.
    pub fn strategies(&self) -> Vec<Strategy> {
        let mut out = Vec::new();
        for s in &self.strategy {
            let params: Vec<(String, String)> = s
                .params
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.text()))
                .collect();
            match &s.sweep {
                None => out.push(Strategy {
                    name: s.name.clone(),
                    group: s.name.clone(),
                    pipeline: s.pipeline.clone(),
                    params,
                    sweep: None,
                }),
                Some(sweep) => {
                    for &value in &sweep.values {
                        let mut params = params.clone();
                        params.push((sweep.param.to_ascii_lowercase(), value.to_string()));
                        out.push(Strategy {
                            name: format!("{} {}={value}", s.name, sweep.param),
                            group: s.name.clone(),
                            pipeline: s.pipeline.clone(),
                            params,
                            sweep: Some((sweep.param.clone(), value)),
                        });
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_expand_in_order_and_the_workload_is_beside_the_file() {
        let dir = std::env::temp_dir().join(format!("hybrid-plan-spec-{}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("p.toml");
        std::fs::write(
            &path,
            "workload = \"w.jsonl\"\n\
             [[strategy]]\nname = \"local\"\npipeline = \"cascade\"\nparams = { route = \"local\" }\n\
             [[strategy]]\nname = \"cascade\"\npipeline = \"cascade\"\nsweep = { param = \"threshold\", values = [0.5, 0.9] }\n",
        )
        .expect("write");
        let spec = PlanSpec::load(&path).expect("loads");
        assert_eq!(spec.workload, dir.join("w.jsonl"));
        assert_eq!(spec.answer, "label");
        let names: Vec<String> = spec.strategies().into_iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            ["local", "cascade threshold=0.5", "cascade threshold=0.9"]
        );
        assert_eq!(
            spec.strategies()[2].params,
            vec![("threshold".to_owned(), "0.9".to_owned())]
        );
        std::fs::write(&path, "workload = \"w.jsonl\"\nstrategy = []\n").expect("write");
        assert!(
            PlanSpec::load(&path)
                .expect_err("refused")
                .to_string()
                .contains("no [[strategy]]")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
