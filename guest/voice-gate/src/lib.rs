//! Voice activity gating for the `hybrid` edge host: "run the small model at the edge,
//! send only what matters to the cloud".
//!
//! The component takes a WAV upload, finds the speech in it with the host's local Silero
//! VAD model, sends only the speech to a serverless transcription endpoint through the
//! host, and answers with the speech segments, the transcript and how many bytes left the
//! box compared with sending everything. Without speech nothing leaves the box; when the
//! endpoint is missing or failing the segments are still the answer.
//!
//! # Layout
//!
//! - [`gate`]: one request from body to report; the order of the steps.
//! - [`wav`]: content-type check and RIFF/WAVE parsing to 16-bit mono samples.
//! - [`resample`]: band-limited conversion to the model's 16 kHz.
//! - [`frames`]: 576-sample model rows (64 samples of context + 512 new).
//! - [`vad`]: batched model runs with the LSTM state carried between batches.
//! - [`segments`]: probabilities to padded speech segments (silero's algorithm).
//! - [`refine`]: segment edges tightened to where the signal's energy says speech is.
//! - [`speech_wav`]: the speech segments cut out and written as one 16 kHz WAV.
//! - [`transcribe`]: that WAV to the serverless endpoint; the outcome, failures included.
//! - [`params`]: tuning parameters, endpoint and language from request metadata.
//! - [`report`]: the JSON body, egress bytes and routing reason.
//! - [`VoiceGate`]: the component's export, through the guest SDK ([`hybrid_guest`]),
//!   whose host trait lets all of the above run natively in unit tests with a fake model
//!   and a fake transcription endpoint (`fake`, the voice scenario on the SDK's
//!   scriptable host).

#[cfg(test)]
mod fake;
pub mod frames;
pub mod gate;
pub mod params;
pub mod refine;
pub mod report;
pub mod resample;
pub mod segments;
pub mod speech_wav;
pub mod transcribe;
pub mod vad;
pub mod wav;

use hybrid_guest::{Error, Host, Pipeline, Request, Response};

/// The exported pipeline: [`gate::handle`].
pub struct VoiceGate;

impl Pipeline for VoiceGate {
    fn handle(request: Request, host: &mut impl Host) -> Result<Response, Error> {
        gate::handle(host, &request)
    }
}

hybrid_guest::export_pipeline!(VoiceGate);
