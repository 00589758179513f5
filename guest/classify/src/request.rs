//! The request's body, parsed and validated.
//!
//! The body is JSON (`application/json`, or no content type declared):
//! `{"pixels": [64 numbers], "text": "optional context"}`. `pixels` is an 8x8 image,
//! row-major, each value a grey level from 0 (white) to 16 (black); fractional levels are
//! accepted (the model takes them as they are, the prompt rounds them). `text` is free
//! text sent along to the serverless endpoint as context; `null` is the same as leaving
//! it out. Other fields are ignored. Every problem is a `bad-request` naming it; another
//! content type is `unsupported`.

use hybrid_guest::Error;
use hybrid_guest::request::declares_json;
use serde_json::Value;

/// Pixels in an 8x8 image.
pub const PIXELS: usize = 64;
/// Width (and height) of the image.
pub const SIDE: usize = 8;
/// The darkest grey level.
pub const MAX_LEVEL: f32 = 16.0;

/// A digit to classify: the image and its optional context.
#[derive(Debug, Clone, PartialEq)]
pub struct Digit {
    /// Grey levels, 0.0..=16.0, row-major.
    pub levels: [f32; PIXELS],
    /// Free text sent along as context, if any.
    pub text: Option<String>,
}

/// Parses and validates a body declared as `content_type`.
pub fn parse(content_type: &str, body: &[u8]) -> Result<Digit, Error> {
    if !declares_json(content_type) {
        return Err(Error::unsupported(format!(
            "content type {content_type:?} is not supported: send \
             {{\"pixels\": [64 grey levels], \"text\": \"...\"}} as application/json"
        )));
    }
    let json: Value = serde_json::from_slice(body)
        .map_err(|e| Error::bad_request(format!("the body is not valid JSON: {e}")))?;
    let Value::Object(object) = json else {
        return Err(Error::bad_request(
            "the body must be a JSON object with \"pixels\" (and optionally \"text\")",
        ));
    };
    let pixels = match object.get("pixels") {
        None | Some(Value::Null) => {
            return Err(Error::bad_request(
                "\"pixels\" is missing: send the image's 64 grey levels (0 to 16), row-major",
            ));
        }
        Some(Value::Array(values)) => values,
        Some(_) => {
            return Err(Error::bad_request(
                "\"pixels\" must be an array of 64 numbers (grey levels 0 to 16)",
            ));
        }
    };
    if pixels.len() != PIXELS {
        return Err(Error::bad_request(format!(
            "\"pixels\" has {} values; an 8x8 image has {PIXELS}",
            pixels.len()
        )));
    }
    let mut levels = [0.0f32; PIXELS];
    for (i, value) in pixels.iter().enumerate() {
        let level = value.as_f64().ok_or_else(|| {
            Error::bad_request(format!("\"pixels\"[{i}] is {value}, not a number"))
        })?;
        if !(0.0..=f64::from(MAX_LEVEL)).contains(&level) {
            return Err(Error::bad_request(format!(
                "\"pixels\"[{i}] is {value}, outside the grey levels 0 to 16"
            )));
        }
        levels[i] = level as f32;
    }
    let text = match object.get("text") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text.clone()),
        Some(_) => {
            return Err(Error::bad_request(
                "\"text\" must be a string (or left out)",
            ));
        }
    };
    Ok(Digit { levels, text })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(pixels: &str, rest: &str) -> Vec<u8> {
        format!(r#"{{"pixels": {pixels}{rest}}}"#).into_bytes()
    }

    fn sixty_four(value: &str) -> String {
        format!("[{}]", vec![value; PIXELS].join(", "))
    }

    fn bad(content_type: &str, body: &[u8]) -> String {
        match parse(content_type, body) {
            Err(Error::BadRequest(m)) => m,
            other => panic!("expected bad-request, got {other:?}"),
        }
    }

    #[test]
    fn reads_levels_and_optional_text() {
        let digit = parse(
            "application/json; charset=utf-8",
            &body(&sixty_four("16"), r#", "text": "from the form""#),
        )
        .expect("valid");
        assert_eq!(digit.levels, [16.0; PIXELS]);
        assert_eq!(digit.text.as_deref(), Some("from the form"));
        let digit = parse("", &body(&sixty_four("2.5"), r#", "text": null"#)).expect("valid");
        assert_eq!((digit.levels[63], digit.text), (2.5, None));
    }

    #[test]
    fn names_what_is_wrong_with_the_body() {
        assert!(bad("application/json", b"{nope").contains("not valid JSON"));
        assert!(bad("application/json", b"[1, 2]").contains("JSON object"));
        assert!(bad("application/json", br#"{"text": "hi"}"#).contains("\"pixels\" is missing"));
        assert!(bad("application/json", &body("\"ab\"", "")).contains("array of 64 numbers"));
        let short = format!("[{}]", vec!["1"; 63].join(","));
        assert!(bad("application/json", &body(&short, "")).contains("has 63 values"));
        let mut values = vec!["0"; PIXELS];
        values[5] = "17";
        let over = format!("[{}]", values.join(","));
        assert_eq!(
            bad("application/json", &body(&over, "")),
            "\"pixels\"[5] is 17, outside the grey levels 0 to 16"
        );
        values[5] = "-1";
        assert!(bad("", &body(&format!("[{}]", values.join(",")), "")).contains("[5] is -1"));
        values[5] = "\"3\"";
        assert!(
            bad("", &body(&format!("[{}]", values.join(",")), "")).contains("[5] is \"3\", not a")
        );
        assert!(bad("", &body(&sixty_four("1"), r#", "text": 5"#)).contains("\"text\""));
    }

    #[test]
    fn other_content_types_are_unsupported() {
        let e = parse("image/png", &body(&sixty_four("1"), "")).expect_err("png");
        assert!(matches!(&e, Error::Unsupported(m) if m.contains("\"image/png\"")));
    }
}
