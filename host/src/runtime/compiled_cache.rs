//! Compiled components, kept so a version is compiled once: in memory for the versions
//! deployed recently, and on disk (`.cwasm`) so a restarted host does not compile again.
//!
//! Looking up bytes takes these steps: name them by their sha256 (for a component
//! pre-initialised by its `init` export, by the sha256 of that and of the models and
//! assets its `initialize` could read, see [`super::preinit`]); return the compiled
//! version from memory if this process has it; else load the `.cwasm` from the disk
//! cache if one exists and its own checksum matches (so a torn or tampered file is
//! never mapped as code); else compile with Cranelift (for a pre-initialised component:
//! run its `initialize` and compile the snapshot) and write the `.cwasm` beside the
//! others (temporary file, then rename: a crash never leaves half a file under the
//! final name). The disk cache sits in a folder named after the engine's compatibility
//! hash, so a host built with another wasmtime or other engine settings never loads
//! an artefact it did not make.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use crate::local::sha256_bytes;
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

use super::component::{self, ComponentError};
use super::state::RequestState;
use super::version::{CompileOrigin, Compiled};

/// Compiled versions kept in memory (each holds its machine code).
const IN_MEMORY: usize = 16;

/// How to pre-initialise a component that exports `hybrid:inference/init`.
pub struct Preinit<'a> {
    /// What its `initialize` may read besides its bytes, as a digest
    /// ([`super::preinit::inputs`]): part of the cache key. Called only for a component
    /// that exports `init` (it hashes every model asset).
    pub inputs: &'a dyn Fn() -> String,
    /// Runs `initialize` and snapshots.
    pub run: &'a InitRun<'a>,
}

/// Runs a component's `initialize` (the export named by the second argument) on its bytes
/// and returns the snapshotted component.
pub type InitRun<'a> = dyn Fn(&[u8], &str) -> Result<Vec<u8>, ComponentError> + 'a;

/// The compiled-component cache of one runtime.
#[derive(Default)]
pub struct CompiledCache {
    memory: Mutex<VecDeque<Arc<Compiled>>>,
    disk: OnceLock<PathBuf>,
}

impl CompiledCache {
    /// Turns on the disk cache under `dir` (once), in a subfolder for this engine.
    pub fn use_disk(&self, engine: &Engine, dir: &Path) -> std::io::Result<()> {
        let mut hasher = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let dir = dir.join(format!("{:016x}", hasher.finish()));
        std::fs::create_dir_all(&dir)?;
        let _ = self.disk.set(dir);
        Ok(())
    }

    /// The compiled, type-checked component for `bytes`. With `preinit`, a component
    /// that exports `hybrid:inference/init` is pre-initialised first (see
    /// [`super::preinit`]), and the snapshot is what is compiled and cached, under a key
    /// that also covers `preinit.inputs`.
    pub fn get(
        &self,
        engine: &Engine,
        linker: &Linker<RequestState>,
        bytes: &[u8],
        preinit: Option<&Preinit<'_>>,
    ) -> Result<Arc<Compiled>, ComponentError> {
        component::classify(bytes)?;
        let digest = sha256_bytes(bytes);
        let init = preinit.and_then(|p| Some((p, super::preinit::init_export(bytes)?)));
        let key = match &init {
            Some((p, _)) => sha256_bytes(format!("{digest} init {}", (p.inputs)()).as_bytes()),
            None => digest.clone(),
        };
        if let Some(hit) = self.in_memory(&key) {
            return Ok(hit);
        }
        let started = Instant::now();
        let (component, origin) = match self.load_from_disk(engine, &key) {
            Some(component) => (component, CompileOrigin::DiskCache(started.elapsed())),
            None => {
                let component = match &init {
                    Some((p, export)) => component::compile(engine, &(p.run)(bytes, export)?)?,
                    None => component::compile(engine, bytes)?,
                };
                self.save_to_disk(&key, &component);
                (component, CompileOrigin::Compiled(started.elapsed()))
            }
        };
        let mut prepared = component::check(engine, linker, &component)?;
        if let Some((_, export)) = &init {
            // The snapshot no longer exports `init`; the version still is the one that did.
            prepared.summary.init = Some(export.clone());
        }
        let compiled = Arc::new(Compiled {
            digest,
            key,
            preinitialised: init.is_some(),
            size: bytes.len(),
            summary: prepared.summary,
            origin,
            pre: prepared.pre,
        });
        let mut memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        if memory.len() == IN_MEMORY {
            memory.pop_front();
        }
        memory.push_back(compiled.clone());
        Ok(compiled)
    }

    fn in_memory(&self, key: &str) -> Option<Arc<Compiled>> {
        let memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        let hit = memory.iter().find(|c| c.key == key)?;
        Some(Arc::new(Compiled {
            digest: hit.digest.clone(),
            key: hit.key.clone(),
            preinitialised: hit.preinitialised,
            size: hit.size,
            summary: hit.summary.clone(),
            origin: CompileOrigin::Memory,
            pre: hit.pre.clone(),
        }))
    }

    fn paths(&self, digest: &str) -> Option<(PathBuf, PathBuf)> {
        let dir = self.disk.get()?;
        Some((
            dir.join(format!("{digest}.cwasm")),
            dir.join(format!("{digest}.cwasm.sha256")),
        ))
    }

    fn load_from_disk(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let (cwasm, sum) = self.paths(digest)?;
        let bytes = std::fs::read(&cwasm).ok()?;
        let expected = std::fs::read_to_string(&sum).ok()?;
        if sha256_bytes(&bytes) != expected.trim() {
            tracing::warn!(path = %cwasm.display(), "compiled cache entry does not match its checksum; compiling again");
            return None;
        }
        match deserialize(engine, &bytes) {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(path = %cwasm.display(), error = %format!("{e:#}"), "compiled cache entry unusable; compiling again");
                None
            }
        }
    }

    fn save_to_disk(&self, digest: &str, component: &Component) {
        let Some((cwasm, sum)) = self.paths(digest) else {
            return;
        };
        let written = component.serialize().and_then(|bytes| {
            let checksum = sha256_bytes(&bytes);
            crate::atomic_file::write(&cwasm, &bytes)?;
            crate::atomic_file::write(&sum, checksum.as_bytes())?;
            Ok(())
        });
        if let Err(e) = written {
            tracing::warn!(path = %cwasm.display(), error = %format!("{e:#}"), "cannot write the compiled cache");
        }
    }
}

/// Maps a `.cwasm` this host wrote as executable code.
#[allow(
    unsafe_code,
    reason = "wasmtime's only way to load precompiled code; see the SAFETY note"
)]
fn deserialize(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `bytes` is `Component::serialize` output that this host wrote into its own
    // state directory, verified against the checksum written beside it; wasmtime checks
    // the header and the engine's compatibility before mapping it.
    unsafe { Component::deserialize(engine, bytes) }
}
