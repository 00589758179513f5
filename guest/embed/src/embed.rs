//! One embeddings request, from body to response.
//!
//! Steps: parse and validate the OpenAI request; find the model (`minilm-l6-v2`, or
//! metadata `model`) with `list_models` for its version and sha256; fetch and parse its
//! `vocab` asset; tokenise every input; embed them in batches; build the OpenAI response
//! and the routing reason. Then log one line of counts and timings (never the text).

use crate::encoder;
use crate::error::EmbedError;
use crate::imports::{Imports, LoadedModel};
use crate::request;
use crate::response::{self, ModelIdentity};
use crate::tokenizer::Tokenizer;
use crate::vocab::Vocab;

/// The local model used unless metadata `model` names another.
pub const DEFAULT_MODEL: &str = "minilm-l6-v2";
/// The model asset holding the WordPiece vocabulary.
pub const VOCAB_ASSET: &str = "vocab";

/// The parts of a WIT `messages.request` the pipeline reads.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Request id, for the log line.
    pub id: &'a str,
    /// Declared MIME type of the body.
    pub content_type: &'a str,
    /// The JSON request.
    pub body: &'a [u8],
    /// Request metadata; `model` picks the local model.
    pub metadata: &'a [(String, String)],
}

/// A successful answer: the JSON body and what the routing record needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The OpenAI response (content type `application/json`).
    pub body: Vec<u8>,
    /// Routing reason, e.g. `3 inputs, 42 tokens, 1 batch`.
    pub reason: String,
    /// The model that ran.
    pub model: LoadedModel,
}

/// Handles one request.
pub fn handle(imports: &mut impl Imports, request: Request<'_>) -> Result<Answer, EmbedError> {
    let started = imports.now_ns();
    let parsed = request::parse(request.content_type, request.body)?;
    let model = find_model(imports, model_name(request.metadata)?)?;

    let vocab = imports
        .asset(&model.name, VOCAB_ASSET)
        .map_err(|e| EmbedError::upstream(format!("vocabulary of {}: {e}", model.name)))?;
    let vocab = Vocab::parse(&vocab)
        .map_err(|e| EmbedError::upstream(format!("vocabulary of {}: {e}", model.name)))?;
    let tokenizer = Tokenizer::new(&vocab);
    let sequences: Vec<Vec<u32>> = parsed.inputs.iter().map(|t| tokenizer.encode(t)).collect();
    let tokens: usize = sequences.iter().map(Vec::len).sum();
    let tokenized = imports.now_ns();

    let encoded = encoder::embed(imports, &model.name, vocab.pad, &sequences)?;
    let encoded_at = imports.now_ns();

    let reason = response::reason(sequences.len(), tokens, encoded.batches);
    let body = response::body(
        encoded.embeddings,
        parsed.encoding_format,
        ModelIdentity {
            name: &model.name,
            sha256: &model.sha256,
        },
        tokens,
    );
    imports.log_info(&format!(
        "embed {}: {} inputs, {tokens} tokens, model runs: {}; tokenise {} ms, model {} ms, {} response bytes",
        request.id,
        sequences.len(),
        encoded.batches,
        tokenized.saturating_sub(started) / 1_000_000,
        encoded_at.saturating_sub(tokenized) / 1_000_000,
        body.len()
    ));
    Ok(Answer {
        body,
        reason,
        model,
    })
}

/// Metadata `model` (last one wins), or [`DEFAULT_MODEL`].
fn model_name(metadata: &[(String, String)]) -> Result<&str, EmbedError> {
    match metadata.iter().rev().find(|(k, _)| k == "model") {
        None => Ok(DEFAULT_MODEL),
        Some((_, v)) if v.trim().is_empty() => Err(EmbedError::bad_request(
            "metadata model=: expected the name of a local model",
        )),
        Some((_, v)) => Ok(v.trim()),
    }
}

