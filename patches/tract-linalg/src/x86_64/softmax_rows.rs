/// Softmax in place over each `row_len` row of `buf`, `row_len` a non-zero multiple of 4: the
/// AVX2+FMA sibling of the aarch64 `softmax_rows_f32`. Per row: the row max, `exp(x - max)` with
/// the arithmetic of `x86_64_fma_softmax2_f32_32n` summed in the order the per-row kernels sum
/// it (the same prefix / 32-aligned body / tail split and four round-robin accumulators), then
/// a multiply by `1 / sum`. So its output is bit for bit the per-row kernels' one, without
/// their three dispatches, scratch copies and 32-lane padding per row, which dominate short
/// rows (attention over 16 tokens: rows of 16).
#[cfg(target_arch = "x86_64")]
pub fn softmax_rows_f32(buf: &mut [f32], row_len: usize) {
    debug_assert!(row_len > 0 && row_len.is_multiple_of(4));
    for row in buf.chunks_exact_mut(row_len) {
        unsafe { softmax_row(row) }
    }
}

/// `exp(x)` for `x = value - max`: `x86_64_fma_softmax2_f32_32n`'s `exp8`, instruction for
/// instruction.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn exp8(x: std::arch::x86_64::__m256) -> std::arch::x86_64::__m256 {
    use std::arch::x86_64::*;
    unsafe {
        let k = _mm256_cvtps_epi32(_mm256_mul_ps(x, _mm256_set1_ps(1.442_695_04)));
        let kf = _mm256_cvtepi32_ps(k);
        let mut rr = _mm256_fnmadd_ps(kf, _mm256_set1_ps(0.693_145_75), x);
        rr = _mm256_fnmadd_ps(kf, _mm256_set1_ps(1.428_606_8e-6), rr);
        let mut q = _mm256_set1_ps(8.297653546e-03);
        q = _mm256_fmadd_ps(q, rr, _mm256_set1_ps(4.191538191e-02));
        q = _mm256_fmadd_ps(q, rr, _mm256_set1_ps(1.666757475e-01));
        q = _mm256_fmadd_ps(q, rr, _mm256_set1_ps(4.999889485e-01));
        q = _mm256_fmadd_ps(q, rr, _mm256_set1_ps(9.999996920e-01));
        q = _mm256_fmadd_ps(q, rr, _mm256_set1_ps(1.000000072e+00));
        let biased = _mm256_max_epi32(
            _mm256_min_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), _mm256_set1_epi32(254)),
            _mm256_set1_epi32(1),
        );
        let scale = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(biased));
        let out = _mm256_or_ps(
            _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_set1_ps(-103.0)),
            _mm256_cmp_ps::<_CMP_GT_OQ>(x, _mm256_set1_ps(0.0)),
        );
        _mm256_blendv_ps(_mm256_mul_ps(q, scale), _mm256_setzero_ps(), out)
    }
}

/// The lanes below `n` (0..=8) set.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn lanes_below(n: usize) -> std::arch::x86_64::__m256i {
    use std::arch::x86_64::*;
    unsafe {
        _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
    }
}

/// `exp(x - max)` over `seg` in place and its sum, as `x86_64_fma_softmax2_f32_32n` sums a
/// buffer of `seg` padded with lanes whose exp is zero to a multiple of 32: eight-lane chunk
/// `j` goes to accumulator `j % 4`, then `(a0 + a1) + (a2 + a3)` and the same horizontal sum.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn exp_sum(seg: &mut [f32], vm: std::arch::x86_64::__m256) -> f32 {
    use std::arch::x86_64::*;
    unsafe {
        let mut acc = [_mm256_setzero_ps(); 4];
        let p = seg.as_mut_ptr();
        let n = seg.len();
        let mut i = 0;
        let mut j = 0;
        while i + 8 <= n {
            let y = exp8(_mm256_sub_ps(_mm256_loadu_ps(p.add(i)), vm));
            _mm256_storeu_ps(p.add(i), y);
            acc[j & 3] = _mm256_add_ps(acc[j & 3], y);
            i += 8;
            j += 1;
        }
        if i < n {
            let mask = lanes_below(n - i);
            let y = exp8(_mm256_sub_ps(_mm256_maskload_ps(p.add(i), mask), vm));
            _mm256_maskstore_ps(p.add(i), mask, y);
            acc[j & 3] = _mm256_add_ps(acc[j & 3], _mm256_and_ps(y, _mm256_castsi256_ps(mask)));
        }
        let acc = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let mut s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps::<1>(acc));
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        s = _mm_add_ss(s, _mm_shuffle_ps::<1>(s, s));
        _mm_cvtss_f32(s)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn softmax_row(row: &mut [f32]) {
    use std::arch::x86_64::*;
    unsafe {
        let p = row.as_mut_ptr();
        let n = row.len();
        // Max: order does not matter.
        let mut m0 = _mm256_set1_ps(f32::NEG_INFINITY);
        let mut m1 = m0;
        let mut i = 0;
        while i + 16 <= n {
            m0 = _mm256_max_ps(m0, _mm256_loadu_ps(p.add(i)));
            m1 = _mm256_max_ps(m1, _mm256_loadu_ps(p.add(i + 8)));
            i += 16;
        }
        if i + 8 <= n {
            m0 = _mm256_max_ps(m0, _mm256_loadu_ps(p.add(i)));
            i += 8;
        }
        if i < n {
            let v = _mm_loadu_ps(p.add(i));
            m1 = _mm256_max_ps(m1, _mm256_set_m128(v, v));
        }
        let m = _mm256_max_ps(m0, m1);
        let mut h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps::<1>(m));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_shuffle_ps::<1>(h, h));
        let vm = _mm256_set1_ps(_mm_cvtss_f32(h));

        // Exp and sum, split where the per-row kernels split a row: an unaligned prefix, the
        // 32-byte-aligned body in whole 32-lane blocks, and the tail, each summed on its own
        // and added up from zero in that order.
        let prefix = (p.align_offset(32)).min(n);
        let body = (n - prefix) / 32 * 32;
        let mut sum = 0f32;
        for (start, len) in [(0, prefix), (prefix, body), (prefix + body, n - prefix - body)] {
            if len > 0 {
                sum += exp_sum(&mut row[start..start + len], vm);
            }
        }

        let r = _mm256_set1_ps(sum.recip());
        let mut i = 0;
        while i + 8 <= n {
            _mm256_storeu_ps(p.add(i), _mm256_mul_ps(_mm256_loadu_ps(p.add(i)), r));
            i += 8;
        }
        if i < n {
            let r = _mm256_castps256_ps128(r);
            _mm_storeu_ps(p.add(i), _mm_mul_ps(_mm_loadu_ps(p.add(i)), r));
        }
    }
}

