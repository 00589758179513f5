//! The OpenAI chat-completions request, parsed and validated.
//!
//! Accepted body (`application/json`, or no content type): `{"model": string,
//! "messages": [{"role", "content"}], "max_tokens"?, "max_completion_tokens"?,
//! "temperature"?, "top_p"?, "stop"?, "n"?, "stream"?}`; other fields are ignored
//! (`stream_options` included: the host formats the stream). A message's `content` is a string or an array of text
//! parts (`{"type": "text", "text": ...}`), joined with newlines. Role `developer` (OpenAI's
//! newer name for `system`) is sent as `system`. What the remote interface cannot carry
//! is refused rather than silently dropped: `n` > 1, `tools`/`functions`, and non-text
//! content parts are `unsupported`. Error messages name the field as OpenAI's do
//! (`'messages[2].role'`), so a client user can find the mistake.

use hybrid_guest::Error;
use hybrid_guest::remote::Message;
use hybrid_guest::request::declares_json;
use serde_json::{Map, Value};

/// The most `stop` sequences a request may carry (OpenAI's limit).
pub const MAX_STOP: usize = 4;

/// Roles passed through as they are.
const ROLES: [&str; 4] = ["system", "user", "assistant", "tool"];

/// A valid chat-completions request.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// The model name the client asked for (the operator's alias for the endpoint).
    pub model: String,
    /// The conversation; never empty.
    pub messages: Vec<Message>,
    /// `max_completion_tokens`, or else `max_tokens`.
    pub max_tokens: Option<u32>,
    /// Sampling temperature, 0 to 2.
    pub temperature: Option<f32>,
    /// Nucleus sampling mass, 0 to 1.
    pub top_p: Option<f32>,
    /// Stop sequences, at most [`MAX_STOP`].
    pub stop: Vec<String>,
    /// `stream: true`: answer chunk by chunk as the provider generates.
    pub stream: bool,
}

impl ChatRequest {
    /// Characters of message content in all, for the size estimate and the log line.
    pub fn content_chars(&self) -> usize {
        self.messages
            .iter()
            .map(|m| m.content.chars().count())
            .sum()
    }
}

/// Checks the content type and parses `body`.
pub fn parse(content_type: &str, body: &[u8]) -> Result<ChatRequest, Error> {
    if !declares_json(content_type) {
        return Err(Error::unsupported(format!(
            "content type {content_type:?} is not supported: send the request as application/json"
        )));
    }
    let json: Value = serde_json::from_slice(body).map_err(|e| {
        Error::bad_request(format!(
            "the request body is not valid JSON ({e}); send an OpenAI chat-completions request"
        ))
    })?;
    let Value::Object(fields) = json else {
        return Err(Error::bad_request("the request body must be a JSON object"));
    };

    let model = match fields.get("model") {
        None | Some(Value::Null) => {
            return Err(Error::bad_request(
                "you must provide a model parameter ('model' is required)",
            ));
        }
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(_) => {
            return Err(Error::bad_request(
                "invalid value for 'model': expected a non-empty string",
            ));
        }
    };
    let messages = messages(fields.get("messages"))?;
    check_n(fields.get("n"))?;
    for tools in ["tools", "functions"] {
        if matches!(fields.get(tools), Some(Value::Array(a)) if !a.is_empty()) {
            return Err(Error::unsupported(format!(
                "'{tools}' is not supported: this endpoint does not do tool or function calling"
            )));
        }
    }
    let max_tokens = match positive_int(&fields, "max_completion_tokens")? {
        Some(n) => Some(n),
        None => positive_int(&fields, "max_tokens")?,
    };
    Ok(ChatRequest {
        model,
        messages,
        max_tokens,
        temperature: number_in(&fields, "temperature", 2.0)?,
        top_p: number_in(&fields, "top_p", 1.0)?,
        stop: stop(fields.get("stop"))?,
        stream: match fields.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(Error::bad_request(
                    "invalid type for 'stream': expected a boolean",
                ));
            }
        },
    })
}

fn messages(value: Option<&Value>) -> Result<Vec<Message>, Error> {
    let items = match value {
        None | Some(Value::Null) => {
            return Err(Error::bad_request("'messages' is required"));
        }
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(Error::bad_request(
                "invalid type for 'messages': expected an array of messages",
            ));
        }
    };
    if items.is_empty() {
        return Err(Error::bad_request(
            "'messages' must contain at least one message",
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, m)| message(i, m))
        .collect()
}

