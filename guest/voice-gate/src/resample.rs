//! Band-limited sample-rate conversion to the voice model's 16 kHz.
//!
//! A rational polyphase resampler with a Kaiser-windowed sinc low-pass: the ratio
//! `out/in` is reduced to `L/M`, output sample `n` sits at input position `n*M/L`, and
//! each of the `L` fractional phases gets its own precomputed filter. The low-pass stops at
//! the lower of the two Nyquist frequencies (8 kHz for 48 -> 16 kHz, so nothing aliases;
//! 4 kHz for 8 -> 16 kHz, so no images appear) and passes up to 81% of it, which keeps the
//! whole speech band. Naive linear interpolation would fold everything between 8 and
//! 24 kHz of a 48 kHz recording back into the speech band.

/// Passband edge as a fraction of the lower Nyquist frequency.
const PASSBAND: f64 = 0.8125;
/// Stopband attenuation of the Kaiser design, in dB.
const STOPBAND_DB: f64 = 70.0;

/// A resampler between two fixed rates with its filter bank precomputed.
#[derive(Debug, Clone)]
pub struct Resampler {
    /// Output samples per `down` input samples (the reduced ratio's numerator).
    up: usize,
    /// Input samples per `up` output samples.
    down: usize,
    /// Input samples each side of the output position that the filter reaches.
    reach: usize,
    /// `up` phases of `2 * reach` taps each, phase-major, normalised to unity DC gain.
    taps: Vec<f32>,
}

impl Resampler {
    /// Builds a resampler from `from_hz` to `to_hz`; both must be non-zero.
    pub fn new(from_hz: u32, to_hz: u32) -> Self {
        let g = gcd(from_hz, to_hz).max(1);
        let up = (to_hz / g) as usize;
        let down = (from_hz / g) as usize;
        let nyquist = f64::from(from_hz.min(to_hz)) / 2.0;
        let stop = nyquist;
        let pass = nyquist * PASSBAND;
        // Cutoff and transition in cycles per input sample.
        let cutoff = (pass + stop) / 2.0 / f64::from(from_hz);
        let transition = (stop - pass) / f64::from(from_hz);
        // Kaiser's formulas for window length and shape from attenuation and transition.
        let length = (STOPBAND_DB - 7.95) / (14.36 * transition);
        let half = length / 2.0;
        let beta = 0.1102 * (STOPBAND_DB - 8.7);
        let reach = half.ceil() as usize + 1;
        let width = 2 * reach;
        let mut taps = Vec::with_capacity(up * width);
        for phase in 0..up {
            let frac = phase as f64 / up as f64;
            let start = taps.len();
            for k in 0..width {
                // Tap k multiplies input sample base + k + 1 - reach.
                let t = (k as f64 + 1.0 - reach as f64) - frac;
                let w = if t.abs() >= half {
                    0.0
                } else {
                    kaiser(t / half, beta)
                };
                taps.push((2.0 * cutoff * sinc(2.0 * cutoff * t) * w) as f32);
            }
            let sum: f32 = taps[start..].iter().sum();
            if sum != 0.0 {
                taps[start..].iter_mut().for_each(|x| *x /= sum);
            }
        }
        Self {
            up,
            down,
            reach,
            taps,
        }
    }

    /// Number of output samples for `input_len` input samples.
    pub fn output_len(&self, input_len: usize) -> usize {
        (input_len as u64 * self.up as u64 / self.down as u64) as usize
    }

    /// Resamples `input`; samples outside it count as silence.
    pub fn process(&self, input: &[f32]) -> Vec<f32> {
        let width = 2 * self.reach;
        let n_out = self.output_len(input.len());
        let mut out = Vec::with_capacity(n_out);
        for n in 0..n_out {
            let pos = n as u64 * self.down as u64;
            let base = (pos / self.up as u64) as usize;
            let phase = (pos % self.up as u64) as usize;
            let taps = &self.taps[phase * width..(phase + 1) * width];
            // Input index of tap 0, possibly before the start.
            let first = base as isize + 1 - self.reach as isize;
            let acc: f32 = if first >= 0 && first as usize + width <= input.len() {
                let window = &input[first as usize..first as usize + width];
                window.iter().zip(taps).map(|(x, h)| x * h).sum()
            } else {
                taps.iter()
                    .enumerate()
                    .filter_map(|(k, h)| {
                        let i = first + k as isize;
                        usize::try_from(i)
                            .ok()
                            .and_then(|i| input.get(i))
                            .map(|x| x * h)
                    })
                    .sum()
            };
            out.push(acc);
        }
        out
    }
}

