//! The escalation prompt: how an image is put to a serverless chat model.
//!
//! The system message says what to do, how the image is written and how to answer
//! ([`SYSTEM`]). When the request's text may leave the box, a user message `Context:
//! <text>` (whitespace collapsed to single spaces) comes next. The last user message is
//! the image alone: 8 lines of 8 space-separated integers (each grey level rounded), so
//! nothing but the image's numbers is in it (a classifier keyed on the image, such as
//! `hybrid-sim --classify`, reads exactly those). Generation is capped at [`MAX_TOKENS`]
//! tokens at temperature 0: the answer is one digit, and the cap bounds what a confused
//! model can cost.

use hybrid_guest::remote::{ChatParams, Message};

use crate::request::{Digit, SIDE};

/// The system message.
pub const SYSTEM: &str = "You classify 8x8 images of handwritten digits. The image comes as \
    8 lines of 8 grey levels, from 0 (white) to 16 (black), one image row per line. Answer \
    with the digit only.";
/// Completion tokens asked for.
pub const MAX_TOKENS: u32 = 2;

/// The messages asking for `digit`'s label, with `context` (already redacted as the
/// policy requires) as the final line when given.
pub fn messages(digit: &Digit, context: Option<&str>) -> Vec<Message> {
    let rows: Vec<String> = digit
        .levels
        .chunks(SIDE)
        .map(|row| {
            let row: Vec<String> = row
                .iter()
                .map(|level| format!("{}", level.round() as u8))
                .collect();
            row.join(" ")
        })
        .collect();
    let mut messages = vec![Message {
        role: "system".into(),
        content: SYSTEM.into(),
    }];
    if let Some(text) = context {
        let one_line: Vec<&str> = text.split_whitespace().collect();
        messages.push(Message {
            role: "user".into(),
            content: format!("Context: {}", one_line.join(" ")),
        });
    }
    messages.push(Message {
        role: "user".into(),
        content: rows.join("\n"),
    });
    messages
}

/// The generation parameters of every escalation.
pub fn params() -> ChatParams {
    ChatParams {
        max_tokens: Some(MAX_TOKENS),
        temperature: Some(0.0),
        ..ChatParams::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::PIXELS;

    fn digit() -> Digit {
        let mut levels = [0.0; PIXELS];
        for (i, level) in levels.iter_mut().enumerate() {
            *level = (i % 17) as f32;
        }
        levels[8] = 2.5;
        levels[9] = 15.49;
        Digit { levels, text: None }
    }

    #[test]
    fn the_image_is_eight_rows_of_rounded_levels() {
        let m = messages(&digit(), None);
        assert_eq!(m.len(), 2);
        assert_eq!(
            (m[0].role.as_str(), m[0].content.as_str()),
            ("system", SYSTEM)
        );
        assert_eq!(m[1].role, "user");
        assert_eq!(
            m[1].content,
            "0 1 2 3 4 5 6 7\n\
             3 15 10 11 12 13 14 15\n\
             16 0 1 2 3 4 5 6\n\
             7 8 9 10 11 12 13 14\n\
             15 16 0 1 2 3 4 5\n\
             6 7 8 9 10 11 12 13\n\
             14 15 16 0 1 2 3 4\n\
             5 6 7 8 9 10 11 12"
        );
    }

    #[test]
    fn context_comes_before_the_image_on_one_line() {
        let m = messages(&digit(), Some("  from the\nscanner,  page 2 "));
        assert_eq!(m.len(), 3);
        assert_eq!(m[1].content, "Context: from the scanner, page 2");
        assert_eq!(m[2].content, messages(&digit(), None)[1].content);
        assert_eq!(m[2].content.lines().count(), 8);
    }

    #[test]
    fn asks_for_two_tokens_at_temperature_zero() {
        assert_eq!(
            params(),
            ChatParams {
                max_tokens: Some(2),
                temperature: Some(0.0),
                ..ChatParams::default()
            }
        );
    }
}
