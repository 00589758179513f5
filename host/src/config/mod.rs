//! The operator's configuration file.
//!
//! A config is TOML: `[runtime]` limits shared by every pipeline, `[[model]]` entries for
//! the ONNX models loaded on this box, `[[pipeline]]` entries naming the component that
//! serves each pipeline, and `[[endpoint]]` entries and a `[budget]` for serverless calls
//! (see [`endpoint`]). Relative paths are resolved against the
//! directory holding the config file, so a config and its artefacts can move together.
//! Loading validates everything a typo could break (duplicate names, zero limits, dangling
//! paths are left to the loaders that open them, which name the file).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

mod command;
mod deploy;
mod endpoint;
mod expand;
pub mod limits;
mod nn;
mod quarantine;
mod server;
pub mod settings;
mod shadow;

pub use deploy::{AdminConfig, AutoRollback, DeployConfig, SmokeRequest};
pub use endpoint::{BudgetConfig, EndpointConfig, EndpointKind, Prices};
pub use limits::{Limit, Limits};
pub use nn::NnConfig;
pub use quarantine::QuarantineConfig;
pub use server::{OpenAiKind, OpenAiModel, ServerConfig};
pub use settings::Settings;
pub use shadow::ShadowConfig;

/// A configuration problem, naming the file and the entry at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path:?}: {error}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// The underlying I/O error.
        error: std::io::Error,
    },
    /// The file is not valid TOML or does not have the expected fields.
    #[error("invalid config {path:?}: {message}")]
    Parse {
        /// The config file.
        path: PathBuf,
        /// What the TOML parser said, with line and column.
        message: String,
    },
    /// The values parse but do not make sense together.
    #[error("invalid config {path:?}: {message}")]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// Which entry is wrong and why.
        message: String,
    },
}

/// The whole configuration, with paths made absolute.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Engine-wide limits.
    #[serde(default)]
    pub runtime: RuntimeConfig,
    /// Models loaded on this box.
    #[serde(default, rename = "model")]
    pub models: Vec<ModelConfig>,
    /// Pipelines served by this box.
    #[serde(default, rename = "pipeline")]
    pub pipelines: Vec<PipelineConfig>,
    /// Serverless endpoints guests may call through the host.
    #[serde(default, rename = "endpoint")]
    pub endpoints: Vec<EndpointConfig>,
    /// Spend limits across every endpoint.
    #[serde(default)]
    pub budget: BudgetConfig,
    /// The HTTP front of `hybrid serve`.
    #[serde(default)]
    pub server: ServerConfig,
    /// Model ids served on the OpenAI-compatible routes, each by a pipeline.
    #[serde(default, rename = "openai_model")]
    pub openai_models: Vec<OpenAiModel>,
    /// The admin API (deploys, canaries, rollbacks); off without `[admin]`.
    #[serde(default)]
    pub admin: Option<AdminConfig>,
    /// Where deployed versions are kept.
    #[serde(default)]
    pub deploy: DeployConfig,
}

/// Limits shared by every pipeline.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// How many guest instances may be alive at once (slots in the pooling allocator).
    pub max_instances: u32,
    /// The largest memory cap any pipeline may ask for, in MiB; sizes the pool's slots.
    pub max_memory_mib: u64,
    /// Granularity of deadlines in milliseconds: a guest overruns by at most this much.
    pub epoch_tick_ms: u64,
    /// Meter fuel in every component (needed by `limits.fuel`). Off by default: metering
    /// is compiled into the code of every pipeline and slows all of them a little. Turned
    /// on by itself when any pipeline sets `limits.fuel`.
    pub fuel: bool,
    /// `[runtime.nn]`: what guests may do through `wasi:nn` beyond `load-by-name`.
    pub nn: NnConfig,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            max_instances: 1024,
            max_memory_mib: 512,
            epoch_tick_ms: 5,
            fuel: false,
            nn: NnConfig::default(),
        }
    }
}

