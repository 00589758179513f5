//! Turning a `.wasm` file into something ready to instantiate, with errors that say what
//! is wrong with the component rather than how the compiler noticed.
//!
//! Steps: check the binary is a component (not a core module), compile it, resolve its
//! imports against the host's linker (every import must be one the host provides: WASI,
//! `wasi:nn` and `hybrid:inference`), then type-check its exports against the `pipeline` world.
//! A component exporting `wasi:cli/run` (and no `handle`) is a `wasi:cli` command instead:
//! its exports are checked against `wasi:cli/command`, and it may import only granted WASI
//! and `wasi:nn`, nothing of `hybrid:inference` (a command reads the request on stdin; a
//! component that wants the host's interfaces exports `handle`).
//! `hybrid check` runs the same steps and reports what it found.

use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker};

use super::contract::{Contract, PipelinePre};
use super::state::RequestState;

/// The WIT world of the current contract; components of the world of `wit/released/0.1.1`
/// (and 0.1.0) are served too.
pub const WORLD: &str = "hybrid:inference/pipeline@0.2.2";

/// Why a component cannot serve as a pipeline.
#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    /// The bytes are not WebAssembly at all.
    #[error("not a WebAssembly binary (no `\\0asm` header)")]
    NotWasm,
    /// A core module was given where a component is needed.
    #[error(
        "this is a core WebAssembly module, not a component; build it for `wasm32-wasip2` \
         (or wrap it with `wasm-tools component new`) so it implements {WORLD}"
    )]
    CoreModule,
    /// The component is malformed or uses features the engine does not enable.
    #[error("invalid component: {0}")]
    Invalid(String),
    /// The component needs imports the host does not provide.
    #[error("the component imports something the host does not provide: {0}")]
    Imports(String),
    /// The component does not export what the world requires.
    #[error("the component does not implement {WORLD}: {0}")]
    Exports(String),
    /// The component exports `hybrid:inference/init` and pre-initialising it failed: its
    /// `initialize` returned an error, trapped or ran past a limit, or the component has
    /// a shape the snapshot cannot take.
    #[error("component {digest} could not be pre-initialised by its init export: {reason}")]
    Init {
        /// The first 12 hex digits of the component's sha256.
        digest: String,
        /// What went wrong.
        reason: String,
    },
}

/// What `hybrid check` reports about a valid component.
#[derive(Debug, Clone)]
pub struct ComponentSummary {
    /// Names of the component's imports.
    pub imports: Vec<String>,
    /// Names of the component's exports.
    pub exports: Vec<String>,
    /// The contract version it targets.
    pub contract: Contract,
    /// Its `hybrid:inference/init` export (WIT 0.2.2), if it has one: it is then
    /// pre-initialised at deploy (see [`super::preinit`]).
    pub init: Option<String>,
}

/// A compiled component whose imports and exports match the `pipeline` world.
pub struct Prepared {
    /// Ready-to-instantiate handle, type-checked once.
    pub pre: PipelinePre,
    /// Imports and exports, for reports.
    pub summary: ComponentSummary,
}

/// Compiles and type-checks `bytes` as a pipeline component.
pub fn prepare(
    engine: &Engine,
    linker: &Linker<RequestState>,
    bytes: &[u8],
) -> Result<Prepared, ComponentError> {
    check(engine, linker, &compile(engine, bytes)?)
}

/// Compiles `bytes` after checking they are a component at all.
pub fn compile(engine: &Engine, bytes: &[u8]) -> Result<Component, ComponentError> {
    classify(bytes)?;
    Component::new(engine, bytes).map_err(|e| ComponentError::Invalid(format!("{e:#}")))
}

/// Resolves a compiled component's imports against the linker and type-checks its
/// exports against the `pipeline` world.
pub fn check(
    engine: &Engine,
    linker: &Linker<RequestState>,
    component: &Component,
) -> Result<Prepared, ComponentError> {
    let ty = component.component_type();
    let mut summary = ComponentSummary {
        contract: Contract::V0_2,
        imports: ty
            .imports(engine)
            .map(|(name, _)| name.to_owned())
            .collect(),
        exports: ty
            .exports(engine)
            .map(|(name, _)| name.to_owned())
            .collect(),
        init: None,
    };
    summary.init = summary
        .exports
        .iter()
        .find(|name| super::preinit::is_init(name))
        .cloned();
    let command = Contract::is_command(summary.exports.iter().map(String::as_str));
    if !command
        && !ty.exports(engine).any(|(name, item)| {
            name == "handle" && matches!(item.ty, ComponentItem::ComponentFunc(_))
        })
    {
        return Err(ComponentError::Exports(format!(
            "it exports no function `handle`, nor `wasi:cli/run` as a command does (its \
             exports: [{}])",
            summary.exports.join(", ")
        )));
    }
    if let Some(denied) = summary
        .imports
        .iter()
        .find(|name| !super::wasi_grant::granted(name))
    {
        return Err(ComponentError::Imports(format!(
            "{denied}, which pipelines are not granted ({})",
            super::wasi_grant::WHY_NOT
        )));
    }
    if command
        && let Some(ours) = summary
            .imports
            .iter()
            .find(|name| name.starts_with("hybrid:inference/"))
    {
        return Err(ComponentError::Imports(format!(
            "{ours}: a wasi:cli command (it exports `wasi:cli/run`) may import only WASI \
             and wasi:nn; to use the host's interfaces, export `handle` of {WORLD}"
        )));
    }
    let instance_pre = linker
        .instantiate_pre(component)
        .map_err(|e| ComponentError::Imports(format!("{e:#}")))?;
    if command {
        let pre = PipelinePre::new(Contract::Command, instance_pre)
            .map_err(|e| ComponentError::Exports(format!("as a wasi:cli command: {e:#}")))?;
        summary.contract = Contract::Command;
        return Ok(Prepared { pre, summary });
    }
    let declared = Contract::of_imports(summary.imports.iter().map(String::as_str));
    let pre = match declared {
        Some(contract) => PipelinePre::new(contract, instance_pre),
        // No `hybrid:inference` import names a version: whichever world its export fits.
        None => PipelinePre::new(Contract::V0_2, instance_pre.clone())
            .or_else(|_| PipelinePre::new(Contract::V0_1, instance_pre)),
    }
    .map_err(|e| ComponentError::Exports(format!("{e:#}")))?;
    summary.contract = pre.contract();
    Ok(Prepared { pre, summary })
}

/// Distinguishes components from core modules and non-wasm bytes by their header.
pub fn classify(bytes: &[u8]) -> Result<(), ComponentError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(ComponentError::NotWasm);
    }
    // Core modules carry version 1 and layer 0; components carry layer 1.
    if bytes[6..8] == [0, 0] {
        return Err(ComponentError::CoreModule);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_header() {
        assert!(matches!(
            classify(b"hello world"),
            Err(ComponentError::NotWasm)
        ));
        assert!(matches!(
            classify(b"\0asm\x01\0\0\0"),
            Err(ComponentError::CoreModule)
        ));
        assert!(classify(b"\0asm\x0d\0\x01\0").is_ok());
    }
}
