//! DropBlock (contract section 7) against the rule computed independently from the
//! contract's text with `rand_pcg` (tests/common), on every backend and element type, serial
//! and parallel, through every cell; its statistics against torchvision's `gamma`; its errors.

mod common;

use common::*;
use core::mem::MaybeUninit;
use half::{bf16, f16};
use simd_dropout::{Backend, Bits, BitsMut, Blocks, Dropout, Error, Io, Op, Seed, mask_words};

/// Every backend, and with rayon the parallel form of each (the scalar reference is safe
/// code: not under miri, which checks the kernels).
fn backends() -> Vec<Backend> {
    let serial = Backend::available().filter(|b| !(cfg!(miri) && b.name() == "scalar"));
    #[cfg(feature = "rayon")]
    let serial = serial.chain(Backend::available().map(|b| b.parallel()));
    serial.collect()
}

/// A geometry in both forms: the crate's and the oracle's.
fn nchw(n: usize, c: usize, h: usize, w: usize, bs: usize) -> (Blocks, SpecBlocks) {
    let spec = SpecBlocks {
        maps: n * c,
        d: 1,
        h,
        w,
        block_size: bs,
        three_d: false,
    };
    (Blocks::nchw(n, c, h, w, bs), spec)
}

fn ncdhw(n: usize, c: usize, d: usize, h: usize, w: usize, bs: usize) -> (Blocks, SpecBlocks) {
    let spec = SpecBlocks {
        maps: n * c,
        d,
        h,
        w,
        block_size: bs,
        three_d: true,
    };
    (Blocks::ncdhw(n, c, d, h, w, bs), spec)
}

/// A channels-last geometry: the oracle's NCHW / NCDHW one, and for each element of the
/// call (NHWC / NDHWC order) the index of the same element in channels-first order.
fn channels_last(n: usize, c: usize, d: usize, h: usize, w: usize, bs: usize) -> Case {
    let (blocks, spec) = match d {
        0 => (Blocks::nhwc(n, h, w, c, bs), nchw(n, c, h, w, bs).1),
        _ => (Blocks::ndhwc(n, d, h, w, c, bs), ncdhw(n, c, d, h, w, bs).1),
    };
    let order = channels_first_index(n, c, d.max(1), h, w);
    (blocks, spec, order)
}

/// The crate's geometry, the oracle's, and where each element of the call is in the oracle's
/// (channels-first) order.
type Case = (Blocks, SpecBlocks, Vec<usize>);

fn geometries() -> Vec<Case> {
    let first = |(b, s): (Blocks, SpecBlocks)| (b, s, (0..s.elements()).collect());
    if cfg!(miri) {
        return vec![
            first(nchw(1, 2, 5, 70, 3)),
            first(ncdhw(1, 1, 3, 4, 5, 2)),
            channels_last(1, 3, 0, 4, 5, 2),
        ];
    }
    let mut cases: Vec<Case> = vec![
        nchw(2, 3, 10, 10, 3),
        nchw(1, 1, 4, 9, 7),    // the block clipped to the map
        nchw(3, 2, 7, 130, 4),  // rows of three words, an even block
        nchw(1, 2, 1, 1, 1),    // one element per map
        nchw(2, 1, 5, 5, 1),    // blocks of one element
        nchw(0, 3, 4, 4, 2),    // empty
        nchw(2, 2, 300, 9, 2),  // several bands per map
        nchw(1, 1, 3, 200, 64), // a block as wide as a word, clipped to 3
        nchw(1, 1, 70, 70, 66), // a block wider than a word
        ncdhw(2, 2, 5, 6, 7, 3),
        ncdhw(1, 1, 3, 3, 3, 5),
        ncdhw(1, 2, 9, 4, 70, 2),
        nchw(2, 16, 64, 64, 7), // over the parallel split
        // Even blocks on rows of three or more words, where a corner row has a word fewer
        // than an element row (these panicked in 0.2).
        nchw(1, 3, 33, 129, 2),
        nchw(1, 1, 65, 129, 2),
        nchw(1, 1, 33, 257, 2),
        nchw(1, 1, 40, 257, 2),
        nchw(1, 1, 64, 257, 4),
        nchw(1, 1, 65, 257, 2),
        nchw(2, 1, 9, 193, 66),
        ncdhw(1, 2, 3, 17, 129, 2),
        // Rows wider than one band's buffer (8192 columns): tiles that carry the last seed
        // column into the next; blocks across a tile edge, and wider than a word.
        nchw(1, 1, 3, 9000, 3),
        nchw(1, 2, 2, 8193, 2),
        ncdhw(1, 1, 2, 3, 8200, 2),
    ]
    .into_iter()
    .map(first)
    .collect();
    if !cfg!(debug_assertions) {
        // A block wider than a word across tile edges (a million elements: release only).
        cases.push(first(nchw(1, 1, 70, 16_500, 66)));
    }
    cases.extend([
        channels_last(2, 3, 0, 10, 10, 3),
        channels_last(3, 2, 0, 7, 130, 4), // rows of three words
        channels_last(2, 5, 0, 300, 9, 2), // several bands per map
        channels_last(1, 64, 0, 14, 14, 7),
        channels_last(2, 2, 5, 6, 7, 3),
        channels_last(0, 3, 0, 4, 4, 2),
        channels_last(2, 16, 0, 64, 64, 7), // over the parallel split
        channels_last(1, 3, 0, 33, 129, 2), // an even block on rows of three words
        channels_last(1, 2, 0, 3, 9000, 3), // rows wider than a band
    ]);
    cases
}

