//! Running the Silero VAD v5 sequence model over 16 kHz audio in bounded batches.
//!
//! The model takes `input` fp32 [N, 576] (see [`crate::frames`]) plus its LSTM state `h`
//! and `c`, fp32 [1, 1, 128], and returns `speech_probs` fp32 [N] with the next state `hn`
//! and `cn`. The audio is fed at most [`BATCH_ROWS`] rows per call, so memory stays bounded
//! for long recordings, and each call's `hn`/`cn` become the next call's `h`/`c` (zeros for
//! the first), which gives the same probabilities as one call over all rows. Outputs are
//! looked up by name, never by position, and checked before use: a model that returns the
//! wrong shapes is an upstream failure, not a panic.

use crate::error::GateError;
use crate::frames::{self, ROW};
use crate::imports::Imports;
use crate::tensor::NamedTensor;

/// Most rows per model call: 256 rows is 8.2 s of audio and 590 KB of input.
pub const BATCH_ROWS: usize = 256;
/// Size of each LSTM state tensor.
pub const STATE_LEN: usize = 128;
/// Dimensions of `h`, `c`, `hn` and `cn`.
const STATE_DIMS: [u32; 3] = [1, 1, STATE_LEN as u32];

/// The outcome of running the model over a whole recording.
#[derive(Debug, Clone, PartialEq)]
pub struct Probabilities {
    /// One speech probability per 32 ms chunk.
    pub probs: Vec<f32>,
    /// Number of `local::run` calls made.
    pub batches: usize,
}

/// Speech probability of every 32 ms chunk of `audio` (16 kHz, in [-1, 1)).
pub fn speech_probabilities(
    imports: &mut impl Imports,
    model: &str,
    audio: &[f32],
) -> Result<Probabilities, GateError> {
    let rows = frames::row_count(audio.len());
    let mut probs = Vec::with_capacity(rows);
    let mut h = vec![0.0f32; STATE_LEN];
    let mut c = vec![0.0f32; STATE_LEN];
    let mut batches = 0;
    let mut first = 0;
    while first < rows {
        let last = (first + BATCH_ROWS).min(rows);
        let n = last - first;
        let input = frames::rows(audio, first..last);
        let inputs = vec![
            NamedTensor::fp32("input", &[n as u32, ROW as u32], &input),
            NamedTensor::fp32("h", &STATE_DIMS, &h),
            NamedTensor::fp32("c", &STATE_DIMS, &c),
        ];
        let outputs = imports
            .run(model, inputs)
            .map_err(|m| GateError::upstream(format!("voice model failed: {m}")))?;
        let batch_probs = output(&outputs, "speech_probs", n)?;
        h = output(&outputs, "hn", STATE_LEN)?;
        c = output(&outputs, "cn", STATE_LEN)?;
        probs.extend_from_slice(&batch_probs);
        batches += 1;
        first = last;
    }
    Ok(Probabilities { probs, batches })
}

/// The fp32 values of output `name`, which must hold exactly `len` of them.
fn output(outputs: &[NamedTensor], name: &str, len: usize) -> Result<Vec<f32>, GateError> {
    let tensor = outputs.iter().find(|t| t.name == name).ok_or_else(|| {
        let names: Vec<&str> = outputs.iter().map(|t| t.name.as_str()).collect();
        GateError::upstream(format!(
            "voice model returned no output named {name} (it returned: {})",
            names.join(", ")
        ))
    })?;
    let values = tensor
        .to_f32()
        .map_err(|m| GateError::upstream(format!("voice model output {m}")))?;
    if values.len() != len {
        return Err(GateError::upstream(format!(
            "voice model output {name} has {} values; expected {len}",
            values.len()
        )));
    }
    Ok(values)
}

#[cfg(test)]
pub(crate) mod fake {
    //! A stand-in voice model: loud rows are speech, and it checks the state carry.
    //! Also a stand-in transcription endpoint that answers or fails as told.

    use super::*;
    use crate::frames::CONTEXT;
    use crate::imports::{CallRecord, LoadedModel, RemoteError, Transcription};

    /// Fake host: the model `silero-vad` version `test-1`; `hn = h + 1` so the state
    /// reaching each batch counts the batches before it. Every transcription endpoint
    /// answers `fake transcript of N bytes` from model `fake-whisper`, billing the WAV's
    /// seconds at 100 micro-dollars each and counting 200 bytes of multipart framing,
    /// unless `remote_error` is set.
    #[derive(Default)]
    pub struct FakeHost {
        /// Rows per call, in call order.
        pub calls: Vec<usize>,
        /// Log lines written.
        pub logs: Vec<String>,
        /// When set, every run fails with this message.
        pub fail: Option<String>,
        /// When set, outputs are returned without this name.
        pub drop_output: Option<&'static str>,
        /// Transcription calls, in call order.
        pub transcriptions: Vec<TranscribeCall>,
        /// When set, every transcription fails with this error.
        pub remote_error: Option<RemoteError>,
    }

