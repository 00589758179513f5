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

#[cfg(test)]
mod tests {
    use super::*;
    use reply::Host as _;
    use std::sync::Mutex;

    fn chunk(text: &str) -> WitChunk {
        WitChunk {
            delta: text.to_owned(),
            finish_reason: None,
            usage: None,
        }
    }

    #[test]
    fn emitted_chunks_reach_the_sink_and_the_record() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = {
            let seen = seen.clone();
            ChunkSink::new(move |c| {
                seen.lock().expect("lock").push(c.delta);
                true
            })
        };
        let mut ctx = ReplyCtx::new(Some(sink), Arc::new(AtomicBool::new(false)));
        assert!(ctx.emit(chunk("Hello ")));
        assert!(ctx.emit(chunk("edge")));
        assert_eq!(*seen.lock().expect("lock"), ["Hello ", "edge"]);
        assert_eq!(ctx.text, "Hello edge");
        assert!(ctx.take_streamed());
        assert!(!ctx.take_streamed(), "counted once per request");
    }

    #[test]
    fn a_client_gone_refuses_further_chunks_and_tells_the_streams() {
        let gone = Arc::new(AtomicBool::new(false));
        let mut ctx = ReplyCtx::new(Some(ChunkSink::new(|_| false)), gone.clone());
        assert!(!ctx.emit(chunk("lost")));
        assert!(gone.load(Ordering::Relaxed), "the remote context sees it");
        assert!(!ctx.emit(chunk("again")));
    }

    #[test]
    fn emitted_text_is_capped_by_the_response_limit() {
        let mut ctx = ReplyCtx::new(None, Arc::new(AtomicBool::new(false)));
        ctx.set_limit(8);
        assert!(ctx.emit(chunk("12345")));
        assert!(!ctx.emit(chunk("6789")), "past 8 bytes");
        assert!(ctx.limit_hit);
        assert_eq!(ctx.text, "12345");
        assert!(!ctx.take_streamed(), "no sink: nothing streamed");
    }
}
