//! Statistical and algebraic properties of the operations.
//!
//! Statistical bounds are stated where used: each is 6 standard deviations of the binomial
//! count, a false-alarm probability below 2e-9 per check (normal approximation), so the
//! tests do not flake over the few thousand checks a run makes.

mod common;

use common::*;
use half::{bf16, f16};
use proptest::prelude::*;
use simd_dropout::{mask_words, Backend, Dropout, MaskRef, Seed};

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
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// The kept fraction of one call stays within binomial bounds.
    #[test]
    fn kept_fraction_is_binomial(p in 0.0f64..=1.0, state: u64, stream: u64, offset: u64) {
        let n = 20_000;
        let mut m = vec![0u64; mask_words(n)];
        simd_dropout::fill_mask(p, Seed::new(state, stream), offset, n, &mut m).unwrap();
        let k = MaskRef::new(&m, n).unwrap().count_kept();
        prop_assert!(within_binomial(k, n, keep_prob(p)), "k = {k}, p = {p}");
    }

    /// The expected value is preserved: the mean of y_i over many calls approaches x_i.
    #[test]
    fn expected_value_is_preserved(p in 0.0f64..0.95, state: u64, x0 in -100.0f32..100.0) {
        let calls = 4000usize;
        let x = [x0, 1.0, -3.5, 1e-3];
        let mut sums = [0f64; 4];
        let mut layer = Dropout::new(p, Seed::new(state, 1)).unwrap();
        let mut y = [0.0f32; 4];
        for _ in 0..calls {
            layer.forward_no_mask(&x, &mut y).unwrap();
            for (s, v) in sums.iter_mut().zip(y) {
                *s += f64::from(v);
            }
        }
        let q = keep_prob(p);
        let scale = f64::from(spec_scale(p));
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
        simd_dropout::forward(p, seed, offset, &x, &mut y, &mut m).unwrap();
        let gy: Vec<f32> = data(n, state ^ 1);
        let mut g1 = vec![0.0f32; n];
        let mut g2 = vec![0.0f32; n];
        simd_dropout::apply_mask(p, &m, &gy, &mut g1).unwrap();
        simd_dropout::backward_recompute(p, seed, offset, &gy, &mut g2).unwrap();
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
        let want: Vec<f32> = x.iter().zip(&keep).map(|(&v, &k)| spec_out(v, k, spec_scale(p))).collect();
        for b in Backend::available() {
            let mut y = vec![0.0f32; x.len()];
            let mut m = vec![0u64; mask_words(x.len())];
            b.forward(p, seed, offset, &x, &mut y, &mut m).unwrap();
            let mut xy = x.clone();
            b.forward_in_place_no_mask(p, seed, offset, &mut xy).unwrap();
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
        let rec = layer.forward(&x, &mut y, &mut m).unwrap();
        prop_assert!(x.iter().zip(&y).all(|(a, b)| a.to_bits() == b.to_bits()));
        prop_assert_eq!(MaskRef::new(&m, x.len()).unwrap().count_kept(), x.len());
        prop_assert_eq!(layer.offset(), 0);
        let mut g = vec![0.0f32; x.len()];
        rec.backward_recompute(&x, &mut g).unwrap();
        prop_assert!(x.iter().zip(&g).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}

/// Every 16-bit pattern through every backend: the rounding of f16 and bf16 matches `half`'s
/// `from_f32` of the f32 product exactly (NaN stays NaN).
fn every_half_pattern<T: FromBits>() {
    let x: Vec<T> = (0..=u16::MAX)
        .map(|b| T::from_bits_u32(u32::from(b)))
        .collect();
    for p in [0.0, 0.1, 0.5, 0.9, 1.0 - 1.0 / 16_777_216.0, 0.333] {
        let scale = spec_scale(p);
        let want: Vec<T> = x.iter().map(|&v| T::from_f32(v.to_f32() * scale)).collect();
        let ones = vec![!0u64; mask_words(x.len())];
        for b in Backend::available() {
            let mut y = vec![T::ZERO; x.len()];
            b.apply_mask(p, &ones, &x, &mut y).unwrap();
            assert_same(&y, &want, &format!("{} {} p={p}", b.name(), T::NAME));
        }
    }
}

#[test]
fn f16_rounding_matches_half_for_every_pattern() {
    every_half_pattern::<f16>();
}

#[test]
fn bf16_rounding_matches_half_for_every_pattern() {
    every_half_pattern::<bf16>();
}

#[test]
fn mask_does_not_depend_on_element_type() {
    let n = 1000;
    let mut masks = Vec::new();
    let mut layer = Dropout::new(0.4, Seed::new(9, 9)).unwrap();
    let mut m = vec![0u64; mask_words(n)];
    layer.set_offset(77);
    layer
        .forward(&vec![1.0f32; n], &mut vec![0.0; n], &mut m)
        .unwrap();
    masks.push(m.clone());
    layer.set_offset(77);
    layer
        .forward(&vec![f16::ONE; n], &mut vec![f16::ZERO; n], &mut m)
        .unwrap();
    masks.push(m.clone());
    layer.set_offset(77);
    layer
        .forward(&vec![bf16::ONE; n], &mut vec![bf16::ZERO; n], &mut m)
        .unwrap();
    masks.push(m);
    assert_eq!(masks[0], masks[1]);
    assert_eq!(masks[0], masks[2]);
}
