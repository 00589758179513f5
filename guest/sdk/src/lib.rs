//! The guest SDK for `hybrid` pipeline components: write a handler, the SDK does the rest.
//!
//! A pipeline is a WebAssembly component of the WIT world `pipeline`
//! (`hybrid:inference@0.2.2`, in the repository's `wit/`): the host hands it one request
//! and it answers with a response and a routing record, at once or chunk by chunk
//! ([`stream`]), calling the host for local models, serverless endpoints, live signals,
//! the log and the clock. This crate owns the
//! bindings wit-bindgen generates for that world (one `generate!` for every guest), and
//! around them:
//!
//! 1. [`Pipeline`] (or [`StreamingPipeline`]) and [`export_pipeline!`]: the handler a
//!    guest writes, and the one line that makes it the component's export; optionally
//!    [`Initialize`], start-up work the host runs once at deploy and snapshots
//!    (`export_pipeline!(init ...)`, WIT 0.2.2).
//! 2. [`Host`]: every host import as one trait over plain Rust values, implemented for
//!    the real host by [`WasmHost`] and, with feature `fake`, by the scriptable
//!    `fake::FakeHost`, so a pipeline's whole flow runs in native unit tests.
//! 3. Typed helpers: tensors built from and read into `&[f32]`, `&[i64]`, `&[i32]`,
//!    `&[u8]` ([`tensor`]); typed errors with `case: message` displays that convert to and
//!    from the WIT variants ([`Error`], [`local::LocalError`], [`remote::RemoteError`]);
//!    JSON bodies in and out ([`Request::json`], [`Response::json`]); routing records
//!    ([`Routing::local`], [`Routing::remote`]); metadata read the host's way, last value
//!    winning, with the operator's `setting.*` keys ([`metadata`]).
//!
//! # Example
//!
//! A pipeline asking a serverless chat endpoint for the sentiment of a text, unless the
//! endpoint's circuit is open; the operator may name the endpoint with the setting
//! `endpoint` (`settings = { endpoint = "big" }` in the host's config).
//!
//! ```
//! use hybrid_guest::metadata::{Metadata, setting};
//! use hybrid_guest::remote::{ChatParams, Message};
//! use hybrid_guest::{Error, Host, Pipeline, Request, Response, Routing, signals};
//! use serde::{Deserialize, Serialize};
//!
//! /// `{"text": "..."}` in, `{"sentiment": "positive"}` out.
//! pub struct Sentiment;
//!
//! #[derive(Deserialize)]
//! struct Ask {
//!     text: String,
//! }
//!
//! #[derive(Serialize)]
//! struct Answer<'a> {
//!     sentiment: &'a str,
//! }
//!
//! impl Pipeline for Sentiment {
//!     fn handle(request: Request, host: &mut impl Host) -> Result<Response, Error> {
//!         let ask: Ask = request.json()?; // 415 or 400 naming the problem
//!         let metadata = Metadata::of(&request);
//!         let endpoint = metadata.text(&setting("endpoint"))?.unwrap_or("chat");
//!         if signals::circuit_open(&host.endpoints(), endpoint) {
//!             return Err(Error::upstream(format!("endpoint {endpoint} is failing")));
//!         }
//!         let messages = [
//!             Message::new("system", "Answer positive, negative or neutral."),
//!             Message::new("user", ask.text),
//!         ];
//!         let params = ChatParams { max_tokens: Some(3), ..ChatParams::default() };
//!         let result = host
//!             .chat(endpoint, &messages, &params)
//!             .map_err(|e| Error::upstream(format!("endpoint {endpoint} failed ({e})")))?;
//!         // Sizes and timings for the operator, never the text.
//!         host.log_info(&format!("sentiment {}: {} ms", request.id, result.call.latency_ms));
//!         let routing = Routing::remote(endpoint, "no local sentiment model", &result.call.model);
//!         Response::json(&Answer { sentiment: result.content.trim() }, routing)
//!     }
//! }
//!
//! hybrid_guest::export_pipeline!(Sentiment);
//!
//! // A unit test, run natively with `cargo test --target x86_64-unknown-linux-gnu` and
//! // `hybrid-guest = { ..., features = ["fake"] }` among the dev-dependencies:
//! # #[cfg(feature = "fake")] {
//! use hybrid_guest::fake::{self, FakeHost};
//! use hybrid_guest::remote::CallRecord;
//!
//! let mut host = FakeHost::new();
//! let call = CallRecord { model: "llama".into(), ..CallRecord::default() };
//! host.on_chat = fake::reply(" positive\n", call);
//! let request = Request::new("r1", "application/json", r#"{"text": "I love it"}"#);
//! let response = Sentiment::handle(request, &mut host).expect("answered");
//! assert_eq!(response.body, br#"{"sentiment":"positive"}"#);
//! assert_eq!((response.routing.route.as_str(), response.routing.model.as_str()),
//!            ("remote:chat", "llama"));
//! assert_eq!(host.chats[0].messages[1].content, "I love it");
//! assert_eq!(host.logs, ["sentiment r1: 0 ms"]);
//! # }
//! ```
//!
//! The guest's `Cargo.toml` needs `crate-type = ["cdylib"]` and this crate; `cargo build
//! --release --target wasm32-wasip2` makes the component.
//!
//! # Layout
//!
//! - [`pipeline`]: [`Pipeline`], [`Initialize`] and [`export_pipeline!`].
//! - [`host`]: [`Host`], its [`Level`](host::Level) of log messages, and [`WasmHost`].
//! - [`request`] and [`response`]: [`Request`], [`Response`] and [`Routing`], with the
//!   JSON and routing helpers.
//! - [`metadata`]: request metadata, last value winning; operator settings.
//! - [`error`]: [`Error`], one case per WIT `messages.error` case.
//! - [`tensor`], [`local`], [`remote`], [`signals`]: the records of each WIT interface,
//!   with their helpers and error types.
//! - [`stream`]: streamed chats, emitted chunks, answers and failures with their record.
//! - `fake` (feature `fake`): the scriptable host for unit tests.
//! - `bindings`: what wit-bindgen generates (hidden; the modules above re-export it).

