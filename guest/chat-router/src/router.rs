//! One chat-completions request, from body to response; the order of the steps.
//!
//! Steps: parse and validate the request ([`request`]); read the options from metadata
//! ([`metadata`]); decide from the signals whether calling the endpoint makes sense now
//! ([`policy`]); make the call ([`call`]); build the OpenAI body ([`response`]). Every
//! request that reaches this module gets one info log line: sizes, the decision and the
//! call's accounting, or the stage that refused it and the error case; never message
//! content, and never the provider's error text (it may quote the request).

use hybrid_guest::response::{JSON, remote_route};
use hybrid_guest::{Error, Host, Request, Response, Routing};

use crate::call;
use crate::metadata;
use crate::policy::{self, Refusal};
use crate::request;
use crate::response;

/// Characters per token in the rough input-size estimate logged (OpenAI's rule of thumb).
const CHARS_PER_TOKEN: usize = 4;

/// Handles one request: the OpenAI response (`application/json`) and the routing record,
/// `remote:<endpoint>` with the endpoint's health as the reason (e.g. `no local chat
/// model; endpoint chat healthy (error rate 0%)`) and the model the provider reported.
pub fn handle(host: &mut impl Host, request: &Request) -> Result<Response, Error> {
    let mut sizes = format!("{} body bytes", request.body.len());
    let result = route(host, request, &mut sizes);
    let outcome = match &result {
        Ok((_, note)) | Err((_, note)) => note,
    };
    host.log_info(&format!("chat-router {}: {sizes}; {outcome}", request.id));
    result.map(|(answer, _)| answer).map_err(|(error, _)| error)
}

