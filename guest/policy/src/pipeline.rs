//! One request through the policy, from body to answer.
//!
//! Steps: parse the body ([`classify::request`]); read the settings ([`crate::settings`]);
//! scan the text for personal data ([`crate::pii`]) and decide what text may leave (all
//! of it when there is none, the redacted text when the operator allows, none
//! otherwise); build the escalation prompt from that, to price it; gather the facts
//! ([`crate::facts`]) and apply the rules ([`crate::rules`]); then answer locally, spill
//! to serverless ([`classify::cascade::remote_first`]) or run the cascade
//! ([`classify::cascade::run`]), with the rules' note in front of the cascade's reason.
//! Every request gets one info log line: sizes, the deciding rule and who answered, or the
//! error case; never the pixels, the text or the provider's messages.

use classify::cascade;
use classify::outcome::Outcome;
use classify::prompt;
use classify::request;
use classify::response;
use classify::settings::Route;
use hybrid_guest::metadata::Metadata;
use hybrid_guest::{Error, Host, Request, Response};

use crate::facts;
use crate::pii::{self, Counts};
use crate::rules::{self, Action, Rule};
use crate::settings::{PolicySettings, Redact};

/// Handles one request.
pub fn handle(host: &mut impl Host, request: &Request) -> Result<Response, Error> {
    let mut rule = None;
    let result = serve(host, request, &mut rule);
    let rule = rule.map_or_else(String::new, |r| format!("rule {}; ", r.name()));
    let note = match &result {
        Ok(outcome) => outcome.log_note(),
        Err(e) => format!("refused: {}", e.case()),
    };
    host.log_info(&format!(
        "policy {}: {} body bytes; {rule}{note}",
        request.id,
        request.body.len()
    ));
    result.map(|outcome| response::answer(&outcome))
}

