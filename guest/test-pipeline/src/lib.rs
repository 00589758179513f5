//! A deliberately misbehaving pipeline for host tests and benchmarks.
//!
//! Request metadata `mode` picks the behaviour: `echo` (the default, and the trivial
//! handler in sandbox-overhead benchmarks), `trap`, `loop`, `oom`, `log`, `models`, and the
//! local-model probes `bad-shape`, `bad-type`, `bad-bytes`, `unknown-model` and
//! `missing-input`, which make `local::run` fail on purpose and return its error as
//! `upstream("<case-name>: <message>")`.
//!
//! # Layout
//!
//! - [`mode`]: the modes and parsing `mode` from metadata.
//! - [`probe`]: the malformed model calls each probe mode makes.
//! - `component` (wasm32 only): the generated bindings and every mode's behaviour.

#[cfg(target_arch = "wasm32")]
mod component;
pub mod mode;
pub mod probe;
