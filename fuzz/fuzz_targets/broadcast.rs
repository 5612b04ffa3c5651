//! Broadcast dropout on every backend (serial and rayon) against the contract's oracle: shapes
//! that fit the slice or not (an `Error`, nothing written), empty axes, narrow rows and
//! shapes past the parallel split; forward with a mask at any bit or none, in place, backward
//! from the mask and by recompute; f32, f16, bf16, f64.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recipe::common::{spec_broadcast, spec_keep};
use recipe::{FromBits, Recipe, backends, data, forward_matches, same, valid_p};
use simd_dropout::{Bits, BitsMut, Io, Shape, mask_words};

#[path = "recipe.rs"]
mod recipe;

fn check<T: FromBits>(r: &mut Recipe) {
    let (p, seed, offset, at) = (r.p(), r.seed(), r.offset(), r.at());
    // outer and inner from small ranges, mid from what is left of a length.
    let (outer, inner) = (r.below(70), r.below(70));
    let n = r.len();
    let mid = match r.byte() % 8 {
        0 => r.below(5), // probably not n's shape
        _ if outer * inner == 0 => r.below(3),
        _ => n / (outer * inner),
    };
    let shape = Shape::new(outer, mid, inner);
    let n = match r.byte() % 8 {
        0 => n, // the length as drawn: a mismatch unless it divides
        _ => outer * mid * inner,
    };
    let x: Vec<T> = data(n, r.u64());
    let d = outer * inner;
    let fails = !valid_p(p) || outer * mid * inner != n;
    let words = mask_words(at + d);
    let (keep, want) = if fails {
        (Vec::new(), Vec::new())
    } else {
        let keep = spec_keep(p, seed, offset, d);
        let want = spec_broadcast(&x, (mid, inner), &keep, p);
        (keep, want)
    };
    for b in backends() {
        let mut y = vec![T::ZERO; n];
        let mut m = vec![0u64; words];
        let io = Io::Out { x: &x, y: &mut y };
        let got = b.broadcast_forward(shape, p, seed, offset, io, Some(BitsMut::at(&mut m, at)));
        if !forward_matches(b.name(), got, fails, (&y, &want), (&m, at, &keep)) {
            continue;
        }
        let mut xy = x.clone();
        b.broadcast_forward(shape, p, seed, offset, Io::InPlace(&mut xy), None)
            .unwrap();
        assert!(same(&xy, &want), "in place {} {shape:?}", b.name());
        let mut g = vec![T::ZERO; n];
        let io = Io::Out { x: &x, y: &mut g };
        b.broadcast_backward(shape, p, seed, offset, io, Some(Bits::at(&m, at)))
            .unwrap();
        assert!(same(&g, &want), "backward {} {shape:?}", b.name());
        let mut g2 = x.clone();
        b.broadcast_backward(shape, p, seed, offset, Io::InPlace(&mut g2), None)
            .unwrap();
        assert!(
            same(&g2, &want),
            "backward recompute {} {shape:?}",
            b.name()
        );
    }
}

fuzz_target!(|bytes: &[u8]| {
    let mut r = Recipe(bytes);
    each_type!(r.ty(), T => check::<T>(&mut r));
});
