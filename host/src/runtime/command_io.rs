//! The standard streams of a `wasi:cli` command served as a pipeline: stdin is the
//! request's body, stdout becomes the answer's body, stderr goes to the log.
//!
//! wasmtime-wasi's memory pipes almost fit, but the host must tell "the guest wrote past
//! its cap" apart from any other failure, so the request can end with an error naming the
//! limit (`limits.response_bytes` for stdout, `limits.log_bytes` for stderr) instead of a
//! bare trap; and stdin must be settable per call, since a sandbox is built before its
//! request is handed over. A write past the cap traps the guest at once (nothing past
//! the cap is buffered, and a runaway writer stops there rather than at its deadline)
//! and sets a flag the host reads afterwards.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use wasmtime_wasi::cli::{IsTerminal, StdinStream, StdoutStream};
use wasmtime_wasi::p2::{InputStream, OutputStream, Pollable, StreamError};

/// A command's stdin: the request body of the current call, read once.
#[derive(Clone, Default)]
pub struct RequestStdin {
    buffer: Arc<Mutex<Bytes>>,
}

impl RequestStdin {
    /// Makes `body` what the guest reads next (the rest of an earlier body is dropped).
    pub fn set(&self, body: &[u8]) {
        *lock(&self.buffer) = Bytes::copy_from_slice(body);
    }

    fn take(&self, size: usize) -> Bytes {
        let mut buffer = lock(&self.buffer);
        let size = size.min(buffer.len());
        buffer.split_to(size)
    }
}

impl IsTerminal for RequestStdin {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdinStream for RequestStdin {
    fn p2_stream(&self) -> Box<dyn InputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncRead + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl InputStream for RequestStdin {
    fn read(&mut self, size: usize) -> Result<Bytes, StreamError> {
        let read = self.take(size);
        if read.is_empty() && size > 0 {
            return Err(StreamError::Closed);
        }
        Ok(read)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for RequestStdin {
    async fn ready(&mut self) {}
}

impl AsyncRead for RequestStdin {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let read = self.take(buf.remaining());
        buf.put_slice(&read);
        Poll::Ready(Ok(()))
    }
}

/// An output stream that keeps at most `cap` bytes and traps the guest on a write past
/// them, remembering that it did.
#[derive(Clone)]
pub struct CappedOutput {
    cap: usize,
    buffer: Arc<Mutex<BytesMut>>,
    overflowed: Arc<AtomicBool>,
}

impl CappedOutput {
    /// An empty stream keeping at most `cap` bytes.
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            buffer: Arc::default(),
            overflowed: Arc::default(),
        }
    }

    /// Takes what was written so far, leaving the stream empty.
    pub fn take(&self) -> Vec<u8> {
        lock(&self.buffer).split().to_vec()
    }

    /// What was written so far.
    pub fn contents(&self) -> Vec<u8> {
        lock(&self.buffer).to_vec()
    }

    /// Whether the guest tried to write past the cap.
    pub fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Relaxed)
    }

    fn push(&self, bytes: &[u8]) -> Result<(), usize> {
        let mut buffer = lock(&self.buffer);
        if bytes.len() > self.cap - buffer.len() {
            self.overflowed.store(true, Ordering::Relaxed);
            return Err(self.cap);
        }
        buffer.extend_from_slice(bytes);
        Ok(())
    }

    fn room(&self) -> usize {
        // Never 0: a guest told there is no room would wait for room forever (until its
        // deadline); one more byte makes it write, and trip the cap.
        (self.cap - lock(&self.buffer).len()).max(1)
    }
}

fn past_cap(cap: usize) -> String {
    format!("wrote past the host's cap of {cap} bytes")
}

impl IsTerminal for CappedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for CappedOutput {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.push(&bytes)
            .map_err(|cap| StreamError::Trap(wasmtime::format_err!("{}", past_cap(cap))))
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(self.room())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedOutput {
    async fn ready(&mut self) {}
}

impl AsyncWrite for CappedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(
            self.push(buf)
                .map(|()| buf.len())
                .map_err(|cap| io::Error::other(past_cap(cap))),
        )
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_reads_the_body_set_for_the_call_then_closes() {
        let stdin = RequestStdin::default();
        stdin.set(b"hello");
        let mut stream = stdin.p2_stream();
        assert_eq!(&stream.read(3).expect("read")[..], b"hel");
        assert_eq!(&stream.read(10).expect("read")[..], b"lo");
        assert!(matches!(stream.read(10), Err(StreamError::Closed)));
    }

    #[test]
    fn output_keeps_up_to_its_cap_and_flags_a_write_past_it() {
        let out = CappedOutput::new(4);
        let mut stream = out.p2_stream();
        stream.write(Bytes::from_static(b"abcd")).expect("fits");
        assert!(!out.overflowed());
        assert_eq!(stream.check_write().expect("room"), 1, "never zero");
        let err = stream
            .write(Bytes::from_static(b"e"))
            .expect_err("past the cap");
        assert!(matches!(err, StreamError::Trap(_)));
        assert!(out.overflowed());
        assert_eq!(out.take(), b"abcd");
        assert!(out.contents().is_empty());
    }
}
