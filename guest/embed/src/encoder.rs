//! Token ids to sentence embeddings through the host's model: inputs are split into
//! batches of at most [`MAX_BATCH`], each batch right-padded with `[PAD]` (mask 0) to the
//! first of [`SEQ_BUCKETS`] that holds its longest sequence and run once with
//! `local.run`; `last_hidden_state` is then pooled per input ([`crate::pooling`]).
//!
//! Why buckets: the host optimises a plan for each input shape it sees often (its
//! `shape_plans`), which runs MiniLM 1.2-1.6x faster than the plan for any shape. Padding
//! to a few lengths keeps the shapes few. Padding does not change the embeddings: the
//! mask keeps padded positions out of attention (their weight is exactly zero) and out
//! of the pooling.

use hybrid_guest::tensor::NamedTensor;
use hybrid_guest::{Error, Host};

use crate::pooling::mean_pool_normalized;

/// Inputs per model run: large enough to amortise the call, small enough that one
/// batch of 256-token inputs stays well inside the guest's and the host's memory.
pub const MAX_BATCH: usize = 32;
/// Width of the model's token vectors (and of the embeddings).
pub const DIM: usize = 384;
/// The sequence lengths batches are padded to: every 16 tokens up to 64, then coarser
/// (attention's cost grows with the square of the length, padding's only linearly).
pub const SEQ_BUCKETS: [usize; 8] = [16, 32, 48, 64, 96, 128, 192, 256];

/// What the encoder produced for a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    /// One unit-length embedding of [`DIM`] values per input, in input order.
    pub embeddings: Vec<Vec<f32>>,
    /// How many times the model ran.
    pub batches: usize,
}

/// Embeds every token sequence in `sequences` with model `model`.
pub fn embed(
    host: &mut impl Host,
    model: &str,
    pad: u32,
    sequences: &[Vec<u32>],
) -> Result<Encoded, Error> {
    let mut embeddings = Vec::with_capacity(sequences.len());
    let mut batches = 0;
    for batch in sequences.chunks(MAX_BATCH) {
        let seq = bucket(batch.iter().map(Vec::len).max().unwrap_or(0));
        let (ids, mask) = padded(batch, pad, seq);
        let dims = [batch.len() as u32, seq as u32];
        let inputs = [
            NamedTensor::i64("input_ids", &dims, &ids)?,
            NamedTensor::i64("attention_mask", &dims, &mask)?,
        ];
        let outputs = host
            .run_model(model, &inputs)
            .map_err(|e| Error::upstream(format!("model {model:?}: {e}")))?;
        let hidden = outputs
            .iter()
            .find(|t| t.name == "last_hidden_state")
            .ok_or_else(|| {
                Error::upstream(format!("model {model:?} has no last_hidden_state output"))
            })?;
        let expected = [batch.len() as u32, seq as u32, DIM as u32];
        if hidden.dims() != expected {
            return Err(Error::upstream(format!(
                "model {model:?}: last_hidden_state has dimensions {:?}, expected {expected:?}",
                hidden.dims()
            )));
        }
        let values = hidden
            .to_f32()
            .map_err(|e| Error::upstream(e.to_string()))?;
        for (row, tokens) in values.chunks_exact(seq * DIM).zip(batch) {
            embeddings.push(mean_pool_normalized(row, DIM, tokens.len()));
        }
        batches += 1;
    }
    Ok(Encoded {
        embeddings,
        batches,
    })
}

/// The length a batch whose longest sequence has `longest` tokens is padded to: the first
/// bucket that holds it, or `longest` itself past the last bucket.
fn bucket(longest: usize) -> usize {
    SEQ_BUCKETS
        .into_iter()
        .find(|&b| b >= longest)
        .unwrap_or(longest)
}

/// Row-major `input_ids` and `attention_mask` for `batch`, right-padded to `seq` tokens
/// (at least its longest).
fn padded(batch: &[Vec<u32>], pad: u32, seq: usize) -> (Vec<i64>, Vec<i64>) {
    let mut ids = Vec::with_capacity(batch.len() * seq);
    let mut mask = Vec::with_capacity(batch.len() * seq);
    for tokens in batch {
        ids.extend(tokens.iter().map(|&t| i64::from(t)));
        ids.extend(std::iter::repeat_n(i64::from(pad), seq - tokens.len()));
        mask.extend(std::iter::repeat_n(1, tokens.len()));
        mask.extend(std::iter::repeat_n(0, seq - tokens.len()));
    }
    (ids, mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_right_with_pad_and_zero_mask() {
        let (ids, mask) = padded(&[vec![101, 7, 102], vec![101, 102]], 0, 4);
        assert_eq!(ids, [101, 7, 102, 0, 101, 102, 0, 0]);
        assert_eq!(mask, [1, 1, 1, 0, 1, 1, 0, 0]);
    }

    #[test]
    fn batches_are_padded_to_the_first_bucket_that_holds_them() {
        let lengths = [1, 16, 17, 64, 65, 129, 256, 300];
        let padded: Vec<usize> = lengths.into_iter().map(bucket).collect();
        assert_eq!(padded, [16, 16, 32, 64, 96, 192, 256, 300]);
    }
}
