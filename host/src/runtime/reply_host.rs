//! The host side of the WIT `reply` interface (0.2): a guest answering with a stream,
//! chunk by chunk (`emit`) or (0.2.1) by handing over a serverless stream (`forward`).
//!
//! Each chunk goes to the request's [`ChunkSink`], when the caller gave one (the HTTP
//! server for a client that asked for a stream), the moment it is emitted or arrives; its
//! text is also kept, so the outcome has the whole answer (for the envelope, shadows, a
//! client that asked for no stream, `hybrid run`). The kept text is bounded by the
//! pipeline's `limits.response_bytes`: past it the chunk is refused and the request ends
//! with `limit_exceeded`, like an oversized complete answer.
//!
//! `forward` reads the stream in the host, chunk after chunk, straight into the sink: the
//! text never enters guest memory and the guest runs no code until the stream has ended.
//! It needs both the reply and the remote context (the stream lives in the latter), so the
//! interface is linked through a [`ReplyView`] of the two.
//!
//! When the sink reports the client gone, the chunk is refused and the flag shared with
//! the remote context is set, so the request's open streams are cancelled.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use wasmtime::component::{HasData, Resource};

use super::bindings::remote::{self, ChatChunk as WitChunk, Failure};
use super::bindings::reply::{self, ForwardSummary};
use super::remote_host::{RemoteCtx, chunk_from_wit, failure_after, failure_to_wit, record_to_wit};
use crate::remote::{ChatChunk, ChatStream};

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

    /// Sends `chunk` (or keeps it, without a sink), unless the client has gone or the text
    /// would pass the response limit.
    pub fn push(&mut self, chunk: ChatChunk) -> Result<(), Refused> {
        if self.limit_hit {
            return Err(Refused::TooLarge);
        }
        if self.client_gone.load(Ordering::Relaxed) {
            return Err(Refused::ClientGone);
        }
        if (self.text.len() + chunk.delta.len()) as u64 > self.max_bytes {
            self.limit_hit = true;
            return Err(Refused::TooLarge);
        }
        self.text.push_str(&chunk.delta);
        if chunk.finish_reason.is_some() {
            self.finish_reason.clone_from(&chunk.finish_reason);
        }
        self.chunks += 1;
        if let Some(sink) = &mut self.sink {
            if !(sink.0)(chunk) {
                self.client_gone.store(true, Ordering::Relaxed);
                self.sink = None;
                return Err(Refused::ClientGone);
            }
            self.sent += 1;
        }
        Ok(())
    }
}

/// Why a chunk was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The client went away.
    ClientGone,
    /// The text would pass `limits.response_bytes`.
    TooLarge,
}

/// What the `reply` functions work on: the reply context and the remote one, whose open
/// streams `forward` consumes.
pub struct ReplyView<'a> {
    reply: &'a mut ReplyCtx,
    remote: &'a mut RemoteCtx,
}

impl<'a> ReplyView<'a> {
    /// A view of the two contexts.
    pub fn new(reply: &'a mut ReplyCtx, remote: &'a mut RemoteCtx) -> Self {
        Self { reply, remote }
    }
}

/// The linker's handle on [`ReplyView`].
pub struct HasReply;

impl HasData for HasReply {
    type Data<'a> = ReplyView<'a>;
}

impl reply::Host for ReplyView<'_> {
    fn emit(&mut self, chunk: WitChunk) -> bool {
        self.reply.push(chunk_from_wit(chunk)).is_ok()
    }

    fn forward(&mut self, stream: Resource<ChatStream>) -> Result<ForwardSummary, Failure> {
        let Some(mut open) = self.remote.take_stream(stream.rep()) else {
            return Err(failure_after(
                "",
                remote::Error::Unavailable(
                    "the stream was already closed; forward a stream you still hold".to_owned(),
                ),
                None,
            ));
        };
        let (mut chunks, mut text_bytes, mut finish_reason) = (0u32, 0u64, None);
        loop {
            // Waiting on the network: give the resume slot back meanwhile.
            self.remote.before_waiting();
            let chunk = match open.next_chunk() {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(failed) => {
                    if let Some(settled) = open.take_settled() {
                        self.remote.enter(settled);
                    }
                    self.remote.after_call();
                    return Err(failure_to_wit(&failed));
                }
            };
            // The closing chunk carries only the usage, which the summary reports.
            if chunk.delta.is_empty() && chunk.finish_reason.is_none() {
                continue;
            }
            let (bytes, finish) = (chunk.delta.len() as u64, chunk.finish_reason.clone());
            if let Err(why) = self.reply.push(chunk) {
                let name = open.endpoint().to_owned();
                let settled = open.cancel();
                let record = settled.as_ref().and_then(|s| s.as_ref().ok()).cloned();
                if let Some(settled) = settled {
                    self.remote.enter(settled);
                }
                self.remote.after_call();
                let error = match why {
                    Refused::ClientGone => remote::Error::Unavailable(format!(
                        "the client went away; the stream from endpoint {name:?} was closed"
                    )),
                    Refused::TooLarge => remote::Error::TooLarge(format!(
                        "the stream from endpoint {name:?} passed the pipeline's \
                         limits.response_bytes; it was closed"
                    )),
                };
                return Err(failure_after(&name, error, record.as_ref()));
            }
            chunks += 1;
            text_bytes += bytes;
            if finish.is_some() {
                finish_reason = finish;
            }
        }
        let record = open.record();
        if let Some(settled) = open.take_settled() {
            self.remote.enter(settled);
        }
        self.remote.after_call();
        Ok(ForwardSummary {
            call: record_to_wit(&record),
            finish_reason,
            chunks,
            text_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn chunk(text: &str) -> ChatChunk {
        ChatChunk {
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
        assert_eq!(ctx.push(chunk("Hello ")), Ok(()));
        assert_eq!(ctx.push(chunk("edge")), Ok(()));
        assert_eq!(*seen.lock().expect("lock"), ["Hello ", "edge"]);
        assert_eq!(ctx.text, "Hello edge");
        assert!(ctx.take_streamed());
        assert!(!ctx.take_streamed(), "counted once per request");
    }

    #[test]
    fn a_client_gone_refuses_further_chunks_and_tells_the_streams() {
        let gone = Arc::new(AtomicBool::new(false));
        let mut ctx = ReplyCtx::new(Some(ChunkSink::new(|_| false)), gone.clone());
        assert_eq!(ctx.push(chunk("lost")), Err(Refused::ClientGone));
        assert!(gone.load(Ordering::Relaxed), "the remote context sees it");
        assert_eq!(ctx.push(chunk("again")), Err(Refused::ClientGone));
    }

    #[test]
    fn emitted_text_is_capped_by_the_response_limit() {
        let mut ctx = ReplyCtx::new(None, Arc::new(AtomicBool::new(false)));
        ctx.set_limit(8);
        assert_eq!(ctx.push(chunk("12345")), Ok(()));
        assert_eq!(
            ctx.push(chunk("6789")),
            Err(Refused::TooLarge),
            "past 8 bytes"
        );
        assert!(ctx.limit_hit);
        assert_eq!(ctx.text, "12345");
        assert!(!ctx.take_streamed(), "no sink: nothing streamed");
    }
}
