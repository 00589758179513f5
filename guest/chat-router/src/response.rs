//! The OpenAI `chat.completion` response.
//!
//! Body: `{"id": "chatcmpl-<request id>", "object": "chat.completion", "created": 0,
//! "model": "<the model the client asked for>", "choices": [{"index": 0, "message":
//! {"role": "assistant", "content": ...}, "finish_reason": ...}], "usage":
//! {"prompt_tokens", "completion_tokens", "total_tokens"}, "hybrid": {...}}`. `created` is
//! 0 because a guest has no wall clock (only a monotonic one); the host may overwrite it.
//! `model` echoes the client's name (the operator's alias) so clients matching on it keep
//! working; the model that actually answered is in `hybrid.provider_model`. `hybrid` is
//! our addition, which OpenAI clients ignore: route, provider model, cost, attempts and
//! latency of the call. Usage is what the provider billed, from the call record.

use hybrid_guest::remote::ChatResult;
use serde::Serialize;

#[derive(Debug, Serialize)]
struct Body<'a> {
    id: String,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [Choice<'a>; 1],
    usage: Usage,
    hybrid: Hybrid<'a>,
}

#[derive(Debug, Serialize)]
struct Choice<'a> {
    index: u32,
    message: AssistantMessage<'a>,
    finish_reason: &'a str,
}

#[derive(Debug, Serialize)]
struct AssistantMessage<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Debug, Serialize)]
struct Usage {
    prompt_tokens: u32,
    completion_tokens: u32,
    total_tokens: u64,
}

#[derive(Debug, Serialize)]
struct Hybrid<'a> {
    route: &'a str,
    provider_model: &'a str,
    cost_usd: f64,
    attempts: u32,
    latency_ms: u32,
}

/// The JSON body answering request `request_id`, which asked for `model`, served on
/// `route` with `result`.
pub fn body(request_id: &str, model: &str, route: &str, result: &ChatResult) -> Vec<u8> {
    let call = &result.call;
    let body = Body {
        id: format!("chatcmpl-{request_id}"),
        object: "chat.completion",
        created: 0,
        model,
        choices: [Choice {
            index: 0,
            message: AssistantMessage {
                role: "assistant",
                content: &result.content,
            },
            finish_reason: &result.finish_reason,
        }],
        usage: Usage {
            prompt_tokens: call.usage.input_tokens,
            completion_tokens: call.usage.output_tokens,
            total_tokens: u64::from(call.usage.input_tokens) + u64::from(call.usage.output_tokens),
        },
        hybrid: Hybrid {
            route,
            provider_model: &call.model,
            cost_usd: call.cost_micro_usd as f64 / 1e6,
            attempts: call.attempts,
            latency_ms: call.latency_ms,
        },
    };
    // Serialising plain structs of strings and numbers cannot fail.
    serde_json::to_vec(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hybrid_guest::remote::{CallRecord, Usage};

    #[test]
    fn has_openais_shape_plus_the_hybrid_block() {
        let result = ChatResult {
            content: "hello".into(),
            finish_reason: "length".into(),
            call: CallRecord {
                endpoint: "chat".into(),
                model: "llama3.3-70b-instruct".into(),
                usage: Usage {
                    input_tokens: 10,
                    output_tokens: 3,
                    audio_seconds: 0.0,
                },
                cost_micro_usd: 1_250,
                latency_ms: 87,
                attempts: 2,
                ..CallRecord::default()
            },
        };
        let body = body("req-7", "gpt-4o-mini", "remote:chat", &result);
        let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(
            v,
            serde_json::json!({
                "id": "chatcmpl-req-7",
                "object": "chat.completion",
                "created": 0,
                "model": "gpt-4o-mini",
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": "hello"},
                    "finish_reason": "length",
                }],
                "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13},
                "hybrid": {
                    "route": "remote:chat",
                    "provider_model": "llama3.3-70b-instruct",
                    "cost_usd": 0.00125,
                    "attempts": 2,
                    "latency_ms": 87,
                },
            })
        );
    }
}
