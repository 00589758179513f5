//! The two ways a request reaches the endpoint, and the rule for when it fails.
//!
//! - [`run`], the confidence cascade: run the local model; with `route=local` answer with
//!   it; with `route=remote` escalate; otherwise answer locally when the top probability
//!   is at least the threshold, and escalate below it.
//! - [`remote_first`]: escalate without running the local model (the policy's spill
//!   rule, when the box is busy).
//! - [`local_only`]: answer with the local model, never calling the endpoint (the
//!   policy's rules that keep a request on the box).
//! - [`fall_back`]: an escalation failed (any remote error, or a reply without a digit).
//!   With `setting.fallback=local` the local model answers (it runs now if it has not)
//!   and the reason says the escalation failed and why; with `fallback=error` the request
//!   fails with `upstream`, naming the endpoint and its error.
//!
//! Confidence and threshold are compared as f32 (the model's precision), so a threshold
//! written `0.9` and a probability of 0.9 are equal; they are shown with two decimals,
//! or as many as the threshold needs (`0.999`), or more when fewer would make different
//! values look equal.

use hybrid_guest::{Error, Host};

use crate::escalate::{self, EscalationError};
use crate::model::{self, LocalAnswer};
use crate::outcome::Outcome;
use crate::prompt;
use crate::request::Digit;
use crate::settings::{Fallback, Route, Settings};

/// The confidence cascade on `digit`; `context` is the text that may leave the box
/// (already redacted), sent as the prompt's last line.
pub fn run(
    host: &mut impl Host,
    settings: &Settings,
    route: Route,
    digit: &Digit,
    context: Option<&str>,
) -> Result<Outcome, Error> {
    let local = model::classify(host, &settings.model, digit)?;
    let why = match route {
        Route::Local => {
            let reason = format!(
                "route=local requested: answered locally (confidence {})",
                two_decimals(local.confidence)
            );
            return Ok(Outcome::local(local, reason));
        }
        Route::Remote => "route=remote requested".to_owned(),
        Route::Auto => {
            let (confident, comparison) = compare(local.confidence, settings.threshold);
            if confident {
                return Ok(Outcome::local(local, comparison));
            }
            comparison
        }
    };
    let messages = prompt::messages(digit, context);
    match escalate::escalate(host, &settings.endpoint, &messages) {
        Ok(remote) => Ok(Outcome::remote(
            Some(local),
            remote,
            format!("{why}: escalated"),
        )),
        Err(error) => fall_back(host, settings, digit, Some(local), &why, error),
    }
}

/// Escalates `digit` without running the local model first; `why` is the reason to
/// escalate, e.g. `queue depth 3 >= 2: spilled to serverless`.
pub fn remote_first(
    host: &mut impl Host,
    settings: &Settings,
    digit: &Digit,
    context: Option<&str>,
    why: &str,
) -> Result<Outcome, Error> {
    let messages = prompt::messages(digit, context);
    match escalate::escalate(host, &settings.endpoint, &messages) {
        Ok(remote) => Ok(Outcome::remote(None, remote, why.to_owned())),
        Err(error) => fall_back(host, settings, digit, None, why, error),
    }
}

/// Answers `digit` with the local model for `reason`, without calling the endpoint.
pub fn local_only(
    host: &mut impl Host,
    settings: &Settings,
    digit: &Digit,
    reason: String,
) -> Result<Outcome, Error> {
    let local = model::classify(host, &settings.model, digit)?;
    Ok(Outcome::local(local, reason))
}

/// The escalation for `why` failed with `error`: the local answer (`local`, or the
/// model's run now) with the failure in the reason, or an `upstream` error, as
/// `settings.fallback` says.
pub fn fall_back(
    host: &mut impl Host,
    settings: &Settings,
    digit: &Digit,
    local: Option<LocalAnswer>,
    why: &str,
    error: EscalationError,
) -> Result<Outcome, Error> {
    if settings.fallback == Fallback::Error {
        return Err(Error::upstream(format!(
            "escalation to endpoint {:?} failed ({error}) and setting.fallback is error",
            settings.endpoint
        )));
    }
    let local = match local {
        Some(local) => local,
        None => model::classify(host, &settings.model, digit)?,
    };
    let reason = format!("{why}; escalation failed ({error}): answered locally");
    let mut outcome = Outcome::local(local, reason);
    outcome.escalation_error = Some(error);
    Ok(outcome)
}

/// Whether `confidence` meets `threshold`, and the comparison in words, e.g.
/// `confidence 0.42 < threshold 0.90`.
pub fn compare(confidence: f32, threshold: f64) -> (bool, String) {
    let threshold = threshold as f32;
    let confident = confidence >= threshold;
    let (c, t) = shown_apart(confidence, threshold);
    let op = if confident { ">=" } else { "<" };
    (confident, format!("confidence {c} {op} threshold {t}"))
}

/// `x` with two decimals.
fn two_decimals(x: f32) -> String {
    format!("{x:.2}")
}

