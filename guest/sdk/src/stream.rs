//! Streaming (WIT 0.2): a serverless chat completion read chunk by chunk, a pipeline's
//! answer sent to its client chunk by chunk, and failed calls with their record.
//!
//! - [`Host::stream_chat`](crate::Host::stream_chat) opens a stream on an endpoint; it
//!   returns once the first chunk has arrived, so a failure before any text is an error
//!   there (try the next endpoint: the client never sees it). The stream is a
//!   [`ChatChunks`]: [`WasmChatStream`] on the real host, `fake::FakeStream` in tests.
//!   Dropping it early closes the connection upstream.
//! - [`Host::emit`](crate::Host::emit) sends a chunk to the client now; it returns `false`
//!   once the client has gone away (stop and return).
//! - [`Host::forward`](crate::Host::forward) (0.2.1) hands a stream to the host, which
//!   relays the rest of it to the client without the chunks entering the guest, and
//!   returns a [`ForwardSummary`] (the call's record, finish reason, chunks and bytes) for
//!   the routing record.
//! - A [`StreamingPipeline`](crate::StreamingPipeline) answers with an [`Answer`]:
//!   [`Answer::Complete`] with a whole response, or [`Answer::Emitted`] once it has emitted.
//! - [`Failure`] is a failed call's [`RemoteError`] with its [`FailureRecord`] (bytes,
//!   attempts, latency, and `retry_after_ms`: when the same call may succeed).

use std::fmt;

use crate::bindings::hybrid::inference::{remote as wit, reply};
use crate::remote::{CallRecord, RemoteError};
use crate::{Response, Routing};

pub use reply::{Answer, ForwardSummary};
pub use wit::{ChatChunk, FailureRecord};

/// A failed remote call: why, and what it cost (WIT `remote.failure`).
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// Why it failed.
    pub error: RemoteError,
    /// Its accounting, and when retrying may help.
    pub call: FailureRecord,
}

impl Failure {
    /// A failure of a call to `endpoint` that sent and received nothing (for fakes and
    /// tests).
    pub fn new(endpoint: &str, error: RemoteError) -> Self {
        Self {
            error,
            call: FailureRecord {
                endpoint: endpoint.to_owned(),
                bytes_sent: 0,
                bytes_received: 0,
                attempts: 0,
                latency_ms: 0,
                retry_after_ms: None,
            },
        }
    }

    /// Sets when retrying may help, in milliseconds.
    pub fn retry_after_ms(mut self, ms: Option<u32>) -> Self {
        self.call.retry_after_ms = ms;
        self
    }
}

impl fmt::Display for Failure {
    /// The error's `case: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for Failure {}

impl From<wit::Failure> for Failure {
    fn from(failure: wit::Failure) -> Self {
        Self {
            error: RemoteError::from(failure.error),
            call: failure.call,
        }
    }
}

impl From<Failure> for RemoteError {
    fn from(failure: Failure) -> Self {
        failure.error
    }
}

/// The chunks of a streamed chat completion, in order.
pub trait ChatChunks {
    /// The next chunk, waiting for it; `Ok(None)` once the stream has ended (the chunk
    /// before carries the usage). An error ends the stream.
    fn next_chunk(&mut self) -> Result<Option<ChatChunk>, Failure>;

    /// The call's accounting so far (final once the stream has ended).
    fn call(&self) -> CallRecord;
}

/// A stream on the real host (WIT `remote.chat-stream`).
#[derive(Debug)]
pub struct WasmChatStream(pub(crate) wit::ChatStream);

impl ChatChunks for WasmChatStream {
    fn next_chunk(&mut self) -> Result<Option<ChatChunk>, Failure> {
        self.0.next().map_err(Failure::from)
    }

    fn call(&self) -> CallRecord {
        self.0.call()
    }
}

impl From<Response> for Answer {
    fn from(response: Response) -> Self {
        Self::Complete(response)
    }
}

impl Answer {
    /// The answer of a pipeline that emitted its chunks, served as `routing` says.
    pub fn emitted(routing: Routing) -> Self {
        Self::Emitted(routing)
    }
}
