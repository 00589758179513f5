//! API keys: read once from the environment, sent only in the `Authorization` header, and
//! scrubbed from anything the provider echoes back before it reaches a guest or a log.

use std::fmt;

/// A provider credential. Its `Debug` and `Display` never show the value.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key; empty keys are refused.
    pub fn new(value: String) -> Option<Self> {
        let trimmed = value.trim();
        (!trimmed.is_empty()).then(|| Self(trimmed.to_owned()))
    }

    /// The `Authorization` header value.
    pub(super) fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }

    /// Removes this key, and anything that looks like a bearer token, from `text`.
    pub fn scrub(&self, text: &str) -> String {
        scrub_bearer(&text.replace(&self.0, "[redacted]"))
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Replaces the token after every `Bearer ` (any case) with `[redacted]`: providers
/// sometimes quote the header they received in an error message.
pub fn scrub_bearer(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    let mut search = 0;
    while let Some(found) = lower[search..].find("bearer ") {
        let token_start = search + found + "bearer ".len();
        let token_end = text[token_start..]
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == ',')
            .map_or(text.len(), |n| token_start + n);
        out.push_str(&text[rest..token_start]);
        out.push_str("[redacted]");
        rest = token_end;
        search = token_end.max(token_start);
    }
    out.push_str(&text[rest..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_key() {
        let key = ApiKey::new("sk-secret-123".into()).expect("key");
        assert_eq!(format!("{key:?} {key}"), "ApiKey([redacted]) [redacted]");
        assert!(ApiKey::new("  ".into()).is_none());
    }

    #[test]
    fn scrubs_the_key_and_bearer_tokens() {
        let key = ApiKey::new("sk-secret-123".into()).expect("key");
        let text =
            "bad key sk-secret-123; got header 'Authorization: Bearer abc.def' and BEARER xyz";
        let scrubbed = key.scrub(text);
        assert!(
            !scrubbed.contains("sk-secret-123")
                && !scrubbed.contains("abc.def")
                && !scrubbed.contains("xyz")
        );
        assert_eq!(
            scrubbed,
            "bad key [redacted]; got header 'Authorization: Bearer [redacted]' and BEARER [redacted]"
        );
    }
}