/// Greatest common divisor.
fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Normalised sinc: sin(pi x) / (pi x).
fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-12 {
        1.0
    } else {
        let px = std::f64::consts::PI * x;
        px.sin() / px
    }
}

/// Kaiser window at `x` in [-1, 1].
fn kaiser(x: f64, beta: f64) -> f64 {
    bessel_i0(beta * (1.0 - x * x).max(0.0).sqrt()) / bessel_i0(beta)
}

/// Modified Bessel function of the first kind, order zero, by its power series.
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let half = x / 2.0;
    for k in 1..64 {
        term *= (half / k as f64) * (half / k as f64);
        sum += term;
        if term < sum * 1e-16 {
            break;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, hz: f64, seconds: f64) -> Vec<f32> {
        let n = (f64::from(rate) * seconds) as usize;
        (0..n)
            .map(|i| {
                (0.5 * (2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(rate)).sin()) as f32
            })
            .collect()
    }

    /// Amplitude of the `hz` component of `x` (sampled at `rate`), by correlation.
    fn amplitude_at(x: &[f32], rate: u32, hz: f64) -> f64 {
        let (mut re, mut im) = (0.0, 0.0);
        for (i, &v) in x.iter().enumerate() {
            let phase = 2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(rate);
            re += f64::from(v) * phase.cos();
            im += f64::from(v) * phase.sin();
        }
        2.0 * (re * re + im * im).sqrt() / x.len() as f64
    }

    /// Drops the filter's edge transients.
    fn middle(x: &[f32]) -> &[f32] {
        &x[x.len() / 10..x.len() * 9 / 10]
    }

    #[test]
    fn keeps_a_1khz_sine_from_every_accepted_rate() {
        for rate in [8000, 32000, 44100, 48000] {
            let out = Resampler::new(rate, 16000).process(&sine(rate, 1000.0, 0.5));
            assert_eq!(out.len(), 8000, "{rate}");
            let mid = middle(&out);
            let amp = amplitude_at(mid, 16000, 1000.0);
            assert!((amp - 0.5).abs() < 0.005, "{rate} Hz: amplitude {amp}");
            // The energy is at 1 kHz, not spread to a neighbouring frequency.
            assert!(amplitude_at(mid, 16000, 1100.0) < 0.01, "{rate} Hz");
        }
    }

    #[test]
    fn attenuates_tones_near_and_above_the_new_nyquist() {
        let r = Resampler::new(48000, 16000);
        let near = r.process(&sine(48000, 7500.0, 0.5));
        let amp = amplitude_at(middle(&near), 16000, 7500.0);
        assert!(amp < 0.25, "7.5 kHz kept at {amp} of 0.5");
        // 10 kHz would alias to 6 kHz if not filtered out first.
        let above = r.process(&sine(48000, 10000.0, 0.5));
        let alias = amplitude_at(middle(&above), 16000, 6000.0);
        assert!(alias < 0.5e-3, "10 kHz aliased to 6 kHz at {alias}");
    }

    #[test]
    fn upsampling_creates_no_images() {
        let out = Resampler::new(8000, 16000).process(&sine(8000, 3000.0, 0.5));
        let mid = middle(&out);
        assert!((amplitude_at(mid, 16000, 3000.0) - 0.5).abs() < 0.01);
        assert!(amplitude_at(mid, 16000, 5000.0) < 0.5e-3);
    }

    #[test]
    fn handles_inputs_shorter_than_the_filter() {
        let r = Resampler::new(44100, 16000);
        assert!(r.process(&[]).is_empty());
        assert_eq!(r.process(&[0.25; 5]).len(), 1);
    }
}
