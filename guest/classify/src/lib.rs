//! The handwritten-digits task the `cascade` and `policy` components share: everything
//! about one request except the choice of route, as plain Rust over the guest SDK's host
//! trait ([`hybrid_guest::Host`]), so all of it runs natively in unit tests.
//!
//! A request is an 8x8 image of 64 grey levels (0 white to 16 black, row-major) and
//! optional free text, as JSON. The local model `digits-v1` (run by the host through
//! `local.run`) gives a label and its probability; a serverless chat endpoint can be asked
//! instead with a short text prompt. The components decide which answers; this crate does
//! the rest:
//!
//! 1. [`request`]: the content type and body, validated (`bad-request` names the problem).
//! 2. [`settings`] (read with [`hybrid_guest::metadata`]): operator settings (`setting.*` keys, trusted because
//!    the host drops client keys with that prefix) and client keys, the last value winning.
//! 3. [`model`]: the local model run and its version (for the routing record).
//! 4. [`prompt`], [`escalate`], [`answer`]: the escalation call and how its reply is read.
//! 5. [`cascade`]: the confidence cascade (local first, escalate when unsure) and the
//!    remote-first path, both ending in [`cascade::fall_back`] when escalation fails.
//! 6. [`outcome`] and [`response`]: who answered and why, as the JSON body and the
//!    routing record.
//!
//! # Layout
//!
//! - [`request`]: the body JSON parsed into a [`request::Digit`].
//! - [`settings`]: the settings both components read: model, endpoint, threshold,
//!   fallback, and the client's `route`.
//! - [`model`]: runs `digits-v1` through [`hybrid_guest::Host::run_model`].
//! - [`prompt`]: the system and user messages and the generation parameters.
//! - [`escalate`]: the `remote.chat` call and its failures.
//! - [`answer`]: the reply's first ASCII digit.
//! - [`cascade`]: the two flows and the fallback rule.
//! - [`outcome`]: what happened to a request, and its log note.
//! - [`response`]: the response JSON and the routing record.
//! - `fake` (feature `fake`, and in this crate's tests): the digits scenario on the SDK's
//!   scriptable host.
//!
//! The host interface, the metadata readers, the failure type ([`hybrid_guest::Error`])
//! and the request and response types are the guest SDK's (`hybrid_guest`).

pub mod answer;
pub mod cascade;
pub mod escalate;
#[cfg(any(test, feature = "fake"))]
pub mod fake;
pub mod model;
pub mod outcome;
pub mod prompt;
pub mod request;
pub mod response;
pub mod settings;
