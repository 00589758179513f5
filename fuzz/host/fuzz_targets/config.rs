//! Host config parsing: `Config::parse` on arbitrary text (`${VAR}` expansion, TOML,
//! path resolution, validation), then building the serverless endpoints of any config
//! that validates.
//!
//! Any text must give a config or a `ConfigError`, never a panic; a validated config must
//! build its endpoints or say why not.

#![no_main]

use std::path::Path;

use hybrid::config::Config;
use hybrid::remote::Remote;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let Ok(config) = Config::parse(text, Path::new("/etc/hybrid")) else {
        return;
    };
    for pipeline in &config.pipelines {
        assert!(!pipeline.deadline().is_zero(), "{}", pipeline.name);
        assert!(pipeline.memory_bytes() > 0, "{}", pipeline.name);
        assert!(config.pipeline(&pipeline.name).is_some());
    }
    // Keys come from a fake environment: every variable is set.
    let _ = Remote::with_env(&config.endpoints, &config.budget, &|_| {
        Some("fuzz-key".to_owned())
    });
});
