//! Every bad input returns the right `Error` and writes nothing (outputs, masks, gradients,
//! and a layer's offset all stay as they were).

use simd_dropout::{
    Backend, Bits, BitsMut, Dropout, Error, Io, MaskRef, Op, Record, Seed, Shape, Strided, View,
};

const BAD_P: [f64; 6] = [
    f64::NAN,
    -0.0001,
    1.0001,
    f64::INFINITY,
    f64::NEG_INFINITY,
    -1.0,
];

/// Runs every operation of a backend on 10 elements with `p`, `y` and `m`; returns the
/// results.
fn every_op(b: Backend, p: f64, y: &mut [f32], m: &mut [u64]) -> Vec<Result<(), Error>> {
    let x = [1.0f32; 10];
    let s = Seed::from_u64(1);
    let shape = Shape::samples(2, 5);
    let view = View::contiguous(&[2, 5]).unwrap();
    let (bias, res, mut gb) = ([0.0f32; 5], [0.0f32; 10], [3.0f32; 5]);
    vec![
        b.forward(
            p,
            s,
            0,
            Io::Out { x: &x, y: &mut *y },
            Some(BitsMut::new(&mut *m)),
        ),
        b.forward(p, s, 0, Io::InPlace(&mut *y), None),
        b.backward(p, s, 0, Io::Out { x: &x, y: &mut *y }, Some(Bits::new(&*m))),
        b.backward(p, s, 0, Io::InPlace(&mut *y), None),
        b.broadcast_forward(
            shape,
            p,
            s,
            0,
            Io::Out { x: &x, y: &mut *y },
            Some(BitsMut::new(&mut *m)),
        ),
        b.broadcast_backward(shape, p, s, 0, Io::InPlace(&mut *y), None),
        b.alpha_forward(
            p,
            s,
            0,
            Io::Out { x: &x, y: &mut *y },
            Some(BitsMut::new(&mut *m)),
        ),
        b.alpha_backward(p, s, 0, Io::InPlace(&mut *y), None),
        b.fused_forward(
            &bias,
            &res,
            p,
            s,
            0,
            Io::Out { x: &x, y: &mut *y },
            Some(BitsMut::new(&mut *m)),
        ),
        b.fused_backward(&mut gb, p, s, 0, Io::Out { x: &x, y: &mut *y }, None),
        b.strided_forward(
            p,
            s,
            0,
            Strided::InPlace { xy: &mut *y, view },
            Some(BitsMut::new(&mut *m)),
        ),
        b.strided_backward(p, s, 0, Strided::InPlace { xy: &mut *y, view }, None),
        b.fill_mask(p, s, 0, 10, BitsMut::new(&mut *m)),
        b.expand_mask(p, Bits::new(&[1]), &mut *y),
    ]
}

#[test]
fn invalid_probability() {
    for b in Backend::available() {
        for p in BAD_P {
            let mut y = [5.0f32; 10];
            let mut m = [7u64; 1];
            for (i, r) in every_op(b, p, &mut y, &mut m).into_iter().enumerate() {
                assert!(
                    matches!(r, Err(Error::InvalidProbability { p: q, .. }) if q.to_bits() == p.to_bits()),
                    "op {i}: {r:?}"
                );
            }
            assert_eq!(y, [5.0; 10]);
            assert_eq!(m, [7]);
            assert!(Dropout::new(p, Seed::from_u64(1)).is_err());
        }
    }
}

#[test]
fn alpha_needs_p_below_one() {
    let mut y = [5.0f32; 4];
    let r = Backend::detect().alpha_forward(1.0, Seed::default(), 0, Io::InPlace(&mut y), None);
    assert_eq!(
        r,
        Err(Error::InvalidProbability {
            p: 1.0,
            below_one: true
        })
    );
    assert_eq!(
        r.unwrap_err().to_string(),
        "p = 1.0: the drop probability must be a number in [0, 1) for alpha and Gaussian dropout"
    );
    assert_eq!(y, [5.0; 4]);
    let layer = Dropout::new(1.0, Seed::default()).unwrap();
    assert!(layer.reserve(Op::Alpha, 4).is_err());
    assert_eq!(layer.offset(), 0);
}