fn message(i: usize, value: &Value) -> Result<Message, Error> {
    let Value::Object(fields) = value else {
        return Err(Error::bad_request(format!(
            "invalid type for 'messages[{i}]': expected an object with 'role' and 'content'"
        )));
    };
    let role = match fields.get("role").and_then(Value::as_str) {
        Some("developer") => "system",
        Some(role) if ROLES.contains(&role) => role,
        Some(role) => {
            return Err(Error::bad_request(format!(
                "invalid value for 'messages[{i}].role': {role:?}; expected one of system, \
                 user, assistant, tool"
            )));
        }
        None => {
            return Err(Error::bad_request(format!(
                "'messages[{i}].role' is required and must be a string"
            )));
        }
    };
    let content = match fields.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => text_parts(i, parts)?,
        _ => {
            return Err(Error::bad_request(format!(
                "invalid type for 'messages[{i}].content': expected a string or an array of \
                 text parts"
            )));
        }
    };
    Ok(Message {
        role: role.to_owned(),
        content,
    })
}

/// The text of an array of content parts, joined with newlines.
fn text_parts(i: usize, parts: &[Value]) -> Result<String, Error> {
    let texts = parts
        .iter()
        .enumerate()
        .map(|(j, part)| {
            let path = format!("'messages[{i}].content[{j}]'");
            match part.get("type").and_then(Value::as_str) {
                Some("text") => part.get("text").and_then(Value::as_str).ok_or_else(|| {
                    Error::bad_request(format!("{path}.text is required: a string"))
                }),
                Some(other) => Err(Error::unsupported(format!(
                    "{path} is a {other:?} part; only text parts are supported"
                ))),
                None => Err(Error::bad_request(format!(
                    "{path} must be an object with \"type\": \"text\" and a \"text\" string"
                ))),
            }
        })
        .collect::<Result<Vec<&str>, _>>()?;
    Ok(texts.join("\n"))
}

/// `n` may be absent, null or 1.
fn check_n(value: Option<&Value>) -> Result<(), Error> {
    match value {
        None | Some(Value::Null) => Ok(()),
        Some(v) => match v.as_u64() {
            Some(1) => Ok(()),
            Some(n) if n > 1 => Err(Error::unsupported(format!(
                "'n' = {n} is not supported: this endpoint returns one choice per request; \
                 send n = 1 or send {n} requests"
            ))),
            _ => Err(Error::bad_request(format!(
                "invalid value for 'n': {v}; expected a positive integer"
            ))),
        },
    }
}

/// Field `name` as an integer from 1 to `u32::MAX`, or `None` when absent or null.
fn positive_int(fields: &Map<String, Value>, name: &str) -> Result<Option<u32>, Error> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .filter(|&n| n >= 1)
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| {
                Error::bad_request(format!(
                    "invalid value for '{name}': {v}; expected a positive integer"
                ))
            }),
    }
}

/// Field `name` as a number from 0 to `max`, or `None` when absent or null.
fn number_in(fields: &Map<String, Value>, name: &str, max: f64) -> Result<Option<f32>, Error> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_f64() {
            Some(x) if (0.0..=max).contains(&x) => Ok(Some(x as f32)),
            _ => Err(Error::bad_request(format!(
                "invalid value for '{name}': {v}; expected a number from 0 to {max}"
            ))),
        },
    }
}

