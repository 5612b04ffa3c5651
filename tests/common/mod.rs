//! Helpers shared by the integration tests: the contract computed independently with
//! `rand_pcg`, and bit comparisons.
#![allow(dead_code)]

use half::{bf16, f16};
use rand_core::Rng;
use rand_pcg::Pcg32;
use simd_dropout::{Element, Seed};

/// The `p` values every harness covers (SPEC and STYLE.md).
pub const PS: [f64; 7] = [
    0.0,
    1.0 / 4_294_967_296.0,
    0.1,
    0.5,
    0.9,
    1.0 - 1.0 / 16_777_216.0,
    1.0,
];

/// The `p` values of the bit-exact harness: all of `PS`, or four of them under miri.
pub fn ps() -> &'static [f64] {
    if cfg!(miri) {
        &[0.0, 1.0 / 4_294_967_296.0, 0.5, 1.0]
    } else {
        &PS
    }
}

pub const SEEDS: [Seed; 3] = [
    Seed::new(42, 54),
    Seed::new(0, 0),
    Seed::new(u64::MAX, 0x8000_0000_0000_0001),
];

pub const OFFSETS: [u64; 4] = [0, 1, 1_000_003, u64::MAX - 100];

/// Lengths around every word, lane and block boundary (a smaller set under miri, which is
/// about a million times slower).
pub fn lengths() -> Vec<usize> {
    if cfg!(miri) {
        return vec![0, 1, 63, 64, 65, 129, 193];
    }
    let mut v: Vec<usize> = (0..=70).collect();
    for c in [128usize, 256, 1024, 4096] {
        v.extend([c - 1, c, c + 1]);
    }
    v
}

/// SPEC 1-2, straight from rand_pcg: the keep decision of each element.
pub fn spec_keep(p: f64, seed: Seed, offset: u64, n: usize) -> Vec<bool> {
    let t = (p * 4_294_967_296.0).round() as u64;
    let mut g = Pcg32::new(seed.state, seed.stream);
    g.advance(offset);
    (0..n).map(|_| u64::from(g.next_u32()) >= t).collect()
}

/// SPEC 3: the mask words of a keep vector.
pub fn spec_mask(keep: &[bool]) -> Vec<u64> {
    let mut words = vec![0u64; keep.len().div_ceil(64)];
    for (i, &k) in keep.iter().enumerate() {
        words[i / 64] |= u64::from(k) << (i % 64);
    }
    words
}

/// SPEC 1: the f32 scale.
pub fn spec_scale(p: f64) -> f32 {
    if p < 1.0 {
        (1.0 / (1.0 - p)) as f32
    } else {
        0.0
    }
}

/// SPEC 4: one output element.
pub fn spec_out<T: Element>(x: T, keep: bool, scale: f32) -> T {
    if keep {
        T::from_f32(x.to_f32() * scale)
    } else {
        T::ZERO
    }
}

/// Same bits, or both NaN (the one freedom SPEC allows).
pub fn same<T: Element>(a: T, b: T) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

pub fn assert_same<T: Element>(got: &[T], want: &[T], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            same(g, w),
            "{what}: element {i}: got {:#x}, want {:#x}",
            g.to_bits(),
            w.to_bits()
        );
    }
}

/// Element types built from raw bits, for arbitrary bit patterns.
pub trait FromBits: Element {
    fn from_bits_u32(bits: u32) -> Self;
    const NAME: &'static str;
}
impl FromBits for f32 {
    fn from_bits_u32(bits: u32) -> Self {
        f32::from_bits(bits)
    }
    const NAME: &'static str = "f32";
}
impl FromBits for f16 {
    fn from_bits_u32(bits: u32) -> Self {
        f16::from_bits(bits as u16)
    }
    const NAME: &'static str = "f16";
}
impl FromBits for bf16 {
    fn from_bits_u32(bits: u32) -> Self {
        bf16::from_bits(bits as u16)
    }
    const NAME: &'static str = "bf16";
}

/// Deterministic test data: mostly ordinary values, with NaN, infinities, zeros and
/// subnormals sprinkled in.
pub fn data<T: FromBits>(n: usize, salt: u64) -> Vec<T> {
    let mut g = Pcg32::new(salt, 99);
    (0..n)
        .map(|i| match i % 17 {
            3 => T::from_f32(f32::NAN),
            5 => T::from_f32(f32::INFINITY),
            7 => T::from_f32(-0.0),
            11 => T::from_bits_u32(1), // smallest subnormal of each type
            _ => T::from_f32((g.next_u32() as i32) as f32 / 1.0e6),
        })
        .collect()
}
