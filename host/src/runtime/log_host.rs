//! The host side of the WIT `log` interface: guest messages become `tracing` events
//! tagged with the pipeline and request id.
//!
//! A guest is untrusted, so its logging is bounded: each message is cut at
//! [`MAX_MESSAGE_BYTES`] and a request may log at most [`MAX_LINES_PER_REQUEST`] lines;
//! the rest are counted and reported once.

use super::bindings::log::{self, Level};

/// Longest message kept, in bytes; longer ones are cut at a character boundary.
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// Lines one request may log.
pub const MAX_LINES_PER_REQUEST: u32 = 200;

/// Per-request context for `log`.
pub struct LogCtx {
    pipeline: String,
    request_id: String,
    /// Lines logged so far.
    pub lines: u32,
    /// Lines dropped because of the per-request limit.
    pub dropped: u32,
}

impl LogCtx {
    /// A context for one request of `pipeline`.
    pub fn new(pipeline: &str, request_id: &str) -> Self {
        Self {
            pipeline: pipeline.to_owned(),
            request_id: request_id.to_owned(),
            lines: 0,
            dropped: 0,
        }
    }
}

impl log::Host for LogCtx {
    fn log(&mut self, level: Level, message: String) {
        if self.lines >= MAX_LINES_PER_REQUEST {
            self.dropped += 1;
            return;
        }
        self.lines += 1;
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
        for _ in 0..MAX_LINES_PER_REQUEST + 5 {
            ctx.log(Level::Debug, "x".into());
        }
        assert_eq!(ctx.lines, MAX_LINES_PER_REQUEST);
        assert_eq!(ctx.dropped, 5);
    }
}
