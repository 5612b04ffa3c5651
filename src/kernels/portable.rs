//! The portable backend on `wide`: SSE2 on the x86_64 baseline, NEON on aarch64, simd128 on
//! wasm32 (with `+simd128`), plain arrays elsewhere.
//!
//! `wide` picks its instructions at compile time, so this file is what every target gets
//! without run-time detection. The LCG lanes live in a plain array that the compiler
//! vectorizes where the target has 64-bit lane multiplies; the compare, the bit packing and
//! the element math use `wide` vectors.

use super::{Isa, lane_states};
use crate::pcg::{Affine, output};
use half::{bf16, f16};
use wide::{f32x8, f64x4, u32x8, u64x4};

/// The portable backend (always available).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Portable;

pub(crate) struct Lanes {
    states: [u64; 64],
    step64: Affine,
}

/// Bit `i` of each lane's byte: expands 8 mask bits into 8 lane masks.
const LANE_BITS: u32x8 = u32x8::new([1, 2, 4, 8, 16, 32, 64, 128]);

/// All-ones in lane `i` where bit `i` of `byte` is set.
#[inline(always)]
fn lane_mask(byte: u32) -> u32x8 {
    (u32x8::splat(byte) & LANE_BITS).simd_eq(LANE_BITS)
}

impl Isa for Portable {
    type Lanes = Lanes;

    #[inline(always)]
    unsafe fn lanes(self, first: u64, step: Affine) -> Lanes {
        Lanes {
            states: lane_states(first, step),
            step64: step.run(64),
        }
    }

    #[inline(always)]
    unsafe fn next_word(self, lanes: &mut Lanes, threshold: u32) -> u64 {
        let mut words = [0u32; 64];
        // SAFETY: the portable backend is always available.
        unsafe { self.next_raw(lanes, &mut words) };
        let t = u32x8::splat(threshold);
        let mut bits = 0u64;
        for (g, chunk) in words.chunks_exact(8).enumerate() {
            let r = u32x8::new(chunk.try_into().unwrap_or_default());
            bits |= u64::from(r.simd_ge(t).to_bitmask()) << (8 * g);
        }
        bits
    }

    #[inline(always)]
    unsafe fn next_raw(self, lanes: &mut Lanes, out: &mut [u32; 64]) {
        for (w, s) in out.iter_mut().zip(lanes.states.iter_mut()) {
            *w = output(*s);
            *s = lanes.step64.apply(*s);
        }
    }

    #[inline(always)]
    unsafe fn apply64_f32(self, src: *const f32, dst: *mut f32, word: u64, scale: f32) {
        // SAFETY: forwarded from the caller.
        unsafe { apply64_f32(src, dst, word, scale) }
    }

    #[inline(always)]
    unsafe fn apply64_f16(self, src: *const f16, dst: *mut f16, word: u64, scale: f32) {
        // SAFETY: forwarded from the caller.
        unsafe { apply64_f16(src, dst, word, scale) }
    }

    #[inline(always)]
    unsafe fn apply64_bf16(self, src: *const bf16, dst: *mut bf16, word: u64, scale: f32) {
        // SAFETY: forwarded from the caller.
        unsafe { apply64_bf16(src, dst, word, scale) }
    }

    #[inline(always)]
    unsafe fn apply64_f64(self, src: *const f64, dst: *mut f64, word: u64, scale: f64) {
        let s = f64x4::splat(scale);
        let bit = u64x4::new([1, 2, 4, 8]);
        for g in 0..16 {
            // SAFETY: 4 * g + 4 <= 64; unaligned reads and writes of plain arrays.
            unsafe {
                let x = f64x4::new(src.add(4 * g).cast::<[f64; 4]>().read_unaligned());
                let keep = (u64x4::splat((word >> (4 * g)) & 0xf) & bit).simd_eq(bit);
                let y: u64x4 = wide::bytemuck::cast(x * s);
                let y: f64x4 = wide::bytemuck::cast(y & keep);
                dst.add(4 * g)
                    .cast::<[f64; 4]>()
                    .write_unaligned(y.to_array());
            }
        }
    }
}

/// # Safety
/// 64 elements readable at `src` and writable at `dst`.
#[inline(always)]
unsafe fn apply64_f32(src: *const f32, dst: *mut f32, word: u64, scale: f32) {
    let s = f32x8::splat(scale);
    for g in 0..8 {
        // SAFETY: 8 * g + 8 <= 64; unaligned reads and writes of plain arrays.
        unsafe {
            let x = f32x8::new(src.add(8 * g).cast::<[f32; 8]>().read_unaligned());
            let keep = lane_mask((word >> (8 * g)) as u32 & 0xff);
            let y: u32x8 = wide::bytemuck::cast(x * s);
            let y: f32x8 = wide::bytemuck::cast(y & keep);
            dst.add(8 * g)
                .cast::<[f32; 8]>()
                .write_unaligned(y.to_array());
        }
    }
}

