//! `${VAR}` and `${VAR:-default}` in config text, expanded from the environment before
//! parsing: one config file serves a whole fleet, each box supplying its own addresses
//! (the default config points its endpoints at DigitalOcean unless told otherwise).
//! Secrets do not go through here: endpoints name the variable holding their key instead.

/// Expands every `${VAR}` and `${VAR:-default}` in `text` using `env`.
pub fn expand(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| {
            // Whole characters: a byte count could end inside one.
            let near: String = rest[start..].chars().take(30).collect();
            format!("unterminated ${{ in config near {near:?}")
        })?;
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("${{{inner}}} in config is not a variable name"));
        }
        match (env(name).filter(|v| !v.is_empty()), default) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => {
                return Err(format!("the config uses ${{{name}}} but {name} is not set"));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "URL").then(|| "http://sim/v1".to_string())
    }

    #[test]
    fn expands_set_variables_and_defaults() {
        assert_eq!(expand("a ${URL} b", &env), Ok("a http://sim/v1 b".into()));
        assert_eq!(
            expand("${NOPE:-https://do/v1}", &env),
            Ok("https://do/v1".into())
        );
        assert_eq!(expand("${URL:-x}", &env), Ok("http://sim/v1".into()));
        assert_eq!(expand("no vars", &env), Ok("no vars".into()));
    }

    #[test]
    fn unset_variables_and_bad_syntax_are_errors() {
        assert!(
            expand("${NOPE}", &env)
                .expect_err("unset")
                .contains("NOPE is not set")
        );
        assert!(
            expand("${URL", &env)
                .expect_err("open")
                .contains("unterminated")
        );
        assert!(
            expand("${a b}", &env)
                .expect_err("name")
                .contains("not a variable name")
        );
    }

    #[test]
    fn unterminated_variable_before_multibyte_text_is_an_error_not_a_panic() {
        // Found by fuzzing (fuzz/host, target `config`): the excerpt in the message was
        // cut 30 bytes in, inside a two-byte character.
        let text = concat!(
            "00=z${{s\u{0}0=;;\"0\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}",
            "0=;''=\"''#\u{7a6}\u{0}\u{0}\u{0}\t%,,,,=",
        );
        assert_eq!(text.find('\u{7a6}'), Some(33));
        let err = expand(text, &env).expect_err("unterminated");
        assert!(err.starts_with("unterminated ${ in config near"), "{err}");
        assert!(
            expand(&format!("${{x{}", "é".repeat(40)), &env)
                .expect_err("unterminated")
                .contains(&format!("\"${{x{}\"", "é".repeat(27)))
        );
    }
}
