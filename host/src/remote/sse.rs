//! Server-sent events, read incrementally: chat completions with `stream: true` arrive as
//! `data: {json}` lines ending with `data: [DONE]`. Reading line by line keeps memory
//! bounded by the size limit the reader enforces, whatever the stream's length.

use std::io::{self, BufRead, BufReader, Read};

/// One step of an event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An event's data (lines joined with `\n`).
    Data(String),
    /// `data: [DONE]`: the stream is complete.
    Done,
    /// The connection ended without `[DONE]`.
    Ended,
}

/// Server-sent events read one at a time from a reader, for streams relayed as they
/// arrive; nothing is read ahead beyond the reader's buffer.
pub struct Events<R> {
    lines: BufReader<R>,
    line: String,
    data: String,
    finished: bool,
}

impl<R: Read> Events<R> {
    /// Events from `reader`.
    pub fn new(reader: R) -> Self {
        Self {
            lines: BufReader::new(reader),
            line: String::new(),
            data: String::new(),
            finished: false,
        }
    }

    /// The reader underneath (e.g. for its byte count).
    pub fn get_ref(&self) -> &R {
        self.lines.get_ref()
    }

    /// The next event, waiting for it; [`Event::Done`] or [`Event::Ended`] from then on
    /// once the stream is over.
    pub fn next_event(&mut self) -> io::Result<Event> {
        if self.finished {
            return Ok(Event::Ended);
        }
        loop {
            self.line.clear();
            if self.lines.read_line(&mut self.line)? == 0 {
                self.finished = true;
                if !self.data.is_empty() && self.data != "[DONE]" {
                    return Ok(Event::Data(std::mem::take(&mut self.data)));
                }
                return Ok(if self.data == "[DONE]" {
                    Event::Done
                } else {
                    Event::Ended
                });
            }
            let line = self.line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                // A blank line ends an event.
                if self.data == "[DONE]" {
                    self.finished = true;
                    return Ok(Event::Done);
                }
                if !self.data.is_empty() {
                    return Ok(Event::Data(std::mem::take(&mut self.data)));
                }
                continue;
            }
            if let Some(value) = line.strip_prefix("data:") {
                if !self.data.is_empty() {
                    self.data.push('\n');
                }
                self.data.push_str(value.strip_prefix(' ').unwrap_or(value));
            }
            // `event:`, `id:`, `retry:` and `:` comments carry nothing we use.
        }
    }
}

/// Calls `on_data` with each event's data until `[DONE]` or the end of the stream.
/// Returns whether `[DONE]` was seen.
pub fn for_each_data(
    reader: impl Read,
    mut on_data: impl FnMut(&str) -> io::Result<()>,
) -> io::Result<bool> {
    let mut events = Events::new(reader);
    loop {
        match events.next_event()? {
            Event::Data(data) => on_data(&data)?,
            Event::Done => return Ok(true),
            Event::Ended => return Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_data_events_until_done() {
        let stream = ": keep-alive\n\ndata: {\"a\":1}\n\ndata: {\"b\":\ndata: 2}\r\n\r\ndata: [DONE]\n\ndata: ignored\n\n";
        let mut seen = Vec::new();
        let done = for_each_data(stream.as_bytes(), |d| {
            seen.push(d.to_owned());
            Ok(())
        })
        .expect("reads");
        assert!(done);
        assert_eq!(seen, vec!["{\"a\":1}", "{\"b\":\n2}"]);
    }

    #[test]
    fn events_are_read_one_at_a_time_and_the_end_is_told_apart() {
        let mut events = Events::new("data: {\"a\":1}\n\ndata: [DONE]\n\n".as_bytes());
        assert_eq!(
            events.next_event().expect("reads"),
            Event::Data("{\"a\":1}".into())
        );
        assert_eq!(events.next_event().expect("reads"), Event::Done);
        assert_eq!(events.next_event().expect("reads"), Event::Ended);
        let mut cut = Events::new("data: {\"a\":1}\n\n".as_bytes());
        assert!(matches!(cut.next_event(), Ok(Event::Data(_))));
        assert_eq!(cut.next_event().expect("reads"), Event::Ended, "no [DONE]");
    }

    #[test]
    fn a_stream_cut_short_is_reported_as_not_done() {
        let done =
            for_each_data("data: {\"a\":1}\n\ndata: {\"b\"".as_bytes(), |_| Ok(())).expect("reads");
        assert!(!done);
    }
}
