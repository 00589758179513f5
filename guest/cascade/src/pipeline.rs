//! One request through the cascade, from body to answer.
//!
//! Steps: parse the body ([`classify::request`]); read the settings and the client's
//! `route` ([`classify::settings`]); run the cascade ([`classify::cascade::run`]) with the
//! request's text as the prompt's context; build the body and routing record
//! ([`classify::response`]). Every request gets one info log line: sizes and who answered,
//! or the error case; never the pixels, the text or the provider's messages.

use classify::cascade;
use classify::outcome::Outcome;
use classify::request;
use classify::response;
use classify::settings::{Route, Settings};
use hybrid_guest::metadata::Metadata;
use hybrid_guest::{Error, Host, Request, Response};

/// Handles one request.
pub fn handle(host: &mut impl Host, request: &Request) -> Result<Response, Error> {
    let result = serve(host, request);
    let note = match &result {
        Ok(outcome) => outcome.log_note(),
        Err(e) => format!("refused: {}", e.case()),
    };
    host.log_info(&format!(
        "cascade {}: {} body bytes; {note}",
        request.id,
        request.body.len()
    ));
    result.map(|outcome| response::answer(&outcome))
}

fn serve(host: &mut impl Host, request: &Request) -> Result<Outcome, Error> {
    let digit = request::parse(&request.content_type, &request.body)?;
    let metadata = Metadata::of(request);
    let settings = Settings::from_metadata(&metadata)?;
    let route = Route::from_metadata(&metadata)?;
    cascade::run(host, &settings, route, &digit, digit.text.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use classify::fake::{self, FakeHost};
    use hybrid_guest::remote::RemoteError;

    fn send(
        host: &mut FakeHost,
        body: &[u8],
        metadata: &[(&str, &str)],
    ) -> Result<Response, Error> {
        handle(host, &fake::request(body, metadata))
    }

    #[test]
    fn a_sure_model_answers_locally() {
        let mut host = fake::confident(5, 0.97);
        let a = send(&mut host, &fake::body(None), &[]).expect("answered");
        assert_eq!(a.routing.route, "local");
        assert_eq!(a.routing.reason, "confidence 0.97 >= threshold 0.90");
        assert_eq!(
            (a.routing.model.as_str(), a.routing.model_version.as_str()),
            ("digits-v1", "1")
        );
        assert_eq!(fake::json_body(&a)["label"], "5");
        assert!(host.chats.is_empty());
        assert_eq!(
            host.logs,
            ["cascade r1: 140 body bytes; answered by local; local confidence 0.970"]
        );
    }

    #[test]
    fn the_threshold_and_endpoint_come_from_settings_and_the_client() {
        let mut host = fake::confident(5, 0.97);
        let a = send(
            &mut host,
            &fake::body(Some("scanned form")),
            &[
                ("setting.threshold", "0.5"),
                ("threshold", "0.99"),
                ("setting.endpoint", "strong"),
            ],
        )
        .expect("answered");
        assert_eq!(a.routing.route, "remote:strong");
        assert_eq!(
            a.routing.reason,
            "confidence 0.97 < threshold 0.99: escalated"
        );
        assert_eq!(
            (a.routing.model.as_str(), a.routing.model_version.as_str()),
            ("sim-large", "")
        );
        let v = fake::json_body(&a);
        assert_eq!(
            (v["label"].as_str(), v["confidence"].is_null()),
            (Some("7"), true)
        );
        assert!(host.chats[0].messages[1].content == "Context: scanned form");
        assert!(
            host.logs[0].contains("answered by remote:strong (sim-large)")
                && !host.logs[0].contains("scanned"),
            "{}",
            host.logs[0]
        );
    }

    #[test]
    fn route_local_never_calls_and_route_remote_always_does() {
        let mut host = fake::confident(5, 0.2);
        let a = send(&mut host, &fake::body(None), &[("route", "local")]).expect("local");
        assert_eq!(a.routing.route, "local");
        assert!(host.chats.is_empty());
        let mut host = fake::confident(5, 0.99);
        let a = send(&mut host, &fake::body(None), &[("route", "remote")]).expect("remote");
        assert_eq!(a.routing.route, "remote:strong");
    }

    #[test]
    fn a_failed_escalation_answers_locally_or_fails_as_configured() {
        let mut host = fake::confident(5, 0.42);
        host.on_chat = fake::fail(RemoteError::Unavailable("circuit open".into()));
        let a = send(&mut host, &fake::body(None), &[]).expect("fallback");
        assert_eq!(a.routing.route, "local");
        assert_eq!(
            a.routing.reason,
            "confidence 0.42 < threshold 0.90; escalation failed (unavailable: circuit open): \
             answered locally"
        );
        assert_eq!(
            fake::json_body(&a)["escalation_error"],
            "unavailable: circuit open"
        );
        let e = send(
            &mut host,
            &fake::body(None),
            &[("setting.fallback", "error")],
        )
        .expect_err("502");
        assert!(
            matches!(&e, Error::Upstream(m) if m.contains("\"strong\"")),
            "{e}"
        );
        assert!(
            host.logs[1].ends_with("refused: upstream"),
            "{}",
            host.logs[1]
        );
    }

    #[test]
    fn bad_bodies_and_metadata_are_refused_before_the_model_runs() {
        let mut host = fake::confident(5, 0.42);
        let e = send(&mut host, b"{\"pixels\": [1]}", &[]).expect_err("short");
        assert!(matches!(&e, Error::BadRequest(m) if m.contains("has 1 values")));
        let e = send(&mut host, &fake::body(None), &[("route", "cloud")]).expect_err("route");
        assert!(matches!(&e, Error::BadRequest(m) if m.contains("\"route\"")));
        let e =
            send(&mut host, &fake::body(None), &[("threshold", "-0.1")]).expect_err("threshold");
        assert!(matches!(&e, Error::BadRequest(m) if m.contains("\"threshold\"")));
        assert!(host.runs.is_empty() && host.chats.is_empty());
    }
}
