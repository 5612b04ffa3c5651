//! Alpha dropout (Klambauer et al. 2017) for self-normalizing (SELU) networks: a dropped
//! element becomes SELU's negative saturation value, and an affine map restores mean 0 and
//! variance 1.

use crate::Error;
use crate::backend::Backend;
use crate::element::{Acc, Element};
use crate::job::{Bits, BitsMut, Data, Rate};
use crate::ops::decisions::{Decisions, chunked, decide, per_word};
use crate::ops::{At, element};

/// Alpha dropout's rate and constants in f64: kept `a * x + b`, dropped `c`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Alpha {
    pub(crate) rate: Rate,
    a: f64,
    b: f64,
    c: f64,
}

impl Alpha {
    /// `InvalidProbability` unless `p` is in `[0, 1)`.
    pub(crate) fn new(p: f64) -> Result<Alpha, Error> {
        let rate = Rate::below_one(p)?;
        let a = 1.0 / sqrt((1.0 - p) * (1.0 + p * (SELU_ALPHA * SELU_ALPHA)));
        let b = a * SELU_ALPHA * p;
        let c = -a * SELU_ALPHA * (1.0 - p);
        Ok(Alpha { rate, a, b, c })
    }

    /// The backward pass's rate: the dropout kernel with `a` for the scale.
    fn backward_rate(&self) -> Rate {
        Rate {
            scale: self.a,
            ..self.rate
        }
    }
}

/// The forward pass; the keep bits go to `mask` when given.
pub(crate) fn forward<T: Element>(
    backend: Backend,
    k: Alpha,
    at: At,
    data: Data<'_, T>,
    mask: Option<BitsMut<'_>>,
) {
    let dec = decide(backend, at, k.rate, data.len(), mask);
    replay(backend, k, &dec, data);
}

/// The forward's elements from its decisions.
fn replay<T: Element>(backend: Backend, k: Alpha, dec: &Decisions<'_>, data: Data<'_, T>) {
    let (a, b) = (T::Acc::from_f64(k.a), T::Acc::from_f64(k.b));
    let dropped = T::narrow(T::Acc::from_f64(k.c));
    let one = move |x: T, kept: bool, _| {
        // Two roundings, `a * x` then `+ b`; Rust never contracts them into an FMA.
        core::hint::select_unpredictable(kept, T::narrow(a * x.widen() + b), dropped)
    };
    let chunk =
        |_: usize, bits: &[u64], d: Data<'_, T>| backend.with_isa(|| per_word(bits, d, one));
    chunked(backend, dec, data, &chunk);
}

/// The backward pass: `keep ? a * gy : +0.0`, the dropout kernels with `a` for the scale.
pub(crate) fn backward<T: Element>(
    backend: Backend,
    k: Alpha,
    at: At,
    data: Data<'_, T>,
    mask: Option<Bits<'_>>,
) {
    element::backward(backend, k.backward_rate(), at, data, mask);
}

const SELU_ALPHA: f64 = 1.758_099_340_847_376_6;

/// The correctly rounded square root of a positive normal `v`, without `std` (so that
/// `no_std` builds compute the same constants as `f64::sqrt`).
fn sqrt(v: f64) -> f64 {
    let bits = v.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i64 - 1075; // v = sig * 2^exp
    let sig = u128::from((bits & ((1u64 << 52) - 1)) | (1u64 << 52));
    // v = scaled * 2^(exp - shift) with an even exponent and scaled in [2^106, 2^108), so
    // that the integer root has exactly 54 bits: 53 and a rounding bit.
    let shift: i64 = if (exp - 54).rem_euclid(2) == 0 {
        54
    } else {
        55
    };
    let scaled = sig << shift;
    let half = (exp - shift) / 2;
    let mut root = approx_isqrt(scaled);
    while root * root > scaled {
        root -= 1;
    }
    while (root + 1) * (root + 1) <= scaled {
        root += 1;
    }
    // Round to 53 bits. The root of a double is never exactly halfway between two doubles,
    // so the dropped bit alone decides.
    let rounded = (root >> 1) + (root & 1);
    rounded as f64 * pow2(half + 1)
}

/// `2^e` for a normal result.
fn pow2(e: i64) -> f64 {
    f64::from_bits(((e + 1023) as u64) << 52)
}

/// An integer square root good to a few units: Newton's iteration in f64.
fn approx_isqrt(x: u128) -> u128 {
    let f = x as f64;
    let mut g = pow2((((f.to_bits() >> 52) & 0x7ff) as i64 - 1023) / 2);
    for _ in 0..8 {
        g = 0.5 * (g + f / g);
    }
    g as u128
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqrt_is_correctly_rounded() {
        let mut v = 1e-3f64;
        while v < 1e3 {
            assert_eq!(sqrt(v).to_bits(), v.sqrt().to_bits(), "{v}");
            v = f64::from_bits(v.to_bits() + 0x0000_0123_4567_89ab);
        }
        for p in [0.0, 0.1, 0.2, 0.5, 0.9, 0.999] {
            let v = (1.0 - p) * (1.0 + p * (SELU_ALPHA * SELU_ALPHA));
            assert_eq!(sqrt(v).to_bits(), v.sqrt().to_bits());
        }
    }
}
