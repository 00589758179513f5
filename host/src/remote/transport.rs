//! One remote call over HTTP: admission by the circuit breaker, attempts with retries,
//! backoff and `Retry-After`, size limits enforced while reading, and the accounting of
//! bytes, attempts and time.
//!
//! Retries happen only where the provider cannot have acted on the request: a connection
//! that was never made (refused, unreachable, no such host), a request that could not be
//! written whole, 429 and 5xx. A connection reset or closed while the answer is awaited is
//! not retried, nor is a timeout: the provider may have started the completion. Once a 2xx
//! response has started, a broken body is reported, never retried. So a request is never
//! sent again once the provider may have carried it out. Every attempt carries the same
//! `x-request-id` / `idempotency-key`, so the provider can deduplicate too. The call never
//! outlives `deadline` (the guest's request deadline or the endpoint's timeout, whichever
//! comes first): host calls cannot be interrupted by the guest's epoch deadline, so the
//! host bounds them itself.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use super::RemoteError;
use super::backoff;
use super::endpoint::Endpoint;
use super::health::RateLimits;

/// Bytes of an error body kept for the message.
const MAX_ERROR_BODY: u64 = 8 * 1024;

/// A request body and how to label it.
pub struct Payload<'a> {
    /// The bytes to POST.
    pub body: &'a [u8],
    /// Their content type.
    pub content_type: &'a str,
    /// The `Accept` header.
    pub accept: &'a str,
    /// Id sent as `x-request-id` and `idempotency-key` on every attempt.
    pub call_id: &'a str,
}

/// A successful call's value and what it took to get it.
#[derive(Debug)]
pub struct Delivered<T> {
    /// What the reader made of the response body.
    pub value: T,
    /// Attempts made.
    pub attempts: u32,
    /// Request bytes sent over all attempts.
    pub bytes_sent: u64,
    /// Response bytes received over all attempts.
    pub bytes_received: u64,
}

/// A failed call and what it cost anyway (for accounting and metrics).
#[derive(Debug)]
pub struct Failed {
    /// Why it failed.
    pub error: RemoteError,
    /// Attempts made.
    pub attempts: u32,
    /// Request bytes sent over all attempts.
    pub bytes_sent: u64,
    /// Response bytes received over all attempts.
    pub bytes_received: u64,
}

/// The response body reader handed to a parser: counts bytes and enforces the limit.
pub struct BodyReader<'a> {
    inner: &'a mut dyn Read,
    limit: u64,
    read: u64,
    exceeded: bool,
}

impl Read for BodyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            self.exceeded = true;
            return Err(io::Error::other(
                "response exceeds the endpoint's size limit",
            ));
        }
        Ok(n)
    }
}

impl<'a> BodyReader<'a> {
    /// A reader over `inner` that fails once more than `limit` bytes have come (the
    /// parsers in [`super::openai`] take one; the fuzz targets build their own).
    pub fn new(inner: &'a mut dyn Read, limit: u64) -> Self {
        Self {
            inner,
            limit,
            read: 0,
            exceeded: false,
        }
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// Reads the whole body.
    pub fn read_all(&mut self) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.read_to_end(&mut out)?;
        Ok(out)
    }
}

/// Maps an I/O error met while reading a response body to the call's error.
pub fn read_error(endpoint: &str, reader: &BodyReader<'_>, error: &io::Error) -> RemoteError {
    if reader.exceeded {
        return RemoteError::TooLarge(format!(
            "endpoint {endpoint:?} sent more than its limit of {} response bytes",
            reader.limit
        ));
    }
    read_error_counted(endpoint, reader.read, false, error)
}

/// [`read_error`] for a reader that counted `read` bytes and went past its limit or not.
pub fn read_error_counted(
    endpoint: &str,
    read: u64,
    exceeded: bool,
    error: &io::Error,
) -> RemoteError {
    if exceeded {
        return RemoteError::TooLarge(format!(
            "endpoint {endpoint:?} sent more than its response size limit ({read} bytes in)"
        ));
    }
    let timed_out = error.kind() == io::ErrorKind::TimedOut
        || error
            .get_ref()
            .and_then(|e| e.downcast_ref::<ureq::Error>())
            .is_some_and(|e| matches!(e, ureq::Error::Timeout(_)));
    if timed_out {
        return RemoteError::Timeout(format!(
            "endpoint {endpoint:?} stopped sending its response before the deadline"
        ));
    }
    RemoteError::Unavailable(format!(
        "endpoint {endpoint:?} dropped the connection while sending its response ({read} bytes in)"
    ))
}

