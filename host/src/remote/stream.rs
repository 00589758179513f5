//! Streamed chat completions: the provider's server-sent events read one chunk at a time,
//! as the guest asks for them (WIT `remote.stream-chat` and `chat-stream`).
//!
//! Opening a stream takes the same steps as any call (endpoint, budget, breaker, retries
//! before the response starts; see the parent module), then reads until the first chunk
//! that carries something (text, a finish reason): only then is the stream handed over,
//! so a failure before any text is an ordinary failed call a guest can fall back from.
//! After that nothing is retried: a broken stream ends with an error.
//!
//! Accounting happens once, when the stream ends, fails or is dropped early: usage is the
//! provider's final usage, or, when it sent none, a count (characters / 4, rounded up, of
//! the prompt and of the text received), priced with the endpoint's prices and charged to
//! the budget like any call. Dropping a [`ChatStream`] closes the connection, so the
//! provider stops generating.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::breaker::Admission;
use super::endpoint::Endpoint;
use super::openai::{self, ChatRequest};
use super::sse::{Event, Events};
use super::transport::{self, Payload, read_error_counted};
use super::{CallRecord, FailedCall, Remote, RemoteError, Usage, accounting};
use crate::config::EndpointKind;

/// Characters per token when the provider reports no usage (OpenAI's rule of thumb).
const CHARS_PER_TOKEN: usize = 4;

/// One piece of a streamed completion, as the guest and the client see it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatChunk {
    /// Text since the previous chunk.
    pub delta: String,
    /// Set on the chunk that ends generation.
    pub finish_reason: Option<String>,
    /// Set on the last chunk: the stream's usage (reported or counted).
    pub usage: Option<Usage>,
}

/// How a finished stream ended, for the request's ledger: like any call's result.
pub type Settled = Result<CallRecord, FailedCall>;

/// A response body counted and capped like [`transport::BodyReader`], but owned, so the
/// stream can outlive the call that opened it.
struct CountedBody {
    inner: Box<dyn Read + Send>,
    limit: u64,
    read: u64,
}

impl Read for CountedBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(io::Error::other(
                "response exceeds the endpoint's size limit",
            ));
        }
        Ok(n)
    }
}

/// An open streamed chat completion. Ends (and is accounted for) when [`Self::next_chunk`]
/// reaches the end or an error, or when it is cancelled or dropped.
pub struct ChatStream {
    remote: Arc<Remote>,
    endpoint: Arc<Endpoint>,
    name: String,
    admission: Admission,
    started: Instant,
    attempts: u32,
    bytes_sent: u64,
    bytes_before: u64,
    events: Option<Events<CountedBody>>,
    /// The first chunk, read before the stream was handed over.
    pending: Option<ChatChunk>,
    model: Option<String>,
    usage: Option<Usage>,
    prompt_chars: usize,
    text_chars: usize,
    /// The final chunk (with the usage) has been given out.
    last_given: bool,
    /// The caller's deadline, not the endpoint's timeout, bounds the stream.
    caller_deadline: bool,
    settled: Option<Settled>,
}

