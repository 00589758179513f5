//! The OpenAI embeddings request, parsed and validated.
//!
//! Accepted body (`application/json`, or no content type):
//! `{"input": string | [string], "model"?: string, "encoding_format"?: "float" | "base64",
//! "dimensions"?: 384, "user"?: string}`. Other fields are ignored, as is `model`: the
//! pipeline always answers with its configured local model and names it in the
//! response. Mirroring OpenAI, an empty list is rejected ("input must not be empty"), and
//! so is an empty string, naming its JSON path (`'$.input[2]' is invalid`). Token-id
//! arrays (OpenAI's other input form) and any `dimensions` but the model's 384 are
//! rejected as bad requests.

use hybrid_guest::Error;
use hybrid_guest::request::declares_json;
use serde_json::Value;

use crate::encoder::DIM;

/// The most inputs one request may carry (OpenAI's limit).
pub const MAX_INPUTS: usize = 2048;

/// How the response encodes each vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodingFormat {
    /// A JSON array of numbers.
    Float,
    /// Base64 of the little-endian f32 bytes.
    Base64,
}

/// A valid embeddings request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingsRequest {
    /// The texts, in order; never empty, no empty string.
    pub inputs: Vec<String>,
    /// The requested vector encoding.
    pub encoding_format: EncodingFormat,
}

/// Checks the content type and parses `body`.
pub fn parse(content_type: &str, body: &[u8]) -> Result<EmbeddingsRequest, Error> {
    if !declares_json(content_type) {
        return Err(Error::Unsupported(format!(
            "content type {content_type:?}: send application/json"
        )));
    }
    let json: Value = serde_json::from_slice(body)
        .map_err(|e| Error::bad_request(format!("the body is not valid JSON: {e}")))?;
    let Value::Object(fields) = json else {
        return Err(Error::bad_request("the body must be a JSON object"));
    };
    let inputs = match fields.get("input") {
        None | Some(Value::Null) => {
            return Err(Error::bad_request("'input' is required"));
        }
        Some(Value::String(s)) => vec![text(s, "$.input")?],
        Some(Value::Array(items)) => {
            if items.is_empty() {
                return Err(Error::bad_request("input must not be empty"));
            }
            if items.len() > MAX_INPUTS {
                return Err(Error::bad_request(format!(
                    "input has {} items; at most {MAX_INPUTS} are allowed",
                    items.len()
                )));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::String(s) => text(s, &format!("$.input[{i}]")),
                    Value::Number(_) | Value::Array(_) => Err(Error::bad_request(format!(
                        "'$.input[{i}]' is invalid: token-id inputs are not supported, send strings"
                    ))),
                    _ => Err(Error::bad_request(format!(
                        "'$.input[{i}]' is invalid: expected a string"
                    ))),
                })
                .collect::<Result<_, _>>()?
        }
        Some(_) => {
            return Err(Error::bad_request(
                "'$.input' is invalid: expected a string or an array of strings",
            ));
        }
    };
    let encoding_format = match fields.get("encoding_format") {
        None | Some(Value::Null) => EncodingFormat::Float,
        Some(Value::String(s)) if s == "float" => EncodingFormat::Float,
        Some(Value::String(s)) if s == "base64" => EncodingFormat::Base64,
        Some(other) => {
            return Err(Error::bad_request(format!(
                "encoding_format must be \"float\" or \"base64\", got {other}"
            )));
        }
    };
    match fields.get("dimensions") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.as_u64() == Some(DIM as u64) => {}
        Some(other) => {
            return Err(Error::bad_request(format!(
                "dimensions {other} is not supported: this model's embeddings always have {DIM}"
            )));
        }
    }
    if let Some(model) = fields.get("model")
        && !(model.is_string() || model.is_null())
    {
        return Err(Error::bad_request("model must be a string"));
    }
    Ok(EmbeddingsRequest {
        inputs,
        encoding_format,
    })
}

/// `s` owned, unless it is empty (OpenAI rejects empty strings, naming the path).
fn text(s: &str, path: &str) -> Result<String, Error> {
    if s.is_empty() {
        return Err(Error::bad_request(format!(
            "'{path}' is invalid: an input must not be an empty string"
        )));
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: &str) -> EmbeddingsRequest {
        parse("application/json", body.as_bytes()).expect("valid")
    }

    fn err(body: &str) -> String {
        parse("application/json", body.as_bytes())
            .expect_err("invalid")
            .to_string()
    }

    #[test]
    fn accepts_a_string_or_a_list_of_strings() {
        assert_eq!(ok(r#"{"input": "hi"}"#).inputs, ["hi"]);
        let r = ok(r#"{"input": ["a", "b"], "model": "x", "encoding_format": "base64"}"#);
        assert_eq!(r.inputs, ["a", "b"]);
        assert_eq!(r.encoding_format, EncodingFormat::Base64);
        assert_eq!(
            ok(r#"{"input": "a", "dimensions": 384, "user": "u"}"#).encoding_format,
            EncodingFormat::Float
        );
        assert!(parse("", br#"{"input": "a"}"#).is_ok());
        assert!(parse("application/json; charset=utf-8", br#"{"input": "a"}"#).is_ok());
    }

    #[test]
    fn empty_inputs_are_rejected_as_openai_does() {
        assert_eq!(
            err(r#"{"input": []}"#),
            "bad-request: input must not be empty"
        );
        assert!(err(r#"{"input": ""}"#).contains("'$.input' is invalid"));
        assert!(err(r#"{"input": ["a", ""]}"#).contains("'$.input[1]' is invalid"));
    }

    #[test]
    fn rejects_what_it_cannot_serve() {
        assert!(err(r#"{"input": "a", "dimensions": 256}"#).contains("dimensions 256"));
        assert!(err(r#"{"input": [[1, 2]]}"#).contains("token-id inputs"));
        assert!(err(r#"{"input": "a", "encoding_format": "int8"}"#).contains("encoding_format"));
        assert!(err(r#"{"model": "m"}"#).contains("'input' is required"));
        assert!(err("not json").contains("not valid JSON"));
        assert!(err("[1]").contains("JSON object"));
        let many = format!(r#"{{"input": [{}]}}"#, vec![r#""a""#; 2049].join(","));
        assert!(err(&many).contains("at most 2048"));
        let wav = parse("audio/wav", b"{}").expect_err("wav");
        assert!(matches!(wav, Error::Unsupported(_)));
    }
}
