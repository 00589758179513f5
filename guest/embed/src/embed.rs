//! One embeddings request, from body to response, and the rule that keeps every answer's
//! vectors from one model.
//!
//! Steps: parse and validate the OpenAI request; find the model (`minilm-l6-v2`, or
//! metadata `model`) with `list_models` for its version and sha256; read the fallback
//! options ([`fallback`]); fetch and parse the model's `vocab` asset and tokenise every
//! input; embed them, in batches on the local model or on the fallback endpoint; build the
//! OpenAI response and the routing reason. Then log one line of counts, route and timings
//! (never the text).
//!
//! # The consistency rule
//!
//! Vectors from different models must never be mixed in one index, so every answer is
//! the vectors of the one model the response names (`model`, `model_sha256`: the local
//! model's name and file digest), wherever they were computed:
//!
//! - Without metadata `fallback`, the local model is the only path and its failures are
//!   the answer, as before.
//! - With `fallback=<endpoint>`, the endpoint serves when the local model fails (its
//!   vocabulary or `local.run`), or first when `prefer=remote`. The host binds the
//!   pipeline to its embedding model and refuses (`not-found`, "must not be mixed") any
//!   endpoint that does not declare that model's sha256, before sending anything; so a
//!   remote answer is the same model and is reported under the same identity, with route
//!   `remote:<endpoint>` and its cost in the body's `hybrid` object.
//! - After a local failure, a remote failure is `upstream`, naming both failures: never an
//!   answer from another model.
//! - With `prefer=remote`, a remote failure (a refused endpoint included) falls back to the
//!   local model, which is the same model and therefore safe; the reason says so. Only
//!   when both fail is the request an `upstream` error, naming both.
//! - The model must be loaded locally even to be served remotely: its sha256 is the
//!   identity the response reports and the endpoint is checked against.

use crate::encoder::{self, Encoded};
use crate::error::EmbedError;
use crate::fallback;
use crate::imports::{Imports, LoadedModel, RemoteEmbeddings};
use crate::request;
use crate::response::{self, ModelIdentity, RemoteServed};
use crate::tokenizer::Tokenizer;
use crate::vocab::Vocab;

/// The local model used unless metadata `model` names another.
pub const DEFAULT_MODEL: &str = "minilm-l6-v2";
/// The model asset holding the WordPiece vocabulary.
pub const VOCAB_ASSET: &str = "vocab";
/// The route of answers computed on this box.
pub const LOCAL_ROUTE: &str = "local";

/// The parts of a WIT `messages.request` the pipeline reads.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Request id, for the log line.
    pub id: &'a str,
    /// Declared MIME type of the body.
    pub content_type: &'a str,
    /// The JSON request.
    pub body: &'a [u8],
    /// Request metadata; `model` picks the local model, `fallback` and `prefer` the
    /// serverless fallback ([`fallback`]).
    pub metadata: &'a [(String, String)],
}

/// A successful answer: the JSON body and what the routing record needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The OpenAI response (content type `application/json`).
    pub body: Vec<u8>,
    /// Where the vectors were computed: [`LOCAL_ROUTE`] or `remote:<endpoint>`.
    pub route: String,
    /// Routing reason, e.g. `3 inputs, 42 tokens, 1 batch`.
    pub reason: String,
    /// The model whose vectors these are (computed locally or by the endpoint).
    pub model: LoadedModel,
}

/// The inputs as token ids.
struct Tokenized {
    sequences: Vec<Vec<u32>>,
    pad: u32,
    tokens: usize,
}

/// Where the vectors came from, and why when it was not the plain local path.
enum Served {
    Local {
        encoded: Encoded,
        note: Option<String>,
    },
    Remote {
        endpoint: String,
        answer: RemoteEmbeddings,
        why: String,
    },
}