/// The loaded model named `name`, for its version and digest.
fn find_model(imports: &mut impl Imports, name: &str) -> Result<LoadedModel, EmbedError> {
    let models = imports.list_models();
    if let Some(found) = models.iter().find(|m| m.name == name) {
        return Ok(found.clone());
    }
    let available: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    Err(EmbedError::upstream(format!(
        "embedding model {name} is not loaded on this host; available models: {}",
        if available.is_empty() {
            "none".to_owned()
        } else {
            available.join(", ")
        }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoder::DIM;
    use crate::tensor::NamedTensor;

    /// A host whose "model" makes token `t`'s vector the unit vector on axis `t % DIM`,
    /// so a sentence embedding is predictable from its token ids.
    struct FakeHost {
        runs: Vec<Vec<u32>>,
    }

    const VOCAB: &str = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\n";

    impl Imports for FakeHost {
        fn list_models(&mut self) -> Vec<LoadedModel> {
            vec![LoadedModel {
                name: DEFAULT_MODEL.into(),
                version: "0.1.0".into(),
                sha256: "ab".repeat(32),
            }]
        }

        fn asset(&mut self, model: &str, name: &str) -> Result<Vec<u8>, String> {
            match (model, name) {
                (DEFAULT_MODEL, VOCAB_ASSET) => Ok(VOCAB.as_bytes().to_vec()),
                _ => Err(format!("bad-input-name: no asset {name}")),
            }
        }

        fn run(&mut self, _: &str, inputs: Vec<NamedTensor>) -> Result<Vec<NamedTensor>, String> {
            let ids: Vec<i64> = inputs[0]
                .data
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
                .collect();
            let dims = inputs[0].dims.clone();
            self.runs.push(dims.clone());
            let mut hidden = vec![0f32; ids.len() * DIM];
            for (i, &id) in ids.iter().enumerate() {
                hidden[i * DIM + id as usize % DIM] = 1.0;
            }
            Ok(vec![NamedTensor::fp32(
                "last_hidden_state",
                &[dims[0], dims[1], DIM as u32],
                &hidden,
            )])
        }

        fn now_ns(&mut self) -> u64 {
            0
        }

        fn log_info(&mut self, _: &str) {}
    }

    fn call(body: &str) -> (Result<Answer, EmbedError>, Vec<Vec<u32>>) {
        let mut host = FakeHost { runs: Vec::new() };
        let answer = handle(
            &mut host,
            Request {
                id: "t",
                content_type: "application/json",
                body: body.as_bytes(),
                metadata: &[],
            },
        );
        (answer, host.runs)
    }

    #[test]
    fn embeds_pooled_over_real_tokens_only() {
        let (answer, runs) = call(r#"{"input": ["hello world", "hello"]}"#);
        let answer = answer.expect("served");
        assert_eq!(runs, [vec![2, 4]]);
        assert_eq!(answer.reason, "2 inputs, 7 tokens, 1 batch");
        assert_eq!(answer.model.version, "0.1.0");
        let v: serde_json::Value = serde_json::from_slice(&answer.body).expect("JSON");
        assert_eq!(v["usage"]["prompt_tokens"], 7);
        // "hello": [CLS] hello [SEP] = axes 2, 5, 3 equally; padding (axis 0) ignored.
        let e = &v["data"][1]["embedding"];
        let third = 1.0 / 3f64.sqrt();
        for axis in [2, 3, 5] {
            assert!((e[axis].as_f64().expect("number") - third).abs() < 1e-6);
        }
        assert_eq!(e[0], 0.0);
        assert_eq!(v["model_sha256"], "ab".repeat(32));
    }

    #[test]
    fn splits_into_batches_of_32() {
        let inputs = vec![r#""hello""#; 40].join(",");
        let (answer, runs) = call(&format!(r#"{{"input": [{inputs}]}}"#));
        assert_eq!(runs, [vec![32, 3], vec![8, 3]]);
        assert!(answer.expect("served").reason.ends_with("2 batches"));
    }

    #[test]
    fn bad_requests_never_reach_the_model() {
        let (answer, runs) = call(r#"{"input": []}"#);
        assert!(matches!(answer, Err(EmbedError::BadRequest(_))));
        assert!(runs.is_empty());
    }

    #[test]
    fn a_missing_model_is_an_upstream_error_listing_the_loaded_ones() {
        let mut host = FakeHost { runs: Vec::new() };
        let metadata = [("model".to_owned(), "nope".to_owned())];
        let err = handle(
            &mut host,
            Request {
                id: "t",
                content_type: "",
                body: br#"{"input": "a"}"#,
                metadata: &metadata,
            },
        )
        .expect_err("no such model");
        assert!(
            matches!(&err, EmbedError::Upstream(m) if m.contains("available models: minilm-l6-v2"))
        );
    }
}
