//! What happened to one request: the local model's answer (when it ran), the endpoint's
//! (when it was asked and answered), the escalation's failure (when it failed), and the
//! reason for the route, which becomes the routing record's reason and the body's
//! `decision`. The response ([`crate::response`]) and the log line are built from it.

use crate::escalate::{EscalationError, RemoteAnswer};
use crate::model::LocalAnswer;

/// Who answered one request, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The local model's answer, when it ran.
    pub local: Option<LocalAnswer>,
    /// The endpoint's answer, when it was asked and answered; then it is the answer.
    pub remote: Option<RemoteAnswer>,
    /// Why the escalation failed, when it was tried and failed.
    pub escalation_error: Option<EscalationError>,
    /// Why this route, e.g. `confidence 0.97 >= threshold 0.90`.
    pub reason: String,
}

impl Outcome {
    /// Answered by the local model, for `reason`.
    pub fn local(local: LocalAnswer, reason: String) -> Self {
        Self {
            local: Some(local),
            remote: None,
            escalation_error: None,
            reason,
        }
    }

    /// Answered by the endpoint (after the local model, if it ran), for `reason`.
    pub fn remote(local: Option<LocalAnswer>, remote: RemoteAnswer, reason: String) -> Self {
        Self {
            local,
            remote: Some(remote),
            escalation_error: None,
            reason,
        }
    }

    /// Puts `note` (e.g. what the policy redacted) in front of the reason.
    pub fn with_note(mut self, note: &str) -> Self {
        if !note.is_empty() {
            self.reason = format!("{note}; {}", self.reason);
        }
        self
    }

    /// One log phrase: who answered, the local confidence, the call's accounting or the
    /// escalation's failure case. Never the text, the labels or the provider's messages.
    pub fn log_note(&self) -> String {
        let mut note = match &self.remote {
            Some(r) => format!(
                "answered by remote:{} ({}): {} attempts, {} ms, {} micro-USD",
                r.endpoint, r.call.model, r.call.attempts, r.call.latency_ms, r.call.cost_micro_usd
            ),
            None => "answered by local".to_owned(),
        };
        if let Some(local) = &self.local {
            note.push_str(&format!("; local confidence {:.3}", local.confidence));
        }
        if let Some(error) = &self.escalation_error {
            note.push_str(&format!("; escalation failed: {}", error.case()));
        }
        note
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hybrid_guest::remote::{CallRecord, RemoteError};

    fn local() -> LocalAnswer {
        LocalAnswer {
            label: 4,
            confidence: 0.4213,
            model: "digits-v1".into(),
            version: "1".into(),
        }
    }

    #[test]
    fn notes_go_in_front_of_the_reason() {
        let o = Outcome::local(local(), "confidence 0.42".into()).with_note("redacted 1 e-mail");
        assert_eq!(o.reason, "redacted 1 e-mail; confidence 0.42");
        assert_eq!(o.clone().with_note("").reason, o.reason);
    }

    #[test]
    fn the_log_note_has_no_content() {
        let remote = RemoteAnswer {
            label: 9,
            endpoint: "strong".into(),
            call: CallRecord {
                endpoint: "strong".into(),
                model: "big-model".into(),
                cost_micro_usd: 130,
                latency_ms: 12,
                attempts: 1,
                ..CallRecord::default()
            },
        };
        let o = Outcome::remote(Some(local()), remote, "escalated".into());
        assert_eq!(
            o.log_note(),
            "answered by remote:strong (big-model): 1 attempts, 12 ms, 130 micro-USD; local \
             confidence 0.421"
        );
        let mut o = Outcome::local(local(), "why".into());
        o.escalation_error = Some(EscalationError::Remote(RemoteError::Unavailable(
            "secret detail".into(),
        )));
        assert_eq!(
            o.log_note(),
            "answered by local; local confidence 0.421; escalation failed: unavailable"
        );
    }
}
