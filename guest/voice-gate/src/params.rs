//! The gate's tuning parameters and where its speech goes, read from request metadata.
//!
//! Keys are lower-case (the host guarantees it); keys the gate does not know are ignored
//! because the host passes its own metadata along too. When a key repeats, the last value
//! wins, as with repeated command-line flags. A value that does not parse is a
//! [`Error::BadRequest`] quoting the key and value and saying what is expected.

use hybrid_guest::Error;

/// Name of the voice model used unless metadata `model` says otherwise.
pub const DEFAULT_MODEL: &str = "silero-vad";
/// Name of the transcription endpoint used unless metadata `transcribe` says otherwise.
pub const DEFAULT_TRANSCRIBE_ENDPOINT: &str = "transcribe";
/// The `transcribe` value that keeps all audio on the box.
pub const TRANSCRIBE_OFF: &str = "off";
/// Largest accepted duration parameter: ten minutes is far beyond any sensible setting
/// and keeps the millisecond arithmetic far from overflow.
const MAX_MS: u32 = 600_000;

/// Segmentation parameters, the model to run and the transcription endpoint.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Params {
    /// Probability at or above which a chunk is speech, strictly between 0 and 1.
    pub threshold: f32,
    /// Segments no longer than this many milliseconds are dropped.
    pub min_speech_ms: u32,
    /// Silence must last this many milliseconds to end a segment.
    pub min_silence_ms: u32,
    /// Milliseconds added to each side of a segment.
    pub speech_pad_ms: u32,
    /// Name of the local voice model (reported separately, not under `params`).
    #[serde(skip)]
    pub model: String,
    /// Serverless endpoint that transcribes the speech (metadata `transcribe`), or `None`
    /// when `transcribe=off` (reported under `transcript`, not under `params`).
    #[serde(skip)]
    pub transcribe: Option<String>,
    /// ISO-639-1 language hint for the transcription (metadata `language`), if any.
    #[serde(skip)]
    pub language: Option<String>,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            min_speech_ms: 250,
            min_silence_ms: 100,
            speech_pad_ms: 30,
            model: DEFAULT_MODEL.to_owned(),
            transcribe: Some(DEFAULT_TRANSCRIBE_ENDPOINT.to_owned()),
            language: None,
        }
    }
}

impl Params {
    /// Reads the parameters from request metadata, starting from the defaults.
    pub fn from_metadata(metadata: &[(String, String)]) -> Result<Self, Error> {
        let mut params = Self::default();
        for (key, value) in metadata {
            match key.as_str() {
                "threshold" => params.threshold = threshold(key, value)?,
                "min_speech_ms" => params.min_speech_ms = millis(key, value)?,
                "min_silence_ms" => params.min_silence_ms = millis(key, value)?,
                "speech_pad_ms" => params.speech_pad_ms = millis(key, value)?,
                "model" => {
                    let name = value.trim();
                    if name.is_empty() {
                        return Err(Error::bad_request(
                            "metadata model=: expected the name of a local model",
                        ));
                    }
                    name.clone_into(&mut params.model);
                }
                "transcribe" => params.transcribe = endpoint(key, value)?,
                "language" => params.language = language(key, value)?,
                _ => {}
            }
        }
        Ok(params)
    }
}

/// A probability strictly between 0 and 1: 0 would make everything speech, 1 nothing.
fn threshold(key: &str, value: &str) -> Result<f32, Error> {
    match value.trim().parse::<f32>() {
        Ok(t) if t > 0.0 && t < 1.0 => Ok(t),
        _ => Err(Error::bad_request(format!(
            "metadata {key}={value}: expected a number between 0 and 1"
        ))),
    }
}

/// An endpoint name, or `None` for `off`.
fn endpoint(key: &str, value: &str) -> Result<Option<String>, Error> {
    match value.trim() {
        "" => Err(Error::bad_request(format!(
            "metadata {key}=: expected the name of a transcription endpoint, or {TRANSCRIBE_OFF}"
        ))),
        TRANSCRIBE_OFF => Ok(None),
        name => Ok(Some(name.to_owned())),
    }
}

