//! Strided views on every backend (serial and rayon) against the contract's oracle: element
//! `idx` of a view (window `start` of a full logical tensor) uses word `offset + pos`, `pos`
//! its row-major position in the full tensor. Dense layouts (any axis order, a step, reversed
//! axes; past the 64Ki parallel split at times) must run in place and out of place; arbitrary
//! strides (zero, negative, overlapping) read fine out of place and are an `Error` in place
//! when they overlap, the same on every backend, with nothing written. f32, f16, bf16, f64.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recipe::common::{spec_keep, spec_out};
use recipe::{FromBits, Recipe, backends, bits_at, data, same, valid_p};
use simd_dropout::{Bits, BitsMut, Strided, View, mask_words};

#[path = "recipe.rs"]
mod recipe;

/// Dims, element strides and base of a view, and the buffer length it needs.
struct Layout {
    dims: Vec<usize>,
    strides: Vec<isize>,
    base: usize,
    len: usize,
    dense: bool,
}

fn layout(r: &mut Recipe) -> Layout {
    let kind = r.byte() % 8;
    if kind == 6 {
        // No elements: a zero beside dimensions near usize::MAX and strides near the ends of
        // isize, where every product overflows (the window's full shape too, at times).
        let rank = 1 + r.below(4);
        let zero = r.below(rank);
        let huge = [usize::MAX, usize::MAX - 1, usize::MAX / 2, 1 << 33, 3];
        let dims = (0..rank)
            .map(|d| {
                if d == zero {
                    0
                } else {
                    huge[r.below(huge.len())]
                }
            })
            .collect();
        let edge = [isize::MIN, isize::MAX, -1, 0, 1, 1 << 40];
        let strides = (0..rank).map(|_| edge[r.below(edge.len())]).collect();
        let base = [0, 5, usize::MAX][r.below(3)];
        return Layout {
            dims,
            strides,
            base,
            len: 8,
            dense: false,
        };
    }
    let large = kind == 7;
    let rank = if large { 2 } else { 1 + r.below(4) };
    let dims: Vec<usize> = (0..rank)
        .map(|_| {
            if large {
                200 + r.below(150)
            } else {
                r.below(9)
            }
        })
        .collect();
    if !large && r.byte() % 2 == 0 {
        let strides = (0..rank).map(|_| r.below(41) as isize - 20).collect();
        return Layout {
            dims,
            strides,
            base: r.below(200),
            len: 200 + r.below(64),
            dense: false,
        };
    }
    // Dense: axes laid out in a rotated order, every element `step` apart, some reversed.
    let (turn, step) = (r.below(rank), 1 + r.below(3));
    let mut strides = vec![0isize; rank];
    let mut size = step;
    for k in (0..rank).rev() {
        let d = (k + turn) % rank;
        strides[d] = size as isize;
        size *= dims[d].max(1);
    }
    let mut base = 0;
    for d in 0..rank {
        if r.byte() % 4 == 0 && dims[d] > 0 {
            base += (dims[d] - 1) * strides[d] as usize;
            strides[d] = -strides[d];
        }
    }
    Layout {
        dims,
        strides,
        base,
        len: size + base + 1,
        dense: true,
    }
}

