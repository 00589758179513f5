//! The one wasmtime [`Engine`] of the process and the clock that enforces deadlines.
//!
//! Instances come from a pooling allocator: memory slots are reserved once and reused, so
//! creating a store and instance per request costs microseconds, not an `mmap`. Deadlines
//! use epoch interruption: a background thread bumps the engine's epoch every tick, and a
//! store whose deadline (counted in ticks) passes traps at the next loop back-edge or call.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::config::RuntimeConfig;

/// Builds the engine: component model on, epoch interruption on, fuel metering if
/// `config.fuel`, pooled instances sized by `config`.
pub fn build(config: &RuntimeConfig) -> wasmtime::Result<Engine> {
    let instances = config.max_instances;
    let mut pool = PoolingAllocationConfig::default();
    // A Rust component for wasm32-wasip2 is a handful of core instances (the program,
    // WASI adapter shims) sharing one memory; leave headroom for other toolchains.
    pool.total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(8))
        .total_memories(instances.saturating_mul(2))
        .total_tables(instances.saturating_mul(8))
        .total_stacks(instances)
        .max_memory_size(usize::try_from(config.max_memory_mib << 20).unwrap_or(usize::MAX))
        // Returning a slot with `madvise` and faulting its pages back in dominated the
        // cost of a fresh instance (profiled: ~70% in the kernel). Keeping the first MiB
        // of memory and 64 KiB of tables resident, and resetting only the pages a guest
        // dirtied (pagemap scan, Linux 6.7+, else the old path), cut it about threefold.
        .linear_memory_keep_resident(1 << 20)
        .table_keep_resident(64 << 10)
        .pagemap_scan(wasmtime::Enabled::Auto);

    let mut wasm = Config::new();
    wasm.wasm_component_model(true)
        .epoch_interruption(true)
        // Metering costs every component a little, so only when a pipeline asks for it.
        .consume_fuel(config.fuel)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&wasm)
}

/// Advances an engine's epoch every tick until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts the ticker thread for `engine`.
    pub fn start(engine: Engine, tick: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("hybrid-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                }
            })
            .ok();
        Self { stop, thread }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