fn block_case<T: FromBits>((blocks, spec, order): &Case, p: f64, seed: Seed, offset: u64) {
    let (blocks, n) = (*blocks, spec.elements());
    let x: Vec<T> = data(n, 3);
    let gy: Vec<T> = data(n, 4);
    let (keep, scale) = spec_block(*spec, p, seed, offset);
    let keep: Vec<bool> = order.iter().map(|&i| keep[i]).collect();
    let want = spec_apply(&x, &keep, scale);
    let want_g = spec_apply(&gy, &keep, scale);
    let want_mask = spec_mask(&keep);
    for b in backends() {
        let what = format!("{} {} {blocks:?} p={p} offset={offset}", b.name(), T::NAME);
        // Forward with a mask at bit 5, out of place.
        let mut y = vec![T::ZERO; n];
        let mut m = vec![!0u64; mask_words(n + 5)];
        b.block_forward(
            blocks,
            p,
            seed,
            offset,
            Io::Out { x: &x, y: &mut y },
            Some(BitsMut::at(&mut m, 5)),
        )
        .unwrap();
        assert_same(&y, &want, &format!("forward {what}"));
        for (i, &k) in keep.iter().enumerate() {
            assert_eq!(bit(&m, i + 5), k, "mask bit {i} {what}");
        }
        assert_eq!(m[0] & 0x1f, 0x1f, "bits before the start {what}");
        // Without a mask, in place.
        let mut xy = x.clone();
        b.block_forward(blocks, p, seed, offset, Io::InPlace(&mut xy), None)
            .unwrap();
        assert_same(&xy, &want, &format!("forward in place {what}"));
        // Without a mask, into uninitialized storage.
        let mut u = vec![MaybeUninit::<T>::uninit(); n];
        b.block_forward(
            blocks,
            p,
            seed,
            offset,
            Io::Uninit { x: &x, y: &mut u },
            None,
        )
        .unwrap();
        // SAFETY: an `Ok` call initialized every element.
        let u: Vec<T> = u.into_iter().map(|v| unsafe { v.assume_init() }).collect();
        assert_same(&u, &want, &format!("forward uninit {what}"));
        // Backward from the mask and by recompute.
        let mut g = vec![T::ZERO; n];
        b.block_backward(
            blocks,
            p,
            seed,
            offset,
            Io::Out { x: &gy, y: &mut g },
            Some(Bits::at(&m, 5)),
        )
        .unwrap();
        assert_same(&g, &want_g, &format!("backward {what}"));
        let mut g2 = gy.clone();
        b.block_backward(blocks, p, seed, offset, Io::InPlace(&mut g2), None)
            .unwrap();
        assert_same(&g2, &want_g, &format!("backward recompute {what}"));
    }
    let mut m0 = vec![0u64; mask_words(n)];
    Backend::detect()
        .block_forward(
            blocks,
            p,
            seed,
            offset,
            Io::InPlace(&mut x.clone()),
            Some(BitsMut::new(&mut m0)),
        )
        .unwrap();
    assert_eq!(m0, want_mask);
}

