//! Leaving the CPU's wide vector registers clean after a model run.
//!
//! tract's matrix kernels (hand-written AVX2 and AVX-512 assembly) return with the upper
//! halves of the vector registers in use. Until something clears them with `vzeroupper`,
//! every instruction in the older SSE encoding pays for the dirty state on Intel CPUs: on
//! this project's Xeon VM, guest code (Cranelift mixes both encodings) ran **30 times
//! slower** on a thread after one model run (a sum of squares over 16,000 samples: 93 µs
//! before the run, 2.75 ms after), and so did the host's own code, built for baseline
//! x86-64 (SSE only). Compilers insert `vzeroupper` at the edges of AVX code they
//! generate; hand-written kernels must do it themselves. So the backend clears the state
//! right after each run, on the thread that ran it. AMD CPUs do not pay this penalty, and
//! the instruction costs a cycle.

/// Clears the upper halves of the vector registers (`vzeroupper`) when the CPU has AVX;
/// does nothing elsewhere.
#[inline]
pub fn clear_upper_halves() {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX, checked just above, which is all `zero_upper` requires.
        #[allow(unsafe_code)]
        unsafe {
            zero_upper();
        }
    }
}

/// `vzeroupper`, through the intrinsic so that the compiler knows what it clobbers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn zero_upper() {
    std::arch::x86_64::_mm256_zeroupper();
}
