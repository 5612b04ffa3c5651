//! The x86_64 AVX2 backend (with F16C for f16), chosen at run time.
//!
//! AVX2 has no 64-bit multiply and no rotate: the LCG step is one 32x32->64 multiply for the
//! low product and one 32-bit multiply for both cross products,
//! and the 32-bit rotate is a 64-bit variable shift of the word duplicated into both halves.
//! Each group of eight elements uses two registers of four lanes, one for the even elements
//! and one for the odd, so that one blend puts the eight words in element order.

use super::{Isa, lane_states};
use crate::pcg::Affine;
use core::arch::x86_64::*;
use half::{bf16, f16};

/// Proof that the CPU has AVX2 and F16C: only [`Avx2::new`] makes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Avx2(());

impl Avx2 {
    /// The backend, if this CPU has it (and CI's `--cfg simd_dropout_cap="portable"` does not
    /// switch it off).
    #[inline]
    pub(crate) fn new() -> Option<Self> {
        if cfg!(simd_dropout_cap = "portable") {
            return None;
        }
        #[cfg(all(target_feature = "avx2", target_feature = "f16c"))]
        return Some(Avx2(()));
        #[cfg(all(
            feature = "std",
            not(all(target_feature = "avx2", target_feature = "f16c"))
        ))]
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("f16c") {
            return Some(Avx2(()));
        }
        #[allow(unreachable_code)]
        None
    }
}

#[derive(Clone, Copy)]
struct Avx2Isa;

impl Avx2 {
    /// Runs `f` compiled with this instruction set, so that the safe element loops it
    /// inlines (alpha dropout, the fused block) are auto-vectorized with it.
    #[inline]
    pub(crate) fn run<R>(self, f: impl FnOnce() -> R) -> R {
        // SAFETY: the token exists only where the instruction set is available.
        unsafe { run_with_features(f) }
    }
}

/// # Safety
/// The instruction set must be available.
#[target_feature(enable = "avx2,f16c")]
unsafe fn run_with_features<R>(f: impl FnOnce() -> R) -> R {
    f()
}

pub(crate) struct Lanes {
    /// `v[2g]`: the words of elements 8g, 8g+2, 8g+4, 8g+6; `v[2g+1]`: 8g+1, 8g+3, ...
    v: [__m256i; 16],
    mul_lo: __m256i,
    mul_hi: __m256i,
    add: __m256i,
}

/// `s * mul + add` on four 64-bit lanes. `mul_hi` holds (mul_hi32, mul_lo32) per lane so
/// that one `vpmulld` forms both cross products.
#[inline(always)]
unsafe fn lcg_step(s: __m256i, mul_lo: __m256i, mul_hi: __m256i, add: __m256i) -> __m256i {
    // SAFETY: value-only intrinsics; AVX2 is enabled by the caller.
    unsafe {
        let lo = _mm256_mul_epu32(s, mul_lo);
        // dword 0: lo(s) * mul_hi32, dword 1: hi(s) * mul_lo32 (each mod 2^32).
        let t = _mm256_mullo_epi32(s, mul_hi);
        let hi_only = _mm256_set1_epi64x(-1i64 << 32);
        let cross = _mm256_add_epi64(_mm256_slli_epi64::<32>(t), _mm256_and_si256(t, hi_only));
        _mm256_add_epi64(_mm256_add_epi64(lo, cross), add)
    }
}

/// The XSH-RR outputs of four states, each in the low 32 bits of its 64-bit lane.
#[inline(always)]
unsafe fn outputs(s: __m256i) -> __m256i {
    // SAFETY: value-only intrinsics; AVX2 is enabled by the caller.
    unsafe {
        let xsh = _mm256_srli_epi64::<27>(_mm256_xor_si256(_mm256_srli_epi64::<18>(s), s));
        // Both halves of each lane = the 32-bit word, so a right shift rotates the low half.
        let doubled = _mm256_shuffle_epi32::<0b10_10_00_00>(xsh);
        _mm256_srlv_epi64(doubled, _mm256_srli_epi64::<59>(s))
    }
}

