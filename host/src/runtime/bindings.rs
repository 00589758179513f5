//! Host bindings for the `hybrid:inference/pipeline` world, generated from `wit/`.
//!
//! This is the one `bindgen!` of the host. Every other module uses these generated types
//! directly rather than re-declaring them.

// Generated code carries no doc comments of its own; the WIT files document every item.
#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "pipeline",
});

pub use self::hybrid::inference::{clock, local, log, messages, remote, signals, tensors};
