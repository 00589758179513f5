//! `[runtime.nn]`: what guests may do through standard `wasi:nn` beyond running the
//! registry's models by name.
//!
//! `load-by-name` always serves the `[[model]]`s of the config; these settings only widen
//! `load` (model bytes from the guest, off by default) and how `gpu`/`tpu` execution
//! targets are treated (this host runs every model on the CPU with tract).

use serde::Deserialize;

/// The largest `load_bytes_max` accepted: a wasm32 guest cannot hold more than 4 GiB.
const MAX_LOAD_BYTES: u64 = 4 << 30;

/// `wasi:nn` settings.
///
/// ```toml
/// [runtime.nn]
/// load_bytes_max = 0      # bytes of ONNX a guest may pass to `load`; 0 (the default) refuses `load`
/// cpu_fallback = false    # run `gpu`/`tpu` loads on the CPU instead of refusing them
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NnConfig {
    /// The most bytes of ONNX model a guest may pass to `wasi:nn` `load` (all builders
    /// together); larger models get `too-large`. 0 turns `load` off (`security`):
    /// guests then use the registry's models through `load-by-name`. Model bytes are
    /// parsed and optimised on the host's CPU (on a CPU slot) for every request that
    /// loads them, and the request's deadline can stop the guest only once tract is done:
    /// this limit is also what bounds that time.
    pub load_bytes_max: u64,
    /// Whether a `load` asking for execution target `gpu` or `tpu` runs on the CPU
    /// instead of failing with `unsupported-operation`.
    pub cpu_fallback: bool,
}

impl NnConfig {
    /// Whether guests may load model bytes at all.
    pub fn loads_bytes(&self) -> bool {
        self.load_bytes_max > 0
    }

    /// Checks the values make sense.
    pub fn validate(&self) -> Result<(), String> {
        if self.load_bytes_max > MAX_LOAD_BYTES {
            return Err(format!(
                "runtime.nn.load_bytes_max must be at most {MAX_LOAD_BYTES} (4 GiB, all a \
                 wasm32 guest can hold), got {}",
                self.load_bytes_max
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default_and_bounded() {
        let config = NnConfig::default();
        assert!(!config.loads_bytes());
        assert!(!config.cpu_fallback);
        assert_eq!(config.validate(), Ok(()));
        let huge = NnConfig {
            load_bytes_max: MAX_LOAD_BYTES + 1,
            cpu_fallback: false,
        };
        assert!(huge.validate().is_err());
    }
}
