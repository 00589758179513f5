//! The serverless fallback: which endpoint may stand in for the local model and when, read
//! from request metadata, and the call to it.
//!
//! Metadata `fallback=<endpoint>` names a serverless embeddings endpoint (there is no
//! default: without it the local model is the only path). `prefer=remote` sends the
//! request to that endpoint first, a routing choice (the box is loaded, say); `prefer=local`
//! or no `prefer` uses it only when the local model fails. `prefer` is read only when a
//! fallback is named, so clients that send it to every pipeline change nothing here. A key
//! given twice takes its last value.
//!
//! The call hands the raw input strings to WIT `remote.embed`. The host refuses any
//! endpoint that does not declare the sha256 of the model this pipeline is bound to, so an
//! answer is vectors of the same model; the guest still checks it has one vector of
//! [`DIM`] values per input and scales each to unit length, as the local path does.

use crate::encoder::DIM;
use crate::error::EmbedError;
use crate::imports::{Imports, RemoteEmbeddings};
use crate::pooling::normalize;

/// The fallback options of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The serverless embeddings endpoint that may serve instead of the local model.
    pub endpoint: String,
    /// Whether to try the endpoint before the local model.
    pub prefer_remote: bool,
}

/// The options in `metadata`, or `None` when it names no fallback.
pub fn options(metadata: &[(String, String)]) -> Result<Option<Options>, EmbedError> {
    let last = |key: &str| {
        metadata
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
    };
    let endpoint = match last("fallback") {
        None => return Ok(None),
        Some("") => {
            return Err(EmbedError::bad_request(
                "metadata fallback=: name a serverless embeddings endpoint, or leave it out",
            ));
        }
        Some(endpoint) => endpoint.to_owned(),
    };
    let prefer_remote = match last("prefer") {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("local") => false,
        Some(v) if v.eq_ignore_ascii_case("remote") => true,
        Some(v) => {
            return Err(EmbedError::bad_request(format!(
                "metadata prefer must be local or remote, got {v:?}"
            )));
        }
    };
    Ok(Some(Options {
        endpoint,
        prefer_remote,
    }))
}

/// Embeds `inputs` on `endpoint`: unit-length vectors, or the failure as
/// `case: message` (a malformed answer is `bad-response`).
pub fn embed(
    imports: &mut impl Imports,
    endpoint: &str,
    inputs: &[String],
) -> Result<RemoteEmbeddings, String> {
    let mut answer = imports.remote_embed(endpoint, inputs)?;
    if answer.vectors.len() != inputs.len() {
        return Err(format!(
            "bad-response: endpoint {endpoint:?} returned {} vectors for {} inputs",
            answer.vectors.len(),
            inputs.len()
        ));
    }
    if let Some(v) = answer.vectors.iter().find(|v| v.len() != DIM) {
        return Err(format!(
            "bad-response: endpoint {endpoint:?} returned a vector of {} values, expected {DIM}",
            v.len()
        ));
    }
    answer.vectors.iter_mut().for_each(|v| normalize(v));
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn no_fallback_means_no_options_whatever_prefer_says() {
        assert_eq!(options(&meta(&[("prefer", "remote")])), Ok(None));
        assert_eq!(options(&meta(&[("prefer", "anything")])), Ok(None));
    }

    #[test]
    fn fallback_with_prefer_and_the_last_value_winning() {
        let parsed = options(&meta(&[
            ("fallback", "a"),
            ("fallback", " same "),
            ("prefer", "REMOTE"),
        ]));
        assert_eq!(
            parsed,
            Ok(Some(Options {
                endpoint: "same".into(),
                prefer_remote: true
            }))
        );
        let parsed = options(&meta(&[("fallback", "same"), ("prefer", "local")]));
        assert_eq!(parsed.map(|o| o.map(|o| o.prefer_remote)), Ok(Some(false)));
    }

    #[test]
    fn empty_fallback_and_unknown_prefer_are_bad_requests() {
        assert!(matches!(
            options(&meta(&[("fallback", " ")])),
            Err(EmbedError::BadRequest(_))
        ));
        assert!(matches!(
            options(&meta(&[("fallback", "same"), ("prefer", "gpu")])),
            Err(EmbedError::BadRequest(m)) if m.contains("\"gpu\"")
        ));
    }
}