/// f16 in eight lanes: widened exactly (a magic multiply normalizes subnormals), multiplied,
/// and narrowed with round to nearest even by integer arithmetic (subnormals included; NaN
/// stays NaN), matching `half`'s conversions bit for bit.
///
/// # Safety
/// 64 elements readable at `src` and writable at `dst`.
#[inline(always)]
unsafe fn apply64_f16(src: *const f16, dst: *mut f16, word: u64, scale: f32) {
    let s = f32x8::splat(scale);
    for g in 0..8 {
        // SAFETY: 8 * g + 8 <= 64; f16 is a plain u16.
        unsafe {
            let h = src.add(8 * g).cast::<[u16; 8]>().read_unaligned();
            let x = widen_f16(u32x8::new(h.map(u32::from)));
            let keep = lane_mask((word >> (8 * g)) as u32 & 0xff);
            let y: u32x8 = wide::bytemuck::cast(x * s);
            let out = narrow_f16(y & keep).to_array().map(|v| v as u16);
            dst.add(8 * g).cast::<[u16; 8]>().write_unaligned(out);
        }
    }
}

/// f16 bits (low halves) to f32, exactly.
#[inline(always)]
fn widen_f16(h: u32x8) -> f32x8 {
    let sign = (h & u32x8::splat(0x8000)) << 16;
    let magnitude = h & u32x8::splat(0x7fff);
    // Shifted into an f32's exponent and mantissa, then scaled by 2^112 to rebias: exact for
    // normals and subnormals alike.
    let scaled: f32x8 = wide::bytemuck::cast(magnitude << 13);
    let finite: u32x8 = wide::bytemuck::cast(scaled * f32x8::splat(5.192_297e33)); // 2^112
    // Infinities and NaNs: the exponent becomes all ones.
    let special = magnitude.simd_ge(u32x8::splat(0x7c00));
    let special_bits = (magnitude << 13) | u32x8::splat(0x7f80_0000);
    wide::bytemuck::cast(special.select(special_bits, finite) | sign)
}

/// f32 bits to f16 bits (in the low halves), round to nearest even.
#[inline(always)]
fn narrow_f16(y: u32x8) -> u32x8 {
    let sign = (y >> 16) & u32x8::splat(0x8000);
    let a = y & u32x8::splat(0x7fff_ffff);
    // Too large for f16 (after rounding): infinity, or a quiet NaN.
    let overflow = a.simd_ge(u32x8::splat(0x4780_0000)); // 65536.0
    let nan = a.simd_gt(u32x8::splat(0x7f80_0000));
    let special = nan.select(u32x8::splat(0x7e00), u32x8::splat(0x7c00));
    // Subnormal results: adding 0.5 (as f32) aligns the f16 subnormal grid to the f32 ulp,
    // so the float add rounds to nearest even.
    let tiny = a.simd_lt(u32x8::splat(0x3880_0000)); // 2^-14
    let magic = f32x8::splat(0.5);
    let sub_f: f32x8 = wide::bytemuck::cast(a);
    let sub: u32x8 = wide::bytemuck::cast(sub_f + magic);
    let sub = sub - u32x8::splat(0x3f00_0000);
    // Normal results: rebias, then round the 13 dropped bits to nearest even.
    let odd = (a >> 13) & u32x8::splat(1);
    let normal = (a + u32x8::splat(0xc800_0fff) + odd) >> 13; // 0xc8000000 = (15 - 127) << 23
    let finite = tiny.select(sub, normal);
    overflow.select(special, finite) | sign
}

/// bf16 widens by a shift and rounds with integer arithmetic (round to nearest even; NaN
/// stays NaN), eight lanes at a time.
///
/// # Safety
/// 64 elements readable at `src` and writable at `dst`.
#[inline(always)]
unsafe fn apply64_bf16(src: *const bf16, dst: *mut bf16, word: u64, scale: f32) {
    let s = f32x8::splat(scale);
    for g in 0..8 {
        // SAFETY: 8 * g + 8 <= 64; bf16 is a plain u16.
        unsafe {
            let h = src.add(8 * g).cast::<[u16; 8]>().read_unaligned();
            let x: f32x8 = wide::bytemuck::cast(u32x8::new(h.map(u32::from)) << 16);
            let keep = lane_mask((word >> (8 * g)) as u32 & 0xff);
            let y: u32x8 = wide::bytemuck::cast(x * s);
            let y = round_bf16(y & keep);
            let out = y.to_array().map(|v| v as u16);
            dst.add(8 * g).cast::<[u16; 8]>().write_unaligned(out);
        }
    }
}

/// f32 bits to bf16 bits (in the low half), ties to even, NaN kept quiet: `half`'s rule.
#[inline(always)]
pub(crate) fn round_bf16(y: u32x8) -> u32x8 {
    let lsb = (y >> 16) & u32x8::splat(1);
    let rounded = (y + u32x8::splat(0x7fff) + lsb) >> 16;
    let nan = (y & u32x8::splat(0x7fff_ffff)).simd_gt(u32x8::splat(0x7f80_0000));
    let quiet = (y >> 16) | u32x8::splat(0x40);
    nan.select(quiet, rounded)
}

super::entry_points!(Portable, Portable, #[inline(never)]);

impl Portable {
    /// The backend: always available.
    pub(crate) const fn new() -> Self {
        Portable
    }
}
