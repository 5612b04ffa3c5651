//! Helpers shared by the integration tests: the contract computed independently with
//! `rand_pcg`, and bit comparisons.
#![allow(dead_code)]

use half::{bf16, f16};
use rand_core::Rng;
use rand_pcg::Pcg32;
use simd_dropout::{Element, Seed};

/// Bit `i` of a word slice.
pub fn bit(words: &[u64], i: usize) -> bool {
    (words[i / 64] >> (i % 64)) & 1 == 1
}

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
        // Empty, a tail alone (1, 63), one whole 64-element block, blocks and a tail.
        return vec![0, 1, 63, 64, 193];
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

/// The contract's output of one kept element, written independently of the crate: f32, f16
/// and bf16 multiply in f32 by the f32-rounded scale, f64 in f64 by the exact one.
pub fn spec_out<T: FromBits>(x: T, keep: bool, p: f64) -> T {
    if !keep || p >= 1.0 {
        return T::ZERO_;
    }
    T::spec_scaled(x, 1.0 / (1.0 - p))
}

/// One element of a forward at `p` with decision `keep`.
pub fn spec_forward<T: FromBits>(x: &[T], keep: &[bool], p: f64) -> Vec<T> {
    x.iter()
        .zip(keep)
        .map(|(&v, &k)| spec_out(v, k, p))
        .collect()
}

/// Same bits, or both NaN (the one freedom the contract allows).
pub fn same<T: FromBits>(a: T, b: T) -> bool {
    a.to_bits() == b.to_bits() || (a.nan() && b.nan())
}

