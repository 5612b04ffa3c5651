//! The contract checked from first principles: masks and outputs equal SPEC's formula
//! computed with `rand_pcg::Pcg32` (`new`, `advance`, `next_u32`) on every backend.

mod common;

use common::*;
use half::{bf16, f16};
use simd_dropout::{mask_words, Backend, Seed};

fn known_answers<T: FromBits>() {
    let seeds = [
        Seed::new(42, 54),
        Seed::new(0xcafe_f00d_d15e_a5e5, 0x0a02_bdbf_7bb3_c0a7),
        Seed::new(1, u64::MAX),
    ];
    let offsets = [0u64, 7, 64, 12_345_678_901, u64::MAX - 37, u64::MAX];
    for b in Backend::available() {
        for seed in seeds {
            for offset in offsets {
                for p in PS {
                    for n in [0usize, 1, 63, 64, 65, 150, 300] {
                        let x: Vec<T> = data(n, offset ^ n as u64);
                        let keep = spec_keep(p, seed, offset, n);
                        let scale = spec_scale(p);
                        let want: Vec<T> = x
                            .iter()
                            .zip(&keep)
                            .map(|(&v, &k)| spec_out(v, k, scale))
                            .collect();
                        let mut y = vec![T::ZERO; n];
                        let mut m = vec![0u64; mask_words(n)];
                        b.forward(p, seed, offset, &x, &mut y, &mut m).unwrap();
                        let what = format!("{} {} {seed:?} {offset} {p} {n}", b.name(), T::NAME);
                        assert_eq!(m, spec_mask(&keep), "{what}");
                        assert_same(&y, &want, &what);
                    }
                }
            }
        }
    }
}

#[test]
fn f32_known_answers() {
    known_answers::<f32>();
}

#[test]
fn f16_known_answers() {
    known_answers::<f16>();
}

#[test]
fn bf16_known_answers() {
    known_answers::<bf16>();
}

#[test]
fn p_zero_keeps_all_and_p_one_drops_all() {
    let x: Vec<f32> = (0..200).map(|i| i as f32 - 50.0).collect();
    for b in Backend::available() {
        let mut y = vec![1.0f32; 200];
        let mut m = vec![0u64; 4];
        b.forward(0.0, Seed::new(1, 2), 3, &x, &mut y, &mut m)
            .unwrap();
        assert_same(&y, &x, "p = 0");
        assert_eq!(m, [!0, !0, !0, (1 << 8) - 1]);
        b.forward(1.0, Seed::new(1, 2), 3, &x, &mut y, &mut m)
            .unwrap();
        assert!(y.iter().all(|v| v.to_bits() == 0), "p = 1 gives +0.0");
        assert_eq!(m, [0; 4]);
    }
}

#[test]
fn dropped_nan_and_infinity_become_positive_zero() {
    let x = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, -1.0];
    let mut y = [0.0f32; 5];
    let mut m = [0u64; 1];
    for b in Backend::available() {
        b.forward(1.0, Seed::new(0, 0), 0, &x, &mut y, &mut m)
            .unwrap();
        assert!(y.iter().all(|v| v.to_bits() == 0));
        // Kept: NaN stays NaN, infinities scale to infinities.
        b.forward(0.0, Seed::new(0, 0), 0, &x, &mut y, &mut m)
            .unwrap();
        assert!(y[0].is_nan());
        assert_eq!(&y[1..], &x[1..]);
    }
}

#[test]
fn threshold_and_scale_follow_spec_rounding() {
    // p = 2^-33 rounds to t = 0 (ties away from zero gives 1 for exactly 2^-33).
    let half_word = 1.0 / 8_589_934_592.0;
    let keep = spec_keep(half_word, Seed::new(3, 3), 0, 1000);
    let mut m = vec![0u64; mask_words(1000)];
    simd_dropout::fill_mask(half_word, Seed::new(3, 3), 0, 1000, &mut m).unwrap();
    assert_eq!(m, spec_mask(&keep));
    // The scale is computed in f64 and rounded once: 1 / (1 - 0.1) as f32.
    let mut y = [0.0f32; 1];
    simd_dropout::apply_mask(0.1, &[1], &[1.0f32], &mut y).unwrap();
    assert_eq!(y[0], (1.0f64 / 0.9) as f32);
}

#[test]
fn offset_wraps_modulo_two_to_the_64() {
    // A call that starts 10 words before the end of the period continues at word 0.
    let seed = Seed::new(11, 22);
    let mut whole = vec![0u64; 1];
    simd_dropout::fill_mask(0.5, seed, u64::MAX - 9, 64, &mut whole).unwrap();
    let mut tail = vec![0u64; 1];
    simd_dropout::fill_mask(0.5, seed, 0, 54, &mut tail).unwrap();
    assert_eq!(whole[0] >> 10, tail[0]);
}

#[test]
fn a_call_equals_its_pieces_at_any_split() {
    // Any chunk can be generated on its own from its stream position.
    let n = 1000;
    let x: Vec<f32> = data(n, 1);
    let seed = Seed::new(8, 9);
    let mut whole = vec![0.0f32; n];
    simd_dropout::forward_no_mask(0.3, seed, 500, &x, &mut whole).unwrap();
    for split in [1usize, 63, 64, 65, 500, 999] {
        let mut parts = vec![0.0f32; n];
        let (a, b) = parts.split_at_mut(split);
        simd_dropout::forward_no_mask(0.3, seed, 500, &x[..split], a).unwrap();
        simd_dropout::forward_no_mask(0.3, seed, 500 + split as u64, &x[split..], b).unwrap();
        assert_same(&parts, &whole, &format!("split {split}"));
    }
}
