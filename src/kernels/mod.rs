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
pub(crate) mod variants;

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

    /// `apply64_f32` with streaming (non-temporal) stores, for an output too large to stay in
    /// cache: they skip reading each output line before writing it. The same values.
    ///
    /// Only called where [`Isa::STREAMS`]; this default stores plainly.
    ///
    /// # Safety
    /// As for `apply64_f32`, with `dst` 64-byte aligned; [`Isa::fence`] before the outputs
    /// are shared.
    unsafe fn stream64_f32(self, src: *const f32, dst: *mut f32, word: u64, scale: f32) {
        // SAFETY: the caller's.
        unsafe { self.apply64_f32(src, dst, word, scale) }
    }

    /// Alpha dropout's forward on 64 f32: `dst[i] = bit i of word ? src[i] * a + b : c`,
    /// rounded after the multiply and after the add (never an FMA).
    unsafe fn affine64_f32(self, src: *const f32, dst: *mut f32, word: u64, abc: (f32, f32, f32)) {
        let (a, b, c) = abc;
        for i in 0..64 {
            // SAFETY: i < 64, inside the caller's 64 elements.
            unsafe {
                let y = src.add(i).read() * a + b;
                dst.add(i).write(if (word >> i) & 1 == 1 { y } else { c });
            }
        }
    }

    /// The fused forward on 64 f32: `dst[i] = bit i of word ? r[i] + (src[i] + bias[i]) *
    /// scale : r[i]`, rounded after each operation, with `(bias, r)` each valid for 64
    /// reads.
    unsafe fn residual64_f32(
        self,
        src: *const f32,
        (bias, r): (*const f32, *const f32),
        dst: *mut f32,
        word: u64,
        scale: f32,
    ) {
        for i in 0..64 {
            // SAFETY: i < 64, inside the caller's 64 elements of each pointer.
            unsafe {
                let r = r.add(i).read();
                let y = r + (src.add(i).read() + bias.add(i).read()) * scale;
                dst.add(i).write(if (word >> i) & 1 == 1 { y } else { r });
            }
        }
    }

    /// Asks for the cache line at `p` (any address: nothing is read). This default does
    /// nothing.
    unsafe fn prefetch(self, _p: *const u8) {}

    /// Whether [`Isa::stream64_f32`] has streaming stores.
    const STREAMS: bool = false;

    /// Orders the streaming stores before everything after it (they are weakly ordered).
    unsafe fn fence(self) {}
}

/// Outputs of at least this many bytes that [`apply`] writes (the backward from a mask, the
/// broadcast variants' chunks) use [`Isa::stream64_f32`]: half the L3 of the machine it was
/// measured on (AMD EPYC Zen 4, 32 MiB), where the plain `y = x * s` loop runs faster with
/// streaming stores from 16 MiB (4Mi f32) on and no slower at 4 MiB. Below it, the output
/// stays in cache for whoever reads it next. [`generate`] streams only in its DRAM form.
pub(crate) const STREAM_BYTES: usize = 16 << 20;

/// A kernel call streams only this many elements or more (the chunk of the broadcast and
/// realigning paths): each streamed run starts and ends with plain stores and a fence, and
/// runs of 256 elements (rows of a channels-last broadcast) took 2.5x the time of plain
/// stores, while chunks of 4096 took 0.7x.
const STREAM_RUN: usize = 4096;

/// Whether a call's output of `n` elements is large enough to stream: decided once per call
/// from the whole output, so that its chunks and the pieces of a parallel call stream too.
pub(crate) fn large<T>(n: usize) -> bool {
    n.saturating_mul(size_of::<T>()) >= STREAM_BYTES
}

/// Where a kernel streams its output, the number of f32 by which `dst` is past a 64-byte
/// line and the f32 scale: a [`large`] call, plain f32 dropout, out of place (in place, each
/// line is read anyway), at least [`STREAM_RUN`] elements, an instruction set with streaming
/// stores.
fn streams<I: Isa, T: Element, M: Map<T>>(
    io: Elems<T>,
    map: &M,
    n: usize,
    large: bool,
) -> Option<(usize, f32)> {
    let (src, dst) = io?;
    let scale = map.stream_scale()?;
    let wanted = I::STREAMS && large && src != dst.cast_const() && n >= STREAM_RUN;
    wanted.then_some((dst as usize % 64 / size_of::<T>(), scale))
}