/// One ONNX model file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The name guests use in `local.run`.
    pub name: String,
    /// The operator's version string, reported in routing records.
    pub version: String,
    /// Path to the `.onnx` file.
    pub path: PathBuf,
    /// Expected lower-case hex SHA-256 of the file; a mismatch refuses to start.
    pub sha256: String,
    /// Input facts (type and shape) to pin before optimisation. Optional: without them the
    /// model's own declarations are used.
    #[serde(default, rename = "input")]
    pub inputs: Vec<InputFact>,
    /// Files that ship with the model (a tokenizer's vocabulary, labels), by the name
    /// guests ask for them with `local.asset`.
    #[serde(default)]
    pub assets: BTreeMap<String, AssetConfig>,
    /// How many plans optimised for one input shape each the host may make for this
    /// model, for the shapes it is called with most (see `local::shape_plans`). Only
    /// models with symbolic input dimensions get them; each costs the memory of one more
    /// packed copy of the weights, and may answer a few ulps apart from the generic plan.
    /// 0 turns them off (every run on one plan).
    #[serde(default = "default_shape_plans")]
    pub shape_plans: usize,
    /// Opt-in: the shape symbol (e.g. `"B"`) of the inputs' leading axis whose rows are
    /// independent samples. When set, a run with two or more rows and CPU slots free at
    /// that moment (taken without waiting) is split into contiguous parts run side by side
    /// on those slots, and the outputs are concatenated along axis 0 in order; a borrowed
    /// slot goes back as soon as another run waits for it (see `crate::local`). Under
    /// concurrent load no slot is free and nothing splits. The symbol must be axis 0 of at
    /// least one declared `input` (and appear on no other axis); inputs without it are
    /// passed whole to every part, and every output's axis 0 must be the batch (checked on
    /// each result, split or not). Results may differ from an unsplit run's in the last
    /// bits (tract's arithmetic can depend on the batch size). Never set it for a model
    /// that carries state across rows (Silero VAD's `h`/`c`). Off when absent.
    #[serde(default)]
    pub split_batch: Option<String>,
}

/// Shape-specialised plans a model gets unless its config says otherwise.
pub const DEFAULT_SHAPE_PLANS: usize = 4;

fn default_shape_plans() -> usize {
    DEFAULT_SHAPE_PLANS
}

/// A file that ships with a model, checksummed like the model itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetConfig {
    /// Path to the file.
    pub path: PathBuf,
    /// Expected lower-case hex SHA-256 of the file.
    pub sha256: String,
}

/// The declared type and shape of one model input.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputFact {
    /// The model's input name.
    pub name: String,
    /// Element type: `fp32`, `i64`, `i32` or `u8`.
    #[serde(rename = "type")]
    pub ty: String,
    /// One entry per dimension: a number for a fixed size, a string (a symbol such as
    /// `"N"`) for a size chosen per call.
    pub shape: Vec<Dim>,
}

/// One dimension of an [`InputFact`].
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Dim {
    /// A fixed size.
    Fixed(u32),
    /// A symbolic size, chosen per call.
    Symbol(String),
}

