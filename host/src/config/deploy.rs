//! `[admin]`, `[deploy]` and the per-pipeline deploy settings (`[[pipeline.smoke]]`,
//! `[pipeline.auto_rollback]`): how new components and models reach a running box.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// The admin API: deploys, canaries, rollbacks and status, on a listener of its own.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Address of the admin listener; keep it on loopback or a management network.
    pub listen: String,
    /// The environment variable holding the bearer token. The admin API is off unless
    /// this is configured and the variable is set.
    pub token_env: Option<String>,
    /// Largest upload accepted (a component or a model), in bytes (413 beyond).
    pub max_upload_bytes: usize,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8081".into(),
            token_env: None,
            max_upload_bytes: 256 << 20,
        }
    }
}

/// Where deployed versions are kept and how files are watched.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeployConfig {
    /// The state directory: deployed components and models, the compiled-component
    /// cache and the record of what is live. Relative to the config file's folder.
    pub state_dir: PathBuf,
    /// Watch mode waits this long after the last change to a file before deploying it.
    pub watch_debounce_ms: u64,
}

impl Default for DeployConfig {
    fn default() -> Self {
        Self {
            state_dir: PathBuf::from("hybrid-state"),
            watch_debounce_ms: 300,
        }
    }
}

/// One request every new version of a pipeline must answer as expected before it goes
/// live.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmokeRequest {
    /// File holding the request body (relative to the config file's folder).
    pub body: PathBuf,
    /// The request's content type.
    #[serde(default = "default_content_type")]
    pub content_type: String,
    /// The request's metadata, as `x-hybrid-*` headers would give it.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// The HTTP status the answer must have.
    #[serde(default = "default_status")]
    pub status: u16,
}

fn default_content_type() -> String {
    "application/octet-stream".into()
}

fn default_status() -> u16 {
    200
}

/// Drop a canary by itself when it fails more often than the stable version.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AutoRollback {
    /// How much higher (0 to 1) the canary's error rate may be than the stable
    /// version's over the same period before it is dropped.
    pub margin: f64,
    /// Requests the canary must have served before it is judged.
    pub min_requests: u64,
}

impl Default for AutoRollback {
    fn default() -> Self {
        Self {
            margin: 0.05,
            min_requests: 50,
        }
    }
}
