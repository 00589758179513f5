//! Host bindings for the `hybrid:inference/pipeline` world, generated from the WIT: one
//! `bindgen!` per contract version the host serves, each in its own module.
//!
//! - [`v0_2`] (`wit/`, `hybrid:inference@0.2.2`) is the current contract: every host
//!   interface is implemented against its types (`*_host.rs`), and the rest of the host
//!   uses them (re-exported here at the top level). It also serves 0.2.0 and 0.2.1
//!   components (`wit/released/0.2.0`, `0.2.1`): wasmtime's linker matches an import of
//!   `…@0.2.0` or `…@0.2.1` to the `…@0.2.2` instance by semver, and each minor version
//!   only adds, so every earlier import type-checks against it. The `init` export (0.2.2)
//!   is not part of world `pipeline`: the host calls it by name at deploy
//!   ([`super::preinit`]) and the snapshot it serves no longer exports it.
//! - [`v0_1`] (`wit/released/0.1.1`, which also serves 0.1.0 components through wasmtime's
//!   semver matching) is implemented in [`super::v0_1`] by converting to and from the 0.2
//!   types and calling the 0.2 implementations, so there is one implementation of each
//!   host function.
//!
//! Generated types are never re-declared by hand.

// Generated code carries no doc comments of its own; the WIT files document every item.
#![allow(missing_docs)]

/// `hybrid:inference@0.2.2` (and 0.2.0, 0.2.1), the current contract.
pub mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "pipeline",
        with: {
            // An open serverless chat stream, kept in the request's remote context.
            "hybrid:inference/remote.chat-stream": crate::remote::ChatStream,
        },
    });

    pub use self::hybrid::inference::{
        clock, local, log, messages, remote, reply, signals, tensors,
    };
}

/// `hybrid:inference@0.1.1` (and 0.1.0), frozen in `wit/released/0.1.1`.
pub mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../wit/released/0.1.1",
        world: "pipeline",
    });

    pub use self::hybrid::inference::{clock, local, log, messages, remote, signals, tensors};
}

pub use v0_2::{clock, local, log, messages, remote, reply, signals, tensors};
