//! The variants (contract section 7) against the contract computed directly (tests/common,
//! from rand_pcg), on every backend and element type, serial and parallel, through every
//! cell: forward with a mask at any bit / without, in place, backward from the mask /
//! by recompute.

mod common;

use common::*;
use half::{bf16, f16};
use simd_dropout::{Backend, Bits, BitsMut, Io, Seed, Shape, mask_words};

/// Every backend, and with rayon the parallel form of each.
fn backends() -> Vec<Backend> {
    // Under miri only the kernels with `unsafe` (the scalar reference is safe code): a run
    // built with AVX features checks the AVX kernels, the plain run the portable one.
    let avx_miri = cfg!(all(miri, target_feature = "avx2"));
    let serial = Backend::available().filter(move |b| match b.name() {
        "scalar" => !cfg!(miri),
        name => !avx_miri || name.starts_with("avx"),
    });
    #[cfg(feature = "rayon")]
    let serial = serial.chain(Backend::available().map(|b| b.parallel()));
    serial.collect()
}

/// Every kind of shape. Under miri (about a million times slower) only the small ones, which
/// still reach every kernel path (whole 64-element blocks, tails, short rows, empty axes).
fn shapes() -> Vec<Shape> {
    if cfg!(miri) {
        // Under miri (about a million times slower) one shape per path: empty, long rows,
        // short rows, small groups, one element per decision.
        return vec![
            Shape::new(0, 5, 3),
            Shape::columns(2, 70),
            Shape::channels_last(2, 3, 5),
            Shape::samples(6, 3),
            Shape::new(10, 1, 3),
        ];
    }
    vec![
        Shape::new(0, 5, 3),
        Shape::new(3, 0, 2),
        Shape::channels(2, 3, 17),
        Shape::channels_last(2, 5, 70),
        Shape::columns(3, 130),
        Shape::samples(70, 5),
        Shape::new(3, 7, 1),
        // Narrow shapes: rows shorter than a word, decisions as many as elements.
        Shape::new(300, 1, 1),
        Shape::new(150, 1, 2),
        Shape::new(40, 3, 5),
        Shape::new(2, 10, 63),
        Shape::new(1, 1, 4097),
        Shape::new(5000, 2, 1),
        Shape::new(2, 100, 63),
        Shape::new(3, 40_000, 1), // rows large enough for the parallel path
        Shape::columns(300, 700),
        // Large enough to be split across threads on the outer axis with inner > 1.
        Shape::channels_last(4, 200, 100),
        // Rows of 3000, between half a chunk and a chunk (row by row in a call this small;
        // the tiled rows of large calls are in tests/backends.rs).
        Shape::channels_last(2, 7, 3000),
        Shape::new(70_000, 1, 1),
        Shape::new(20_000, 2, 3),
        // Small groups split by a piece boundary.
        Shape::samples(40_000, 3),
        // Enough small groups for several to a table lookup: lookups of 2 to 8 groups, 6- and
        // 7-bit indices that cross decision words, lookups that end mid-chunk.
        Shape::new(1500, 2, 4),
        Shape::new(1100, 5, 2),
        Shape::new(3000, 9, 1),
        Shape::new(1200, 4, 3),
        // Locked dropout on sequences, both layouts.
        Shape::locked_batch_first(3, 50, 7),
        Shape::locked_time_first(50, 3, 7),
    ]
}

/// Whether f16 runs here: miri lacks the F16C conversion intrinsic the AVX2 and AVX-512
/// kernels use, so a miri run built with those features leaves f16 to the plain miri run.
const F16: bool = !(cfg!(miri) && cfg!(target_feature = "f16c"));

