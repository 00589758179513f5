//! The one thing a guest writes: a [`Pipeline`] (or a [`StreamingPipeline`], which may
//! answer chunk by chunk), and the [`crate::export_pipeline!`] line that makes it the
//! component's export.
//!
//! The macro defines a private type implementing the generated `Guest` trait whose
//! `handle` calls [`Pipeline::handle`] with the real host ([`crate::WasmHost`]) and turns
//! the SDK's [`Error`] into the WIT one; then, in a component build only, it invokes the
//! generated `export!` for it, which emits the canonical-ABI entry points and the
//! component type section. Natively (unit tests, `cargo doc`) the macro only checks that
//! the type implements [`Pipeline`], so a guest crate's tests need no wasm at all.

use crate::bindings;
use crate::host::{Host, WasmHost};
use crate::{Answer, Error, Request, Response};

/// A pipeline: one request in, one response with its routing record out.
///
/// The host may give every request a fresh instance, so a pipeline keeps no state
/// between requests; it is usually a unit struct. Write `handle` against `impl Host` so
/// unit tests can pass a fake host.
pub trait Pipeline {
    /// Handles one request, calling the host for models, endpoints, signals, the log and
    /// the clock. The error's case picks the HTTP status the client sees.
    fn handle(request: Request, host: &mut impl Host) -> Result<Response, Error>;
}

/// A pipeline that may stream its answer: it emits chunks with [`Host::emit`] (e.g. each
/// chunk of a [`Host::stream_chat`] as it arrives) and then answers [`Answer::Emitted`], or
/// answers whole with [`Answer::Complete`]. Export it with
/// `export_pipeline!(streaming MyPipeline)`.
pub trait StreamingPipeline {
    /// Handles one request; see [`Pipeline::handle`]. An error after chunks were emitted
    /// ends the client's stream with an error event.
    fn handle<H: Host>(request: Request, host: &mut H) -> Result<Answer, Error>;
}

/// Makes `$pipeline`, a type implementing [`Pipeline`] (or, with `streaming`,
/// [`StreamingPipeline`]), the component's `handle` export.
/// Write it once, at the top level of the guest crate:
///
/// ```
/// use hybrid_guest::{Error, Host, Pipeline, Request, Response, Routing};
///
/// pub struct Echo;
///
/// impl Pipeline for Echo {
///     fn handle(request: Request, _host: &mut impl Host) -> Result<Response, Error> {
///         let routing = Routing::local("echoed", "", "");
///         Ok(Response::new(&request.content_type, request.body, routing))
///     }
/// }
///
/// hybrid_guest::export_pipeline!(Echo);
/// ```
#[macro_export]
macro_rules! export_pipeline {
    (@with $serve:ident $pipeline:ty) => {
        const _: () = {
            /// The generated export trait's implementation for the pipeline.
            struct HybridGuestExport;

            impl $crate::bindings::Guest for HybridGuestExport {
                fn handle(
                    request: $crate::Request,
                ) -> ::core::result::Result<$crate::Answer, $crate::bindings::Error> {
                    $crate::pipeline::$serve::<$pipeline>(request)
                }
            }

            #[cfg(target_arch = "wasm32")]
    $crate::bindings::export!(HybridGuestExport with_types_in $crate::bindings);
        };
    };
    (streaming $pipeline:ty) => {
        $crate::export_pipeline!(@with serve_streaming $pipeline);
    };
    ($pipeline:ty) => {
        $crate::export_pipeline!(@with serve $pipeline);
    };
}

/// Runs `P` on `request` with the real host; the export glue [`crate::export_pipeline!`]
/// generates calls this.
#[doc(hidden)]
pub fn serve<P: Pipeline>(request: Request) -> Result<Answer, bindings::Error> {
    P::handle(request, &mut WasmHost)
        .map(Answer::Complete)
        .map_err(bindings::Error::from)
}

/// Runs streaming `P` on `request` with the real host; the export glue
/// `export_pipeline!(streaming P)` generates calls this.
#[doc(hidden)]
pub fn serve_streaming<P: StreamingPipeline>(request: Request) -> Result<Answer, bindings::Error> {
    P::handle(request, &mut WasmHost).map_err(bindings::Error::from)
}