    /// One `transcribe` call as the fake endpoint saw it.
    #[derive(Debug, Clone)]
    pub struct TranscribeCall {
        /// Endpoint name.
        pub endpoint: String,
        /// The audio itself.
        pub audio: Vec<u8>,
        /// Declared format.
        pub format: String,
        /// Language hint.
        pub language: Option<String>,
    }

    impl Imports for FakeHost {
        fn list_models(&mut self) -> Vec<LoadedModel> {
            vec![LoadedModel {
                name: "silero-vad".into(),
                version: "test-1".into(),
            }]
        }

        fn run(
            &mut self,
            model: &str,
            inputs: Vec<NamedTensor>,
        ) -> Result<Vec<NamedTensor>, String> {
            if let Some(m) = &self.fail {
                return Err(m.clone());
            }
            assert_eq!(model, "silero-vad");
            let get = |n: &str| {
                inputs
                    .iter()
                    .find(|t| t.name == n)
                    .expect("input present")
                    .to_f32()
                    .expect("fp32")
            };
            let (input, h, c) = (get("input"), get("h"), get("c"));
            let rows = input.len() / ROW;
            assert_eq!(inputs[0].dims, vec![rows as u32, ROW as u32]);
            assert!(rows <= BATCH_ROWS);
            // The state must be what the previous call returned.
            assert_eq!(h, vec![self.calls.len() as f32; STATE_LEN]);
            assert_eq!(c, vec![-(self.calls.len() as f32); STATE_LEN]);
            self.calls.push(rows);
            let probs: Vec<f32> = input
                .chunks_exact(ROW)
                .map(|row| {
                    let chunk = &row[CONTEXT..];
                    let rms =
                        (chunk.iter().map(|x| x * x).sum::<f32>() / chunk.len() as f32).sqrt();
                    if rms > 0.05 { 0.95 } else { 0.02 }
                })
                .collect();
            let hn: Vec<f32> = h.iter().map(|x| x + 1.0).collect();
            let cn: Vec<f32> = c.iter().map(|x| x - 1.0).collect();
            // Outputs deliberately not in the model's order: lookup is by name.
            let outputs = vec![
                NamedTensor::fp32("cn", &STATE_DIMS, &cn),
                NamedTensor::fp32("speech_probs", &[rows as u32], &probs),
                NamedTensor::fp32("hn", &STATE_DIMS, &hn),
            ];
            Ok(outputs
                .into_iter()
                .filter(|t| Some(t.name.as_str()) != self.drop_output)
                .collect())
        }

        fn transcribe(
            &mut self,
            endpoint: &str,
            audio: &[u8],
            format: &str,
            language: Option<&str>,
        ) -> Result<Transcription, RemoteError> {
            self.transcriptions.push(TranscribeCall {
                endpoint: endpoint.to_owned(),
                audio: audio.to_vec(),
                format: format.to_owned(),
                language: language.map(str::to_owned),
            });
            if let Some(error) = &self.remote_error {
                return Err(error.clone());
            }
            let seconds = audio.len().saturating_sub(44) as f32 / 32_000.0;
            Ok(Transcription {
                text: format!("fake transcript of {} bytes", audio.len()),
                call: CallRecord {
                    endpoint: endpoint.to_owned(),
                    model: "fake-whisper".to_owned(),
                    audio_seconds: seconds,
                    cost_micro_usd: (f64::from(seconds) * 100.0).round() as u64,
                    bytes_sent: audio.len() as u64 + 200,
                    latency_ms: 7,
                    attempts: 1,
                },
            })
        }

        fn now_ns(&mut self) -> u64 {
            1_000_000 * self.calls.len() as u64
        }

        fn log_info(&mut self, message: &str) {
            self.logs.push(message.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeHost;
    use super::*;

    #[test]
    fn long_audio_runs_in_bounded_batches_with_state_carried() {
        // 600 chunks of silence with chunks 300..310 loud.
        let mut audio = vec![0.0f32; 600 * 512];
        audio[300 * 512..310 * 512].fill(0.5);
        let mut host = FakeHost::default();
        let out = speech_probabilities(&mut host, "silero-vad", &audio).expect("runs");
        assert_eq!(host.calls, vec![256, 256, 88]);
        assert_eq!(out.batches, 3);
        assert_eq!(out.probs.len(), 600);
        let speech: Vec<usize> = (0..600).filter(|&i| out.probs[i] > 0.5).collect();
        assert_eq!(speech, (300..310).collect::<Vec<_>>());
    }

    #[test]
    fn model_failures_are_upstream_errors() {
        let mut host = FakeHost {
            fail: Some("execution-failed: boom".into()),
            ..FakeHost::default()
        };
        let err = speech_probabilities(&mut host, "silero-vad", &[0.0; 100]).expect_err("fails");
        assert_eq!(
            err,
            GateError::upstream("voice model failed: execution-failed: boom")
        );
        let mut host = FakeHost {
            drop_output: Some("hn"),
            ..FakeHost::default()
        };
        let err = speech_probabilities(&mut host, "silero-vad", &[0.0; 100]).expect_err("fails");
        assert!(err.message().contains("no output named hn"), "{err}");
    }
}