fn broadcast_case<T: FromBits>(shape: Shape) {
    let n = shape.elements().unwrap();
    let d = shape.decisions().unwrap();
    let (_, mid, inner) = shape.dims();
    let x: Vec<T> = data(n, n as u64);
    let cases: &[_] = &[
        (0.5, Seed::new(7, 7), u64::MAX - 3),
        (0.3, Seed::new(1, 2), 5u64),
    ];
    // Under miri one case (the offset that wraps).
    for &(p, seed, offset) in &cases[..if cfg!(miri) { 1 } else { 2 }] {
        let keep = spec_keep(p, seed, offset, d);
        let want = spec_broadcast(&x, (mid, inner), &keep, p);
        for b in backends() {
            let what = format!("{} {} {shape:?}", b.name(), T::NAME);
            let at = 3;
            let mut y = vec![T::ZERO; n];
            let mut m = vec![0u64; mask_words(at + d)];
            let io = Io::Out { x: &x, y: &mut y };
            b.broadcast_forward(shape, p, seed, offset, io, Some(BitsMut::at(&mut m, at)))
                .unwrap();
            assert_same(&y, &want, &what);
            let got: Vec<bool> = (0..d).map(|j| bit(&m, at + j)).collect();
            assert_eq!(got, keep, "{what}");
            let mut xy = x.clone();
            b.broadcast_forward(shape, p, seed, offset, Io::InPlace(&mut xy), None)
                .unwrap();
            assert_same(&xy, &want, &format!("in place {what}"));
            let mut g = vec![T::ZERO; n];
            let io = Io::Out { x: &x, y: &mut g };
            b.broadcast_backward(shape, p, seed, offset, io, Some(Bits::at(&m, at)))
                .unwrap();
            assert_same(&g, &want, &format!("backward {what}"));
            let mut g2 = x.clone();
            b.broadcast_backward(shape, p, seed, offset, Io::InPlace(&mut g2), None)
                .unwrap();
            assert_same(&g2, &want, &format!("backward recompute {what}"));
        }
    }
}

#[test]
fn broadcast_matches_the_contract() {
    for shape in shapes() {
        broadcast_case::<f32>(shape);
        broadcast_case::<f64>(shape);
        broadcast_case::<bf16>(shape);
        if F16 {
            broadcast_case::<f16>(shape);
        }
    }
}

/// #15 F2: work is bounded by elements and mask bits; an empty call with a huge shape returns
/// at once, and a mask still receives every decision.
#[test]
fn broadcast_draws_nothing_that_nothing_uses() {
    let b = Backend::detect();
    let mut empty: [f32; 0] = [];
    for shape in [
        Shape::channels(usize::MAX / 2, 1, 0),
        Shape::new(usize::MAX >> 8, 0, 1),
        Shape::new(0, usize::MAX, usize::MAX),
    ] {
        b.broadcast_forward(
            shape,
            0.5,
            Seed::default(),
            0,
            Io::InPlace(&mut empty),
            None,
        )
        .unwrap();
        b.broadcast_backward(
            shape,
            0.5,
            Seed::default(),
            0,
            Io::InPlace(&mut empty),
            None,
        )
        .unwrap();
    }
    let shape = Shape::new(100, 0, 1);
    let mut m = [0u64; 2];
    b.broadcast_forward(
        shape,
        0.0,
        Seed::default(),
        0,
        Io::InPlace(&mut empty),
        Some(BitsMut::new(&mut m)),
    )
    .unwrap();
    assert_eq!(m, [!0, (1 << 36) - 1]);
    assert_eq!(Shape::new(usize::MAX, usize::MAX, 0).elements(), Some(0));
    assert_eq!(Shape::new(0, usize::MAX, usize::MAX).elements(), Some(0));
}

