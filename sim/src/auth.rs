//! The bearer key the simulator accepts. It is a secret even here: the host's tests check that
//! their own logs never leak it, so the simulator must not leak it either. The key has no
//! `Display`, its `Debug` is redacted, and the comparison does not short-circuit.

use std::fmt;

/// The model access key clients must send as `Authorization: Bearer <key>`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key; `None` if it is empty or whitespace, which would accept `Bearer `.
    pub fn new(key: impl Into<String>) -> Option<Self> {
        let key = key.into();
        if key.trim().is_empty() {
            None
        } else {
            Some(Self(key))
        }
    }

    /// The key itself, for building a client's header; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether an `Authorization` header value carries this key.
    pub fn accepts(&self, authorization: Option<&[u8]>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        // The scheme is case-insensitive (RFC 9110); the token is compared byte for byte.
        let Some(scheme) = value.get(..7) else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case(b"bearer ") {
            return false;
        }
        constant_time_eq(&value[7..], self.0.as_bytes())
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Compares without an early exit so response timing does not reveal the matching prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_the_exact_bearer_key() {
        let key = ApiKey::new("s3cret").expect("non-empty");
        assert!(key.accepts(Some(b"Bearer s3cret")));
        assert!(key.accepts(Some(b"bearer s3cret")));
        assert!(!key.accepts(Some(b"Bearer s3cre")));
        assert!(!key.accepts(Some(b"Bearer s3cret ")));
        assert!(!key.accepts(Some(b"Basic s3cret")));
        assert!(!key.accepts(Some(b"s3cret")));
        assert!(!key.accepts(None));
    }

    #[test]
    fn debug_is_redacted_and_empty_keys_are_refused() {
        let key = ApiKey::new("s3cret").expect("non-empty");
        assert!(!format!("{key:?}").contains("s3cret"));
        assert!(ApiKey::new("  ").is_none());
    }
}
