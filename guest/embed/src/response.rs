//! The OpenAI embeddings response and the routing reason.
//!
//! Body: `{"object": "list", "data": [{"object": "embedding", "index": i, "embedding":
//! [...] | "<base64>"}], "model": "<local model>", "model_sha256": "<hex>", "usage":
//! {"prompt_tokens": n, "total_tokens": n}}`, where `n` counts every token the tokenizer
//! produced, `[CLS]` and `[SEP]` included. `model_sha256` is our addition (OpenAI clients
//! ignore unknown fields): the identity of the exact model file that answered. Base64 is
//! of each vector's little-endian f32 bytes, as OpenAI encodes it. An answer served by a
//! serverless endpoint adds `"hybrid": {"route": "remote:<endpoint>", "cost_usd": x,
//! "attempts": n}`, saying where the vectors came from and what they cost.

use base64::Engine as _;
use serde::Serialize;

use crate::request::EncodingFormat;

/// One vector as the client asked for it.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Vector {
    Float(Vec<f32>),
    Base64(String),
}

#[derive(Debug, Serialize)]
struct Item {
    object: &'static str,
    index: usize,
    embedding: Vector,
}

#[derive(Debug, Serialize)]
struct Usage {
    prompt_tokens: usize,
    total_tokens: usize,
}

#[derive(Debug, Serialize)]
struct Body<'a> {
    object: &'static str,
    data: Vec<Item>,
    model: &'a str,
    model_sha256: &'a str,
    usage: Usage,
    #[serde(skip_serializing_if = "Option::is_none")]
    hybrid: Option<Hybrid>,
}

#[derive(Debug, Serialize)]
struct Hybrid {
    route: String,
    cost_usd: f64,
    attempts: u32,
}

/// How a serverless endpoint served the vectors, for the body's `hybrid` object.
#[derive(Debug, Clone, Copy)]
pub struct RemoteServed<'a> {
    /// The routing record's route, `remote:<endpoint>`.
    pub route: &'a str,
    /// What the call cost, in micro-dollars.
    pub cost_micro_usd: u64,
    /// HTTP attempts the host made.
    pub attempts: u32,
}

/// Which model answered: name and file digest.
#[derive(Debug, Clone, Copy)]
pub struct ModelIdentity<'a> {
    /// The local model's name.
    pub name: &'a str,
    /// Lower-case hex SHA-256 of its file.
    pub sha256: &'a str,
}

/// The JSON response body for `embeddings` (in input order), `tokens` in all; `remote`
/// when an endpoint served them.
pub fn body(
    embeddings: Vec<Vec<f32>>,
    format: EncodingFormat,
    model: ModelIdentity<'_>,
    tokens: usize,
    remote: Option<RemoteServed<'_>>,
) -> Vec<u8> {
    let data = embeddings
        .into_iter()
        .enumerate()
        .map(|(index, v)| Item {
            object: "embedding",
            index,
            embedding: match format {
                EncodingFormat::Float => Vector::Float(v),
                EncodingFormat::Base64 => Vector::Base64(base64_f32(&v)),
            },
        })
        .collect();
    let body = Body {
        object: "list",
        data,
        model: model.name,
        model_sha256: model.sha256,
        usage: Usage {
            prompt_tokens: tokens,
            total_tokens: tokens,
        },
        hybrid: remote.map(|r| Hybrid {
            route: r.route.to_owned(),
            cost_usd: r.cost_micro_usd as f64 / 1e6,
            attempts: r.attempts,
        }),
    };
    // Serialising plain structs of strings and numbers cannot fail (NaN would become null).
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Base64 (standard alphabet, padded) of the little-endian bytes of `values`.
pub fn base64_f32(values: &[f32]) -> String {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The routing reason, e.g. `3 inputs, 42 tokens, 1 batch`.
pub fn reason(inputs: usize, tokens: usize, batches: usize) -> String {
    format!(
        "{}, {}, {}",
        plural(inputs, "input", "inputs"),
        plural(tokens, "token", "tokens"),
        plural(batches, "batch", "batches")
    )
}

/// The routing reason of an answer served by `endpoint`, e.g. `prefer=remote; served by
/// endpoint same (same model sha256 e3696613...): 3 inputs, 12 tokens, 1 attempt`, where
/// `why` says why the endpoint served and `sha256` is the model's digest (shortened).
pub fn remote_reason(
    why: &str,
    endpoint: &str,
    sha256: &str,
    inputs: usize,
    tokens: usize,
    attempts: u32,
) -> String {
    format!(
        "{why}; served by endpoint {endpoint} (same model sha256 {}...): {}, {}, {}",
        sha256.get(..8).unwrap_or(sha256),
        plural(inputs, "input", "inputs"),
        plural(tokens, "token", "tokens"),
        plural(attempts as usize, "attempt", "attempts")
    )
}

fn plural(n: usize, word: &str, words: &str) -> String {
    format!("{n} {}", if n == 1 { word } else { words })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: ModelIdentity<'static> = ModelIdentity {
        name: "minilm-l6-v2",
        sha256: "ab",
    };

    #[test]
    fn float_body_has_openais_shape() {
        let body = body(vec![vec![0.5, -1.0]], EncodingFormat::Float, MODEL, 7, None);
        let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(
            v,
            serde_json::json!({
                "object": "list",
                "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -1.0]}],
                "model": "minilm-l6-v2",
                "model_sha256": "ab",
                "usage": {"prompt_tokens": 7, "total_tokens": 7},
            })
        );
    }

    #[test]
    fn base64_is_little_endian_f32() {
        // 1.0f32 = 00 00 80 3F.
        assert_eq!(base64_f32(&[1.0]), "AACAPw==");
        let body = body(
            vec![vec![1.0], vec![1.0]],
            EncodingFormat::Base64,
            MODEL,
            4,
            None,
        );
        let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(v["data"][1]["embedding"], "AACAPw==");
        assert_eq!(v["data"][1]["index"], 1);
    }

    #[test]
    fn a_remote_answer_says_where_it_came_from_and_what_it_cost() {
        let served = RemoteServed {
            route: "remote:same",
            cost_micro_usd: 1_300,
            attempts: 2,
        };
        let body = body(
            vec![vec![1.0]],
            EncodingFormat::Float,
            MODEL,
            3,
            Some(served),
        );
        let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(
            v["hybrid"],
            serde_json::json!({"route": "remote:same", "cost_usd": 0.0013, "attempts": 2})
        );
        assert_eq!(v["model_sha256"], "ab");
    }

    #[test]
    fn reason_counts_with_plurals() {
        assert_eq!(reason(3, 42, 1), "3 inputs, 42 tokens, 1 batch");
        assert_eq!(reason(1, 1, 2), "1 input, 1 token, 2 batches");
        assert_eq!(
            remote_reason("prefer=remote", "same", &"e369".repeat(16), 1, 4, 2),
            "prefer=remote; served by endpoint same (same model sha256 e369e369...): \
             1 input, 4 tokens, 2 attempts"
        );
    }
}
