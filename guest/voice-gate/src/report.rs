//! The gate's answer: the JSON body and the routing reason.
//!
//! `egress_bytes` compares what would leave the box if the whole request were forwarded
//! (`all_audio`, the request body as received) with a 16 kHz 16-bit mono WAV holding only
//! the speech segments back to back (`speech_only`: a 44-byte header plus 2 bytes per
//! sample, or nothing at all when there is no speech).

use serde::Serialize;

use crate::params::Params;
use crate::segments::Segment;

/// Bytes of a canonical WAV header (RIFF, fmt and data chunk headers).
const WAV_HEADER_BYTES: u64 = 44;
/// Bytes per millisecond of 16 kHz 16-bit mono audio.
const BYTES_PER_MS: u64 = 16 * 2;

/// The JSON body of a voice-gate response.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Length of the audio in milliseconds.
    pub duration_ms: u64,
    /// Sample rate of the uploaded audio, in Hz.
    pub sample_rate: u32,
    /// Whether the audio was resampled to 16 kHz for the model.
    pub resampled: bool,
    /// Speech segments in time order.
    pub segments: Vec<Segment>,
    /// Fraction of the audio inside segments, 0 to 1, rounded to 3 decimals.
    pub speech_ratio: f64,
    /// Bytes that would leave the box, all audio versus speech only.
    pub egress_bytes: Egress,
    /// The segmentation parameters used.
    pub params: Params,
    /// The voice model that ran.
    pub model: ModelRef,
}

/// Bytes that would leave the box under each policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Egress {
    /// The request body as received.
    pub all_audio: u64,
    /// A 16 kHz mono WAV of the speech segments only (0 when there is no speech).
    pub speech_only: u64,
    /// `all_audio - speech_only`, never negative.
    pub saved: u64,
}

/// Name and version of a model, as `local::list-models` reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelRef {
    /// Model name.
    pub name: String,
    /// Operator's version string.
    pub version: String,
}

impl Egress {
    /// Egress for a request of `body_len` bytes whose speech is `segments`.
    pub fn new(body_len: usize, segments: &[Segment]) -> Self {
        let all_audio = body_len as u64;
        let speech_ms: u64 = segments.iter().map(Segment::duration_ms).sum();
        let speech_only = if segments.is_empty() {
            0
        } else {
            WAV_HEADER_BYTES + speech_ms * BYTES_PER_MS
        };
        Self {
            all_audio,
            speech_only,
            saved: all_audio.saturating_sub(speech_only),
        }
    }
}

/// Fraction of `duration_ms` covered by `segments`, rounded to 3 decimals.
pub fn speech_ratio(segments: &[Segment], duration_ms: u64) -> f64 {
    if duration_ms == 0 || segments.is_empty() {
        return 0.0;
    }
    let speech_ms: u64 = segments.iter().map(Segment::duration_ms).sum();
    (speech_ms as f64 / duration_ms as f64 * 1000.0).round() / 1000.0
}

/// The routing reason: `no speech detected` or `2 speech segments, 69% speech`.
pub fn reason(segments: &[Segment], ratio: f64) -> String {
    match segments.len() {
        0 => "no speech detected".to_owned(),
        n => format!(
            "{n} speech segment{}, {:.0}% speech",
            if n == 1 { "" } else { "s" },
            ratio * 100.0
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(start_ms: u64, end_ms: u64) -> Segment {
        Segment { start_ms, end_ms }
    }

    #[test]
    fn egress_counts_a_speech_only_wav() {
        let e = Egress::new(549_000, &[seg(970, 5260)]);
        assert_eq!(e.speech_only, 44 + 4290 * 32);
        assert_eq!(e.saved, 549_000 - e.speech_only);
        assert_eq!(Egress::new(1000, &[]).speech_only, 0);
        // A tiny upload of pure speech can cost less than its re-encoding: no negative savings.
        assert_eq!(Egress::new(100, &[seg(0, 1000)]).saved, 0);
    }

    #[test]
    fn ratio_and_reason() {
        let segs = [seg(0, 1000), seg(2000, 3450)];
        let r = speech_ratio(&segs, 3550);
        assert_eq!(r, 0.69);
        assert_eq!(reason(&segs, r), "2 speech segments, 69% speech");
        assert_eq!(reason(&segs[..1], 0.5), "1 speech segment, 50% speech");
        assert_eq!(speech_ratio(&[], 3000), 0.0);
        assert_eq!(reason(&[], 0.0), "no speech detected");
    }

    #[test]
    fn serialises_the_documented_shape() {
        let report = Report {
            duration_ms: 6230,
            sample_rate: 44100,
            resampled: true,
            segments: vec![seg(970, 5260)],
            speech_ratio: 0.689,
            egress_bytes: Egress::new(549_000, &[seg(970, 5260)]),
            params: Params::default(),
            model: ModelRef {
                name: "silero-vad".into(),
                version: "6.2.3".into(),
            },
        };
        let json = serde_json::to_string(&report).expect("serialises");
        assert_eq!(
            json,
            concat!(
                r#"{"duration_ms":6230,"sample_rate":44100,"resampled":true,"#,
                r#""segments":[{"start_ms":970,"end_ms":5260}],"speech_ratio":0.689,"#,
                r#""egress_bytes":{"all_audio":549000,"speech_only":137324,"saved":411676},"#,
                r#""params":{"threshold":0.5,"min_speech_ms":250,"min_silence_ms":100,"speech_pad_ms":30},"#,
                r#""model":{"name":"silero-vad","version":"6.2.3"}}"#
            )
        );
    }
}
