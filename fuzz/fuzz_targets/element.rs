//! Element dropout on every backend (serial and rayon) against the contract's oracle, in
//! every cell: forward out of place / in place / into uninitialized memory, with a mask at any
//! bit or none, backward from the mask and by recompute; f32, f16, bf16, f64. A bad `p` or a
//! short mask must be the same `Error` everywhere, with nothing written.
#![no_main]

use core::mem::MaybeUninit;
use libfuzzer_sys::fuzz_target;
use recipe::common::{spec_forward, spec_keep};
use recipe::{FromBits, Recipe, backends, data, forward_matches, same, valid_p};
use simd_dropout::{Bits, BitsMut, Io, mask_words};

#[path = "recipe.rs"]
mod recipe;

fn check<T: FromBits>(r: &mut Recipe) {
    let (p, seed, offset, n, at) = (r.p(), r.seed(), r.offset(), r.len(), r.at());
    let short = r.byte() % 8 == 0;
    let x: Vec<T> = data(n, r.u64());
    let words = mask_words(at + n).saturating_sub(usize::from(short && n > 0));
    let fails = !valid_p(p) || words < mask_words(at + n);
    let (keep, want) = if fails {
        (Vec::new(), Vec::new())
    } else {
        let keep = spec_keep(p, seed, offset, n);
        let want = spec_forward(&x, &keep, p);
        (keep, want)
    };
    for b in backends() {
        let mut y = vec![T::ZERO; n];
        let mut m = vec![0u64; words];
        let got = b.forward(
            p,
            seed,
            offset,
            Io::Out { x: &x, y: &mut y },
            Some(BitsMut::at(&mut m, at)),
        );
        if !forward_matches(b.name(), got, fails, (&y, &want), (&m, at, &keep)) {
            continue;
        }
        assert!(m.iter().enumerate().all(|(w, &v)| {
            // Bits outside `at .. at + n` stay zero.
            (0..64).all(|k| {
                let i = w * 64 + k;
                (at..at + n).contains(&i) || (v >> k) & 1 == 0
            })
        }));
        let mut xy = x.clone();
        b.forward(p, seed, offset, Io::InPlace(&mut xy), None)
            .unwrap();
        assert!(same(&xy, &want), "in place {}", b.name());
        let mut u = vec![MaybeUninit::<T>::uninit(); n];
        b.forward(p, seed, offset, Io::Uninit { x: &x, y: &mut u }, None)
            .unwrap();
        let u: Vec<T> = u
            .iter()
            .map(|v| {
                // SAFETY (fuzz harness): a call that returned Ok initialized every element.
                unsafe { v.assume_init() }
            })
            .collect();
        assert!(same(&u, &want), "uninit {}", b.name());
        let mut g = vec![T::ZERO; n];
        b.backward(
            p,
            seed,
            offset,
            Io::Out { x: &x, y: &mut g },
            Some(Bits::at(&m, at)),
        )
        .unwrap();
        assert!(same(&g, &want), "backward {}", b.name());
        let mut g2 = x.clone();
        b.backward(p, seed, offset, Io::InPlace(&mut g2), None)
            .unwrap();
        assert!(same(&g2, &want), "backward recompute {}", b.name());
    }
    // A mask too short for a backward is an error too.
    if !fails && n > 0 {
        let m = vec![!0u64; mask_words(n) - 1];
        let mut g = x.clone();
        assert!(
            simd_dropout::Backend::scalar()
                .backward(p, seed, offset, Io::InPlace(&mut g), Some(Bits::new(&m)))
                .is_err()
        );
        assert!(same(&g, &x));
    }
}

fuzz_target!(|bytes: &[u8]| {
    let mut r = Recipe(bytes);
    each_type!(r.ty(), T => check::<T>(&mut r));
});