#[test]
fn length_mismatch() {
    for b in Backend::available() {
        let x = [1.0f32; 10];
        let mut y = [5.0f32; 9];
        let s = Seed::from_u64(1);
        let want = Err(Error::LengthMismatch {
            arg: "y",
            expected: 10,
            found: 9,
        });
        assert_eq!(
            b.forward(0.5, s, 0, Io::Out { x: &x, y: &mut y }, None),
            want
        );
        assert_eq!(
            b.backward(0.5, s, 0, Io::Out { x: &x, y: &mut y }, None),
            want
        );
        let shape = Shape::samples(2, 5);
        assert_eq!(
            b.broadcast_forward(shape, 0.5, s, 0, Io::Out { x: &x, y: &mut y }, None),
            want
        );
        assert_eq!(
            b.alpha_forward(0.5, s, 0, Io::Out { x: &x, y: &mut y }, None),
            want
        );
        let res9 = [0.0f32; 9];
        let r = b.fused_forward(
            &[0.0; 5],
            &res9,
            0.5,
            s,
            0,
            Io::InPlace(&mut [0.0f32; 10]),
            None,
        );
        assert_eq!(
            r,
            Err(Error::LengthMismatch {
                arg: "residual",
                expected: 10,
                found: 9
            })
        );
        assert_eq!(y, [5.0; 9]);
    }
}

#[test]
fn mask_too_short() {
    for b in Backend::available() {
        let x = [1.0f32; 65];
        let mut y = [5.0f32; 65];
        let mut m = [7u64; 1];
        let want = Err(Error::MaskTooShort {
            needed: 2,
            found: 1,
        });
        let s = Seed::from_u64(1);
        assert_eq!(
            b.forward(
                0.5,
                s,
                0,
                Io::Out { x: &x, y: &mut y },
                Some(BitsMut::new(&mut m))
            ),
            want
        );
        assert_eq!(b.fill_mask(0.5, s, 0, 65, BitsMut::new(&mut m)), want);
        assert_eq!(
            b.backward(0.5, s, 0, Io::InPlace(&mut y), Some(Bits::new(&m))),
            want
        );
        // A start bit counts: 60 elements from bit 10 need two words.
        assert_eq!(
            b.forward(
                0.5,
                s,
                0,
                Io::InPlace(&mut y[..60]),
                Some(BitsMut::at(&mut m, 10))
            ),
            want
        );
        // A start so large that the bit count overflows.
        let r = b.backward(
            0.5,
            s,
            0,
            Io::InPlace(&mut y),
            Some(Bits::at(&m, usize::MAX)),
        );
        assert_eq!(
            r,
            Err(Error::MaskTooShort {
                needed: usize::MAX,
                found: 1
            })
        );
        assert_eq!(y, [5.0; 65]);
        assert_eq!(m, [7]);
    }
    assert!(MaskRef::new(&[0], 65).is_err());
    let mut words = [3u64; 1];
    assert!(simd_dropout::pack_bools(&[true; 65], BitsMut::new(&mut words)).is_err());
    assert_eq!(words, [3]);
}

/// An empty call reads and writes no bits, wherever its mask starts (found by fuzzing).
#[test]
fn empty_calls_with_a_mask_start_past_the_buffer() {
    let mut m = [7u64; 1];
    let mut empty: [f32; 0] = [];
    for b in Backend::available() {
        for at in [64, 65, 1000, usize::MAX] {
            let s = Seed::default();
            b.forward(
                0.5,
                s,
                0,
                Io::InPlace(&mut empty),
                Some(BitsMut::at(&mut m, at)),
            )
            .unwrap();
            b.backward(0.5, s, 0, Io::InPlace(&mut empty), Some(Bits::at(&m, at)))
                .unwrap();
            b.fill_mask(0.5, s, 0, 0, BitsMut::at(&mut m, at)).unwrap();
            b.expand_mask(0.5, Bits::at(&m, at), &mut empty).unwrap();
            let view = View::contiguous(&[0, 3]).unwrap();
            b.strided_forward(
                0.5,
                s,
                0,
                Strided::InPlace {
                    xy: &mut empty,
                    view,
                },
                Some(BitsMut::at(&mut m, at)),
            )
            .unwrap();
            let shape = Shape::new(0, 3, 3);
            b.broadcast_forward(
                shape,
                0.5,
                s,
                0,
                Io::InPlace(&mut empty),
                Some(BitsMut::at(&mut m, at)),
            )
            .unwrap();
            b.alpha_forward(
                0.5,
                s,
                0,
                Io::InPlace(&mut empty),
                Some(BitsMut::at(&mut m, at)),
            )
            .unwrap();
            b.fused_forward(
                &[],
                &[],
                0.5,
                s,
                0,
                Io::InPlace(&mut empty),
                Some(BitsMut::at(&mut m, at)),
            )
            .unwrap();
        }
    }
    assert_eq!(m, [7]);
}

