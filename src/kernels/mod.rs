//! The vectorized kernels: one file per instruction set, and the algorithm written once over
//! the small [`Isa`] trait that each of them implements.
//!
//! Every kernel processes whole mask words: 64 elements, decided by 64 interleaved PCG32
//! lanes (lane `j` yields the words of elements `j, j + 64, j + 128, ...`). A partial last word
//! continues the same stream position in scalar code, so no word beyond the slice is drawn.

use crate::element::{Element, Kind};
use crate::job::{Data, Rate};
use crate::pcg::{Affine, Seed, Words};
use crate::reference::{drop_one, keep_bits, scale_of, store_word};
use core::mem::MaybeUninit;
use half::{bf16, f16};

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;
pub(crate) mod portable;

/// One instruction set's primitives. Implementations are zero-sized; every method is
/// `#[inline(always)]` so that it compiles inside the caller's `#[target_feature]` function.
///
/// The `apply64_*` methods compute `dst[i] = bit i of word ? round(src[i] * scale) : +0.0`
/// for 64 elements of one type.
///
/// # Safety (every method)
/// The instruction set must be available. For `apply64_*`: `src` valid for 64 reads and `dst`
/// for 64 writes; they are equal or do not overlap.
pub(crate) trait Isa: Copy {
    /// The state of 64 interleaved LCG lanes.
    type Lanes;

    /// Lanes for 64 consecutive words, the first of which `first` outputs.
    unsafe fn lanes(self, first: u64, step: Affine) -> Self::Lanes;

    /// The keep bits of the next 64 words (`r >= threshold`), then steps every lane by 64.
    unsafe fn next_word(self, lanes: &mut Self::Lanes, threshold: u32) -> u64;

    /// The next 64 words themselves, in element order, then steps every lane by 64.
    unsafe fn next_raw(self, lanes: &mut Self::Lanes, out: &mut [u32; 64]);

    unsafe fn apply64_f32(self, src: *const f32, dst: *mut f32, word: u64, scale: f32);
    unsafe fn apply64_f16(self, src: *const f16, dst: *mut f16, word: u64, scale: f32);
    unsafe fn apply64_bf16(self, src: *const bf16, dst: *mut bf16, word: u64, scale: f32);
    unsafe fn apply64_f64(self, src: *const f64, dst: *mut f64, word: u64, scale: f64);
}

/// The one place where an element type picks its instruction-set method.
///
/// # Safety
/// As for the `Isa` methods.
#[inline(always)]
unsafe fn apply64<I: Isa, T: Element>(isa: I, src: *const T, dst: *mut T, word: u64, scale: f64) {
    // SAFETY: `KIND` names `T`, so each cast keeps the pointee type; the rest is the caller's.
    unsafe {
        match T::KIND {
            Kind::F32 => isa.apply64_f32(src.cast(), dst.cast(), word, scale as f32),
            Kind::F16 => isa.apply64_f16(src.cast(), dst.cast(), word, scale as f32),
            Kind::Bf16 => isa.apply64_bf16(src.cast(), dst.cast(), word, scale as f32),
            Kind::F64 => isa.apply64_f64(src.cast(), dst.cast(), word, scale),
        }
    }
}

/// The 64 scalar states that start the lanes: `states[j]` outputs word `j` (`step` is a
/// stream's one-word step). Independent mul-adds from constant tables, not a chain of steps.
#[inline(always)]
pub(crate) fn lane_states(first: u64, step: Affine) -> [u64; 64] {
    core::array::from_fn(|j| step.run(j).apply(first))
}

/// An output slice seen as possibly uninitialized memory, so that one kernel serves `&mut [T]`
/// and `&mut [MaybeUninit<T>]` outputs.
pub(crate) fn as_uninit<T>(y: &mut [T]) -> &mut [MaybeUninit<T>] {
    // SAFETY: `MaybeUninit<T>` has the layout of `T`. The crate only ever writes initialized
    // values through the result (`MaybeUninit::new`, `write`, or kernel stores of `T`), so `y`
    // stays initialized for its owner.
    unsafe { &mut *(core::ptr::from_mut(y) as *mut [MaybeUninit<T>]) }
}

/// Source and destination of a job's elements (equal in place), or `None` without elements.
type Elems<T> = Option<(*const T, *mut T)>;

