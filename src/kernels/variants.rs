//! The variants' element arithmetic as kernels: what a kept and a dropped element become in
//! alpha dropout and in the fused bias + dropout + residual forward ([`Map`]s that the
//! driver applies in the same pass that draws the keep bits, 64 elements per mask word).
//! f32 goes to the instruction set's own method ([`Isa::affine64_f32`],
//! [`Isa::residual64_f32`]); the other types run the element loop inside the backend's
//! `#[target_feature]` entry point, where it is auto-vectorized.

use super::{Isa, Map};
use crate::element::{Acc, Element, Kind};
use core::hint::select_unpredictable;

/// Alpha dropout's forward: kept `a * x + b` (two roundings, never an FMA), dropped `c`.
#[derive(Clone, Copy)]
pub(crate) struct Affine<T: Element> {
    a: T::Acc,
    b: T::Acc,
    dropped: T,
    /// `(a, b, c)` rounded to f32, for the f32 method (equal to the above for f32).
    f32s: (f32, f32, f32),
}

impl<T: Element> Affine<T> {
    /// The map of constants `a`, `b`, `c` derived in f64.
    pub(crate) fn new(a: f64, b: f64, c: f64) -> Self {
        Affine {
            a: T::Acc::from_f64(a),
            b: T::Acc::from_f64(b),
            dropped: T::narrow(T::Acc::from_f64(c)),
            f32s: (a as f32, b as f32, c as f32),
        }
    }
}

impl<T: Element> Map<T> for Affine<T> {
    #[inline(always)]
    fn one(&self, x: T, kept: bool, _: usize) -> T {
        select_unpredictable(kept, T::narrow(self.a * x.widen() + self.b), self.dropped)
    }

    fn fits(&self, _: usize) -> bool {
        true
    }

    #[inline(always)]
    fn from(&self, _: usize) -> Self {
        *self
    }

    #[inline(always)]
    unsafe fn block<I: Isa>(&self, isa: I, src: *const T, dst: *mut T, i: usize, word: u64) {
        // SAFETY: the caller's; `KIND` names `T`, so the casts keep the pointee type.
        unsafe {
            match T::KIND {
                Kind::F32 => isa.affine64_f32(src.cast(), dst.cast(), word, self.f32s),
                _ => default_block(self, src, dst, i, word),
            }
        }
    }
}

/// The fused forward: kept `residual + (x + bias) * scale` (each operation in the computing
/// type, then one rounding to `T`), dropped `residual`. Element `i` of the job is in column
/// `(c0 + i) % bias.len()`.
#[derive(Clone, Copy)]
pub(crate) struct Residual<'a, T: Element> {
    bias: &'a [T],
    /// The job's residual: element `i` reads `residual[i]`.
    residual: &'a [T],
    c0: usize,
    scale: T::Acc,
    /// The scale rounded to f32, for the f32 method.
    scale32: f32,
}

impl<'a, T: Element> Residual<'a, T> {
    /// The map of a job whose first element is in column `c0` of `bias` (empty only for a
    /// job without elements).
    pub(crate) fn new(bias: &'a [T], residual: &'a [T], c0: usize, scale: f64) -> Self {
        Residual {
            bias,
            residual,
            c0,
            scale: T::Acc::from_f64(scale),
            scale32: scale as f32,
        }
    }
}

impl<T: Element> Map<T> for Residual<'_, T> {
    #[inline(always)]
    fn one(&self, x: T, kept: bool, i: usize) -> T {
        let (r, b) = (self.residual[i], self.bias[(self.c0 + i) % self.bias.len()]);
        let t = x.widen() + b.widen();
        select_unpredictable(kept, T::narrow(r.widen() + t * self.scale), r)
    }

    fn fits(&self, n: usize) -> bool {
        self.residual.len() >= n && (n == 0 || !self.bias.is_empty())
    }

    fn from(&self, first: usize) -> Self {
        Residual {
            residual: &self.residual[first..],
            // A call without elements may have no bias (nothing reads the column).
            c0: (self.c0 + first).checked_rem(self.bias.len()).unwrap_or(0),
            ..*self
        }
    }

    #[inline(always)]
    unsafe fn block<I: Isa>(&self, isa: I, src: *const T, dst: *mut T, i: usize, word: u64) {
        let c = (self.c0 + i) % self.bias.len();
        if c + 64 > self.bias.len() || T::KIND != Kind::F32 {
            // The word crosses a row's end, or not f32: the element loop.
            // SAFETY: the caller's.
            return unsafe { default_block(self, src, dst, i, word) };
        }
        // SAFETY: the caller's, and bias columns c .. c + 64 and residual elements
        // i .. i + 64 exist (`fits`); `KIND` names `T`.
        unsafe {
            let bias = self.bias.as_ptr().add(c).cast();
            let res = self.residual.as_ptr().add(i).cast();
            isa.residual64_f32(src.cast(), (bias, res), dst.cast(), word, self.scale32)
        }
    }
}

/// The element loop of [`Map::block`], for the words no instruction-set method takes.
///
/// # Safety
/// As for [`Map::block`].
#[inline(always)]
unsafe fn default_block<T: Element, M: Map<T>>(
    map: &M,
    src: *const T,
    dst: *mut T,
    i: usize,
    word: u64,
) {
    for k in 0..64 {
        // SAFETY: k < 64, inside the caller's 64 elements.
        unsafe {
            let x = src.add(k).read();
            dst.add(k).write(map.one(x, (word >> k) & 1 == 1, i + k));
        }
    }
}
