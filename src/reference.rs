//! The contract (CONTRACT.md, sections 1-4) written as plain scalar code.
//!
//! Everything here is the definition of the output bits: every other backend is tested
//! against these functions, bit for bit. Keep it literal; speed lives in `kernels/`.

use crate::element::{Acc, Element};
use crate::job::{Data, Rate, low_bits};
use crate::kernels::Map;
use crate::pcg::{Seed, Words};

/// The keep decision of one random word.
#[inline(always)]
pub(crate) fn keep(r: u32, threshold: u64) -> bool {
    u64::from(r) >= threshold
}

/// `round_T(widen(x) * scale)`: one multiply in the type's computing type (f32, or f64 for
/// f64), one rounding to `T`.
#[inline(always)]
pub(crate) fn scaled<T: Element>(x: T, scale: T::Acc) -> T {
    T::narrow(x.widen() * scale)
}

/// A kept element scaled, a dropped one `+0.0` whatever it was (a select, not a multiply by
/// zero, so NaN and infinities are dropped too). `select_unpredictable` keeps the compiler
/// from turning this into a branch that random data would mispredict.
#[inline(always)]
pub(crate) fn drop_one<T: Element>(x: T, kept: bool, scale: T::Acc) -> T {
    core::hint::select_unpredictable(kept, scaled(x, scale), T::ZERO)
}

/// The scale of a rate in `T`'s computing type.
#[inline(always)]
pub(crate) fn scale_of<T: Element>(rate: &Rate) -> T::Acc {
    T::Acc::from_f64(rate.scale)
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

/// Stores the keep bits of `count <= 64` elements in `word`, leaving the bits past `count`
/// as they were.
#[inline(always)]
pub(crate) fn store_word(word: &mut u64, bits: u64, count: usize) {
    let m = low_bits(count);
    *word = (*word & !m) | (bits & m);
}

/// Forward dropout, word by word: writes the mask words (when asked) and `map`'s outputs
/// (when the data has any; plain dropout's is [`drop_one`]). The caller has validated every
/// length.
pub(crate) fn generate<T: Element, M: Map<T>>(
    seed: Seed,
    offset: u64,
    rate: Rate,
    map: &M,
    mut data: Data<'_, T>,
    mut mask: Option<&mut [u64]>,
) {
    let len = data.len();
    let mut words = Words::new(seed, offset);
    for (w, start) in (0..len).step_by(64).enumerate() {
        let count = (len - start).min(64);
        let bits = keep_bits(&mut words, rate.threshold, count);
        if let Some(mask) = mask.as_deref_mut() {
            store_word(&mut mask[w], bits, count);
        }
        data.sub(start, count)
            .map(|x, i| map.one(x, (bits >> i) & 1 == 1, start + i));
    }
}

/// Applies a given mask with `map` (the backward pass, or the replay of a forward).
pub(crate) fn apply<T: Element, M: Map<T>>(mask: &[u64], map: &M, mut data: Data<'_, T>) {
    let len = data.len();
    for (w, start) in (0..len).step_by(64).enumerate() {
        let count = (len - start).min(64);
        let bits = mask[w];
        data.sub(start, count)
            .map(|x, i| map.one(x, (bits >> i) & 1 == 1, start + i));
    }
}
