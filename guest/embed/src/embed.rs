//! One embeddings request, from body to response, and the rule that keeps every answer's
//! vectors from one model.
//!
//! Steps: parse and validate the OpenAI request; find the model (`minilm-l6-v2`, or
//! metadata `model`) with `list_models` for its version and sha256; read the fallback
//! options ([`fallback`]); fetch and parse the model's `vocab` asset and tokenise every
//! input (the default model's vocabulary is parsed once, by [`initialize`] at deploy,
//! when the host pre-initialises the component); embed them, in batches on the local model or on the fallback endpoint; build the
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

use hybrid_guest::local::ModelInfo;
use hybrid_guest::metadata::Metadata;
use hybrid_guest::remote::EmbeddingsResult;
use hybrid_guest::response::{JSON, LOCAL, remote_route};
use hybrid_guest::{Error, Host, Request, Response, Routing};

use crate::encoder::{self, Encoded};
use crate::fallback;
use crate::request;
use crate::response::{self, ModelIdentity, RemoteServed};
use crate::tokenizer::Tokenizer;
use crate::vocab::{self, Vocab};

/// The local model used unless metadata `model` names another.
pub const DEFAULT_MODEL: &str = "minilm-l6-v2";
/// The model asset holding the WordPiece vocabulary.
pub const VOCAB_ASSET: &str = "vocab";
/// The route of answers computed on this box.
pub const LOCAL_ROUTE: &str = LOCAL;

/// The inputs as token ids.
struct Tokenized {
    sequences: Vec<Vec<u32>>,
    pad: u32,
    tokens: usize,
    /// Where the vocabulary came from: `preloaded` (parsed by `initialize` at deploy) or
    /// `parsed` (by this request).
    vocabulary: &'static str,
}

/// Where the vectors came from, and why when it was not the plain local path.
enum Served {
    Local {
        encoded: Encoded,
        note: Option<String>,
    },
    Remote {
        endpoint: String,
        answer: EmbeddingsResult,
        why: String,
    },
}

/// Handles one request: the OpenAI response (`application/json`) and the routing record.
/// Metadata `model` picks the local model, `fallback` and `prefer` the serverless fallback
/// ([`fallback`]). The route is where the vectors were computed, [`LOCAL_ROUTE`] or
/// `remote:<endpoint>`; the reason counts inputs, tokens and batches (`3 inputs, 42
/// tokens, 1 batch`); the model is the one whose vectors these are, wherever computed.
pub fn handle(host: &mut impl Host, request: &Request) -> Result<Response, Error> {
    let started = host.now_ns();
    let parsed = request::parse(&request.content_type, &request.body)?;
    let model = find_model(host, model_name(&request.metadata)?)?;
    let options = fallback::options(&request.metadata)?;
    // Tokenising is cheap and gives the token count even when an endpoint serves.
    let tokenized = tokenize(host, &model, &parsed.inputs);
    let tokenized_at = host.now_ns();
    let vocabulary = tokenized.as_ref().map_or("unavailable", |t| t.vocabulary);

    let served = match options {
        None => Served::Local {
            encoded: run_local(host, &model, tokenized.as_ref())?,
            note: None,
        },
        Some(options) if options.prefer_remote => {
            match fallback::embed(host, &options.endpoint, &parsed.inputs) {
                Ok(answer) => Served::Remote {
                    endpoint: options.endpoint,
                    answer,
                    why: "prefer=remote".to_owned(),
                },
                Err(remote) => match run_local(host, &model, tokenized.as_ref()) {
                    Ok(encoded) => Served::Local {
                        encoded,
                        note: Some(format!(
                            "prefer=remote, but endpoint {} failed ({remote}); served locally",
                            options.endpoint
                        )),
                    },
                    Err(local) => {
                        return Err(Error::upstream(format!(
                            "endpoint {} failed ({remote}); the local model failed too ({})",
                            options.endpoint,
                            local.message()
                        )));
                    }
                },
            }
        }
        Some(options) => match run_local(host, &model, tokenized.as_ref()) {
            Ok(encoded) => Served::Local {
                encoded,
                note: None,
            },
            Err(local) => match fallback::embed(host, &options.endpoint, &parsed.inputs) {
                Ok(answer) => Served::Remote {
                    endpoint: options.endpoint,
                    answer,
                    why: format!("local model failed ({})", local.message()),
                },
                Err(remote) => {
                    return Err(Error::upstream(format!(
                        "local model failed ({}); fallback endpoint {} failed too ({remote})",
                        local.message(),
                        options.endpoint
                    )));
                }
            },
        },
    };
    let embedded_at = host.now_ns();

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
                .map_or(answer.call.usage.input_tokens as usize, |t| t.tokens);
            let route = remote_route(&endpoint);
            let reason = response::remote_reason(
                &why,
                &endpoint,
                &model.sha256,
                inputs,
                tokens,
                answer.call.attempts,
            );
            let body = response::body(
                answer.vectors,
                parsed.encoding_format,
                identity,
                tokens,
                Some(RemoteServed {
                    route: &route,
                    cost_micro_usd: answer.call.cost_micro_usd,
                    attempts: answer.call.attempts,
                }),
            );
            (body, route, reason, tokens, 0)
        }
    };
    host.log_info(&format!(
        "embed {}: {inputs} inputs, {tokens} tokens, route {route}, model runs: {model_runs}; \
         vocabulary {vocabulary}, tokenise {} ms, embed {} ms, {} response bytes",
        request.id,
        tokenized_at.saturating_sub(started) / 1_000_000,
        embedded_at.saturating_sub(tokenized_at) / 1_000_000,
        body.len()
    ));
    let routing = Routing {
        route,
        reason,
        model: model.name,
        model_version: model.version,
    };
    Ok(Response::new(JSON, body, routing))
}