/// One pipeline: a component and the limits each of its requests runs under.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// The name clients use to address the pipeline.
    pub name: String,
    /// Path to the component (`.wasm`) implementing the `pipeline` world.
    pub component: PathBuf,
    /// Wall-clock budget per request in milliseconds, guest and host calls included.
    #[serde(default = "default_deadline_ms")]
    pub deadline_ms: u64,
    /// Cap on the guest's linear memory in MiB.
    #[serde(default = "default_memory_mib")]
    pub memory_mib: u64,
    /// For embeddings pipelines: the local model whose vectors this pipeline returns. Its
    /// identity (name and sha256) is binding: a serverless embeddings endpoint may serve
    /// this pipeline only if it declares the same `model_sha256`, so vectors from two
    /// different models never mix in one index.
    #[serde(default)]
    pub embedding_model: Option<String>,
    /// Requests every new version must answer as expected before it goes live (at
    /// start, on deploy and in watch mode).
    #[serde(default)]
    pub smoke: Vec<SmokeRequest>,
    /// Drop a canary by itself when its error rate exceeds the stable version's.
    #[serde(default)]
    pub auto_rollback: Option<AutoRollback>,
    /// Operator settings the component reads as metadata `setting.<key>` (see
    /// [`settings`]); clients cannot set or override them.
    #[serde(default)]
    pub settings: Settings,
    /// Per-request limits on serverless calls, model runs, logging, answer size, fuel,
    /// instances and tables (see [`limits`]).
    #[serde(default)]
    pub limits: Limits,
    /// Shadow evaluation: for `share` of the requests answered locally, serve the same
    /// request again with `params` after the client has its answer and count whether the
    /// two `answer` fields agree, per local model version (`hybrid_shadow_total`). Off
    /// when absent. See [`ShadowConfig`].
    #[serde(default)]
    pub shadow: Option<ShadowConfig>,
    /// Quarantine: after `after` consecutive failures of its component (traps, deadlines,
    /// memory cap, other limits), answer 503 with `Retry-After` without running it for
    /// `cool_down_ms`, then let one request through as a probe. On by default
    /// (`{ after = 5, cool_down_ms = 30000 }`); `after = 0` turns it off. See
    /// [`QuarantineConfig`].
    #[serde(default)]
    pub quarantine: QuarantineConfig,
    /// Arguments after `argv[0]` (which is the pipeline's name), for a component that is
    /// a `wasi:cli` command (see [`command`]).
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment variables the guest sees; it never sees the host's own.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Directories the guest may read, by the name it opens them under
    /// (`preopens = { "fixture" = "path/on/host" }`): read-only, paths relative to the
    /// config's directory, checked to exist when the pipeline is loaded. None by default.
    #[serde(default)]
    pub preopens: BTreeMap<String, PathBuf>,
    /// The content type of a `wasi:cli` command's answer (its stdout); default
    /// `application/octet-stream`.
    #[serde(default)]
    pub content_type: Option<String>,
    /// Whether a component exporting `hybrid:inference/init` (WIT 0.2.2) is
    /// pre-initialised: its `initialize` run once at deploy and every request served from
    /// a snapshot of the instance after it (see `wit/init.wit`). On by default; `false`
    /// serves the component as built, each request running from its own start state
    /// (`initialize` never called).
    #[serde(default = "default_preinit")]
    pub preinit: bool,
}

fn default_preinit() -> bool {
    true
}

fn default_deadline_ms() -> u64 {
    10_000
}

fn default_memory_mib() -> u64 {
    128
}

impl PipelineConfig {
    /// The per-request deadline.
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
    }

    /// The memory cap in bytes.
    pub fn memory_bytes(&self) -> usize {
        usize::try_from(self.memory_mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
    }
}

