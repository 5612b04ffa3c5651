//! The x86_64 AVX-512 backend (F + DQ + BW, with AVX2 + F16C), chosen at run time.
//!
//! `vpmullq` steps eight 64-bit LCG lanes in one instruction and `vprorvd` rotates sixteen
//! words, so a mask word of 64 elements takes about 64 vector operations. The 64 lanes are
//! eight registers: pair `g` (registers 2g and 2g+1) holds the words of elements
//! 16g + 2j and 16g + 2j + 1, so that one blend puts 16 words in element order. `vpmullq`
//! has a latency of about 15 cycles: 64 independent lanes keep both vector ports busy.
//!
//! f16 uses the 512-bit forms of the F16C conversions (AVX-512F). bf16 rounds in integer
//! code (the AVX-512 BF16 conversion flushes subnormals), 32 elements at a time through
//! 16-bit unpacks and a pack (AVX-512BW), with the keep bits applied to the packed result.

use super::Isa;
use crate::pcg::Affine;
use core::arch::x86_64::*;
use half::{bf16, f16};

/// Proof that the CPU has AVX-512 F, DQ and BW (and so AVX2 and F16C): only [`Avx512::new`]
/// makes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Avx512(());

impl Avx512 {
    /// The backend, if this CPU has it (and CI's `--cfg simd_dropout_cap` does not switch it
    /// off).
    #[inline]
    pub(crate) fn new() -> Option<Self> {
        if cfg!(any(
            simd_dropout_cap = "avx2",
            simd_dropout_cap = "portable"
        )) {
            return None;
        }
        #[cfg(all(
            target_feature = "avx512f",
            target_feature = "avx512dq",
            target_feature = "avx512bw",
            target_feature = "f16c"
        ))]
        return Some(Avx512(()));
        #[cfg(all(
            feature = "std",
            not(all(
                target_feature = "avx512f",
                target_feature = "avx512dq",
                target_feature = "avx512bw",
                target_feature = "f16c"
            ))
        ))]
        if std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512dq")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("f16c")
        {
            return Some(Avx512(()));
        }
        #[allow(unreachable_code)]
        None
    }
}

impl Avx512 {
    /// Whether a large call's drawing loop takes its DRAM form (`kernels::generate`:
    /// streaming stores for f32 out of place, else the source prefetched): on Intel, where
    /// it ran 1.4-1.7x faster for f32 (a Xeon with AVX-512 FP16 and AMX, 64Mi), and not on
    /// AMD, where streaming stores made it 10-15% slower (EPYC Zen 4; the prefetch is
    /// untested there). Read from the CPU's vendor once.
    #[inline]
    pub(crate) fn drawing_in_dram(self) -> bool {
        use core::sync::atomic::{AtomicU8, Ordering};
        // 0: not read yet, 1: no, 2: yes.
        static INTEL: AtomicU8 = AtomicU8::new(0);
        match INTEL.load(Ordering::Relaxed) {
            0 => {
                // SAFETY: CPUID leaf 0 exists on every x86_64 CPU (newer Rust declares the
                // intrinsic safe, hence the `allow`).
                #[allow(unused_unsafe)]
                let id = unsafe { __cpuid(0) };
                // "GenuineIntel" in EBX, EDX, ECX.
                let intel = (id.ebx, id.edx, id.ecx) == (0x756e_6547, 0x4965_6e69, 0x6c65_746e);
                INTEL.store(1 + u8::from(intel), Ordering::Relaxed);
                intel
            }
            v => v == 2,
        }
    }
}

#[derive(Clone, Copy)]
struct Avx512Isa;

impl Avx512 {
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
#[target_feature(enable = "avx512f,avx512dq,avx512bw,avx2,f16c")]
unsafe fn run_with_features<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// `steps(k)` (see `pcg`: the multiplier and increment sum of `k` steps) for the word
/// number `k` of each lane of each register, in the register layout of [`Lanes`].
const LANE_RUNS: [([u64; 8], [u64; 8]); 8] = {
    let mut t = [([0u64; 8], [0u64; 8]); 8];
    let mut i = 0;
    while i < 8 {
        let mut j = 0;
        while j < 8 {
            let (mul, sum) = crate::pcg::RUNS[16 * (i / 2) + 2 * j + i % 2];
            (t[i].0[j], t[i].1[j]) = (mul, sum);
            j += 1;
        }
        i += 1;
    }
    t
};

pub(crate) struct Lanes {
    /// `v[2g]`: elements 16g, 16g+2, ..., 16g+14; `v[2g+1]`: 16g+1, 16g+3, ..., 16g+15.
    v: [__m512i; 8],
    mul: __m512i,
    add: __m512i,
}

impl Isa for Avx512Isa {
    type Lanes = Lanes;

