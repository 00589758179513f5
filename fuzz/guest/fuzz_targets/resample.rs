//! The voice-gate resampler on arbitrary samples between any two accepted rates.
//!
//! Samples are any `f32` bit patterns (NaN and infinities included): the resampler must
//! not panic and must return exactly `output_len` samples. For finite input in [-1, 1]
//! (what the WAV decoder produces), every output sample is finite and bounded by the
//! filter's L1 gain (the sum of a phase's absolute taps: at most 2.18 for these rates).

#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use voice_gate::resample::Resampler;
use voice_gate::wav::ACCEPTED_RATES;

#[derive(Debug, Arbitrary)]
struct Input {
    from: u8,
    to: u8,
    samples: Vec<f32>,
}

/// A resampler for every pair of accepted rates, built once.
fn resampler(from: usize, to: usize) -> &'static Resampler {
    static BANK: OnceLock<Vec<Resampler>> = OnceLock::new();
    let n = ACCEPTED_RATES.len();
    let bank = BANK.get_or_init(|| {
        (0..n * n)
            .map(|i| Resampler::new(ACCEPTED_RATES[i / n], ACCEPTED_RATES[i % n]))
            .collect()
    });
    &bank[from * n + to]
}

fuzz_target!(|input: Input| {
    let n = ACCEPTED_RATES.len();
    let r = resampler(usize::from(input.from) % n, usize::from(input.to) % n);
    let out = r.process(&input.samples);
    assert_eq!(out.len(), r.output_len(input.samples.len()));
    if input.samples.iter().all(|s| (-1.0..=1.0).contains(s)) {
        assert!(
            out.iter().all(|s| s.is_finite() && s.abs() < 2.25),
            "{out:?}"
        );
    }
});
