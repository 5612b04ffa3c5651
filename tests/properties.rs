//! Statistical and algebraic properties of the operations.
//!
//! Statistical bounds are stated where used: each is 6 standard deviations of the binomial
//! count, a false-alarm probability below 2e-9 per check (normal approximation), so the
//! tests do not flake over the few thousand checks a run makes.

mod common;

use common::*;
use half::{bf16, f16};
use proptest::prelude::*;
use simd_dropout::{Backend, Bits, BitsMut, Dropout, Io, MaskRef, Seed, mask_words};

/// The exact keep probability of `p`: `(2^32 - t) / 2^32`.
fn keep_prob(p: f64) -> f64 {
    let t = (p * 4_294_967_296.0).round();
    (4_294_967_296.0 - t) / 4_294_967_296.0
}

/// `|k - n q| <= 6 sqrt(n q (1 - q)) + 1`.
fn within_binomial(k: usize, n: usize, q: f64) -> bool {
    let mean = n as f64 * q;
    let sd = (n as f64 * q * (1.0 - q)).sqrt();
    (k as f64 - mean).abs() <= 6.0 * sd + 1.0
}

proptest! {
    // Under miri (about a million times slower) a few cases of smaller sizes.
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 4 } else { 64 }, .. ProptestConfig::default() })]

    /// The kept fraction of one call stays within binomial bounds.
    #[test]
    fn kept_fraction_is_binomial(p in 0.0f64..=1.0, state: u64, stream: u64, offset: u64) {
        let n = if cfg!(miri) { 2_000 } else { 20_000 };
        let mut m = vec![0u64; mask_words(n)];
        Backend::detect().fill_mask(p, Seed::new(state, stream), offset, n, BitsMut::new(&mut m)).unwrap();
        let k = MaskRef::new(&m, n).unwrap().count_kept();
        prop_assert!(within_binomial(k, n, keep_prob(p)), "k = {k}, p = {p}");
    }

    /// The expected value is preserved: the mean of y_i over many calls approaches x_i.
    #[test]
    fn expected_value_is_preserved(p in 0.0f64..0.95, state: u64, x0 in -100.0f32..100.0) {
        let calls = if cfg!(miri) { 100 } else { 4000usize };
        let x = [x0, 1.0, -3.5, 1e-3];
        let mut sums = [0f64; 4];
        let layer = Dropout::new(p, Seed::new(state, 1)).unwrap();
        let mut y = [0.0f32; 4];
        for _ in 0..calls {
            layer.forward(Io::Out { x: &x, y: &mut y }, None).unwrap();
            for (s, v) in sums.iter_mut().zip(y) {
                *s += f64::from(v);
            }
        }
        let q = keep_prob(p);
        let scale = f64::from((1.0 / (1.0 - p)) as f32);
        for (s, &xi) in sums.iter().zip(&x) {
            let xi = f64::from(xi);
            let mean = s / calls as f64;
            // y = x * scale with probability q: the mean's standard deviation.
            let sd = xi.abs() * scale * (q * (1.0 - q) / calls as f64).sqrt();
            // Plus the f32 rounding of the scale and of each product.
            let rounding = xi.abs() * 1e-6;
            prop_assert!((mean - xi).abs() <= 6.0 * sd + rounding, "mean {mean} vs {xi}");
        }
    }

    /// Backward from the mask equals backward by recompute, and both match the forward mask.
    #[test]
    fn backward_from_mask_equals_recompute(p in 0.0f64..=1.0, state: u64, offset: u64, n in 0usize..700) {
        let seed = Seed::new(state, 3);
        let x: Vec<f32> = data(n, state);
        let mut y = vec![0.0f32; n];
        let mut m = vec![0u64; mask_words(n)];
        simd_dropout::forward(p, seed, offset, Io::Out { x: &x, y: &mut y }, Some(BitsMut::new(&mut m))).unwrap();
        let gy: Vec<f32> = data(n, state ^ 1);
        let mut g1 = vec![0.0f32; n];
        let mut g2 = gy.clone();
        simd_dropout::backward(p, seed, offset, Io::Out { x: &gy, y: &mut g1 }, Some(Bits::new(&m))).unwrap();
        simd_dropout::backward(p, seed, offset, Io::InPlace(&mut g2), None).unwrap();
        assert_same(&g1, &g2, "backward");
        let mask = MaskRef::new(&m, n).unwrap();
        for (i, kept) in mask.iter().enumerate() {
            if !kept {
                prop_assert_eq!(g1[i].to_bits(), 0);
                prop_assert_eq!(y[i].to_bits(), 0);
            }
        }
    }

    /// In place equals out of place, for arbitrary f32 bit patterns, on every backend.
    #[test]
    fn in_place_equals_out_of_place(bits in proptest::collection::vec(any::<u32>(), 0..300), p in 0.0f64..=1.0, offset: u64) {
        let x: Vec<f32> = bits.iter().map(|&b| f32::from_bits(b)).collect();
        let seed = Seed::new(5, 6);
        let keep = spec_keep(p, seed, offset, x.len());
        let want = spec_forward(&x, &keep, p);
        for b in Backend::available() {
            let mut y = vec![0.0f32; x.len()];
            let mut m = vec![0u64; mask_words(x.len())];
            b.forward(p, seed, offset, Io::Out { x: &x, y: &mut y }, Some(BitsMut::new(&mut m))).unwrap();
            let mut xy = x.clone();
            b.forward(p, seed, offset, Io::InPlace(&mut xy), None).unwrap();
            assert_same(&y, &want, b.name());
            assert_same(&xy, &want, b.name());
        }
    }

    /// Eval mode is the identity, bit for bit (NaN payloads included), and draws no words.
    #[test]
    fn eval_is_identity(bits in proptest::collection::vec(any::<u32>(), 0..200), p in 0.0f64..=1.0) {
        let x: Vec<f32> = bits.iter().map(|&b| f32::from_bits(b)).collect();
        let mut layer = Dropout::new(p, Seed::new(1, 2)).unwrap();
        layer.eval();
        let mut y = vec![0.0f32; x.len()];
        let mut m = vec![0u64; mask_words(x.len())];
        let rec = layer.forward(Io::Out { x: &x, y: &mut y }, Some(BitsMut::new(&mut m))).unwrap();
        prop_assert!(x.iter().zip(&y).all(|(a, b)| a.to_bits() == b.to_bits()));
        prop_assert_eq!(MaskRef::new(&m, x.len()).unwrap().count_kept(), x.len());
        prop_assert_eq!(layer.offset(), 0);
        let mut g = vec![0.0f32; x.len()];
        rec.backward(Io::Out { x: &x, y: &mut g }, None).unwrap();
        prop_assert!(x.iter().zip(&g).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}

/// Every 16-bit pattern through every backend: the rounding of f16 and bf16 matches `half`'s
/// `from_f32` of the f32 product exactly (NaN stays NaN).
fn every_half_pattern<T: FromBits>() {
    // Under miri every 499th pattern (every exponent range and both signs get hit).
    let step = if cfg!(miri) { 499 } else { 1 };
    let x: Vec<T> = (0..=u16::MAX)
        .step_by(step)
        .map(|b| T::from_bits_u64(u64::from(b)))
        .collect();
    for p in [0.0, 0.1, 0.5, 0.9, 1.0 - 1.0 / 16_777_216.0, 0.333] {
        let want = spec_forward(&x, &vec![true; x.len()], p);
        let ones = vec![!0u64; mask_words(x.len())];
        for b in Backend::available() {
            let mut y = vec![T::ZERO; x.len()];
            let io = Io::Out { x: &x, y: &mut y };
            b.backward(p, Seed::default(), 0, io, Some(Bits::new(&ones)))
                .unwrap();
            assert_same(&y, &want, &format!("{} {} p={p}", b.name(), T::NAME));
        }
    }
}

#[test]
fn f16_rounding_matches_half_for_every_pattern() {
    // miri lacks the F16C intrinsic of the AVX kernels; the plain miri run covers f16.
    if !(cfg!(miri) && cfg!(target_feature = "f16c")) {
        every_half_pattern::<f16>();
    }
}

#[test]
fn bf16_rounding_matches_half_for_every_pattern() {
    every_half_pattern::<bf16>();
}

#[test]
fn mask_does_not_depend_on_element_type() {
    let n = 1000;
    let seed = Seed::from_u64(9);
    let mask_of = |run: &dyn Fn(&mut [u64])| {
        let mut m = vec![0u64; mask_words(n)];
        run(&mut m);
        m
    };
    let b = Backend::detect();
    let m32 = mask_of(&|m| {
        b.forward(
            0.4,
            seed,
            77,
            Io::InPlace(&mut vec![1.0f32; n]),
            Some(BitsMut::new(m)),
        )
        .unwrap()
    });
    let m64 = mask_of(&|m| {
        b.forward(
            0.4,
            seed,
            77,
            Io::InPlace(&mut vec![1.0f64; n]),
            Some(BitsMut::new(m)),
        )
        .unwrap()
    });
    let mb16 = mask_of(&|m| {
        b.forward(
            0.4,
            seed,
            77,
            Io::InPlace(&mut vec![bf16::ONE; n]),
            Some(BitsMut::new(m)),
        )
        .unwrap()
    });
    assert_eq!(m32, m64);
    // miri lacks the F16C intrinsic of the AVX kernels; the plain miri run covers f16.
    if !(cfg!(miri) && cfg!(target_feature = "f16c")) {
        let m16 = mask_of(&|m| {
            b.forward(
                0.4,
                seed,
                77,
                Io::InPlace(&mut vec![f16::ONE; n]),
                Some(BitsMut::new(m)),
            )
            .unwrap()
        });
        assert_eq!(m32, m16);
    }
    assert_eq!(m32, mb16);
}
