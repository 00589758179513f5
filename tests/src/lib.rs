//! Shared fixtures for the end-to-end tests in `tests/e2e/`: where the built artefacts
//! live, the configs that use them, and helpers for requests and sample audio.
//!
//! The artefacts are built by `just test` before the tests run (guest components with
//! `cargo build --release` in `guest/`, the model with `models/fetch`, audio with
//! `samples/make`); a missing one fails with the command that makes it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hybrid::config::{Config, Dim, InputFact, ModelConfig, PipelineConfig, RuntimeConfig};
use hybrid::local::ModelRegistry;
use hybrid::runtime::{Request, Runtime};

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

/// The cargo target directory shared by host and guests.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root().join(p) })
        .unwrap_or_else(|| root().join("target"))
}

fn existing(path: PathBuf, made_by: &str) -> PathBuf {
    assert!(
        path.exists(),
        "{} is missing: run `{made_by}` (or `just test`) first",
        path.display()
    );
    path
}

/// A guest component built from `guest/<crate>` (crate name with underscores).
pub fn component(name: &str) -> PathBuf {
    existing(
        target_dir()
            .join("wasm32-wasip2/release")
            .join(format!("{name}.wasm")),
        "just guests",
    )
}

/// The `hybrid` binary built by `cargo build -p hybrid`.
pub fn hybrid_bin() -> PathBuf {
    existing(target_dir().join("debug/hybrid"), "cargo build -p hybrid")
}

/// A generated sample file's bytes.
pub fn sample(name: &str) -> Vec<u8> {
    let path = existing(root().join("samples/generated").join(name), "samples/make");
    std::fs::read(&path).expect("read sample")
}

/// `samples/generated/truth.json`: true speech segments of every sample.
pub fn truth() -> serde_json::Value {
    let path = existing(root().join("samples/generated/truth.json"), "samples/make");
    serde_json::from_slice(&std::fs::read(path).expect("read truth")).expect("truth is JSON")
}

/// The Silero VAD model as the default config declares it.
pub fn vad_model() -> ModelConfig {
    let config = Config::load(&root().join("hybrid.toml")).expect("hybrid.toml loads");
    let model = config
        .models
        .into_iter()
        .find(|m| m.name == "silero-vad")
        .expect("silero-vad configured");
    existing(model.path.clone(), "models/fetch");
    model
}

/// An input fact, for configs built in tests.
pub fn fact(name: &str, ty: &str, shape: &[Dim]) -> InputFact {
    InputFact {
        name: name.into(),
        ty: ty.into(),
        shape: shape.to_vec(),
    }
}

/// A pipeline config for `component` with the given limits.
pub fn pipeline(
    name: &str,
    component: PathBuf,
    deadline_ms: u64,
    memory_mib: u64,
) -> PipelineConfig {
    PipelineConfig {
        name: name.into(),
        component,
        deadline_ms,
        memory_mib,
    }
}

/// A runtime with the VAD model and the given pipelines.
pub fn runtime(pipelines: &[PipelineConfig]) -> Runtime {
    let models = Arc::new(ModelRegistry::load(&[vad_model()]).expect("VAD model loads"));
    let config = RuntimeConfig {
        max_instances: 16,
        ..RuntimeConfig::default()
    };
    let runtime = Runtime::new(&config, models).expect("runtime starts");
    for p in pipelines {
        runtime.load_pipeline(p).expect("pipeline loads");
    }
    runtime
}

/// A request with metadata given as `key=value` pairs.
pub fn request(body: Vec<u8>, content_type: &str, metadata: &[(&str, &str)]) -> Request {
    Request {
        id: "test".into(),
        content_type: content_type.into(),
        body,
        metadata: metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}
