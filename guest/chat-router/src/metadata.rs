//! The routing options a client sets through `x-hybrid-*` headers, which the host hands
//! over as request metadata without the prefix: `endpoint` (which serverless chat
//! endpoint, default [`DEFAULT_ENDPOINT`]) and `pass_model` (`true` sends the request's
//! `model` to the provider instead of the endpoint's configured model id). The operator's
//! setting `fallback` (`settings = { fallback = "chat-b, chat-c" }` on the pipeline in the
//! host config) lists the endpoints tried, in order, when the first fails in a way another
//! may not (see `call::falls_back`); for a stream, only before its first chunk. The
//! operator's setting `relay` says how a stream reaches the client: `forward` (the
//! default: the host relays it as it is, without the chunks passing through this guest,
//! WIT 0.2.1 `reply.forward`) or `emit` (each chunk read and emitted by this guest, the
//! path for a policy that transforms the text). A key given twice takes its last value;
//! other keys are ignored.

use hybrid_guest::Error;
use hybrid_guest::metadata::{Metadata, setting};

/// The endpoint used unless metadata `endpoint` names another.
pub const DEFAULT_ENDPOINT: &str = "chat";

/// The options for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The serverless endpoint to call.
    pub endpoint: String,
    /// Whether the request's `model` overrides the endpoint's configured model id.
    pub pass_model: bool,
    /// Endpoints to fall back to, in order (the operator's setting `fallback`).
    pub fallback: Vec<String>,
    /// How a stream reaches the client (the operator's setting `relay`).
    pub relay: Relay,
}

/// How a streamed answer reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Relay {
    /// The host relays the stream as it is (`reply.forward`).
    #[default]
    Forward,
    /// This guest reads each chunk and emits it (`next`, then `reply.emit`).
    Emit,
}

impl Options {
    /// Every endpoint to try, in order: `endpoint`, then the fallbacks (each once).
    pub fn endpoints(&self) -> Vec<&str> {
        let mut all: Vec<&str> = vec![self.endpoint.as_str()];
        for e in &self.fallback {
            if !all.contains(&e.as_str()) {
                all.push(e);
            }
        }
        all
    }
}

/// Reads the options from `metadata`.
pub fn parse(metadata: &[(String, String)]) -> Result<Options, Error> {
    let metadata = Metadata::new(metadata);
    let endpoint = match metadata.get("endpoint") {
        None => DEFAULT_ENDPOINT.to_owned(),
        Some("") => {
            return Err(Error::bad_request(
                "x-hybrid-endpoint is empty: name a configured chat endpoint, or leave the \
                 header out to use \"chat\"",
            ));
        }
        Some(name) => name.to_owned(),
    };
    let pass_model = match metadata.get("pass_model") {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => true,
        Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => false,
        Some(v) => {
            return Err(Error::bad_request(format!(
                "x-hybrid-pass-model must be true or false, got {v:?}"
            )));
        }
    };
    let relay = match metadata.get(&setting("relay")) {
        None | Some("forward") => Relay::Forward,
        Some("emit") => Relay::Emit,
        Some(other) => {
            return Err(Error::bad_request(format!(
                "the pipeline's setting relay must be forward or emit, got {other:?}"
            )));
        }
    };
    let fallback = metadata
        .get(&setting("fallback"))
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(Options {
        endpoint,
        pass_model,
        fallback,
        relay,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_to_the_chat_endpoint_and_the_configured_model() {
        assert_eq!(
            parse(&meta(&[("prefer", "remote")])),
            Ok(Options {
                endpoint: "chat".into(),
                pass_model: false,
                fallback: Vec::new(),
                relay: Relay::Forward,
            })
        );
    }

    #[test]
    fn the_last_value_wins() {
        let options = parse(&meta(&[
            ("endpoint", "a"),
            ("endpoint", " big-chat "),
            ("pass_model", "TRUE"),
        ]))
        .expect("valid");
        assert_eq!(options.endpoint, "big-chat");
        assert!(options.pass_model);
        assert!(
            !parse(&meta(&[("pass_model", "0")]))
                .expect("valid")
                .pass_model
        );
    }

    #[test]
    fn the_operators_fallback_list_follows_the_endpoint() {
        let options = parse(&meta(&[
            ("endpoint", "a"),
            ("setting.fallback", " b, ,a, c "),
        ]))
        .expect("valid");
        assert_eq!(options.endpoints(), ["a", "b", "c"]);
    }

    #[test]
    fn rejects_empty_endpoints_and_unclear_flags() {
        let empty = parse(&meta(&[("endpoint", " ")])).expect_err("empty");
        assert!(matches!(&empty, Error::BadRequest(m) if m.contains("x-hybrid-endpoint")));
        let flag = parse(&meta(&[("pass_model", "maybe")])).expect_err("unclear");
        assert!(matches!(&flag, Error::BadRequest(m) if m.contains("\"maybe\"")));
        let relay = parse(&meta(&[("setting.relay", "copy")])).expect_err("unknown");
        assert!(matches!(&relay, Error::BadRequest(m) if m.contains("relay")));
        let emit = parse(&meta(&[("setting.relay", "emit")])).expect("valid");
        assert_eq!(emit.relay, Relay::Emit);
    }
}
