//! One request through the voice gate, from body to report.
//!
//! Steps: check the content type, read the parameters, parse the WAV, look the model up
//! with `list_models` (for the version the routing record needs), convert to f32 and
//! resample to 16 kHz, run the model in batches, segment the probabilities, cut the
//! speech into its own WAV and send that to the transcription endpoint, and build the
//! JSON report and routing record. Then log one line of sizes, counts and timings.

use hybrid_guest::local::ModelInfo;
use hybrid_guest::response::JSON;
use hybrid_guest::{Error, Host, Request, Response, Routing};

use crate::params::Params;
use crate::report::{self, Egress, ModelRef, Report};
use crate::resample::Resampler;
use crate::transcribe::{self, Outcome};
use crate::{refine, segments, speech_wav};
use crate::{vad, wav};

/// The rate the voice model expects.
pub const MODEL_RATE: u32 = 16_000;
/// Largest f32 sample, so that samples stay in [-1, 1) like i16 / 32768.
const MAX_SAMPLE: f32 = 32767.0 / 32768.0;

/// Handles one request: the JSON report (`application/json`, [`report`]) and the routing
/// record. The route is `local`, or `local+remote:<endpoint>` when the endpoint
/// transcribed the speech; the reason counts segments and speech, e.g. `2 speech
/// segments, 69% speech; transcribed 4.1 s of speech`; the model is the one that answered:
/// the transcription model the call record names (version empty, as providers report
/// none), else the local voice model.
pub fn handle(host: &mut impl Host, request: &Request) -> Result<Response, Error> {
    wav::check_content_type(&request.content_type)?;
    let params = Params::from_metadata(&request.metadata)?;
    let pcm = wav::parse(&request.body)?;
    let model = find_model(host, &params.model)?;

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

    let started = host.now_ns();
    let probs = vad::speech_probabilities(host, &model.name, &audio)?;
    let model_ms = host.now_ns().saturating_sub(started) / 1_000_000;

    let mut segments = segments::detect(&probs.probs, duration_ms, &params);
    refine::tighten(&mut segments, &audio);
    segments::pad(&mut segments, duration_ms, u64::from(params.speech_pad_ms));
    let speech_ratio = report::speech_ratio(&segments, duration_ms);
    let speech = speech_wav::encode(&audio, &segments);
    let transcribed = transcribe::transcribe(
        host,
        params.transcribe.as_deref(),
        params.language.as_deref(),
        speech.as_ref(),
    );
    let speech_only = speech.as_ref().map_or(0, |s| s.bytes.len());
    let egress_bytes = Egress::new(request.body.len(), speech_only, transcribed.bytes_sent());
    host.log_info(&format!(
        "voice-gate {}: {} body bytes, {} Hz, {} samples, {} chunks in {} model calls ({model_ms} ms), \
         {} segments, speech_only {speech_only} bytes, {}",
        request.id,
        request.body.len(),
        pcm.sample_rate,
        pcm.samples.len(),
        probs.probs.len(),
        probs.batches,
        segments.len(),
        transcribed.log_status(),
    ));

    let mut reason = report::reason(&segments, speech_ratio);
    if let Some(more) = transcribed.reason() {
        reason = format!("{reason}; {more}");
    }
    let route = transcribed.route();
    let transcript_skipped = transcribed.skipped();
    let vad_model = ModelRef {
        name: model.name,
        version: model.version,
    };
    let (transcript, answered_by) = match transcribed {
        Outcome::Transcribed { transcription, .. } => {
            let answered_by = ModelRef {
                name: transcription.call.model.clone(),
                version: String::new(),
            };
            (Some(report::Transcript::from(transcription)), answered_by)
        }
        _ => (None, vad_model.clone()),
    };
    let report = Report {
        duration_ms,
        sample_rate: pcm.sample_rate,
        resampled,
        segments,
        speech_ratio,
        egress_bytes,
        params,
        model: vad_model,
        transcript,
        transcript_skipped,
    };
    let body = serde_json::to_vec(&report)
        .map_err(|e| Error::Internal(format!("serialising the report: {e}")))?;
    let routing = Routing {
        route,
        reason,
        model: answered_by.name,
        model_version: answered_by.version,
    };
    Ok(Response::new(JSON, body, routing))
}