#[test]
fn shapes_and_rows() {
    let b = Backend::detect();
    let s = Seed::default();
    let mut y = [5.0f32; 10];
    let mut m = [7u64; 1];
    for (shape, elements) in [
        (Shape::new(3, 3, 3), Some(27)),
        (Shape::new(usize::MAX, 2, 1), None),
        (Shape::channels(usize::MAX, 3, 1), None),
    ] {
        let want = Err(Error::ShapeMismatch {
            arg: "x",
            elements,
            len: 10,
        });
        let io = Io::InPlace(&mut y);
        assert_eq!(
            b.broadcast_forward(shape, 0.5, s, 0, io, Some(BitsMut::new(&mut m))),
            want
        );
        assert_eq!(
            b.broadcast_backward(shape, 0.5, s, 0, Io::InPlace(&mut y), None),
            want
        );
    }
    // A bias that does not divide the elements names itself.
    let r = b.fused_forward(
        &[0.0f32; 3],
        &[0.0; 10],
        0.5,
        s,
        0,
        Io::InPlace(&mut y),
        None,
    );
    assert_eq!(
        r,
        Err(Error::RowMismatch {
            arg: "bias",
            cols: 3,
            len: 10
        })
    );
    assert_eq!(
        r.unwrap_err().to_string(),
        "`bias` has length 3, which does not divide the 10 elements into rows"
    );
    let mut gb = [1.0f32; 4];
    let r = b.fused_backward(&mut gb, 0.5, s, 0, Io::InPlace(&mut y), None);
    assert_eq!(
        r,
        Err(Error::RowMismatch {
            arg: "g_bias",
            cols: 4,
            len: 10
        })
    );
    assert_eq!((y, m, gb), ([5.0; 10], [7], [1.0; 4]));
}

#[test]
fn bad_views() {
    let b = Backend::detect();
    let s = Seed::default();
    let x = [1.0f32; 12];
    let mut y = [5.0f32; 12];
    let fits = View::contiguous(&[3, 4]).unwrap();
    let cases = [
        // Outside the buffer: 13 elements reached in a buffer of 12.
        View::strided(&[3, 4], &[4, 1], 1).unwrap(),
        // Negative strides reaching below index 0.
        View::strided(&[3, 4], &[-4, 1], 4).unwrap(),
        // Overlapping output strides.
        View::strided(&[3, 4], &[2, 1], 0).unwrap(),
        View::strided(&[3, 4], &[0, 1], 0).unwrap(),
    ];
    for (i, bad) in cases.into_iter().enumerate() {
        let io = Strided::Out {
            x: &x,
            x_view: fits,
            y: &mut y,
            y_view: bad,
        };
        let r = b.strided_forward(0.5, s, 0, io, None);
        assert!(
            matches!(r, Err(Error::InvalidView { .. })),
            "case {i}: {r:?}"
        );
        let r = b.strided_backward(
            0.5,
            s,
            0,
            Strided::InPlace {
                xy: &mut y,
                view: bad,
            },
            None,
        );
        assert!(
            matches!(r, Err(Error::InvalidView { .. })),
            "case {i}: {r:?}"
        );
    }
    // Input and output at different positions.
    let moved = View::contiguous(&[3, 4])
        .unwrap()
        .within(&[1, 0], &[4, 4])
        .unwrap();
    let io = Strided::Out {
        x: &x,
        x_view: fits,
        y: &mut y,
        y_view: moved,
    };
    assert!(matches!(
        b.strided_forward(0.5, s, 0, io, None),
        Err(Error::InvalidView { .. })
    ));
    assert_eq!(y, [5.0; 12]);
    // Construction errors.
    assert!(View::contiguous(&[1; 7]).is_err());
    assert!(View::strided(&[2, 2], &[1], 0).is_err());
    assert!(View::contiguous(&[usize::MAX, 2]).is_err());
    assert!(fits.within(&[1, 0], &[3, 4]).is_err());
    assert!(fits.within(&[0, 0], &[3]).is_err());
    assert!(fits.within(&[usize::MAX, 0], &[3, 4]).is_err());
    assert!(fits.within(&[0, 0], &[usize::MAX, 4]).is_err());
}

