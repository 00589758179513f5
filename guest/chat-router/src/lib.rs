//! The routing policy for OpenAI chat completions on the `hybrid` edge host.
//!
//! The host maps `POST /v1/chat/completions` to this pipeline: the body is the client's
//! chat-completions JSON, the metadata its `x-hybrid-*` headers. The policy, kept simple
//! because this box has no local generative model:
//!
//! 1. Parse and validate the request; what the remote interface cannot carry (`n` > 1,
//!    tools, images) is `unsupported`, anything malformed is a `bad-request` naming the
//!    field.
//! 2. The endpoints are metadata `endpoint` (default `chat`), then the operator's setting
//!    `fallback` (a comma-separated list), tried in order.
//! 3. Read the signals: an open circuit skips the endpoint (`unavailable`, 503, when it
//!    was the last), a spent budget window refuses (503, named in the message), each
//!    with the wait the signals give as `Retry-After` (WIT 0.2.1). An
//!    endpoint the signals do not know is called anyway, so the host's `not-found`
//!    explains the configuration problem.
//! 4. Call `remote.chat`, or with `stream: true` `remote.stream-chat` and hand the stream
//!    to the host to relay as it is (WIT 0.2.1 `reply.forward`; with the operator's
//!    setting `relay = "emit"`, read and emit each chunk here, WIT 0.2 `reply.emit`); the
//!    request's `model` is sent as the override only with metadata `pass_model=true` (the
//!    OpenAI-facing name is normally the operator's alias for the endpoint's configured
//!    model). A timeout, rate limit,
//!    unavailable endpoint or garbled answer moves on to the next endpoint; for a stream,
//!    only before its first chunk. Failures map to the status the client should see:
//!    rate limits 429 and open circuits or spent budgets 503 (with `Retry-After`),
//!    timeouts 504, provider rejections 400 (401/403, the host's credentials, 500), a
//!    missing endpoint 500, other failures 502.
//! 5. Answer in OpenAI's `chat.completion` shape with the call's usage and a `hybrid`
//!    block (route, provider model, cost, attempts, latency), or, streamed, with the
//!    forwarded or emitted chunks (the host formats the events); the routing record says
//!    `remote:<endpoint>` and the endpoint's health.
//!
//! Metadata `max_cost_usd` is not enforced: the signals carry spend but no prices, so the
//! guest cannot estimate what a call will cost; the host's budget windows are the guard.
//! Metadata `prefer` is ignored too: with no local chat model there is nothing to prefer.
//!
//! # Layout
//!
//! - [`router`]: one request from body to response; the order of the steps; the log line.
//! - [`request`]: the OpenAI request JSON, validated.
//! - [`metadata`]: `endpoint` and `pass_model`.
//! - [`policy`]: endpoint health and spend to a decision and its reason.
//! - [`call`]: the `remote.chat` call and the meaning of each of its failures.
//! - [`response`]: the OpenAI response JSON.
//! - [`ChatRouter`]: the component's export, through the guest SDK ([`hybrid_guest`]),
//!   whose host trait lets all of the above run natively in unit tests with a fake host
//!   (`fake`, the chat scenario on the SDK's scriptable host).

pub mod call;
#[cfg(test)]
mod fake;
pub mod metadata;
pub mod policy;
pub mod request;
pub mod response;
pub mod router;

use hybrid_guest::{Answer, Error, Host, Request, StreamingPipeline};

/// The exported pipeline: [`router::handle`].
pub struct ChatRouter;

impl StreamingPipeline for ChatRouter {
    fn handle<H: Host>(request: Request, host: &mut H) -> Result<Answer, Error> {
        router::handle(host, &request)
    }
}

hybrid_guest::export_pipeline!(streaming ChatRouter);