/// Forward dropout over `n` elements: mask words to `mask`, outputs to `io`, where given. The
/// bits of the last mask word past `n` keep their value.
///
/// # Safety
/// The instruction set of `isa` must be available. With `io`, the source is valid for `n`
/// reads and the destination for `n` writes; they are equal or do not overlap. `mask` is
/// valid for `ceil(n / 64)` reads and writes.
#[inline(always)]
pub(crate) unsafe fn generate<I: Isa, T: Element>(
    isa: I,
    seed: Seed,
    offset: u64,
    rate: Rate,
    io: Elems<T>,
    mask: Option<*mut u64>,
    n: usize,
) {
    let full = n / 64;
    // p = 0 and p = 1 decide every element without drawing a word.
    let constant = match rate.threshold {
        0 => Some(!0u64),
        _ if rate.drops_all() => Some(0),
        _ => None,
    };
    let emit = |b: usize, word: u64| {
        // SAFETY: b < full, so the word and its 64 elements are inside the caller's buffers.
        unsafe {
            if let Some(m) = mask {
                m.add(b).write(word);
            }
            if let Some((src, dst)) = io {
                apply64(isa, src.add(64 * b), dst.add(64 * b), word, rate.scale);
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
        // SAFETY: word `full` and elements start..n are inside the caller's buffers.
        unsafe {
            if let Some(m) = mask {
                let mut word = m.add(full).read();
                store_word(&mut word, bits, rem);
                m.add(full).write(word);
            }
            if let Some((src, dst)) = io {
                tail(
                    src.add(start),
                    dst.add(start),
                    rem,
                    bits,
                    scale_of::<T>(&rate),
                );
            }
        }
    }
}

/// Consecutive raw words of one stream, 64 at a time (the variants that use the words
/// themselves: Gaussian noise).
pub(crate) trait WordSource {
    /// The next 64 words.
    fn next64(&mut self, out: &mut [u32; 64]);
}

/// Work that consumes a [`WordSource`]. A backend runs it inside its `#[target_feature]`
/// entry point, so that the job's safe loops are compiled for that instruction set.
pub(crate) trait WordJob {
    /// Does the work on the words from the stream position the job was started at.
    fn run(self, words: &mut impl WordSource);
}

/// The scalar reference's words: one after the other.
impl WordSource for Words {
    #[inline(always)]
    fn next64(&mut self, out: &mut [u32; 64]) {
        for w in out.iter_mut() {
            *w = self.next().unwrap_or(0);
        }
    }
}

/// An instruction set's lanes as a word source. It exists only inside an entry point of
/// that instruction set (see [`run_words`]).
struct IsaWords<I: Isa> {
    isa: I,
    lanes: I::Lanes,
}

impl<I: Isa> WordSource for IsaWords<I> {
    #[inline(always)]
    fn next64(&mut self, out: &mut [u32; 64]) {
        // SAFETY: `run_words`, the only constructor, requires the instruction set.
        unsafe { self.isa.next_raw(&mut self.lanes, out) }
    }
}

/// Runs `job` on the words from position `offset` of `seed`'s stream.
///
/// # Safety
/// The instruction set of `isa` must be available.
#[inline(always)]
pub(crate) unsafe fn run_words<I: Isa, J: WordJob>(isa: I, seed: Seed, offset: u64, job: J) {
    // SAFETY: forwarded from the caller.
    let lanes = unsafe { isa.lanes(seed.state_at(offset), seed.step()) };
    job.run(&mut IsaWords { isa, lanes });
}

/// Applies the mask words at `mask` to `n` elements.
///
/// # Safety
/// As for [`generate`], with `mask` valid for `ceil(n / 64)` reads.
#[inline(always)]
pub(crate) unsafe fn apply<I: Isa, T: Element>(
    isa: I,
    mask: *const u64,
    rate: Rate,
    (src, dst): (*const T, *mut T),
    n: usize,
) {
    let full = n / 64;
    // SAFETY: every word and element index below is inside the caller's buffers.
    unsafe {
        for b in 0..full {
            let word = mask.add(b).read();
            apply64(isa, src.add(64 * b), dst.add(64 * b), word, rate.scale);
        }
        let rem = n % 64;
        if rem > 0 {
            let start = 64 * full;
            let bits = mask.add(full).read();
            let scale = scale_of::<T>(&rate);
            tail(src.add(start), dst.add(start), rem, bits, scale);
        }
    }
}

/// The last `rem < 64` elements, in scalar code.
///
/// # Safety
/// `src` valid for `rem` reads and `dst` for `rem` writes.
#[inline(always)]
unsafe fn tail<T: Element>(src: *const T, dst: *mut T, rem: usize, bits: u64, scale: T::Acc) {
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
        unsafe fn generate_raw<T: $crate::element::Element>(
            seed: $crate::Seed,
            offset: u64,
            rate: $crate::job::Rate,
            io: Option<(*const T, *mut T)>,
            mask: Option<*mut u64>,
            n: usize,
        ) {
            // SAFETY: forwarded from the caller.
            unsafe { $crate::kernels::generate($isa, seed, offset, rate, io, mask, n) }
        }

        $(#[$attr])*
        /// # Safety
        /// The instruction set is available; pointers as for `kernels::apply`.
        unsafe fn apply_raw<T: $crate::element::Element>(
            mask: *const u64,
            rate: $crate::job::Rate,
            io: (*const T, *mut T),
            n: usize,
        ) {
            // SAFETY: forwarded from the caller.
            unsafe { $crate::kernels::apply($isa, mask, rate, io, n) }
        }

        $(#[$attr])*
        /// # Safety
        /// The instruction set is available.
        unsafe fn run_words_raw<J: $crate::kernels::WordJob>(
            seed: $crate::Seed,
            offset: u64,
            job: J,
        ) {
            // SAFETY: forwarded from the caller.
            unsafe { $crate::kernels::run_words($isa, seed, offset, job) }
        }

        impl $token {
            /// Runs `job` on this instruction set's raw words from `offset` on.
            pub(crate) fn run_words<J: $crate::kernels::WordJob>(
                self,
                seed: $crate::Seed,
                offset: u64,
                job: J,
            ) {
                // SAFETY: the token exists only where the instruction set is available.
                unsafe { run_words_raw(seed, offset, job) }
            }

            /// Forward dropout (see `reference::generate`, which it matches bit for bit).
            pub(crate) fn generate<T: $crate::element::Element>(
                self,
                seed: $crate::Seed,
                offset: u64,
                rate: $crate::job::Rate,
                data: $crate::job::Data<'_, T>,
                mask: Option<&mut [u64]>,
            ) {
                let (io, mask, n) = $crate::kernels::raw(data, mask);
                // SAFETY: the token exists only where the instruction set is available;
                // `raw` checked the lengths behind every pointer.
                unsafe { generate_raw(seed, offset, rate, io, mask, n) }
            }

            /// Applies mask words (see `reference::apply`, which it matches bit for bit).
            pub(crate) fn apply<T: $crate::element::Element>(
                self,
                mask: &[u64],
                rate: $crate::job::Rate,
                data: $crate::job::Data<'_, T>,
            ) {
                let n = data.len();
                assert!(mask.len() >= n.div_ceil(64), "kernel job with a short mask");
                if let (Some(io), _, _) = $crate::kernels::raw(data, None) {
                    // SAFETY: as in `generate`; the mask is only read.
                    unsafe { apply_raw(mask.as_ptr(), rate, io, n) }
                }
            }
        }
    };
}
pub(crate) use entry_points;

/// The raw pointers of a checked job: `(elements, mask, n)`.
///
/// Panics if the mask is shorter than `ceil(n / 64)` words: the public functions return an
/// `Error` before that, so the check only keeps the token methods sound on their own.
pub(crate) fn raw<T>(
    data: Data<'_, T>,
    mask: Option<&mut [u64]>,
) -> (Elems<T>, Option<*mut u64>, usize)
where
    T: Copy,
{
    let n = data.len();
    let mask = mask.map(|m| {
        assert!(m.len() >= n.div_ceil(64), "kernel job with a short mask");
        m.as_mut_ptr()
    });
    let io = match data {
        // `Data::Out` holds slices of equal length by construction (`Io::data`).
        Data::Out { x, y } => {
            assert_eq!(x.len(), y.len(), "kernel job with mismatched slices");
            Some((x.as_ptr(), y.as_mut_ptr().cast::<T>()))
        }
        Data::InPlace(xy) => {
            let p = xy.as_mut_ptr();
            Some((p.cast_const(), p))
        }
        Data::MaskOnly(_) => None,
    };
    (io, mask, n)
}
