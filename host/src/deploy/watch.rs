//! Watch mode (`hybrid serve --watch`): a component or model file named in the config
//! that changes on disk is deployed through the same checks as an upload.
//!
//! Folders, not files, are watched: build tools and editors replace a file by renaming a
//! new one over it, which a watch on the old file would miss. Events are debounced
//! (`[deploy] watch_debounce_ms` after the last change), the file is read whole, and it is
//! deployed only if its sha256 differs from the live version's. A file that fails the
//! checks (half written, not a component, failing its smoke requests, a model with
//! another signature) is logged and the running version keeps serving.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::local::sha256_bytes;
use anyhow::Context;
use notify_debouncer_mini::notify::RecursiveMode;

use super::Deployer;
use crate::runtime::{ComponentSource, Rollout};

/// What a watched file is.
#[derive(Debug, Clone)]
enum Watched {
    /// A pipeline's component.
    Component(String),
    /// A local model.
    Model(String),
}

/// Watches the config's files until dropped.
pub struct Watcher {
    _debouncer: notify_debouncer_mini::Debouncer<notify_debouncer_mini::notify::RecommendedWatcher>,
}

/// Starts watching every component and model file the config names, after deploying
/// any that changed while the host was not watching.
pub fn start(deployer: Arc<Deployer>) -> anyhow::Result<Watcher> {
    let mut files: HashMap<PathBuf, Watched> = HashMap::new();
    for p in &deployer.config().pipelines {
        files.insert(absolute(&p.component), Watched::Component(p.name.clone()));
    }
    for m in &deployer.config().models {
        files.insert(absolute(&m.path), Watched::Model(m.name.clone()));
    }
    for (path, what) in &files {
        consider(&deployer, path, what, true);
    }
    let debounce = Duration::from_millis(deployer.config().deploy.watch_debounce_ms);
    let handler_files = files.clone();
    let handler_deployer = deployer.clone();
    let mut debouncer = notify_debouncer_mini::new_debouncer(
        debounce,
        move |events: notify_debouncer_mini::DebounceEventResult| match events {
            Ok(events) => {
                let changed: BTreeSet<PathBuf> = events.into_iter().map(|e| e.path).collect();
                for path in changed {
                    if let Some(what) = handler_files.get(&absolute(&path)) {
                        consider(&handler_deployer, &path, what, false);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "watch error"),
        },
    )
    .context("starting the file watcher")?;
    let folders: BTreeSet<PathBuf> = files
        .keys()
        .filter_map(|p| p.parent().map(Path::to_owned))
        .collect();
    for folder in folders {
        debouncer
            .watcher()
            .watch(&folder, RecursiveMode::NonRecursive)
            .with_context(|| format!("watching {folder:?}"))?;
        tracing::info!(folder = %folder.display(), "watching for new components and models");
    }
    Ok(Watcher {
        _debouncer: debouncer,
    })
}

/// Deploys `path` if it holds something other than what is live. At start, a file is
/// deployed only where the live version came from the config or from watching (it
/// changed while the host was down); an uploaded version is left serving.
fn consider(deployer: &Deployer, path: &Path, what: &Watched, at_start: bool) {
    let Ok(bytes) = std::fs::read(path) else {
        return; // Removed or not there yet: nothing to deploy.
    };
    let digest = sha256_bytes(&bytes);
    let source = ComponentSource::Watch {
        path: path.display().to_string(),
    };
    match what {
        Watched::Component(pipeline) => {
            let live = deployer.runtime().pipeline(pipeline).map(|p| p.live()).ok();
            let known = live.as_ref().is_some_and(|l| {
                l.stable.digest() == digest
                    || l.canary
                        .as_ref()
                        .is_some_and(|c| c.version.digest() == digest)
            });
            let uploaded = live
                .as_ref()
                .is_some_and(|l| l.stable.source == ComponentSource::Upload);
            if known || (at_start && uploaded) {
                return;
            }
            match deployer.deploy_component(pipeline, &bytes, source, Rollout::Replace) {
                Ok(report) => tracing::info!(
                    pipeline = %pipeline,
                    version = %crate::runtime::short_digest(&report.digest),
                    total_ms = report.total.as_secs_f64() * 1e3,
                    "watch: deployed a changed component"
                ),
                Err(e) => tracing::warn!(
                    pipeline = %pipeline,
                    file = %path.display(),
                    error = %e,
                    "watch: changed component refused; the running version keeps serving"
                ),
            }
        }
        Watched::Model(model) => {
            let current = deployer
                .runtime()
                .models()
                .get(model)
                .map(|m| m.info().sha256.clone());
            let uploaded = deployer.model_source(model) == Some(ComponentSource::Upload);
            if current.as_deref() == Some(digest.as_str()) || (at_start && uploaded) {
                return;
            }
            let configured = deployer
                .config()
                .models
                .iter()
                .find(|m| &m.name == model)
                .map_or_else(String::new, |m| m.version.clone());
            let version = format!("{configured}+{}", &digest[..12]);
            match deployer.deploy_model(model, &bytes, &version, source) {
                Ok(swap) => {
                    tracing::info!(model = %model, version = %swap.version, "watch: swapped a changed model")
                }
                Err(e) => tracing::warn!(
                    model = %model,
                    file = %path.display(),
                    error = %e,
                    "watch: changed model refused; the running version keeps serving"
                ),
            }
        }
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}