pub mod error;
#[cfg(any(test, feature = "fake"))]
pub mod fake;
pub mod host;
pub mod local;
pub mod metadata;
pub mod pipeline;
pub mod remote;
pub mod request;
pub mod response;
pub mod signals;
pub mod stream;
pub mod tensor;

pub use error::Error;
pub use host::{Host, WasmHost};
pub use pipeline::{Initialize, Pipeline, StreamingPipeline};
pub use request::Request;
pub use response::{Response, Routing};
pub use stream::Answer;

/// The bindings wit-bindgen generates for world `pipeline`, the one copy every guest
/// shares. Use the modules above, which re-export its types with helpers; the export
/// macro reaches in here.
#[doc(hidden)]
#[allow(
    missing_docs,
    clippy::too_many_arguments,
    reason = "generated by wit-bindgen"
)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "pipeline",
        // Guests invoke the export macro from their own crates, and find the types here.
        pub_export_macro: true,
        default_bindings_module: "hybrid_guest::bindings",
        // Tests compare requests, responses and host results.
        additional_derives: [PartialEq],
    });
}

/// The bindings of world `initialized-pipeline` (the `pipeline` world plus the `init`
/// export, WIT 0.2.2), generated over [`bindings`]: the imported interfaces are that
/// module's, so only the exports are new. `export_pipeline!(init ...)` reaches in here.
#[doc(hidden)]
#[allow(
    missing_docs,
    clippy::too_many_arguments,
    reason = "generated by wit-bindgen"
)]
pub mod init_bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "initialized-pipeline",
        pub_export_macro: true,
        default_bindings_module: "hybrid_guest::init_bindings",
        with: {
            "hybrid:inference/tensors@0.2.2": crate::bindings::hybrid::inference::tensors,
            "hybrid:inference/local@0.2.2": crate::bindings::hybrid::inference::local,
            "hybrid:inference/messages@0.2.2": crate::bindings::hybrid::inference::messages,
            "hybrid:inference/remote@0.2.2": crate::bindings::hybrid::inference::remote,
            "hybrid:inference/signals@0.2.2": crate::bindings::hybrid::inference::signals,
            "hybrid:inference/log@0.2.2": crate::bindings::hybrid::inference::log,
            "hybrid:inference/clock@0.2.2": crate::bindings::hybrid::inference::clock,
            "hybrid:inference/reply@0.2.2": crate::bindings::hybrid::inference::reply,
        },
    });
}
