//! Gaussian dropout (contract section 7) against the rule computed independently from the
//! contract's text with `rand_pcg`, on every backend and element type, serial and parallel;
//! and its distribution: moments and a Kolmogorov-Smirnov test against N(0, 1).
//!
//! Under miri only `words_from_every_kernel` runs: the operation is safe code but for the
//! kernels' raw-word method, which it reaches on every backend.

mod common;

use common::*;
use half::{bf16, f16};
use rand_core::Rng;
use rand_pcg::Pcg32;
use simd_dropout::{Backend, Error, Io, Seed};
use std::mem::MaybeUninit;

/// Every backend, and with rayon the parallel form of each.
fn backends() -> Vec<Backend> {
    let serial = Backend::available();
    #[cfg(feature = "rayon")]
    let serial = serial.chain(Backend::available().map(|b| b.parallel()));
    serial.collect()
}

/// The kernels' raw words (`Isa::next_raw`, the one `unsafe` the operation reaches) on every
/// backend, through a call of whole and partial 64-word blocks; f32 and bf16 (f16 would need
/// an F16C intrinsic that miri lacks when the AVX backends are compiled in).
#[test]
fn words_from_every_kernel() {
    let (seed, n) = (Seed::new(3, 4), 200);
    let x: Vec<f32> = data(n, 1);
    let want = spec_gaussian(&x, 0.25, seed, 7);
    let xb: Vec<bf16> = data(n, 1);
    let want_b = spec_gaussian(&xb, 0.25, seed, 7);
    for b in Backend::available().filter(|b| b.name() != "scalar") {
        let mut y = vec![0.0f32; n];
        b.gaussian_forward(0.25, seed, 7, Io::Out { x: &x, y: &mut y })
            .unwrap();
        assert_same(&y, &want, b.name());
        let mut yb = xb.clone();
        b.gaussian_forward(0.25, seed, 7, Io::InPlace(&mut yb))
            .unwrap();
        assert_same(&yb, &want_b, b.name());
    }
}

fn gaussian_case<T: FromBits>(n: usize, p: f64, seed: Seed, offset: u64) {
    let x: Vec<T> = data(n, 5);
    let want = spec_gaussian(&x, p, seed, offset);
    for bk in backends() {
        let what = format!("{} {} n={n} p={p} offset={offset}", bk.name(), T::NAME);
        let mut y = vec![T::ZERO; n];
        bk.gaussian_forward(p, seed, offset, Io::Out { x: &x, y: &mut y })
            .unwrap();
        assert_same(&y, &want, &format!("forward {what}"));
        let mut xy = x.clone();
        bk.gaussian_forward(p, seed, offset, Io::InPlace(&mut xy))
            .unwrap();
        assert_same(&xy, &want, &format!("forward in place {what}"));
        let mut u = vec![MaybeUninit::<T>::uninit(); n];
        bk.gaussian_forward(p, seed, offset, Io::Uninit { x: &x, y: &mut u })
            .unwrap();
        let u: Vec<T> = u.iter().map(|v| unsafe { v.assume_init() }).collect();
        assert_same(&u, &want, &format!("forward uninit {what}"));
        let mut g = vec![T::ZERO; n];
        bk.gaussian_backward(p, seed, offset, Io::Out { x: &x, y: &mut g })
            .unwrap();
        assert_same(&g, &want, &format!("backward {what}"));
    }
}

#[test]
#[cfg_attr(miri, ignore = "native runs cover it; miri runs the kernels below")]
fn gaussian_matches_the_contract() {
    let ps = [
        0.0,
        1.0 / 4_294_967_296.0,
        0.1,
        0.5,
        0.9,
        1.0 - 1.0 / 16_777_216.0,
    ];
    let offsets = [0, 1, 1_000_003, u64::MAX - 100, u64::MAX];
    for (i, &p) in ps.iter().enumerate() {
        let seed = SEEDS[i % SEEDS.len()];
        for (j, &offset) in offsets.iter().enumerate() {
            // Every length near the chunk (256) and round (32) boundaries for one offset of
            // each parity, a few for the others.
            let ns: Vec<usize> = if j < 2 {
                lengths()
            } else {
                vec![0, 1, 2, 33, 257, 4097]
            };
            for n in ns {
                gaussian_case::<f32>(n, p, seed, offset);
                gaussian_case::<f64>(n, p, seed, offset);
                gaussian_case::<f16>(n, p, seed, offset);
                gaussian_case::<bf16>(n, p, seed, offset);
            }
        }
    }
    // Long enough for the parallel path to split.
    gaussian_case::<f32>(300_001, 0.3, SEEDS[0], 7);
    gaussian_case::<bf16>(300_001, 0.3, SEEDS[1], 8);
}

