//! The contract checked from first principles: masks and outputs equal the contract's formula
//! computed with `rand_pcg::Pcg32` (`new`, `advance`, `next_u32`) on every backend.

mod common;

use common::*;
use half::{bf16, f16};
use simd_dropout::{Backend, Bits, BitsMut, Io, Seed, mask_words};

fn known_answers<T: FromBits>() {
    let seeds = [
        Seed::new(42, 54),
        Seed::new(0xcafe_f00d_d15e_a5e5, 0x0a02_bdbf_7bb3_c0a7),
        Seed::new(1, u64::MAX),
        Seed::from_u64(7),
    ];
    let offsets = [0u64, 7, 64, 12_345_678_901, u64::MAX - 37, u64::MAX];
    for b in Backend::available() {
        for seed in seeds {
            for offset in offsets {
                for p in PS {
                    for n in [0usize, 1, 63, 64, 65, 150, 300] {
                        let x: Vec<T> = data(n, offset ^ n as u64);
                        let keep = spec_keep(p, seed, offset, n);
                        let want = spec_forward(&x, &keep, p);
                        let mut y = vec![T::ZERO; n];
                        let mut m = vec![0u64; mask_words(n)];
                        let io = Io::Out { x: &x, y: &mut y };
                        b.forward(p, seed, offset, io, Some(BitsMut::new(&mut m)))
                            .unwrap();
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
fn f64_known_answers() {
    known_answers::<f64>();
}

#[test]
fn f16_known_answers() {
    known_answers::<f16>();
}

#[test]
fn bf16_known_answers() {
    known_answers::<bf16>();
}

/// The seed derivation of the contract, computed here independently.
#[test]
fn seed_from_u64_is_splitmix64() {
    fn splitmix(s: &mut u64) -> u64 {
        *s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    // Vigna's reference output for SplitMix64 seeded with 0.
    assert_eq!(Seed::from_u64(0).state, 0xe220_a839_7b1d_cdaf);
    for k in [0u64, 1, 42, u64::MAX, 0x0123_4567_89ab_cdef] {
        let mut s = k;
        let (state, stream) = (splitmix(&mut s), splitmix(&mut s));
        assert_eq!(Seed::from_u64(k), Seed::new(state, stream));
        assert_eq!(Seed::from(k), Seed::from_u64(k));
    }
}

#[test]
fn p_zero_keeps_all_and_p_one_drops_all() {
    let x: Vec<f32> = (0..200).map(|i| i as f32 - 50.0).collect();
    for b in Backend::available() {
        let mut y = vec![1.0f32; 200];
        let mut m = vec![0u64; 4];
        let s = Seed::new(1, 2);
        b.forward(
            0.0,
            s,
            3,
            Io::Out { x: &x, y: &mut y },
            Some(BitsMut::new(&mut m)),
        )
        .unwrap();
        assert_same(&y, &x, "p = 0");
        assert_eq!(m, [!0, !0, !0, (1 << 8) - 1]);
        b.forward(
            1.0,
            s,
            3,
            Io::Out { x: &x, y: &mut y },
            Some(BitsMut::new(&mut m)),
        )
        .unwrap();
        assert!(y.iter().all(|v| v.to_bits() == 0), "p = 1 gives +0.0");
        assert_eq!(m, [0, 0, 0, 0]);
    }
}

#[test]
fn p_one_drops_all_whatever_the_mask_says() {
    let x = [-1.0f32, 2.0, f32::INFINITY, f32::NAN];
    for b in Backend::available() {
        let mut y = [9.0f32; 4];
        let io = Io::Out { x: &x, y: &mut y };
        b.backward(1.0, Seed::default(), 0, io, Some(Bits::new(&[0b1111])))
            .unwrap();
        assert!(y.iter().all(|v| v.to_bits() == 0), "{}: {y:?}", b.name());
    }
}

#[test]
fn dropped_nan_and_infinity_become_positive_zero() {
    let x = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, -1.0];
    let mut y = [0.0f32; 5];
    for b in Backend::available() {
        b.forward(1.0, Seed::new(0, 0), 0, Io::Out { x: &x, y: &mut y }, None)
            .unwrap();
        assert!(y.iter().all(|v| v.to_bits() == 0));
        // Kept: NaN stays NaN, infinities scale to infinities.
        b.forward(0.0, Seed::new(0, 0), 0, Io::Out { x: &x, y: &mut y }, None)
            .unwrap();
        assert!(y[0].is_nan());
        assert_eq!(&y[1..], &x[1..]);
    }
}

#[test]
fn threshold_and_scale_follow_the_contract_rounding() {
    // p = 2^-33: p * 2^32 = 0.5 rounds away from zero to t = 1.
    let half_word = 1.0 / 8_589_934_592.0;
    let keep = spec_keep(half_word, Seed::new(3, 3), 0, 1000);
    let mut m = vec![0u64; mask_words(1000)];
    Backend::detect()
        .fill_mask(half_word, Seed::new(3, 3), 0, 1000, BitsMut::new(&mut m))
        .unwrap();
    assert_eq!(m, spec_mask(&keep));
    // The scale is computed in f64: rounded once to f32 for f32, exact for f64.
    let (mut y32, mut y64) = ([0.0f32; 1], [0.0f64; 1]);
    let one = Some(Bits::new(&[1]));
    simd_dropout::backward(
        0.1,
        Seed::default(),
        0,
        Io::Out {
            x: &[1.0f32],
            y: &mut y32,
        },
        one,
    )
    .unwrap();
    simd_dropout::backward(
        0.1,
        Seed::default(),
        0,
        Io::Out {
            x: &[1.0f64],
            y: &mut y64,
        },
        one,
    )
    .unwrap();
    assert_eq!(y32[0], (1.0f64 / 0.9) as f32);
    assert_eq!(y64[0], 1.0f64 / 0.9);
}

#[test]
fn offset_wraps_modulo_two_to_the_64() {
    // A call that starts 10 words before the end of the period continues at word 0.
    let seed = Seed::new(11, 22);
    let b = Backend::detect();
    let mut whole = vec![0u64; 1];
    b.fill_mask(0.5, seed, u64::MAX - 9, 64, BitsMut::new(&mut whole))
        .unwrap();
    let mut tail = vec![0u64; 1];
    b.fill_mask(0.5, seed, 0, 54, BitsMut::new(&mut tail))
        .unwrap();
    assert_eq!(whole[0] >> 10, tail[0]);
}

#[test]
fn a_call_equals_its_pieces_at_any_split_and_mask_position() {
    // Any chunk can be generated on its own from its stream position, into its bits of one
    // shared mask.
    let n = 1000;
    let x: Vec<f32> = data(n, 1);
    let seed = Seed::new(8, 9);
    let mut whole = vec![0.0f32; n];
    let mut whole_m = vec![0u64; mask_words(n)];
    let io = Io::Out {
        x: &x,
        y: &mut whole,
    };
    simd_dropout::forward(0.3, seed, 500, io, Some(BitsMut::new(&mut whole_m))).unwrap();
    for split in [1usize, 63, 64, 65, 500, 999] {
        let mut parts = vec![0.0f32; n];
        let mut m = vec![0u64; mask_words(n)];
        let (a, b) = parts.split_at_mut(split);
        // The second piece first: the first must not disturb its bits.
        let io = Io::Out {
            x: &x[split..],
            y: b,
        };
        simd_dropout::forward(
            0.3,
            seed,
            500 + split as u64,
            io,
            Some(BitsMut::at(&mut m, split)),
        )
        .unwrap();
        let io = Io::Out {
            x: &x[..split],
            y: a,
        };
        simd_dropout::forward(0.3, seed, 500, io, Some(BitsMut::new(&mut m))).unwrap();
        assert_same(&parts, &whole, &format!("split {split}"));
        assert_eq!(m, whole_m, "mask of split {split}");
    }
}
