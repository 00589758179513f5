//! Turning per-chunk speech probabilities into speech segments, the way silero's
//! `get_speech_timestamps` does (without its maximum-speech-duration split).
//!
//! Speech starts at the first chunk whose probability reaches `threshold`. It ends once the
//! probability has stayed below `threshold - 0.15` (at least 0.01) for `min_silence_ms`;
//! the end is where that silence began. A chunk back at `threshold` or above cancels a
//! pending end. Segments no longer than `min_speech_ms` are dropped, and each kept segment
//! is widened by `speech_pad_ms` on both sides, clamped to the audio; when two segments are
//! closer than twice the padding, the gap is split between them instead so they never
//! overlap. All times are milliseconds from the start of the audio, chunk `i` starting at
//! `i * 32` ms.

use crate::frames::CHUNK_MS;
use crate::params::Params;

/// How far below `threshold` the probability must fall to count as silence.
const HYSTERESIS: f32 = 0.15;
/// Lowest silence threshold, as in silero.
const MIN_NEG_THRESHOLD: f32 = 0.01;

/// One stretch of speech, in milliseconds from the start of the audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Segment {
    /// Start of the speech, padding included.
    pub start_ms: u64,
    /// End of the speech, padding included; never past the audio's duration.
    pub end_ms: u64,
}

impl Segment {
    /// Length of the segment in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        self.end_ms.saturating_sub(self.start_ms)
    }
}

/// Padded speech segments for `probs` (one per 32 ms chunk) of audio lasting
/// `duration_ms`: [`detect`] then [`pad`].
pub fn speech_segments(probs: &[f32], duration_ms: u64, params: &Params) -> Vec<Segment> {
    let mut speeches = detect(probs, duration_ms, params);
    pad(&mut speeches, duration_ms, u64::from(params.speech_pad_ms));
    speeches
}

/// Unpadded speech segments for `probs` (one per 32 ms chunk) of audio lasting
/// `duration_ms`.
pub fn detect(probs: &[f32], duration_ms: u64, params: &Params) -> Vec<Segment> {
    let threshold = params.threshold;
    let neg_threshold = (threshold - HYSTERESIS).max(MIN_NEG_THRESHOLD);
    let min_speech = u64::from(params.min_speech_ms);
    let min_silence = u64::from(params.min_silence_ms);
    let mut speeches: Vec<Segment> = Vec::new();
    let mut start: Option<u64> = None;
    // Where the current run of silence began, if one is pending.
    let mut silence_from: Option<u64> = None;
    for (i, &p) in probs.iter().enumerate() {
        let now = i as u64 * CHUNK_MS;
        if p >= threshold {
            silence_from = None;
            if start.is_none() {
                start = Some(now);
            }
            continue;
        }
        let Some(s) = start else { continue };
        if p < neg_threshold {
            let from = *silence_from.get_or_insert(now);
            if now - from >= min_silence {
                if from - s > min_speech {
                    speeches.push(Segment {
                        start_ms: s,
                        end_ms: from,
                    });
                }
                start = None;
                silence_from = None;
            }
        }
    }
    if let Some(s) = start
        && duration_ms.saturating_sub(s) > min_speech
    {
        speeches.push(Segment {
            start_ms: s,
            end_ms: duration_ms,
        });
    }
    speeches
}

/// Widens each segment by `pad_ms`, splitting gaps shorter than twice the pad.
pub fn pad(speeches: &mut [Segment], duration_ms: u64, pad_ms: u64) {
    let n = speeches.len();
    for i in 0..n {
        if i == 0 {
            speeches[0].start_ms = speeches[0].start_ms.saturating_sub(pad_ms);
        }
        if i + 1 < n {
            let gap = speeches[i + 1].start_ms.saturating_sub(speeches[i].end_ms);
            let widen = if gap < 2 * pad_ms { gap / 2 } else { pad_ms };
            speeches[i].end_ms += widen;
            speeches[i + 1].start_ms = speeches[i + 1].start_ms.saturating_sub(widen);
        } else {
            speeches[i].end_ms = (speeches[i].end_ms + pad_ms).min(duration_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(min_speech_ms: u32, min_silence_ms: u32, speech_pad_ms: u32) -> Params {
        Params {
            threshold: 0.5,
            min_speech_ms,
            min_silence_ms,
            speech_pad_ms,
            ..Params::default()
        }
    }

    /// Probabilities from a pattern: `#` speech (0.9), `.` silence (0.05), `~` in the
    /// hysteresis band (0.4).
    fn probs(pattern: &str) -> Vec<f32> {
        pattern
            .chars()
            .map(|c| match c {
                '#' => 0.9,
                '~' => 0.4,
                _ => 0.05,
            })
            .collect()
    }

    fn seg(start_ms: u64, end_ms: u64) -> Segment {
        Segment { start_ms, end_ms }
    }

    #[test]
    fn silence_has_no_segments() {
        let p = probs("..........");
        assert!(speech_segments(&p, 320, &Params::default()).is_empty());
        assert!(speech_segments(&[], 0, &Params::default()).is_empty());
    }

    #[test]
    fn one_burst_is_found_without_padding() {
        // Speech in chunks 2..12 (64..384 ms), silence long enough after it.
        let p = probs("..##########......");
        assert_eq!(
            speech_segments(&p, 18 * 32, &params(250, 100, 0)),
            vec![seg(64, 384)]
        );
    }

    #[test]
    fn short_bursts_are_dropped() {
        // 10 chunks = 320 ms > 250 kept; 7 chunks = 224 ms dropped.
        let p = probs("##########.....#######.....");
        assert_eq!(
            speech_segments(&p, 27 * 32, &params(250, 100, 0)),
            vec![seg(0, 320)]
        );
    }

    #[test]
    fn brief_dips_do_not_split_speech() {
        // Two silent chunks (64 ms) < min_silence 100 ms: one segment.
        let p = probs("##########..##########.....");
        assert_eq!(
            speech_segments(&p, 27 * 32, &params(250, 100, 0)),
            vec![seg(0, 704)]
        );
        // The hysteresis band neither ends nor restarts speech.
        let p = probs("#####~~~~~~~~~~#####.....");
        assert_eq!(
            speech_segments(&p, 25 * 32, &params(250, 100, 0)),
            vec![seg(0, 640)]
        );
    }

    #[test]
    fn speech_running_to_the_end_ends_at_the_duration() {
        let p = probs("....##########");
        assert_eq!(
            speech_segments(&p, 14 * 32 - 10, &params(250, 100, 30)),
            vec![seg(98, 438)]
        );
    }

    #[test]
    fn padding_is_clamped_and_never_overlaps() {
        // Segments 0..320 and 416..736 (gap 96 ms < 2 * 60): the gap is split in half.
        let p = probs("##########...##########.......");
        assert_eq!(
            speech_segments(&p, 30 * 32, &params(250, 64, 60)),
            vec![seg(0, 368), seg(368, 796)]
        );
        // A wide gap gets full padding on both sides.
        let p = probs("..##########..........##########..........");
        assert_eq!(
            speech_segments(&p, 42 * 32, &params(250, 100, 30)),
            vec![seg(34, 414), seg(674, 1054)]
        );
    }
}
