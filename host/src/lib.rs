//! `hybrid`: the hybrid inference edge host.
//!
//! An AI workload is split between the edge box and serverless inference in the cloud.
//! Operators deploy *pipelines*: sandboxed WebAssembly components (the `pipeline` world in
//! `wit/`) that preprocess a request, run small models on this box through the host, and
//! decide how the request is served. The host owns everything a guest must not touch:
//! model files, credentials, the network and the clock that stops runaway guests.
//!
//! # Layout
//! - [`config`]: the operator's TOML file: models, pipelines, runtime limits.
//! - [`local`]: ONNX models run on this box with tract, behind the [`local::Backend`]
//!   trait; the [`local::ModelRegistry`] loads, checksums and validates every call.
//! - [`runtime`]: the wasmtime side: one engine, a prepared instance per pipeline, a fresh
//!   store per request with a memory cap and a deadline, and the host side of each WIT
//!   interface the guest imports, for both contract versions it serves (0.1.x and 0.2).
//! - [`remote`]: serverless endpoints called for guests: the ureq client with retries,
//!   circuit breakers, size limits and spend budget, and streamed chats read chunk by
//!   chunk; credentials never leave it.
//! - [`server`]: `hybrid serve`, the HTTP front: pipelines, OpenAI-compatible routes,
//!   answers streamed as the guest emits them, Prometheus metrics, admission control and
//!   graceful shutdown.
//! - [`deploy`]: deploying components and models to a running box, durably: the state
//!   directory, restore at start, watch mode.
//! - [`envelope`]: the JSON shape of a served request, shared by `run` and `serve`.
//! - [`shadow`]: shadow evaluation: a share of local answers asked of serverless too,
//!   after the client has its answer; agreement counted per local model version.
//! - [`plan`]: `hybrid plan`, replaying a labelled workload through routing strategies
//!   to measure accuracy, cost, latency and egress, and recommend one.
//! - [`logging`]: the log filter, with the HTTP libraries (which would log credentials
//!   at `trace`) capped at `info`.
//! - [`cli`]: the `hybrid` subcommands (`run`, `serve`, `models`, `check`); `main.rs` only
//!   parses arguments and prints errors.

#[cfg(target_endian = "big")]
compile_error!(
    "tensors cross the sandbox as little-endian bytes; big-endian hosts are not supported"
);

mod atomic_file;
pub mod cli;
pub mod config;
pub mod deploy;
pub mod envelope;
pub mod local;
pub mod logging;
pub mod plan;
pub mod remote;
pub mod runtime;
pub mod server;
pub mod shadow;
