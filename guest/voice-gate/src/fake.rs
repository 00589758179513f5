//! The voice scenario on the SDK's scriptable host (`hybrid_guest::fake`), for the unit
//! tests: a stand-in voice model in which loud rows are speech and which checks the state
//! carry, and a stand-in transcription endpoint. Every call is recorded by the fake host.

use hybrid_guest::local::LocalError;
use hybrid_guest::remote::{CallRecord, RemoteError, TranscriptionResult, Usage};
use hybrid_guest::tensor::NamedTensor;

pub use hybrid_guest::fake::{FakeHost, ModelRun, Script, TranscribeCall, fail};

use crate::frames::{CONTEXT, ROW};
use crate::vad::{BATCH_ROWS, STATE_LEN};

/// Dimensions of `h`, `c`, `hn` and `cn`.
const STATE_DIMS: [u32; 3] = [1, 1, STATE_LEN as u32];

/// The scenario's host: model `silero-vad` version `test-1` ([`silero`]); every
/// transcription endpoint answers as [`transcriber`] says.
pub fn host() -> FakeHost {
    let mut host = FakeHost::new().with_model("silero-vad", "test-1", silero(None));
    host.on_transcribe = transcriber();
    host
}

/// The stand-in voice model: a row whose new samples' RMS is over 0.05 is speech (0.95),
/// any other silence (0.02); `hn = h + 1` and `cn = c - 1`, so the state reaching each
/// batch counts the batches before it, which the model checks. Outputs come in another
/// order than the model's, since lookup is by name; `drop_output` leaves one out.
pub fn silero(
    drop_output: Option<&'static str>,
) -> Script<ModelRun, Result<Vec<NamedTensor>, LocalError>> {
    let mut calls = 0usize;
    Box::new(move |run| {
        assert_eq!(run.model, "silero-vad");
        let get = |n: &str| run.input(n).expect("input present").to_f32().expect("fp32");
        let (input, h, c) = (get("input"), get("h"), get("c"));
        let rows = input.len() / ROW;
        assert_eq!(run.inputs[0].dims(), [rows as u32, ROW as u32]);
        assert!(rows <= BATCH_ROWS);
        // The state must be what the previous call returned.
        assert_eq!(h, vec![calls as f32; STATE_LEN]);
        assert_eq!(c, vec![-(calls as f32); STATE_LEN]);
        calls += 1;
        let probs: Vec<f32> = input
            .chunks_exact(ROW)
            .map(|row| {
                let chunk = &row[CONTEXT..];
                let rms = (chunk.iter().map(|x| x * x).sum::<f32>() / chunk.len() as f32).sqrt();
                if rms > 0.05 { 0.95 } else { 0.02 }
            })
            .collect();
        let hn: Vec<f32> = h.iter().map(|x| x + 1.0).collect();
        let cn: Vec<f32> = c.iter().map(|x| x - 1.0).collect();
        let outputs = [
            NamedTensor::fp32("cn", &STATE_DIMS, &cn),
            NamedTensor::fp32("speech_probs", &[rows as u32], &probs),
            NamedTensor::fp32("hn", &STATE_DIMS, &hn),
        ];
        Ok(outputs
            .into_iter()
            .map(|t| t.expect("fits"))
            .filter(|t| Some(t.name.as_str()) != drop_output)
            .collect())
    })
}

/// The stand-in transcription endpoint: answers `fake transcript of N bytes` from model
/// `fake-whisper`, billing the WAV's seconds at 100 micro-dollars each and counting 200
/// bytes of multipart framing.
pub fn transcriber() -> Script<TranscribeCall, Result<TranscriptionResult, RemoteError>> {
    Box::new(|call| {
        let seconds = call.audio.len().saturating_sub(44) as f32 / 32_000.0;
        Ok(TranscriptionResult {
            text: format!("fake transcript of {} bytes", call.audio.len()),
            call: CallRecord {
                endpoint: call.endpoint.clone(),
                model: "fake-whisper".to_owned(),
                usage: Usage {
                    audio_seconds: seconds,
                    ..Usage::default()
                },
                cost_micro_usd: (f64::from(seconds) * 100.0).round() as u64,
                bytes_sent: call.audio.len() as u64 + 200,
                latency_ms: 7,
                attempts: 1,
                ..CallRecord::default()
            },
        })
    })
}

/// The rows given to each model run, in call order.
pub fn rows_per_run(host: &FakeHost) -> Vec<usize> {
    host.runs
        .iter()
        .map(|r| r.input("input").map_or(0, |t| t.dims()[0] as usize))
        .collect()
}