/// The words of elements 8g .. 8g + 8 in order, from register pair `g`.
///
/// # Safety
/// AVX2.
#[inline(always)]
unsafe fn words8(lanes: &Lanes, g: usize) -> __m256i {
    // SAFETY: value-only intrinsics; the caller enables AVX2.
    unsafe {
        let (even, odd) = (lanes.v[2 * g], lanes.v[2 * g + 1]);
        _mm256_blend_epi32::<0b1010_1010>(outputs(even), _mm256_slli_epi64::<32>(outputs(odd)))
    }
}

/// Steps the lanes of register pair `g` by 64 words. Stepping each pair right after its
/// words are taken keeps the live registers within AVX2's sixteen (stepping all at the end
/// spilled: 16% slower at 64Ki).
///
/// # Safety
/// AVX2.
#[inline(always)]
unsafe fn step(lanes: &mut Lanes, g: usize) {
    // SAFETY: value-only intrinsics; the caller enables AVX2.
    unsafe {
        for v in &mut lanes.v[2 * g..2 * g + 2] {
            *v = lcg_step(*v, lanes.mul_lo, lanes.mul_hi, lanes.add);
        }
    }
}

impl Isa for Avx2Isa {
    type Lanes = Lanes;

    #[inline(always)]
    unsafe fn lanes(self, first: u64, step: Affine) -> Lanes {
        let states = lane_states(first, step);
        let step64 = step.run(64);
        let pick = |g: usize, odd: usize| {
            let e = 8 * g + odd;
            [states[e], states[e + 2], states[e + 4], states[e + 6]]
        };
        // SAFETY: AVX2 is enabled by the caller; the loads read local arrays of 4 u64.
        unsafe {
            let load = |a: [u64; 4]| _mm256_loadu_si256(a.as_ptr().cast());
            Lanes {
                v: core::array::from_fn(|i| load(pick(i / 2, i % 2))),
                mul_lo: _mm256_set1_epi64x(step64.mul as u32 as i64),
                // (low dword, high dword) = (mul_hi32, mul_lo32).
                mul_hi: _mm256_set1_epi64x(step64.mul.rotate_right(32) as i64),
                add: _mm256_set1_epi64x(step64.add as i64),
            }
        }
    }

    #[inline(always)]
    unsafe fn next_word(self, lanes: &mut Lanes, threshold: u32) -> u64 {
        let mut bits = 0u64;
        // SAFETY: value-only intrinsics; AVX2 is enabled by the caller.
        unsafe {
            let t = _mm256_set1_epi32(threshold as i32);
            for g in 0..8 {
                let words = words8(lanes, g);
                // Unsigned r >= t  <=>  max(r, t) == r.
                let kept = _mm256_cmpeq_epi32(_mm256_max_epu32(words, t), words);
                bits |= u64::from(_mm256_movemask_ps(_mm256_castsi256_ps(kept)) as u8) << (8 * g);
                step(lanes, g);
            }
        }
        bits
    }

    #[inline(always)]
    unsafe fn next_raw(self, lanes: &mut Lanes, out: &mut [u32; 64]) {
        // SAFETY: value-only intrinsics and stores of 8 words inside `out`; AVX2 enabled.
        unsafe {
            for g in 0..8 {
                _mm256_storeu_si256(out.as_mut_ptr().add(8 * g).cast(), words8(lanes, g));
                step(lanes, g);
            }
        }
    }

    #[inline(always)]
    unsafe fn apply64_f32(self, src: *const f32, dst: *mut f32, word: u64, scale: f32) {
        // SAFETY: forwarded from the caller (AVX2; 64 elements).
        unsafe { apply64_f32::<false>(src, dst, word, scale) }
    }

    #[inline(always)]
    unsafe fn stream64_f32(self, src: *const f32, dst: *mut f32, word: u64, scale: f32) {
        // SAFETY: forwarded from the caller (AVX2; 64 elements, `dst` aligned).
        unsafe { apply64_f32::<true>(src, dst, word, scale) }
    }

