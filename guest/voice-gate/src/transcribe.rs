//! The hybrid half of the pipeline: the speech found locally goes to a serverless
//! transcription endpoint, and only the speech.
//!
//! Steps: skip without any call when there is no speech or `transcribe=off`; otherwise
//! send the speech-only WAV ([`crate::speech_wav`]) to the endpoint through the host's
//! `remote.transcribe`, with the `language` hint if one was given. A failed call never
//! fails the request: the segments found locally are still the answer, and the outcome
//! says why there is no transcript. A missing endpoint is the normal state of a box
//! without serverless, so that case gets a reason that says so and how to change it. A
//! failed call still accounts for the bytes it sent, from the failure record the host
//! reports (WIT 0.2).

use hybrid_guest::Host;
use hybrid_guest::remote::{RemoteError, TranscriptionResult};
use hybrid_guest::stream::FailureRecord;

use crate::params::TRANSCRIBE_OFF;
use crate::speech_wav::SpeechWav;

/// The audio format sent.
const FORMAT: &str = "wav";

/// What became of the transcription step.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The endpoint transcribed `seconds` of speech.
    Transcribed {
        /// The transcript and its accounting.
        transcription: TranscriptionResult,
        /// Seconds of speech sent.
        seconds: f64,
    },
    /// No call: the audio had no speech.
    NoSpeech,
    /// No call: metadata `transcribe=off`.
    Off,
    /// The call to `endpoint` failed.
    Failed {
        /// The endpoint asked for.
        endpoint: String,
        /// Why it failed.
        error: RemoteError,
        /// What the call sent and received anyway, when the host reported it.
        record: Option<FailureRecord>,
    },
}

/// Transcribes `speech` on `endpoint` (`None`: turned off) with the `language` hint.
pub fn transcribe(
    host: &mut impl Host,
    endpoint: Option<&str>,
    language: Option<&str>,
    speech: Option<&SpeechWav>,
) -> Outcome {
    let Some(speech) = speech else {
        return Outcome::NoSpeech;
    };
    let Some(endpoint) = endpoint else {
        return Outcome::Off;
    };
    match host.transcribe_recorded(endpoint, &speech.bytes, FORMAT, language) {
        Ok(transcription) => Outcome::Transcribed {
            transcription,
            seconds: speech.seconds(),
        },
        Err((error, record)) => Outcome::Failed {
            endpoint: endpoint.to_owned(),
            error,
            record,
        },
    }
}

impl Outcome {
    /// Bytes that left the box for this step: the call record's count on success, 0 when
    /// no call was made or the host refused it before sending, the failure record's count
    /// when a failed call has one, and `None` when a failed call may have sent bytes the
    /// host did not report.
    pub fn bytes_sent(&self) -> Option<u64> {
        match self {
            Self::Transcribed { transcription, .. } => Some(transcription.call.bytes_sent),
            Self::NoSpeech | Self::Off => Some(0),
            Self::Failed {
                record: Some(record),
                ..
            } => Some(record.bytes_sent),
            Self::Failed { error, .. } => error.refused_before_sending().then_some(0),
        }
    }

    /// Why there is no transcript (the JSON `transcript_skipped`), or `None` if there is.
    pub fn skipped(&self) -> Option<String> {
        match self {
            Self::Transcribed { .. } => None,
            Self::NoSpeech => Some("no speech".to_owned()),
            Self::Off => Some(format!(
                "transcription turned off (metadata transcribe={TRANSCRIBE_OFF})"
            )),
            Self::Failed {
                endpoint,
                error: error @ RemoteError::NotFound(_),
                ..
            } => Some(format!(
                "{} (this host has no transcription endpoint {endpoint:?}: configure one, \
                 name another with metadata transcribe=<endpoint>, or send transcribe={TRANSCRIBE_OFF})",
                describe(error)
            )),
            Self::Failed { error, .. } => Some(describe(error)),
        }
    }

