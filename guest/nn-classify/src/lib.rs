//! A handwritten-digit classifier written only against standard `wasi:nn`: the portable
//! path for ML components on the `hybrid` edge host.
//!
//! `POST /v1/pipelines/<name>` with `{"pixels": [64 grey levels 0..=16]}`
//! (`application/json`). The component imports nothing of `hybrid:inference` but the
//! request and response types its export needs (`messages`); the model comes from
//! `wasi:nn`: `load-by-name` of the model named by metadata `model` (operator setting
//! `setting.model` first; default `digits-v1`), which the host serves from its model
//! registry, already loaded and optimised. The steps are the ones any `wasi:nn` program
//! takes (and wasmtime's own ONNX classification test takes):
//! 1. `graph::load-by-name(model)`;
//! 2. `graph.init-execution-context()`;
//! 3. `context.compute([("input", tensor([1, 64], FP32, levels / 16))])`;
//! 4. read output `probabilities` (FP32, one per class) and rank them.
//!
//! Answers `{"label": 3, "confidence": 0.98, "top": [[3, 0.98], [8, 0.01], ...],
//! "probabilities": [...], "model": "digits-v1"}`. A `wasi:nn` error becomes `upstream`
//! with the error's code and data (`not-found: no local model named ...`).
//!
//! # Layout
//!
//! - [`digit`]: the body, the input tensor's values and the ranking (pure Rust, tested
//!   natively with `cargo test --target x86_64-unknown-linux-gnu`).
//! - `component` (wasm32 only): the bindings of the world below and the `wasi:nn` calls.
//!
//! The world, inline in `component.rs`, is the published `wasi:nn` world `ml` plus the
//! `pipeline` world's export:
//!
//! ```wit
//! world nn-classify {
//!     include wasi:nn/ml@0.2.0-rc-2024-10-28;
//!     use hybrid:inference/messages@0.2.2.{request, response, error};
//!     use hybrid:inference/reply@0.2.2.{answer};
//!     export handle: func(request: request) -> result<answer, error>;
//! }
//! ```

#[cfg(target_arch = "wasm32")]
mod component;
pub mod digit;
