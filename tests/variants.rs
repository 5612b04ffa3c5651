//! SPEC section 5: every variant against the contract computed directly (tests/common, from
//! rand_pcg), on every backend and element type, serial and parallel; statistical properties
//! with stated bounds (6 standard deviations: false alarms below 2e-9 per check).

mod common;

use common::*;
use half::{bf16, f16};
use simd_dropout::{mask_words, Backend, Error, Seed, Shape};

/// Every backend, and with rayon the parallel form of each.
fn backends() -> Vec<Backend> {
    let serial = Backend::available();
    #[cfg(feature = "rayon")]
    let serial = serial.chain(Backend::available().map(|b| b.parallel()));
    serial.collect()
}

fn shapes() -> Vec<Shape> {
    let mut v = vec![
        Shape::new(0, 5, 3),
        Shape::new(3, 0, 2),
        Shape::channels(2, 3, 17),
        Shape::channels_last(2, 5, 70),
        Shape::columns(3, 130),
        Shape::samples(70, 5),
        Shape::new(1, 1, 4097),
        Shape::new(5000, 2, 1),
        Shape::new(3, 7, 1),
    ];
    if !cfg!(miri) {
        v.push(Shape::new(3, 40_000, 1)); // rows large enough for the parallel path
        v.push(Shape::columns(300, 700));
        // Large enough to be split across threads on the outer axis with inner > 1.
        v.push(Shape::channels_last(4, 200, 100));
    }
    v
}

fn broadcast_case<T: FromBits>(shape: Shape) {
    let n = shape.len().unwrap();
    let d = shape.decisions().unwrap();
    let x: Vec<T> = data(n, n as u64);
    for (p, seed, offset) in [
        (0.3, Seed::new(1, 2), 5u64),
        (0.5, Seed::new(7, 7), u64::MAX - 3),
    ] {
        let keep = spec_keep(p, seed, offset, d);
        let scale = spec_scale(p);
        let want: Vec<T> = (0..n)
            .map(|i| {
                let (o, k) = (i / (shape.mid * shape.inner), i % shape.inner);
                spec_out(x[i], keep[o * shape.inner + k], scale)
            })
            .collect();
        for b in backends() {
            let what = format!("{} {} {shape:?}", b.name(), T::NAME);
            let mut y = vec![T::ZERO; n];
            let mut m = vec![0u64; mask_words(d)];
            b.broadcast_forward(p, seed, offset, shape, &x, &mut y, &mut m)
                .unwrap();
            assert_same(&y, &want, &what);
            assert_eq!(m, spec_mask(&keep), "{what}");
            let mut y2 = vec![T::ZERO; n];
            b.broadcast_forward_no_mask(p, seed, offset, shape, &x, &mut y2)
                .unwrap();
            assert_same(&y2, &want, &what);
            let mut g = vec![T::ZERO; n];
            b.broadcast_apply_mask(p, shape, &m, &x, &mut g).unwrap();
            assert_same(&g, &want, &what);
        }
    }
}

#[test]
fn broadcast_matches_spec() {
    for shape in shapes() {
        broadcast_case::<f32>(shape);
        broadcast_case::<bf16>(shape);
        broadcast_case::<f16>(shape);
    }
}

/// SPEC 5's alpha constants, straight from the formula with std's sqrt.
fn alpha_consts(p: f64) -> (f32, f32, f32) {
    let alpha = 1.7580993408473766f64;
    let a = 1.0 / ((1.0 - p) * (1.0 + p * (alpha * alpha))).sqrt();
    let b = a * alpha * p;
    let c = -a * alpha * (1.0 - p);
    (a as f32, b as f32, c as f32)
}

fn alpha_case<T: FromBits>(n: usize) {
    let x: Vec<T> = data(n, 3);
    for p in [0.0, 0.05, 0.5, 1.0 - 1.0 / 16_777_216.0] {
        let seed = Seed::new(4, 4);
        let keep = spec_keep(p, seed, 9, n);
        let (a, b, c) = alpha_consts(p);
        let want: Vec<T> = x
            .iter()
            .zip(&keep)
            .map(|(&v, &k)| {
                if k {
                    T::from_f32(a * v.to_f32() + b)
                } else {
                    T::from_f32(c)
                }
            })
            .collect();
        let gy: Vec<T> = data(n, 4);
        let want_g: Vec<T> = gy
            .iter()
            .zip(&keep)
            .map(|(&v, &k)| {
                if k {
                    T::from_f32(a * v.to_f32())
                } else {
                    T::ZERO
                }
            })
            .collect();
        for bk in backends() {
            let what = format!("{} {} p={p}", bk.name(), T::NAME);
            let mut y = vec![T::ZERO; n];
            let mut m = vec![0u64; mask_words(n)];
            bk.alpha_forward(p, seed, 9, &x, &mut y, &mut m).unwrap();
            assert_same(&y, &want, &what);
            assert_eq!(m, spec_mask(&keep), "{what}");
            let mut g = vec![T::ZERO; n];
            bk.alpha_backward(p, &m, &gy, &mut g).unwrap();
            assert_same(&g, &want_g, &what);
        }
    }
}