/// Split calls (a layer's consecutive calls, shards) give the whole call's bits, at any
/// parity of the split point.
#[test]
#[cfg_attr(miri, ignore = "native runs cover it; miri runs the kernels below")]
fn gaussian_calls_compose() {
    let (seed, n) = (Seed::from_u64(11), 1000);
    let x: Vec<f32> = data(n, 6);
    for bk in backends() {
        let mut whole = vec![0.0f32; n];
        bk.gaussian_forward(
            0.4,
            seed,
            5,
            Io::Out {
                x: &x,
                y: &mut whole,
            },
        )
        .unwrap();
        for cut in [0, 1, 2, 31, 32, 33, 255, 256, 257, 999] {
            let mut y = vec![0.0f32; n];
            let (y0, y1) = y.split_at_mut(cut);
            bk.gaussian_forward(
                0.4,
                seed,
                5,
                Io::Out {
                    x: &x[..cut],
                    y: y0,
                },
            )
            .unwrap();
            bk.gaussian_forward(
                0.4,
                seed,
                5 + cut as u64,
                Io::Out {
                    x: &x[cut..],
                    y: y1,
                },
            )
            .unwrap();
            assert_same(&y, &whole, &format!("{} cut at {cut}", bk.name()));
        }
    }
}

#[test]
#[cfg_attr(miri, ignore = "native runs cover it; miri runs the kernels below")]
fn gaussian_rejects_bad_input_and_writes_nothing() {
    let x = [1.0f32; 10];
    let b = Backend::detect();
    for p in [1.0, -0.1, 1.5, f64::NAN, f64::INFINITY] {
        let mut y = [7.0f32; 10];
        let err = b
            .gaussian_forward(p, Seed::default(), 0, Io::Out { x: &x, y: &mut y })
            .unwrap_err();
        assert!(matches!(err, Error::InvalidProbability { .. }), "{p}");
        assert_eq!(y, [7.0; 10]);
        let err = b
            .gaussian_backward(p, Seed::default(), 0, Io::InPlace(&mut y))
            .unwrap_err();
        assert!(matches!(err, Error::InvalidProbability { .. }), "{p}");
        assert_eq!(y, [7.0; 10]);
    }
    let mut y = [7.0f32; 9];
    let err = b
        .gaussian_forward(0.5, Seed::default(), 0, Io::Out { x: &x, y: &mut y })
        .unwrap_err();
    assert!(matches!(err, Error::LengthMismatch { .. }));
    assert_eq!(y, [7.0; 9]);
}

/// The standard normal CDF from `erfc` (W. J. Cody's rational approximations are overkill
/// here: Numerical Recipes' Chebyshev fit, relative error below 1.2e-7, is far below the
/// test's resolution of 1e-3).
fn normal_cdf(z: f64) -> f64 {
    let x = -z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * x.abs());
    let poly = -x * x - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    0.5 * if x >= 0.0 { erfc } else { 2.0 - erfc }
}

