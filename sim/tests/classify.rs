//! The classification stand-in over loopback: a chat completion whose last user message
//! carries a workload example's numbers is answered with the label, one completion token,
//! through the same pipeline (faults, quota) as any chat request; other prompts get the
//! ordinary reply.

mod common;

use common::{KEY, chat_body, post_json, sse_data};
use hybrid_sim::{ApiKey, Classifier, Scenario, SimConfig, SimHandle};
use serde_json::{Value, json};

/// Two 8x8 "digit" examples in the workload's JSONL shape.
fn workload() -> Classifier {
    let pixels = |fill: i64| (0..64).map(|i| (i * fill) % 17).collect::<Vec<_>>();
    let text = format!(
        "{}\n\n{}\n",
        json!({"id": "digits-0000", "content_type": "application/json", "body": {"pixels": pixels(3)}, "label": "0"}),
        json!({"id": "digits-0001", "content_type": "application/json", "body": {"pixels": pixels(5)}, "label": 7}),
    );
    Classifier::from_jsonl("digits.jsonl", &text, 1.0).expect("a valid workload")
}

/// The pixels of example `fill` written as a prompt, the way a client would.
fn prompt(fill: i64) -> String {
    let pixels: Vec<String> = (0..64).map(|i| ((i * fill) % 17).to_string()).collect();
    format!("pixels: {}", pixels.join(","))
}

fn start(scenario: Scenario) -> SimHandle {
    let key = ApiKey::new(KEY).expect("non-empty key");
    let config = SimConfig::with_key(key)
        .scenario(scenario)
        .classifier(workload());
    hybrid_sim::spawn(config).expect("simulator starts")
}

fn content(reply: &Value) -> &str {
    reply["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
}

#[test]
fn known_numbers_are_answered_with_the_label() {
    let sim = start(Scenario::default());
    let mut body = chat_body(&prompt(5));
    body["messages"] = json!([
        {"role": "system", "content": "Answer with the digit only."},
        {"role": "user", "content": "ignored: 1 2 3"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": prompt(5)},
    ]);
    let answer = post_json(&sim, "/v1/chat/completions", &body);
    assert_eq!(answer.status, 200);
    let reply = answer.json();
    assert_eq!(content(&reply), "7");
    assert_eq!(reply["choices"][0]["finish_reason"], "stop");
    assert_eq!(reply["usage"]["completion_tokens"], 1);
    // The prompt is counted as for any chat: ceil(chars / 4) per message.
    let prompt_tokens: u64 = body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["content"].as_str())
        .map(|text| (text.chars().count() as u64).div_ceil(4).max(1))
        .sum();
    assert_eq!(reply["usage"]["prompt_tokens"], prompt_tokens);

    let reply = post_json(&sim, "/v1/chat/completions", &chat_body(&prompt(3))).json();
    assert_eq!(content(&reply), "0");
    assert_eq!(sim.stats().classified.correct, 2);
}

#[test]
fn unknown_numbers_get_the_ordinary_reply() {
    let sim = start(Scenario::default());
    for text in ["pixels: 1,2,3", "no numbers at all"] {
        let reply = post_json(&sim, "/v1/chat/completions", &chat_body(text)).json();
        assert_eq!(content(&reply), format!("sim reply to: {text}"));
    }
    let counts = sim.stats().classified;
    assert_eq!((counts.correct, counts.wrong, counts.unmatched), (0, 0, 2));
}

#[test]
fn a_streamed_label_is_one_chunk() {
    let sim = start(Scenario::default());
    let mut body = chat_body(&prompt(5));
    body["stream"] = json!(true);
    let answer = post_json(&sim, "/v1/chat/completions", &body);
    assert_eq!(answer.status, 200);
    let contents: Vec<String> = sse_data(&answer.body)
        .iter()
        .filter_map(|data| serde_json::from_str::<Value>(data).ok())
        .filter_map(|chunk| {
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(contents, ["7"]);
}

#[test]
fn faults_still_apply_to_classification_prompts() {
    let sim = start(Scenario::from_toml(r#"sequence = ["503", "ok"]"#).expect("a scenario"));
    let body = chat_body(&prompt(5));
    assert_eq!(post_json(&sim, "/v1/chat/completions", &body).status, 503);
    let reply = post_json(&sim, "/v1/chat/completions", &body).json();
    assert_eq!(content(&reply), "7");
    assert_eq!(sim.stats().count("/v1/chat/completions", 503), 1);
}