#[test]
fn alpha_matches_spec() {
    let big = if cfg!(miri) { 200 } else { 150_001 };
    for n in [0, 1, 65, 4097, big] {
        alpha_case::<f32>(n);
        alpha_case::<bf16>(n);
        alpha_case::<f16>(n);
    }
}

fn fused_case<T: FromBits>(rows: usize, cols: usize) {
    let n = rows * cols;
    let x: Vec<T> = data(n, 5);
    let r: Vec<T> = data(n, 6);
    let bias: Vec<T> = data(cols, 7);
    let gy: Vec<T> = data(n, 8);
    let (p, seed, offset) = (0.25, Seed::new(8, 9), 1u64 << 40);
    let keep = spec_keep(p, seed, offset, n);
    let scale = spec_scale(p);
    let want: Vec<T> = (0..n)
        .map(|i| {
            if keep[i] {
                let t = x[i].to_f32() + bias[i % cols].to_f32();
                T::from_f32(r[i].to_f32() + t * scale)
            } else {
                r[i]
            }
        })
        .collect();
    let want_gx: Vec<T> = (0..n).map(|i| spec_out(gy[i], keep[i], scale)).collect();
    let want_gb: Vec<T> = (0..cols)
        .map(|c| {
            let mut acc = 0f32;
            for row in 0..rows {
                acc += want_gx[row * cols + c].to_f32();
            }
            T::from_f32(acc)
        })
        .collect();
    for b in backends() {
        let what = format!("{} {} {rows}x{cols}", b.name(), T::NAME);
        let mut y = vec![T::ZERO; n];
        let mut m = vec![0u64; mask_words(n)];
        b.fused_forward(p, seed, offset, &x, &bias, &r, &mut y, &mut m)
            .unwrap();
        assert_same(&y, &want, &what);
        assert_eq!(m, spec_mask(&keep), "{what}");
        let mut y2 = vec![T::ZERO; n];
        b.fused_forward_no_mask(p, seed, offset, &x, &bias, &r, &mut y2)
            .unwrap();
        assert_same(&y2, &want, &what);
        let (mut gx, mut gb) = (vec![T::ZERO; n], vec![T::ZERO; cols]);
        b.fused_backward(p, &m, &gy, &mut gx, &mut gb).unwrap();
        assert_same(&gx, &want_gx, &what);
        assert_same(&gb, &want_gb, &what);
        let (mut gx2, mut gb2) = (vec![T::ZERO; n], vec![T::ZERO; cols]);
        b.fused_backward_recompute(p, seed, offset, &gy, &mut gx2, &mut gb2)
            .unwrap();
        assert_same(&gx2, &want_gx, &what);
        assert_same(&gb2, &want_gb, &what);
    }
}

#[test]
fn fused_matches_spec() {
    let mut cases = vec![(0, 3), (1, 1), (3, 5), (7, 1025), (2, 4097)];
    if !cfg!(miri) {
        cases.push((300, 768));
    }
    for (rows, cols) in cases {
        fused_case::<f32>(rows, cols);
        fused_case::<bf16>(rows, cols);
        fused_case::<f16>(rows, cols);
    }
}

