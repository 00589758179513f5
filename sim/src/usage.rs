//! Token accounting. The simulator has no tokenizer, so it uses one documented rule that
//! clients can predict: a text costs `max(1, ceil(chars / 4))` prompt tokens (chars counted
//! as Unicode scalar values), and each generated word costs one completion token. Handlers
//! attach the [`Usage`] they report to the response so the quota can charge it.

use serde::Serialize;

/// Tokens one answer used; attached to responses as an extension for quota charging.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Tokens in the request.
    pub prompt_tokens: u64,
    /// Tokens generated.
    pub completion_tokens: u64,
    /// Their sum.
    pub total_tokens: u64,
}

impl Usage {
    /// Usage from prompt and completion counts.
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
        }
    }
}

/// Prompt tokens of one text: `max(1, ceil(chars / 4))`.
pub fn count_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_chars_per_token_at_least_one() {
        assert_eq!(count_tokens(""), 1);
        assert_eq!(count_tokens("abcd"), 1);
        assert_eq!(count_tokens("abcde"), 2);
        assert_eq!(count_tokens("héllo wörld!"), 3);
    }
}
