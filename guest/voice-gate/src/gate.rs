//! One request through the voice gate, from body to report.
//!
//! Steps: check the content type, read the parameters, parse the WAV, look the model up
//! with `list_models` (for the version the routing record needs), convert to f32 and
//! resample to 16 kHz, run the model in batches, segment the probabilities, and build the
//! JSON report and routing reason. Then log one line of sizes, counts and timings.

use crate::error::GateError;
use crate::imports::{Imports, LoadedModel};
use crate::params::Params;
use crate::report::{self, Egress, ModelRef, Report};
use crate::resample::Resampler;
use crate::{refine, segments};
use crate::{vad, wav};

/// The rate the voice model expects.
pub const MODEL_RATE: u32 = 16_000;
/// Largest f32 sample, so that samples stay in [-1, 1) like i16 / 32768.
const MAX_SAMPLE: f32 = 32767.0 / 32768.0;

/// The parts of a WIT `messages.request` the gate reads.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Request id, for the log line.
    pub id: &'a str,
    /// Declared MIME type of the body.
    pub content_type: &'a str,
    /// The WAV file.
    pub body: &'a [u8],
    /// Request metadata: parameters and whatever else the host passes.
    pub metadata: &'a [(String, String)],
}

/// A successful answer: the JSON body and what the routing record needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// JSON report (content type `application/json`).
    pub body: Vec<u8>,
    /// Routing reason, e.g. `2 speech segments, 69% speech`.
    pub reason: String,
    /// The model that ran.
    pub model: ModelRef,
}

/// Handles one request.
pub fn handle(imports: &mut impl Imports, request: Request<'_>) -> Result<Answer, GateError> {
    wav::check_content_type(request.content_type)?;
    let params = Params::from_metadata(request.metadata)?;
    let pcm = wav::parse(request.body)?;
    let model = find_model(imports, &params.model)?;

    let samples: Vec<f32> = pcm
        .samples
        .iter()
        .map(|&s| f32::from(s) / 32768.0)
        .collect();
    let resampled = pcm.sample_rate != MODEL_RATE;
    let audio = if resampled {
        let mut out = Resampler::new(pcm.sample_rate, MODEL_RATE).process(&samples);
        // The filter's ringing can overshoot full scale slightly.
        out.iter_mut().for_each(|s| *s = s.clamp(-1.0, MAX_SAMPLE));
        out
    } else {
        samples
    };
    let rate = u64::from(pcm.sample_rate);
    let duration_ms = (pcm.samples.len() as u64 * 1000 + rate / 2) / rate;

    let started = imports.now_ns();
    let probs = vad::speech_probabilities(imports, &model.name, &audio)?;
    let model_ms = imports.now_ns().saturating_sub(started) / 1_000_000;

    let mut segments = segments::detect(&probs.probs, duration_ms, &params);
    refine::tighten(&mut segments, &audio);
    segments::pad(&mut segments, duration_ms, u64::from(params.speech_pad_ms));
    let speech_ratio = report::speech_ratio(&segments, duration_ms);
    let reason = report::reason(&segments, speech_ratio);
    let egress_bytes = Egress::new(request.body.len(), &segments);
    imports.log_info(&format!(
        "voice-gate {}: {} body bytes, {} Hz, {} samples, {} chunks in {} model calls ({model_ms} ms), \
         {} segments, speech_only {} bytes",
        request.id,
        request.body.len(),
        pcm.sample_rate,
        pcm.samples.len(),
        probs.probs.len(),
        probs.batches,
        segments.len(),
        egress_bytes.speech_only,
    ));
    let model = ModelRef {
        name: model.name,
        version: model.version,
    };
    let report = Report {
        duration_ms,
        sample_rate: pcm.sample_rate,
        resampled,
        segments,
        speech_ratio,
        egress_bytes,
        params,
        model: model.clone(),
    };
    let body = serde_json::to_vec(&report)
        .map_err(|e| GateError::Internal(format!("serialising the report: {e}")))?;
    Ok(Answer {
        body,
        reason,
        model,
    })
}