    /// What to add to the routing reason, e.g. `transcribed 4.1 s of speech`; nothing when
    /// there was no speech (the reason already says so).
    pub fn reason(&self) -> Option<String> {
        match self {
            Self::Transcribed { seconds, .. } => {
                Some(format!("transcribed {seconds:.1} s of speech"))
            }
            Self::NoSpeech => None,
            Self::Off => Some("transcription off".to_owned()),
            Self::Failed {
                endpoint,
                error: RemoteError::NotFound(_),
                ..
            } => Some(format!(
                "transcript skipped (no transcription endpoint {endpoint:?})"
            )),
            Self::Failed { error, .. } => Some(format!("transcript skipped ({})", error.case())),
        }
    }

    /// The route for the routing record: `local+remote:<endpoint>` once the endpoint
    /// contributed, else `local`.
    pub fn route(&self) -> String {
        match self {
            Self::Transcribed { transcription, .. } => {
                format!("local+remote:{}", transcription.call.endpoint)
            }
            _ => "local".to_owned(),
        }
    }

    /// A short status for the log line: sizes and case names, never the transcript.
    pub fn log_status(&self) -> String {
        match self {
            Self::Transcribed { transcription, .. } => {
                let call = &transcription.call;
                format!(
                    "transcribed on {} ({} bytes sent, {} attempts, {} ms, {} micro-USD)",
                    call.endpoint,
                    call.bytes_sent,
                    call.attempts,
                    call.latency_ms,
                    call.cost_micro_usd
                )
            }
            Self::NoSpeech => "no transcription (no speech)".to_owned(),
            Self::Off => "no transcription (off)".to_owned(),
            Self::Failed {
                endpoint, error, ..
            } => {
                format!("transcription on {endpoint} failed ({})", error.case())
            }
        }
    }
}