    #[inline(always)]
    unsafe fn affine64_f32(self, src: *const f32, dst: *mut f32, word: u64, abc: (f32, f32, f32)) {
        // SAFETY: every access is 8 f32 inside the 64 the caller guarantees; AVX2 enabled.
        unsafe {
            let (a, b, c) = (
                _mm256_set1_ps(abc.0),
                _mm256_set1_ps(abc.1),
                _mm256_set1_ps(abc.2),
            );
            for g in 0..8 {
                let x = _mm256_loadu_ps(src.add(8 * g));
                let y = _mm256_add_ps(_mm256_mul_ps(x, a), b);
                let y = _mm256_blendv_ps(c, y, lane_mask(word >> (8 * g)));
                _mm256_storeu_ps(dst.add(8 * g), y);
            }
        }
    }

    #[inline(always)]
    unsafe fn residual64_f32(
        self,
        src: *const f32,
        (bias, r): (*const f32, *const f32),
        dst: *mut f32,
        word: u64,
        scale: f32,
    ) {
        // SAFETY: every access is 8 f32 inside the 64 the caller guarantees for each
        // pointer; AVX2 enabled.
        unsafe {
            let s = _mm256_set1_ps(scale);
            for g in 0..8 {
                let at = 8 * g;
                let r = _mm256_loadu_ps(r.add(at));
                let t = _mm256_add_ps(_mm256_loadu_ps(src.add(at)), _mm256_loadu_ps(bias.add(at)));
                let y = _mm256_add_ps(r, _mm256_mul_ps(t, s));
                _mm256_storeu_ps(dst.add(at), _mm256_blendv_ps(r, y, lane_mask(word >> at)));
            }
        }
    }

    const STREAMS: bool = true;

    #[inline(always)]
    unsafe fn fence(self) {
        // SAFETY: SSE, part of x86_64.
        unsafe { _mm_sfence() }
    }

    #[inline(always)]
    unsafe fn apply64_f16(self, src: *const f16, dst: *mut f16, word: u64, scale: f32) {
        // SAFETY: forwarded from the caller (AVX2 + F16C; 64 elements).
        unsafe { apply64_f16(src, dst, word, scale) }
    }

    #[inline(always)]
    unsafe fn apply64_bf16(self, src: *const bf16, dst: *mut bf16, word: u64, scale: f32) {
        // SAFETY: forwarded from the caller (AVX2; 64 elements).
        unsafe { apply64_bf16(src, dst, word, scale) }
    }

    #[inline(always)]
    unsafe fn apply64_f64(self, src: *const f64, dst: *mut f64, word: u64, scale: f64) {
        // SAFETY: every access is 4 f64 inside the 64 the caller guarantees; AVX2 enabled.
        unsafe {
            let s = _mm256_set1_pd(scale);
            let bit = _mm256_setr_epi64x(1, 2, 4, 8);
            for g in 0..16 {
                let b = _mm256_set1_epi64x(((word >> (4 * g)) & 0xf) as i64);
                let keep = _mm256_cmpeq_epi64(_mm256_and_si256(b, bit), bit);
                let x = _mm256_loadu_pd(src.add(4 * g));
                // An AND with the lane mask: a select, so NaN and infinities are dropped too.
                let y = _mm256_and_pd(_mm256_mul_pd(x, s), _mm256_castsi256_pd(keep));
                _mm256_storeu_pd(dst.add(4 * g), y);
            }
        }
    }
}

/// All-ones in 32-bit lane `i` where bit `i` of `byte` is set.
#[inline(always)]
unsafe fn lane_mask(byte: u64) -> __m256 {
    // SAFETY: value-only intrinsics; AVX2 is enabled by the caller.
    unsafe {
        let bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
        let b = _mm256_set1_epi32((byte & 0xff) as i32);
        _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(b, bit), bit))
    }
}

