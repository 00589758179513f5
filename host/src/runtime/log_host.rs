//! The host side of the WIT `log` interface: guest messages become `tracing` events
//! tagged with the pipeline and request id.
//!
//! A guest is untrusted, so its logging is bounded: each message is cut at
//! [`MAX_MESSAGE_BYTES`], and a request may log at most its pipeline's
//! `limits.log_lines` lines and `limits.log_bytes` bytes. The first line past either is
//! dropped, like every later one, and the request then ends with an error naming the
//! limit (a log flood is a bug or an attack, and a silent cut would hide it).

use super::bindings::log::{self, Level};
use crate::config::{Limit, Limits};

/// Longest message kept, in bytes; longer ones are cut at a character boundary.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// Per-request context for `log`.
pub struct LogCtx {
    pipeline: String,
    request_id: String,
    /// Lines logged so far.
    pub lines: u32,
    /// Bytes logged so far (before cutting).
    pub bytes: u64,
    max_lines: u32,
    max_bytes: u64,
    /// The log limit this request went past, if any.
    pub limit_hit: Option<Limit>,
}

impl LogCtx {
    /// A context for one request of `pipeline`, with the default limits.
    pub fn new(pipeline: &str, request_id: &str) -> Self {
        let defaults = Limits::default();
        Self {
            pipeline: pipeline.to_owned(),
            request_id: request_id.to_owned(),
            lines: 0,
            bytes: 0,
            max_lines: defaults.log_lines,
            max_bytes: defaults.log_bytes,
            limit_hit: None,
        }
    }

    /// Allows `lines` more lines and `bytes` more bytes (a new request starts over).
    pub fn set_limits(&mut self, lines: u32, bytes: u64) {
        (self.lines, self.bytes) = (0, 0);
        (self.max_lines, self.max_bytes) = (lines, bytes);
        self.limit_hit = None;
    }
}

impl log::Host for LogCtx {
    fn log(&mut self, level: Level, message: String) {
        if self.limit_hit.is_some() {
            return;
        }
        let bytes = self.bytes.saturating_add(message.len() as u64);
        if self.lines >= self.max_lines {
            self.limit_hit = Some(Limit::LogLines);
            return;
        }
        if bytes > self.max_bytes {
            self.limit_hit = Some(Limit::LogBytes);
            return;
        }
        self.lines += 1;
        self.bytes = bytes;
        let message = truncate(&message, MAX_MESSAGE_BYTES);
        let (pipeline, request_id) = (self.pipeline.as_str(), self.request_id.as_str());
        match level {
            Level::Trace => tracing::trace!(target: "guest", pipeline, request_id, "{message}"),
            Level::Debug => tracing::debug!(target: "guest", pipeline, request_id, "{message}"),
            Level::Info => tracing::info!(target: "guest", pipeline, request_id, "{message}"),
            Level::Warn => tracing::warn!(target: "guest", pipeline, request_id, "{message}"),
            Level::Error => tracing::error!(target: "guest", pipeline, request_id, "{message}"),
        }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use log::Host;

    #[test]
    fn truncates_on_a_char_boundary() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }

    #[test]
    fn caps_lines_per_request() {
        let mut ctx = LogCtx::new("p", "r");
        ctx.set_limits(10, 1 << 20);
        for _ in 0..15 {
            ctx.log(Level::Debug, "x".into());
        }
        assert_eq!(ctx.lines, 10);
        assert_eq!(ctx.limit_hit, Some(Limit::LogLines));
        ctx.set_limits(10, 1 << 20);
        assert_eq!(
            (ctx.lines, ctx.limit_hit),
            (0, None),
            "a new request starts over"
        );
    }

    #[test]
    fn caps_bytes_per_request_counting_what_the_guest_sent() {
        let mut ctx = LogCtx::new("p", "r");
        ctx.set_limits(1000, 10_000);
        ctx.log(Level::Info, "y".repeat(6000));
        assert_eq!((ctx.lines, ctx.bytes, ctx.limit_hit), (1, 6000, None));
        ctx.log(Level::Info, "y".repeat(6000));
        assert_eq!(ctx.limit_hit, Some(Limit::LogBytes));
        ctx.log(Level::Info, "z".into());
        assert_eq!(ctx.lines, 1, "nothing is logged after the limit");
    }
}