/// The inputs tokenised with `model`'s vocabulary.
fn tokenize(
    host: &mut impl Host,
    model: &ModelInfo,
    inputs: &[String],
) -> Result<Tokenized, Error> {
    let parsed;
    let (vocab, vocabulary) = match vocab::preloaded(&model.name, &model.sha256) {
        Some(vocab) => (vocab, "preloaded"),
        None => {
            parsed = load_vocab(host, &model.name)
                .map_err(|e| Error::upstream(format!("vocabulary of {}: {e}", model.name)))?;
            (&parsed, "parsed")
        }
    };
    let tokenizer = Tokenizer::new(vocab);
    let sequences: Vec<Vec<u32>> = inputs.iter().map(|t| tokenizer.encode(t)).collect();
    let tokens = sequences.iter().map(Vec::len).sum();
    Ok(Tokenized {
        sequences,
        pad: vocab.pad,
        tokens,
        vocabulary,
    })
}

/// Fetches model `name`'s `vocab` asset and parses it.
pub fn load_vocab(host: &mut impl Host, name: &str) -> Result<Vocab, String> {
    let bytes = host.asset(name, VOCAB_ASSET).map_err(|e| e.to_string())?;
    Vocab::parse(&bytes)
}

/// Parses the default model's vocabulary once, for every request (the component's
/// `initialize`, run at deploy). A host without the default model loaded is not an
/// error: requests then parse the vocabulary of the model they name, as before.
pub fn initialize(host: &mut impl Host) -> Result<(), String> {
    let models = host.list_models();
    let Some(model) = models.iter().find(|m| m.name == DEFAULT_MODEL) else {
        return Ok(());
    };
    let vocab =
        load_vocab(host, &model.name).map_err(|e| format!("vocabulary of {}: {e}", model.name))?;
    host.log_info(&format!(
        "embed init: parsed the vocabulary of {} ({} tokens) once for every request",
        model.name,
        vocab.len()
    ));
    vocab::preload(&model.name, &model.sha256, vocab);
    Ok(())
}

/// The local model's embeddings of the tokenised inputs; a vocabulary failure is the
/// local path's failure too.
fn run_local(
    host: &mut impl Host,
    model: &ModelInfo,
    tokenized: Result<&Tokenized, &Error>,
) -> Result<Encoded, Error> {
    let tokenized = tokenized.map_err(Clone::clone)?;
    encoder::embed(host, &model.name, tokenized.pad, &tokenized.sequences)
}

/// Metadata `model` (last one wins), or [`DEFAULT_MODEL`].
fn model_name(metadata: &[(String, String)]) -> Result<&str, Error> {
    match Metadata::new(metadata).get("model") {
        None => Ok(DEFAULT_MODEL),
        Some("") => Err(Error::bad_request(
            "metadata model=: expected the name of a local model",
        )),
        Some(name) => Ok(name),
    }
}

