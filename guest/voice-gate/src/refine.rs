//! Tightening segment edges with the signal's energy.
//!
//! The VAD model's LSTM reacts late: its probability stays high for some 50-100 ms after
//! speech stops, and the silence rule adds the time it takes to fall. Within each detected
//! segment the audio itself says where the speech is, so the edges are moved inwards to
//! the first and last 10 ms frame whose energy is within `RELATIVE_FLOOR_DB` of the
//! segment's loudest frame. Edges only ever move inwards (the model decided *that* there is
//! speech; energy only says *where* it stops), and in noisy audio, where the noise sits
//! above that floor, nothing moves. Padding is applied afterwards.

use crate::gate::MODEL_RATE;
use crate::segments::Segment;

/// Energy frame length in milliseconds.
const FRAME_MS: u64 = 10;
/// Frames quieter than the segment's loudest frame by more than this are not speech.
const RELATIVE_FLOOR_DB: f32 = -40.0;

/// Moves each segment's edges inwards to the first and last frame with speech energy in
/// `audio` (16 kHz samples).
pub fn tighten(segments: &mut [Segment], audio: &[f32]) {
    let frame = (u64::from(MODEL_RATE) * FRAME_MS / 1000) as usize;
    for segment in segments.iter_mut() {
        let first = (segment.start_ms / FRAME_MS) as usize;
        let last = (segment.end_ms.div_ceil(FRAME_MS) as usize).min(audio.len() / frame);
        if first >= last {
            continue;
        }
        let rms: Vec<f32> = (first..last)
            .map(|i| rms(&audio[i * frame..(i + 1) * frame]))
            .collect();
        let peak = rms.iter().copied().fold(0.0f32, f32::max);
        if peak <= 0.0 {
            continue;
        }
        let floor = peak * 10f32.powf(RELATIVE_FLOOR_DB / 20.0);
        let loud = |r: &f32| *r >= floor;
        let (Some(head), Some(tail)) = (rms.iter().position(loud), rms.iter().rposition(loud))
        else {
            continue;
        };
        let start = (first + head) as u64 * FRAME_MS;
        let end = (first + tail + 1) as u64 * FRAME_MS;
        segment.start_ms = segment.start_ms.max(start);
        segment.end_ms = segment.end_ms.min(end);
    }
}

fn rms(samples: &[f32]) -> f32 {
    let sum: f32 = samples.iter().map(|s| s * s).sum();
    (sum / samples.len().max(1) as f32).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ms` of a 300 Hz tone at `amp`, or of silence when `amp` is zero.
    fn tone(ms: usize, amp: f32) -> Vec<f32> {
        (0..ms * 16)
            .map(|i| amp * (i as f32 * 300.0 * std::f32::consts::TAU / 16_000.0).sin())
            .collect()
    }

    #[test]
    fn trims_silence_the_model_counted_as_speech() {
        let audio = [tone(500, 0.0), tone(1000, 0.5), tone(500, 0.0)].concat();
        let mut segs = [Segment {
            start_ms: 480,
            end_ms: 1600,
        }];
        tighten(&mut segs, &audio);
        assert_eq!(
            segs,
            [Segment {
                start_ms: 500,
                end_ms: 1500
            }]
        );
    }

    #[test]
    fn never_widens_and_leaves_noisy_segments_alone() {
        let audio = tone(1000, 0.5);
        let mut inner = [Segment {
            start_ms: 200,
            end_ms: 800,
        }];
        tighten(&mut inner, &audio);
        assert_eq!(
            inner,
            [Segment {
                start_ms: 200,
                end_ms: 800
            }]
        );

        // Speech over noise 20 dB down: the noise is above the floor, nothing moves.
        let noisy: Vec<f32> = [tone(300, 0.05), tone(400, 0.5), tone(300, 0.05)].concat();
        let mut segs = [Segment {
            start_ms: 100,
            end_ms: 900,
        }];
        tighten(&mut segs, &noisy);
        assert_eq!(
            segs,
            [Segment {
                start_ms: 100,
                end_ms: 900
            }]
        );
    }

    #[test]
    fn segments_past_the_audio_or_silent_are_left_as_they_are() {
        let mut segs = [Segment {
            start_ms: 5000,
            end_ms: 6000,
        }];
        tighten(&mut segs, &tone(100, 0.5));
        assert_eq!(
            segs,
            [Segment {
                start_ms: 5000,
                end_ms: 6000
            }]
        );
        let mut quiet = [Segment {
            start_ms: 0,
            end_ms: 100,
        }];
        tighten(&mut quiet, &tone(100, 0.0));
        assert_eq!(
            quiet,
            [Segment {
                start_ms: 0,
                end_ms: 100
            }]
        );
    }
}
