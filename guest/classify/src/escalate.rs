//! The escalation: one `remote.chat` call with the prompt ([`crate::prompt`]) and its
//! reply read as a digit ([`crate::answer`]).
//!
//! A failure is either the host's remote error (timeout, circuit open, budget exceeded,
//! rejected, ...) or a bad answer: a reply with no digit in it. The pipelines treat both
//! the same way (see [`crate::cascade::fall_back`]). The reply's text is never quoted in
//! a failure, only its length: it goes into routing reasons and logs.

use std::fmt;

use hybrid_guest::Host;
use hybrid_guest::remote::{CallRecord, Message, RemoteError};

use crate::answer;
use crate::prompt;

/// The endpoint's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteAnswer {
    /// The digit the endpoint named, 0 to 9.
    pub label: u8,
    /// The endpoint asked.
    pub endpoint: String,
    /// What the call cost and which model answered.
    pub call: CallRecord,
}

/// Why an escalation gave no answer.
#[derive(Debug, Clone, PartialEq)]
pub enum EscalationError {
    /// The call failed.
    Remote(RemoteError),
    /// The call succeeded but its reply holds no digit.
    BadAnswer {
        /// Characters in the reply.
        chars: usize,
        /// The call, which was paid for.
        call: CallRecord,
    },
}

impl EscalationError {
    /// A short name for logs: the remote error's WIT case, or `bad-answer`.
    pub fn case(&self) -> &'static str {
        match self {
            Self::Remote(e) => e.case(),
            Self::BadAnswer { .. } => "bad-answer",
        }
    }
}

impl fmt::Display for EscalationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Remote(e) => write!(f, "{e}"),
            Self::BadAnswer { chars, call } => write!(
                f,
                "bad answer: the reply of {} ({chars} chars) has no digit",
                call.model
            ),
        }
    }
}

/// Asks `endpoint` with `messages` and reads the digit it answers.
pub fn escalate(
    host: &mut impl Host,
    endpoint: &str,
    messages: &[Message],
) -> Result<RemoteAnswer, EscalationError> {
    let result = host
        .chat(endpoint, messages, &prompt::params())
        .map_err(EscalationError::Remote)?;
    match answer::label(&result.content) {
        Some(label) => Ok(RemoteAnswer {
            label,
            endpoint: endpoint.to_owned(),
            call: result.call,
        }),
        None => Err(EscalationError::BadAnswer {
            chars: result.content.chars().count(),
            call: result.call,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{self, ChatCall, FakeHost};

    fn ask(host: &mut FakeHost) -> Result<RemoteAnswer, EscalationError> {
        let messages = vec![Message {
            role: "user".into(),
            content: "which digit?".into(),
        }];
        escalate(host, "strong", &messages)
    }

    #[test]
    fn a_digit_in_the_reply_is_the_answer() {
        let mut host = fake::confident(1, 0.5);
        host.on_chat = fake::reply("It is 8.");
        let answer = ask(&mut host).expect("answered");
        assert_eq!((answer.label, answer.endpoint.as_str()), (8, "strong"));
        assert_eq!(answer.call.model, "sim-large");
        let ChatCall {
            endpoint,
            messages,
            params,
        } = &host.chats[0];
        assert_eq!((endpoint.as_str(), messages.len()), ("strong", 1));
        assert_eq!(*params, prompt::params());
    }

    #[test]
    fn no_digit_or_a_remote_error_is_a_failure() {
        let mut host = fake::confident(1, 0.5);
        host.on_chat = fake::reply("sim reply");
        let e = ask(&mut host).expect_err("no digit");
        assert_eq!(e.case(), "bad-answer");
        assert_eq!(
            e.to_string(),
            "bad answer: the reply of sim-large (9 chars) has no digit"
        );
        host.on_chat = fake::fail(RemoteError::Timeout("no answer within 100 ms".into()));
        let e = ask(&mut host).expect_err("timeout");
        assert_eq!(e.to_string(), "timeout: no answer within 100 ms");
        assert_eq!(e.case(), "timeout");
    }
}