impl Remote {
    /// Opens a streamed chat completion on endpoint `name`, returning once its first
    /// chunk has arrived (see the module doc).
    pub fn stream_chat(
        self: &Arc<Self>,
        name: &str,
        request: &ChatRequest,
        request_id: &str,
        deadline: Instant,
    ) -> Result<ChatStream, FailedCall> {
        let started = Instant::now();
        let (endpoint, admission) = self.admit(name, EndpointKind::Chat, started)?;
        let endpoint = endpoint.clone();
        let caller_deadline = deadline < started + endpoint.config.timeout();
        let deadline = deadline.min(started + endpoint.config.timeout());
        let model = request
            .model
            .clone()
            .unwrap_or_else(|| endpoint.config.model.clone());
        let body = openai::chat_body(request, &model, true);
        let call_id = format!(
            "{request_id}-{}",
            self.next_call.fetch_add(1, Ordering::Relaxed)
        );
        let payload = Payload {
            body: &body,
            content_type: "application/json",
            accept: "text/event-stream",
            call_id: &call_id,
        };
        let opened = match transport::open(&endpoint, &payload, deadline) {
            Ok(opened) => opened,
            Err(failed) => {
                let latency = started.elapsed();
                endpoint.finish(admission, Some(&failed.error), latency);
                tracing::warn!(endpoint = name, attempts = failed.attempts, error = %failed.error, "stream failed to open");
                return Err(FailedCall::after_trying(name, failed, latency));
            }
        };
        let mut stream = ChatStream {
            remote: self.clone(),
            endpoint: endpoint.clone(),
            name: name.to_owned(),
            admission,
            started,
            attempts: opened.attempts,
            bytes_sent: opened.bytes_sent,
            bytes_before: opened.bytes_received,
            events: None,
            pending: None,
            model: None,
            usage: None,
            prompt_chars: request
                .messages
                .iter()
                .map(|m| m.content.chars().count())
                .sum(),
            text_chars: 0,
            last_given: false,
            caller_deadline,
            settled: None,
        };
        let limit = endpoint.config.max_response_bytes;
        if opened.content_type.starts_with("text/event-stream") {
            stream.events = Some(Events::new(CountedBody {
                inner: Box::new(opened.body.into_reader()),
                limit,
                read: 0,
            }));
        } else {
            // A provider that ignores `stream: true` answers with one JSON completion:
            // relay it as a stream of one chunk.
            let mut reader = opened.body.into_reader();
            let mut body = transport::BodyReader::new(&mut reader, limit);
            let parsed = openai::parse_chat(name, &mut body, &opened.content_type);
            stream.bytes_before += body.bytes_read();
            match parsed {
                Ok(parsed) => {
                    stream.model = parsed.model;
                    stream.usage = Some(parsed.usage);
                    stream.text_chars = parsed.value.content.chars().count();
                    stream.pending = Some(ChatChunk {
                        delta: parsed.value.content,
                        finish_reason: Some(parsed.value.finish_reason),
                        usage: None,
                    });
                    return Ok(stream);
                }
                Err(error) => return Err(stream.fail(error)),
            }
        }
        match stream.read_chunk() {
            Ok(Some(first)) => {
                stream.pending = Some(first);
                Ok(stream)
            }
            Ok(None) => Err(stream.fail(RemoteError::BadResponse(format!(
                "endpoint {name:?} ended its stream without sending anything"
            )))),
            Err(error) => Err(stream.fail(error)),
        }
    }
}

impl ChatStream {
    /// The endpoint's name.
    pub fn endpoint(&self) -> &str {
        &self.name
    }

    /// The next chunk; `Ok(None)` once the stream has ended (the chunk before carries the
    /// usage). After an error or the end, [`Self::settled`] has the call's record.
    pub fn next_chunk(&mut self) -> Result<Option<ChatChunk>, FailedCall> {
        if let Some(first) = self.pending.take() {
            return Ok(Some(first));
        }
        if self.last_given || self.settled.is_some() {
            return Ok(None);
        }
        match self.read_chunk() {
            Ok(Some(chunk)) => Ok(Some(chunk)),
            Ok(None) => {
                let usage = self.final_usage();
                self.last_given = true;
                self.settle(None);
                Ok(Some(ChatChunk {
                    delta: String::new(),
                    finish_reason: None,
                    usage: Some(usage),
                }))
            }
            Err(error) => {
                let failed = self.fail(error);
                Err(failed)
            }
        }
    }

    /// The call's record so far (final once the stream has ended).
    pub fn record(&self) -> CallRecord {
        match &self.settled {
            Some(Ok(record)) => record.clone(),
            _ => self.record_now(),
        }
    }

    /// The call's outcome, once it has ended; taken once, for the request's ledger.
    pub fn take_settled(&mut self) -> Option<Settled> {
        self.settled.take()
    }

    /// Ends the stream now, closing the connection (the provider stops generating); the
    /// call is accounted for with what was received. Returns its outcome, if not taken.
    pub fn cancel(&mut self) -> Option<Settled> {
        if self.settled.is_none() && !self.last_given {
            tracing::info!(endpoint = %self.name, "stream cancelled before its end");
            self.settle(None);
        }
        self.events = None;
        self.last_given = true;
        self.settled.take()
    }