/// Locked dropout: each sequence keeps the same features at every step, and the batch-first
/// and time-first layouts of one sequence batch give the same mask and the same outputs
/// (transposed), on every backend.
#[test]
fn locked_dropout_shares_a_mask_across_time_in_either_layout() {
    let (batch, time, features) = if cfg!(miri) { (2, 3, 5) } else { (3, 40, 70) };
    let n = batch * time * features;
    let bf: Vec<f32> = data(n, 9);
    // The same sequences, time-major: element (t, b, f).
    let at = |t: usize, b: usize, f: usize| (b * time + t) * features + f;
    let mut tf = vec![0.0f32; n];
    for t in 0..time {
        for b in 0..batch {
            for f in 0..features {
                tf[(t * batch + b) * features + f] = bf[at(t, b, f)];
            }
        }
    }
    let (p, seed, offset) = (0.3, Seed::new(5, 6), 77);
    let words = mask_words(batch * features);
    for backend in backends() {
        let (mut y1, mut m1) = (vec![0.0f32; n], vec![0u64; words]);
        let (mut y2, mut m2) = (vec![0.0f32; n], vec![0u64; words]);
        let shape1 = Shape::locked_batch_first(batch, time, features);
        let io = Io::Out { x: &bf, y: &mut y1 };
        backend
            .broadcast_forward(shape1, p, seed, offset, io, Some(BitsMut::new(&mut m1)))
            .unwrap();
        let shape2 = Shape::locked_time_first(time, batch, features);
        let io = Io::Out { x: &tf, y: &mut y2 };
        backend
            .broadcast_forward(shape2, p, seed, offset, io, Some(BitsMut::new(&mut m2)))
            .unwrap();
        assert_eq!(m1, m2, "{}", backend.name());
        let scale = (1.0 / (1.0 - p)) as f32;
        // The expected outputs in both layouts (`same` compares NaNs by NaN-ness: miri, like
        // IEEE 754, leaves a NaN result's sign open).
        let (mut want1, mut want2) = (vec![0.0f32; n], vec![0.0f32; n]);
        for t in 0..time {
            for b in 0..batch {
                for f in 0..features {
                    let j = b * features + f;
                    let kept = m1[j / 64] >> (j % 64) & 1 == 1;
                    let v = if kept { bf[at(t, b, f)] * scale } else { 0.0 };
                    want1[at(t, b, f)] = v;
                    want2[(t * batch + b) * features + f] = v;
                }
            }
        }
        assert_same(&y1, &want1, &format!("batch-first {}", backend.name()));
        assert_same(&y2, &want2, &format!("time-first {}", backend.name()));
    }
}

fn alpha_case<T: FromBits>(n: usize) {
    let x: Vec<T> = data(n, 3);
    let gy: Vec<T> = data(n, 4);
    let ps = [0.05, 1.0 - 1.0 / 16_777_216.0, 0.0, 0.5];
    // Under miri two of them.
    for p in ps.into_iter().take(if cfg!(miri) { 2 } else { 4 }) {
        let seed = Seed::new(4, 4);
        let keep = spec_keep(p, seed, 9, n);
        let want = spec_alpha(&x, &keep, p);
        let want_g = spec_alpha_backward(&gy, &keep, p);
        for bk in backends() {
            let what = format!("{} {} n={n} p={p}", bk.name(), T::NAME);
            let mut y = vec![T::ZERO; n];
            let mut m = vec![0u64; mask_words(n + 5)];
            let io = Io::Out { x: &x, y: &mut y };
            bk.alpha_forward(p, seed, 9, io, Some(BitsMut::at(&mut m, 5)))
                .unwrap();
            assert_same(&y, &want, &format!("alpha forward {what}"));
            let mut xy = x.clone();
            bk.alpha_forward(p, seed, 9, Io::InPlace(&mut xy), None)
                .unwrap();
            assert_same(&xy, &want, &format!("alpha forward, no mask {what}"));
            let mut g = vec![T::ZERO; n];
            bk.alpha_backward(
                p,
                seed,
                9,
                Io::Out { x: &gy, y: &mut g },
                Some(Bits::at(&m, 5)),
            )
            .unwrap();
            assert_same(&g, &want_g, &format!("alpha backward {what}"));
            let mut g2 = gy.clone();
            bk.alpha_backward(p, seed, 9, Io::InPlace(&mut g2), None)
                .unwrap();
            assert_same(&g2, &want_g, &format!("alpha backward recompute {what}"));
        }
    }
}

#[test]
fn alpha_matches_the_contract() {
    let sizes: &[usize] = if cfg!(miri) {
        &[0, 1, 130]
    } else {
        &[0, 1, 63, 64, 65, 4097, 70_000]
    };
    for &n in sizes {
        alpha_case::<f32>(n);
        alpha_case::<f64>(n);
        alpha_case::<bf16>(n);
        if F16 {
            alpha_case::<f16>(n);
        }
    }
}

