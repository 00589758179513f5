//! The serverless call, and what each of its failures means to the client.
//!
//! The request's parameters go to `remote.chat` (or `remote.stream-chat`) as they are;
//! its `model` goes along as the model override only with `pass_model`, since the
//! OpenAI-facing name is normally the operator's alias and the endpoint's configured model
//! id is what the provider knows. Failures map onto the pipeline's error cases so the
//! client gets a status it can act on: a provider's rate limit is 429 and an open circuit
//! or spent budget 503, both with the wait as `Retry-After`; a timeout 504; a provider's
//! rejection is the client's request (400) unless it refused the host's credentials
//! (401/403, the operator's problem: 500, as is an endpoint missing from the config);
//! everything else is a bad upstream (502). [`falls_back`] says which failures another
//! endpoint may not share.

use hybrid_guest::remote::{ChatParams, ChatResult, RemoteError};
use hybrid_guest::stream::Failure;
use hybrid_guest::{Error, Host};

use crate::request::ChatRequest;

fn params(request: &ChatRequest, pass_model: bool) -> ChatParams {
    ChatParams {
        max_tokens: request.max_tokens,
        temperature: request.temperature,
        top_p: request.top_p,
        stop: request.stop.clone(),
        model: pass_model.then(|| request.model.clone()),
    }
}

/// Calls `endpoint` with `request`, sending its `model` as the override if `pass_model`.
/// A failure keeps its record when the host sends one: its `retry-after-ms` (an open
/// circuit's cool-down, a spent budget's window) becomes the client's `Retry-After`.
pub fn chat(
    host: &mut impl Host,
    endpoint: &str,
    request: &ChatRequest,
    pass_model: bool,
) -> Result<ChatResult, Failure> {
    host.chat_recorded(endpoint, &request.messages, &params(request, pass_model))
        .map_err(|(error, record)| match record {
            Some(call) => Failure { error, call },
            None => Failure::new(endpoint, error),
        })
}

/// Opens a stream on `endpoint` (returns once the first chunk has arrived).
pub fn stream<H: Host>(
    host: &mut H,
    endpoint: &str,
    request: &ChatRequest,
    pass_model: bool,
) -> Result<H::Stream, Failure> {
    host.stream_chat(endpoint, &request.messages, &params(request, pass_model))
}

/// Whether another endpoint may succeed where `endpoint` failed this way: it timed out,
/// rate-limited us, is unavailable (circuit open, kept failing) or answered garbage. A
/// rejection, a size limit, a spent budget or a missing endpoint would fail again.
pub fn falls_back(error: &RemoteError) -> bool {
    matches!(
        error,
        RemoteError::Timeout(_)
            | RemoteError::RateLimited(_)
            | RemoteError::Unavailable(_)
            | RemoteError::BadResponse(_)
    )
}

