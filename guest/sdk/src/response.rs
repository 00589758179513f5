//! What a pipeline answers (WIT `messages.response` and `messages.routing`): the generated
//! records, with constructors for the routing record's three kinds of route and for JSON
//! bodies.
//!
//! The route says where the answer came from, in the forms the host's metrics and
//! operators read: [`LOCAL`] when models on this box answered, `remote:<endpoint>`
//! ([`remote_route`]) when a serverless endpoint did, `local+remote:<endpoint>`
//! ([`local_and_remote_route`]) when both contributed.

use serde::Serialize;

use crate::Error;

pub use crate::bindings::hybrid::inference::messages::{Response, Routing};

/// The route of an answer computed on this box.
pub const LOCAL: &str = "local";

/// The content type of JSON bodies.
pub const JSON: &str = "application/json";

/// `remote:<endpoint>`: the route of an answer a serverless endpoint gave.
pub fn remote_route(endpoint: &str) -> String {
    format!("remote:{endpoint}")
}

/// `local+remote:<endpoint>`: the route of an answer this box and an endpoint made
/// together.
pub fn local_and_remote_route(endpoint: &str) -> String {
    format!("local+remote:{endpoint}")
}

impl Routing {
    /// Answered on this box by `model` at `version`, for `reason`.
    pub fn local(reason: impl Into<String>, model: &str, version: &str) -> Self {
        Self {
            route: LOCAL.to_owned(),
            reason: reason.into(),
            model: model.to_owned(),
            model_version: version.to_owned(),
        }
    }

    /// Answered by serverless `endpoint`, whose provider reported `model`, for `reason`.
    /// The version is empty: providers report a model id, not a version.
    pub fn remote(endpoint: &str, reason: impl Into<String>, model: &str) -> Self {
        Self {
            route: remote_route(endpoint),
            reason: reason.into(),
            model: model.to_owned(),
            model_version: String::new(),
        }
    }

    /// Answered by this box and serverless `endpoint` together; `model` and `version` name
    /// the model that gave the answer's substance.
    pub fn local_and_remote(
        endpoint: &str,
        reason: impl Into<String>,
        model: &str,
        version: &str,
    ) -> Self {
        Self {
            route: local_and_remote_route(endpoint),
            reason: reason.into(),
            model: model.to_owned(),
            model_version: version.to_owned(),
        }
    }
}

impl Response {
    /// A response with `body` of `content_type`, served as `routing` says.
    pub fn new(content_type: &str, body: Vec<u8>, routing: Routing) -> Self {
        Self {
            content_type: content_type.to_owned(),
            body,
            routing,
        }
    }

    /// `body` serialised as JSON ([`JSON`]), served as `routing` says. Serialising fails
    /// only for values JSON cannot hold (maps with non-string keys): `internal`.
    pub fn json<T: Serialize + ?Sized>(body: &T, routing: Routing) -> Result<Self, Error> {
        let body = serde_json::to_vec(body)
            .map_err(|e| Error::internal(format!("serialising the response: {e}")))?;
        Ok(Self::new(JSON, body, routing))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn routes_read_as_the_host_expects() {
        let local = Routing::local("confidence 0.97", "digits-v1", "1");
        assert_eq!(
            (local.route.as_str(), local.model_version.as_str()),
            ("local", "1")
        );
        let remote = Routing::remote("strong", "escalated", "big-model");
        assert_eq!(
            (remote.route.as_str(), remote.model_version.as_str()),
            ("remote:strong", "")
        );
        let both = Routing::local_and_remote("asr", "transcribed", "whisper", "");
        assert_eq!(both.route, "local+remote:asr");
    }

    #[test]
    fn json_responses_carry_the_content_type() {
        let routing = Routing::local("why", "m", "v");
        let r = Response::json(&serde_json::json!({"label": "7"}), routing.clone())
            .expect("serialises");
        assert_eq!(
            (r.content_type.as_str(), r.body.as_slice()),
            (JSON, &br#"{"label":"7"}"#[..])
        );
        assert_eq!(r.routing, routing);
        let mut odd = BTreeMap::new();
        odd.insert(vec![1u8], 2);
        let e = Response::json(&odd, routing).expect_err("non-string keys");
        assert_eq!(e.case(), "internal");
    }
}