/// A 2xx response whose body is still to be read: what [`open`] returns.
pub struct Opened {
    /// The unread body.
    pub body: ureq::Body,
    /// The response's content type.
    pub content_type: String,
    /// Attempts made.
    pub attempts: u32,
    /// Request bytes sent over all attempts.
    pub bytes_sent: u64,
    /// Response bytes received before this body (error bodies of earlier attempts).
    pub bytes_received: u64,
}

/// POSTs `payload` to `endpoint` and hands a 2xx body to `parse`, retrying as the module
/// describes. `parse` gets the reader and the response's content type.
pub fn post<T>(
    endpoint: &Endpoint,
    payload: &Payload<'_>,
    deadline: Instant,
    mut parse: impl FnMut(&mut BodyReader<'_>, &str) -> Result<T, RemoteError>,
) -> Result<Delivered<T>, Failed> {
    let mut opened = open(endpoint, payload, deadline)?;
    let mut body = opened.body.as_reader();
    let mut reader = BodyReader::new(&mut body, endpoint.config.max_response_bytes);
    let parsed = parse(&mut reader, &opened.content_type);
    let bytes_received = opened.bytes_received + reader.read;
    match parsed {
        Ok(value) => Ok(Delivered {
            value,
            attempts: opened.attempts,
            bytes_sent: opened.bytes_sent,
            bytes_received,
        }),
        Err(error) => Err(Failed {
            error,
            attempts: opened.attempts,
            bytes_sent: opened.bytes_sent,
            bytes_received,
        }),
    }
}

/// POSTs `payload` to `endpoint`, retrying as the module describes, until a 2xx response
/// starts; its body is left unread (a stream is read as it arrives).
pub fn open(
    endpoint: &Endpoint,
    payload: &Payload<'_>,
    deadline: Instant,
) -> Result<Opened, Failed> {
    let config = &endpoint.config;
    let name = config.name.as_str();
    let started = Instant::now();
    let mut tally = Failed {
        error: RemoteError::Unavailable(String::new()),
        attempts: 0,
        bytes_sent: 0,
        bytes_received: 0,
    };
    let fail = |mut tally: Failed, error| {
        tally.error = error;
        Err(tally)
    };
    if payload.body.len() as u64 > config.max_request_bytes {
        return fail(
            tally,
            RemoteError::TooLarge(format!(
                "request of {} bytes exceeds endpoint {name:?}'s limit of {} bytes",
                payload.body.len(),
                config.max_request_bytes
            )),
        );
    }
    let url = format!(
        "{}{}",
        config.base_url.trim_end_matches('/'),
        config.route()
    );
    loop {
        tally.attempts += 1;
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            let error = RemoteError::Timeout(format!(
                "endpoint {name:?} did not answer within the deadline ({} attempts)",
                tally.attempts - 1
            ));
            return fail(tally, error);
        }
        let mut request = endpoint
            .agent
            .post(&url)
            .header("content-type", payload.content_type)
            .header("accept", payload.accept)
            .header("x-request-id", payload.call_id)
            .header("idempotency-key", payload.call_id);
        if let Some(key) = &endpoint.key {
            request = request.header("authorization", key.bearer());
        }
        let request = request
            .config()
            .timeout_global(Some(remaining))
            .timeout_connect(Some(
                remaining.min(Duration::from_millis(config.connect_timeout_ms)),
            ))
            .http_status_as_error(false)
            .build();
        tally.bytes_sent += payload.body.len() as u64;
        let retry_in = match request.send(payload.body) {
            Err(ureq::Error::Timeout(_)) => {
                let error = RemoteError::Timeout(format!(
                    "endpoint {name:?} did not answer within {} ms",
                    started.elapsed().as_millis()
                ));
                return fail(tally, error);
            }
            Err(e) => {
                let error = RemoteError::Unavailable(endpoint.scrub(&format!(
                    "cannot reach endpoint {name:?}: {e} (after {} attempts)",
                    tally.attempts
                )));
                if !is_transient(&e) {
                    return fail(tally, error);
                }
                (error, None)
            }
            Ok(mut response) => {
                let status = response.status().as_u16();
                let header = |h: &str| {
                    response
                        .headers()
                        .get(h)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                endpoint.observe_rate_limits(RateLimits::from_headers(header));
                let content_type = header("content-type").unwrap_or_default();
                let retry_after =
                    header("retry-after").and_then(|v| backoff::parse_retry_after(&v));
                if (200..300).contains(&status) {
                    return Ok(Opened {
                        body: response.into_body(),
                        content_type,
                        attempts: tally.attempts,
                        bytes_sent: tally.bytes_sent,
                        bytes_received: tally.bytes_received,
                    });
                }
                let mut body = response.body_mut().as_reader();
                let mut reader = BodyReader::new(&mut body, MAX_ERROR_BODY);
                let text = reader.read_all().unwrap_or_default();
                tally.bytes_received += reader.read;
                let message = endpoint.scrub(&provider_message(&text));
                match status {
                    429 => (
                        RemoteError::RateLimited {
                            message: format!(
                                "endpoint {name:?} answered 429 (rate limited) after {} attempts: {message}",
                                tally.attempts
                            ),
                            retry_after,
                        },
                        retry_after,
                    ),
                    500..=599 => (
                        RemoteError::Unavailable(format!(
                            "endpoint {name:?} answered {status} after {} attempts: {message}",
                            tally.attempts
                        )),
                        retry_after,
                    ),
                    _ => return fail(tally, RemoteError::Rejected { status, message }),
                }
            }
        };
        let (error, asked) = retry_in;
        if tally.attempts >= config.max_attempts {
            return fail(tally, error);
        }
        let max_wait = Duration::from_millis(config.max_backoff_ms);
        let wait = match asked {
            // The provider asked for longer than we are willing to hold the request.
            Some(asked) if asked > max_wait => return fail(tally, error),
            Some(asked) => asked,
            None => backoff::delay(
                tally.attempts - 1,
                Duration::from_millis(config.backoff_ms),
                max_wait,
            ),
        };
        if Instant::now() + wait >= deadline {
            return fail(tally, error);
        }
        tracing::debug!(endpoint = name, attempt = tally.attempts, wait_ms = wait.as_millis() as u64, error = %error, "retrying remote call");
        std::thread::sleep(wait);
    }
}

/// Failures that happened before the provider could have acted on the request: no
/// connection was made, or writing the request failed (a broken pipe: the rest of the
/// request never arrived, so no handler had it whole). A reset or an early end of the
/// connection is not one of them: ureq reports those the same way whether they came
/// before the request was written or after, while the provider was working on it, and a
/// chat completion carried out twice is billed twice. (Stale pooled connections are not
/// the usual cause: ureq checks a pooled connection is still open before reusing it.)
fn is_transient(error: &ureq::Error) -> bool {
    match error {
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => true,
        ureq::Error::Io(e) => matches!(
            e.kind(),
            io::ErrorKind::ConnectionRefused
                | io::ErrorKind::HostUnreachable
                | io::ErrorKind::NetworkUnreachable
                | io::ErrorKind::NetworkDown
                | io::ErrorKind::AddrNotAvailable
                | io::ErrorKind::BrokenPipe
        ),
        _ => false,
    }
}

/// The provider's error message: OpenAI-style `{"error": {"message": ...}}` when present,
/// else the body text, shortened.
fn provider_message(body: &[u8]) -> String {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let message = json
        .as_ref()
        .and_then(|v| {
            v.pointer("/error/message")
                .or_else(|| v.get("message"))
                .or_else(|| v.get("error"))
        })
        .and_then(|m| m.as_str().map(str::to_owned));
    let text = message.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    let mut text: String = text.chars().take(500).collect();
    if text.is_empty() {
        text = "(no message)".into();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_messages_prefer_the_openai_error_shape() {
        let body = br#"{"error":{"message":"The model `x` does not exist","type":"invalid_request_error"}}"#;
        assert_eq!(provider_message(body), "The model `x` does not exist");
        assert_eq!(
            provider_message(b"<html>Bad Gateway</html>"),
            "<html>Bad Gateway</html>"
        );
        assert_eq!(provider_message(b""), "(no message)");
        assert_eq!(provider_message(&[b'x'; 2000]).len(), 500);
    }
}