/// Handles one request.
pub fn handle(imports: &mut impl Imports, request: Request<'_>) -> Result<Answer, EmbedError> {
    let started = imports.now_ns();
    let parsed = request::parse(request.content_type, request.body)?;
    let model = find_model(imports, model_name(request.metadata)?)?;
    let options = fallback::options(request.metadata)?;
    // Tokenising is cheap and gives the token count even when an endpoint serves.
    let tokenized = tokenize(imports, &model, &parsed.inputs);
    let tokenized_at = imports.now_ns();

    let served = match options {
        None => Served::Local {
            encoded: run_local(imports, &model, tokenized.as_ref())?,
            note: None,
        },
        Some(options) if options.prefer_remote => {
            match fallback::embed(imports, &options.endpoint, &parsed.inputs) {
                Ok(answer) => Served::Remote {
                    endpoint: options.endpoint,
                    answer,
                    why: "prefer=remote".to_owned(),
                },
                Err(remote) => match run_local(imports, &model, tokenized.as_ref()) {
                    Ok(encoded) => Served::Local {
                        encoded,
                        note: Some(format!(
                            "prefer=remote, but endpoint {} failed ({remote}); served locally",
                            options.endpoint
                        )),
                    },
                    Err(local) => {
                        return Err(EmbedError::upstream(format!(
                            "endpoint {} failed ({remote}); the local model failed too ({})",
                            options.endpoint,
                            local.message()
                        )));
                    }
                },
            }
        }
        Some(options) => match run_local(imports, &model, tokenized.as_ref()) {
            Ok(encoded) => Served::Local {
                encoded,
                note: None,
            },
            Err(local) => match fallback::embed(imports, &options.endpoint, &parsed.inputs) {
                Ok(answer) => Served::Remote {
                    endpoint: options.endpoint,
                    answer,
                    why: format!("local model failed ({})", local.message()),
                },
                Err(remote) => {
                    return Err(EmbedError::upstream(format!(
                        "local model failed ({}); fallback endpoint {} failed too ({remote})",
                        local.message(),
                        options.endpoint
                    )));
                }
            },
        },
    };
    let embedded_at = imports.now_ns();

    let identity = ModelIdentity {
        name: &model.name,
        sha256: &model.sha256,
    };
    let inputs = parsed.inputs.len();
    let (body, route, reason, tokens, model_runs) = match served {
        Served::Local { encoded, note } => {
            let tokens = tokenized.as_ref().map_or(0, |t| t.tokens);
            let counts = response::reason(inputs, tokens, encoded.batches);
            let reason = match note {
                Some(note) => format!("{note}: {counts}"),
                None => counts,
            };
            let body = response::body(
                encoded.embeddings,
                parsed.encoding_format,
                identity,
                tokens,
                None,
            );
            (
                body,
                LOCAL_ROUTE.to_owned(),
                reason,
                tokens,
                encoded.batches,
            )
        }
        Served::Remote {
            endpoint,
            answer,
            why,
        } => {
            // The local tokenizer's count, as a local answer would report; the provider's
            // only when the vocabulary could not be read.
            let tokens = tokenized
                .as_ref()
                .map_or(answer.input_tokens as usize, |t| t.tokens);
            let route = format!("remote:{endpoint}");
            let reason = response::remote_reason(
                &why,
                &endpoint,
                &model.sha256,
                inputs,
                tokens,
                answer.attempts,
            );
            let body = response::body(
                answer.vectors,
                parsed.encoding_format,
                identity,
                tokens,
                Some(RemoteServed {
                    route: &route,
                    cost_micro_usd: answer.cost_micro_usd,
                    attempts: answer.attempts,
                }),
            );
            (body, route, reason, tokens, 0)
        }
    };
    imports.log_info(&format!(
        "embed {}: {inputs} inputs, {tokens} tokens, route {route}, model runs: {model_runs}; \
         tokenise {} ms, embed {} ms, {} response bytes",
        request.id,
        tokenized_at.saturating_sub(started) / 1_000_000,
        embedded_at.saturating_sub(tokenized_at) / 1_000_000,
        body.len()
    ));
    Ok(Answer {
        body,
        route,
        reason,
        model,
    })
}

/// The inputs tokenised with `model`'s vocabulary.
fn tokenize(
    imports: &mut impl Imports,
    model: &LoadedModel,
    inputs: &[String],
) -> Result<Tokenized, EmbedError> {
    let vocab = imports
        .asset(&model.name, VOCAB_ASSET)
        .map_err(|e| EmbedError::upstream(format!("vocabulary of {}: {e}", model.name)))?;
    let vocab = Vocab::parse(&vocab)
        .map_err(|e| EmbedError::upstream(format!("vocabulary of {}: {e}", model.name)))?;
    let tokenizer = Tokenizer::new(&vocab);
    let sequences: Vec<Vec<u32>> = inputs.iter().map(|t| tokenizer.encode(t)).collect();
    let tokens = sequences.iter().map(Vec::len).sum();
    Ok(Tokenized {
        sequences,
        pad: vocab.pad,
        tokens,
    })
}