/// `stop`: a string or a list of at most [`MAX_STOP`] strings.
fn stop(value: Option<&Value>) -> Result<Vec<String>, Error> {
    let invalid = || {
        Error::bad_request(format!(
            "invalid value for 'stop': expected a string or a list of up to {MAX_STOP} strings"
        ))
    };
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) if items.len() <= MAX_STOP => items
            .iter()
            .map(|s| s.as_str().map(str::to_owned).ok_or_else(invalid))
            .collect(),
        Some(_) => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: &str) -> ChatRequest {
        parse("application/json", body.as_bytes()).expect("valid")
    }

    fn err(body: &str) -> Error {
        parse("application/json", body.as_bytes()).expect_err("invalid")
    }

    fn bad(body: &str) -> String {
        match err(body) {
            Error::BadRequest(m) => m,
            other => panic!("expected bad-request, got {other}"),
        }
    }

    const HI: &str = r#""messages": [{"role": "user", "content": "hi"}]"#;

    #[test]
    fn accepts_a_minimal_request() {
        let r = ok(&format!(r#"{{"model": "m", {HI}}}"#));
        assert_eq!(r.model, "m");
        assert_eq!(
            r.messages,
            [Message {
                role: "user".into(),
                content: "hi".into()
            }]
        );
        assert_eq!(
            (r.max_tokens, r.temperature, r.top_p, r.stop.len()),
            (None, None, None, 0)
        );
        assert!(parse("", format!(r#"{{"model": "m", {HI}}}"#).as_bytes()).is_ok());
        assert!(
            parse(
                "application/json; charset=utf-8",
                format!(r#"{{"model": "m", {HI}}}"#).as_bytes()
            )
            .is_ok()
        );
    }

    #[test]
    fn reads_every_parameter() {
        let r = ok(&format!(
            r#"{{"model": "m", {HI}, "max_tokens": 10, "temperature": 0.5, "top_p": 1,
                "stop": ["a", "b"], "n": 1, "stream": true, "user": "u", "tools": []}}"#
        ));
        assert_eq!(r.max_tokens, Some(10));
        assert_eq!(r.temperature, Some(0.5));
        assert_eq!(r.top_p, Some(1.0));
        assert_eq!(r.stop, ["a", "b"]);
        let r = ok(&format!(
            r#"{{"model": "m", {HI}, "max_tokens": 10, "max_completion_tokens": 7, "stop": "x"}}"#
        ));
        assert_eq!(r.max_tokens, Some(7));
        assert_eq!(r.stop, ["x"]);
        let r = ok(&format!(
            r#"{{"model": "m", {HI}, "temperature": null, "stop": null, "n": null}}"#
        ));
        assert_eq!((r.temperature, r.stop.len()), (None, 0));
    }

    #[test]
    fn joins_text_parts_and_maps_developer_to_system() {
        let r = ok(r#"{"model": "m", "messages": [
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            {"role": "assistant", "content": "c"},
            {"role": "tool", "content": "d", "tool_call_id": "x"}]}"#);
        let roles: Vec<&str> = r.messages.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(roles, ["system", "user", "assistant", "tool"]);
        assert_eq!(r.messages[1].content, "a\nb");
        assert_eq!(r.content_chars(), 8 + 3 + 1 + 1);
    }

    #[test]
    fn names_the_field_that_is_wrong() {
        assert!(bad("not json").contains("not valid JSON"));
        assert!(bad("[1]").contains("JSON object"));
        assert!(bad(&format!("{{{HI}}}")).contains("'model' is required"));
        assert!(bad(&format!(r#"{{"model": 3, {HI}}}"#)).contains("'model'"));
        assert!(bad(r#"{"model": "m"}"#).contains("'messages' is required"));
        assert_eq!(
            bad(r#"{"model": "m", "messages": []}"#),
            "'messages' must contain at least one message"
        );
        assert!(bad(r#"{"model": "m", "messages": "hi"}"#).contains("invalid type for 'messages'"));
        assert!(bad(r#"{"model": "m", "messages": [1]}"#).contains("'messages[0]'"));
        assert!(
            bad(r#"{"model": "m", "messages": [{"role": "bot", "content": "x"}]}"#)
                .contains("'messages[0].role': \"bot\"")
        );
        assert!(
            bad(r#"{"model": "m", "messages": [{"content": "x"}]}"#)
                .contains("'messages[0].role' is required")
        );
        assert!(
            bad(r#"{"model": "m", "messages": [{"role": "user"}, {"role": "assistant", "content": null}]}"#)
                .contains("'messages[0].content'")
        );
        assert!(
            bad(r#"{"model": "m", "messages": [{"role": "user", "content": [{"text": "x"}]}]}"#)
                .contains("'messages[0].content[0]'")
        );
        let field = |json: &str| bad(&format!(r#"{{"model": "m", {HI}, {json}}}"#));
        assert!(field(r#""temperature": 2.5"#).contains("'temperature': 2.5"));
        assert!(field(r#""temperature": -0.1"#).contains("'temperature'"));
        assert!(field(r#""temperature": "hot""#).contains("from 0 to 2"));
        assert!(field(r#""top_p": 1.5"#).contains("'top_p'"));
        assert!(field(r#""max_tokens": 0"#).contains("'max_tokens'"));
        assert!(field(r#""max_tokens": 1.5"#).contains("'max_tokens'"));
        assert!(field(r#""max_completion_tokens": -3"#).contains("'max_completion_tokens'"));
        assert!(field(r#""max_tokens": 5000000000"#).contains("'max_tokens'"));
        assert!(field(r#""stop": ["a", "b", "c", "d", "e"]"#).contains("up to 4"));
        assert!(field(r#""stop": [1]"#).contains("'stop'"));
        assert!(field(r#""n": 0"#).contains("'n'"));
    }

    #[test]
    fn refuses_what_the_remote_call_cannot_carry() {
        let unsupported = |json: &str| match err(&format!(r#"{{"model": "m", {HI}, {json}}}"#)) {
            Error::Unsupported(m) => m,
            other => panic!("expected unsupported, got {other}"),
        };
        assert!(unsupported(r#""n": 2"#).contains("'n' = 2"));
        assert!(unsupported(r#""tools": [{"type": "function"}]"#).contains("'tools'"));
        assert!(unsupported(r#""functions": [{}]"#).contains("'functions'"));
        let image = err(
            r#"{"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}"#,
        );
        assert!(
            matches!(&image, Error::Unsupported(m) if m.contains("\"image_url\" part")),
            "{image}"
        );
        let wav = parse("audio/wav", b"{}").expect_err("wav");
        assert!(matches!(wav, Error::Unsupported(_)));
    }
}
