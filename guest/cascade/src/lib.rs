//! The confidence cascade for handwritten digits on the `hybrid` edge host: the small
//! local model answers when it is sure, a serverless chat model when it is not.
//!
//! `POST /v1/pipelines/<name>` with `{"pixels": [64 grey levels 0..=16], "text": "..."}`
//! (`application/json`). The component runs `digits-v1` on the box (`local.run`); when
//! its top probability is at least the threshold (default 0.9) that answer stands,
//! otherwise the image goes to the serverless endpoint (`remote.chat`, default `strong`)
//! as a short text prompt, with the request's `text` as context. When the escalation
//! fails (an open circuit, a spent budget, a timeout, a reply without a digit) the local
//! answer is returned and the routing reason says why, or, with `setting.fallback=error`,
//! the request fails with 502. The client's `route=local|remote` forces either side, to
//! measure all-local and all-remote accuracy. This component applies no privacy rules:
//! the `policy` component is the one that keeps personal data on the box.
//!
//! Settings and metadata are read by [`classify::settings`]; the body and the routing
//! record are described in [`classify::request`] and [`classify::response`].
//!
//! # Layout
//!
//! - [`pipeline`]: one request from body to answer, and its log line.
//! - [`Cascade`]: the component's export, through the guest SDK ([`hybrid_guest`]).

pub mod pipeline;

use hybrid_guest::{Error, Host, Pipeline, Request, Response};

/// The exported pipeline: [`pipeline::handle`].
pub struct Cascade;

impl Pipeline for Cascade {
    fn handle(request: Request, host: &mut impl Host) -> Result<Response, Error> {
        pipeline::handle(host, &request)
    }
}

hybrid_guest::export_pipeline!(Cascade);