/// The local model's embeddings of the tokenised inputs; a vocabulary failure is the
/// local path's failure too.
fn run_local(
    imports: &mut impl Imports,
    model: &LoadedModel,
    tokenized: Result<&Tokenized, &EmbedError>,
) -> Result<Encoded, EmbedError> {
    let tokenized = tokenized.map_err(Clone::clone)?;
    encoder::embed(imports, &model.name, tokenized.pad, &tokenized.sequences)
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
    /// so a sentence embedding is predictable from its token ids. `run_error` and
    /// `vocab_error` make the local model fail; `remote` is what every `remote.embed`
    /// answers (vectors of 2.0 on axis 1, before normalising, when `Ok`).
    #[derive(Default)]
    struct FakeHost {
        runs: Vec<Vec<u32>>,
        run_error: Option<String>,
        vocab_error: bool,
        remote: Option<Result<(), String>>,
        remote_calls: Vec<(String, Vec<String>)>,
    }

    const SHA: &str = "abababababababababababababababababababababababababababababababab";

    const VOCAB: &str = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\n";

    impl Imports for FakeHost {
        fn list_models(&mut self) -> Vec<LoadedModel> {
            vec![LoadedModel {
                name: DEFAULT_MODEL.into(),
                version: "0.1.0".into(),
                sha256: SHA.into(),
            }]
        }

        fn asset(&mut self, model: &str, name: &str) -> Result<Vec<u8>, String> {
            match (model, name) {
                _ if self.vocab_error => Err("bad-input-name: no asset vocab".into()),
                (DEFAULT_MODEL, VOCAB_ASSET) => Ok(VOCAB.as_bytes().to_vec()),
                _ => Err(format!("bad-input-name: no asset {name}")),
            }
        }

        fn run(&mut self, _: &str, inputs: Vec<NamedTensor>) -> Result<Vec<NamedTensor>, String> {
            if let Some(e) = &self.run_error {
                return Err(e.clone());
            }
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

        fn remote_embed(
            &mut self,
            endpoint: &str,
            inputs: &[String],
        ) -> Result<RemoteEmbeddings, String> {
            self.remote_calls
                .push((endpoint.to_owned(), inputs.to_vec()));
            let mut axis_one = vec![0f32; DIM];
            axis_one[1] = 2.0;
            match self.remote.clone().expect("no remote call expected") {
                Ok(()) => Ok(RemoteEmbeddings {
                    vectors: vec![axis_one; inputs.len()],
                    cost_micro_usd: 1_300,
                    attempts: 2,
                    input_tokens: 99,
                    model: "all-mini-lm-l6-v2".into(),
                }),
                Err(e) => Err(e),
            }
        }

        fn now_ns(&mut self) -> u64 {
            0
        }

        fn log_info(&mut self, _: &str) {}
    }

    fn call(body: &str) -> (Result<Answer, EmbedError>, Vec<Vec<u32>>) {
        let mut host = FakeHost::default();
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
        assert_eq!(v["model_sha256"], SHA);
        assert_eq!(answer.route, LOCAL_ROUTE);
        assert!(v.get("hybrid").is_none());
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
        let mut host = FakeHost::default();
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

    const MISMATCH: &str = "not-found: endpoint \"other\" does not serve this pipeline's \
                            embedding model (sha256 abab); it declares no model identity: \
                            vectors from different models must not be mixed";

    fn with_metadata(host: &mut FakeHost, metadata: &[(&str, &str)]) -> Result<Answer, EmbedError> {
        let metadata: Vec<(String, String)> = metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        handle(
            host,
            Request {
                id: "t",
                content_type: "application/json",
                body: br#"{"input": ["hello world", "hello"]}"#,
                metadata: &metadata,
            },
        )
    }

    fn body(answer: &Answer) -> serde_json::Value {
        serde_json::from_slice(&answer.body).expect("JSON")
    }

    #[test]
    fn without_a_fallback_a_local_failure_is_the_answer() {
        let mut host = FakeHost {
            run_error: Some("execution-failed: out of memory".into()),
            ..FakeHost::default()
        };
        let err = with_metadata(&mut host, &[("prefer", "remote")]).expect_err("local failed");
        assert!(matches!(&err, EmbedError::Upstream(m) if m.contains("out of memory")));
        assert!(host.remote_calls.is_empty());
    }

    #[test]
    fn a_healthy_local_model_never_calls_the_fallback() {
        let mut host = FakeHost::default();
        let answer = with_metadata(&mut host, &[("fallback", "same")]).expect("served");
        assert_eq!(answer.route, LOCAL_ROUTE);
        assert_eq!(answer.reason, "2 inputs, 7 tokens, 1 batch");
        assert!(host.remote_calls.is_empty());
    }

    #[test]
    fn prefer_remote_is_served_by_the_endpoint_under_the_local_identity() {
        let mut host = FakeHost {
            remote: Some(Ok(())),
            ..FakeHost::default()
        };
        let answer = with_metadata(&mut host, &[("fallback", "same"), ("prefer", "remote")])
            .expect("served");
        assert!(host.runs.is_empty(), "the local model did not run");
        assert_eq!(
            host.remote_calls,
            [(
                "same".to_owned(),
                vec!["hello world".to_owned(), "hello".to_owned()]
            )]
        );
        assert_eq!(answer.route, "remote:same");
        assert_eq!(
            answer.reason,
            "prefer=remote; served by endpoint same (same model sha256 abababab...): \
             2 inputs, 7 tokens, 2 attempts"
        );
        assert_eq!(
            (answer.model.name.as_str(), answer.model.version.as_str()),
            (DEFAULT_MODEL, "0.1.0")
        );
        let v = body(&answer);
        assert_eq!(
            (&v["model"], &v["model_sha256"]),
            (&DEFAULT_MODEL.into(), &SHA.into())
        );
        // The local tokenizer's count, not the provider's 99.
        assert_eq!(v["usage"]["prompt_tokens"], 7);
        assert_eq!(v["data"][1]["embedding"][1], 1.0, "normalised");
        assert_eq!(
            v["hybrid"],
            serde_json::json!({"route": "remote:same", "cost_usd": 0.0013, "attempts": 2})
        );
    }

    #[test]
    fn a_local_failure_falls_back_to_the_endpoint_and_says_why() {
        let mut host = FakeHost {
            run_error: Some("execution-failed: out of memory".into()),
            remote: Some(Ok(())),
            ..FakeHost::default()
        };
        let answer = with_metadata(&mut host, &[("fallback", "same")]).expect("served");
        assert_eq!(answer.route, "remote:same");
        assert!(
            answer.reason.starts_with(
                "local model failed (model \"minilm-l6-v2\": execution-failed: out of memory); \
                 served by endpoint same (same model sha256 abababab...)"
            ),
            "{}",
            answer.reason
        );
        assert_eq!(body(&answer)["usage"]["prompt_tokens"], 7);
    }

    #[test]
    fn without_a_vocabulary_the_providers_token_count_is_reported() {
        let mut host = FakeHost {
            vocab_error: true,
            remote: Some(Ok(())),
            ..FakeHost::default()
        };
        let answer = with_metadata(&mut host, &[("fallback", "same")]).expect("served");
        assert!(
            answer
                .reason
                .starts_with("local model failed (vocabulary of minilm-l6-v2")
        );
        assert_eq!(body(&answer)["usage"]["prompt_tokens"], 99);
        assert!(host.runs.is_empty());
    }

    #[test]
    fn a_local_failure_then_a_mismatched_endpoint_is_upstream_naming_both() {
        let mut host = FakeHost {
            run_error: Some("execution-failed: out of memory".into()),
            remote: Some(Err(MISMATCH.into())),
            ..FakeHost::default()
        };
        let err = with_metadata(&mut host, &[("fallback", "other")]).expect_err("both failed");
        assert!(
            matches!(&err, EmbedError::Upstream(m) if m.contains("out of memory")
                && m.contains("fallback endpoint other failed too (not-found:")
                && m.contains("must not be mixed")),
            "{err}"
        );
    }

    #[test]
    fn a_local_failure_then_any_remote_error_is_upstream() {
        for remote in [
            "timeout: endpoint \"same\": no answer within 2000 ms",
            "budget-exceeded: the daily budget is spent",
            "bad-response: endpoint \"same\" returned 1 vectors for 2 inputs",
        ] {
            let mut host = FakeHost {
                vocab_error: true,
                remote: Some(Err(remote.into())),
                ..FakeHost::default()
            };
            let err = with_metadata(&mut host, &[("fallback", "same")]).expect_err("both failed");
            assert!(
                matches!(&err, EmbedError::Upstream(m) if m.contains(remote) && m.contains("vocabulary")),
                "{err}"
            );
        }
    }

    #[test]
    fn prefer_remote_falls_back_to_the_same_local_model_when_the_endpoint_is_refused() {
        let mut host = FakeHost {
            remote: Some(Err(MISMATCH.into())),
            ..FakeHost::default()
        };
        let answer = with_metadata(&mut host, &[("fallback", "other"), ("prefer", "remote")])
            .expect("served locally");
        assert_eq!(answer.route, LOCAL_ROUTE);
        assert!(
            answer
                .reason
                .starts_with("prefer=remote, but endpoint other failed (not-found:")
                && answer.reason.contains("must not be mixed")
                && answer
                    .reason
                    .ends_with("; served locally: 2 inputs, 7 tokens, 1 batch"),
            "{}",
            answer.reason
        );
        assert_eq!(body(&answer)["model_sha256"], SHA);
        assert_eq!(host.runs.len(), 1);
    }

    #[test]
    fn prefer_remote_with_both_paths_failing_is_upstream_naming_both() {
        let mut host = FakeHost {
            run_error: Some("execution-failed: out of memory".into()),
            remote: Some(Err("unavailable: endpoint \"same\" kept failing".into())),
            ..FakeHost::default()
        };
        let err = with_metadata(&mut host, &[("fallback", "same"), ("prefer", "remote")])
            .expect_err("both failed");
        assert!(
            matches!(&err, EmbedError::Upstream(m) if m.starts_with("endpoint same failed (unavailable:")
                && m.contains("the local model failed too (model \"minilm-l6-v2\": execution-failed: out of memory)")),
            "{err}"
        );
    }

    #[test]
    fn an_endpoint_answering_the_wrong_width_is_a_remote_failure() {
        struct Narrow(FakeHost);
        impl Imports for Narrow {
            fn list_models(&mut self) -> Vec<LoadedModel> {
                self.0.list_models()
            }
            fn asset(&mut self, model: &str, name: &str) -> Result<Vec<u8>, String> {
                self.0.asset(model, name)
            }
            fn run(&mut self, m: &str, i: Vec<NamedTensor>) -> Result<Vec<NamedTensor>, String> {
                self.0.run(m, i)
            }
            fn remote_embed(
                &mut self,
                _: &str,
                inputs: &[String],
            ) -> Result<RemoteEmbeddings, String> {
                Ok(RemoteEmbeddings {
                    vectors: vec![vec![1.0; 1536]; inputs.len()],
                    cost_micro_usd: 0,
                    attempts: 1,
                    input_tokens: 1,
                    model: "text-embedding-3-small".into(),
                })
            }
            fn now_ns(&mut self) -> u64 {
                0
            }
            fn log_info(&mut self, _: &str) {}
        }
        let mut host = Narrow(FakeHost::default());
        let metadata = [
            ("fallback".to_owned(), "big".to_owned()),
            ("prefer".to_owned(), "remote".to_owned()),
        ];
        let answer = handle(
            &mut host,
            Request {
                id: "t",
                content_type: "",
                body: br#"{"input": "hello"}"#,
                metadata: &metadata,
            },
        )
        .expect("served locally");
        assert_eq!(answer.route, LOCAL_ROUTE);
        assert!(
            answer.reason.contains(
                "bad-response: endpoint \"big\" returned a vector of 1536 values, expected 384"
            ),
            "{}",
            answer.reason
        );
    }
}
