//! Pre-initialised components: a component that exports `hybrid:inference/init` (WIT
//! 0.2.2) has its `initialize` run once, at deploy time, and every request is served from
//! a snapshot of the instance after it, so start-up work (a tokenizer's vocabulary parsed
//! into a map) is not paid per request.
//!
//! Pre-initialising takes these steps, all with the host's own engine and linker so the
//! init sees the host's real imports (`local.asset` works):
//! 1. find the init export in the component's top-level exports ([`init_export`]), without
//!    compiling anything;
//! 2. instrument the component with Wizer (`wasmtime-wizer`, without its `wasmtime`
//!    feature: we drive the instance), which adds an instance exporting accessors for
//!    every core instance's memories and globals;
//! 3. compile and instantiate the instrumented component in a sandbox built like a
//!    request's, under the pipeline's limits, with no serverless endpoints,
//!    deterministic randomness and an epoch wall clock (see `wit/init.wit`);
//! 4. call `initialize`; an error it returns, a trap or a limit fails the deploy;
//! 5. read every memory and global through the accessors and let Wizer write a new
//!    component whose data segments and global initialisers are that state, with the
//!    init export removed.
//!
//! The caller ([`super::compiled_cache`]) compiles the snapshot and caches it under a key
//! made of the component's sha256 and [`inputs`] (every model's and asset's sha256), so a
//! restart reuses it and a new component or model set initialises again.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use sha2::{Digest as _, Sha256};
use wasmtime::Store;
use wasmtime::component::{Component, ComponentExportIndex, Instance, Lift, Linker, WasmList};
use wasmtime_wizer::{ComponentInstanceState, Wizer};

use super::state::RequestState;
use crate::local::ModelRegistry;

/// The init interface's export name, up to its version (any 0.2.x from 0.2.2 on).
const INIT_INTERFACE: &str = "hybrid:inference/init@0.2.";

/// The function of the init interface the host calls.
const INITIALIZE: &str = "initialize";

/// Epoch ticks that never pass while the snapshot is read (years at any tick length).
const UNBOUNDED_TICKS: u64 = 1 << 40;

/// Why a component could not be pre-initialised.
#[derive(Debug)]
pub enum InitFailure {
    /// Wizer cannot snapshot this component's shape (or the snapshot is invalid).
    Unsupported(String),
    /// `initialize` returned an error: its message.
    Returned(String),
    /// `initialize` (or instantiation) trapped or ran past a limit.
    Trapped(wasmtime::Error),
}

/// The name of `bytes`' top-level `hybrid:inference/init` export, if it has one. Nested
/// components' and modules' exports are not the component's own and are skipped.
pub fn init_export(bytes: &[u8]) -> Option<String> {
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload.ok()? {
            wasmparser::Payload::ModuleSection { .. }
            | wasmparser::Payload::ComponentSection { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            wasmparser::Payload::ComponentExportSection(exports) if depth == 0 => {
                for export in exports {
                    let export = export.ok()?;
                    if export.kind == wasmparser::ComponentExternalKind::Instance
                        && is_init(export.name.name)
                    {
                        return Some(export.name.name.to_owned());
                    }
                }
            }
            _ => {}
        }
    }
    None
}

/// Whether an export name is the init interface of a 0.2 contract that has one (0.2.2 on).
pub fn is_init(name: &str) -> bool {
    name.strip_prefix(INIT_INTERFACE)
        .and_then(|patch| patch.parse::<u32>().ok())
        .is_some_and(|patch| patch >= 2)
}

/// What an `initialize` may have read beyond the component's bytes, as one sha256: every
/// local model's name, version and sha256 and every asset's name and sha256, sorted. A
/// model or asset that changes gives another value, so the cached snapshot is not reused.
pub fn inputs(models: &ModelRegistry) -> String {
    let mut lines: Vec<String> = Vec::new();
    for info in models.list() {
        lines.push(format!(
            "model {} {} {}",
            info.name, info.version, info.sha256
        ));
        for asset in &info.assets {
            let digest = models
                .asset(&info.name, asset)
                .map(|bytes| hex::encode(Sha256::digest(&bytes[..])))
                .unwrap_or_default();
            lines.push(format!("asset {} {asset} {digest}", info.name));
        }
    }
    lines.sort();
    hex::encode(Sha256::digest(lines.join("\n").as_bytes()))
}

/// Runs `bytes`' `initialize` (export `export`) in `store` and returns the snapshotted
/// component (steps 2 to 5 of the module docs). `store` is a fresh sandbox; it is left
/// as the init left it, so the caller can tell which limit a trap hit.
pub fn snapshot(
    linker: &Linker<RequestState>,
    bytes: &[u8],
    export: &str,
    store: &mut Store<RequestState>,
) -> Result<Vec<u8>, InitFailure> {
    let unsupported = |e: wasmtime::Error| InitFailure::Unsupported(format!("{e:#}"));
    let mut wizer = Wizer::new();
    // The rewritten component no longer exports `init`: it cannot run twice.
    wizer.init_func(export);
    let (cx, instrumented) = wizer.instrument_component(bytes).map_err(unsupported)?;
    let component = Component::new(store.engine(), &instrumented).map_err(unsupported)?;
    let instance = linker
        .instantiate(&mut *store, &component)
        .map_err(InitFailure::Trapped)?;
    let initialize = instance
        .get_export_index(&mut *store, None, export)
        .and_then(|iface| instance.get_export_index(&mut *store, Some(&iface), INITIALIZE))
        .ok_or_else(|| {
            InitFailure::Unsupported(format!("{export} exports no function `{INITIALIZE}`"))
        })?;
    let initialize = instance
        .get_typed_func::<(), (Result<(), String>,)>(&mut *store, initialize)
        .map_err(|e| InitFailure::Unsupported(format!("{export}.{INITIALIZE}: {e:#}")))?;
    let (result,) = initialize
        .call(&mut *store, ())
        .map_err(InitFailure::Trapped)?;
    result.map_err(InitFailure::Returned)?;
    // Reading the state back is not the guest's work: it gets no deadline (ticks added
    // to the current epoch, so not `u64::MAX`) or fuel of its own.
    store.set_epoch_deadline(UNBOUNDED_TICKS);
    if store.get_fuel().is_ok() {
        store.set_fuel(u64::MAX).map_err(InitFailure::Trapped)?;
    }
    let mut state = Accessors {
        store,
        instance,
        failed: None,
    };
    let snapshot = ready(wizer.snapshot_component(&cx, &mut state)).map_err(unsupported)?;
    if let Some(e) = state.failed {
        return Err(InitFailure::Unsupported(format!(
            "reading the initialised state: {e:#}"
        )));
    }
    Ok(snapshot)
}

