//! The `Dropout` layer and its records: offsets, eval mode, every operation of a record,
//! saved state, and a layer shared by threads.

mod common;

use common::*;
use simd_dropout::{
    Backend, Bits, BitsMut, Dropout, Error, Io, Op, Seed, Shape, State, Strided, View, mask_words,
};

#[test]
fn offset_advances_by_exactly_the_words_drawn() {
    let layer = Dropout::new(0.3, Seed::from_u64(9)).unwrap();
    let x = vec![1.0f32; 1000];
    let mut y = vec![0.0f32; 1000];
    for (n, after) in [(1000, 1000), (1, 1001), (0, 1001), (130, 1131)] {
        layer
            .forward(
                Io::Out {
                    x: &x[..n],
                    y: &mut y[..n],
                },
                None,
            )
            .unwrap();
        assert_eq!(layer.offset(), after);
    }
    // Words drawn, not elements, for broadcast: one per column.
    layer
        .reserve(Op::Broadcast(Shape::columns(10, 7)), 70)
        .unwrap();
    assert_eq!(layer.offset(), 1138);
    layer.reserve(Op::Alpha, 5).unwrap();
    layer.reserve(Op::Fused { cols: 5 }, 10).unwrap();
    assert_eq!(layer.offset(), 1153);
}

