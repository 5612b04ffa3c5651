//! Gaussian (multiplicative) dropout (Srivastava et al. 2014, section 10; Keras
//! `GaussianDropout`): `y = x * (1 + sigma * z)`, `sigma = sqrt(p / (1 - p))`, with `z` a
//! standard normal variate made from the stream by a Box-Muller transform in IEEE 754
//! arithmetic only (`+ - * /` and a correctly rounded square root, no FMA, no libm), so that
//! every backend and architecture computes the same bits.
//!
//! Stream position `q` takes its variate from the word pair at `q & !1` (the radius) and
//! `q | 1` (the angle): the cosine side for even `q`, the sine side for odd. The two sides of
//! a pair are independent normals, so a call may start or end inside a pair.

use crate::Error;
use crate::backend::Backend;
use crate::element::{Acc, Element};
use crate::job::{Data, Rate};
use crate::kernels::{WordJob, WordSource};
use crate::ops::At;
use crate::ops::math::{sqrt, sqrt_f32};

/// Gaussian dropout's noise scale, from `p` in `[0, 1)`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Gaussian {
    /// `sqrt(p / (1 - p))` in f64, correctly rounded.
    sigma: f64,
}

impl Gaussian {
    /// `InvalidProbability` unless `p` is in `[0, 1)`.
    pub(crate) fn new(p: f64) -> Result<Gaussian, Error> {
        Rate::below_one(p)?;
        Ok(Gaussian {
            sigma: sqrt(p / (1.0 - p)),
        })
    }
}

/// The forward pass, and the backward (`gx = gy * (1 + sigma * z)`, the same noise).
pub(crate) fn apply<T: Element>(
    backend: Backend,
    g: Gaussian,
    (seed, offset): At,
    data: Data<'_, T>,
) {
    let sigma = T::Acc::from_f64(g.sigma);
    let run = |first: usize, mut d: Data<'_, T>| {
        if g.sigma == 0.0 {
            // p = 0: the identity, and no word is drawn.
            return d.map(|x, _| x);
        }
        let q0 = offset.wrapping_add(first as u64);
        // The piece's variates start at the pair containing its first position.
        let skip = (q0 & 1) as usize;
        backend.run_words(
            seed,
            q0 & !1,
            Noise {
                data: d,
                skip,
                sigma,
            },
        );
    };
    backend.pieces(data, CHUNK, &run);
}

/// Variates per chunk, on the stack.
const CHUNK: usize = 256;

/// The elements of one piece, whose element `i` takes variate `skip + i` of the words it is
/// run on.
struct Noise<'a, T: Element> {
    data: Data<'a, T>,
    skip: usize,
    sigma: T::Acc,
}

impl<T: Element> WordJob for Noise<'_, T> {
    #[inline(always)]
    fn run(mut self, words: &mut impl WordSource) {
        let (n, skip) = (self.data.len(), self.skip);
        let one = T::Acc::from_f64(1.0);
        let mut scratch = Scratch {
            w: [0; CHUNK],
            a: [0; CHUNK / 2],
            b: [0; CHUNK / 2],
            r: [0.0; CHUNK / 2],
            z: [0.0; CHUNK],
        };
        for start in (0..skip + n).step_by(CHUNK) {
            scratch.fill(words);
            // The elements whose variates are in this chunk.
            let lo = start.saturating_sub(skip);
            let hi = (start + CHUNK - skip).min(n);
            let noise = &scratch.z[lo + skip - start..hi + skip - start];
            self.data.sub(lo, hi - lo).zip_map(noise, |x, z| {
                T::narrow(x.widen() * (one + self.sigma * T::Acc::from_f32(z)))
            });
        }
    }
}

/// One chunk's words, pairs, radii and variates (on the stack, initialized once per call).
struct Scratch {
    w: [u32; CHUNK],
    a: [u32; CHUNK / 2],
    b: [u32; CHUNK / 2],
    r: [f32; CHUNK / 2],
    z: [f32; CHUNK],
}

