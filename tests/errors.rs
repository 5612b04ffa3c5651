//! Every bad input returns the right `Error` and writes nothing.

use simd_dropout::{Backend, Dropout, Error, MaskRef, Seed};

const BAD_P: [f64; 6] = [
    f64::NAN,
    -0.0001,
    1.0001,
    f64::INFINITY,
    f64::NEG_INFINITY,
    -1.0,
];

#[test]
fn invalid_probability() {
    for b in Backend::available() {
        for p in BAD_P {
            let x = [1.0f32; 10];
            let mut y = [5.0f32; 10];
            let mut m = [7u64; 1];
            let s = Seed::new(1, 1);
            let is_bad = |r: Result<(), Error>| matches!(r, Err(Error::InvalidProbability { p: q }) if q.to_bits() == p.to_bits());
            assert!(is_bad(b.forward(p, s, 0, &x, &mut y, &mut m)));
            assert!(is_bad(b.forward_in_place(p, s, 0, &mut y, &mut m)));
            assert!(is_bad(b.forward_no_mask(p, s, 0, &x, &mut y)));
            assert!(is_bad(b.forward_in_place_no_mask(p, s, 0, &mut y)));
            assert!(is_bad(b.fill_mask(p, s, 0, 10, &mut m)));
            assert!(is_bad(b.apply_mask(p, &[1], &x, &mut y)));
            assert!(is_bad(b.apply_mask_in_place(p, &[1], &mut y)));
            assert_eq!(y, [5.0; 10]);
            assert_eq!(m, [7]);
            assert!(Dropout::new(p, s).is_err());
        }
    }
}

#[test]
fn length_mismatch() {
    for b in Backend::available() {
        let x = [1.0f32; 10];
        let mut y = [5.0f32; 9];
        let mut m = [7u64; 1];
        let want = Err(Error::LengthMismatch {
            expected: 10,
            found: 9,
        });
        let s = Seed::new(1, 1);
        assert_eq!(b.forward(0.5, s, 0, &x, &mut y, &mut m), want);
        assert_eq!(b.forward_no_mask(0.5, s, 0, &x, &mut y), want);
        assert_eq!(b.apply_mask(0.5, &[1], &x, &mut y), want);
        assert_eq!(y, [5.0; 9]);
        assert_eq!(m, [7]);
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
        let s = Seed::new(1, 1);
        assert_eq!(b.forward(0.5, s, 0, &x, &mut y, &mut m), want);
        assert_eq!(b.forward_in_place(0.5, s, 0, &mut y, &mut m), want);
        assert_eq!(b.fill_mask(0.5, s, 0, 65, &mut m), want);
        assert_eq!(b.apply_mask(0.5, &m, &x, &mut y), want);
        assert_eq!(b.apply_mask_in_place(0.5, &m, &mut y), want);
        assert_eq!(y, [5.0; 65]);
        assert_eq!(m, [7]);
    }
    assert!(MaskRef::new(&[0], 65).is_err());
    let mut words = [3u64; 1];
    assert!(simd_dropout::pack_bools(&[true; 65], &mut words).is_err());
    assert_eq!(words, [3]);
}

#[test]
fn layer_errors_write_nothing_and_do_not_advance() {
    let mut layer = Dropout::new(0.5, Seed::new(1, 1)).unwrap();
    let x = [1.0f32; 70];
    let mut y = [5.0f32; 69];
    let mut m = [7u64; 1];
    assert!(layer.forward(&x, &mut y, &mut m).is_err());
    assert!(layer.forward_no_mask(&x, &mut y).is_err());
    let mut y70 = [5.0f32; 70];
    assert!(layer.forward(&x, &mut y70, &mut m).is_err());
    assert!(layer.forward_in_place(&mut y70, &mut m).is_err());
    assert_eq!(layer.offset(), 0);
    assert_eq!(y70, [5.0; 70]);
    assert_eq!(m, [7]);

    let rec = layer.forward_no_mask(&x, &mut y70).unwrap();
    let mut g = [5.0f32; 69];
    assert!(rec.backward_recompute(&x, &mut g).is_err());
    assert!(rec.backward(&[0u64; 1], &x, &mut y70).is_err());
    assert!(rec.replay(&x[..69], &mut g).is_err());
    assert_eq!(g, [5.0; 69]);
}

#[test]
fn errors_display() {
    let e = Error::MaskTooShort {
        needed: 2,
        found: 1,
    };
    assert_eq!(e.to_string(), "mask buffer has 1 u64 words, needs 2");
    let e: Box<dyn std::error::Error> = Box::new(Error::InvalidProbability { p: 2.0 });
    assert!(e.to_string().contains("2"));
}

#[test]
fn every_error_equals_itself() {
    let all = [
        Error::InvalidProbability { p: f64::NAN },
        Error::LengthMismatch {
            expected: 1,
            found: 2,
        },
        Error::MaskTooShort {
            needed: 2,
            found: 1,
        },
        Error::ShapeMismatch {
            elements: 3,
            len: 4,
        },
        Error::UnsupportedMode,
    ];
    for (i, a) in all.iter().enumerate() {
        for (j, b) in all.iter().enumerate() {
            assert_eq!(a == b, i == j, "{a:?} vs {b:?}");
        }
        assert!(!a.to_string().is_empty());
    }
}