#[test]
fn layer_errors_write_nothing_and_do_not_advance() {
    let layer = Dropout::new(0.5, Seed::from_u64(1)).unwrap();
    let x = [1.0f32; 70];
    let mut y = [5.0f32; 69];
    let mut m = [7u64; 1];
    assert!(layer.forward(Io::Out { x: &x, y: &mut y }, None).is_err());
    let mut y70 = [5.0f32; 70];
    assert!(
        layer
            .forward(Io::Out { x: &x, y: &mut y70 }, Some(BitsMut::new(&mut m)))
            .is_err()
    );
    assert!(
        layer
            .reserve(Op::Broadcast(Shape::new(3, 3, 3)), 70)
            .is_err()
    );
    assert!(layer.reserve(Op::Fused { cols: 3 }, 70).is_err());
    assert_eq!(layer.offset(), 0);
    assert_eq!(y70, [5.0; 70]);
    assert_eq!(m, [7]);

    let rec = layer.reserve(Op::Element, 70).unwrap();
    let mut g = [5.0f32; 69];
    assert!(rec.backward(Io::Out { x: &x, y: &mut g }, None).is_err());
    assert!(rec.backward(Io::InPlace(&mut g), None).is_err());
    assert!(
        rec.forward(
            Io::Out {
                x: &x[..69],
                y: &mut g
            },
            None
        )
        .is_err()
    );
    assert_eq!(g, [5.0; 69]);
}

/// A record runs only the operations of its kind of call (misuse is an error, never a
/// silently different result).
#[test]
fn records_refuse_other_operations() {
    let layer = Dropout::new(0.5, Seed::from_u64(1)).unwrap();
    let el = layer.reserve(Op::Element, 4).unwrap();
    let alpha = layer.reserve(Op::Alpha, 4).unwrap();
    let fused = layer.reserve(Op::Fused { cols: 2 }, 4).unwrap();
    let mut g = [1.0f32; 4];
    let mut gb = [9.0f32; 2];
    for rec in [el, alpha] {
        let r = rec.fused_backward(&mut gb, Io::InPlace(&mut g), None);
        assert!(matches!(r, Err(Error::WrongOp { .. })), "{r:?}");
        let r = rec.fused_forward(&[0.0; 2], &[0.0; 4], Io::InPlace(&mut g), None);
        assert!(matches!(r, Err(Error::WrongOp { .. })), "{r:?}");
    }
    assert!(matches!(
        fused.forward(Io::InPlace(&mut g), None),
        Err(Error::WrongOp { .. })
    ));
    assert!(matches!(
        fused.backward(Io::InPlace(&mut g), None),
        Err(Error::WrongOp { .. })
    ));
    // A g_bias of the wrong length.
    let r = fused.fused_backward(&mut [0.0f32; 3], Io::InPlace(&mut g), None);
    assert_eq!(
        r,
        Err(Error::LengthMismatch {
            arg: "g_bias",
            expected: 2,
            found: 3
        })
    );
    let view = View::contiguous(&[4]).unwrap();
    assert!(matches!(
        alpha.strided_forward(Strided::InPlace { xy: &mut g, view }, None),
        Err(Error::WrongOp { .. })
    ));
    assert_eq!((g, gb), ([1.0; 4], [9.0; 2]));
}