/// The loaded model named `name`, for its version and digest.
fn find_model(host: &mut impl Host, name: &str) -> Result<ModelInfo, Error> {
    let models = host.list_models();
    if let Some(found) = models.iter().find(|m| m.name == name) {
        return Ok(found.clone());
    }
    let available: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    Err(Error::upstream(format!(
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
    use hybrid_guest::fake::{self, EmbedCall, FakeHost, Script};
    use hybrid_guest::local::LocalError;
    use hybrid_guest::remote::{CallRecord, EmbeddingsResult, RemoteError, Usage};
    use hybrid_guest::tensor::NamedTensor;

    /// A host whose "model" makes token `t`'s vector the unit vector on axis `t % DIM`,
    /// so a sentence embedding is predictable from its token ids; its vocabulary is
    /// [`VOCAB`]. Unscripted, every `remote.embed` fails `not-found`; [`remote_ok`]
    /// answers vectors of 2.0 on axis 1 (before normalising).
    fn fake_host() -> FakeHost {
        let mut host = FakeHost::new()
            .with_model(DEFAULT_MODEL, "0.1.0", |run| {
                let ids = run.inputs[0].to_i64().expect("i64 ids");
                let dims = run.inputs[0].dims();
                let mut hidden = vec![0f32; ids.len() * DIM];
                for (i, &id) in ids.iter().enumerate() {
                    hidden[i * DIM + id as usize % DIM] = 1.0;
                }
                let out = NamedTensor::fp32(
                    "last_hidden_state",
                    &[dims[0], dims[1], DIM as u32],
                    &hidden,
                );
                Ok(vec![out.expect("fits")])
            })
            .with_asset(DEFAULT_MODEL, VOCAB_ASSET, VOCAB);
        host.models[0].sha256 = SHA.into();
        host
    }

    /// An endpoint answering one vector per input, for 1300 micro-dollars in 2 attempts,
    /// billing 99 tokens.
    fn remote_ok() -> Script<EmbedCall, Result<EmbeddingsResult, RemoteError>> {
        Box::new(|call| {
            let mut axis_one = vec![0f32; DIM];
            axis_one[1] = 2.0;
            Ok(EmbeddingsResult {
                vectors: vec![axis_one; call.inputs.len()],
                call: CallRecord {
                    endpoint: call.endpoint.clone(),
                    model: "all-mini-lm-l6-v2".into(),
                    usage: Usage {
                        input_tokens: 99,
                        ..Usage::default()
                    },
                    cost_micro_usd: 1_300,
                    attempts: 2,
                    ..CallRecord::default()
                },
            })
        })
    }

    /// The local model failing with `execution-failed: out of memory`.
    fn out_of_memory() -> Script<fake::ModelRun, Result<Vec<NamedTensor>, LocalError>> {
        fake::fail(LocalError::ExecutionFailed("out of memory".into()))
    }

    /// The dimensions of every model run's `input_ids`.
    fn run_dims(host: &FakeHost) -> Vec<Vec<u32>> {
        host.runs
            .iter()
            .map(|r| r.inputs[0].dims().to_vec())
            .collect()
    }

    const SHA: &str = "abababababababababababababababababababababababababababababababab";

    const VOCAB: &str = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\n";

    fn call(body: &str) -> (Result<Response, Error>, Vec<Vec<u32>>) {
        let mut host = fake_host();
        let answer = handle(&mut host, &Request::new("t", "application/json", body));
        (answer, run_dims(&host))
    }

    #[test]
    fn embeds_pooled_over_real_tokens_only() {
        let (answer, runs) = call(r#"{"input": ["hello world", "hello"]}"#);
        let answer = answer.expect("served");
        assert_eq!(runs, [vec![2, 16]]);
        assert_eq!(answer.routing.reason, "2 inputs, 7 tokens, 1 batch");
        assert_eq!(answer.routing.model_version, "0.1.0");
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
        assert_eq!(answer.routing.route, LOCAL_ROUTE);
        assert!(v.get("hybrid").is_none());
    }

    #[test]
    fn splits_into_batches_of_32() {
        let inputs = vec![r#""hello""#; 40].join(",");
        let (answer, runs) = call(&format!(r#"{{"input": [{inputs}]}}"#));
        assert_eq!(runs, [vec![32, 16], vec![8, 16]]);
        assert!(
            answer
                .expect("served")
                .routing
                .reason
                .ends_with("2 batches")
        );
    }

    #[test]
    fn bad_requests_never_reach_the_model() {
        let (answer, runs) = call(r#"{"input": []}"#);
        assert!(matches!(answer, Err(Error::BadRequest(_))));
        assert!(runs.is_empty());
    }

    #[test]
    fn a_missing_model_is_an_upstream_error_listing_the_loaded_ones() {
        let mut host = fake_host();
        let request = Request::new("t", "", r#"{"input": "a"}"#).with_metadata("model", "nope");
        let err = handle(&mut host, &request).expect_err("no such model");
        assert!(matches!(&err, Error::Upstream(m) if m.contains("available models: minilm-l6-v2")));
    }

    /// The host's refusal of an endpoint that does not serve the pipeline's model.
    fn mismatch() -> RemoteError {
        RemoteError::NotFound(
            "endpoint \"other\" does not serve this pipeline's embedding model (sha256 \
             abab); it declares no model identity: vectors from different models must not \
             be mixed"
                .into(),
        )
    }

    fn with_metadata(host: &mut FakeHost, metadata: &[(&str, &str)]) -> Result<Response, Error> {
        let body = r#"{"input": ["hello world", "hello"]}"#;
        let request = Request::new("t", "application/json", body).with_metadata_pairs(metadata);
        handle(host, &request)
    }

    fn body(answer: &Response) -> serde_json::Value {
        fake::json_body(answer)
    }

    #[test]
    fn without_a_fallback_a_local_failure_is_the_answer() {
        let mut host = fake_host();
        host.on_run_model = out_of_memory();
        let err = with_metadata(&mut host, &[("prefer", "remote")]).expect_err("local failed");
        assert!(matches!(&err, Error::Upstream(m) if m.contains("out of memory")));
        assert!(host.embeds.is_empty());
    }

    #[test]
    fn a_healthy_local_model_never_calls_the_fallback() {
        let mut host = fake_host();
        let answer = with_metadata(&mut host, &[("fallback", "same")]).expect("served");
        assert_eq!(answer.routing.route, LOCAL_ROUTE);
        assert_eq!(answer.routing.reason, "2 inputs, 7 tokens, 1 batch");
        assert!(host.embeds.is_empty());
    }

    #[test]
    fn prefer_remote_is_served_by_the_endpoint_under_the_local_identity() {
        let mut host = fake_host();
        host.on_embed = remote_ok();
        let answer = with_metadata(&mut host, &[("fallback", "same"), ("prefer", "remote")])
            .expect("served");
        assert!(host.runs.is_empty(), "the local model did not run");
        assert_eq!(
            host.embeds,
            [EmbedCall {
                endpoint: "same".to_owned(),
                inputs: vec!["hello world".to_owned(), "hello".to_owned()]
            }]
        );
        assert_eq!(answer.routing.route, "remote:same");
        assert_eq!(
            answer.routing.reason,
            "prefer=remote; served by endpoint same (same model sha256 abababab...): \
             2 inputs, 7 tokens, 2 attempts"
        );
        assert_eq!(
            (
                answer.routing.model.as_str(),
                answer.routing.model_version.as_str()
            ),
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
        let mut host = fake_host();
        host.on_run_model = out_of_memory();
        host.on_embed = remote_ok();
        let answer = with_metadata(&mut host, &[("fallback", "same")]).expect("served");
        assert_eq!(answer.routing.route, "remote:same");
        assert!(
            answer.routing.reason.starts_with(
                "local model failed (model \"minilm-l6-v2\": execution-failed: out of memory); \
                 served by endpoint same (same model sha256 abababab...)"
            ),
            "{}",
            answer.routing.reason
        );
        assert_eq!(body(&answer)["usage"]["prompt_tokens"], 7);
    }

    #[test]
    fn without_a_vocabulary_the_providers_token_count_is_reported() {
        let mut host = fake_host();
        host.assets.clear();
        host.on_embed = remote_ok();
        let answer = with_metadata(&mut host, &[("fallback", "same")]).expect("served");
        assert!(
            answer
                .routing
                .reason
                .starts_with("local model failed (vocabulary of minilm-l6-v2")
        );
        assert_eq!(body(&answer)["usage"]["prompt_tokens"], 99);
        assert!(host.runs.is_empty());
    }

    #[test]
    fn a_local_failure_then_a_mismatched_endpoint_is_upstream_naming_both() {
        let mut host = fake_host();
        host.on_run_model = out_of_memory();
        host.on_embed = fake::fail(mismatch());
        let err = with_metadata(&mut host, &[("fallback", "other")]).expect_err("both failed");
        assert!(
            matches!(&err, Error::Upstream(m) if m.contains("out of memory")
                && m.contains("fallback endpoint other failed too (not-found:")
                && m.contains("must not be mixed")),
            "{err}"
        );
    }

    #[test]
    fn a_local_failure_then_any_remote_error_is_upstream() {
        for (error, remote) in [
            (
                RemoteError::Timeout("endpoint \"same\": no answer within 2000 ms".into()),
                "timeout: endpoint \"same\": no answer within 2000 ms",
            ),
            (
                RemoteError::BudgetExceeded("the daily budget is spent".into()),
                "budget-exceeded: the daily budget is spent",
            ),
            (
                RemoteError::BadResponse(
                    "endpoint \"same\" returned 1 vectors for 2 inputs".into(),
                ),
                "bad-response: endpoint \"same\" returned 1 vectors for 2 inputs",
            ),
        ] {
            let mut host = fake_host();
            host.assets.clear();
            host.on_embed = fake::fail(error);
            let err = with_metadata(&mut host, &[("fallback", "same")]).expect_err("both failed");
            assert!(
                matches!(&err, Error::Upstream(m) if m.contains(remote) && m.contains("vocabulary")),
                "{err}"
            );
        }
    }

    #[test]
    fn prefer_remote_falls_back_to_the_same_local_model_when_the_endpoint_is_refused() {
        let mut host = fake_host();
        host.on_embed = fake::fail(mismatch());
        let answer = with_metadata(&mut host, &[("fallback", "other"), ("prefer", "remote")])
            .expect("served locally");
        assert_eq!(answer.routing.route, LOCAL_ROUTE);
        assert!(
            answer
                .routing
                .reason
                .starts_with("prefer=remote, but endpoint other failed (not-found:")
                && answer.routing.reason.contains("must not be mixed")
                && answer
                    .routing
                    .reason
                    .ends_with("; served locally: 2 inputs, 7 tokens, 1 batch"),
            "{}",
            answer.routing.reason
        );
        assert_eq!(body(&answer)["model_sha256"], SHA);
        assert_eq!(host.runs.len(), 1);
    }

    #[test]
    fn prefer_remote_with_both_paths_failing_is_upstream_naming_both() {
        let mut host = fake_host();
        host.on_run_model = out_of_memory();
        host.on_embed = fake::fail(RemoteError::Unavailable(
            "endpoint \"same\" kept failing".into(),
        ));
        let err = with_metadata(&mut host, &[("fallback", "same"), ("prefer", "remote")])
            .expect_err("both failed");
        assert!(
            matches!(&err, Error::Upstream(m) if m.starts_with("endpoint same failed (unavailable:")
                && m.contains("the local model failed too (model \"minilm-l6-v2\": execution-failed: out of memory)")),
            "{err}"
        );
    }

    #[test]
    fn an_endpoint_answering_the_wrong_width_is_a_remote_failure() {
        let mut host = fake_host();
        host.on_embed = fake::always(Ok(EmbeddingsResult {
            vectors: vec![vec![1.0; 1536]],
            call: CallRecord {
                model: "text-embedding-3-small".into(),
                ..CallRecord::default()
            },
        }));
        let request = Request::new("t", "", r#"{"input": "hello"}"#)
            .with_metadata("fallback", "big")
            .with_metadata("prefer", "remote");
        let answer = handle(&mut host, &request).expect("served locally");
        assert_eq!(answer.routing.route, LOCAL_ROUTE);
        assert!(
            answer.routing.reason.contains(
                "bad-response: endpoint \"big\" returned a vector of 1536 values, expected 384"
            ),
            "{}",
            answer.routing.reason
        );
    }
}
