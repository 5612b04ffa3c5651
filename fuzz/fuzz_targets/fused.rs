//! Fused bias + dropout + residual on every backend (serial and rayon) against the contract's
//! oracle: `[rows][cols]` with a bias that divides or not and a residual of the right length
//! or not (an `Error`, nothing written); forward with a mask at any bit or none, in place,
//! backward (input and bias gradients) from the mask and by recompute; f32, f16, bf16, f64.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recipe::common::{spec_fused, spec_fused_backward, spec_keep};
use recipe::{FromBits, Recipe, backends, data, forward_matches, same, valid_p};
use simd_dropout::{Bits, BitsMut, Io, mask_words};

#[path = "recipe.rs"]
mod recipe;

fn check<T: FromBits>(r: &mut Recipe) {
    let (p, seed, offset, at) = (r.p(), r.seed(), r.offset(), r.at());
    let cols = 1 + r.below(300);
    let mut n = r.len();
    if r.byte() % 8 != 0 {
        n -= n % cols; // whole rows, mostly
    }
    let bias_len = if r.byte() % 16 == 0 {
        r.below(300)
    } else {
        cols
    };
    let res_len = if r.byte() % 16 == 0 {
        r.below(n + 2)
    } else {
        n
    };
    let (x, bias, res): (Vec<T>, Vec<T>, Vec<T>) = (
        data(n, r.u64()),
        data(bias_len, r.u64()),
        data(res_len, r.u64()),
    );
    let gy: Vec<T> = data(n, r.u64());
    let rows_fit = if bias_len == 0 {
        n == 0
    } else {
        n % bias_len == 0
    };
    let fails = !valid_p(p) || !rows_fit || res_len != n;
    let words = mask_words(at + n);
    let (keep, want, (want_gx, want_gb)) = if fails {
        (Vec::new(), Vec::new(), (Vec::new(), Vec::new()))
    } else {
        let keep = spec_keep(p, seed, offset, n);
        let want = spec_fused(&x, &bias, &res, &keep, p);
        let back = spec_fused_backward(&gy, &keep, p, bias_len);
        (keep, want, back)
    };
    for b in backends() {
        let mut y = vec![T::ZERO; n];
        let mut m = vec![0u64; words];
        let io = Io::Out { x: &x, y: &mut y };
        let got = b.fused_forward(
            &bias,
            &res,
            p,
            seed,
            offset,
            io,
            Some(BitsMut::at(&mut m, at)),
        );
        if !forward_matches(b.name(), got, fails, (&y, &want), (&m, at, &keep)) {
            continue;
        }
        let mut xy = x.clone();
        b.fused_forward(&bias, &res, p, seed, offset, Io::InPlace(&mut xy), None)
            .unwrap();
        assert!(same(&xy, &want), "in place {}", b.name());
        let (mut gx, mut gb) = (vec![T::ZERO; n], vec![T::ZERO; bias_len]);
        let io = Io::Out { x: &gy, y: &mut gx };
        b.fused_backward(&mut gb, p, seed, offset, io, Some(Bits::at(&m, at)))
            .unwrap();
        assert!(
            same(&gx, &want_gx) && same(&gb, &want_gb),
            "backward {}",
            b.name()
        );
        let (mut gx2, mut gb2) = (gy.clone(), vec![T::ZERO; bias_len]);
        b.fused_backward(&mut gb2, p, seed, offset, Io::InPlace(&mut gx2), None)
            .unwrap();
        assert!(
            same(&gx2, &want_gx) && same(&gb2, &want_gb),
            "backward recompute {}",
            b.name()
        );
    }
}

fuzz_target!(|bytes: &[u8]| {
    let mut r = Recipe(bytes);
    each_type!(r.ty(), T => check::<T>(&mut r));
});