/// The loaded model called `name`, or an upstream error listing the ones available.
fn find_model(host: &mut impl Host, name: &str) -> Result<ModelInfo, Error> {
    let models = host.list_models();
    if let Some(found) = models.iter().find(|m| m.name == name) {
        return Ok(found.clone());
    }
    let available: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    Err(Error::upstream(format!(
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
    use crate::fake::{self, FakeHost};
    use crate::wav::build;
    use hybrid_guest::remote::RemoteError;

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

    fn run(body: &[u8], metadata: &[(String, String)]) -> (Result<Response, Error>, FakeHost) {
        run_on(fake::host(), body, metadata)
    }

    fn run_on(
        mut host: FakeHost,
        body: &[u8],
        metadata: &[(String, String)],
    ) -> (Result<Response, Error>, FakeHost) {
        let request = Request {
            metadata: metadata.to_vec(),
            ..Request::new("req-1", "audio/wav", body)
        };
        let answer = handle(&mut host, &request);
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
        assert_eq!(
            answer.routing.reason,
            "1 speech segment, 35% speech; transcribed 1.1 s of speech"
        );
        assert_eq!(json["model"]["name"], "silero-vad");
        assert_eq!(host.logs.len(), 1);
        assert!(
            host.logs[0].starts_with("voice-gate req-1: "),
            "{}",
            host.logs[0]
        );
    }

    #[test]
    fn silence_is_no_speech_and_nothing_leaves_the_box() {
        let body = build::wav(16000, &[0; 16000]);
        let (answer, host) = run(&body, &[]);
        let answer = answer.expect("handled");
        assert_eq!(answer.routing.reason, "no speech detected");
        assert_eq!(answer.routing.route, "local");
        assert_eq!(answer.routing.model, "silero-vad");
        let json: serde_json::Value = serde_json::from_slice(&answer.body).expect("json");
        assert_eq!(json["resampled"], false);
        assert_eq!(json["speech_ratio"], 0.0);
        assert_eq!(json["egress_bytes"]["speech_only"], 0);
        assert_eq!(json["egress_bytes"]["sent"], 0);
        assert_eq!(json["egress_bytes"]["saved"], body.len());
        assert_eq!(json["transcript"], serde_json::Value::Null);
        assert_eq!(json["transcript_skipped"], "no speech");
        assert!(host.transcriptions.is_empty());
    }

    fn json_of(answer: &Response) -> serde_json::Value {
        serde_json::from_slice(&answer.body).expect("json")
    }

    #[test]
    fn speech_alone_is_transcribed_and_egress_is_exact() {
        // 16 kHz, so the speech WAV must hold the original samples exactly.
        let body = tone_wav(16000, 3.0, 1.0, 2.0);
        let meta = vec![("language".to_owned(), "en".to_owned())];
        let (answer, host) = run(&body, &meta);
        let answer = answer.expect("handled");
        let json = json_of(&answer);
        let (start, end) = (
            json["segments"][0]["start_ms"].as_u64().expect("start"),
            json["segments"][0]["end_ms"].as_u64().expect("end"),
        );
        assert_eq!(host.transcriptions.len(), 1);
        let call = &host.transcriptions[0];
        assert_eq!(
            (
                call.endpoint.as_str(),
                call.format.as_str(),
                call.language.as_deref()
            ),
            ("transcribe", "wav", Some("en"))
        );
        let sent_wav = wav::parse(&call.audio).expect("a WAV went out");
        assert_eq!(sent_wav.sample_rate, 16000);
        let original = wav::parse(&body).expect("parses").samples;
        let (a, b) = (start as usize * 16, end as usize * 16);
        assert_eq!(sent_wav.samples, original[a..b]);

        let egress = &json["egress_bytes"];
        assert_eq!(egress["speech_only"], call.audio.len());
        assert_eq!(egress["speech_only"], 44 + 32 * (end - start));
        assert_eq!(egress["sent"], call.audio.len() + 200);
        assert_eq!(egress["saved"], body.len() - call.audio.len() - 200);

        let transcript = &json["transcript"];
        assert_eq!(
            transcript["text"],
            format!("fake transcript of {} bytes", call.audio.len())
        );
        assert_eq!(transcript["endpoint"], "transcribe");
        assert_eq!(transcript["model"], "fake-whisper");
        assert_eq!(transcript["attempts"], 1);
        assert_eq!(transcript["latency_ms"], 7);
        assert_eq!(transcript["bytes_sent"], egress["sent"]);
        let micro = transcript["cost_micro_usd"].as_u64().expect("micro");
        assert_eq!(micro, ((end - start) as f64 / 10.0).round() as u64);
        assert_eq!(transcript["cost_usd"].as_f64(), Some(micro as f64 / 1e6));
        assert!(json.get("transcript_skipped").is_none(), "{json}");

        assert_eq!(answer.routing.route, "local+remote:transcribe");
        assert_eq!(
            (
                answer.routing.model.as_str(),
                answer.routing.model_version.as_str()
            ),
            ("fake-whisper", "")
        );
        assert!(
            answer
                .routing
                .reason
                .ends_with("; transcribed 1.1 s of speech"),
            "{}",
            answer.routing.reason
        );
        // The log says how it went, never what was said.
        assert_eq!(host.logs.len(), 1);
        assert!(
            host.logs[0].contains("transcribed on transcribe"),
            "{}",
            host.logs[0]
        );
        assert!(
            !host.logs[0].contains("fake transcript"),
            "{}",
            host.logs[0]
        );
    }

    #[test]
    fn a_failing_endpoint_still_answers_with_the_segments() {
        let body = tone_wav(16000, 3.0, 1.0, 2.0);
        let mut host = fake::host();
        host.on_transcribe = fake::fail(RemoteError::Unavailable(
            "endpoint \"transcribe\" is failing: its circuit is open; next probe in 900 ms".into(),
        ));
        let (answer, host) = run_on(host, &body, &[]);
        let answer = answer.expect("still answered");
        let json = json_of(&answer);
        assert_eq!(json["segments"].as_array().map(Vec::len), Some(1));
        assert_eq!(json["transcript"], serde_json::Value::Null);
        assert_eq!(
            json["transcript_skipped"],
            "unavailable: endpoint \"transcribe\" is failing: its circuit is open; next probe in 900 ms"
        );
        // The call may have sent bytes the guest is not told about: unknown, not zero.
        assert_eq!(json["egress_bytes"]["sent"], serde_json::Value::Null);
        assert_eq!(json["egress_bytes"]["saved"], serde_json::Value::Null);
        assert!(json["egress_bytes"]["speech_only"].as_u64() > Some(44));
        assert_eq!(answer.routing.route, "local");
        assert_eq!(answer.routing.model, "silero-vad");
        assert_eq!(answer.routing.model_version, "test-1");
        assert_eq!(
            answer.routing.reason,
            "1 speech segment, 35% speech; transcript skipped (unavailable)"
        );
        assert!(
            host.logs[0].contains("failed (unavailable)"),
            "{}",
            host.logs[0]
        );
    }

    #[test]
    fn no_endpoint_or_no_budget_sends_nothing() {
        let body = tone_wav(16000, 3.0, 1.0, 2.0);
        for (error, reason) in [
            (
                RemoteError::NotFound(
                    "no endpoint named \"transcribe\"; configured endpoints: []".into(),
                ),
                "transcript skipped (no transcription endpoint \"transcribe\")",
            ),
            (
                RemoteError::BudgetExceeded("the per-minute budget of $0.000001 is spent".into()),
                "transcript skipped (budget-exceeded)",
            ),
        ] {
            let case = error.case();
            let mut host = fake::host();
            host.on_transcribe = fake::fail(error);
            let (answer, _) = run_on(host, &body, &[]);
            let answer = answer.expect("still answered");
            let json = json_of(&answer);
            assert!(
                answer.routing.reason.ends_with(reason),
                "{}",
                answer.routing.reason
            );
            let skipped = json["transcript_skipped"].as_str().expect("skipped");
            assert!(skipped.starts_with(&format!("{case}: ")), "{skipped}");
            assert_eq!(json["egress_bytes"]["sent"], 0);
            assert_eq!(json["egress_bytes"]["saved"], body.len());
        }
    }

    #[test]
    fn metadata_names_the_endpoint_or_turns_transcription_off() {
        let body = tone_wav(16000, 3.0, 1.0, 2.0);
        let meta = |v: &str| vec![("transcribe".to_owned(), v.to_owned())];
        let (answer, host) = run(&body, &meta("whisper-eu"));
        assert_eq!(
            answer.expect("handled").routing.route,
            "local+remote:whisper-eu"
        );
        assert_eq!(host.transcriptions[0].endpoint, "whisper-eu");

        let (answer, host) = run(&body, &meta("off"));
        let answer = answer.expect("handled");
        assert!(host.transcriptions.is_empty());
        assert_eq!(answer.routing.route, "local");
        assert!(
            answer.routing.reason.ends_with("; transcription off"),
            "{}",
            answer.routing.reason
        );
        let json = json_of(&answer);
        assert_eq!(
            json["transcript_skipped"],
            "transcription turned off (metadata transcribe=off)"
        );
        assert_eq!(json["egress_bytes"]["sent"], 0);
        // The speech-only figure is still what gating would send.
        assert!(json["egress_bytes"]["speech_only"].as_u64() > Some(44));
    }

    #[test]
    fn errors_come_before_the_model_runs() {
        let mut host = fake::host();
        let err =
            handle(&mut host, &Request::new("r", "text/plain", "hello")).expect_err("rejected");
        assert!(matches!(err, Error::Unsupported(_)));
        let (err, host) = run(b"", &[]);
        assert_eq!(
            err.expect_err("empty"),
            Error::bad_request("empty body: expected a WAV file")
        );
        assert!(host.runs.is_empty());
    }

    #[test]
    fn unknown_model_lists_the_available_ones() {
        let meta = vec![("model".to_owned(), "whisper".to_owned())];
        let (err, _) = run(&build::wav(16000, &[0; 100]), &meta);
        assert_eq!(
            err.expect_err("unknown"),
            Error::upstream(
                "voice model whisper is not loaded on this host; available models: silero-vad"
            )
        );
    }
}