#[test]
fn bad_shapes_and_probabilities_are_errors_that_write_nothing() {
    let b = Backend::detect();
    let x = [1.0f32; 12];
    let mut y = [5.0f32; 12];
    let mut m = [7u64; 1];
    let s = Seed::new(1, 1);
    let shape_err = |r: Result<(), Error>| matches!(r, Err(Error::ShapeMismatch { .. }));
    assert!(shape_err(b.broadcast_forward(
        0.5,
        s,
        0,
        Shape::new(2, 2, 2),
        &x,
        &mut y,
        &mut m
    )));
    assert!(shape_err(b.broadcast_forward_no_mask(
        0.5,
        s,
        0,
        Shape::new(usize::MAX, 2, 1),
        &x,
        &mut y
    )));
    assert!(shape_err(b.broadcast_apply_mask(
        0.5,
        Shape::new(13, 1, 1),
        &m,
        &x,
        &mut y
    )));
    assert!(b
        .broadcast_forward(0.5, s, 0, Shape::columns(1, 12), &x, &mut y, &mut [])
        .is_err());
    assert!(b.alpha_forward(1.0, s, 0, &x, &mut y, &mut m).is_err());
    assert!(b.alpha_forward(f64::NAN, s, 0, &x, &mut y, &mut m).is_err());
    assert!(b.alpha_backward(1.0, &m, &x, &mut y).is_err());
    let bias = [0.0f32; 5];
    assert!(shape_err(
        b.fused_forward(0.5, s, 0, &x, &bias, &x, &mut y, &mut m)
    ));
    assert!(b
        .fused_forward(0.5, s, 0, &x, &[0.0; 3], &x[..11], &mut y, &mut m)
        .is_err());
    let mut gb = [9.0f32; 5];
    assert!(shape_err(b.fused_backward(0.5, &m, &x, &mut y, &mut gb)));
    assert_eq!(y, [5.0; 12]);
    assert_eq!(m, [7]);
    assert_eq!(gb, [9.0; 5]);
}

#[test]
fn broadcast_preserves_the_expected_value_per_element() {
    // Channels-last [1][2][8]: the mean over calls of each element approaches x.
    let shape = Shape::channels_last(1, 2, 8);
    let x: Vec<f32> = (0..16).map(|i| i as f32 - 7.5).collect();
    let (p, calls) = (0.3, 20_000usize);
    let mut sums = [0f64; 16];
    let mut y = vec![0.0f32; 16];
    for call in 0..calls {
        Backend::detect()
            .broadcast_forward_no_mask(p, Seed::new(1, 5), 8 * call as u64, shape, &x, &mut y)
            .unwrap();
        for (s, v) in sums.iter_mut().zip(&y) {
            *s += f64::from(*v);
        }
    }
    let q = 1.0 - p;
    for (s, &xi) in sums.iter().zip(&x) {
        let xi = f64::from(xi);
        let sd = xi.abs() / q * (q * p / calls as f64).sqrt();
        assert!(
            (s / calls as f64 - xi).abs() <= 6.0 * sd + 1e-6 * xi.abs(),
            "{xi}"
        );
    }
}

#[test]
fn drop_path_drops_whole_samples_at_rate_p() {
    let (batch, per, p) = (50_000usize, 3usize, 0.2);
    let x = vec![1.0f32; batch * per];
    let mut y = vec![0.0f32; batch * per];
    Backend::detect()
        .broadcast_forward_no_mask(
            p,
            Seed::new(9, 1),
            0,
            Shape::samples(batch, per),
            &x,
            &mut y,
        )
        .unwrap();
    let mut dropped = 0usize;
    for s in y.chunks(per) {
        assert!(
            s.iter().all(|&v| v == s[0]),
            "a sample is kept or dropped whole"
        );
        dropped += usize::from(s[0] == 0.0);
    }
    let sd = (batch as f64 * p * (1.0 - p)).sqrt();
    assert!(
        (dropped as f64 - batch as f64 * p).abs() <= 6.0 * sd,
        "{dropped}"
    );
}

#[test]
fn alpha_dropout_keeps_mean_zero_and_variance_one() {
    // Standard normal input (Box-Muller from rand_pcg words).
    let n = 400_000;
    let mut g = rand_pcg::Pcg32::new(12, 34);
    let mut u = || (f64::from(rand_core::Rng::next_u32(&mut g)) + 0.5) / 4_294_967_296.0;
    let x: Vec<f32> = (0..n)
        .map(|_| ((-2.0 * u().ln()).sqrt() * (2.0 * std::f64::consts::PI * u()).cos()) as f32)
        .collect();
    for p in [0.05, 0.1, 0.3] {
        let mut y = vec![0.0f32; n];
        let mut m = vec![0u64; mask_words(n)];
        Backend::detect()
            .alpha_forward(p, Seed::new(2, 2), 0, &x, &mut y, &mut m)
            .unwrap();
        let mean = y.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
        let var = y
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n as f64;
        // The mean's standard error is 1/sqrt(n) = 0.0016; the variance's about 0.003.
        assert!(mean.abs() < 0.01, "p = {p}: mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "p = {p}: variance {var}");
    }
}
