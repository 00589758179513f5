//! Rule-based routing for handwritten digits on the `hybrid` edge host: operator rules
//! about privacy, personal data, endpoint health, spend, egress, cost and load decide
//! first; when none applies, the confidence cascade does.
//!
//! `POST /v1/pipelines/<name>` with `{"pixels": [64 grey levels 0..=16], "text": "..."}`
//! (`application/json`). The rules ([`rules`]), first match deciding: a request the
//! client tags `private=true` stays on the box; one whose text holds personal data
//! (e-mail addresses, phone numbers, card numbers: [`pii`]) stays too, unless the
//! operator allows it to leave redacted (`setting.redact=allow`); an open circuit, a spent
//! budget window, a body too large for dear egress, or an escalation priced over the cost
//! ceiling ([`cost`]) keep it local; a queue at least `setting.spill_queue_depth` deep
//! sends it straight to serverless without running the local model; otherwise the
//! cascade runs as in the `cascade` component (threshold, fallback). A rule that keeps a
//! request local never calls the endpoint. Every decision's reason is in the routing
//! record and in the body's `decision`.
//!
//! The settings are listed in [`settings`] (and [`classify::settings`]); the body and
//! the routing record in [`classify::request`] and [`classify::response`].
//!
//! # Layout
//!
//! - [`pipeline`]: one request from body to answer, and its log line.
//! - [`settings`]: the policy's settings and the cost ceiling in force.
//! - [`pii`]: the personal-data scanner and redaction.
//! - [`cost`]: the escalation priced before it is made.
//! - [`facts`]: the request, settings and signals the rules look at.
//! - [`rules`]: the rules, a pure function of the facts.
//! - [`Policy`]: the component's export, through the guest SDK ([`hybrid_guest`]).

pub mod cost;
pub mod facts;
pub mod pii;
pub mod pipeline;
pub mod rules;
pub mod settings;

use hybrid_guest::{Error, Host, Pipeline, Request, Response};

/// The exported pipeline: [`pipeline::handle`].
pub struct Policy;

impl Pipeline for Policy {
    fn handle(request: Request, host: &mut impl Host) -> Result<Response, Error> {
        pipeline::handle(host, &request)
    }
}

hybrid_guest::export_pipeline!(Policy);
