//! The audio that leaves the box: the speech segments cut out of the 16 kHz model audio
//! and written back to back as one canonical 16 kHz 16-bit mono PCM WAV file (a 44-byte
//! header, then 2 bytes per sample).
//!
//! The same bytes are what `egress_bytes.speech_only` counts and what the transcription
//! endpoint receives. Samples come from the audio the model saw: for a 16 kHz upload they
//! are the original samples exactly (`s / 32768 * 32768`); for other rates they are the
//! resampled ones. Segment times are turned into sample indices at 16 samples per ms and
//! clamped to the audio, since a segment's end is rounded to the millisecond.

use crate::gate::MODEL_RATE;
use crate::segments::Segment;

/// Bytes of the canonical WAV header (RIFF, `fmt ` and `data` chunk headers).
pub const HEADER_BYTES: usize = 44;
/// Samples per millisecond at the model rate.
const SAMPLES_PER_MS: u64 = MODEL_RATE as u64 / 1000;

/// A WAV file holding only the speech.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpeechWav {
    /// The whole file, header included.
    pub bytes: Vec<u8>,
    /// Samples in it.
    pub samples: usize,
}

impl SpeechWav {
    /// Seconds of audio in the file.
    pub fn seconds(&self) -> f64 {
        self.samples as f64 / f64::from(MODEL_RATE)
    }
}

/// The speech of `audio` (16 kHz, in [-1, 1)) inside `segments`, or `None` when there are
/// no segments: nothing is worth sending then, not even a header.
pub fn encode(audio: &[f32], segments: &[Segment]) -> Option<SpeechWav> {
    if segments.is_empty() {
        return None;
    }
    let ranges: Vec<(usize, usize)> = segments
        .iter()
        .map(|s| {
            (
                sample_index(s.start_ms, audio.len()),
                sample_index(s.end_ms, audio.len()),
            )
        })
        .collect();
    let samples: usize = ranges.iter().map(|(a, b)| b.saturating_sub(*a)).sum();
    let mut bytes = Vec::with_capacity(HEADER_BYTES + samples * 2);
    write_header(&mut bytes, samples);
    for &(from, to) in &ranges {
        for &x in audio.get(from..to).unwrap_or_default() {
            bytes.extend_from_slice(&to_i16(x).to_le_bytes());
        }
    }
    Some(SpeechWav { bytes, samples })
}

/// The sample at `ms`, clamped to `len`.
fn sample_index(ms: u64, len: usize) -> usize {
    usize::try_from(ms.saturating_mul(SAMPLES_PER_MS)).map_or(len, |i| i.min(len))
}

/// A sample in [-1, 1) back to 16 bits, rounding (half to even) and saturating.
///
/// Half to even is wasm's own `f32.nearest`; `round` (half away from zero) is a libm call
/// there, which made encoding twice as slow. Samples that came from 16-bit PCM are whole
/// numbers here, so the two only differ on resampled audio, at exact halves.
fn to_i16(x: f32) -> i16 {
    (x * 32768.0).round_ties_even().clamp(-32768.0, 32767.0) as i16
}

/// The 44-byte header of a 16 kHz 16-bit mono PCM WAV holding `samples` samples.
fn write_header(out: &mut Vec<u8>, samples: usize) {
    // A body limit far below 4 GiB keeps this in range; saturate rather than wrap.
    let data_len = u32::try_from(samples * 2).unwrap_or(u32::MAX - 36);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&MODEL_RATE.to_le_bytes());
    out.extend_from_slice(&(MODEL_RATE * 2).to_le_bytes()); // bytes per second
    out.extend_from_slice(&2u16.to_le_bytes()); // bytes per frame
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wav;

    fn seg(start_ms: u64, end_ms: u64) -> Segment {
        Segment { start_ms, end_ms }
    }

    #[test]
    fn no_segments_means_no_file() {
        assert_eq!(encode(&[0.5; 1600], &[]), None);
    }

    #[test]
    fn concatenates_the_segments_and_parses_back_exactly() {
        let original: Vec<i16> = (0..16_000).map(|i| (i % 2000 - 1000) as i16).collect();
        let audio: Vec<f32> = original.iter().map(|&s| f32::from(s) / 32768.0).collect();
        let wav = encode(&audio, &[seg(10, 20), seg(100, 150)]).expect("speech");
        assert_eq!(wav.samples, 160 + 800);
        assert_eq!(wav.bytes.len(), HEADER_BYTES + 2 * 960);
        assert_eq!(wav.seconds(), 0.06);
        let parsed = wav::parse(&wav.bytes).expect("our own WAV parses");
        assert_eq!(parsed.sample_rate, 16_000);
        let expected: Vec<i16> = [&original[160..320], &original[1600..2400]].concat();
        assert_eq!(parsed.samples, expected);
    }

    #[test]
    fn ends_past_the_audio_are_clamped_and_samples_saturate() {
        // 1000 samples is 62.5 ms: a segment "ending" at 63 ms stops at the last sample.
        let wav = encode(&[1.5; 1000], &[seg(50, 63)]).expect("speech");
        assert_eq!(wav.samples, 200);
        let parsed = wav::parse(&wav.bytes).expect("parses");
        assert!(parsed.samples.iter().all(|&s| s == i16::MAX));
        assert_eq!(to_i16(-2.0), i16::MIN);
    }
}
