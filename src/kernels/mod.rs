//! The vectorized kernels: one file per instruction set, and the algorithm written once over
//! the small [`Isa`] trait that each of them implements.
//!
//! Every kernel processes whole mask words: 64 elements, decided by 64 interleaved PCG32
//! lanes (lane `j` yields the words of elements `j, j + 64, j + 128, ...`). A partial last word
//! continues the same stream position in scalar code, so no word beyond the slice is drawn.

use crate::element::Element;
use crate::pcg::{Affine, Seed, Words};
use crate::reference::{drop_one, keep_bits, Rate};

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;
pub(crate) mod portable;

/// The elements one call reads and writes.
pub(crate) enum Data<'a, T> {
    /// Read `x`, write `y` (same length).
    Out { x: &'a [T], y: &'a mut [T] },
    /// Read and write the same slice.
    InPlace(&'a mut [T]),
    /// No elements, only the mask of this many.
    None(usize),
}

impl<'a, T> Data<'a, T> {
    pub(crate) fn len(&self) -> usize {
        match self {
            Data::Out { x, .. } => x.len(),
            Data::InPlace(xy) => xy.len(),
            Data::None(n) => *n,
        }
    }

    /// The first `mid` elements and the rest.
    #[cfg(feature = "rayon")]
    pub(crate) fn split_at(self, mid: usize) -> (Data<'a, T>, Data<'a, T>) {
        match self {
            Data::Out { x, y } => {
                let (x1, x2) = x.split_at(mid);
                let (y1, y2) = y.split_at_mut(mid);
                (Data::Out { x: x1, y: y1 }, Data::Out { x: x2, y: y2 })
            }
            Data::InPlace(xy) => {
                let (a, b) = xy.split_at_mut(mid);
                (Data::InPlace(a), Data::InPlace(b))
            }
            Data::None(n) => (Data::None(mid), Data::None(n - mid)),
        }
    }

    /// Elements `start .. start + len`, reborrowed.
    pub(crate) fn sub(&mut self, start: usize, len: usize) -> Data<'_, T> {
        match self {
            Data::Out { x, y } => Data::Out {
                x: &x[start..start + len],
                y: &mut y[start..start + len],
            },
            Data::InPlace(xy) => Data::InPlace(&mut xy[start..start + len]),
            Data::None(_) => Data::None(len),
        }
    }

    /// Source and destination pointers (equal in place, both null without data).
    fn raw(&mut self) -> (*const T, *mut T) {
        match self {
            Data::Out { x, y } => (x.as_ptr(), y.as_mut_ptr()),
            Data::InPlace(xy) => {
                let p = xy.as_mut_ptr();
                (p.cast_const(), p)
            }
            Data::None(_) => (core::ptr::null(), core::ptr::null_mut()),
        }
    }
}

/// One instruction set's primitives. Implementations are zero-sized; every method is
/// `#[inline(always)]` so that it compiles inside the caller's `#[target_feature]` function.
pub(crate) trait Isa: Copy {
    /// The state of 64 interleaved LCG lanes.
    type Lanes;

    /// Lanes for 64 consecutive words, the first of which `first` outputs.
    ///
    /// # Safety
    /// The instruction set must be available.
    unsafe fn lanes(self, first: u64, step: Affine) -> Self::Lanes;

    /// The keep bits of the next 64 words (`r >= threshold`), then steps every lane by 64.
    ///
    /// # Safety
    /// The instruction set must be available.
    unsafe fn next_word(self, lanes: &mut Self::Lanes, threshold: u32) -> u64;

    /// `dst[i] = keep ? round(src[i] * scale) : +0.0` for 64 elements, bit `i` of `word`.
    ///
    /// # Safety
    /// The instruction set must be available; `src` valid for 64 reads, `dst` for 64 writes;
    /// they are equal or do not overlap.
    unsafe fn apply64<T: Element>(self, src: *const T, dst: *mut T, word: u64, scale: f32);
}

/// The 64 scalar states that start the lanes: `states[j]` outputs word `j`.
#[inline(always)]
pub(crate) fn lane_states(first: u64, step: Affine) -> [u64; 64] {
    let mut states = [0u64; 64];
    let mut s = first;
    for state in states.iter_mut() {
        *state = s;
        s = step.apply(s);
    }
    states
}

/// Forward dropout over `n` elements: mask words to `mask` (unless null), outputs to `dst`
/// (unless null).
///
/// # Safety
/// The instruction set of `isa` must be available. `src` (when `dst` is not null) is valid
/// for `n` reads and `dst` for `n` writes; they are equal or do not overlap. `mask`, unless
/// null, is valid for `ceil(n / 64)` writes.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn generate<I: Isa, T: Element>(
    isa: I,
    seed: Seed,
    offset: u64,
    rate: Rate,
    src: *const T,
    dst: *mut T,
    mask: *mut u64,
    n: usize,
) {
    let full = n / 64;
    // p = 0 and p = 1 decide every element without drawing a word.
    let constant = match rate.threshold {
        0 => Some(!0u64),
        t if t > u64::from(u32::MAX) => Some(0),
        _ => None,
    };
    let emit = |b: usize, word: u64| {
        // SAFETY: b < full, so the word and its 64 elements are inside the caller's buffers.
        unsafe {
            if !mask.is_null() {
                mask.add(b).write(word);
            }
            if !dst.is_null() {
                isa.apply64(src.add(64 * b), dst.add(64 * b), word, rate.scale);
            }
        }
    };
    match constant {
        Some(word) => (0..full).for_each(|b| emit(b, word)),
        None if full > 0 => {
            // SAFETY: the caller guarantees the instruction set.
            let mut lanes = unsafe { isa.lanes(seed.state_at(offset), seed.step()) };
            for b in 0..full {
                // SAFETY: as above.
                let word = unsafe { isa.next_word(&mut lanes, rate.threshold as u32) };
                emit(b, word);
            }
        }
        None => {}
    }
    let rem = n % 64;
    if rem > 0 {
        let start = 64 * full;
        let mut words = Words::new(seed, offset.wrapping_add(start as u64));
        let bits = keep_bits(&mut words, rate.threshold, rem);
        // SAFETY: word `full` and elements start..n are inside the caller's buffers; a null
        // pointer is never offset.
        unsafe {
            if !mask.is_null() {
                mask.add(full).write(bits);
            }
            if !dst.is_null() {
                tail(src.add(start), dst.add(start), rem, bits, rate.scale);
            }
        }
    }
}

