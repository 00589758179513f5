//! Shared fixtures for the end-to-end tests in `tests/e2e/`: where the built artefacts
//! live, the configs that use them, and helpers for requests and sample audio.
//!
//! The artefacts are built by `just test` before the tests run (guest components with
//! `cargo build --release` in `guest/`, the model with `models/fetch`, audio with
//! `samples/make`); a missing one fails with the command that makes it.

pub mod edge_box;
pub mod secrets;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hybrid::config::{Config, Dim, InputFact, ModelConfig, PipelineConfig, RuntimeConfig};
use hybrid::local::ModelRegistry;
use hybrid::remote::Remote;
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

/// A pipeline config for `component` with the given limits. Quarantine is off: tests
/// that provoke failures on purpose share one runtime and run in parallel, and
/// `tests/e2e/quarantine.rs` covers it through real configs.
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
        embedding_model: None,
        smoke: Vec::new(),
        auto_rollback: None,
        settings: Default::default(),
        limits: Default::default(),
        shadow: None,
        quarantine: hybrid::config::QuarantineConfig {
            after: 0,
            ..Default::default()
        },
        args: Vec::new(),
        env: Default::default(),
        preopens: Default::default(),
        content_type: None,
        preinit: true,
    }
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

/// The 16-bit samples of a PCM WAV file's `data` chunk (channels interleaved as stored).
pub fn wav_samples(wav: &[u8]) -> Vec<i16> {
    // RIFF header (12 bytes), then chunks of id (4), little-endian size (4), body
    // (padded to an even length).
    let mut at = 12;
    while at + 8 <= wav.len() {
        let size = u32::from_le_bytes(wav[at + 4..at + 8].try_into().expect("4 bytes")) as usize;
        let body = at + 8;
        if &wav[at..at + 4] == b"data" {
            let end = (body + size).min(wav.len());
            return wav[body..end]
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect();
        }
        at = body + size + size % 2;
    }
    panic!("WAV file has no data chunk");
}

/// A 16 kHz mono 16-bit PCM WAV file holding `samples`.
pub fn wav_16k_mono(samples: &[i16]) -> Vec<u8> {
    const RATE: u32 = 16_000;
    let data_len = u32::try_from(samples.len() * 2).expect("WAV under 4 GiB");
    let mut wav = Vec::with_capacity(44 + samples.len() * 2);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&RATE.to_le_bytes());
    wav.extend_from_slice(&(RATE * 2).to_le_bytes()); // bytes per second
    wav.extend_from_slice(&2u16.to_le_bytes()); // bytes per frame
    wav.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        wav.extend_from_slice(&s.to_le_bytes());
    }
    wav
}

/// A model as the default config (`hybrid.toml`) declares it, its file made by `made_by`.
pub fn configured_model(name: &str, made_by: &str) -> ModelConfig {
    let config = Config::load(&root().join("hybrid.toml")).expect("hybrid.toml loads");
    let model = config
        .models
        .into_iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("{name} configured in hybrid.toml"));
    existing(model.path.clone(), made_by);
    for asset in model.assets.values() {
        existing(asset.path.clone(), made_by);
    }
    model
}

/// all-MiniLM-L6-v2 (with its `vocab` asset) as the default config declares it.
pub fn minilm_model() -> ModelConfig {
    configured_model("minilm-l6-v2", "models/build-minilm")
}

