//! The serverless call, and what each of its failures means to the client.
//!
//! The request's parameters go to `remote.chat` as they are; its `model` goes along as
//! the model override only with `pass_model`, since the OpenAI-facing name is normally
//! the operator's alias and the endpoint's configured model id is what the provider
//! knows. Failures map onto the pipeline's error cases so the client gets the right HTTP
//! status: a provider's rejection is the client's request (400) unless it refused the
//! host's credentials (401/403, the operator's problem: 500, as is an endpoint missing
//! from the config); everything else is the upstream failing (502).

use hybrid_guest::remote::{ChatParams, ChatResult, RemoteError};
use hybrid_guest::{Error, Host};

use crate::request::ChatRequest;

/// Calls `endpoint` with `request`, sending its `model` as the override if `pass_model`.
pub fn chat(
    host: &mut impl Host,
    endpoint: &str,
    request: &ChatRequest,
    pass_model: bool,
) -> Result<ChatResult, RemoteError> {
    let params = ChatParams {
        max_tokens: request.max_tokens,
        temperature: request.temperature,
        top_p: request.top_p,
        stop: request.stop.clone(),
        model: pass_model.then(|| request.model.clone()),
    };
    host.chat(endpoint, &request.messages, &params)
}

/// The pipeline error for a failed call to `endpoint`.
pub fn to_error(endpoint: &str, error: RemoteError) -> Error {
    match error {
        RemoteError::RateLimited(Some(ms)) => {
            Error::upstream(format!("rate limited by the provider; retry after {ms} ms"))
        }
        RemoteError::RateLimited(None) => {
            Error::upstream("rate limited by the provider; retry later")
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
                "upstream: rate limited by the provider; retry after 1500 ms",
            ),
            (
                RemoteError::RateLimited(None),
                "upstream: rate limited by the provider; retry later",
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
                "upstream: serverless endpoint \"chat\" failed (timeout: no answer within 2000 ms)",
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
                "upstream: serverless endpoint \"chat\" failed (budget-exceeded: the per-day \
                 budget is spent)",
            ),
            (
                RemoteError::BadResponse("no choices".into()),
                "upstream: serverless endpoint \"chat\" failed (bad-response: no choices)",
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(to_error("chat", error).to_string(), expected);
        }
    }
}
