//! Cutting 16 kHz audio into the voice model's input rows.
//!
//! Silero VAD v5 reads 512 new samples (32 ms) per row, preceded by the last 64 samples of
//! the previous chunk as context (zeros before the first chunk), so a row is 576 samples.
//! The last partial chunk is zero-padded to 512. Rows are built one batch at a time so a
//! long recording never needs all of its rows in memory at once.

use std::ops::Range;

/// New samples per row: 32 ms at 16 kHz.
pub const CHUNK: usize = 512;
/// Samples of the previous chunk that precede each row's new samples.
pub const CONTEXT: usize = 64;
/// Samples per model input row.
pub const ROW: usize = CONTEXT + CHUNK;
/// Milliseconds each row advances.
pub const CHUNK_MS: u64 = 32;

/// Number of rows (chunks) that cover `samples` samples.
pub fn row_count(samples: usize) -> usize {
    samples.div_ceil(CHUNK)
}

/// The rows `rows` of `audio`, flattened row-major: `rows.len() * ROW` values.
pub fn rows(audio: &[f32], rows: Range<usize>) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows.len() * ROW);
    for row in rows {
        let row_end = out.len() + ROW;
        let start = row * CHUNK;
        // Context and new samples are contiguous in the audio: one slice, zeros around it
        // (before the first chunk and after the last sample).
        let from = start.saturating_sub(CONTEXT);
        let to = (start + CHUNK).min(audio.len());
        out.resize(out.len() + CONTEXT - (start - from), 0.0);
        if from < to {
            out.extend_from_slice(&audio[from..to]);
        }
        out.resize(row_end, 0.0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_partial_chunks() {
        assert_eq!(row_count(0), 0);
        assert_eq!(row_count(1), 1);
        assert_eq!(row_count(512), 1);
        assert_eq!(row_count(513), 2);
    }

    #[test]
    fn rows_carry_the_previous_chunks_tail_as_context() {
        let audio: Vec<f32> = (0..1200).map(|i| i as f32).collect();
        let all = rows(&audio, 0..row_count(audio.len()));
        assert_eq!(all.len(), 3 * ROW);
        let (r0, r1, r2) = (&all[..ROW], &all[ROW..2 * ROW], &all[2 * ROW..]);
        // First row: zero context, then samples 0..512.
        assert!(r0[..CONTEXT].iter().all(|&x| x == 0.0));
        assert_eq!(r0[CONTEXT], 0.0);
        assert_eq!(r0[ROW - 1], 511.0);
        // Second row: samples 448..512 as context, then 512..1024.
        assert_eq!(r1[0], 448.0);
        assert_eq!(r1[CONTEXT - 1], 511.0);
        assert_eq!(r1[CONTEXT], 512.0);
        assert_eq!(r1[ROW - 1], 1023.0);
        // Last row: context 960..1024, samples 1024..1200, zero padding after.
        assert_eq!(r2[0], 960.0);
        assert_eq!(r2[CONTEXT], 1024.0);
        assert_eq!(r2[CONTEXT + 175], 1199.0);
        assert!(r2[CONTEXT + 176..].iter().all(|&x| x == 0.0));
    }

    #[test]
    fn batches_match_one_pass() {
        let audio: Vec<f32> = (0..5000).map(|i| (i as f32).sin()).collect();
        let n = row_count(audio.len());
        let whole = rows(&audio, 0..n);
        let pieces = [rows(&audio, 0..3), rows(&audio, 3..7), rows(&audio, 7..n)].concat();
        assert_eq!(whole, pieces);
    }

    #[test]
    fn rows_past_the_end_are_silence() {
        let out = rows(&[0.5; 10], 1..2);
        assert_eq!(out.len(), ROW);
        assert!(out.iter().all(|&x| x == 0.0));
    }
}