/// `case: message`, as [`RemoteError`] displays it, except that a rate limit's wait is
/// spelled out as this pipeline has always reported it.
fn describe(error: &RemoteError) -> String {
    match error {
        RemoteError::RateLimited(Some(ms)) => {
            format!("rate-limited: the provider asked to retry after {ms} ms")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake;
    use hybrid_guest::remote::{CallRecord, Usage};

    fn speech() -> SpeechWav {
        SpeechWav {
            bytes: vec![0; 44 + 32_000],
            samples: 16_000,
        }
    }

    #[test]
    fn no_speech_or_off_makes_no_call() {
        let mut host = fake::host();
        let none = transcribe(&mut host, Some("transcribe"), None, None);
        assert_eq!(none, Outcome::NoSpeech);
        assert_eq!(none.skipped().as_deref(), Some("no speech"));
        assert_eq!(none.reason(), None);
        let off = transcribe(&mut host, None, None, Some(&speech()));
        assert_eq!(off, Outcome::Off);
        assert_eq!(off.bytes_sent(), Some(0));
        assert!(host.transcriptions.is_empty());
    }

    #[test]
    fn success_reports_the_call_record_and_the_route() {
        let mut host = fake::host();
        let out = transcribe(&mut host, Some("asr"), Some("en"), Some(&speech()));
        let Outcome::Transcribed {
            transcription,
            seconds,
        } = &out
        else {
            panic!("{out:?}");
        };
        assert_eq!(*seconds, 1.0);
        assert_eq!(transcription.text, "fake transcript of 32044 bytes");
        assert_eq!(
            transcription.call,
            CallRecord {
                endpoint: "asr".into(),
                model: "fake-whisper".into(),
                usage: Usage {
                    audio_seconds: 1.0,
                    ..Usage::default()
                },
                cost_micro_usd: 100,
                bytes_sent: 32_044 + 200,
                bytes_received: 0,
                latency_ms: 7,
                attempts: 1,
            }
        );
        assert_eq!(out.route(), "local+remote:asr");
        assert_eq!(out.bytes_sent(), Some(32_244));
        assert_eq!(out.skipped(), None);
        assert_eq!(out.reason().as_deref(), Some("transcribed 1.0 s of speech"));
        let call = &host.transcriptions[0];
        assert_eq!(
            (
                call.endpoint.as_str(),
                call.audio.len(),
                call.format.as_str()
            ),
            ("asr", 32_044, "wav")
        );
        assert_eq!(call.language.as_deref(), Some("en"));
    }

    #[test]
    fn every_failure_names_its_case_and_keeps_the_route_local() {
        let cases = [
            (
                RemoteError::Timeout("endpoint \"t\": no answer within 2000 ms".into()),
                "timeout: endpoint \"t\": no answer within 2000 ms",
                None,
            ),
            (
                RemoteError::RateLimited(Some(1500)),
                "rate-limited: the provider asked to retry after 1500 ms",
                None,
            ),
            (
                RemoteError::RateLimited(None),
                "rate-limited: the provider kept answering 429",
                None,
            ),
            (
                RemoteError::Unavailable("endpoint \"t\" is failing: its circuit is open".into()),
                "unavailable: endpoint \"t\" is failing: its circuit is open",
                None,
            ),
            (
                RemoteError::Rejected {
                    status: 400,
                    message: "bad file".into(),
                },
                "rejected: HTTP 400: bad file",
                None,
            ),
            (
                RemoteError::TooLarge("26 MB over the 25 MB limit".into()),
                "too-large: 26 MB over the 25 MB limit",
                None,
            ),
            (
                RemoteError::BudgetExceeded("the per-minute budget is spent".into()),
                "budget-exceeded: the per-minute budget is spent",
                Some(0),
            ),
            (
                RemoteError::BadResponse("no text field".into()),
                "bad-response: no text field",
                None,
            ),
        ];
        for (error, skipped, sent) in cases {
            let case = error.case();
            let mut host = fake::host();
            host.on_transcribe = fake::fail(error);
            let out = transcribe(&mut host, Some("t"), None, Some(&speech()));
            assert_eq!(out.skipped().as_deref(), Some(skipped));
            assert_eq!(out.route(), "local");
            assert_eq!(out.bytes_sent(), sent, "{case}");
            assert_eq!(
                out.reason(),
                Some(format!("transcript skipped ({case})")),
                "{case}"
            );
            assert_eq!(host.transcriptions.len(), 1);
        }
    }

    #[test]
    fn a_failed_call_accounts_for_the_bytes_its_record_reports() {
        let mut host = fake::host();
        host.on_transcribe = fake::fail(RemoteError::Timeout("no answer".into()));
        host.transcribe_failure_record = Some(FailureRecord {
            endpoint: "t".into(),
            bytes_sent: 64_488,
            bytes_received: 0,
            attempts: 2,
            latency_ms: 2_000,
            retry_after_ms: None,
        });
        let out = transcribe(&mut host, Some("t"), None, Some(&speech()));
        assert_eq!(
            out.bytes_sent(),
            Some(64_488),
            "two attempts' bytes, not unknown"
        );
        assert_eq!(out.route(), "local");
    }

    #[test]
    fn a_missing_endpoint_reads_as_the_normal_state_of_a_box_without_serverless() {
        let mut host = fake::host();
        host.on_transcribe = fake::fail(RemoteError::NotFound(
            "no endpoint named \"transcribe\"; configured endpoints: []".into(),
        ));
        let out = transcribe(&mut host, Some("transcribe"), None, Some(&speech()));
        assert_eq!(
            out.skipped().as_deref(),
            Some(
                "not-found: no endpoint named \"transcribe\"; configured endpoints: [] \
                 (this host has no transcription endpoint \"transcribe\": configure one, \
                 name another with metadata transcribe=<endpoint>, or send transcribe=off)"
            )
        );
        assert_eq!(
            out.reason().as_deref(),
            Some("transcript skipped (no transcription endpoint \"transcribe\")")
        );
        assert_eq!(out.bytes_sent(), Some(0));
        assert_eq!(out.route(), "local");
    }
}
