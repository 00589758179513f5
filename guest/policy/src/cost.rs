//! What an escalation will cost, priced before it is made from the endpoint's prices
//! (`signals.prices`), so the cost ceiling can keep it from being made.
//!
//! Input tokens are estimated per message as `max(1, ceil(chars / 4))` (the usual rule
//! of thumb for English text; the provider's tokenizer decides the bill) and summed;
//! output tokens are the `max-tokens` the call asks for, the most it can be billed. The
//! cost is `input * input_usd_per_mtok / 1e6 + output * output_usd_per_mtok / 1e6 +
//! usd_per_request`.

use hybrid_guest::remote::Message;
use hybrid_guest::signals::EndpointPrice;

/// Characters per token in the estimate.
pub const CHARS_PER_TOKEN: usize = 4;

/// Estimated input tokens of `messages`.
pub fn input_tokens(messages: &[Message]) -> u64 {
    messages
        .iter()
        .map(|m| m.content.chars().count().div_ceil(CHARS_PER_TOKEN).max(1) as u64)
        .sum()
}

/// The most a call with `messages`, asking for `max_tokens`, costs at `price`, in US
/// dollars.
pub fn estimate_usd(messages: &[Message], max_tokens: u32, price: &EndpointPrice) -> f64 {
    input_tokens(messages) as f64 * price.input_usd_per_mtok / 1e6
        + f64::from(max_tokens) * price.output_usd_per_mtok / 1e6
        + price.usd_per_request
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(content: &str) -> Message {
        Message {
            role: "user".into(),
            content: content.into(),
        }
    }

    #[test]
    fn tokens_are_a_quarter_of_the_characters_rounded_up_at_least_one_each() {
        assert_eq!(input_tokens(&[message("")]), 1);
        assert_eq!(input_tokens(&[message("abcd")]), 1);
        assert_eq!(input_tokens(&[message("abcde")]), 2);
        // Characters, not bytes.
        assert_eq!(input_tokens(&[message("éééé")]), 1);
        assert_eq!(input_tokens(&[message("abcde"), message("")]), 3);
    }

    #[test]
    fn the_cost_adds_input_output_and_the_per_request_price() {
        let price = EndpointPrice {
            name: "strong".into(),
            kind: "chat".into(),
            input_usd_per_mtok: 1.0,
            output_usd_per_mtok: 5.0,
            usd_per_audio_second: 0.0,
            usd_per_request: 0.0001,
        };
        // 100 chars = 25 tokens in, 2 out.
        let usd = estimate_usd(&[message(&"x".repeat(100))], 2, &price);
        assert!((usd - (25e-6 + 10e-6 + 1e-4)).abs() < 1e-12, "{usd}");
    }
}