/// The loaded model called `name`, or an upstream error listing the ones available.
fn find_model(imports: &mut impl Imports, name: &str) -> Result<LoadedModel, GateError> {
    let models = imports.list_models();
    if let Some(found) = models.iter().find(|m| m.name == name) {
        return Ok(found.clone());
    }
    let available: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    Err(GateError::upstream(format!(
        "voice model {name} is not loaded on this host; available models: {}",
        if available.is_empty() {
            "none".to_owned()
        } else {
            available.join(", ")
        }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vad::fake::FakeHost;
    use crate::wav::build;

    /// `seconds` of audio at `rate` with a loud 440 Hz tone between `from` and `to` s.
    fn tone_wav(rate: u32, seconds: f64, from: f64, to: f64) -> Vec<u8> {
        let n = (f64::from(rate) * seconds) as usize;
        let samples: Vec<i16> = (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(rate);
                if (from..to).contains(&t) {
                    (12000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16
                } else {
                    0
                }
            })
            .collect();
        build::wav(rate, &samples)
    }

    fn run(body: &[u8], metadata: &[(String, String)]) -> (Result<Answer, GateError>, FakeHost) {
        let mut host = FakeHost::default();
        let answer = handle(
            &mut host,
            Request {
                id: "req-1",
                content_type: "audio/wav",
                body,
                metadata,
            },
        );
        (answer, host)
    }

    #[test]
    fn finds_speech_in_resampled_audio_and_reports_json() {
        let body = tone_wav(48000, 3.0, 1.0, 2.0);
        let (answer, host) = run(&body, &[]);
        let answer = answer.expect("handled");
        let json: serde_json::Value = serde_json::from_slice(&answer.body).expect("json");
        assert_eq!(json["duration_ms"], 3000);
        assert_eq!(json["sample_rate"], 48000);
        assert_eq!(json["resampled"], true);
        let segs = json["segments"].as_array().expect("segments");
        assert_eq!(segs.len(), 1);
        // Speech starts within a chunk of 1 s (minus 30 ms padding) and ends near 2 s.
        let start = segs[0]["start_ms"].as_u64().expect("start");
        let end = segs[0]["end_ms"].as_u64().expect("end");
        assert!((930..=1002).contains(&start), "start {start}");
        assert!((2000..=2070).contains(&end), "end {end}");
        assert_eq!(json["egress_bytes"]["all_audio"], body.len());
        assert_eq!(json["model"]["version"], "test-1");
        assert_eq!(json["params"]["threshold"], 0.5);
        assert_eq!(answer.reason, "1 speech segment, 35% speech");
        assert_eq!(answer.model.name, "silero-vad");
        assert_eq!(host.logs.len(), 1);
        assert!(
            host.logs[0].starts_with("voice-gate req-1: "),
            "{}",
            host.logs[0]
        );
    }

    #[test]
    fn silence_is_no_speech() {
        let (answer, _) = run(&build::wav(16000, &[0; 16000]), &[]);
        let answer = answer.expect("handled");
        assert_eq!(answer.reason, "no speech detected");
        let json: serde_json::Value = serde_json::from_slice(&answer.body).expect("json");
        assert_eq!(json["resampled"], false);
        assert_eq!(json["speech_ratio"], 0.0);
        assert_eq!(json["egress_bytes"]["speech_only"], 0);
    }

    #[test]
    fn errors_come_before_the_model_runs() {
        let mut host = FakeHost::default();
        let err = handle(
            &mut host,
            Request {
                id: "r",
                content_type: "text/plain",
                body: b"hello",
                metadata: &[],
            },
        )
        .expect_err("rejected");
        assert!(matches!(err, GateError::Unsupported(_)));
        let (err, host) = run(b"", &[]);
        assert_eq!(
            err.expect_err("empty"),
            GateError::bad_request("empty body: expected a WAV file")
        );
        assert!(host.calls.is_empty());
    }

    #[test]
    fn unknown_model_lists_the_available_ones() {
        let meta = vec![("model".to_owned(), "whisper".to_owned())];
        let (err, _) = run(&build::wav(16000, &[0; 100]), &meta);
        assert_eq!(
            err.expect_err("unknown"),
            GateError::upstream(
                "voice model whisper is not loaded on this host; available models: silero-vad"
            )
        );
    }
}
