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

use hybrid_guest::metadata::Metadata;
use hybrid_guest::remote::{EmbeddingsResult, RemoteError};
use hybrid_guest::{Error, Host};

use crate::encoder::DIM;
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
pub fn options(metadata: &[(String, String)]) -> Result<Option<Options>, Error> {
    let metadata = Metadata::new(metadata);
    let endpoint = match metadata.get("fallback") {
        None => return Ok(None),
        Some("") => {
            return Err(Error::bad_request(
                "metadata fallback=: name a serverless embeddings endpoint, or leave it out",
            ));
        }
        Some(endpoint) => endpoint.to_owned(),
    };
    let prefer_remote = match metadata.get("prefer") {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("local") => false,
        Some(v) if v.eq_ignore_ascii_case("remote") => true,
        Some(v) => {
            return Err(Error::bad_request(format!(
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
    host: &mut impl Host,
    endpoint: &str,
    inputs: &[String],
) -> Result<EmbeddingsResult, String> {
    let mut answer = host.embed(endpoint, inputs).map_err(|e| describe(&e))?;
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

/// `case: message`, as [`RemoteError`] displays it, except that a rate limit's wait is
/// spelled out as this pipeline has always reported it.
fn describe(error: &RemoteError) -> String {
    match error {
        RemoteError::RateLimited(Some(ms)) => {
            format!("rate-limited: the provider asks to retry after {ms} ms")
        }
        other => other.to_string(),
    }
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
    fn remote_errors_read_as_case_and_message() {
        assert_eq!(
            describe(&RemoteError::RateLimited(Some(1500))),
            "rate-limited: the provider asks to retry after 1500 ms"
        );
        assert_eq!(
            describe(&RemoteError::Rejected {
                status: 400,
                message: "bad input".into()
            }),
            "rejected: HTTP 400: bad input"
        );
    }

    #[test]
    fn empty_fallback_and_unknown_prefer_are_bad_requests() {
        assert!(matches!(
            options(&meta(&[("fallback", " ")])),
            Err(Error::BadRequest(_))
        ));
        assert!(matches!(
            options(&meta(&[("fallback", "same"), ("prefer", "gpu")])),
            Err(Error::BadRequest(m)) if m.contains("\"gpu\"")
        ));
    }
}