#[test]
fn messages_name_the_argument_and_read_well() {
    let cases = [
        (
            Error::InvalidProbability {
                p: f64::MAX,
                below_one: false,
            },
            "p = 1.7976931348623157e308: the drop probability must be a number in [0, 1]",
        ),
        (
            Error::LengthMismatch {
                arg: "y",
                expected: 1,
                found: 2,
            },
            "`y` has length 2, but the call needs length 1",
        ),
        (
            Error::MaskTooShort {
                needed: 2,
                found: 1,
            },
            "mask has 1 u64 words, the call needs 2",
        ),
        (
            Error::ShapeMismatch {
                arg: "x",
                elements: None,
                len: 0,
            },
            "the shape's element count overflows usize (`x` has length 0)",
        ),
        (
            Error::ShapeMismatch {
                arg: "x",
                elements: Some(27),
                len: 10,
            },
            "the shape describes 27 elements, but `x` has length 10",
        ),
    ];
    for (e, text) in cases {
        assert_eq!(e.to_string(), text);
    }
    let e: Box<dyn std::error::Error> = Box::new(Error::InvalidView { reason: "r" });
    assert_eq!(e.to_string(), "invalid strided view: r");
}

#[test]
fn every_error_equals_itself() {
    let all = [
        Error::InvalidProbability {
            p: f64::NAN,
            below_one: false,
        },
        Error::LengthMismatch {
            arg: "y",
            expected: 1,
            found: 2,
        },
        Error::MaskTooShort {
            needed: 2,
            found: 1,
        },
        Error::ShapeMismatch {
            arg: "x",
            elements: Some(3),
            len: 4,
        },
        Error::RowMismatch {
            arg: "bias",
            cols: 3,
            len: 4,
        },
        Error::InvalidView { reason: "r" },
        Error::WrongOp {
            record: "a",
            asked: "b",
        },
    ];
    for (i, a) in all.iter().enumerate() {
        for (j, b) in all.iter().enumerate() {
            assert_eq!(a == b, i == j, "{a:?} vs {b:?}");
        }
        assert!(!a.to_string().is_empty());
    }
}

/// A record's fields are public: one written by hand is checked like one from `reserve`, in
/// training and in eval (an eval call must not skip the checks, #15 F1).
#[test]
fn hand_written_records_are_checked_in_every_mode() {
    let layer = Dropout::new(0.5, Seed::from_u64(1)).unwrap();
    let good = layer.reserve(Op::Element, 10).unwrap();
    let view = View::contiguous(&[10]).unwrap();
    for training in [true, false] {
        let bad = [
            Record {
                p: f64::NAN,
                training,
                ..good
            },
            Record {
                op: Op::Broadcast(Shape::new(3, 3, 3)),
                training,
                ..good
            },
            Record {
                op: Op::Alpha,
                p: 1.0,
                training,
                ..good
            },
        ];
        for rec in bad {
            let mut y = [5.0f32; 10];
            let x = [1.0f32; 10];
            assert!(
                rec.forward(Io::Out { x: &x, y: &mut y }, None).is_err(),
                "{rec:?}"
            );
            assert!(rec.backward(Io::InPlace(&mut y), None).is_err(), "{rec:?}");
            assert_eq!(y, [5.0; 10]);
        }
        let nan = Record {
            p: f64::NAN,
            training,
            ..good
        };
        let mut y = [5.0f32; 10];
        assert!(
            nan.strided_forward(Strided::InPlace { xy: &mut y, view }, None)
                .is_err()
        );
        let fused = Record {
            op: Op::Fused { cols: 3 },
            training,
            ..good
        };
        assert!(
            fused
                .fused_forward(&[0.0f32; 3], &[0.0; 10], Io::InPlace(&mut y), None)
                .is_err()
        );
        assert_eq!(y, [5.0; 10]);
    }
    // Eval: a mask too short for a strided backward is an error too.
    let eval = Record {
        training: false,
        ..good
    };
    let mut y = [5.0f32; 10];
    let short: [u64; 0] = [];
    let r = eval.strided_backward(
        Strided::InPlace { xy: &mut y, view },
        Some(Bits::new(&short)),
    );
    assert!(matches!(r, Err(Error::MaskTooShort { .. })));
}
