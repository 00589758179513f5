//! What a pipeline receives (WIT `messages.request`): the generated record, with helpers
//! for the content type and for JSON bodies. Metadata is read with
//! [`crate::metadata::Metadata`].

use serde::de::DeserializeOwned;

use crate::Error;

pub use crate::bindings::hybrid::inference::messages::Request;

/// The MIME type of `content_type` without its parameters, trimmed:
/// `application/json; charset=utf-8` is `application/json`.
pub fn mime(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or_default().trim()
}

/// Whether `content_type` declares JSON: `application/json` (any case, any parameters),
/// or nothing at all (clients such as `curl -d` often send none).
pub fn declares_json(content_type: &str) -> bool {
    let mime = mime(content_type);
    mime.is_empty() || mime.eq_ignore_ascii_case("application/json")
}

impl Request {
    /// A request with id `id`, a body of `content_type` and no metadata; mostly for tests.
    pub fn new(id: &str, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            id: id.to_owned(),
            content_type: content_type.to_owned(),
            body: body.into(),
            metadata: Vec::new(),
        }
    }

    /// The same request with metadata `key` = `value` added after the pairs it has.
    pub fn with_metadata(mut self, key: &str, value: &str) -> Self {
        self.metadata.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The same request with every `(key, value)` of `pairs` added, in order, after the
    /// pairs it has.
    pub fn with_metadata_pairs(self, pairs: &[(&str, &str)]) -> Self {
        pairs.iter().fold(self, |request, (key, value)| {
            request.with_metadata(key, value)
        })
    }

    /// The body's MIME type without parameters ([`mime`]).
    pub fn mime(&self) -> &str {
        mime(&self.content_type)
    }

    /// Whether the body is declared as JSON, or not declared at all ([`declares_json`]).
    pub fn declares_json(&self) -> bool {
        declares_json(&self.content_type)
    }

    /// The body parsed as JSON into `T`: `unsupported` when another content type is
    /// declared, `bad-request` with serde's account of the problem (`missing field
    /// "text" at line 1 column 2`) when the body does not parse. Pipelines that word
    /// their own messages use [`mime`] and `serde_json` directly.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        if !self.declares_json() {
            return Err(Error::unsupported(format!(
                "content type {:?} is not supported: send application/json",
                self.content_type
            )));
        }
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::bad_request(format!("the body is not valid: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Body {
        text: String,
    }

    #[test]
    fn json_is_declared_by_its_mime_type_or_by_nothing() {
        assert_eq!(
            mime(" application/json ; charset=utf-8"),
            "application/json"
        );
        assert!(declares_json("Application/JSON; charset=utf-8"));
        assert!(declares_json(""));
        assert!(!declares_json("audio/wav"));
        assert!(!declares_json("application/jsonl"));
    }

    #[test]
    fn json_bodies_parse_into_types_or_say_why_not() {
        let request = Request::new("r1", "application/json", r#"{"text": "hi"}"#)
            .with_metadata("lang", "en")
            .with_metadata_pairs(&[("lang", "de"), ("setting.x", "1")]);
        assert_eq!(request.json::<Body>(), Ok(Body { text: "hi".into() }));
        assert_eq!(
            request.metadata,
            [("lang", "en"), ("lang", "de"), ("setting.x", "1")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        let e = Request::new("r2", "", "{}")
            .json::<Body>()
            .expect_err("no text");
        assert!(
            matches!(&e, Error::BadRequest(m) if m.contains("missing field `text`")),
            "{e}"
        );
        let e = Request::new("r3", "text/plain", "hi")
            .json::<Body>()
            .expect_err("text");
        assert_eq!(
            e,
            Error::unsupported(
                "content type \"text/plain\" is not supported: send application/json"
            )
        );
    }
}