/// The steps; each result carries the log line's outcome note. `sizes` grows as the
/// request is understood.
fn route(
    host: &mut impl Host,
    request: &Request,
    sizes: &mut String,
) -> Result<(Response, String), (Error, String)> {
    let refused = |stage: &str| {
        let stage = stage.to_owned();
        move |e: Error| {
            let note = format!("refused: {stage} ({})", e.case());
            (e, note)
        }
    };
    let chat =
        request::parse(&request.content_type, &request.body).map_err(refused("invalid request"))?;
    let chars = chat.content_chars();
    sizes.push_str(&format!(
        ", {} messages, {chars} chars (~{} input tokens)",
        chat.messages.len(),
        chars.div_ceil(CHARS_PER_TOKEN)
    ));
    let options = metadata::parse(&request.metadata).map_err(refused("invalid metadata"))?;
    let endpoint = options.endpoint.as_str();
    let reason = policy::decide(host, endpoint).map_err(|(refusal, e)| {
        let why = match refusal {
            Refusal::CircuitOpen => format!("circuit of {endpoint} open"),
            Refusal::BudgetSpent(window) => format!("per-{window} budget spent"),
        };
        let note = format!("not called: {why} ({})", e.case());
        (e, note)
    })?;
    let route = remote_route(endpoint);
    let result = call::chat(host, endpoint, &chat, options.pass_model).map_err(|e| {
        let case = e.case();
        let mapped = call::to_error(endpoint, e);
        let note = format!("{route} failed: {case} ({})", mapped.case());
        (mapped, note)
    })?;
    let body = response::body(&request.id, &chat.model, &route, &result);
    let c = &result.call;
    let note = format!(
        "{route} ({}): {} attempts, {} ms, {} + {} tokens, {} micro-USD, {} response bytes",
        c.model,
        c.attempts,
        c.latency_ms,
        c.usage.input_tokens,
        c.usage.output_tokens,
        c.cost_micro_usd,
        body.len()
    );
    let routing = Routing::remote(endpoint, reason, &result.call.model);
    Ok((Response::new(JSON, body, routing), note))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{self, FakeHost};
    use hybrid_guest::remote::RemoteError;
    use hybrid_guest::signals::CircuitState;

    const BODY: &str = r#"{"model": "house-llm", "temperature": 0.3,
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "secret plans"}]}"#;

    fn call(host: &mut FakeHost, body: &str, metadata: &[(&str, &str)]) -> Result<Response, Error> {
        let request = Request::new("r1", "application/json", body).with_metadata_pairs(metadata);
        handle(host, &request)
    }

    #[test]
    fn a_valid_request_is_answered_by_the_endpoint() {
        let mut host = fake::host();
        let answer = call(&mut host, BODY, &[]).expect("served");
        assert_eq!(answer.routing.route, "remote:chat");
        assert_eq!(
            answer.routing.reason,
            "no local chat model; endpoint chat healthy (error rate 0%)"
        );
        assert_eq!(answer.routing.model, "provider-llama-70b");
        assert_eq!(
            answer.routing.model_version, "",
            "providers report no version"
        );
        assert_eq!(answer.content_type, "application/json");
        let v: serde_json::Value = serde_json::from_slice(&answer.body).expect("JSON");
        assert_eq!(v["model"], "house-llm");
        assert_eq!(v["id"], "chatcmpl-r1");
        assert_eq!(
            v["choices"][0]["message"]["content"],
            "fake reply to: secret plans"
        );
        assert_eq!(v["usage"]["total_tokens"], 17);
        assert_eq!(v["hybrid"]["provider_model"], "provider-llama-70b");
        let fake::ChatCall {
            endpoint,
            messages,
            params,
        } = &host.chats[0];
        assert_eq!((endpoint.as_str(), messages.len()), ("chat", 2));
        assert_eq!(
            (params.temperature, params.model.as_deref()),
            (Some(0.3), None)
        );
        assert_eq!(host.logs.len(), 1);
        let log = &host.logs[0];
        assert!(
            log.starts_with("chat-router r1: ")
                && log.contains("2 messages, 20 chars (~5 input tokens)")
                && log.contains("remote:chat (provider-llama-70b): 1 attempts, 42 ms, 12 + 5 tokens, 11 micro-USD"),
            "{log}"
        );
        assert!(!log.contains("secret"), "the log line carries no content");
    }

    #[test]
    fn metadata_picks_the_endpoint_and_passes_the_model() {
        let mut host = fake::host();
        let answer = call(
            &mut host,
            BODY,
            &[("endpoint", "big"), ("pass_model", "true")],
        )
        .expect("served");
        assert_eq!(answer.routing.route, "remote:big");
        assert_eq!(host.chats[0].endpoint, "big");
        assert_eq!(host.chats[0].params.model.as_deref(), Some("house-llm"));
    }

    #[test]
    fn invalid_requests_and_metadata_never_reach_the_endpoint() {
        let mut host = fake::host();
        let e = call(&mut host, r#"{"model": "m", "messages": []}"#, &[]).expect_err("empty");
        assert!(matches!(e, Error::BadRequest(_)));
        let e = call(&mut host, BODY, &[("pass_model", "yes please")]).expect_err("flag");
        assert!(matches!(e, Error::BadRequest(_)));
        assert!(host.chats.is_empty());
        assert_eq!(host.logs.len(), 2);
        assert!(
            host.logs[0].ends_with("refused: invalid request (bad-request)"),
            "{}",
            host.logs[0]
        );
        assert!(
            host.logs[1].ends_with("refused: invalid metadata (bad-request)"),
            "{}",
            host.logs[1]
        );
    }

    #[test]
    fn an_open_circuit_or_a_spent_budget_fails_fast() {
        let mut host = fake::host();
        host.endpoints[0].circuit = CircuitState::Open;
        let e = call(&mut host, BODY, &[]).expect_err("open");
        assert!(matches!(&e, Error::Upstream(m) if m.contains("circuit open")));
        let mut host = fake::host();
        host.spend[2].budget_micro_usd = Some(0);
        let e = call(&mut host, BODY, &[]).expect_err("spent");
        assert!(matches!(&e, Error::Upstream(m) if m.contains("per-day") && m.contains("budget")));
        assert!(host.chats.is_empty());
        assert!(
            host.logs[0].ends_with("not called: per-day budget spent (upstream)"),
            "{}",
            host.logs[0]
        );
    }

    #[test]
    fn a_failed_call_is_mapped_and_logged_without_the_providers_text() {
        let mut host = fake::host();
        host.on_chat = fake::fail(RemoteError::Rejected {
            status: 400,
            message: "cannot parse 'secret plans'".into(),
        });
        let e = call(&mut host, BODY, &[]).expect_err("rejected");
        assert!(matches!(&e, Error::BadRequest(m) if m.contains("HTTP 400")));
        let log = &host.logs[0];
        assert!(
            log.ends_with("remote:chat failed: rejected (bad-request)"),
            "{log}"
        );
        assert!(!log.contains("secret"));
    }
}
