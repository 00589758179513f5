//! Running the Silero VAD v5 sequence model over 16 kHz audio in bounded batches.
//!
//! The model takes `input` fp32 [N, 576] (see [`crate::frames`]) plus its LSTM state `h`
//! and `c`, fp32 [1, 1, 128], and returns `speech_probs` fp32 `[N]` with the next state `hn`
//! and `cn`. The audio is fed at most [`BATCH_ROWS`] rows per call, so memory stays bounded
//! for long recordings, and each call's `hn`/`cn` become the next call's `h`/`c` (zeros for
//! the first), which gives the same probabilities as one call over all rows. Outputs are
//! looked up by name, never by position, and checked before use: a model that returns the
//! wrong shapes is an upstream failure, not a panic.

use hybrid_guest::tensor::NamedTensor;
use hybrid_guest::{Error, Host};

use crate::frames::{self, ROW};

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
    host: &mut impl Host,
    model: &str,
    audio: &[f32],
) -> Result<Probabilities, Error> {
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
        let inputs = [
            NamedTensor::fp32("input", &[n as u32, ROW as u32], &input)?,
            NamedTensor::fp32("h", &STATE_DIMS, &h)?,
            NamedTensor::fp32("c", &STATE_DIMS, &c)?,
        ];
        let outputs = host
            .run_model(model, &inputs)
            .map_err(|m| Error::upstream(format!("voice model failed: {m}")))?;
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
fn output(outputs: &[NamedTensor], name: &str, len: usize) -> Result<Vec<f32>, Error> {
    let tensor = outputs.iter().find(|t| t.name == name).ok_or_else(|| {
        let names: Vec<&str> = outputs.iter().map(|t| t.name.as_str()).collect();
        Error::upstream(format!(
            "voice model returned no output named {name} (it returned: {})",
            names.join(", ")
        ))
    })?;
    let values = tensor
        .to_f32()
        .map_err(|e| Error::upstream(format!("voice model output {e}")))?;
    if values.len() != len {
        return Err(Error::upstream(format!(
            "voice model output {name} has {} values; expected {len}",
            values.len()
        )));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake;
    use hybrid_guest::local::LocalError;

    #[test]
    fn long_audio_runs_in_bounded_batches_with_state_carried() {
        // 600 chunks of silence with chunks 300..310 loud.
        let mut audio = vec![0.0f32; 600 * 512];
        audio[300 * 512..310 * 512].fill(0.5);
        let mut host = fake::host();
        let out = speech_probabilities(&mut host, "silero-vad", &audio).expect("runs");
        assert_eq!(fake::rows_per_run(&host), vec![256, 256, 88]);
        assert_eq!(out.batches, 3);
        assert_eq!(out.probs.len(), 600);
        let speech: Vec<usize> = (0..600).filter(|&i| out.probs[i] > 0.5).collect();
        assert_eq!(speech, (300..310).collect::<Vec<_>>());
    }

    #[test]
    fn model_failures_are_upstream_errors() {
        let mut host = fake::host();
        host.on_run_model = fake::fail(LocalError::ExecutionFailed("boom".into()));
        let err = speech_probabilities(&mut host, "silero-vad", &[0.0; 100]).expect_err("fails");
        assert_eq!(
            err,
            Error::upstream("voice model failed: execution-failed: boom")
        );
        let mut host = fake::host();
        host.on_run_model = fake::silero(Some("hn"));
        let err = speech_probabilities(&mut host, "silero-vad", &[0.0; 100]).expect_err("fails");
        assert!(err.message().contains("no output named hn"), "{err}");
    }
}