    #[inline(always)]
    unsafe fn lanes(self, first: u64, step: Affine) -> Lanes {
        let step64 = step.run(64);
        // SAFETY: AVX-512 F + DQ are enabled by the caller; the loads read constant arrays of
        // 8 u64.
        unsafe {
            // Register i's lanes: `first * M^k + inc * C_k` for their word numbers k, eight
            // independent mul-adds per register (no chain of 64 steps, no shuffles).
            let (f, inc) = (
                _mm512_set1_epi64(first as i64),
                _mm512_set1_epi64(step.add as i64),
            );
            let load = |i: usize| {
                let m = _mm512_loadu_si512(LANE_RUNS[i].0.as_ptr().cast());
                let c = _mm512_loadu_si512(LANE_RUNS[i].1.as_ptr().cast());
                _mm512_add_epi64(_mm512_mullo_epi64(f, m), _mm512_mullo_epi64(inc, c))
            };
            Lanes {
                v: core::array::from_fn(load),
                mul: _mm512_set1_epi64(step64.mul as i64),
                add: _mm512_set1_epi64(step64.add as i64),
            }
        }
    }

    #[inline(always)]
    unsafe fn next_word(self, lanes: &mut Lanes, threshold: u32) -> u64 {
        let mut bits = 0u64;
        // SAFETY: value-only intrinsics; AVX-512 F + DQ are enabled by the caller.
        unsafe {
            let t = _mm512_set1_epi32(threshold as i32);
            for g in 0..4 {
                let kept = _mm512_cmpge_epu32_mask(words16(lanes, g), t);
                bits |= u64::from(kept) << (16 * g);
                step(lanes, g);
            }
        }
        bits
    }

    #[inline(always)]
    unsafe fn next_raw(self, lanes: &mut Lanes, out: &mut [u32; 64]) {
        // SAFETY: value-only intrinsics and stores of 16 words inside `out`; AVX-512F enabled.
        unsafe {
            for g in 0..4 {
                _mm512_storeu_si512(out.as_mut_ptr().add(16 * g).cast(), words16(lanes, g));
                step(lanes, g);
            }
        }
    }

    #[inline(always)]
    unsafe fn apply64_f32(self, src: *const f32, dst: *mut f32, word: u64, scale: f32) {
        // SAFETY: forwarded from the caller (AVX-512F; 64 elements).
        unsafe { apply64_f32::<false>(src, dst, word, scale) }
    }

    #[inline(always)]
    unsafe fn stream64_f32(self, src: *const f32, dst: *mut f32, word: u64, scale: f32) {
        // SAFETY: forwarded from the caller (AVX-512F; 64 elements, `dst` aligned).
        unsafe { apply64_f32::<true>(src, dst, word, scale) }
    }

