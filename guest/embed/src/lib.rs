//! OpenAI-style sentence embeddings for the `hybrid` edge host, computed on the box with
//! the host's local all-MiniLM-L6-v2 model.
//!
//! The component takes an OpenAI embeddings request (`{"input": ...}`), tokenises every
//! input with BERT WordPiece exactly as Hugging Face `tokenizers` does for this model,
//! runs the encoder in padded batches through `local.run`, mean-pools the token vectors
//! over the attention mask, L2-normalises, and answers in OpenAI's response shape. With
//! metadata `fallback=<endpoint>` a serverless endpoint serving the *same* model (the host
//! checks its sha256) stands in when the local model fails, or first with `prefer=remote`;
//! vectors of two models are never mixed (the rule is in [`embed`]).
//!
//! # Layout
//!
//! - [`embed`]: one request from body to response; the order of the steps and the
//!   consistency rule.
//! - [`fallback`]: the `fallback` and `prefer` metadata and the `remote.embed` call.
//! - [`request`]: the OpenAI request JSON, validated.
//! - [`vocab`], [`normalize`], [`wordpiece`], [`tokenizer`]: text to token ids
//!   (BertNormalizer, BertPreTokenizer, WordPiece, special tokens, truncation).
//! - [`encoder`]: batching, padding and the model runs.
//! - [`pooling`]: mean pooling and L2 normalisation.
//! - [`response`]: the OpenAI response JSON (float or base64) and the routing reason.
//! - [`Embed`]: the component's exports (`handle`, and `init`, which parses the
//!   vocabulary once at deploy), through the guest SDK ([`hybrid_guest`]), whose
//!   host trait lets all of the above run natively in unit tests with a fake model.

pub mod embed;
pub mod encoder;
pub mod fallback;
pub mod normalize;
pub mod pooling;
pub mod request;
pub mod response;
pub mod tokenizer;
pub mod vocab;
pub mod wordpiece;

use hybrid_guest::{Error, Host, Initialize, Pipeline, Request, Response};

/// The exported pipeline: [`embed::handle`], pre-initialised by [`embed::initialize`]
/// (the vocabulary parsed once at deploy, not per request).
pub struct Embed;

impl Pipeline for Embed {
    fn handle(request: Request, host: &mut impl Host) -> Result<Response, Error> {
        embed::handle(host, &request)
    }
}

impl Initialize for Embed {
    fn initialize(host: &mut impl Host) -> Result<(), String> {
        embed::initialize(host)
    }
}

hybrid_guest::export_pipeline!(init Embed);
