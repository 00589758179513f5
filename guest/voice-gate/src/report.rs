//! The gate's answer: the JSON body and the routing reason.
//!
//! `egress_bytes` compares what would leave the box if the whole request were forwarded
//! (`all_audio`, the request body as received) with what gating costs: `speech_only`, the
//! exact size of the 16 kHz 16-bit mono WAV holding only the speech segments back to back
//! (0 when there is no speech), and `sent`, the bytes that actually went to serverless
//! (the call record's count, multipart framing and retries included). `saved` is what
//! did not leave the box, `all_audio - sent`. A failed call counts the bytes its failure
//! record reports (WIT 0.2); when a failed call may have sent bytes the host did not
//! report, `sent` and `saved` are `null`: unknown, not zero.
//!
//! `transcript` is the serverless transcription with its accounting, or `null` with
//! `transcript_skipped` saying why (`no speech`, or the remote error's case and message).

use serde::Serialize;

use crate::params::Params;
use crate::segments::Segment;
use hybrid_guest::remote::TranscriptionResult;

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
    /// Bytes that would leave the box, and that did.
    pub egress_bytes: Egress,
    /// The segmentation parameters used.
    pub params: Params,
    /// The voice model that ran.
    pub model: ModelRef,
    /// The transcript of the speech, or `None` (JSON `null`) when there is none.
    pub transcript: Option<Transcript>,
    /// Why there is no transcript; absent when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transcript_skipped: Option<String>,
}

/// Bytes that would leave the box under each policy, and bytes that did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Egress {
    /// The request body as received.
    pub all_audio: u64,
    /// The 16 kHz mono WAV of the speech segments only (0 when there is no speech).
    pub speech_only: u64,
    /// Bytes sent to serverless endpoints; `None` when unknown (see the module docs).
    pub sent: Option<u64>,
    /// `all_audio - sent`, never negative; `None` when `sent` is unknown.
    pub saved: Option<u64>,
}

/// A transcript and what it cost: the JSON `transcript` object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transcript {
    /// The transcribed text.
    pub text: String,
    /// The endpoint that transcribed it.
    pub endpoint: String,
    /// The model the provider reported.
    pub model: String,
    /// Cost in US dollars (`cost_micro_usd / 1e6`).
    pub cost_usd: f64,
    /// Cost in micro-dollars, exact.
    pub cost_micro_usd: u64,
    /// HTTP attempts the host made.
    pub attempts: u32,
    /// Wall-clock time of the call, retries included.
    pub latency_ms: u32,
    /// Request bytes sent, over all attempts.
    pub bytes_sent: u64,
    /// Seconds of audio the provider billed.
    pub audio_seconds: f32,
}

impl From<TranscriptionResult> for Transcript {
    fn from(t: TranscriptionResult) -> Self {
        let call = t.call;
        Self {
            text: t.text,
            endpoint: call.endpoint,
            model: call.model,
            cost_usd: call.cost_micro_usd as f64 / 1e6,
            cost_micro_usd: call.cost_micro_usd,
            attempts: call.attempts,
            latency_ms: call.latency_ms,
            bytes_sent: call.bytes_sent,
            audio_seconds: call.usage.audio_seconds,
        }
    }
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
    /// Egress for a request of `body_len` bytes whose speech WAV is `speech_only` bytes,
    /// of which `sent` bytes (`None`: unknown) went to serverless.
    pub fn new(body_len: usize, speech_only: usize, sent: Option<u64>) -> Self {
        let all_audio = body_len as u64;
        Self {
            all_audio,
            speech_only: speech_only as u64,
            sent,
            saved: sent.map(|sent| all_audio.saturating_sub(sent)),
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
    fn egress_saves_what_was_not_sent() {
        let e = Egress::new(549_000, 137_324, Some(137_524));
        assert_eq!(e.saved, Some(549_000 - 137_524));
        assert_eq!(Egress::new(1000, 0, Some(0)).saved, Some(1000));
        // A tiny upload of pure speech can cost less than its re-encoding: no negative savings.
        assert_eq!(Egress::new(100, 32_044, Some(32_244)).saved, Some(0));
        assert_eq!(Egress::new(100, 32_044, None).saved, None);
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
            egress_bytes: Egress::new(549_000, 137_324, Some(137_524)),
            params: Params::default(),
            model: ModelRef {
                name: "silero-vad".into(),
                version: "6.2.3".into(),
            },
            transcript: Some(Transcript {
                text: "hello".into(),
                endpoint: "transcribe".into(),
                model: "whisper-large-v3".into(),
                cost_usd: 0.0005,
                cost_micro_usd: 500,
                attempts: 1,
                latency_ms: 12,
                bytes_sent: 137_524,
                audio_seconds: 5.0,
            }),
            transcript_skipped: None,
        };
        let json = serde_json::to_string(&report).expect("serialises");
        assert_eq!(
            json,
            concat!(
                r#"{"duration_ms":6230,"sample_rate":44100,"resampled":true,"#,
                r#""segments":[{"start_ms":970,"end_ms":5260}],"speech_ratio":0.689,"#,
                r#""egress_bytes":{"all_audio":549000,"speech_only":137324,"sent":137524,"saved":411476},"#,
                r#""params":{"threshold":0.5,"min_speech_ms":250,"min_silence_ms":100,"speech_pad_ms":30},"#,
                r#""model":{"name":"silero-vad","version":"6.2.3"},"#,
                r#""transcript":{"text":"hello","endpoint":"transcribe","model":"whisper-large-v3","#,
                r#""cost_usd":0.0005,"cost_micro_usd":500,"attempts":1,"latency_ms":12,"#,
                r#""bytes_sent":137524,"audio_seconds":5.0}}"#
            )
        );
        let skipped = Report {
            transcript: None,
            transcript_skipped: Some("budget-exceeded: spent".into()),
            egress_bytes: Egress::new(549_000, 137_324, None),
            ..report
        };
        let json = serde_json::to_string(&skipped).expect("serialises");
        assert!(json.contains(r#""sent":null,"saved":null}"#), "{json}");
        assert!(
            json.ends_with(r#""transcript":null,"transcript_skipped":"budget-exceeded: spent"}"#),
            "{json}"
        );
    }
}