    #[inline(always)]
    unsafe fn affine64_f32(self, src: *const f32, dst: *mut f32, word: u64, abc: (f32, f32, f32)) {
        // SAFETY: every access is 16 f32 inside the 64 the caller guarantees; AVX-512F enabled.
        unsafe {
            let (a, b, c) = (
                _mm512_set1_ps(abc.0),
                _mm512_set1_ps(abc.1),
                _mm512_set1_ps(abc.2),
            );
            for g in 0..4 {
                let x = _mm512_loadu_ps(src.add(16 * g));
                let y = _mm512_add_ps(_mm512_mul_ps(x, a), b);
                let y = _mm512_mask_blend_ps((word >> (16 * g)) as u16, c, y);
                _mm512_storeu_ps(dst.add(16 * g), y);
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
        // SAFETY: every access is 16 f32 inside the 64 the caller guarantees for each
        // pointer; AVX-512F enabled.
        unsafe {
            let s = _mm512_set1_ps(scale);
            for g in 0..4 {
                let at = 16 * g;
                let r = _mm512_loadu_ps(r.add(at));
                let t = _mm512_add_ps(_mm512_loadu_ps(src.add(at)), _mm512_loadu_ps(bias.add(at)));
                // Dropped lanes keep the residual: a masked add onto it.
                let y = _mm512_mask_add_ps(r, (word >> at) as u16, r, _mm512_mul_ps(t, s));
                _mm512_storeu_ps(dst.add(at), y);
            }
        }
    }

    #[inline(always)]
    unsafe fn prefetch(self, p: *const u8) {
        // SAFETY: a prefetch reads nothing and never faults; SSE is part of x86_64.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) }
    }

    const STREAMS: bool = true;

    #[inline(always)]
    unsafe fn fence(self) {
        // SAFETY: SSE, part of x86_64.
        unsafe { _mm_sfence() }
    }

    #[inline(always)]
    unsafe fn apply64_f16(self, src: *const f16, dst: *mut f16, word: u64, scale: f32) {
        // SAFETY: forwarded from the caller (AVX-512F; 64 elements).
        unsafe { apply64_f16(src, dst, word, scale) }
    }

    #[inline(always)]
    unsafe fn apply64_bf16(self, src: *const bf16, dst: *mut bf16, word: u64, scale: f32) {
        // SAFETY: forwarded from the caller (AVX-512F; 64 elements).
        unsafe { apply64_bf16(src, dst, word, scale) }
    }

    #[inline(always)]
    unsafe fn apply64_f64(self, src: *const f64, dst: *mut f64, word: u64, scale: f64) {
        // SAFETY: every access is 8 f64 inside the 64 the caller guarantees; AVX-512F enabled.
        unsafe {
            let s = _mm512_set1_pd(scale);
            for g in 0..8 {
                let x = _mm512_loadu_pd(src.add(8 * g));
                // Zero-masked multiply: dropped lanes are +0.0 whatever x was.
                let y = _mm512_maskz_mul_pd((word >> (8 * g)) as u8, x, s);
                _mm512_storeu_pd(dst.add(8 * g), y);
            }
        }
    }
}

/// The words of elements 16g .. 16g + 16 in order, from register pair `g`.
///
/// # Safety
/// AVX-512 F + DQ.
#[inline(always)]
unsafe fn words16(lanes: &Lanes, g: usize) -> __m512i {
    // SAFETY: value-only intrinsics; the caller enables the features.
    unsafe {
        let (even, odd) = (lanes.v[2 * g], lanes.v[2 * g + 1]);
        // XSH: bits 27..58 of s ^ (s >> 18): the even lanes' in their low halves, the odd
        // lanes' in their high halves; rotations likewise (vprorvd uses only the low 5 bits
        // of each count).
        let mix_even = _mm512_xor_si512(_mm512_srli_epi64::<18>(even), even);
        let mix_odd = _mm512_xor_si512(_mm512_srli_epi64::<18>(odd), odd);
        let xsh = _mm512_mask_blend_epi32(
            0xaaaa,
            _mm512_srli_epi64::<27>(mix_even),
            _mm512_slli_epi64::<5>(mix_odd),
        );
        let rot = _mm512_mask_blend_epi32(
            0xaaaa,
            _mm512_srli_epi64::<59>(even),
            _mm512_srli_epi64::<27>(odd),
        );
        _mm512_rorv_epi32(xsh, rot)
    }
}

/// Steps the lanes of register pair `g` by 64 words (right after its words are taken, as
/// the AVX2 backend does).
///
/// # Safety
/// AVX-512 F + DQ.
#[inline(always)]
unsafe fn step(lanes: &mut Lanes, g: usize) {
    // SAFETY: value-only intrinsics; the caller enables the features.
    unsafe {
        for v in &mut lanes.v[2 * g..2 * g + 2] {
            *v = _mm512_add_epi64(_mm512_mullo_epi64(*v, lanes.mul), lanes.add);
        }
    }
}

/// With `STREAM`, streaming stores (`dst` 64-byte aligned; `sfence` before sharing).
///
/// # Safety
/// AVX-512F; 64 f32 readable at `src`, writable at `dst`.
#[inline(always)]
unsafe fn apply64_f32<const STREAM: bool>(src: *const f32, dst: *mut f32, word: u64, scale: f32) {
    // SAFETY: every access is 16 f32 inside the 64 the caller guarantees, a streamed one at
    // a multiple of 64 bytes from the aligned `dst`.
    unsafe {
        let s = _mm512_set1_ps(scale);
        for g in 0..4 {
            let x = _mm512_loadu_ps(src.add(16 * g));
            // Zero-masked multiply: dropped lanes are +0.0 whatever x was.
            let y = _mm512_maskz_mul_ps((word >> (16 * g)) as u16, x, s);
            if STREAM {
                _mm512_stream_ps(dst.add(16 * g), y);
            } else {
                _mm512_storeu_ps(dst.add(16 * g), y);
            }
        }
    }
}

/// The same conversions as the AVX2 backend's F16C path (round to nearest even), sixteen
/// lanes at a time, with the keep bits as the multiply's zero mask.
///
/// # Safety
/// AVX-512F; 64 f16 readable at `src`, writable at `dst`.
#[inline(always)]
unsafe fn apply64_f16(src: *const f16, dst: *mut f16, word: u64, scale: f32) {
    // SAFETY: every access is 16 f16 (32 bytes) inside the 64 the caller guarantees.
    unsafe {
        let s = _mm512_set1_ps(scale);
        for g in 0..4 {
            let x = _mm512_cvtph_ps(_mm256_loadu_si256(src.add(16 * g).cast()));
            let y = _mm512_maskz_mul_ps((word >> (16 * g)) as u16, x, s);
            let h = _mm512_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(y);
            _mm256_storeu_si256(dst.add(16 * g).cast(), h);
        }
    }
}

/// # Safety
/// AVX-512 F + BW; 64 bf16 readable at `src`, writable at `dst`.
#[inline(always)]
unsafe fn apply64_bf16(src: *const bf16, dst: *mut bf16, word: u64, scale: f32) {
    // SAFETY: every access is 32 bf16 (64 bytes) inside the 64 the caller guarantees.
    unsafe {
        let s = _mm512_set1_ps(scale);
        let zero = _mm512_setzero_si512();
        for h in 0..2 {
            let v = _mm512_loadu_si512(src.add(32 * h).cast());
            // A bf16 in the top half of a 32-bit lane is its f32. The unpacks take elements
            // 0-3 and 4-7 of each 128-bit lane; the pack puts them back in order, so the keep
            // bits apply to the packed result as they are.
            let lo = round_bf16(_mm512_mul_ps(
                _mm512_castsi512_ps(_mm512_unpacklo_epi16(zero, v)),
                s,
            ));
            let hi = round_bf16(_mm512_mul_ps(
                _mm512_castsi512_ps(_mm512_unpackhi_epi16(zero, v)),
                s,
            ));
            let r = _mm512_maskz_mov_epi16((word >> (32 * h)) as u32, _mm512_packus_epi32(lo, hi));
            _mm512_storeu_si512(dst.add(32 * h).cast(), r);
        }
    }
}

/// The bf16 bits of 16 f32 products, in the low half of each lane, rounded to nearest even.
/// A NaN needs no case of its own: a NaN product is the bf16 input's NaN made quiet, whose low
/// 16 bits are zero, so the rounding add never carries into its top half (half's rule keeps
/// those top bits, quiet).
///
/// # Safety
/// AVX-512F.
#[inline(always)]
unsafe fn round_bf16(y: __m512) -> __m512i {
    // SAFETY: value-only intrinsics; the caller enables the features.
    unsafe {
        let bits = _mm512_castps_si512(y);
        let lsb = _mm512_and_si512(_mm512_srli_epi32::<16>(bits), _mm512_set1_epi32(1));
        let sum = _mm512_add_epi32(_mm512_add_epi32(bits, _mm512_set1_epi32(0x7fff)), lsb);
        _mm512_srli_epi32::<16>(sum)
    }
}

super::entry_points!(
    Avx512,
    Avx512Isa,
    #[target_feature(enable = "avx512f,avx512dq,avx512bw,avx2,f16c")]
    #[inline(never)]
);