/// The steps; `rule` is set once the rules have decided.
fn serve(
    host: &mut impl Host,
    request: &Request,
    rule: &mut Option<Rule>,
) -> Result<Outcome, Error> {
    let digit = request::parse(&request.content_type, &request.body)?;
    let settings = PolicySettings::from_metadata(&Metadata::of(request))?;
    let findings = digit.text.as_deref().map(pii::scan).unwrap_or_default();
    let context = match &digit.text {
        Some(text) if findings.is_empty() => Some(text.clone()),
        Some(text) if settings.redact == Redact::Allow => Some(pii::redact(text, &findings)),
        _ => None,
    };
    let messages = prompt::messages(&digit, context.as_deref());
    let facts = facts::gather(
        host,
        &settings,
        Counts::of(&findings),
        request.body.len(),
        &messages,
        prompt::MAX_TOKENS,
    );
    let decision = rules::decide(&facts);
    *rule = Some(decision.rule);
    let cascade = &settings.cascade;
    match decision.action {
        Action::Local => cascade::local_only(host, cascade, &digit, decision.reason),
        Action::Spill => {
            cascade::remote_first(host, cascade, &digit, context.as_deref(), &decision.reason)
        }
        Action::Cascade => cascade::run(host, cascade, Route::Auto, &digit, context.as_deref())
            .map(|outcome| outcome.with_note(&decision.reason)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use classify::fake::{self, FakeHost};
    use hybrid_guest::remote::RemoteError;
    use hybrid_guest::signals::CircuitState;

    fn send(
        host: &mut FakeHost,
        body: &[u8],
        metadata: &[(&str, &str)],
    ) -> Result<Response, Error> {
        handle(host, &fake::request(body, metadata))
    }

    /// A host whose model is unsure, so that only the rules keep a request local.
    fn unsure() -> FakeHost {
        fake::confident(5, 0.42)
    }

    const PERSONAL: &str = "from jane@example.com, card 4111 1111 1111 1111";

    #[test]
    fn with_no_rule_matching_the_cascade_decides() {
        let mut host = unsure();
        let a = send(&mut host, &fake::body(Some("second form")), &[]).expect("answered");
        assert_eq!(a.routing.route, "remote:strong");
        assert_eq!(
            a.routing.reason,
            "confidence 0.42 < threshold 0.90: escalated"
        );
        assert!(host.chats[0].messages[1].content == "Context: second form");
        assert_eq!(
            host.logs,
            [
                "policy r1: 161 body bytes; rule cascade; answered by remote:strong (sim-large): \
              1 attempts, 20 ms, 3 micro-USD; local confidence 0.420"
            ]
        );
        let mut host = fake::confident(5, 0.95);
        let a = send(&mut host, &fake::body(None), &[]).expect("answered");
        assert_eq!(
            (a.routing.route.as_str(), a.routing.reason.as_str()),
            ("local", "confidence 0.95 >= threshold 0.90")
        );
    }

    #[test]
    fn private_requests_stay_local_without_a_call() {
        let mut host = unsure();
        let a = send(&mut host, &fake::body(None), &[("private", "true")]).expect("local");
        assert_eq!(
            (a.routing.route.as_str(), a.routing.reason.as_str()),
            ("local", "tagged private: stays on the box")
        );
        assert_eq!(fake::json_body(&a)["label"], "5");
        assert!(host.chats.is_empty());
        assert!(host.logs[0].contains("rule private"), "{}", host.logs[0]);
    }

    #[test]
    fn personal_data_stays_local_by_default() {
        let mut host = unsure();
        let a = send(&mut host, &fake::body(Some(PERSONAL)), &[]).expect("local");
        assert_eq!(
            a.routing.reason,
            "personal data (e-mail, card) stays on the box"
        );
        assert!(host.chats.is_empty());
        assert!(!host.logs[0].contains("jane"), "{}", host.logs[0]);
    }

    #[test]
    fn personal_data_leaves_redacted_when_allowed() {
        let mut host = unsure();
        let a = send(
            &mut host,
            &fake::body(Some(PERSONAL)),
            &[("setting.redact", "allow")],
        )
        .expect("remote");
        assert_eq!(
            a.routing.reason,
            "redacted 1 e-mail, 1 card; confidence 0.42 < threshold 0.90: escalated"
        );
        let prompt = &host.chats[0].messages[1].content;
        assert_eq!(prompt, "Context: from [EMAIL], card [CARD]");
        assert!(!prompt.contains("jane") && !prompt.contains("4111"));
    }

    #[test]
    fn signals_keep_it_local_without_a_call() {
        let mut open = unsure();
        open.endpoints[0].circuit = CircuitState::Open;
        let mut spent = unsure();
        spent.spend[2].budget_micro_usd = Some(5_000_000);
        spent.spend[2].spent_micro_usd = 5_000_000;
        for (mut host, reason) in [
            (open, "endpoint strong circuit open: stays on the box"),
            (
                spent,
                "per-day budget spent ($5.000000 of $5.000000): stays on the box",
            ),
        ] {
            let a = send(&mut host, &fake::body(None), &[]).expect("local");
            assert_eq!(
                (a.routing.route.as_str(), a.routing.reason.as_str()),
                ("local", reason)
            );
            assert!(host.chats.is_empty());
        }
    }

    #[test]
    fn dear_egress_keeps_large_bodies_local() {
        let mut host = unsure();
        let settings = [
            ("setting.egress", "dear"),
            ("setting.max_egress_bytes", "100"),
        ];
        let a = send(&mut host, &fake::body(None), &settings).expect("local");
        assert_eq!(
            a.routing.reason,
            "egress dear and body 140 bytes > 100: stays on the box"
        );
        assert!(host.chats.is_empty());
    }

    #[test]
    fn the_cost_ceiling_is_checked_before_calling() {
        // The prompt is 2 messages: 173 chars (44 tokens) + 126 chars (32 tokens), 2 out:
        // 78 tokens at $1 per million each way.
        let mut host = unsure();
        let a = send(
            &mut host,
            &fake::body(None),
            &[("setting.max_cost_usd", "0.00005")],
        )
        .expect("local");
        assert_eq!(
            a.routing.reason,
            "escalation would cost $0.000078 > ceiling $0.000050: stays on the box"
        );
        assert!(host.chats.is_empty());
        let ceiling = [
            ("setting.max_cost_usd", "0.0001"),
            ("max_cost_usd", "0.00006"),
        ];
        let a = send(&mut host, &fake::body(None), &ceiling).expect("local");
        assert!(
            a.routing.reason.contains("> ceiling $0.000060"),
            "{}",
            a.routing.reason
        );
        let raised = [("setting.max_cost_usd", "0.0001"), ("max_cost_usd", "1")];
        let a = send(&mut host, &fake::body(None), &raised).expect("remote");
        assert_eq!(a.routing.route, "remote:strong");
        assert_eq!(host.chats.len(), 1);
    }

    #[test]
    fn a_busy_box_spills_without_running_the_model() {
        let mut host = unsure();
        host.load.queue_depth = 2;
        let a = send(
            &mut host,
            &fake::body(None),
            &[("setting.spill_queue_depth", "2")],
        )
        .expect("spill");
        assert_eq!(
            (a.routing.route.as_str(), a.routing.reason.as_str()),
            ("remote:strong", "queue depth 2 >= 2: spilled to serverless")
        );
        assert!(host.runs.is_empty(), "the local model did not run");
        assert!(fake::json_body(&a).get("local").is_none());
        let a = send(
            &mut host,
            &fake::body(None),
            &[("setting.spill_queue_depth", "3")],
        )
        .expect("cascade");
        assert_eq!(
            a.routing.reason,
            "confidence 0.42 < threshold 0.90: escalated"
        );
        assert_eq!(host.runs.len(), 1);
    }

    #[test]
    fn a_failed_spill_falls_back_as_configured() {
        let mut host = unsure();
        host.on_chat = fake::fail(RemoteError::Unavailable("503 three times".into()));
        let spill = ("setting.spill_queue_depth", "0");
        let a = send(&mut host, &fake::body(None), &[spill]).expect("fallback");
        assert_eq!(a.routing.route, "local");
        assert_eq!(
            a.routing.reason,
            "queue depth 0 >= 0: spilled to serverless; escalation failed (unavailable: 503 \
             three times): answered locally"
        );
        assert_eq!(host.runs.len(), 1, "the local model ran after the failure");
        let e = send(
            &mut host,
            &fake::body(None),
            &[spill, ("setting.fallback", "error")],
        )
        .expect_err("502");
        assert!(matches!(e, Error::Upstream(_)));
    }

    #[test]
    fn the_client_cannot_force_the_route_or_set_settings_badly() {
        let mut host = unsure();
        let a = send(
            &mut host,
            &fake::body(Some(PERSONAL)),
            &[("route", "remote")],
        )
        .expect("local");
        assert_eq!(a.routing.route, "local", "route is not read by the policy");
        let e = send(&mut host, &fake::body(None), &[("private", "maybe")]).expect_err("400");
        assert!(matches!(&e, Error::BadRequest(m) if m.contains("\"private\"")));
        assert!(host.chats.is_empty());
    }
}