impl Config {
    /// Reads, parses and validates the config at `path`, resolving relative paths
    /// against its directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_owned(),
            error,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            ConfigError::Invalid { message, .. } => ConfigError::Invalid {
                path: path.to_owned(),
                message,
            },
            other => other,
        })
    }

    /// The built-in default (the repository's `hybrid.toml`), with paths resolved
    /// against `base` (normally the current directory).
    pub fn builtin(base: &Path) -> Result<Self, ConfigError> {
        Self::parse(include_str!("../../../hybrid.toml"), base).map_err(|e| match e {
            ConfigError::Parse { message, .. } | ConfigError::Invalid { message, .. } => {
                ConfigError::Invalid {
                    path: PathBuf::from("(built-in default)"),
                    message,
                }
            }
            other => other,
        })
    }

    /// Parses and validates config text; `${VAR}` and `${VAR:-default}` are expanded
    /// from the environment and relative paths resolved against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self, ConfigError> {
        let text = expand::expand(text, &|name| std::env::var(name).ok()).map_err(|message| {
            ConfigError::Invalid {
                path: PathBuf::new(),
                message,
            }
        })?;
        let mut config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        for model in &mut config.models {
            model.path = base.join(&model.path);
            for asset in model.assets.values_mut() {
                asset.path = base.join(&asset.path);
            }
        }
        for pipeline in &mut config.pipelines {
            pipeline.component = base.join(&pipeline.component);
            for smoke in &mut pipeline.smoke {
                smoke.body = base.join(&smoke.body);
            }
            for dir in pipeline.preopens.values_mut() {
                *dir = base.join(&*dir);
            }
        }
        config.deploy.state_dir = base.join(&config.deploy.state_dir);
        // Fuel metering is an engine setting: one pipeline's fuel limit turns it on.
        config.runtime.fuel |= config.pipelines.iter().any(|p| p.limits.fuel.is_some());
        config.validate().map_err(|message| ConfigError::Invalid {
            path: PathBuf::new(),
            message,
        })?;
        Ok(config)
    }

    /// The pipeline named `name`, if configured.
    pub fn pipeline(&self, name: &str) -> Option<&PipelineConfig> {
        self.pipelines.iter().find(|p| p.name == name)
    }

    fn validate(&self) -> Result<(), String> {
        let rt = &self.runtime;
        if rt.max_instances == 0 || rt.max_memory_mib == 0 || rt.epoch_tick_ms == 0 {
            return Err(
                "runtime: max_instances, max_memory_mib and epoch_tick_ms must be > 0".into(),
            );
        }
        rt.nn.validate()?;
        let mut names = HashSet::new();
        for m in &self.models {
            if !names.insert(&m.name) {
                return Err(format!("model {:?} is defined twice", m.name));
            }
            let digests = std::iter::once(("", &m.sha256))
                .chain(m.assets.iter().map(|(k, a)| (k.as_str(), &a.sha256)));
            for (asset, sha) in digests {
                if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                    let what = if asset.is_empty() {
                        String::new()
                    } else {
                        format!(" asset {asset:?}")
                    };
                    return Err(format!(
                        "model {:?}{what}: sha256 must be 64 hex digits, got {sha:?}",
                        m.name
                    ));
                }
            }
            for input in &m.inputs {
                crate::local::ElementType::parse(&input.ty)
                    .map_err(|e| format!("model {:?} input {:?}: {e}", m.name, input.name))?;
            }
            if let Some(symbol) = &m.split_batch {
                validate_split_batch(m, symbol)?;
            }
        }
        let mut names = HashSet::new();
        for p in &self.pipelines {
            if !names.insert(&p.name) {
                return Err(format!("pipeline {:?} is defined twice", p.name));
            }
            if p.name.is_empty()
                || !p
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(format!(
                    "pipeline name {:?} must be non-empty ASCII letters, digits, '-' or '_'",
                    p.name
                ));
            }
            if p.deadline_ms == 0 {
                return Err(format!("pipeline {:?}: deadline_ms must be > 0", p.name));
            }
            if let Some(model) = &p.embedding_model
                && !self.models.iter().any(|m| &m.name == model)
            {
                return Err(format!(
                    "pipeline {:?}: embedding_model {model:?} is not a configured model",
                    p.name
                ));
            }
            settings::validate(&p.settings).map_err(|e| format!("pipeline {:?}: {e}", p.name))?;
            p.limits
                .validate()
                .map_err(|e| format!("pipeline {:?}: {e}", p.name))?;
            if let Some(rule) = &p.auto_rollback
                && (!(0.0..=1.0).contains(&rule.margin) || rule.min_requests == 0)
            {
                return Err(format!(
                    "pipeline {:?}: auto_rollback.margin must be between 0 and 1 and min_requests > 0",
                    p.name
                ));
            }
            p.quarantine
                .validate()
                .map_err(|e| format!("pipeline {:?}: {e}", p.name))?;
            command::validate(p).map_err(|e| format!("pipeline {:?}: {e}", p.name))?;
            if let Some(shadow) = &p.shadow {
                shadow
                    .validate()
                    .map_err(|e| format!("pipeline {:?}: {e}", p.name))?;
            }
            if let Some(s) = p.smoke.iter().find(|s| !(100..=599).contains(&s.status)) {
                return Err(format!(
                    "pipeline {:?}: smoke request {:?} expects status {}, which is not an HTTP status",
                    p.name, s.body, s.status
                ));
            }
            if p.memory_mib == 0 || p.memory_mib > rt.max_memory_mib {
                return Err(format!(
                    "pipeline {:?}: memory_mib must be between 1 and runtime.max_memory_mib ({})",
                    p.name, rt.max_memory_mib
                ));
            }
        }
        let mut names = HashSet::new();
        for e in &self.endpoints {
            if !names.insert(&e.name) {
                return Err(format!("endpoint {:?} is defined twice", e.name));
            }
            e.validate()?;
        }
        let srv = &self.server;
        let concurrency = srv.concurrency(rt.max_instances);
        if concurrency == 0 || concurrency > rt.max_instances {
            return Err(format!(
                "server.max_concurrency must be between 1 and runtime.max_instances ({})",
                rt.max_instances
            ));
        }
        if srv.max_body_bytes == 0 {
            return Err("server.max_body_bytes must be > 0".into());
        }
        if let Some(admin) = &self.admin
            && admin.max_upload_bytes == 0
        {
            return Err("admin.max_upload_bytes must be > 0".into());
        }
        let mut ids = HashSet::new();
        for m in &self.openai_models {
            if !ids.insert(&m.id) {
                return Err(format!("openai_model {:?} is defined twice", m.id));
            }
            if self.pipeline(&m.pipeline).is_none() {
                return Err(format!(
                    "openai_model {:?} names pipeline {:?}, which is not configured",
                    m.id, m.pipeline
                ));
            }
        }
        for (window, value) in [
            ("per_minute", self.budget.per_minute),
            ("per_hour", self.budget.per_hour),
            ("per_day", self.budget.per_day),
        ] {
            if value.is_some_and(|v| !v.is_finite() || v < 0.0) {
                return Err(format!("budget.{window} must be a finite amount >= 0"));
            }
        }
        Ok(())
    }
}