/// The pipeline error for a failed call to `endpoint`; `retry_after_ms` is the failure
/// record's hint (open circuit, spent budget, provider's `Retry-After`), if known.
pub fn to_error(endpoint: &str, error: RemoteError, retry_after_ms: Option<u32>) -> Error {
    match error {
        RemoteError::RateLimited(ms) => {
            let retry_after_ms = ms.or(retry_after_ms);
            Error::RateLimited {
                message: match retry_after_ms {
                    Some(ms) => format!(
                        "serverless endpoint {endpoint:?} is rate limited by the provider; \
                         retry after {ms} ms"
                    ),
                    None => format!(
                        "serverless endpoint {endpoint:?} is rate limited by the provider; \
                         retry later"
                    ),
                },
                retry_after_ms,
            }
        }
        RemoteError::Rejected {
            status: status @ (401 | 403),
            message,
        } => Error::internal(format!(
            "serverless endpoint {endpoint:?} refused this host's credentials (HTTP {status}): \
             {message}; the operator must fix the endpoint's API key"
        )),
        RemoteError::Rejected { status, message } => Error::bad_request(format!(
            "the provider rejected the request (HTTP {status}): {message}"
        )),
        RemoteError::NotFound(message) => Error::internal(format!(
            "serverless endpoint {endpoint:?} is misconfigured on this host: {message}"
        )),
        RemoteError::Timeout(message) => Error::Timeout(format!(
            "serverless endpoint {endpoint:?} did not answer in time ({message})"
        )),
        RemoteError::BudgetExceeded(message) => Error::Unavailable {
            message: format!("the serverless spend budget is spent: {message}"),
            retry_after_ms,
        },
        // The host says when an open circuit lets a probe through; a provider that kept
        // failing through every retry is a bad upstream.
        error @ RemoteError::Unavailable(_) if retry_after_ms.is_some() => Error::Unavailable {
            message: format!("serverless endpoint {endpoint:?} is unavailable ({error})"),
            retry_after_ms,
        },
        other => Error::upstream(format!("serverless endpoint {endpoint:?} failed ({other})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake;
    use hybrid_guest::remote::Message;

    fn request() -> ChatRequest {
        ChatRequest {
            model: "alias".into(),
            messages: vec![Message {
                role: "user".into(),
                content: "hi".into(),
            }],
            max_tokens: Some(9),
            temperature: Some(0.2),
            top_p: None,
            stop: vec!["\n".into()],
            stream: false,
        }
    }

    #[test]
    fn passes_the_parameters_and_the_model_only_when_asked() {
        let mut host = fake::host();
        chat(&mut host, "chat", &request(), false).expect("ok");
        chat(&mut host, "chat", &request(), true).expect("ok");
        let fake::ChatCall {
            endpoint,
            messages,
            params,
        } = &host.chats[0];
        assert_eq!((endpoint.as_str(), messages.len()), ("chat", 1));
        assert_eq!(
            params,
            &ChatParams {
                max_tokens: Some(9),
                temperature: Some(0.2),
                top_p: None,
                stop: vec!["\n".into()],
                model: None,
            }
        );
        assert_eq!(host.chats[1].params.model.as_deref(), Some("alias"));
    }

    #[test]
    fn every_remote_error_maps_to_the_status_the_client_should_see() {
        let cases = [
            (
                RemoteError::RateLimited(Some(1500)),
                "rate-limited: serverless endpoint \"chat\" is rate limited by the provider; \
                 retry after 1500 ms",
            ),
            (
                RemoteError::RateLimited(None),
                "rate-limited: serverless endpoint \"chat\" is rate limited by the provider; \
                 retry later",
            ),
            (
                RemoteError::Rejected {
                    status: 400,
                    message: "context length exceeded".into(),
                },
                "bad-request: the provider rejected the request (HTTP 400): context length exceeded",
            ),
            (
                RemoteError::Rejected {
                    status: 401,
                    message: "invalid api key".into(),
                },
                "internal: serverless endpoint \"chat\" refused this host's credentials \
                 (HTTP 401): invalid api key; the operator must fix the endpoint's API key",
            ),
            (
                RemoteError::NotFound("no endpoint named \"chat\"".into()),
                "internal: serverless endpoint \"chat\" is misconfigured on this host: no \
                 endpoint named \"chat\"",
            ),
            (
                RemoteError::Timeout("no answer within 2000 ms".into()),
                "timeout: serverless endpoint \"chat\" did not answer in time (no answer within \
                 2000 ms)",
            ),
            (
                RemoteError::Unavailable("answered 503 after 3 attempts".into()),
                "upstream: serverless endpoint \"chat\" failed (unavailable: answered 503 after \
                 3 attempts)",
            ),
            (
                RemoteError::TooLarge("over 1 MiB".into()),
                "upstream: serverless endpoint \"chat\" failed (too-large: over 1 MiB)",
            ),
            (
                RemoteError::BudgetExceeded("the per-day budget is spent".into()),
                "unavailable: the serverless spend budget is spent: the per-day budget is spent",
            ),
            (
                RemoteError::BadResponse("no choices".into()),
                "upstream: serverless endpoint \"chat\" failed (bad-response: no choices)",
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(to_error("chat", error, None).to_string(), expected);
        }
        let open = to_error(
            "chat",
            RemoteError::Unavailable("circuit open".into()),
            Some(2500),
        );
        assert_eq!(
            open,
            Error::Unavailable {
                message: "serverless endpoint \"chat\" is unavailable (unavailable: circuit open)"
                    .into(),
                retry_after_ms: Some(2500)
            }
        );
        let limited = to_error("chat", RemoteError::RateLimited(None), Some(700));
        assert!(matches!(
            limited,
            Error::RateLimited {
                retry_after_ms: Some(700),
                ..
            }
        ));
    }
}