impl Scratch {
    /// The next `CHUNK` variates into `z`: the words, split into the pairs' first and second
    /// words, then the radii, then the angles. Simple loops of independent iterations, so
    /// that the latencies of the divisions and square roots overlap.
    #[inline(always)]
    fn fill(&mut self, words: &mut impl WordSource) {
        for block in self.w.as_chunks_mut::<64>().0 {
            words.next64(block);
        }
        for (k, pair) in self.w.as_chunks::<2>().0.iter().enumerate() {
            (self.a[k], self.b[k]) = (pair[0], pair[1]);
        }
        for (r, &a) in self.r.iter_mut().zip(&self.a) {
            *r = radius(a);
        }
        for k in 0..CHUNK / 2 {
            let (c, s) = unit_vector(self.b[k]);
            self.z[2 * k] = self.r[k] * c;
            self.z[2 * k + 1] = self.r[k] * s;
        }
    }
}

/// The radius `r = sqrt(-2 ln u)` of a pair from its first word `a`; the variates of the
/// pair `(a, b)` are `r cos(theta)` and `r sin(theta)`, `theta` from `b`.
#[inline(always)]
fn radius(a: u32) -> f32 {
    sqrt_f32(ln_uniform(a) * -2.0)
}

/// `ln(u)` for `u = ((a >> 8) + 1) / 2^24` in `(0, 1]`: `u = m * 2^(e - 24)` with `m` in
/// `[sqrt(1/2), sqrt(2))`, `ln(m) = 2 atanh(s)` for `s = (m - 1) / (m + 1)` by its series to
/// `s^9`, and `ln 2` in two parts so that `(e - 24) * LN2_HI` is exact.
#[inline(always)]
fn ln_uniform(a: u32) -> f32 {
    let k = ((a >> 8) + 1) as f32; // exact: at most 2^24
    let bits = k.to_bits();
    let m = f32::from_bits((bits & 0x7f_ffff) | 0x3f80_0000); // k = m * 2^e, m in [1, 2)
    let big = m > SQRT_2;
    let m = if big { m * 0.5 } else { m };
    let e = (bits >> 23) as i32 - 127 + i32::from(big);
    let s = (m - 1.0) / (m + 1.0);
    let t = s * s;
    let series = LN_C1 + t * (LN_C2 + t * (LN_C3 + t * LN_C4));
    let s2 = s + s;
    let ln_m = s2 + s2 * (t * series);
    let f = (e - 24) as f32;
    f * LN2_HI + (ln_m + f * LN2_LO)
}

/// `(cos(theta), sin(theta))` for `theta = quadrant * pi/2 + phi`: the quadrant is the top two
/// bits of `b`, and `phi = (f - 1/2) * pi/2` in `[-pi/4, pi/4)` with `f` the next 24 bits
/// over 2^24; sine and cosine of `phi` by their Taylor polynomials to `phi^9` and `phi^10`.
/// The quadrant swaps the two and flips signs (exact).
#[inline(always)]
fn unit_vector(b: u32) -> (f32, f32) {
    let f = ((b >> 6) & 0xff_ffff) as f32 * f32::from_bits(0x3380_0000); // * 2^-24, exact
    let phi = (f - 0.5) * FRAC_PI_2;
    let t = phi * phi;
    let sin = phi + phi * (t * (S1 + t * (S2 + t * (S3 + t * S4))));
    let cos = 1.0 + t * (C1 + t * (C2 + t * (C3 + t * (C4 + t * C5))));
    let q = b >> 30;
    let (x, y) = if q & 1 == 1 { (sin, cos) } else { (cos, sin) };
    // Negative cosine in quadrants 1 and 2, negative sine in 2 and 3.
    let x_sign = ((q ^ (q >> 1)) & 1) << 31;
    let y_sign = (q >> 1) << 31;
    (
        f32::from_bits(x.to_bits() ^ x_sign),
        f32::from_bits(y.to_bits() ^ y_sign),
    )
}

