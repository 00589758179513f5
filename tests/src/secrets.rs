//! The secrets the test suite runs with, made to look like real ones, and the check that
//! none of them (nor a long piece of one) appears in what the host shows the world.
//!
//! Every `hybrid serve` the shared helpers start holds [`ADMIN_TOKEN`]; the helpers check
//! each answer body they read and the whole log when the box stops, so every test that
//! uses them is also a leak test. `tests/e2e/secrets.rs` adds the paths most likely to
//! leak a serverless key (auth failures, upstream errors, trace-level logs).

/// The admin token of every test box: 32 random-looking bytes in hex, like a real one.
pub const ADMIN_TOKEN: &str =
    "hyb_adm_9f3c2e71a0d84b56c1e7f2a93d6b0c48e5f1a27d9b3c6e0f4a8d2b7c1e9f3a05";

/// A serverless key in DigitalOcean's format (`dop_v1_` and 64 hex digits).
pub const SERVERLESS_KEY: &str =
    "dop_v1_4be0c6f19a27d3e85c0b1f6a4d92e73c8b5a0f1e6d3c2b9a7e4f0d1c5b8a2e96";

/// A second, wrong serverless key, for the paths where the provider refuses a key.
pub const WRONG_SERVERLESS_KEY: &str =
    "dop_v1_7e21a9c04f6b3d58e0a2c7f1b94d6e3a5c8f0b2d1e7a4c9b6f3e0d8a2c5b1f47";

/// Every secret above.
pub const ALL: [&str; 3] = [ADMIN_TOKEN, SERVERLESS_KEY, WRONG_SERVERLESS_KEY];

/// The shortest piece of a secret that counts as a leak: a prefix kept for "key
/// starts with ..." messages would still narrow a brute-force search.
const LEAK_CHARS: usize = 16;

/// Where a secret (or any 16-character piece of one past its public prefix) occurs in
/// `text`, or `None` when it is clean.
pub fn find_leak(text: &str) -> Option<(&'static str, usize)> {
    for secret in ALL {
        // The format prefixes (`dop_v1_`, `hyb_adm_`) are public; the rest is secret.
        let secret_part = secret.split_once("_v1_").map_or_else(
            || secret.rsplit_once('_').map_or(secret, |(_, s)| s),
            |(_, s)| s,
        );
        let bytes = secret_part.as_bytes();
        for start in 0..=bytes.len().saturating_sub(LEAK_CHARS) {
            let piece = &secret_part[start..start + LEAK_CHARS.min(bytes.len())];
            if let Some(at) = text.find(piece) {
                return Some((secret, at));
            }
        }
    }
    None
}

/// Panics (naming `what` and the place) if `text` holds a secret.
pub fn assert_clean(what: &str, text: &[u8]) {
    let text = String::from_utf8_lossy(text);
    if let Some((secret, at)) = find_leak(&text) {
        let from = text.floor_char_boundary(at.saturating_sub(80));
        let to = text.ceil_char_boundary((at + 120).min(text.len()));
        panic!(
            "a secret ({}...) leaked into {what}: ...{}...",
            &secret[..10],
            &text[from..to]
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_whole_secrets_and_pieces_but_not_prefixes() {
        assert!(find_leak("Bearer dop_v1_ and hyb_adm_ are public").is_none());
        assert!(find_leak(&format!("authorization: Bearer {SERVERLESS_KEY}")).is_some());
        assert!(find_leak(&format!("key {}", &ADMIN_TOKEN[20..40])).is_some());
        assert!(find_leak(&format!("key {}", &WRONG_SERVERLESS_KEY[30..46])).is_some());
        assert!(
            find_leak(&ADMIN_TOKEN[8..23]).is_none(),
            "15 characters are not a leak"
        );
    }
}