/// `a` and `b` with the same number of decimals: at least two, enough to write `b` (a
/// threshold such as 0.999) exactly, and more (up to 8) when fewer would make different
/// values look equal.
fn shown_apart(a: f32, b: f32) -> (String, String) {
    let exact = (2..=8)
        .find(|&p| format!("{b:.p$}").parse::<f32>() == Ok(b))
        .unwrap_or(8);
    (exact..=8)
        .map(|p| (format!("{a:.p$}"), format!("{b:.p$}")))
        .find(|(x, y)| x != y || a == b)
        .unwrap_or_else(|| (format!("{a}"), format!("{b}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{self, ChatCall};
    use crate::request::PIXELS;
    use hybrid_guest::remote::RemoteError;

    fn settings() -> Settings {
        Settings {
            model: "digits-v1".into(),
            endpoint: "strong".into(),
            threshold: 0.9,
            fallback: Fallback::Local,
        }
    }

    fn digit(text: Option<&str>) -> Digit {
        Digit {
            levels: [4.0; PIXELS],
            text: text.map(str::to_owned),
        }
    }

    #[test]
    fn a_confident_local_answer_stands_and_nothing_is_called() {
        let mut host = fake::confident(7, 0.97);
        let o = run(&mut host, &settings(), Route::Auto, &digit(None), None).expect("answered");
        assert_eq!(o.reason, "confidence 0.97 >= threshold 0.90");
        assert_eq!(o.local.map(|l| l.label), Some(7));
        assert!(o.remote.is_none() && host.chats.is_empty());
    }

    #[test]
    fn an_unsure_one_is_escalated_with_the_context() {
        let mut host = fake::confident(7, 0.42);
        host.on_chat = fake::reply("1");
        let o = run(
            &mut host,
            &settings(),
            Route::Auto,
            &digit(Some("ignored")),
            Some("from the form"),
        )
        .expect("answered");
        assert_eq!(o.reason, "confidence 0.42 < threshold 0.90: escalated");
        assert_eq!(o.remote.map(|r| r.label), Some(1));
        assert_eq!(o.local.map(|l| l.label), Some(7));
        let ChatCall {
            endpoint, messages, ..
        } = &host.chats[0];
        assert_eq!(endpoint, "strong");
        assert_eq!(messages[1].content, "Context: from the form");
    }

    #[test]
    fn the_route_forces_the_choice() {
        let mut host = fake::confident(7, 0.42);
        let o = run(&mut host, &settings(), Route::Local, &digit(None), None).expect("local");
        assert_eq!(
            o.reason,
            "route=local requested: answered locally (confidence 0.42)"
        );
        assert!(host.chats.is_empty());
        let mut host = fake::confident(7, 0.99);
        let o = run(&mut host, &settings(), Route::Remote, &digit(None), None).expect("remote");
        assert_eq!(o.reason, "route=remote requested: escalated");
        assert_eq!(host.chats.len(), 1);
        assert_eq!(host.runs.len(), 1, "the local model still ran");
    }

    #[test]
    fn a_failed_escalation_falls_back_to_the_local_answer() {
        let mut host = fake::confident(7, 0.42);
        host.on_chat = fake::fail(RemoteError::Unavailable(
            "circuit open for endpoint \"strong\"".into(),
        ));
        let o = run(&mut host, &settings(), Route::Auto, &digit(None), None).expect("fallback");
        assert_eq!(
            o.reason,
            "confidence 0.42 < threshold 0.90; escalation failed (unavailable: circuit open \
             for endpoint \"strong\"): answered locally"
        );
        assert_eq!(o.local.map(|l| l.label), Some(7));
        assert!(o.remote.is_none());
        assert_eq!(o.escalation_error.map(|e| e.case()), Some("unavailable"));
        host.on_chat = fake::reply("no idea");
        let o = run(&mut host, &settings(), Route::Auto, &digit(None), None).expect("fallback");
        assert!(
            o.reason.contains("escalation failed (bad answer"),
            "{}",
            o.reason
        );
    }

    #[test]
    fn fallback_error_fails_upstream_naming_the_endpoint() {
        let mut host = fake::confident(7, 0.42);
        host.on_chat = fake::fail(RemoteError::BudgetExceeded("per-day budget spent".into()));
        let settings = Settings {
            fallback: Fallback::Error,
            ..settings()
        };
        let e = run(&mut host, &settings, Route::Auto, &digit(None), None).expect_err("502");
        assert_eq!(
            e,
            Error::upstream(
                "escalation to endpoint \"strong\" failed (budget-exceeded: per-day budget \
                 spent) and setting.fallback is error"
            )
        );
    }

    #[test]
    fn remote_first_runs_the_local_model_only_on_failure() {
        let mut host = fake::confident(7, 0.99);
        host.on_chat = fake::reply("3");
        let o = remote_first(&mut host, &settings(), &digit(None), None, "busy").expect("remote");
        assert_eq!((o.reason.as_str(), o.local.is_none()), ("busy", true));
        assert!(host.runs.is_empty());
        host.on_chat = fake::fail(RemoteError::Timeout("slow".into()));
        let o = remote_first(&mut host, &settings(), &digit(None), None, "busy").expect("local");
        assert_eq!(
            o.reason,
            "busy; escalation failed (timeout: slow): answered locally"
        );
        assert_eq!(host.runs.len(), 1);
    }

    #[test]
    fn comparisons_are_shown_apart_and_made_in_f32() {
        assert_eq!(
            compare(0.9, 0.9),
            (true, "confidence 0.90 >= threshold 0.90".into())
        );
        assert_eq!(
            compare(0.899, 0.9),
            (false, "confidence 0.899 < threshold 0.900".into())
        );
        assert_eq!(
            compare(1.0, 0.5),
            (true, "confidence 1.00 >= threshold 0.50".into())
        );
        assert_eq!(
            compare(0.3844952, 0.999),
            (false, "confidence 0.384 < threshold 0.999".into())
        );
    }
}