// The constants of the contract, by their bits.
const SQRT_2: f32 = f32::from_bits(0x3fb5_04f3);
const LN_C1: f32 = f32::from_bits(0x3eaa_aaab); // 1/3
const LN_C2: f32 = f32::from_bits(0x3e4c_cccd); // 1/5
const LN_C3: f32 = f32::from_bits(0x3e12_4925); // 1/7
const LN_C4: f32 = f32::from_bits(0x3de3_8e39); // 1/9
const LN2_HI: f32 = f32::from_bits(0x3f31_7200); // 0.693145751953125
const LN2_LO: f32 = f32::from_bits(0x35bf_be8e); // ln 2 - LN2_HI
const FRAC_PI_2: f32 = f32::from_bits(0x3fc9_0fdb);
const S1: f32 = f32::from_bits(0xbe2a_aaab); // -1/3!
const S2: f32 = f32::from_bits(0x3c08_8889); // 1/5!
const S3: f32 = f32::from_bits(0xb950_0d01); // -1/7!
const S4: f32 = f32::from_bits(0x3638_ef1d); // 1/9!
const C1: f32 = f32::from_bits(0xbf00_0000); // -1/2!
const C2: f32 = f32::from_bits(0x3d2a_aaab); // 1/4!
const C3: f32 = f32::from_bits(0xbab6_0b61); // -1/6!
const C4: f32 = f32::from_bits(0x37d0_0d01); // 1/8!
const C5: f32 = f32::from_bits(0xb493_f27e); // -1/10!

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_are_the_rounded_values() {
        let ln2 = core::f64::consts::LN_2;
        // LN2_HI has 15 significant bits, so its product with an exponent of 5 bits is exact.
        assert_eq!(LN2_HI.to_bits() & 0x1ff, 0);
        assert!((f64::from(LN2_HI) - ln2).abs() < 1e-5);
        assert_eq!(LN2_LO, (ln2 - f64::from(LN2_HI)) as f32);
        assert_eq!(SQRT_2, core::f32::consts::SQRT_2);
        assert_eq!(FRAC_PI_2, core::f32::consts::FRAC_PI_2);
        let fact = |n: u32| (1..=n).map(f64::from).product::<f64>();
        for (c, n) in [(LN_C1, 3.0), (LN_C2, 5.0), (LN_C3, 7.0), (LN_C4, 9.0)] {
            assert_eq!(c, (1.0 / n) as f32);
        }
        for (i, c) in [S1, S2, S3, S4].into_iter().enumerate() {
            let n = 2 * i as u32 + 3;
            assert_eq!(
                c,
                (f64::from(if i % 2 == 0 { -1 } else { 1 }) / fact(n)) as f32
            );
        }
        for (i, c) in [C1, C2, C3, C4, C5].into_iter().enumerate() {
            let n = 2 * i as u32 + 2;
            assert_eq!(
                c,
                (f64::from(if i % 2 == 0 { -1 } else { 1 }) / fact(n)) as f32
            );
        }
    }

    /// The polynomials are accurate: within a few f32 ulps of the f64 functions.
    #[test]
    fn ln_and_unit_vector_are_accurate() {
        let step = if cfg!(miri) { 1 << 26 } else { 1 << 12 };
        for a in (0..=u32::MAX).step_by(step).chain([u32::MAX, 255, 256]) {
            let u = f64::from((a >> 8) + 1) / 16_777_216.0;
            let err = (f64::from(ln_uniform(a)) - u.ln()).abs();
            assert!(
                err <= 4e-7 * u.ln().abs().max(1e-7) + 1e-12,
                "ln {u}: {err:e}"
            );
            let (c, s) = unit_vector(a);
            let q = f64::from(a >> 30);
            let f = f64::from((a >> 6) & 0xff_ffff) / 16_777_216.0;
            let theta = q * core::f64::consts::FRAC_PI_2 + (f - 0.5) * core::f64::consts::FRAC_PI_2;
            assert!((f64::from(c) - theta.cos()).abs() < 2e-7, "cos {theta}");
            assert!((f64::from(s) - theta.sin()).abs() < 2e-7, "sin {theta}");
        }
        assert_eq!(ln_uniform(u32::MAX), 0.0);
    }
}
