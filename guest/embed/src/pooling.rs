//! Sentence embeddings from token vectors, as sentence-transformers does for
//! all-MiniLM-L6-v2: the mean of the token vectors where the attention mask is 1
//! (`[CLS]` and `[SEP]` included, padding excluded), scaled to unit length.

/// The mean of the first `tokens` rows of `hidden` (`rows` x `dim`, row-major), scaled to
/// unit L2 norm. A zero vector stays zero.
pub fn mean_pool_normalized(hidden: &[f32], dim: usize, tokens: usize) -> Vec<f32> {
    let mut sum = vec![0f32; dim];
    for row in hidden.chunks_exact(dim).take(tokens) {
        for (s, v) in sum.iter_mut().zip(row) {
            *s += v;
        }
    }
    let count = tokens.max(1) as f32;
    sum.iter_mut().for_each(|s| *s /= count);
    normalize(&mut sum);
    sum
}

/// Scales `v` to unit L2 norm in place (norm clamped below at 1e-12, as PyTorch's
/// `F.normalize` does, so a zero vector stays zero).
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages_only_unmasked_rows_then_normalises() {
        // Rows: [3, 0], [0, 4], padding [100, 100].
        let hidden = [3.0, 0.0, 0.0, 4.0, 100.0, 100.0];
        let v = mean_pool_normalized(&hidden, 2, 2);
        assert!(
            (v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6,
            "{v:?}"
        );
    }

    #[test]
    fn zero_stays_zero() {
        assert_eq!(mean_pool_normalized(&[0.0; 4], 2, 2), [0.0, 0.0]);
    }
}
