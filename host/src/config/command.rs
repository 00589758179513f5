//! What a pipeline's WASI context is given beyond the empty default, and what a
//! `wasi:cli` command served as a pipeline answers with: `args`, `env`, `preopens` and
//! `content_type` on a `[[pipeline]]`.
//!
//! All four are the operator's: nothing comes from the host's own environment, arguments
//! or file system unless named here. A preopened directory is read-only; its host path
//! is resolved against the config's directory, and the runtime checks it exists when the
//! pipeline is loaded (a config names paths, the loaders open them). Checked here: the
//! names a guest sees, which WASI cannot carry if they hold NUL bytes or, for variables,
//! `=`.

use std::path::{Component, Path};

use super::PipelineConfig;

/// Refuses arguments, variables, directory names and content types a guest could not be
/// given, naming the first.
pub fn validate(p: &PipelineConfig) -> Result<(), String> {
    if let Some(arg) = p.args.iter().find(|a| a.contains('\0')) {
        return Err(format!("args: {arg:?} contains a NUL byte"));
    }
    for (key, value) in &p.env {
        if key.is_empty() || key.contains(['=', '\0']) || value.contains('\0') {
            return Err(format!(
                "env: {key:?} must be a non-empty name without '=' or NUL, its value without NUL"
            ));
        }
    }
    for guest in p.preopens.keys() {
        let path = Path::new(guest);
        let plain = !guest.is_empty()
            && !guest.contains('\0')
            && path
                .components()
                .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        if !plain {
            return Err(format!(
                "preopens: {guest:?} must be a relative directory name without '..' (the \
                 name the guest opens it under, e.g. \"fixture\")"
            ));
        }
    }
    if let Some(ty) = &p.content_type
        && (ty.is_empty() || !ty.bytes().all(|b| (0x20..0x7f).contains(&b)))
    {
        return Err(format!(
            "content_type {ty:?} must be non-empty printable ASCII"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use std::path::Path;

    fn parse(extra: &str) -> Result<Config, String> {
        let text = format!("[[pipeline]]\nname = \"c\"\ncomponent = \"c.wasm\"\n{extra}\n");
        Config::parse(&text, Path::new("/etc/hybrid")).map_err(|e| e.to_string())
    }

    #[test]
    fn resolves_preopens_against_the_config_directory() {
        let config = parse(
            "args = [\"--top\", \"3\"]\nenv = { MODE = \"fast\" }\n\
             preopens = { \"fixture\" = \"models\" }\ncontent_type = \"application/json\"",
        )
        .expect("valid");
        let p = &config.pipelines[0];
        assert_eq!(p.args, ["--top", "3"]);
        assert_eq!(p.env["MODE"], "fast");
        assert_eq!(p.preopens["fixture"], Path::new("/etc/hybrid/models"));
        assert_eq!(p.content_type.as_deref(), Some("application/json"));
        let plain = parse("").expect("valid");
        assert!(plain.pipelines[0].preopens.is_empty() && plain.pipelines[0].env.is_empty());
    }

    #[test]
    fn refuses_names_a_guest_cannot_be_given() {
        for (extra, says) in [
            ("env = { \"A=B\" = \"x\" }", "env: \"A=B\""),
            ("preopens = { \"../up\" = \"x\" }", "preopens: \"../up\""),
            ("preopens = { \"/abs\" = \"x\" }", "preopens: \"/abs\""),
            ("content_type = \"\"", "content_type \"\""),
        ] {
            let err = parse(extra).expect_err(extra);
            assert!(err.contains(says), "{extra}: {err}");
        }
    }
}