/// `keep ? x * scale : +0.0` on eight f32 (an AND with the lane mask: a select, so NaN and
/// infinities are dropped too).
#[inline(always)]
unsafe fn drop8(x: __m256, byte: u64, scale: __m256) -> __m256 {
    // SAFETY: value-only intrinsics; AVX2 is enabled by the caller.
    unsafe { _mm256_and_ps(_mm256_mul_ps(x, scale), lane_mask(byte)) }
}

/// With `STREAM`, streaming stores (`dst` 64-byte aligned; `sfence` before sharing).
///
/// # Safety
/// AVX2; 64 f32 readable at `src`, writable at `dst`.
#[inline(always)]
unsafe fn apply64_f32<const STREAM: bool>(src: *const f32, dst: *mut f32, word: u64, scale: f32) {
    // SAFETY: every access is 8 f32 inside the 64 the caller guarantees, a streamed one at a
    // multiple of 32 bytes from the aligned `dst`.
    unsafe {
        let s = _mm256_set1_ps(scale);
        for g in 0..8 {
            let x = _mm256_loadu_ps(src.add(8 * g));
            let y = drop8(x, word >> (8 * g), s);
            if STREAM {
                _mm256_stream_ps(dst.add(8 * g), y);
            } else {
                _mm256_storeu_ps(dst.add(8 * g), y);
            }
        }
    }
}

/// # Safety
/// AVX2 + F16C; 64 f16 readable at `src`, writable at `dst`.
#[inline(always)]
unsafe fn apply64_f16(src: *const f16, dst: *mut f16, word: u64, scale: f32) {
    // SAFETY: every access is 8 f16 (16 bytes) inside the 64 the caller guarantees.
    unsafe {
        let s = _mm256_set1_ps(scale);
        for g in 0..8 {
            let x = _mm256_cvtph_ps(_mm_loadu_si128(src.add(8 * g).cast()));
            let y = drop8(x, word >> (8 * g), s);
            let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(y);
            _mm_storeu_si128(dst.add(8 * g).cast(), h);
        }
    }
}

/// # Safety
/// AVX2; 64 bf16 readable at `src`, writable at `dst`.
#[inline(always)]
unsafe fn apply64_bf16(src: *const bf16, dst: *mut bf16, word: u64, scale: f32) {
    // SAFETY: every access is 8 bf16 (16 bytes) inside the 64 the caller guarantees.
    unsafe {
        let s = _mm256_set1_ps(scale);
        let one = _mm256_set1_epi32(1);
        let round = _mm256_set1_epi32(0x7fff);
        let abs = _mm256_set1_epi32(0x7fff_ffff);
        let inf = _mm256_set1_epi32(0x7f80_0000);
        let quiet = _mm256_set1_epi32(0x40);
        for g in 0..8 {
            let h = _mm256_cvtepu16_epi32(_mm_loadu_si128(src.add(8 * g).cast()));
            let x = _mm256_castsi256_ps(_mm256_slli_epi32::<16>(h));
            let y = _mm256_castps_si256(drop8(x, word >> (8 * g), s));
            // Round to nearest even; a NaN keeps its top bits and becomes quiet (half's rule).
            let lsb = _mm256_and_si256(_mm256_srli_epi32::<16>(y), one);
            let rounded =
                _mm256_srli_epi32::<16>(_mm256_add_epi32(_mm256_add_epi32(y, round), lsb));
            let nan = _mm256_cmpgt_epi32(_mm256_and_si256(y, abs), inf);
            let nan_bits = _mm256_or_si256(_mm256_srli_epi32::<16>(y), quiet);
            let r = _mm256_blendv_epi8(rounded, nan_bits, nan);
            // Narrow 8 x u32 to 8 x u16: pack within 128-bit halves, then gather the halves.
            let packed = _mm256_permute4x64_epi64::<0b00_00_10_00>(_mm256_packus_epi32(r, r));
            _mm_storeu_si128(dst.add(8 * g).cast(), _mm256_castsi256_si128(packed));
        }
    }
}

super::entry_points!(Avx2, Avx2Isa, #[target_feature(enable = "avx2,f16c")] #[inline(never)]);
