//! The chat scenario on the SDK's scriptable host (`hybrid_guest::fake`), for the unit
//! tests: endpoint `chat`, closed and healthy; no budgets; the chat answer echoes the
//! last message (`fake reply to: <content>`) from model `provider-llama-70b`, billing 12
//! + 5 tokens and 11 micro-dollars in one 42 ms attempt. Every call is recorded.

use hybrid_guest::remote::{CallRecord, ChatResult, Usage};
use hybrid_guest::signals::EndpointHealth;

pub use hybrid_guest::fake::{ChatCall, FakeHost, fail, stream};

/// The scenario's host.
pub fn host() -> FakeHost {
    let mut host = FakeHost::new();
    host.endpoints = vec![EndpointHealth::healthy("chat")];
    host.on_chat = Box::new(|call: &ChatCall| {
        let last = call
            .messages
            .last()
            .map(|m| m.content.clone())
            .unwrap_or_default();
        Ok(ChatResult {
            content: format!("fake reply to: {last}"),
            finish_reason: "stop".into(),
            call: CallRecord {
                endpoint: call.endpoint.clone(),
                model: "provider-llama-70b".into(),
                usage: Usage {
                    input_tokens: 12,
                    output_tokens: 5,
                    audio_seconds: 0.0,
                },
                cost_micro_usd: 11,
                latency_ms: 42,
                attempts: 1,
                ..CallRecord::default()
            },
        })
    });
    host
}