bail_stub!(x86_64; pub fn softmax_rows_f32(&mut [f32], usize));

submit_routine!(x86_64; SoftmaxRowsF32, SoftmaxRows, "x86_64_fma_softmax_rows_f32", softmax_rows_f32,
    isa(X86_64Avx2, X86_64Fma));

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::routines::Func;

    fn fma() -> bool {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }

    /// The per-row kernels the softmax op runs without this one.
    fn per_row(buf: &mut [f32], row_len: usize) {
        let max = Func::ReduceMax.reduce_f32().unwrap();
        let exp_sum = Func::Softmax2.map_reduce_f32().unwrap();
        let scale = Func::MulByScalar.ew_f32_param().unwrap();
        for row in buf.chunks_mut(row_len) {
            let m = max.run(row).unwrap();
            let s = exp_sum.run_with_params(row, m).unwrap();
            scale.run_with_params(row, s.recip()).unwrap();
        }
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// `len` values starting `shift` floats past a 32-byte boundary: the per-row kernels split
    /// a row by its address, so both sides of a comparison must sit alike.
    fn at(values: &[f32], shift: usize, backing: &mut Vec<f32>) -> std::ops::Range<usize> {
        *backing = vec![0f32; values.len() + 8 + shift];
        let start = backing.as_ptr().align_offset(32) + shift;
        backing[start..][..values.len()].copy_from_slice(values);
        start..start + values.len()
    }

    #[test]
    fn matches_the_per_row_kernels_bit_for_bit() {
        if !fma() {
            return;
        }
        for row_len in (4..=200).step_by(4) {
            for rows in [1usize, 2, 3, 5, 8, 9, 17] {
                let base: Vec<f32> =
                    (0..rows * row_len).map(|i| ((i as f32) * 0.37).sin() * 6.0).collect();
                for shift in [0usize, 4] {
                    let (mut want, mut got) = (vec![], vec![]);
                    let w = at(&base, shift, &mut want);
                    let g = at(&base, shift, &mut got);
                    per_row(&mut want[w.clone()], row_len);
                    softmax_rows_f32(&mut got[g.clone()], row_len);
                    assert_eq!(
                        bits(&got[g]),
                        bits(&want[w]),
                        "rows={rows} row_len={row_len} shift={shift}"
                    );
                }
            }
        }
    }

    /// A fully masked row and an infinite logit come out as through the per-row kernels.
    #[test]
    fn edge_rows_match_the_per_row_kernels() {
        if !fma() {
            return;
        }
        let row_len = 12;
        let mut base: Vec<f32> = (0..3 * row_len).map(|i| (i as f32 * 0.21).cos()).collect();
        base[..row_len].fill(f32::NEG_INFINITY);
        base[row_len + 5] = f32::INFINITY;
        base[2 * row_len + 3] = -1e30;
        let mut want = base.clone();
        per_row(&mut want, row_len);
        let mut got = base.clone();
        softmax_rows_f32(&mut got, row_len);
        for r in 0..3 {
            let (g, w) = (&got[r * row_len..][..row_len], &want[r * row_len..][..row_len]);
            assert!(
                g.iter()
                    .zip(w)
                    .all(|(g, w)| g.to_bits() == w.to_bits() || g.is_nan() && w.is_nan()),
                "row {r}: {g:?} vs {w:?}"
            );
        }
    }

    #[test]
    fn registered_as_this_hosts_row_softmax() {
        if !fma() {
            return;
        }
        assert!(crate::routines::softmax_rows_f32().is_some());
    }
}