/// A committed test-data file, `tests/data/<path>`.
pub fn test_data(path: &str) -> Vec<u8> {
    let file = root().join("tests/data").join(path);
    std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// A runtime with the given models, the serverless endpoints of `remote` and the given
/// pipelines: the one builder the helpers below specialise.
pub fn runtime_with_models_and_remote(
    models: &[ModelConfig],
    remote: Arc<Remote>,
    pipelines: &[PipelineConfig],
) -> Runtime {
    runtime_with_engine(&test_engine(), models, remote, pipelines)
}

/// The engine settings of the test runtimes: a small pool, the rest default.
pub fn test_engine() -> RuntimeConfig {
    RuntimeConfig {
        max_instances: 16,
        ..RuntimeConfig::default()
    }
}

/// A runtime with engine settings `config` (fuel metering, say), the given models,
/// endpoints and pipelines.
pub fn runtime_with_engine(
    config: &RuntimeConfig,
    models: &[ModelConfig],
    remote: Arc<Remote>,
    pipelines: &[PipelineConfig],
) -> Runtime {
    let models = Arc::new(ModelRegistry::load(models).expect("models load"));
    let runtime = Runtime::with_remote(config, models, remote).expect("runtime starts");
    for p in pipelines {
        runtime.load_pipeline(p).expect("pipeline loads");
    }
    runtime
}

/// A runtime with the VAD model and the given pipelines, no serverless endpoints.
pub fn runtime(pipelines: &[PipelineConfig]) -> Runtime {
    runtime_with_remote(Arc::new(Remote::none()), pipelines)
}

/// A runtime with the VAD model, the serverless endpoints of `remote` and the given
/// pipelines.
pub fn runtime_with_remote(remote: Arc<Remote>, pipelines: &[PipelineConfig]) -> Runtime {
    runtime_with_models_and_remote(&[vad_model()], remote, pipelines)
}

/// A runtime with the given models and pipelines, no serverless endpoints.
pub fn runtime_with_models(models: &[ModelConfig], pipelines: &[PipelineConfig]) -> Runtime {
    runtime_with_models_and_remote(models, Arc::new(Remote::none()), pipelines)
}

/// A runtime with no local models, the serverless endpoints of `remote` and the given
/// pipelines: for routing policies that only call endpoints.
pub fn runtime_with_remote_only(remote: Arc<Remote>, pipelines: &[PipelineConfig]) -> Runtime {
    runtime_with_models_and_remote(&[], remote, pipelines)
}

/// The sha256 of `models/digits-v1.onnx` (models/manifest.toml).
pub const DIGITS_SHA256: &str = "53eac231dec9d2c004fd26db5f71356f715df1491f77aad581353c1bafa3c98f";

/// A `[[model]]` table for `digits-v1` at `version`, for test configs.
pub fn digits_model_toml(version: &str) -> String {
    format!(
        "\n[[model]]\nname = \"digits-v1\"\nversion = \"{version}\"\npath = \"{}\"\n\
         sha256 = \"{DIGITS_SHA256}\"\n\
         input = [{{ name = \"input\", type = \"fp32\", shape = [\"N\", 64] }}]\n",
        existing(root().join("models/digits-v1.onnx"), "models/train-digits").display()
    )
}

/// The body of `nn-probe`'s mode `run` for `inputs` (the format
/// `guest/nn-probe/src/probe.rs` decodes): per tensor, little-endian `u32` name length,
/// the name, a type byte (0 FP32, 1 U8, 2 I32, 3 I64), `u32` rank, `u32` dimensions,
/// `u32` data length, the data.
pub fn nn_probe_body(inputs: &[hybrid::local::NamedTensor]) -> Vec<u8> {
    use hybrid::local::ElementType;
    let word = |body: &mut Vec<u8>, n: usize| {
        body.extend_from_slice(&u32::try_from(n).expect("fits u32").to_le_bytes());
    };
    let mut body = Vec::new();
    for input in inputs {
        word(&mut body, input.name.len());
        body.extend_from_slice(input.name.as_bytes());
        body.push(match input.tensor.ty {
            ElementType::Fp32 => 0,
            ElementType::U8 => 1,
            ElementType::I32 => 2,
            ElementType::I64 => 3,
        });
        word(&mut body, input.tensor.dims.len());
        for &d in &input.tensor.dims {
            word(&mut body, d);
        }
        word(&mut body, input.tensor.data.len());
        body.extend_from_slice(&input.tensor.data);
    }
    body
}