/// The elements of block `b` (`prev` is block `b - 1`'s word). With `stream = (k, scale)`,
/// block 0 is written plainly and every later block `b` as the 64 elements that end `k`
/// before its end, so that the streaming stores cover whole 64-byte lines whatever the
/// slice's alignment; [`finish`] writes the last `k` elements of the last block.
///
/// # Safety
/// As for [`apply`], with `b < n / 64`.
#[inline(always)]
unsafe fn block<I: Isa, T: Element, M: Map<T>>(
    isa: I,
    (src, dst): (*const T, *mut T),
    b: usize,
    (prev, word): (u64, u64),
    map: &M,
    stream: Option<(usize, f32)>,
) {
    // SAFETY: block b is inside the caller's buffers; a streamed block b > 0 reaches back
    // k < 16 elements into block b - 1, and `dst - k` is on a line (`streams`), which also
    // chose f32 (`KIND`) for `stream`.
    unsafe {
        let at = (src.add(64 * b), dst.add(64 * b));
        match stream {
            Some((k, scale)) if b > 0 => {
                // Element e of this block (from e = -64) has bit 64 + e of `word:prev`.
                let bits = ((u128::from(word) << 64 | u128::from(prev)) >> (64 - k)) as u64;
                let at = (at.0.sub(k).cast(), at.1.sub(k).cast());
                isa.stream64_f32(at.0, at.1, bits, scale)
            }
            _ => map.block(isa, at.0, at.1, 64 * b, word),
        }
    }
}

/// After the last of `full > 0` blocks of a streamed output: its last `k` elements (kept by
/// `last`'s top bits), then the fence.
///
/// # Safety
/// As for [`block`].
#[inline(always)]
unsafe fn finish<I: Isa, T: Element, M: Map<T>>(
    isa: I,
    io: (*const T, *mut T),
    full: usize,
    last: u64,
    map: &M,
    k: usize,
) {
    let bits = last.wrapping_shr((64 - k) as u32);
    // SAFETY: elements 64 * full - k .. 64 * full are inside the caller's buffers.
    unsafe {
        tail(io, 64 * full - k, k, bits, map);
        isa.fence();
    }
}

/// What a kernel makes of each element from its input and keep bit: plain dropout
/// ([`Scale`]) or a variant's map (`variants`). The driver hands it whole mask words.
pub(crate) trait Map<T: Element>: Sync + Sized {
    /// Element `i` of the job, in scalar code: the reference's arithmetic, and the tails'.
    fn one(&self, x: T, kept: bool, i: usize) -> T;

    /// Whether the map has what a job of `n` elements reads besides `x` (a residual).
    fn fits(&self, n: usize) -> bool;

    /// The map of the job's elements from `first` on (a piece of the job).
    fn from(&self, first: usize) -> Self;

    /// Elements `i .. i + 64` (at `src`/`dst`) with the keep bits of `word`.
    ///
    /// # Safety
    /// The instruction set of `isa` is available; `src` valid for 64 reads and `dst` for 64
    /// writes, equal or not overlapping; `i + 64` elements [`Map::fits`] the map.
    unsafe fn block<I: Isa>(&self, isa: I, src: *const T, dst: *mut T, i: usize, word: u64);

    /// Plain dropout's f32 scale, for blocks written by [`Isa::stream64_f32`]; `None` for a
    /// map that never streams.
    fn stream_scale(&self) -> Option<f32> {
        None
    }
}

/// Plain dropout: kept `round(x * scale)`, dropped `+0.0`.
#[derive(Clone, Copy)]
pub(crate) struct Scale<T: Element> {
    scale: f64,
    acc: T::Acc,
}

impl<T: Element> Scale<T> {
    /// Multiplies kept elements by `rate.scale`.
    #[inline(always)]
    pub(crate) fn new(rate: &Rate) -> Self {
        Scale {
            scale: rate.scale,
            acc: scale_of::<T>(rate),
        }
    }
}

