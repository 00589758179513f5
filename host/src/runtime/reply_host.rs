//! The host side of the WIT `reply` interface (0.2): a guest answering with a stream.
//!
//! Each emitted chunk goes to the request's [`ChunkSink`], when the caller gave one (the
//! HTTP server for a client that asked for a stream), the moment it is emitted; its text is
//! also kept, so the outcome has the whole answer (for the envelope, shadows, a client
//! that asked for no stream, `hybrid run`). The kept text is bounded by the pipeline's
//! `limits.response_bytes`: past it `emit` is refused and the request ends with
//! `limit_exceeded`, like an oversized complete answer.
//!
//! When the sink reports the client gone, `emit` returns `false` and the flag shared with
//! the remote context is set, so the request's open streams are cancelled.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::bindings::remote::ChatChunk as WitChunk;
use super::bindings::reply;
use super::remote_host::chunk_from_wit;
use crate::remote::ChatChunk;

/// Where a streamed answer's chunks go as they are emitted. The function returns `false`
/// once nobody is listening (the client disconnected).
pub struct ChunkSink(Box<dyn FnMut(ChatChunk) -> bool + Send>);

impl ChunkSink {
    /// A sink calling `send` with each chunk.
    pub fn new(send: impl FnMut(ChatChunk) -> bool + Send + 'static) -> Self {
        Self(Box::new(send))
    }
}

/// Per-request context for `reply`.
pub struct ReplyCtx {
    sink: Option<ChunkSink>,
    client_gone: Arc<AtomicBool>,
    max_bytes: u64,
    /// The text emitted so far.
    pub text: String,
    /// The last finish reason emitted.
    pub finish_reason: Option<String>,
    /// Chunks emitted.
    pub chunks: u32,
    /// Chunks delivered to a live client.
    sent: u32,
    /// Set when the guest emitted past `limits.response_bytes`.
    pub limit_hit: bool,
}

impl ReplyCtx {
    /// A context sending to `sink` (or only keeping the text, without one), sharing the
    /// client-gone flag with the remote context.
    pub fn new(sink: Option<ChunkSink>, client_gone: Arc<AtomicBool>) -> Self {
        Self {
            sink,
            client_gone,
            max_bytes: u64::MAX,
            text: String::new(),
            finish_reason: None,
            chunks: 0,
            sent: 0,
            limit_hit: false,
        }
    }

    /// Caps the emitted text at `bytes` (`limits.response_bytes`).
    pub fn set_limit(&mut self, bytes: u64) {
        self.max_bytes = bytes;
    }

    /// Whether chunks went to a live client (the answer is already on its way); resets
    /// the count for the instance's next request.
    pub fn take_streamed(&mut self) -> bool {
        std::mem::take(&mut self.sent) > 0
    }

    /// Stops sending: drops the sink, so the receiver sees the stream's end.
    pub fn close(&mut self) {
        self.sink = None;
    }
}

impl reply::Host for ReplyCtx {
    fn emit(&mut self, chunk: WitChunk) -> bool {
        if self.client_gone.load(Ordering::Relaxed) || self.limit_hit {
            return false;
        }
        if (self.text.len() + chunk.delta.len()) as u64 > self.max_bytes {
            self.limit_hit = true;
            return false;
        }
        let chunk = chunk_from_wit(chunk);
        self.text.push_str(&chunk.delta);
        if chunk.finish_reason.is_some() {
            self.finish_reason.clone_from(&chunk.finish_reason);
        }
        self.chunks += 1;
        if let Some(sink) = &mut self.sink {
            if !(sink.0)(chunk) {
                self.client_gone.store(true, Ordering::Relaxed);
                self.sink = None;
                return false;
            }
            self.sent += 1;
        }
        true
    }
}