pub fn assert_same<T: FromBits>(got: &[T], want: &[T], what: &str) {
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

/// The element types, with what the tests need of them, written against `half` and the
/// primitive types rather than the crate.
pub trait FromBits: Element {
    const NAME: &'static str;
    const ZERO_: Self;
    fn from_bits_u64(bits: u64) -> Self;
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    fn nan(self) -> bool;
    /// `round_T(x * scale)` with the contract's arithmetic for the type.
    fn spec_scaled(x: Self, scale64: f64) -> Self;
    /// Rounds to the type's computing precision (f32, or f64 for f64). An f32 operation is
    /// emulated exactly by the f64 operation rounded this way (53 >= 2 * 24 + 2).
    fn rw(v: f64) -> f64 {
        v as f32 as f64
    }
    /// A computed value rounded once to the type.
    fn from_work(v: f64) -> Self {
        Self::from_f64(v)
    }
}
impl FromBits for f32 {
    const NAME: &'static str = "f32";
    const ZERO_: Self = 0.0;
    fn from_bits_u64(bits: u64) -> Self {
        f32::from_bits(bits as u32)
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn nan(self) -> bool {
        self.is_nan()
    }
    fn spec_scaled(x: Self, scale64: f64) -> Self {
        x * scale64 as f32
    }
}
impl FromBits for f64 {
    const NAME: &'static str = "f64";
    const ZERO_: Self = 0.0;
    fn from_bits_u64(bits: u64) -> Self {
        f64::from_bits(bits)
    }
    fn from_f64(v: f64) -> Self {
        v
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn nan(self) -> bool {
        self.is_nan()
    }
    fn spec_scaled(x: Self, scale64: f64) -> Self {
        x * scale64
    }
    fn rw(v: f64) -> f64 {
        v
    }
}
impl FromBits for f16 {
    const NAME: &'static str = "f16";
    const ZERO_: Self = f16::ZERO;
    fn from_bits_u64(bits: u64) -> Self {
        f16::from_bits(bits as u16)
    }
    fn from_f64(v: f64) -> Self {
        f16::from_f32(v as f32)
    }
    fn to_f64(self) -> f64 {
        self.to_f64()
    }
    fn nan(self) -> bool {
        self.is_nan()
    }
    fn spec_scaled(x: Self, scale64: f64) -> Self {
        f16::from_f32(x.to_f32() * scale64 as f32)
    }
}
impl FromBits for bf16 {
    const NAME: &'static str = "bf16";
    const ZERO_: Self = bf16::ZERO;
    fn from_bits_u64(bits: u64) -> Self {
        bf16::from_bits(bits as u16)
    }
    fn from_f64(v: f64) -> Self {
        bf16::from_f32(v as f32)
    }
    fn to_f64(self) -> f64 {
        self.to_f64()
    }
    fn nan(self) -> bool {
        self.is_nan()
    }
    fn spec_scaled(x: Self, scale64: f64) -> Self {
        bf16::from_f32(x.to_f32() * scale64 as f32)
    }
}

/// Deterministic test data: mostly ordinary values, with NaN, infinities, zeros and
/// subnormals sprinkled in.
pub fn data<T: FromBits>(n: usize, salt: u64) -> Vec<T> {
    let mut g = Pcg32::new(salt, 99);
    (0..n)
        .map(|i| match i % 17 {
            3 => T::from_f64(f64::NAN),
            5 => T::from_f64(f64::INFINITY),
            7 => T::from_f64(-0.0),
            11 => T::from_bits_u64(1), // smallest subnormal of each type
            _ => T::from_f64((g.next_u32() as i32) as f64 / 1.0e6),
        })
        .collect()
}

/// Alpha dropout's constants `(a, b, c)`, straight from the contract's formula with std's sqrt.
pub fn alpha_consts(p: f64) -> (f64, f64, f64) {
    let alpha = 1.7580993408473766f64;
    let a = 1.0 / ((1.0 - p) * (1.0 + p * (alpha * alpha))).sqrt();
    (a, a * alpha * p, -a * alpha * (1.0 - p))
}

/// The contract's alpha forward: kept `round(a * x + b)` (two roundings in the working type),
/// dropped `c`.
pub fn spec_alpha<T: FromBits>(x: &[T], keep: &[bool], p: f64) -> Vec<T> {
    let (a, b, c) = alpha_consts(p);
    let (a, b, c) = (T::rw(a), T::rw(b), T::rw(c));
    x.iter()
        .zip(keep)
        .map(|(&v, &k)| {
            T::from_work(if k {
                T::rw(T::rw(a * v.to_f64()) + b)
            } else {
                c
            })
        })
        .collect()
}

/// The contract's alpha backward: kept `round(a * gy)`, dropped `+0.0`.
pub fn spec_alpha_backward<T: FromBits>(gy: &[T], keep: &[bool], p: f64) -> Vec<T> {
    let a = T::rw(alpha_consts(p).0);
    gy.iter()
        .zip(keep)
        .map(|(&v, &k)| {
            if k {
                T::from_work(T::rw(a * v.to_f64()))
            } else {
                T::ZERO
            }
        })
        .collect()
}

/// The contract's fused forward on `[rows][cols]` (`cols = bias.len()`): kept
/// `round(residual + (x + bias) * s)`, dropped `residual`, each operation rounded once in
/// the working type.
pub fn spec_fused<T: FromBits>(x: &[T], bias: &[T], res: &[T], keep: &[bool], p: f64) -> Vec<T> {
    let s = if p < 1.0 { T::rw(1.0 / (1.0 - p)) } else { 0.0 };
    (0..x.len())
        .map(|i| {
            if !keep[i] {
                return res[i];
            }
            let t = T::rw(x[i].to_f64() + bias[i % bias.len()].to_f64());
            T::from_work(T::rw(res[i].to_f64() + T::rw(t * s)))
        })
        .collect()
}

/// The contract's fused backward: `gx` as the element backward, and the bias gradient summed
/// over rows in row order in the working type.
pub fn spec_fused_backward<T: FromBits>(
    gy: &[T],
    keep: &[bool],
    p: f64,
    cols: usize,
) -> (Vec<T>, Vec<T>) {
    let gx = spec_forward(gy, keep, p);
    let rows = gy.len().checked_div(cols).unwrap_or(0);
    let gb = (0..cols)
        .map(|c| {
            let acc = (0..rows).fold(0.0f64, |acc, r| T::rw(acc + gx[r * cols + c].to_f64()));
            T::from_work(acc)
        })
        .collect();
    (gx, gb)
}

/// The contract's broadcast forward on `[outer][mid][inner]`: element `(o, m, k)` follows
/// decision `o * inner + k`.
pub fn spec_broadcast<T: FromBits>(
    x: &[T],
    (mid, inner): (usize, usize),
    keep: &[bool],
    p: f64,
) -> Vec<T> {
    x.iter()
        .enumerate()
        .map(|(i, &v)| spec_out(v, keep[(i / (mid * inner)) * inner + i % inner], p))
        .collect()
}

/// The word at stream position `q`, from rand_pcg.
pub fn word(seed: Seed, q: u64) -> u32 {
    let mut g = Pcg32::new(seed.state, seed.stream);
    g.advance(q);
    g.next_u32()
}

/// The contract's variate of stream position `q`, written from its text.
pub fn spec_normal(seed: Seed, q: u64) -> f32 {
    let (a, b) = (word(seed, q & !1), word(seed, q | 1));
    // Radius: u = k / 2^24, k = (a >> 8) + 1 = m * 2^e, m in [sqrt(1/2), sqrt(2)).
    let k = ((a >> 8) + 1) as f32;
    let (mut m, mut e) = (k, 0i32);
    while m >= 2.0 {
        m /= 2.0;
        e += 1;
    }
    if m > std::f32::consts::SQRT_2 {
        m /= 2.0;
        e += 1;
    }
    let s = (m - 1.0) / (m + 1.0);
    let t = s * s;
    let c = |v: f64| v as f32;
    let series = c(1.0 / 3.0) + t * (c(1.0 / 5.0) + t * (c(1.0 / 7.0) + t * c(1.0 / 9.0)));
    let ln_m = (s + s) + (s + s) * (t * series);
    let ln2_hi = f32::from_bits(0x3f31_7200);
    let ln2_lo = (std::f64::consts::LN_2 - f64::from(ln2_hi)) as f32;
    let f = (e - 24) as f32;
    let ln_u = f * ln2_hi + (ln_m + f * ln2_lo);
    let r = (-2.0 * ln_u).sqrt();
    // Angle: quadrant b >> 30, phi = (f - 1/2) * pi/2, f = bits 6..30 of b over 2^24.
    let frac = ((b >> 6) & 0xff_ffff) as f32 / 16_777_216.0;
    let phi = (frac - 0.5) * std::f32::consts::FRAC_PI_2;
    let t = phi * phi;
    let fact = |n: u32| (1..=n).map(f64::from).product::<f64>();
    let k = |n: u32, sign: f64| (sign / fact(n)) as f32;
    let sin = phi + phi * (t * (k(3, -1.0) + t * (k(5, 1.0) + t * (k(7, -1.0) + t * k(9, 1.0)))));
    let cos = 1.0
        + t * (k(2, -1.0) + t * (k(4, 1.0) + t * (k(6, -1.0) + t * (k(8, 1.0) + t * k(10, -1.0)))));
    let (cos_theta, sin_theta) = match b >> 30 {
        0 => (cos, sin),
        1 => (-sin, cos),
        2 => (-cos, -sin),
        _ => (sin, -cos),
    };
    if q.is_multiple_of(2) {
        r * cos_theta
    } else {
        r * sin_theta
    }
}

/// The contract's output: `x * (1 + sigma * z)` in the type's computing precision.
pub fn spec_gaussian<T: FromBits>(x: &[T], p: f64, seed: Seed, offset: u64) -> Vec<T> {
    let sigma = (p / (1.0 - p)).sqrt();
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            if p == 0.0 {
                return v;
            }
            let z = spec_normal(seed, offset.wrapping_add(i as u64));
            let m = if T::NAME == "f64" {
                1.0 + sigma * f64::from(z)
            } else {
                f64::from(1.0f32 + sigma as f32 * z)
            };
            T::spec_scaled(v, m)
        })
        .collect()
}

/// A DropBlock geometry for the oracle: `maps = n * c` maps of `d * h * w` (d = 1 in 2-D).
#[derive(Clone, Copy, Debug)]
pub struct SpecBlocks {
    pub maps: usize,
    pub d: usize,
    pub h: usize,
    pub w: usize,
    pub block_size: usize,
    pub three_d: bool,
}

impl SpecBlocks {
    pub fn elements(&self) -> usize {
        self.maps * self.d * self.h * self.w
    }
}

/// DropBlock's keep bit per element and its scale, written from the contract: one word per
/// block corner in `(map, plane, row, column)` order, a seed when `word < t` with
/// `t = round(min(gamma, 1) * 2^32)`, a seed's block the `bs` rows, columns (and planes) from
/// the corner on; scale `numel / (1e-6 + kept)`. `p = 0` keeps everything with scale 1.
pub fn spec_block(b: SpecBlocks, p: f64, seed: Seed, offset: u64) -> (Vec<bool>, f64) {
    let n = b.elements();
    if p == 0.0 || n == 0 {
        return (vec![true; n], 1.0);
    }
    let mut bs = b.block_size.min(b.h).min(b.w);
    if b.three_d {
        bs = bs.min(b.d);
    }
    let bsd = if b.three_d { bs } else { 1 };
    let (dv, hv, wv) = (b.d - bsd + 1, b.h - bs + 1, b.w - bs + 1);
    let gamma = if b.three_d {
        p * b.d as f64 * b.h as f64 * b.w as f64 / (bs.pow(3) * dv * hv * wv) as f64
    } else {
        p * b.h as f64 * b.w as f64 / (bs.pow(2) * hv * wv) as f64
    };
    let t = (gamma.min(1.0) * 4_294_967_296.0).round() as u64;
    let mut g = Pcg32::new(seed.state, seed.stream);
    g.advance(offset);
    let mut keep = vec![true; n];
    for k in 0..b.maps {
        for dz in 0..dv {
            for i in 0..hv {
                for j in 0..wv {
                    if u64::from(g.next_u32()) >= t {
                        continue;
                    }
                    for z in dz..dz + bsd {
                        for u in i..i + bs {
                            for v in j..j + bs {
                                keep[((k * b.d + z) * b.h + u) * b.w + v] = false;
                            }
                        }
                    }
                }
            }
        }
    }
    let kept = keep.iter().filter(|&&k| k).count();
    (keep, n as f64 / (1e-6 + kept as f64))
}

/// For each element of a channels-last `[n][d][h][w][c]` tensor (`d = 1` in 2-D), the index of
/// the same element in channels-first `[n][c][d][h][w]` order.
pub fn channels_first_index(n: usize, c: usize, d: usize, h: usize, w: usize) -> Vec<usize> {
    let mut order = Vec::with_capacity(n * c * d * h * w);
    for ni in 0..n {
        for z in 0..d {
            for u in 0..h {
                for v in 0..w {
                    for ci in 0..c {
                        order.push((((ni * c + ci) * d + z) * h + u) * w + v);
                    }
                }
            }
        }
    }
    order
}

/// Outputs of a keep vector and a scale: the section 5 rule with that scale.
pub fn spec_apply<T: FromBits>(x: &[T], keep: &[bool], scale: f64) -> Vec<T> {
    x.iter()
        .zip(keep)
        .map(|(&v, &k)| {
            if k {
                T::spec_scaled(v, scale)
            } else {
                T::ZERO_
            }
        })
        .collect()
}
