//! The routing policy for OpenAI chat completions on the `hybrid` edge host.
//!
//! The host maps `POST /v1/chat/completions` to this pipeline: the body is the client's
//! chat-completions JSON, the metadata its `x-hybrid-*` headers. The policy, kept simple
//! because this box has no local generative model:
//!
//! 1. Parse and validate the request; what the remote interface cannot carry (`n` > 1,
//!    tools, images) is `unsupported`, anything malformed is a `bad-request` naming the
//!    field. `stream` is the host's business and ignored here.
//! 2. The endpoint is metadata `endpoint`, default `chat`.
//! 3. Read the signals: an open circuit fails fast (`upstream`, no call), as does a spent
//!    budget window (named in the message). An endpoint the signals do not know is called
//!    anyway, so the host's `not-found` explains the configuration problem.
//! 4. Call `remote.chat`; the request's `model` is sent as the override only with
//!    metadata `pass_model=true` (the OpenAI-facing name is normally the operator's alias
//!    for the endpoint's configured model). Failures map to the status the client should
//!    see: provider rejections 400 (401/403, the host's credentials, 500), a missing
//!    endpoint 500, rate limits and other failures 502.
//! 5. Answer in OpenAI's `chat.completion` shape with the call's usage and a `hybrid`
//!    block (route, provider model, cost, attempts, latency); the routing record says
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

use hybrid_guest::{Error, Host, Pipeline, Request, Response};

/// The exported pipeline: [`router::handle`].
pub struct ChatRouter;

impl Pipeline for ChatRouter {
    fn handle(request: Request, host: &mut impl Host) -> Result<Response, Error> {
        router::handle(host, &request)
    }
}

hybrid_guest::export_pipeline!(ChatRouter);