/// 2^21 variates (the multipliers of ones at p = 1/2, where sigma = 1): mean, variance,
/// skewness and kurtosis of N(0, 1), and a Kolmogorov-Smirnov statistic below the 1% critical
/// value. Any backend gives the same bits (above), so the detected one stands for all.
#[test]
#[cfg_attr(miri, ignore = "native runs cover it; miri runs the kernels below")]
fn gaussian_noise_is_standard_normal() {
    let n = 1 << 21;
    let mut m = vec![1.0f64; n];
    Backend::detect()
        .gaussian_forward(0.5, Seed::from_u64(2024), 12_345, Io::InPlace(&mut m))
        .unwrap();
    let mut z: Vec<f64> = m.iter().map(|m| m - 1.0).collect();
    let nf = n as f64;
    let mean = z.iter().sum::<f64>() / nf;
    let moment = |k: i32| z.iter().map(|v| (v - mean).powi(k)).sum::<f64>() / nf;
    let (var, m3, m4) = (moment(2), moment(3), moment(4));
    let (skew, kurt) = (m3 / var.powf(1.5), m4 / (var * var));
    // Standard errors at n = 2^21: mean 7e-4, variance 1e-3, skewness 1.7e-3, kurtosis 3.4e-3.
    assert!(mean.abs() < 4e-3, "mean {mean}");
    assert!((var - 1.0).abs() < 6e-3, "variance {var}");
    assert!(skew.abs() < 1e-2, "skewness {skew}");
    assert!((kurt - 3.0).abs() < 2e-2, "kurtosis {kurt}");
    z.sort_by(f64::total_cmp);
    let d = z
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = normal_cdf(v);
            (c - i as f64 / nf)
                .abs()
                .max(((i + 1) as f64 / nf - c).abs())
        })
        .fold(0.0, f64::max);
    // The 1% critical value of D is 1.628 / sqrt(n) for large n.
    assert!(d < 1.628 / nf.sqrt(), "KS statistic {d}");
    // The tails reach past 5 sigma's neighbourhood but no further than the radius allows:
    // sqrt(-2 ln 2^-24) = 5.77.
    let max = z.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    assert!(max > 4.0 && max <= 5.77, "largest |z| {max}");
}

/// A layer-style stream: each call's noise is independent of the previous call's (adjacent
/// calls that share a word pair take its two independent sides).
#[test]
#[cfg_attr(miri, ignore = "native runs cover it; miri runs the kernels below")]
fn adjacent_calls_are_uncorrelated() {
    let n = 1 << 16;
    let seed = Seed::from_u64(9);
    let mut a = vec![1.0f64; n];
    let mut b = vec![1.0f64; n];
    let bk = Backend::detect();
    bk.gaussian_forward(0.5, seed, 1, Io::InPlace(&mut a))
        .unwrap();
    bk.gaussian_forward(0.5, seed, 1 + n as u64, Io::InPlace(&mut b))
        .unwrap();
    let corr = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - 1.0) * (y - 1.0))
        .sum::<f64>()
        / n as f64;
    assert!(corr.abs() < 0.02, "correlation {corr}");
    assert!(a.iter().zip(&b).all(|(x, y)| x != y));
}

/// Words are drawn from the stream in pairs; the generator's raw words reach through the
/// public API only as these variates, so check one against its words by hand.
#[test]
#[cfg_attr(miri, ignore = "native runs cover it; miri runs the kernels below")]
fn first_variate_by_hand() {
    let seed = Seed::new(42, 54);
    let mut g = Pcg32::new(42, 54);
    let (a, b) = (g.next_u32(), g.next_u32());
    assert_eq!((a, b), (0xa15c02b7, 0x7b47f409)); // rand_pcg's known answers
    // a >> 8 = 0xa15c02: u = 0xa15c03 / 2^24; b >> 30 = 1; f = 0xed1fd0 / 2^24.
    let u = f64::from(0xa15c03u32) / 16_777_216.0;
    let theta = std::f64::consts::FRAC_PI_2 * (1.0 + f64::from(0xed1fd0u32) / 16_777_216.0 - 0.5);
    let r = (-2.0 * u.ln()).sqrt();
    let mut m = [1.0f64; 2];
    Backend::scalar()
        .gaussian_forward(0.5, seed, 0, Io::InPlace(&mut m))
        .unwrap();
    assert!((m[0] - 1.0 - r * theta.cos()).abs() < 1e-6, "{m:?}");
    assert!((m[1] - 1.0 - r * theta.sin()).abs() < 1e-6, "{m:?}");
}
