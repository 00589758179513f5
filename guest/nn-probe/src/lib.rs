//! Probes the host's `wasi:nn` on purpose, for tests and benchmarks.
//!
//! Request metadata `mode` picks what it does; every mode runs the same fixed digit
//! ([`probe::DIGIT`], as the model takes it) unless it is about a malformed call:
//! - `by-name` (default): `load-by-name(model)` (metadata `model`, default `digits-v1`)
//!   and `compute`;
//! - `local`: the same input through `hybrid:inference/local` `run`, to compare;
//! - `load`: wasmtime's way: the request body is the model file, passed to `load` with
//!   metadata `encoding` (default `onnx`) and `target` (default `cpu`); `split=true`
//!   passes it as two builders;
//! - `wrong-type`, `wrong-shape`, `fp16`, `bad-name`: `compute` with an I64 input, a
//!   `[1, 63]` input, an FP16 input, an input named `pixels`;
//! - `compute-loop`: `compute` `count` times on one context (run limits);
//! - `tensor-flood`: creates 4 MiB tensors and keeps them until the host stops it;
//! - `run`: the body's tensors (see [`probe::decode_inputs`]) into `model` through
//!   `wasi:nn` (`via=nn`, the default: `load-by-name`, a context, one `compute`) or
//!   `local.run` (`via=local`); for benchmarks.
//!
//! A successful run answers `{"outputs": [{"name", "type", "dims", "hex"}, ...]}` (the
//! output bytes in hex, so tests compare them bit for bit); a refused `wasi:nn` call
//! answers `{"call", "code", "data"}` with status 200, so tests read the code.
//!
//! # Layout
//!
//! - [`probe`]: modes, the fixed digit and the JSON answers (pure Rust).
//! - `component` (wasm32 only): the bindings (`wasi:nn` `ml`, `local`, the `pipeline`
//!   export) and the calls each mode makes.

#[cfg(target_arch = "wasm32")]
mod component;
pub mod probe;