fn fused_case<T: FromBits>(rows: usize, cols: usize) {
    let n = rows * cols;
    let x: Vec<T> = data(n, 11);
    let bias: Vec<T> = data(cols, 12);
    let res: Vec<T> = data(n, 13);
    let gy: Vec<T> = data(n, 14);
    let ps = [0.1, 1.0, 0.0, 0.5];
    // Under miri two of them.
    for p in ps.into_iter().take(if cfg!(miri) { 2 } else { 4 }) {
        let seed = Seed::new(5, 6);
        let keep = spec_keep(p, seed, 77, n);
        let want = spec_fused(&x, &bias, &res, &keep, p);
        let (want_gx, want_gb) = spec_fused_backward(&gy, &keep, p, cols);
        for bk in backends() {
            let what = format!("{} {} {rows}x{cols} p={p}", bk.name(), T::NAME);
            let mut y = vec![T::ZERO; n];
            let mut m = vec![0u64; mask_words(n)];
            let io = Io::Out { x: &x, y: &mut y };
            bk.fused_forward(&bias, &res, p, seed, 77, io, Some(BitsMut::new(&mut m)))
                .unwrap();
            assert_same(&y, &want, &format!("fused forward {what}"));
            // The mask from bit 5: the first 59 elements go through a staged word, the rest
            // start at column 59 % cols.
            let mut m5 = vec![0u64; mask_words(n + 5)];
            let io = Io::Out { x: &x, y: &mut y };
            bk.fused_forward(&bias, &res, p, seed, 77, io, Some(BitsMut::at(&mut m5, 5)))
                .unwrap();
            assert_same(&y, &want, &format!("fused forward, mask at bit 5, {what}"));
            let mut xy = x.clone();
            bk.fused_forward(&bias, &res, p, seed, 77, Io::InPlace(&mut xy), None)
                .unwrap();
            assert_same(&xy, &want, &format!("fused forward in place {what}"));
            let (mut gx, mut gb) = (vec![T::ZERO; n], vec![T::ZERO; cols]);
            bk.fused_backward(
                &mut gb,
                p,
                seed,
                77,
                Io::Out { x: &gy, y: &mut gx },
                Some(Bits::new(&m)),
            )
            .unwrap();
            assert_same(&gx, &want_gx, &format!("fused backward {what}"));
            assert_same(&gb, &want_gb, &format!("fused bias gradient {what}"));
            let (mut gx2, mut gb2) = (
                vec![core::mem::MaybeUninit::<T>::uninit(); n],
                vec![T::ZERO; cols],
            );
            bk.fused_backward(
                &mut gb2,
                p,
                seed,
                77,
                Io::Uninit {
                    x: &gy,
                    y: &mut gx2,
                },
                None,
            )
            .unwrap();
            // SAFETY (test): a call that returned Ok initialized every element.
            let gx2: Vec<T> = gx2.iter().map(|v| unsafe { v.assume_init() }).collect();
            assert_same(&gx2, &want_gx, &format!("fused backward recompute {what}"));
            assert_same(
                &gb2,
                &want_gb,
                &format!("fused bias gradient recompute {what}"),
            );
        }
    }
}

#[test]
fn fused_matches_the_contract() {
    let shapes: &[(usize, usize)] = if cfg!(miri) {
        &[(0, 0), (0, 3), (1, 1), (3, 5), (2, 70)]
    } else {
        &[
            (0, 3),
            // No elements and no bias (found by the fuzzer: a panic).
            (0, 0),
            (1, 1),
            (3, 5),
            (7, 64),
            (2, 100),
            (5, 1030),
            (140, 512),
            // A word that ends on a row's last column (block 1 starts at column 64).
            (40, 127),
            // Over the parallel split, which cuts inside a row.
            (97, 1000),
        ]
    };
    for &(rows, cols) in shapes {
        fused_case::<f32>(rows, cols);
        fused_case::<f64>(rows, cols);
        fused_case::<bf16>(rows, cols);
        if F16 {
            fused_case::<f16>(rows, cols);
        }
    }
}