fn check<T: FromBits>(r: &mut Recipe) {
    let (p, seed, offset, at) = (r.p(), r.seed(), r.offset(), r.at());
    let l = layout(r);
    let rank = l.dims.len();
    let pad: Vec<usize> = (0..rank).map(|_| r.below(3)).collect();
    let start: Vec<usize> = pad.iter().map(|&k| k.min(1)).collect();
    let full: Vec<usize> = l
        .dims
        .iter()
        .zip(&pad)
        .map(|(&d, &k)| d.saturating_add(k))
        .collect();
    let view = View::strided(&l.dims, &l.strides, l.base).and_then(|v| v.within(&start, &full));
    let Ok(view) = view else {
        assert!(matches!(view, Err(simd_dropout::Error::InvalidView { .. })));
        return;
    };
    let x: Vec<T> = data(l.len, r.u64());
    let n = view.len();
    let words = mask_words(at + n);
    // The oracle, when p is valid: (buffer address, decision) of each element in order.
    let elements: Vec<(isize, bool)> = if valid_p(p) && n > 0 {
        let full_n: usize = full.iter().product();
        let keep = spec_keep(p, seed, offset, full_n);
        let mut idx = vec![0usize; rank];
        (0..n)
            .map(|_| {
                let (mut addr, mut pos) = (l.base as isize, 0);
                for d in 0..rank {
                    addr += idx[d] as isize * l.strides[d];
                    pos = pos * full[d] + start[d] + idx[d];
                }
                for d in (0..rank).rev() {
                    idx[d] += 1;
                    if idx[d] < l.dims[d] {
                        break;
                    }
                    idx[d] = 0;
                }
                (addr, keep[pos])
            })
            .collect()
    } else {
        Vec::new()
    };
    // A view reaching outside the buffer is an error (the view alone cannot know the length).
    let inside = elements
        .iter()
        .all(|&(a, _)| (0..x.len() as isize).contains(&a));
    let ok = valid_p(p) && inside;
    let want: Vec<T> = match ok {
        true => elements
            .iter()
            .map(|&(a, k)| spec_out(x[a as usize], k, p))
            .collect(),
        false => Vec::new(),
    };
    let keep: Vec<bool> = elements.iter().map(|&(_, k)| k).collect();
    // Out of place: any strides read fine.
    for b in backends() {
        let mut y = vec![T::ZERO; n];
        let mut m = vec![0u64; words];
        let io = Strided::Out {
            x: &x,
            x_view: view,
            y: &mut y,
            y_view: view.compact(),
        };
        let got = b.strided_forward(p, seed, offset, io, Some(BitsMut::at(&mut m, at)));
        if !ok {
            assert!(
                got.is_err(),
                "{} {:?} {:?} base {}",
                b.name(),
                l.dims,
                l.strides,
                l.base
            );
            assert!(y.iter().all(|v| v.to_bits() == 0) && m.iter().all(|&w| w == 0));
            continue;
        }
        got.unwrap();
        assert!(
            same(&y, &want),
            "out {} {:?} {:?}",
            b.name(),
            l.dims,
            l.strides
        );
        assert_eq!(bits_at(&m, at, n), keep, "mask {}", b.name());
        let mut g = vec![T::ZERO; n];
        let io = Strided::Out {
            x: &x,
            x_view: view,
            y: &mut g,
            y_view: view.compact(),
        };
        b.strided_backward(p, seed, offset, io, Some(Bits::at(&m, at)))
            .unwrap();
        assert!(same(&g, &want), "backward {}", b.name());
    }
    // Through a layer's record of the full tensor (its length checked against the views').
    if n == 0 && valid_p(p) {
        let layer = simd_dropout::Dropout::new(p, seed).unwrap();
        let rec = layer.reserve(simd_dropout::Op::Element, 0).unwrap();
        let mut xy = x.clone();
        let got = rec.strided_forward(Strided::InPlace { xy: &mut xy, view }, None);
        assert_eq!(got.is_ok(), full.contains(&0), "record {:?}", full);
        assert!(same(&xy, &x));
    }
    // In place: dense layouts run; overlapping ones are the same error everywhere.
    let mut first: Option<Result<(), simd_dropout::Error>> = None;
    for b in backends() {
        let mut xy = x.clone();
        let got = b.strided_forward(
            p,
            seed,
            offset,
            Strided::InPlace { xy: &mut xy, view },
            None,
        );
        if l.dense && ok {
            got.clone().unwrap();
        }
        if !ok {
            assert!(got.is_err(), "in place {}", b.name());
        }
        match &got {
            Ok(()) => {
                let mut expect = x.clone();
                for (&(a, _), &w) in elements.iter().zip(&want) {
                    expect[a as usize] = w;
                }
                assert!(same(&xy, &expect), "in place {}", b.name());
            }
            Err(_) => assert!(same(&xy, &x)),
        }
        assert_eq!(*first.get_or_insert(got.clone()), got, "{}", b.name());
    }
}

fuzz_target!(|bytes: &[u8]| {
    let mut r = Recipe(bytes);
    each_type!(r.ty(), T => check::<T>(&mut r));
});