/// The value of a future that never waits: Wizer's snapshot is `async` for runtimes that
/// need it, but [`Accessors`] answers every call at once.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
    }
}

/// The instrumented instance's state accessors, called synchronously. Wizer's trait
/// returns plain values, so a failed call answers zero and is remembered in `failed`;
/// the snapshot is then thrown away.
struct Accessors<'a> {
    store: &'a mut Store<RequestState>,
    instance: Instance,
    failed: Option<wasmtime::Error>,
}

impl Accessors<'_> {
    fn func(&mut self, instance: &str, func: &str) -> wasmtime::Result<ComponentExportIndex> {
        let iface = self
            .instance
            .get_export_index(&mut *self.store, None, instance)
            .ok_or_else(|| wasmtime::format_err!("no export {instance}"))?;
        self.instance
            .get_export_index(&mut *self.store, Some(&iface), func)
            .ok_or_else(|| wasmtime::format_err!("no export {instance}#{func}"))
    }

    fn call<R: Lift + Default + 'static>(&mut self, instance: &str, func: &str) -> R {
        let called = self.func(instance, func).and_then(|index| {
            let func = self
                .instance
                .get_typed_func::<(), (R,)>(&mut *self.store, index)?;
            Ok(func.call(&mut *self.store, ())?.0)
        });
        called.unwrap_or_else(|e| {
            self.failed.get_or_insert(e);
            R::default()
        })
    }
}

impl ComponentInstanceState for Accessors<'_> {
    async fn call_func_ret_list_u8(
        &mut self,
        instance: &str,
        func: &str,
        contents: impl FnOnce(&[u8]) + Send,
    ) {
        let called = self.func(instance, func).and_then(|index| {
            let func = self
                .instance
                .get_typed_func::<(), (WasmList<u8>,)>(&mut *self.store, index)?;
            Ok(func.call(&mut *self.store, ())?.0)
        });
        match called {
            Ok(list) => contents(list.as_le_slice(&*self.store)),
            Err(e) => {
                self.failed.get_or_insert(e);
                contents(&[]);
            }
        }
    }

    async fn call_func_ret_s32(&mut self, instance: &str, func: &str) -> i32 {
        self.call(instance, func)
    }

    async fn call_func_ret_s64(&mut self, instance: &str, func: &str) -> i64 {
        self.call(instance, func)
    }

    async fn call_func_ret_f32(&mut self, instance: &str, func: &str) -> u32 {
        self.call::<f32>(instance, func).to_bits()
    }

    async fn call_func_ret_f64(&mut self, instance: &str, func: &str) -> u64 {
        self.call::<f64>(instance, func).to_bits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_init_interface_is_named_from_0_2_2_on() {
        assert!(is_init("hybrid:inference/init@0.2.2"));
        assert!(is_init("hybrid:inference/init@0.2.10"));
        assert!(!is_init("hybrid:inference/init@0.2.1"));
        assert!(!is_init("hybrid:inference/init@0.3.0"));
        assert!(!is_init("hybrid:inference/init"));
        assert!(!is_init("hybrid:inference/local@0.2.2"));
    }

    /// A model that is never run: only its identity and assets matter here.
    struct Idle;

    impl crate::local::Backend for Idle {
        fn inputs(&self) -> &[crate::local::TensorSpec] {
            &[]
        }
        fn outputs(&self) -> &[crate::local::TensorSpec] {
            &[]
        }
        fn run(&self, _: Vec<crate::local::Tensor>) -> Result<Vec<crate::local::Tensor>, String> {
            Err("idle".into())
        }
    }

    fn registry(sha256: &str, vocab: &[u8]) -> ModelRegistry {
        let mut models = ModelRegistry::default();
        models.insert(
            crate::local::LocalModel::new("m", "1", sha256, Box::new(Idle))
                .with_asset("vocab", vocab.into()),
        );
        models
    }

    #[test]
    fn the_inputs_change_with_a_model_or_an_asset_and_only_then() {
        let base = inputs(&registry("aa", b"[PAD]\n"));
        assert_eq!(base, inputs(&registry("aa", b"[PAD]\n")));
        assert_ne!(base, inputs(&registry("bb", b"[PAD]\n")), "a swapped model");
        assert_ne!(base, inputs(&registry("aa", b"[PAD]\n\n")), "another asset");
        assert_ne!(base, inputs(&ModelRegistry::default()), "no model");
    }

    #[test]
    fn bytes_that_are_not_a_component_export_no_init() {
        assert_eq!(init_export(b"not wasm"), None);
        assert_eq!(init_export(b"\0asm\x0d\0\x01\0"), None);
    }
}