/// `split_batch` names a symbol that is axis 0 of at least one declared input and no
/// other axis of any: the rows of those inputs are what gets split.
fn validate_split_batch(m: &ModelConfig, symbol: &str) -> Result<(), String> {
    let is_symbol = |d: &Dim| matches!(d, Dim::Symbol(s) if s == symbol);
    let elsewhere = m
        .inputs
        .iter()
        .find(|i| i.shape.iter().skip(1).any(is_symbol));
    if let Some(input) = elsewhere {
        return Err(format!(
            "model {:?}: split_batch {symbol:?} must only be axis 0, but input {:?} has it \
             on another axis",
            m.name, input.name
        ));
    }
    if !m
        .inputs
        .iter()
        .any(|i| i.shape.first().is_some_and(is_symbol))
    {
        let declared: Vec<&str> = m.inputs.iter().map(|i| i.name.as_str()).collect();
        return Err(format!(
            "model {:?}: split_batch {symbol:?} is not axis 0 of any declared input \
             (declared: [{}]); declare the batched inputs with `input = [...]` and a \
             shape starting with {symbol:?}",
            m.name,
            declared.join(", ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "9ccdacc4719d8aa7e45a77536bfabec45a03ba1f2fad5e241ab4060b24238a85";

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/hybrid"))
    }

    #[test]
    fn resolves_paths_against_the_config_directory() {
        let config = parse(&format!(
            r#"
            [[model]]
            name = "vad"
            version = "1"
            path = "models/vad.onnx"
            sha256 = "{SHA}"
            input = [{{ name = "x", type = "fp32", shape = ["N", 576] }}]

            [[pipeline]]
            name = "voice-gate"
            component = "/abs/voice.wasm"
            "#
        ))
        .expect("valid config");
        assert_eq!(
            config.models[0].path,
            Path::new("/etc/hybrid/models/vad.onnx")
        );
        assert_eq!(
            config.models[0].inputs[0].shape,
            vec![Dim::Symbol("N".into()), Dim::Fixed(576)]
        );
        assert_eq!(config.pipelines[0].component, Path::new("/abs/voice.wasm"));
        assert_eq!(config.pipelines[0].deadline_ms, 10_000);
        assert_eq!(config.runtime.max_instances, 1024);
    }

    #[test]
    fn rejects_duplicate_pipelines_and_bad_limits() {
        let dup = "[[pipeline]]\nname = \"a\"\ncomponent = \"a.wasm\"\n[[pipeline]]\nname = \"a\"\ncomponent = \"b.wasm\"\n";
        let err = parse(dup).expect_err("duplicate").to_string();
        assert!(err.contains("pipeline \"a\" is defined twice"), "{err}");

        let big = "[[pipeline]]\nname = \"a\"\ncomponent = \"a.wasm\"\nmemory_mib = 100000\n";
        let err = parse(big).expect_err("too big").to_string();
        assert!(err.contains("memory_mib"), "{err}");
    }

    #[test]
    fn one_pipelines_fuel_limit_turns_metering_on_for_the_engine() {
        let base = "[[pipeline]]\nname = \"a\"\ncomponent = \"a.wasm\"\n";
        assert!(!parse(base).expect("valid").runtime.fuel);
        let metered = format!("{base}limits = {{ fuel = 1000000 }}\n");
        let config = parse(&metered).expect("valid");
        assert!(config.runtime.fuel);
        assert_eq!(config.pipelines[0].limits.fuel, Some(1_000_000));
    }

    #[test]
    fn shadow_is_optional_and_its_share_is_checked() {
        let base = "[[pipeline]]\nname = \"cascade\"\ncomponent = \"c.wasm\"\n";
        assert!(parse(base).expect("valid").pipelines[0].shadow.is_none());
        let on = format!("{base}shadow = {{ share = 0.1, params = {{ route = \"remote\" }} }}\n");
        let shadow = parse(&on).expect("valid").pipelines[0]
            .shadow
            .clone()
            .expect("shadow on");
        assert_eq!((shadow.share, shadow.answer.as_str()), (0.1, "label"));
        let zero = format!("{base}shadow = {{ share = 0 }}\n");
        let err = parse(&zero).expect_err("zero share").to_string();
        assert!(
            err.contains("pipeline \"cascade\": shadow.share must be greater than 0"),
            "{err}"
        );
        let typo = format!("{base}shadow = {{ share = 0.1, sahre = 1 }}\n");
        let err = parse(&typo).expect_err("typo").to_string();
        assert!(err.contains("sahre"), "{err}");
    }

    #[test]
    fn split_batch_must_be_axis_0_of_a_declared_input() {
        let model = |split: &str, inputs: &str| {
            format!(
                "[[model]]\nname = \"m\"\nversion = \"1\"\npath = \"m.onnx\"\nsha256 = \"{SHA}\"\nsplit_batch = \"{split}\"\ninput = [{inputs}]\n"
            )
        };
        let ids = r#"{ name = "ids", type = "i64", shape = ["B", "S"] }"#;
        let state = r#"{ name = "h", type = "fp32", shape = [1, 128] }"#;
        let config = parse(&model("B", &format!("{ids}, {state}"))).expect("valid");
        assert_eq!(config.models[0].split_batch.as_deref(), Some("B"));
        assert_eq!(
            parse(&format!(
                "[[model]]\nname = \"m\"\nversion = \"1\"\npath = \"m.onnx\"\nsha256 = \"{SHA}\"\n"
            ))
            .expect("valid")
            .models[0]
                .split_batch,
            None
        );

        let err = parse(&model("S", ids)).expect_err("axis 1").to_string();
        assert!(
            err.contains("must only be axis 0, but input \"ids\""),
            "{err}"
        );
        let err = parse(&model("N", ids)).expect_err("absent").to_string();
        assert!(
            err.contains("split_batch \"N\" is not axis 0 of any declared input (declared: [ids])"),
            "{err}"
        );
        let err = parse(&model("B", state))
            .expect_err("no batched input")
            .to_string();
        assert!(err.contains("is not axis 0 of any declared input"), "{err}");
    }

    #[test]
    fn rejects_bad_checksums_types_and_unknown_fields() {
        let bad_sha =
            "[[model]]\nname = \"m\"\nversion = \"1\"\npath = \"m.onnx\"\nsha256 = \"abc\"\n";
        assert!(
            parse(bad_sha)
                .expect_err("sha")
                .to_string()
                .contains("64 hex digits")
        );

        let bad_type = format!(
            "[[model]]\nname = \"m\"\nversion = \"1\"\npath = \"m.onnx\"\nsha256 = \"{SHA}\"\ninput = [{{ name = \"x\", type = \"f16\", shape = [1] }}]\n"
        );
        assert!(
            parse(&bad_type)
                .expect_err("type")
                .to_string()
                .contains("f16")
        );

        let typo = "[[pipeline]]\nname = \"a\"\ncomponnet = \"a.wasm\"\n";
        assert!(
            parse(typo)
                .expect_err("typo")
                .to_string()
                .contains("componnet")
        );
    }
}
