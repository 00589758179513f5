//! Streamed answers: the chunks a 0.2 guest emits, or a serverless stream it forwards
//! (0.2.1), relayed to the client as server-sent events the moment they are emitted or
//! arrive (both reach the same [`ChunkSink`]).
//!
//! Steps: the request runs on a blocking worker with a [`ChunkSink`] feeding an unbounded
//! channel (memory is bounded by the pipeline's `limits.response_bytes`, which the host
//! enforces on emitted text). This side waits for whichever comes first, the first chunk
//! or the end of the request:
//! - the end, with nothing emitted: an ordinary answer ([`Relay::Whole`]), so a guest that
//!   fails before its first chunk (every endpoint down, say) gets its proper status;
//! - a chunk: a `200 text/event-stream` response whose body sends that chunk, each
//!   following one as it arrives, and once the worker is done the closing events (the
//!   route's: usage, the record, `[DONE]`) or, if the request failed after the first
//!   chunk, an error event `{"error": {...}}` in the OpenAI shape ([`Relay::Streamed`]).
//!
//! A client that disconnects drops the body, hence the receiver: the sink then reports
//! the client gone, the guest's next `emit` returns `false` (or its `forward` returns a
//! failure), and the host cancels the request's upstream streams (see
//! `runtime::reply_host`). `hybrid_streams_total` counts how each stream ended.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use tokio::sync::mpsc;

use super::reply::ApiError;
use super::{AppState, Refusal};
use crate::remote::ChatChunk;
use crate::runtime::{ChunkSink, Outcome, Request};

/// A finished request: its outcome, or why it was not served.
pub type Finished = Result<(Request, Outcome), Refusal>;

/// The request's end, still to come.
type Ending = Pin<Box<dyn Future<Output = Finished> + Send>>;

/// How a route shapes the events of its streamed answers.
pub trait EventFormat: Send + 'static {
    /// Data of the events sent before the first chunk (e.g. OpenAI's role chunk).
    fn opening(&self) -> Vec<String>;
    /// Data of the event for one chunk, or `None` to send nothing for it (a chunk with
    /// neither text nor finish reason, such as the one carrying the usage).
    fn chunk(&self, chunk: &ChatChunk) -> Option<String>;
    /// Data of the events that end a served stream (e.g. usage, then `[DONE]`).
    fn closing(&self, request: &Request, outcome: &Outcome) -> Vec<String>;
}

/// What [`relay`] produced.
pub enum Relay {
    /// Nothing was emitted: answer the finished request as usual.
    Whole(Box<Finished>),
    /// The answer is streaming.
    Streamed(Response),
}

/// Runs `request` on `pipeline`, streaming what the guest emits (see the module doc).
pub async fn relay(
    state: Arc<AppState>,
    pipeline: String,
    request: Request,
    format: impl EventFormat,
) -> Relay {
    let id = request.id.clone();
    let (tx, mut rx) = mpsc::unbounded_channel::<ChatChunk>();
    let gone = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU32::new(0));
    let sink = {
        let (gone, sent) = (gone.clone(), sent.clone());
        ChunkSink::new(move |chunk| {
            if tx.send(chunk).is_ok() {
                sent.fetch_add(1, Ordering::Relaxed);
                true
            } else {
                gone.store(true, Ordering::Relaxed);
                false
            }
        })
    };
    let mut task = tokio::spawn({
        let state = state.clone();
        async move {
            let finished = state
                .execute_streaming(&pipeline, request, Some(sink))
                .await;
            if sent.load(Ordering::Relaxed) > 0 {
                let how = if gone.load(Ordering::Relaxed) {
                    "client_gone"
                } else if finished.is_ok() {
                    "completed"
                } else {
                    "error"
                };
                state.metrics.stream_ended(&pipeline, how);
                // A whole answer is offered for shadowing by its route; a streamed one here.
                if let Ok((request, outcome)) = &finished {
                    state.shadow(&pipeline, request, outcome);
                }
            }
            finished
        }
    });
    let joined = |r: Result<Finished, tokio::task::JoinError>| {
        r.unwrap_or_else(|e| Err(Refusal::Internal(format!("worker failed: {e}"))))
    };
    let (first, end) = tokio::select! {
        chunk = rx.recv() => match chunk {
            Some(chunk) => {
                let end: Ending = Box::pin(async move { joined(task.await) });
                (chunk, end)
            }
            // The worker dropped the sink without emitting: it has finished.
            None => return Relay::Whole(Box::new(joined(task.await))),
        },
        done = &mut task => match rx.try_recv() {
            // It emitted, then finished before we looked: still a stream.
            Ok(chunk) => {
                let done = joined(done);
                let end: Ending = Box::pin(async move { done });
                (chunk, end)
            }
            Err(_) => return Relay::Whole(Box::new(joined(done))),
        },
    };
    let mut queued: VecDeque<Bytes> = format.opening().iter().map(|d| event(d)).collect();
    queued.extend(format.chunk(&first).map(|d| event(&d)));
    let request_id = id.clone();
    let body = Pumping {
        queued,
        rx: Some(rx),
        end: Some(end),
        format,
        state,
        id,
    };
    let stream = futures_util::stream::unfold(body, |mut body| async move {
        let frame = body.next_frame().await?;
        Some((Ok::<Bytes, std::convert::Infallible>(frame), body))
    });
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert("x-request-id", v);
    }
    Relay::Streamed(response)
}

/// The body's state: frames ready to send, the chunks still to come, then the end.
struct Pumping<F> {
    queued: VecDeque<Bytes>,
    rx: Option<mpsc::UnboundedReceiver<ChatChunk>>,
    end: Option<Ending>,
    format: F,
    state: Arc<AppState>,
    id: String,
}

impl<F: EventFormat> Pumping<F> {
    async fn next_frame(&mut self) -> Option<Bytes> {
        loop {
            if let Some(frame) = self.queued.pop_front() {
                return Some(frame);
            }
            if let Some(rx) = &mut self.rx {
                match rx.recv().await {
                    Some(chunk) => {
                        if let Some(data) = self.format.chunk(&chunk) {
                            return Some(event(&data));
                        }
                    }
                    None => self.rx = None,
                }
                continue;
            }
            let end = self.end.take()?;
            match end.await {
                Ok((request, outcome)) => {
                    for data in self.format.closing(&request, &outcome) {
                        self.queued.push_back(event(&data));
                    }
                }
                Err(refusal) => {
                    let error = ApiError::from_refusal(&self.state, refusal, &self.id);
                    tracing::warn!(request_id = %self.id, status = error.status.as_u16(), "stream ended with an error event");
                    self.queued.push_back(event(&error.body().to_string()));
                }
            }
        }
    }
}

/// One server-sent event carrying `data` (one line: JSON has no raw newlines).
fn event(data: &str) -> Bytes {
    Bytes::from(format!("data: {data}\n\n"))
}
