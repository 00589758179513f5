//! The handwritten-digits task the `cascade` and `policy` components share: everything
//! about one request except the choice of route, as plain Rust over a small host trait,
//! so all of it runs natively in unit tests.
//!
//! A request is an 8x8 image of 64 grey levels (0 white to 16 black, row-major) and
//! optional free text, as JSON. The local model `digits-v1` (run by the host through
//! `local.run`) gives a label and its probability; a serverless chat endpoint can be asked
//! instead with a short text prompt. The components decide which answers; this crate does
//! the rest:
//!
//! 1. [`request`]: the content type and body, validated (`bad-request` names the problem).
//! 2. [`metadata`] and [`settings`]: operator settings (`setting.*` keys, trusted because
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
//! - [`request`]: the WIT request as plain Rust, and the body JSON parsed into a
//!   [`request::Digit`].
//! - [`metadata`]: metadata lookup (last value wins) and typed readers whose errors name
//!   the key and the accepted values.
//! - [`settings`]: the settings both components read: model, endpoint, threshold,
//!   fallback, and the client's `route`.
//! - [`model`]: runs `digits-v1` through [`host::Host::run_model`].
//! - [`prompt`]: the system and user messages and the generation parameters.
//! - [`escalate`]: the `remote.chat` call and its failures.
//! - [`answer`]: the reply's first ASCII digit.
//! - [`cascade`]: the two flows and the fallback rule.
//! - [`outcome`]: what happened to a request, and its log note.
//! - [`response`]: the response JSON and the routing record.
//! - [`host`], [`signals`], [`tensor`]: the host interface as plain Rust types and traits;
//!   each component implements them over its generated bindings.
//! - [`error`]: the failure cases, one per WIT `messages.error` case.
//! - `fake` (feature `fake`, and in this crate's tests): a scriptable host.

pub mod answer;
pub mod cascade;
pub mod error;
pub mod escalate;
#[cfg(any(test, feature = "fake"))]
pub mod fake;
pub mod host;
pub mod metadata;
pub mod model;
pub mod outcome;
pub mod prompt;
pub mod request;
pub mod response;
pub mod settings;
pub mod signals;
pub mod tensor;