#[test]
fn block_matches_the_contract() {
    let ps: &[f64] = if cfg!(miri) {
        &[0.0, 0.3]
    } else {
        &[0.0, 0.1, 0.5, 1.0]
    };
    for case in geometries() {
        for (i, &p) in ps.iter().enumerate() {
            let (seed, offset) = (SEEDS[i % 3], OFFSETS[i % 4]);
            block_case::<f32>(&case, p, seed, offset);
            block_case::<f64>(&case, p, seed, offset);
            block_case::<bf16>(&case, p, seed, offset);
            if !(cfg!(miri) && cfg!(target_feature = "f16c")) {
                block_case::<f16>(&case, p, seed, offset);
            }
        }
    }
}

/// The dropped fraction matches what torchvision's `gamma` gives: with `g` the seed
/// probability, element `(u, v)` survives with probability `(1 - g)^(cu * cv)`, where `cu`
/// and `cv` count the corners whose blocks cover its row and column. Also shows that
/// `gamma` makes the dropped fraction about `p` (its design), reported for the record.
#[test]
#[cfg_attr(miri, ignore = "statistics need large tensors")]
fn dropped_fraction_follows_gamma() {
    let (n, c, h, w, bs) = (32, 16, 32, 32, 5);
    for p in [0.05, 0.1, 0.2] {
        let blocks = Blocks::nchw(n, c, h, w, bs);
        let elements = n * c * h * w;
        let mut mask = vec![0u64; mask_words(elements)];
        let mut x = vec![1.0f32; elements];
        Backend::detect()
            .block_forward(
                blocks,
                p,
                Seed::from_u64(77),
                0,
                Io::InPlace(&mut x),
                Some(BitsMut::new(&mut mask)),
            )
            .unwrap();
        let kept = mask.iter().map(|w| w.count_ones() as f64).sum::<f64>() / elements as f64;
        let (hv, wv) = (h - bs + 1, w - bs + 1);
        let gamma = p * h as f64 * w as f64 / (bs * bs * hv * wv) as f64;
        let g = (gamma * 4_294_967_296.0).round() / 4_294_967_296.0;
        let cover = |u: usize, valid: usize| (0..valid).filter(|&i| i <= u && u < i + bs).count();
        let mut expect = 0.0;
        for u in 0..h {
            for v in 0..w {
                expect += (1.0 - g).powi((cover(u, hv) * cover(v, wv)) as i32);
            }
        }
        expect /= (h * w) as f64;
        assert!(
            (kept - expect).abs() < 0.006,
            "p {p}: kept {kept}, expected {expect}"
        );
        // torchvision's gamma aims at a dropped fraction of p (exactly so without overlaps
        // and edges).
        assert!(
            ((1.0 - kept) - p).abs() < 0.35 * p,
            "p {p}: dropped {}",
            1.0 - kept
        );
        eprintln!(
            "p {p}: dropped {:.4}, expected {:.4}",
            1.0 - kept,
            1.0 - expect
        );
        // Every output is 0 or the scale numel / (1e-6 + kept).
        let scale = (elements as f64 / (1e-6 + kept * elements as f64)) as f32;
        assert!(x.iter().all(|&v| v == 0.0 || v == scale));
    }
}

/// A block is a whole `bs x bs` square: in a map with a single seed, exactly the square below
/// and to the right of the corner is dropped.
#[test]
fn a_lone_seed_drops_one_square() {
    let (h, w, bs) = (12, 20, 4);
    let (hv, wv) = (h - bs + 1, w - bs + 1);
    let b = Backend::detect();
    let mut found = 0;
    for s in 0..400u64 {
        let seed = Seed::from_u64(s);
        let spec = SpecBlocks {
            maps: 1,
            d: 1,
            h,
            w,
            block_size: bs,
            three_d: false,
        };
        let (keep, _) = spec_block(spec, 0.05, seed, 0);
        let dropped = keep.iter().filter(|&&k| !k).count();
        if dropped != bs * bs {
            continue;
        }
        found += 1;
        let mut mask = vec![0u64; mask_words(h * w)];
        b.block_forward(
            Blocks::nchw(1, 1, h, w, bs),
            0.05,
            seed,
            0,
            Io::InPlace(&mut vec![1.0f32; h * w]),
            Some(BitsMut::new(&mut mask)),
        )
        .unwrap();
        let first = (0..h * w).find(|&i| !bit(&mask, i)).unwrap();
        let (u0, v0) = (first / w, first % w);
        assert!(u0 < hv && v0 < wv);
        for u in 0..h {
            for v in 0..w {
                let inside = (u0..u0 + bs).contains(&u) && (v0..v0 + bs).contains(&v);
                assert_eq!(bit(&mask, u * w + v), !inside, "seed {s} ({u}, {v})");
            }
        }
    }
    assert!(found > 10, "only {found} lone seeds");
}

