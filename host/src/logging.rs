//! The log filter of every `hybrid` command: the operator's `tracing` filter, with the
//! HTTP libraries capped at `info`.
//!
//! At `debug` and `trace`, ureq dumps every request it writes byte by byte, headers
//! included, and hyper and rustls log connection internals: an operator turning on
//! `HYBRID_LOG=trace` to chase a problem would find the serverless API key and the admin
//! token in the log. So those targets never go below `info`, whatever the filter says.
//! Found by `tests/e2e/secrets.rs`.

use tracing_subscriber::EnvFilter;

/// Targets whose `debug`/`trace` output can carry credentials.
const CAPPED: [&str; 5] = ["ureq", "ureq_proto", "hyper", "h2", "rustls"];

/// The filter for `spec` (tracing `EnvFilter` syntax; `warn` if it does not parse), with
/// the [`CAPPED`] targets at `info` at most.
pub fn filter(spec: &str) -> EnvFilter {
    let mut filter = EnvFilter::try_new(spec).unwrap_or_else(|_| EnvFilter::new("warn"));
    for target in CAPPED {
        // A directive for the same target replaces the operator's, so this caps it.
        if let Ok(directive) = format!("{target}=info").parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_libraries_never_log_below_info() {
        for spec in [
            "trace",
            "debug",
            "ureq_proto=trace,hybrid=debug",
            "not a filter[",
        ] {
            let text = filter(spec).to_string();
            for target in CAPPED {
                assert!(text.contains(&format!("{target}=info")), "{spec}: {text}");
                assert!(!text.contains(&format!("{target}=trace")), "{spec}: {text}");
            }
        }
        assert!(filter("hybrid=debug").to_string().contains("hybrid=debug"));
    }
}
