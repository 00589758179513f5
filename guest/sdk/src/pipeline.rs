//! The one thing a guest writes: a [`Pipeline`] (or a [`StreamingPipeline`], which may
//! answer chunk by chunk), and the [`crate::export_pipeline!`] line that makes it the
//! component's export. A pipeline with start-up work (a vocabulary to parse, tables to
//! build) may also implement [`Initialize`] and be exported with
//! `export_pipeline!(init MyPipeline)`: the component then exports the WIT `init`
//! interface (world `initialized-pipeline`, WIT 0.2.2), the host runs `initialize` once
//! at deploy and serves every request from a snapshot of the state it left.
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

/// Start-up work done once, at deploy time, instead of on every request (WIT 0.2.2
/// `init`). Export with `export_pipeline!(init MyPipeline)` (or
/// `export_pipeline!(streaming init MyPipeline)`).
///
/// `initialize` runs in an instance the host then snapshots: whatever it leaves in
/// memory (typically a `static` `std::sync::OnceLock`) is there when `handle` starts.
/// Keep `handle` correct without it (fall back to doing the work per request when the
/// `OnceLock` is empty): natively (unit tests) and on a host that serves the component
/// with `preinit = false`, `initialize` never runs. It may read local models and their
/// assets and log; serverless calls are refused, randomness is deterministic and the
/// wall clock reads the Unix epoch. It must not keep a resource (a stream) for `handle`.
pub trait Initialize {
    /// Prepares the state every request starts from. An error fails the deploy with
    /// its message.
    fn initialize(host: &mut impl Host) -> Result<(), String>;
}

/// Makes `$pipeline`, a type implementing [`Pipeline`] (or, with `streaming`,
/// [`StreamingPipeline`]), the component's `handle` export; with `init`, it must also
/// implement [`Initialize`], which becomes the component's `init` export.
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
    (@init $serve:ident $pipeline:ty) => {
        const _: () = {
            /// The generated export traits' implementation for the pipeline and its init.
            struct HybridGuestExport;

            impl $crate::init_bindings::Guest for HybridGuestExport {
                fn handle(
                    request: $crate::Request,
                ) -> ::core::result::Result<$crate::Answer, $crate::bindings::Error> {
                    $crate::pipeline::$serve::<$pipeline>(request)
                }
            }

            impl $crate::init_bindings::exports::hybrid::inference::init::Guest
                for HybridGuestExport
            {
                fn initialize() -> ::core::result::Result<(), ::std::string::String> {
                    $crate::pipeline::initialize::<$pipeline>()
                }
            }

            #[cfg(target_arch = "wasm32")]
    $crate::init_bindings::export!(HybridGuestExport with_types_in $crate::init_bindings);
        };
    };
    (streaming init $pipeline:ty) => {
        $crate::export_pipeline!(@init serve_streaming $pipeline);
    };
    (init $pipeline:ty) => {
        $crate::export_pipeline!(@init serve $pipeline);
    };
    (streaming $pipeline:ty) => {
        $crate::export_pipeline!(@with serve_streaming $pipeline);
    };
    ($pipeline:ty) => {
        $crate::export_pipeline!(@with serve $pipeline);
    };
}

/// Runs `P`'s [`Initialize::initialize`] with the real host; the export glue
/// `export_pipeline!(init P)` generates calls this.
#[doc(hidden)]
pub fn initialize<P: Initialize>() -> Result<(), String> {
    P::initialize(&mut WasmHost)
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