#[test]
fn block_errors_write_nothing() {
    let b = Backend::detect();
    let x = [1.0f32; 64];
    let mut y = [7.0f32; 64];
    let mut m = [3u64; 1];
    let bad = [
        (Blocks::nchw(1, 1, 8, 8, 0), 0.1),
        (Blocks::nchw(1, 1, 8, 7, 2), 0.1),
        (Blocks::nhwc(1, 8, 8, 2, 2), 0.1),
        (Blocks::ndhwc(1, 1, 8, 8, 1, 0), 0.1),
        (Blocks::nchw(1, 1, 8, 8, 2), f64::NAN),
        (Blocks::nchw(1, 1, 8, 8, 2), 1.5),
        (Blocks::nchw(usize::MAX, 2, 8, 8, 2), 0.1),
    ];
    for (blocks, p) in bad {
        let io = Io::Out { x: &x, y: &mut y };
        assert!(
            b.block_forward(
                blocks,
                p,
                Seed::default(),
                0,
                io,
                Some(BitsMut::new(&mut m))
            )
            .is_err()
        );
        assert!(
            b.block_backward(
                blocks,
                p,
                Seed::default(),
                0,
                Io::InPlace(&mut y),
                Some(Bits::new(&m))
            )
            .is_err()
        );
    }
    assert_eq!(
        b.block_forward(
            Blocks::nchw(1, 1, 8, 8, 0),
            0.1,
            Seed::default(),
            0,
            Io::InPlace(&mut y),
            None
        ),
        Err(Error::InvalidBlock {
            reason: "block_size is 0"
        })
    );
    // A mask too short.
    let io = Io::Out { x: &x, y: &mut y };
    let r = b.block_forward(
        Blocks::nchw(1, 1, 8, 8, 2),
        0.1,
        Seed::default(),
        0,
        io,
        Some(BitsMut::at(&mut m, 1)),
    );
    assert!(matches!(r, Err(Error::MaskTooShort { .. })), "{r:?}");
    assert_eq!(y, [7.0; 64]);
    assert_eq!(m, [3]);
}

/// A layer's DropBlock record: the stateless call at its position, offset advanced by the
/// corners, replay and both backwards equal.
#[test]
fn block_records() {
    let layer = Dropout::new(0.2, Seed::from_u64(5)).unwrap();
    let blocks = Blocks::nchw(2, 3, 9, 11, 3);
    let n = 2 * 3 * 9 * 11;
    layer.reserve(Op::Element, 3).unwrap();
    let rec = layer.reserve(Op::Block(blocks), n).unwrap();
    assert_eq!(layer.offset(), 3 + blocks.candidates().unwrap() as u64);
    let x: Vec<f32> = data(n, 9);
    let (mut y, mut m) = (vec![0.0f32; n], vec![0u64; mask_words(n)]);
    rec.forward(Io::Out { x: &x, y: &mut y }, Some(BitsMut::new(&mut m)))
        .unwrap();
    let mut want = vec![0.0f32; n];
    Backend::detect()
        .block_forward(
            blocks,
            0.2,
            rec.seed,
            3,
            Io::Out {
                x: &x,
                y: &mut want,
            },
            None,
        )
        .unwrap();
    assert_same(&y, &want, "record forward");
    let (mut g1, mut g2) = (x.clone(), x.clone());
    rec.backward(Io::InPlace(&mut g1), Some(Bits::new(&m)))
        .unwrap();
    rec.backward(Io::InPlace(&mut g2), None).unwrap();
    assert_same(&g1, &want, "record backward from the mask");
    assert_same(&g2, &want, "record backward by recompute");
    assert!(layer.reserve(Op::Block(blocks), n + 1).is_err());
}