impl<T: Element> Map<T> for Scale<T> {
    #[inline(always)]
    fn one(&self, x: T, kept: bool, _: usize) -> T {
        drop_one(x, kept, self.acc)
    }

    fn fits(&self, _: usize) -> bool {
        true
    }

    #[inline(always)]
    fn from(&self, _: usize) -> Self {
        *self
    }

    #[inline(always)]
    unsafe fn block<I: Isa>(&self, isa: I, src: *const T, dst: *mut T, _: usize, word: u64) {
        // SAFETY: the caller's.
        unsafe { apply64(isa, src, dst, word, self.scale) }
    }

    #[inline(always)]
    fn stream_scale(&self) -> Option<f32> {
        (T::KIND == Kind::F32).then_some(self.scale as f32)
    }
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

/// Forward dropout over `n` elements: mask words to `mask`, outputs of `map` to `io`, where
/// given. The bits of the last mask word past `n` keep their value.
///
/// # Safety
/// The instruction set of `isa` must be available. With `io`, the source is valid for `n`
/// reads and the destination for `n` writes; they are equal or do not overlap. `mask` is
/// valid for `ceil(n / 64)` reads and writes; `n` [`Map::fits`] `map`.
///
/// `dram`: the call is [`large`] and its CPU wants this loop's DRAM form: f32 out of place
/// with streaming stores as in [`apply`], every other job with the source prefetched
/// [`PREFETCH_BYTES`] ahead. The caller decides it per CPU. On an Intel Xeon with AVX-512
/// (64Mi, one thread) streaming made f32 out of place 1.4x faster (prefetching on top of it
/// made it slower), and prefetching made f32 in place 1.7x faster, f64 and bf16 in place
/// 1.6x and out of place 1.07-1.25x; streaming stores made this loop 10-15% slower on AMD
/// Zen 4 and with AVX2.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn generate<I: Isa, T: Element, M: Map<T>>(
    isa: I,
    seed: Seed,
    offset: u64,
    rate: Rate,
    map: &M,
    io: Elems<T>,
    mask: Option<*mut u64>,
    n: usize,
    dram: bool,
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
                map.block(isa, src.add(64 * b), dst.add(64 * b), 64 * b, word);
            }
        }
    };
    match constant {
        Some(word) => (0..full).for_each(|b| emit(b, word)),
        None if full > 0 => {
            // SAFETY: the caller guarantees the instruction set.
            let mut lanes = unsafe { isa.lanes(seed.state_at(offset), seed.step()) };
            // SAFETY: as above.
            let mut next = || unsafe { isa.next_word(&mut lanes, rate.threshold as u32) };
            // Each form is a loop of its own: the plain loop's code stays as it was.
            match (io, streams::<I, T, M>(io, map, n, dram)) {
                (Some(io), Some(stream)) => {
                    let mut prev = 0;
                    for b in 0..full {
                        let word = next();
                        // SAFETY: as above; `streams` asked for at least `STREAM_RUN`
                        // elements, so `full > 0` for `finish`.
                        unsafe {
                            if let Some(m) = mask {
                                m.add(b).write(word);
                            }
                            block(isa, io, b, (prev, word), map, Some(stream));
                        }
                        prev = word;
                    }
                    // SAFETY: as above.
                    unsafe { finish(isa, io, full, prev, map, stream.0) };
                }
                (Some(io), None) if dram => {
                    for b in 0..full {
                        // SAFETY: a prefetch reads nothing.
                        unsafe { prefetch_ahead(isa, io.0, b) };
                        emit(b, next());
                    }
                }
                _ => (0..full).for_each(|b| emit(b, next())),
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
            if let Some(io) = io {
                tail(io, start, rem, bits, map);
            }
        }
    }
}

/// How far ahead of the block being computed the drawing loop's DRAM form asks for the
/// source: 2 KiB (8 blocks of f32) measured best on the Intel Xeon it was tuned on (in place,
/// 64Mi f32: 1 KiB 0.30, 1.5-2 KiB 0.28-0.29, 2.5-3 KiB 0.30-0.31, 4 KiB and more 0.38 ns
/// per element; none 0.52).
const PREFETCH_BYTES: usize = 2048;

