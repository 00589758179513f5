//! The answer to a request: the JSON body and the routing record.
//!
//! Body (`application/json`):
//!
//! ```json
//! {"label": "7", "confidence": 0.93, "answered_by": "local",
//!  "local": {"label": "7", "confidence": 0.93},
//!  "remote": {"label": "7", "endpoint": "strong"},
//!  "escalation_error": "unavailable: ...",
//!  "decision": "confidence 0.93 >= threshold 0.90"}
//! ```
//!
//! - `label`: the answer, a digit as a string.
//! - `confidence`: the local model's top probability when the local model answered;
//!   `null` when the endpoint answered (a chat reply carries no probability).
//! - `answered_by`: `local` or `remote`.
//! - `local`: the local model's result; left out when it did not run (the policy's spill).
//! - `remote`: the endpoint's answer; only when it was asked and answered.
//! - `escalation_error`: only when the escalation was tried and failed.
//! - `decision`: the routing reason.
//!
//! Routing record: route `local` or `remote:<endpoint>`; the reason; the local model's
//! name and version when it answered, the provider's model id (version empty) when the
//! endpoint did.

use hybrid_guest::response::JSON;
use hybrid_guest::{Response, Routing};
use serde::Serialize;

use crate::outcome::Outcome;

#[derive(Serialize)]
struct Body<'a> {
    label: String,
    confidence: Option<f32>,
    answered_by: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    local: Option<LocalPart>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remote: Option<RemotePart<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    escalation_error: Option<String>,
    decision: &'a str,
}

#[derive(Serialize)]
struct LocalPart {
    label: String,
    confidence: f32,
}

#[derive(Serialize)]
struct RemotePart<'a> {
    label: String,
    endpoint: &'a str,
}

/// The answer for `outcome`: the JSON body and the routing record.
pub fn answer(outcome: &Outcome) -> Response {
    let local = outcome.local.as_ref().map(|l| LocalPart {
        label: l.label.to_string(),
        confidence: l.confidence,
    });
    let remote = outcome.remote.as_ref().map(|r| RemotePart {
        label: r.label.to_string(),
        endpoint: &r.endpoint,
    });
    let (label, confidence, answered_by, routing) = match (&outcome.remote, &outcome.local) {
        (Some(r), _) => (
            r.label.to_string(),
            None,
            "remote",
            Routing::remote(&r.endpoint, outcome.reason.clone(), &r.call.model),
        ),
        (None, Some(l)) => (
            l.label.to_string(),
            Some(l.confidence),
            "local",
            Routing::local(outcome.reason.clone(), &l.model, &l.version),
        ),
        // The flows never build an outcome without an answer; say so rather than panic.
        (None, None) => (
            String::new(),
            None,
            "local",
            Routing::local(outcome.reason.clone(), "", ""),
        ),
    };
    let body = Body {
        label,
        confidence,
        answered_by,
        local,
        remote,
        escalation_error: outcome.escalation_error.as_ref().map(ToString::to_string),
        decision: &outcome.reason,
    };
    // Serialising plain structs of strings and numbers cannot fail.
    Response::new(JSON, serde_json::to_vec(&body).unwrap_or_default(), routing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::escalate::{EscalationError, RemoteAnswer};
    use crate::model::LocalAnswer;
    use hybrid_guest::remote::{CallRecord, RemoteError};
    use serde_json::json;

    fn local() -> LocalAnswer {
        LocalAnswer {
            label: 7,
            confidence: 0.93,
            model: "digits-v1".into(),
            version: "1".into(),
        }
    }

    fn remote() -> RemoteAnswer {
        RemoteAnswer {
            label: 1,
            endpoint: "strong".into(),
            call: CallRecord {
                endpoint: "strong".into(),
                model: "big-model".into(),
                cost_micro_usd: 10,
                latency_ms: 5,
                attempts: 1,
                ..CallRecord::default()
            },
        }
    }

    fn json_of(answer: &Response) -> serde_json::Value {
        serde_json::from_slice(&answer.body).expect("JSON")
    }

    #[test]
    fn a_local_answer() {
        let a = answer(&Outcome::local(
            local(),
            "confidence 0.93 >= threshold 0.90".into(),
        ));
        assert_eq!(
            json_of(&a),
            json!({"label": "7", "confidence": 0.93, "answered_by": "local",
                   "local": {"label": "7", "confidence": 0.93},
                   "decision": "confidence 0.93 >= threshold 0.90"})
        );
        assert_eq!(
            a.routing,
            Routing {
                route: "local".into(),
                reason: "confidence 0.93 >= threshold 0.90".into(),
                model: "digits-v1".into(),
                model_version: "1".into(),
            }
        );
    }

    #[test]
    fn a_remote_answer_has_no_confidence() {
        let a = answer(&Outcome::remote(
            Some(local()),
            remote(),
            "escalated".into(),
        ));
        assert_eq!(
            json_of(&a),
            json!({"label": "1", "confidence": null, "answered_by": "remote",
                   "local": {"label": "7", "confidence": 0.93},
                   "remote": {"label": "1", "endpoint": "strong"},
                   "decision": "escalated"})
        );
        assert_eq!(
            (a.routing.route.as_str(), a.routing.model.as_str()),
            ("remote:strong", "big-model")
        );
        assert_eq!(a.routing.model_version, "");
        let spilled = json_of(&answer(&Outcome::remote(None, remote(), "busy".into())));
        assert!(spilled.get("local").is_none(), "{spilled}");
    }

    #[test]
    fn a_failed_escalation_is_reported() {
        let mut o = Outcome::local(local(), "fell back".into());
        o.escalation_error = Some(EscalationError::Remote(RemoteError::Timeout("slow".into())));
        let v = json_of(&answer(&o));
        assert_eq!(v["escalation_error"], "timeout: slow");
        assert_eq!(v["answered_by"], "local");
        assert!(v.get("remote").is_none());
    }
}
