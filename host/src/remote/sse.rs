//! Server-sent events, read incrementally: chat completions with `stream: true` arrive as
//! `data: {json}` lines ending with `data: [DONE]`. Reading line by line keeps memory
//! bounded by the size limit the reader enforces, whatever the stream's length.

use std::io::{self, BufRead, BufReader, Read};

/// Calls `on_data` with each event's data until `[DONE]` or the end of the stream.
/// Returns whether `[DONE]` was seen.
pub fn for_each_data(
    reader: impl Read,
    mut on_data: impl FnMut(&str) -> io::Result<()>,
) -> io::Result<bool> {
    let mut lines = BufReader::new(reader);
    let mut data = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line)? == 0 {
            if !data.is_empty() {
                on_data(&data)?;
            }
            return Ok(false);
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            // A blank line ends an event.
            if data == "[DONE]" {
                return Ok(true);
            }
            if !data.is_empty() {
                on_data(&data)?;
                data.clear();
            }
            continue;
        }
        if let Some(value) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(value.strip_prefix(' ').unwrap_or(value));
        }
        // `event:`, `id:`, `retry:` and `:` comments carry nothing we use.
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
    fn a_stream_cut_short_is_reported_as_not_done() {
        let done =
            for_each_data("data: {\"a\":1}\n\ndata: {\"b\"".as_bytes(), |_| Ok(())).expect("reads");
        assert!(!done);
    }
}
