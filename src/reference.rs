//! The contract (../shared/SPEC.md, sections 1-4) written as plain scalar code.
//!
//! Everything here is the definition of the output bits: every other backend is tested
//! against these functions, bit for bit. Keep it literal; speed lives in `kernels/`.

use crate::element::Element;
use crate::kernels::Data;
use crate::pcg::{Seed, Words};
use crate::Error;

/// A validated drop probability with the two numbers derived from it once per call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Rate {
    /// `p`, finite and in `[0, 1]`.
    pub(crate) p: f64,
    /// `round(p * 2^32)`, ties away from zero, in `[0, 2^32]`: element kept iff `r >= t`.
    pub(crate) threshold: u64,
    /// `1 / (1 - p)` computed in f64 and rounded to f32; 0 when `p = 1` (nothing is kept).
    pub(crate) scale: f32,
}

impl Rate {
    pub(crate) fn new(p: f64) -> Result<Self, Error> {
        if !(0.0..=1.0).contains(&p) {
            // NaN fails `contains` too.
            return Err(Error::InvalidProbability { p });
        }
        let threshold = round_half_away(p * 4_294_967_296.0);
        let scale = if p < 1.0 {
            (1.0 / (1.0 - p)) as f32
        } else {
            0.0
        };
        Ok(Rate {
            p,
            threshold,
            scale,
        })
    }
}

/// `v.round()` for `0 <= v <= 2^32`, without `std`: `v` has at most 53 significant bits, so
/// the truncation and the fraction are exact.
fn round_half_away(v: f64) -> u64 {
    let whole = v as u64;
    let frac = v - whole as f64;
    whole + u64::from(frac >= 0.5)
}

/// The keep decision of one random word.
#[inline(always)]
pub(crate) fn keep(r: u32, threshold: u64) -> bool {
    u64::from(r) >= threshold
}

/// `round_T(f32(x) * scale)`: one f32 multiply, one rounding to `T`.
#[inline(always)]
pub(crate) fn scaled<T: Element>(x: T, scale: f32) -> T {
    T::from_f32(x.to_f32() * scale)
}

/// A kept element scaled, a dropped one `+0.0` whatever it was (a select, not a multiply by
/// zero, so NaN and infinities are dropped too). `select_unpredictable` keeps the compiler
/// from turning this into a branch that random data would mispredict.
#[inline(always)]
pub(crate) fn drop_one<T: Element>(x: T, kept: bool, scale: f32) -> T {
    core::hint::select_unpredictable(kept, scaled(x, scale), T::ZERO)
}

/// The keep bits of `count <= 64` consecutive words, bit `i` for the `i`-th word.
#[inline]
pub(crate) fn keep_bits(words: &mut Words, threshold: u64, count: usize) -> u64 {
    let mut bits = 0u64;
    for i in 0..count {
        let r = words.next().unwrap_or_default();
        bits |= u64::from(keep(r, threshold)) << i;
    }
    bits
}

/// Forward dropout, word by word: writes the mask words (when asked) and the outputs (when the
/// data has any). The caller has validated every length.
pub(crate) fn generate<T: Element>(
    seed: Seed,
    offset: u64,
    rate: Rate,
    mut data: Data<'_, T>,
    mut mask: Option<&mut [u64]>,
) {
    let len = data.len();
    let mut words = Words::new(seed, offset);
    let mut start = 0;
    let mut w = 0;
    while start < len {
        let count = (len - start).min(64);
        let bits = keep_bits(&mut words, rate.threshold, count);
        if let Some(mask) = mask.as_deref_mut() {
            mask[w] = bits;
        }
        data.apply_bits(start, count, bits, rate.scale);
        start += count;
        w += 1;
    }
}

/// Applies a given mask (the backward pass, or the replay of a forward).
pub(crate) fn apply<T: Element>(mask: &[u64], scale: f32, mut data: Data<'_, T>) {
    let len = data.len();
    for (w, start) in (0..len).step_by(64).enumerate() {
        let count = (len - start).min(64);
        data.apply_bits(start, count, mask[w], scale);
    }
}

impl<T: Element> Data<'_, T> {
    /// Elements `start .. start + count` (count <= 64) through `drop_one` with keep bit `i` of
    /// `bits` for element `start + i`.
    #[inline]
    pub(crate) fn apply_bits(&mut self, start: usize, count: usize, bits: u64, scale: f32) {
        let kept = |i: usize| (bits >> i) & 1 == 1;
        match self {
            Data::Out { x, y } => {
                let xs = &x[start..start + count];
                for (i, (yo, &xi)) in y[start..start + count].iter_mut().zip(xs).enumerate() {
                    *yo = drop_one(xi, kept(i), scale);
                }
            }
            Data::InPlace(xy) => {
                for (i, v) in xy[start..start + count].iter_mut().enumerate() {
                    *v = drop_one(*v, kept(i), scale);
                }
            }
            Data::None(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_matches_std_round() {
        let cases = [
            0.0,
            0.5,
            1.5,
            2.5,
            0.49999999999999994,
            4294967295.5,
            4294967296.0,
            1e-300,
        ];
        for v in cases {
            assert_eq!(round_half_away(v), v.round() as u64, "{v}");
        }
        let mut x = 0.0f64;
        while x < 1.0 {
            let v = x * 4_294_967_296.0;
            assert_eq!(round_half_away(v), v.round() as u64, "{x}");
            x += 0.000_123_456_7;
        }
    }
}