    /// The next chunk that carries text or a finish reason; `None` at `[DONE]`. Usage and
    /// model are kept for the record.
    fn read_chunk(&mut self) -> Result<Option<ChatChunk>, RemoteError> {
        let name = self.name.clone();
        let Some(events) = self.events.as_mut() else {
            return Ok(None);
        };
        loop {
            let event = match events.next_event() {
                Ok(event) => event,
                Err(e) => {
                    let read = events.get_ref().read;
                    let over = read > events.get_ref().limit;
                    return Err(match read_error_counted(&name, read, over, &e) {
                        // Name the bound that ran out: a stream longer than the
                        // pipeline's deadline is the operator's to fix there.
                        RemoteError::Timeout(_) if self.caller_deadline => {
                            RemoteError::Timeout(format!(
                                "the request's deadline passed while endpoint {name:?} was \
                                 still streaming ({read} bytes in); a streamed answer must \
                                 finish within the pipeline's deadline_ms"
                            ))
                        }
                        error => error,
                    });
                }
            };
            let data = match event {
                Event::Done => return Ok(None),
                Event::Ended => {
                    return Err(RemoteError::Unavailable(format!(
                        "endpoint {name:?} ended the stream before [DONE]"
                    )));
                }
                Event::Data(data) => data,
            };
            let piece = openai::parse_chunk(&data).map_err(|e| {
                RemoteError::BadResponse(format!(
                    "endpoint {name:?} sent a malformed stream chunk: {e}"
                ))
            })?;
            if piece.model.is_some() {
                self.model = piece.model;
            }
            if piece.usage.is_some() {
                self.usage = piece.usage;
            }
            if piece.text.is_empty() && piece.finish_reason.is_none() {
                continue;
            }
            self.text_chars += piece.text.chars().count();
            return Ok(Some(ChatChunk {
                delta: piece.text,
                finish_reason: piece.finish_reason,
                usage: None,
            }));
        }
    }

    fn bytes_received(&self) -> u64 {
        self.bytes_before + self.events.as_ref().map_or(0, |e| e.get_ref().read)
    }

    /// The provider's usage, or the count when it sent none.
    fn final_usage(&self) -> Usage {
        self.usage.unwrap_or_else(|| Usage {
            input_tokens: tokens(self.prompt_chars),
            output_tokens: tokens(self.text_chars),
            audio_seconds: 0.0,
        })
    }

    fn record_now(&self) -> CallRecord {
        let usage = self.final_usage();
        CallRecord {
            endpoint: self.name.clone(),
            model: self
                .model
                .clone()
                .unwrap_or_else(|| self.endpoint.config.model.clone()),
            usage,
            cost_micro_usd: accounting::cost_micro_usd(&self.endpoint.config.price, &usage),
            bytes_sent: self.bytes_sent,
            bytes_received: self.bytes_received(),
            latency: self.started.elapsed(),
            attempts: self.attempts,
        }
    }

    /// Ends the call with `error` and returns its failure record.
    fn fail(&mut self, error: RemoteError) -> FailedCall {
        self.settle(Some(error));
        self.events = None;
        match self.settled.clone() {
            Some(Err(failed)) => failed,
            _ => unreachable_failure(&self.name),
        }
    }

    /// Accounts for the call once: breaker and health, price, budget, log.
    fn settle(&mut self, error: Option<RemoteError>) {
        if self.settled.is_some() {
            return;
        }
        let latency = self.started.elapsed();
        self.endpoint
            .finish(self.admission, error.as_ref(), latency);
        let record = self.record_now();
        // What was received is billed whether the stream ended well or not.
        self.remote
            .budget
            .charge(record.cost_micro_usd, Instant::now());
        self.settled = Some(match error {
            None => {
                tracing::info!(
                    endpoint = %self.name,
                    attempts = record.attempts,
                    bytes_sent = record.bytes_sent,
                    bytes_received = record.bytes_received,
                    latency_ms = latency.as_millis() as u64,
                    cost_micro_usd = record.cost_micro_usd,
                    "remote stream"
                );
                Ok(record)
            }
            Some(error) => {
                tracing::warn!(endpoint = %self.name, bytes_received = record.bytes_received, error = %error, "remote stream failed");
                Err(FailedCall {
                    endpoint: self.name.clone(),
                    error,
                    attempts: record.attempts,
                    bytes_sent: record.bytes_sent,
                    bytes_received: record.bytes_received,
                    latency,
                    retry_after: None,
                    cost_micro_usd: record.cost_micro_usd,
                })
            }
        });
    }
}

impl Drop for ChatStream {
    fn drop(&mut self) {
        // Accounts for a stream nobody finished; the connection closes with `events`.
        let _ = self.cancel();
    }
}

fn tokens(chars: usize) -> u32 {
    u32::try_from(chars.div_ceil(CHARS_PER_TOKEN)).unwrap_or(u32::MAX)
}

/// `fail` always settles with an error first; this only keeps the types honest.
fn unreachable_failure(name: &str) -> FailedCall {
    FailedCall::refused(
        name,
        RemoteError::Unavailable(format!("endpoint {name:?}: the stream ended")),
        Instant::now(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_tokens_by_characters_rounding_up() {
        assert_eq!(tokens(0), 0);
        assert_eq!(tokens(1), 1);
        assert_eq!(tokens(8), 2);
        assert_eq!(tokens(9), 3);
    }
}
