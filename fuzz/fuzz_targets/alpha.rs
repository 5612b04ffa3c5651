//! Alpha dropout on every backend (serial and rayon) against the contract's oracle: forward
//! with a mask at any bit or none, in place, backward from the mask and by recompute; f32,
//! f16, bf16, f64. `p` outside `[0, 1)` must be the same `Error` everywhere, nothing written.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recipe::common::{spec_alpha, spec_alpha_backward, spec_keep};
use recipe::{FromBits, Recipe, backends, data, forward_matches, same};
use simd_dropout::{Bits, BitsMut, Io, mask_words};

#[path = "recipe.rs"]
mod recipe;

fn check<T: FromBits>(r: &mut Recipe) {
    let (p, seed, offset, n, at) = (r.p(), r.seed(), r.offset(), r.len(), r.at());
    let x: Vec<T> = data(n, r.u64());
    let gy: Vec<T> = data(n, r.u64());
    let fails = !(0.0..1.0).contains(&p);
    let words = mask_words(at + n);
    let (keep, want, want_g) = if fails {
        (Vec::new(), Vec::new(), Vec::new())
    } else {
        let keep = spec_keep(p, seed, offset, n);
        let (want, want_g) = (spec_alpha(&x, &keep, p), spec_alpha_backward(&gy, &keep, p));
        (keep, want, want_g)
    };
    for b in backends() {
        let mut y = vec![T::ZERO; n];
        let mut m = vec![0u64; words];
        let io = Io::Out { x: &x, y: &mut y };
        let got = b.alpha_forward(p, seed, offset, io, Some(BitsMut::at(&mut m, at)));
        if !forward_matches(b.name(), got, fails, (&y, &want), (&m, at, &keep)) {
            continue;
        }
        let mut xy = x.clone();
        b.alpha_forward(p, seed, offset, Io::InPlace(&mut xy), None)
            .unwrap();
        assert!(same(&xy, &want), "in place {}", b.name());
        let mut g = vec![T::ZERO; n];
        let io = Io::Out { x: &gy, y: &mut g };
        b.alpha_backward(p, seed, offset, io, Some(Bits::at(&m, at)))
            .unwrap();
        assert!(same(&g, &want_g), "backward {}", b.name());
        let mut g2 = gy.clone();
        b.alpha_backward(p, seed, offset, Io::InPlace(&mut g2), None)
            .unwrap();
        assert!(same(&g2, &want_g), "backward recompute {}", b.name());
    }
}

fuzz_target!(|bytes: &[u8]| {
    let mut r = Recipe(bytes);
    each_type!(r.ty(), T => check::<T>(&mut r));
});
