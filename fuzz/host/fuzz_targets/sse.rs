//! Server-sent events from upstream: `sse::for_each_data` on arbitrary bytes delivered in
//! arbitrary read sizes, and `openai::parse_chat` on the same bytes as a
//! `text/event-stream` chat completion under a size limit.
//!
//! The events must not depend on how the bytes were split across reads (a slow upstream
//! sends a line in pieces), and parsing must give a completion or a typed error, never a
//! panic.
//!
//! Input: one byte for the read size (1 to 16 bytes per read), two for the size limit
//! (little-endian, in units of 16 bytes), then the body; `seeds/sse/` has real streams.

#![no_main]

use std::io::{self, Read};

use hybrid::remote::openai;
use hybrid::remote::{BodyReader, sse};
use libfuzzer_sys::fuzz_target;

/// Hands out `body` in reads of at most `step` bytes.
struct Trickle<'a> {
    body: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.body.len());
        buf[..n].copy_from_slice(&self.body[..n]);
        self.body = &self.body[n..];
        Ok(n)
    }
}

/// Every event's data and how the stream ended, or the error's kind.
fn events(reader: impl Read) -> Result<(Vec<String>, bool), io::ErrorKind> {
    let mut seen = Vec::new();
    let done = sse::for_each_data(reader, |data| {
        seen.push(data.to_owned());
        Ok(())
    })
    .map_err(|e| e.kind())?;
    Ok((seen, done))
}

fuzz_target!(|data: &[u8]| {
    let [step, lo, hi, body @ ..] = data else {
        return;
    };
    let step = usize::from(step % 16) + 1;
    let limit = u64::from(u16::from_le_bytes([*lo, *hi])) * 16;

    let whole = events(body);
    let trickled = events(Trickle { body, step });
    assert_eq!(whole, trickled, "events depend on read sizes (step {step})");
    if let Ok((seen, _)) = &whole {
        assert!(seen.iter().all(|d| !d.is_empty()));
    }

    let mut rest = body;
    let mut reader = BodyReader::new(&mut rest, limit);
    let _ = openai::parse_chat("fuzz", &mut reader, "text/event-stream");
});