/// Applies the mask words at `mask` to `n` elements.
///
/// # Safety
/// As for [`generate`], with `mask` valid for `ceil(n / 64)` reads and `dst` not null.
#[inline(always)]
pub(crate) unsafe fn apply<I: Isa, T: Element>(
    isa: I,
    mask: *const u64,
    scale: f32,
    src: *const T,
    dst: *mut T,
    n: usize,
) {
    let full = n / 64;
    // SAFETY: every word and element index below is inside the caller's buffers.
    unsafe {
        for b in 0..full {
            isa.apply64(src.add(64 * b), dst.add(64 * b), mask.add(b).read(), scale);
        }
        let rem = n % 64;
        if rem > 0 {
            let start = 64 * full;
            let bits = mask.add(full).read();
            tail(src.add(start), dst.add(start), rem, bits, scale);
        }
    }
}

/// The last `rem < 64` elements, in scalar code.
///
/// # Safety
/// `src` valid for `rem` reads and `dst` for `rem` writes.
#[inline(always)]
unsafe fn tail<T: Element>(src: *const T, dst: *mut T, rem: usize, bits: u64, scale: f32) {
    for i in 0..rem {
        // SAFETY: i < rem.
        unsafe {
            let v = src.add(i).read();
            dst.add(i).write(drop_one(v, (bits >> i) & 1 == 1, scale));
        }
    }
}

/// Stamps out, inside one backend file, the `#[target_feature]` entry points of the driver and
/// the safe methods of that backend's token type which check the job and call them.
macro_rules! entry_points {
    ($token:ty, $isa:expr, $(#[$attr:meta])*) => {
        $(#[$attr])*
        /// # Safety
        /// The instruction set is available; pointers as for `kernels::generate`.
        #[allow(clippy::too_many_arguments)]
        unsafe fn generate_raw<T: $crate::element::Element>(
            seed: $crate::Seed,
            offset: u64,
            rate: $crate::reference::Rate,
            src: *const T,
            dst: *mut T,
            mask: *mut u64,
            n: usize,
        ) {
            // SAFETY: forwarded from the caller.
            unsafe { $crate::kernels::generate($isa, seed, offset, rate, src, dst, mask, n) }
        }

        $(#[$attr])*
        /// # Safety
        /// The instruction set is available; pointers as for `kernels::apply`.
        unsafe fn apply_raw<T: $crate::element::Element>(
            mask: *const u64,
            scale: f32,
            src: *const T,
            dst: *mut T,
            n: usize,
        ) {
            // SAFETY: forwarded from the caller.
            unsafe { $crate::kernels::apply($isa, mask, scale, src, dst, n) }
        }

        impl $token {
            /// Forward dropout (see `reference::generate`, which it matches bit for bit).
            pub(crate) fn generate<T: $crate::element::Element>(
                self,
                seed: $crate::Seed,
                offset: u64,
                rate: $crate::reference::Rate,
                data: $crate::kernels::Data<'_, T>,
                mask: Option<&mut [u64]>,
            ) {
                $crate::kernels::with_raw(data, mask.map(|m| (m.as_mut_ptr(), m.len())), |src, dst, mask, n| {
                    // SAFETY: the token exists only where the instruction set is available;
                    // `with_raw` checked the lengths behind every pointer.
                    unsafe { generate_raw(seed, offset, rate, src, dst, mask, n) }
                })
            }

            /// Applies mask words (see `reference::apply`, which it matches bit for bit).
            pub(crate) fn apply<T: $crate::element::Element>(
                self,
                mask: &[u64],
                scale: f32,
                data: $crate::kernels::Data<'_, T>,
            ) {
                let words = (mask.as_ptr().cast_mut(), mask.len());
                $crate::kernels::with_raw(data, Some(words), |src, dst, mask, n| {
                    if !dst.is_null() {
                        // SAFETY: as in `generate`; the mask is only read.
                        unsafe { apply_raw(mask.cast_const(), scale, src, dst, n) }
                    }
                })
            }
        }
    };
}
pub(crate) use entry_points;

/// Checks a job and hands its raw pointers to `run`: `(src, dst, mask, n)`.
///
/// Panics if `y` is shorter than `x` or the mask shorter than `ceil(n / 64)` words: the
/// public functions return an `Error` before that, so the check only keeps these safe
/// methods sound on their own.
pub(crate) fn with_raw<T>(
    mut data: Data<'_, T>,
    mask: Option<(*mut u64, usize)>,
    run: impl FnOnce(*const T, *mut T, *mut u64, usize),
) {
    let n = data.len();
    if let Data::Out { x, y } = &data {
        assert_eq!(x.len(), y.len(), "kernel job with mismatched slices");
    }
    let mask = match mask {
        Some((ptr, len)) => {
            assert!(len >= n.div_ceil(64), "kernel job with a short mask");
            ptr
        }
        None => core::ptr::null_mut(),
    };
    let (src, dst) = data.raw();
    run(src, dst, mask, n);
}