/// Asks for the source lines of the block [`PREFETCH_BYTES`] after block `b`: computing the
/// random words keeps too few loads in flight for the hardware prefetcher alone.
///
/// # Safety
/// The instruction set of `isa` is available (the address may lie past the source: a
/// prefetch never faults).
#[inline(always)]
unsafe fn prefetch_ahead<I: Isa, T>(isa: I, src: *const T, b: usize) {
    let at = src
        .wrapping_add(64 * b)
        .cast::<u8>()
        .wrapping_add(PREFETCH_BYTES);
    for line in (0..64 * size_of::<T>()).step_by(64) {
        // SAFETY: the caller's.
        unsafe { isa.prefetch(at.wrapping_add(line)) };
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
pub(crate) unsafe fn apply<I: Isa, T: Element, M: Map<T>>(
    isa: I,
    mask: *const u64,
    map: &M,
    (src, dst): (*const T, *mut T),
    n: usize,
    large: bool,
) {
    let full = n / 64;
    let stream = streams::<I, T, M>(Some((src, dst)), map, n, large);
    // SAFETY: every word and element index below is inside the caller's buffers.
    unsafe {
        let mut prev = 0;
        for b in 0..full {
            let word = mask.add(b).read();
            block(isa, (src, dst), b, (prev, word), map, stream);
            prev = word;
        }
        if let Some((k, _)) = stream {
            finish(isa, (src, dst), full, prev, map, k);
        }
        let rem = n % 64;
        if rem > 0 {
            let bits = mask.add(full).read();
            tail((src, dst), 64 * full, rem, bits, map);
        }
    }
}

/// Elements `start .. start + count` (`count <= 64`, keep bits from bit 0 of `bits`), in
/// scalar code.
///
/// # Safety
/// The elements are readable at `src` and writable at `dst`, and [`Map::fits`] `map`.
#[inline(always)]
unsafe fn tail<T: Element, M: Map<T>>(
    (src, dst): (*const T, *mut T),
    start: usize,
    count: usize,
    bits: u64,
    map: &M,
) {
    for (k, i) in (start..start + count).enumerate() {
        // SAFETY: i is one of the caller's elements.
        unsafe {
            let v = src.add(i).read();
            dst.add(i).write(map.one(v, (bits >> k) & 1 == 1, i));
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
        unsafe fn generate_raw<T: $crate::element::Element, M: $crate::kernels::Map<T>>(
            seed: $crate::Seed,
            offset: u64,
            rate: $crate::job::Rate,
            map: &M,
            io: Option<(*const T, *mut T)>,
            mask: Option<*mut u64>,
            n: usize,
            dram: bool,
        ) {
            // SAFETY: forwarded from the caller.
            unsafe {
                $crate::kernels::generate($isa, seed, offset, rate, map, io, mask, n, dram)
            }
        }

        $(#[$attr])*
        /// # Safety
        /// The instruction set is available; pointers as for `kernels::apply`.
        unsafe fn apply_raw<T: $crate::element::Element, M: $crate::kernels::Map<T>>(
            mask: *const u64,
            map: &M,
            io: (*const T, *mut T),
            n: usize,
            large: bool,
        ) {
            // SAFETY: forwarded from the caller.
            unsafe { $crate::kernels::apply($isa, mask, map, io, n, large) }
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

            /// Forward dropout with `map`'s elements (see `reference::generate`, which it
            /// matches bit for bit). `dram`: the DRAM form (`kernels::generate`).
            #[allow(clippy::too_many_arguments)]
            pub(crate) fn generate<T, M>(
                self,
                seed: $crate::Seed,
                offset: u64,
                rate: $crate::job::Rate,
                map: &M,
                data: $crate::job::Data<'_, T>,
                mask: Option<&mut [u64]>,
                dram: bool,
            ) where
                T: $crate::element::Element,
                M: $crate::kernels::Map<T>,
            {
                let (io, mask, n) = $crate::kernels::raw(data, mask);
                assert!(map.fits(n), "kernel job with a short residual");
                // SAFETY: the token exists only where the instruction set is available;
                // `raw` and `fits` checked the lengths behind every pointer.
                unsafe { generate_raw(seed, offset, rate, map, io, mask, n, dram) }
            }

            /// `map`'s elements with keep bits from mask words (see `reference::apply`, which
            /// it matches bit for bit). `large`: the whole call's output is `kernels::large`
            /// (this job may be a part of it).
            pub(crate) fn apply<T, M>(
                self,
                mask: &[u64],
                map: &M,
                data: $crate::job::Data<'_, T>,
                large: bool,
            ) where
                T: $crate::element::Element,
                M: $crate::kernels::Map<T>,
            {
                let n = data.len();
                assert!(mask.len() >= n.div_ceil(64), "kernel job with a short mask");
                assert!(map.fits(n), "kernel job with a short residual");
                if let (Some(io), _, _) = $crate::kernels::raw(data, None) {
                    // SAFETY: as in `generate`; the mask is only read.
                    unsafe { apply_raw(mask.as_ptr(), map, io, n, large) }
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

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::{Scale, as_uninit};
    use crate::job::{Data, Rate};
    use crate::{Seed, reference};

    /// The drawing loop's DRAM form asked for (`dram`), on whichever vendor runs the test:
    /// every output bit and mask word as the reference's, nothing written outside `y`, at
    /// three offsets of `y` from a 64-byte line, out of place with and without a mask
    /// (streaming stores) and in place (prefetches only).
    #[test]
    #[cfg_attr(
        any(miri, debug_assertions),
        ignore = "16 MiB per case: run in release"
    )]
    fn dram_drawing_matches_reference() {
        let n = (16 << 20) / 4 + 77;
        let x: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 * 0.37 - 150.0).collect();
        let (seed, rate) = (Seed::new(3, 4), Rate::new(0.3).unwrap());
        let map = Scale::new(&rate);
        let mut want = vec![0.0f32; n];
        let mut want_mask = vec![0u64; n.div_ceil(64)];
        let data = Data::Out {
            x: &x,
            y: as_uninit(&mut want),
        };
        reference::generate(seed, 9, rate, &map, data, Some(&mut want_mask));
        let mut buf = vec![-7.0f32; n + 32];
        type Run<'a> = Box<dyn Fn(Data<'_, f32>, Option<&mut [u64]>) + 'a>;
        let mut runs: Vec<(&str, Run<'_>)> = Vec::new();
        if let Some(k) = super::avx512::Avx512::new() {
            runs.push((
                "avx512",
                Box::new(move |d, m| k.generate(seed, 9, rate, &map, d, m, true)),
            ));
        }
        if let Some(k) = super::avx2::Avx2::new() {
            runs.push((
                "avx2",
                Box::new(move |d, m| k.generate(seed, 9, rate, &map, d, m, true)),
            ));
        }
        for (name, run) in runs {
            for k in [0, 4, 15] {
                let skip = (64 - buf.as_ptr() as usize % 64) % 64 / 4 + k;
                for (with_mask, in_place) in [(true, false), (false, false), (true, true)] {
                    buf.fill(-7.0);
                    let mut mask = vec![0u64; n.div_ceil(64)];
                    let (head, rest) = buf.split_at_mut(skip);
                    let (y, after) = rest.split_at_mut(n);
                    let data = if in_place {
                        y.copy_from_slice(&x);
                        Data::InPlace(&mut *y)
                    } else {
                        Data::Out {
                            x: &x,
                            y: as_uninit(y),
                        }
                    };
                    run(data, with_mask.then_some(&mut mask[..]));
                    let what = format!("{name} offset {k} mask {with_mask} in place {in_place}");
                    assert!(
                        head.iter().chain(after.iter()).all(|&v| v == -7.0),
                        "{what}"
                    );
                    let same = y.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "{what}: outputs");
                    assert!(!with_mask || mask == want_mask, "{what}: mask");
                }
            }
        }
    }
}
