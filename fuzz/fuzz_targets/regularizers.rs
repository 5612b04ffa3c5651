//! DropBlock (2-D and 3-D, channels first and last) and Gaussian dropout on every backend
//! (serial and rayon) against the contract's oracles: forward with a mask at any bit or none,
//! in place, backward from the mask and by recompute; f32, f16, bf16, f64. Widths reach one
//! to four words and past the 8192-column band (block sizes up to the map and past it);
//! empty geometries put a zero beside `usize::MAX` dimensions in every position. Geometries
//! with a block size of 0, overflowing or not matching the buffer, and `p` outside the range,
//! must be the same `Error` everywhere with nothing written.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recipe::common::{SpecBlocks, channels_first_index, spec_apply, spec_block, spec_gaussian};
use recipe::{FromBits, Recipe, backends, data, forward_matches, same, valid_p};
use simd_dropout::{Bits, BitsMut, Blocks, ChannelOrder, Io, mask_words};

#[path = "recipe.rs"]
mod recipe;

/// A geometry from the recipe, the oracle's form of it when it is valid, and the buffer
/// length to call with.
fn geometry(r: &mut Recipe) -> (Blocks, Option<(SpecBlocks, Vec<usize>)>, usize) {
    let three_d = r.byte() % 2 == 1;
    let order = if r.byte() % 2 == 1 {
        ChannelOrder::Last
    } else {
        ChannelOrder::First
    };
    // Mostly small enough for thousands of runs a second; rows of one to four words, and
    // now and then rows past the 8192-column band.
    let width = |r: &mut Recipe| match r.byte() % 8 {
        0..=3 => 1 + r.below(80),
        4..=6 => 60 + r.below(200),
        _ => 8180 + r.below(200),
    };
    let (mut n, mut c) = (r.below(3), 1 + r.below(4));
    let (d, mut h, w) = match three_d {
        true => (1 + r.below(5), 1 + r.below(8), 1 + r.below(20)),
        false => (1, 1 + r.below(12), width(r)),
    };
    if w > 8000 {
        (n, c, h) = (1, 1 + r.below(2), 1 + r.below(4));
    } else if !three_d && r.byte() % 4 == 0 {
        h = 20 + r.below(50); // tall enough for several corner rows over a band
    }
    // Block sizes up to the map and a little past it (clipped), or small.
    let bs = match r.byte() % 4 {
        0 => r.below(h.max(w) + 3),
        _ => r.below(10),
    };
    let odd = r.byte() % 16;
    if odd == 0 {
        // No elements: a zero in any position beside dimensions near usize::MAX.
        let zero = r.below(if three_d { 5 } else { 4 });
        let mut dims = vec![usize::MAX - r.below(3); if three_d { 5 } else { 4 }];
        dims[zero] = 0;
        let blocks = Blocks::of(order, &dims, bs).unwrap();
        assert_eq!(blocks.elements(), Some(0));
        return (
            blocks,
            (bs > 0).then(|| {
                (
                    SpecBlocks {
                        maps: 0,
                        d: 1,
                        h: 1,
                        w: 1,
                        block_size: bs,
                        three_d,
                    },
                    Vec::new(),
                )
            }),
            0,
        );
    }
    let dims: Vec<usize> = match (three_d, order, odd) {
        (_, _, 1) => vec![usize::MAX / 3, 5, 7, 9], // overflows
        (false, ChannelOrder::First, _) => vec![n, c, h, w],
        (false, ChannelOrder::Last, _) => vec![n, h, w, c],
        (true, ChannelOrder::First, _) => vec![n, c, d, h, w],
        (true, ChannelOrder::Last, _) => vec![n, d, h, w, c],
    };
    let blocks = Blocks::of(order, &dims, bs).unwrap();
    let elements = n * c * d * h * w;
    let len = if odd == 2 {
        elements + 1 + r.below(5)
    } else {
        elements
    };
    if bs == 0 || odd <= 2 {
        return (blocks, None, len);
    }
    let spec = SpecBlocks {
        maps: n * c,
        d,
        h,
        w,
        block_size: bs,
        three_d,
    };
    let index = match order {
        ChannelOrder::First => (0..elements).collect(),
        ChannelOrder::Last => channels_first_index(n, c, d, h, w),
    };
    (blocks, Some((spec, index)), len)
}

fn block<T: FromBits>(r: &mut Recipe) {
    // The geometry first: short inputs (the fuzzer's first) reach every layout.
    let (blocks, valid, n) = geometry(r);
    let (p, seed, offset, at) = (r.p(), r.seed(), r.offset(), r.at());
    let x: Vec<T> = data(n, r.u64());
    let gy: Vec<T> = data(n, r.u64());
    let (fails, keep, scale) = match valid {
        Some((spec, index)) if valid_p(p) => {
            let (keep, scale) = spec_block(spec, p, seed, offset);
            (false, index.iter().map(|&i| keep[i]).collect(), scale)
        }
        _ => (true, Vec::new(), 1.0),
    };
    let (want, want_g) = (spec_apply(&x, &keep, scale), spec_apply(&gy, &keep, scale));
    for b in backends() {
        let mut y = vec![T::ZERO; n];
        let mut m = vec![0u64; mask_words(at + n)];
        let io = Io::Out { x: &x, y: &mut y };
        let got = b.block_forward(blocks, p, seed, offset, io, Some(BitsMut::at(&mut m, at)));
        if !forward_matches(b.name(), got, fails, (&y, &want), (&m, at, &keep)) {
            continue;
        }
        let mut xy = x.clone();
        b.block_forward(blocks, p, seed, offset, Io::InPlace(&mut xy), None)
            .unwrap();
        assert!(same(&xy, &want), "in place {}", b.name());
        let mut g = vec![T::ZERO; n];
        let io = Io::Out { x: &gy, y: &mut g };
        b.block_backward(blocks, p, seed, offset, io, Some(Bits::at(&m, at)))
            .unwrap();
        assert!(same(&g, &want_g), "backward {}", b.name());
        let mut g2 = gy.clone();
        b.block_backward(blocks, p, seed, offset, Io::InPlace(&mut g2), None)
            .unwrap();
        assert!(same(&g2, &want_g), "backward recompute {}", b.name());
    }
}

fn gaussian<T: FromBits>(r: &mut Recipe) {
    let (p, seed, offset, n) = (r.p(), r.seed(), r.offset(), r.len());
    let x: Vec<T> = data(n, r.u64());
    let fails = !(0.0..1.0).contains(&p);
    let want = if fails {
        Vec::new()
    } else {
        spec_gaussian(&x, p, seed, offset)
    };
    for b in backends() {
        let mut y = vec![T::ZERO; n];
        let got = b.gaussian_forward(p, seed, offset, Io::Out { x: &x, y: &mut y });
        if !forward_matches(b.name(), got, fails, (&y, &want), (&[], 0, &[])) {
            continue;
        }
        let mut xy = x.clone();
        b.gaussian_forward(p, seed, offset, Io::InPlace(&mut xy))
            .unwrap();
        assert!(same(&xy, &want), "in place {}", b.name());
        let mut g = vec![T::ZERO; n];
        b.gaussian_backward(p, seed, offset, Io::Out { x: &x, y: &mut g })
            .unwrap();
        assert!(same(&g, &want), "backward {}", b.name());
    }
}

fuzz_target!(|bytes: &[u8]| {
    let mut r = Recipe(bytes);
    match r.byte() % 2 {
        0 => each_type!(r.ty(), T => block::<T>(&mut r)),
        _ => each_type!(r.ty(), T => gaussian::<T>(&mut r)),
    }
});
