//! The voice-gate WAV decoder on arbitrary bodies, then the resampler on what it decodes.
//!
//! Any body must give samples or a typed error, never a panic. Decoded audio must be what
//! the gate accepts (a rate from `ACCEPTED_RATES`, at least one sample), and resampling it
//! to the model's 16 kHz must give exactly `output_len` finite samples.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use voice_gate::resample::Resampler;
use voice_gate::wav::{self, ACCEPTED_RATES};

/// The voice model's rate, as in `gate`.
const MODEL_RATE: u32 = 16_000;

/// One resampler per accepted rate, built once (building one takes longer than a run).
fn resampler(from: u32) -> &'static Resampler {
    static BANK: OnceLock<Vec<Resampler>> = OnceLock::new();
    let bank = BANK.get_or_init(|| {
        ACCEPTED_RATES
            .iter()
            .map(|&r| Resampler::new(r, MODEL_RATE))
            .collect()
    });
    let i = ACCEPTED_RATES
        .iter()
        .position(|&r| r == from)
        .expect("decoded rate is accepted");
    &bank[i]
}

fuzz_target!(|body: &[u8]| {
    let Ok(pcm) = wav::parse(body) else { return };
    assert!(
        ACCEPTED_RATES.contains(&pcm.sample_rate),
        "{}",
        pcm.sample_rate
    );
    assert!(!pcm.samples.is_empty());
    // Bodies are capped by the host long before this matters; keep runs fast.
    if pcm.samples.len() > 1 << 16 {
        return;
    }
    let samples: Vec<f32> = pcm
        .samples
        .iter()
        .map(|&s| f32::from(s) / 32768.0)
        .collect();
    let r = resampler(pcm.sample_rate);
    let out = r.process(&samples);
    assert_eq!(out.len(), r.output_len(samples.len()));
    assert!(out.iter().all(|s| s.is_finite()));
});