#[test]
fn successive_calls_use_fresh_words_and_equal_the_stateless_calls() {
    let seed = Seed::from_u64(4);
    let layer = Dropout::new(0.5, seed).unwrap();
    let x: Vec<f32> = data(300, 3);
    let (mut y1, mut y2, mut want) = (vec![0.0f32; 300], vec![0.0f32; 300], vec![0.0f32; 300]);
    let r1 = layer.forward(Io::Out { x: &x, y: &mut y1 }, None).unwrap();
    let r2 = layer.forward(Io::Out { x: &x, y: &mut y2 }, None).unwrap();
    assert_eq!((r1.offset, r2.offset), (0, 300));
    assert_ne!(
        y1.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        y2.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    simd_dropout::forward(
        0.5,
        seed,
        300,
        Io::Out {
            x: &x,
            y: &mut want,
        },
        None,
    )
    .unwrap();
    assert_same(&y2, &want, "second call = stateless call at offset 300");
}

#[test]
fn every_backend_gives_the_same_layer_outputs() {
    let x: Vec<f32> = data(1000, 1);
    let mut outs = Vec::new();
    for b in Backend::available() {
        let layer = Dropout::new(0.2, Seed::from_u64(1))
            .unwrap()
            .with_backend(b);
        let mut y = vec![0.0f32; 1000];
        layer.forward(Io::Out { x: &x, y: &mut y }, None).unwrap();
        outs.push(y);
    }
    for y in &outs[1..] {
        assert_same(y, &outs[0], "backends");
    }
}

#[test]
fn offset_wraps_in_the_layer() {
    let state = State {
        p: 0.5,
        seed: Seed::from_u64(2),
        offset: u64::MAX - 5,
        training: true,
    };
    let layer = Dropout::from_state(state).unwrap();
    let rec = layer.reserve(Op::Element, 10).unwrap();
    assert_eq!((rec.offset, layer.offset()), (u64::MAX - 5, 4));
}

#[test]
fn eval_is_the_identity_sets_every_mask_bit_and_draws_nothing() {
    let mut layer = Dropout::new(0.5, Seed::from_u64(1)).unwrap();
    layer.eval();
    let x: Vec<f32> = data(100, 2);
    let mut y = vec![0.0f32; 100];
    let mut m = vec![0u64; 3];
    let rec = layer
        .forward(Io::Out { x: &x, y: &mut y }, Some(BitsMut::at(&mut m, 10)))
        .unwrap();
    assert_eq!(
        y.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        x.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    assert_eq!(m, [!0 << 10, (1 << 46) - 1, 0]);
    assert_eq!(layer.offset(), 0);
    let mut g = x.clone();
    rec.backward(Io::InPlace(&mut g), Some(Bits::at(&m, 10)))
        .unwrap();
    assert_eq!(
        g.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        x.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    // Eval validates shapes and masks like training does (#15 F1).
    let bad = layer.reserve(Op::Broadcast(Shape::new(3, 3, 3)), 10);
    assert!(matches!(bad, Err(Error::ShapeMismatch { .. })));
    let rec = layer.reserve(Op::Element, 100).unwrap();
    let mut short = [0u64; 1];
    assert!(
        rec.forward(Io::InPlace(&mut g), Some(BitsMut::new(&mut short)))
            .is_err()
    );
}

/// Every operation of a record, from a mask and by recompute, equals the stateless call at
/// the record's position, on every kind of call.
#[test]
fn records_run_every_cell() {
    let layer = Dropout::new(0.4, Seed::from_u64(11)).unwrap();
    let (rows, cols) = (6, 35);
    let n = rows * cols;
    let x: Vec<f32> = data(n, 5);
    let gy: Vec<f32> = data(n, 6);
    let b = Backend::detect();
    let shape = Shape::columns(rows, cols);
    for op in [Op::Element, Op::Broadcast(shape), Op::Alpha] {
        let rec = layer.reserve(op, n).unwrap();
        let (s, o, p) = (rec.seed, rec.offset, rec.p);
        let words = mask_words(n);
        let (mut y, mut m) = (vec![0.0f32; n], vec![0u64; words]);
        rec.forward(Io::Out { x: &x, y: &mut y }, Some(BitsMut::new(&mut m)))
            .unwrap();
        let (mut want, mut wm) = (vec![0.0f32; n], vec![0u64; words]);
        let io = Io::Out {
            x: &x,
            y: &mut want,
        };
        match op {
            Op::Broadcast(sh) => b.broadcast_forward(sh, p, s, o, io, Some(BitsMut::new(&mut wm))),
            Op::Alpha => b.alpha_forward(p, s, o, io, Some(BitsMut::new(&mut wm))),
            _ => b.forward(p, s, o, io, Some(BitsMut::new(&mut wm))),
        }
        .unwrap();
        assert_same(&y, &want, &format!("{op:?} forward"));
        assert_eq!(m, wm);
        // In place, no mask: the same outputs (a replay).
        let mut xy = x.clone();
        rec.forward(Io::InPlace(&mut xy), None).unwrap();
        assert_same(&xy, &want, &format!("{op:?} replay in place"));
        // Backward: from the mask and by recompute agree.
        let (mut g1, mut g2) = (vec![0.0f32; n], gy.clone());
        rec.backward(Io::Out { x: &gy, y: &mut g1 }, Some(Bits::new(&m)))
            .unwrap();
        rec.backward(Io::InPlace(&mut g2), None).unwrap();
        assert_same(&g1, &g2, &format!("{op:?} backward"));
    }
    // Fused: forward with and without a mask, backward both ways, eval = p 0 (#15 F5).
    let bias: Vec<f32> = data(cols, 7);
    let res: Vec<f32> = data(n, 8);
    let rec = layer.reserve(Op::Fused { cols }, n).unwrap();
    let (mut y, mut y2, mut m) = (vec![0.0f32; n], vec![0.0f32; n], vec![0u64; mask_words(n)]);
    rec.fused_forward(
        &bias,
        &res,
        Io::Out { x: &x, y: &mut y },
        Some(BitsMut::new(&mut m)),
    )
    .unwrap();
    rec.fused_forward(&bias, &res, Io::Out { x: &x, y: &mut y2 }, None)
        .unwrap();
    assert_same(&y, &y2, "fused with and without mask");
    let (mut g1, mut g2, mut b1, mut b2) = (
        vec![0.0f32; n],
        vec![0.0f32; n],
        vec![0.0f32; cols],
        vec![0.0f32; cols],
    );
    rec.fused_backward(&mut b1, Io::Out { x: &gy, y: &mut g1 }, Some(Bits::new(&m)))
        .unwrap();
    rec.fused_backward(&mut b2, Io::Out { x: &gy, y: &mut g2 }, None)
        .unwrap();
    assert_same(&g1, &g2, "fused backward");
    assert_same(&b1, &b2, "fused bias gradient");
    let eval = Record {
        training: false,
        ..rec
    };
    let mut ye = vec![0.0f32; n];
    eval.fused_forward(&bias, &res, Io::Out { x: &x, y: &mut ye }, None)
        .unwrap();
    let mut want = vec![0.0f32; n];
    b.fused_forward(
        &bias,
        &res,
        0.0,
        rec.seed,
        0,
        Io::Out {
            x: &x,
            y: &mut want,
        },
        None,
    )
    .unwrap();
    assert_same(&ye, &want, "eval fused = residual + (x + bias)");
}

use simd_dropout::Record;

#[test]
fn strided_records_cover_a_window_of_the_full_tensor() {
    let layer = Dropout::new(0.5, Seed::from_u64(12)).unwrap();
    let full = [8usize, 16];
    let rec = layer.reserve(Op::Element, 128).unwrap();
    let x: Vec<f32> = data(128, 9);
    let mut whole = vec![0.0f32; 128];
    rec.forward(
        Io::Out {
            x: &x,
            y: &mut whole,
        },
        None,
    )
    .unwrap();
    // Rows 2..5 as a shard of its own.
    let shard = View::contiguous(&[3, 16])
        .unwrap()
        .within(&[2, 0], &full)
        .unwrap();
    let mut part = x[32..80].to_vec();
    rec.strided_forward(
        Strided::InPlace {
            xy: &mut part,
            view: shard,
        },
        None,
    )
    .unwrap();
    assert_same(&part, &whole[32..80], "shard");
    // The full shape must be the record's.
    let other = View::contiguous(&[3, 16])
        .unwrap()
        .within(&[2, 0], &[9, 16])
        .unwrap();
    assert!(
        rec.strided_forward(
            Strided::InPlace {
                xy: &mut part,
                view: other
            },
            None
        )
        .is_err()
    );
}

#[test]
fn state_saves_and_restores_the_stream() {
    let mut layer = Dropout::new(0.25, Seed::from_u64(77)).unwrap();
    let x = vec![1.0f32; 500];
    let mut y = vec![0.0f32; 500];
    layer.forward(Io::Out { x: &x, y: &mut y }, None).unwrap();
    layer.eval();
    let state = layer.state();
    assert_eq!(
        state,
        State {
            p: 0.25,
            seed: Seed::from_u64(77),
            offset: 500,
            training: false
        }
    );
    let mut resumed = Dropout::from_state(state).unwrap();
    assert!(!resumed.state().training);
    layer.train();
    resumed.train();
    let (mut a, mut b) = (vec![0.0f32; 500], vec![0.0f32; 500]);
    layer.forward(Io::Out { x: &x, y: &mut a }, None).unwrap();
    resumed.forward(Io::Out { x: &x, y: &mut b }, None).unwrap();
    assert_eq!(a, b);
    assert!(Dropout::from_state(State { p: 2.0, ..state }).is_err());
    #[cfg(feature = "serde")]
    {
        let json = serde_json::to_string(&state).unwrap();
        let back: State = serde_json::from_str(&json).unwrap();
        assert_eq!(back, state);
    }
}

/// A layer shared by threads hands out disjoint positions: every word of the stream is used
/// by exactly one call.
#[test]
#[cfg_attr(target_family = "wasm", ignore = "wasm32-wasip1 has no threads")]
fn a_shared_layer_hands_out_disjoint_positions() {
    let layer = Dropout::new(0.5, Seed::from_u64(3)).unwrap();
    let threads = if cfg!(miri) { 2 } else { 8 };
    let calls = if cfg!(miri) { 5 } else { 500 };
    let mut ranges: Vec<(u64, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let layer = &layer;
                s.spawn(move || {
                    (0..calls)
                        .map(|i| {
                            let n = 1 + (t * 7 + i) % 13;
                            let rec = layer.reserve(Op::Element, n).unwrap();
                            (rec.offset, rec.offset + n as u64)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    ranges.sort();
    for w in ranges.windows(2) {
        assert_eq!(w[0].1, w[1].0, "ranges are disjoint and leave no gap");
    }
    assert_eq!(ranges[0].0, 0);
    assert_eq!(ranges.last().unwrap().1, layer.offset());
}

/// A Gaussian record runs the stateless Gaussian calls at its position (forward, replay,
/// backward), is the identity in eval mode, refuses a mask, and advances the layer by its
/// elements; `p = 1` is refused when reserving.
#[test]
fn gaussian_records() {
    let layer = Dropout::new(0.3, Seed::from_u64(21)).unwrap();
    let n = 333;
    let x: Vec<f32> = data(n, 5);
    let gy: Vec<f32> = data(n, 6);
    let b = Backend::detect();
    layer.reserve(Op::Element, 7).unwrap();
    let rec = layer.reserve(Op::Gaussian, n).unwrap();
    assert_eq!((rec.offset, layer.offset()), (7, 7 + n as u64));
    let mut y = vec![0.0f32; n];
    rec.forward(Io::Out { x: &x, y: &mut y }, None).unwrap();
    let mut want = vec![0.0f32; n];
    b.gaussian_forward(
        0.3,
        rec.seed,
        7,
        Io::Out {
            x: &x,
            y: &mut want,
        },
    )
    .unwrap();
    assert_same(&y, &want, "Gaussian record forward");
    let mut g = gy.clone();
    rec.backward(Io::InPlace(&mut g), None).unwrap();
    let mut want_g = gy.clone();
    b.gaussian_backward(0.3, rec.seed, 7, Io::InPlace(&mut want_g))
        .unwrap();
    assert_same(&g, &want_g, "Gaussian record backward");
    // The next record continues the stream: different noise.
    let next = layer.reserve(Op::Gaussian, n).unwrap();
    let mut y2 = vec![0.0f32; n];
    next.forward(Io::Out { x: &x, y: &mut y2 }, None).unwrap();
    assert!(y.iter().zip(&y2).filter(|(a, b)| a != b).count() > n / 2);
    // A mask is refused, nothing written.
    let mut m = vec![0u64; mask_words(n)];
    let mut out = vec![5.0f32; n];
    let r = rec.forward(Io::Out { x: &x, y: &mut out }, Some(BitsMut::new(&mut m)));
    assert!(matches!(r, Err(Error::WrongOp { .. })), "{r:?}");
    let r = rec.backward(
        Io::Out {
            x: &gy,
            y: &mut out,
        },
        Some(Bits::new(&m)),
    );
    assert!(matches!(r, Err(Error::WrongOp { .. })), "{r:?}");
    assert!(out.iter().all(|&v| v == 5.0));
    // Eval: the identity.
    let eval = Record {
        training: false,
        ..rec
    };
    let mut e = vec![0.0f32; n];
    eval.forward(Io::Out { x: &x, y: &mut e }, None).unwrap();
    assert_same(&e, &x, "Gaussian eval");
    // p = 1 has no Gaussian dropout.
    let all = Dropout::new(1.0, Seed::from_u64(1)).unwrap();
    assert!(matches!(
        all.reserve(Op::Gaussian, 4),
        Err(Error::InvalidProbability {
            below_one: true,
            ..
        })
    ));
    assert_eq!(all.offset(), 0);
}