/// An ISO-639-1 code such as `en` (two or three letters), lower-cased; empty means none.
fn language(key: &str, value: &str) -> Result<Option<String>, Error> {
    let code = value.trim();
    if code.is_empty() {
        return Ok(None);
    }
    if (2..=3).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(Some(code.to_ascii_lowercase()))
    } else {
        Err(Error::bad_request(format!(
            "metadata {key}={value}: expected an ISO-639-1 language code such as en"
        )))
    }
}

/// A whole number of milliseconds up to [`MAX_MS`].
fn millis(key: &str, value: &str) -> Result<u32, Error> {
    match value.trim().parse::<u32>() {
        Ok(ms) if ms <= MAX_MS => Ok(ms),
        _ => Err(Error::bad_request(format!(
            "metadata {key}={value}: expected a whole number of milliseconds from 0 to {MAX_MS}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_without_metadata() {
        let p = Params::from_metadata(&[]).expect("defaults");
        assert_eq!(p, Params::default());
        assert_eq!(p.model, "silero-vad");
    }

    #[test]
    fn reads_every_key_and_ignores_others() {
        let p = Params::from_metadata(&meta(&[
            ("threshold", "0.3"),
            ("min_speech_ms", "100"),
            ("min_silence_ms", " 200 "),
            ("speech_pad_ms", "0"),
            ("model", "vad-2"),
            ("transcribe", " whisper-eu "),
            ("language", "DE"),
            ("x-forwarded-for", "10.0.0.1"),
        ]))
        .expect("valid");
        assert_eq!(
            p,
            Params {
                threshold: 0.3,
                min_speech_ms: 100,
                min_silence_ms: 200,
                speech_pad_ms: 0,
                model: "vad-2".to_owned(),
                transcribe: Some("whisper-eu".to_owned()),
                language: Some("de".to_owned()),
            }
        );
    }

    #[test]
    fn transcription_defaults_to_the_transcribe_endpoint_and_can_be_turned_off() {
        let p = Params::from_metadata(&[]).expect("defaults");
        assert_eq!(p.transcribe.as_deref(), Some("transcribe"));
        assert_eq!(p.language, None);
        let p = Params::from_metadata(&meta(&[("transcribe", "off"), ("language", " ")]))
            .expect("valid");
        assert_eq!((p.transcribe, p.language), (None, None));
    }

    #[test]
    fn last_repeated_key_wins() {
        let p = Params::from_metadata(&meta(&[("threshold", "0.2"), ("threshold", "0.7")]))
            .expect("valid");
        assert_eq!(p.threshold, 0.7);
    }

    #[test]
    fn bad_values_name_key_value_and_expectation() {
        let err = |k: &str, v: &str| {
            Params::from_metadata(&meta(&[(k, v)])).expect_err("should be rejected")
        };
        assert_eq!(
            err("threshold", "abc"),
            Error::bad_request("metadata threshold=abc: expected a number between 0 and 1")
        );
        for v in ["0", "1", "1.5", "-0.1", "NaN", "inf"] {
            assert!(matches!(err("threshold", v), Error::BadRequest(_)), "{v}");
        }
        for v in ["-1", "2.5", "", "600001", "ten"] {
            let e = err("min_speech_ms", v);
            assert!(
                e.message().starts_with(&format!(
                    "metadata min_speech_ms={v}: expected a whole number"
                )),
                "{e}"
            );
        }
        assert!(matches!(err("model", " "), Error::BadRequest(_)));
        assert!(matches!(err("transcribe", ""), Error::BadRequest(_)));
        for v in ["english", "e", "en-US", "1"] {
            assert_eq!(
                err("language", v),
                Error::bad_request(format!(
                    "metadata language={v}: expected an ISO-639-1 language code such as en"
                ))
            );
        }
    }
}
