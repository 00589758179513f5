//! What a call cost: usage as the provider reported it, priced with the endpoint's
//! configured prices, in micro-dollars so sums stay exact.

use crate::config::Prices;

/// Tokens and audio the provider billed for.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// Prompt tokens.
    pub input_tokens: u32,
    /// Completion tokens.
    pub output_tokens: u32,
    /// Seconds of audio sent.
    pub audio_seconds: f32,
}

/// Cost of one call in micro-dollars, rounded to the nearest micro-dollar.
pub fn cost_micro_usd(prices: &Prices, usage: &Usage) -> u64 {
    let usd = prices.per_request
        + prices.input_per_mtok * f64::from(usage.input_tokens) / 1e6
        + prices.output_per_mtok * f64::from(usage.output_tokens) / 1e6
        + prices.per_audio_second * f64::from(usage.audio_seconds);
    (usd * 1e6).round().max(0.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_tokens_audio_and_requests() {
        let prices = Prices {
            input_per_mtok: 0.65,
            output_per_mtok: 2.5,
            per_audio_second: 0.0001,
            per_request: 0.001,
        };
        let usage = Usage {
            input_tokens: 1000,
            output_tokens: 200,
            audio_seconds: 10.0,
        };
        // 0.001 + 0.00065 + 0.0005 + 0.001 = 0.00315 USD
        assert_eq!(cost_micro_usd(&prices, &usage), 3150);
        assert_eq!(cost_micro_usd(&Prices::default(), &usage), 0);
    }
}
