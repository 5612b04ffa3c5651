//! Masks against a bool-per-element oracle: the stream's decisions (`fill_mask`) at any start
//! bit, packing bools, reading them back (`get`, `iter`, `count_kept`, bytes, bools), owned
//! masks, equality that sees only the first `len` bits, and the mask expanded to
//! `{0, scale}` in f32, f16, bf16 and f64 (the contract's scale, rounded as the type says).
#![no_main]

use libfuzzer_sys::fuzz_target;
use recipe::common::{spec_keep, spec_out};
use recipe::{FromBits, Recipe, backends, same, valid_p};
use simd_dropout::{Bits, BitsMut, Mask, MaskRef, mask_words, pack_bools};

#[path = "recipe.rs"]
mod recipe;

/// `{0, scale}` per bit through every backend, against the contract's kept-one.
fn expand<T: FromBits>(p: f64, words: &[u64], at: usize, keep: &[bool]) {
    let want: Vec<T> = keep
        .iter()
        .map(|&k| spec_out(T::from_f64(1.0), k, p))
        .collect();
    for b in backends() {
        let mut out = vec![T::ZERO; keep.len()];
        b.expand_mask(p, Bits::at(words, at), &mut out).unwrap();
        assert!(same(&out, &want), "expand {} {}", b.name(), T::NAME);
    }
}

/// Empty ranges at word boundaries at or past the end of the buffer: accepted, and every
/// read, conversion and write of them does nothing.
fn empty(r: &mut Recipe) {
    let words = vec![r.u64(); r.below(4)];
    let at = match r.byte() % 4 {
        0 => usize::MAX - r.below(200),
        1 => usize::MAX - 63 - 64 * r.below(3),
        _ => 64 * (words.len() + r.below(4)) + r.below(2) * r.below(64),
    };
    let view = MaskRef::at(&words, at, 0).unwrap();
    assert_eq!(
        (view.len(), view.count_kept(), view.iter().count()),
        (0, 0, 0)
    );
    view.write_bytes(&mut []).unwrap();
    view.write_bools(&mut []).unwrap();
    assert!(view.write_bytes(&mut [0]).is_err());
    assert_eq!(view, MaskRef::new(&[], 0).unwrap());
    let mut dst = words.clone();
    pack_bools(&[], BitsMut::at(&mut dst, at)).unwrap();
    for b in backends() {
        b.fill_mask(0.5, Default::default(), 0, 0, BitsMut::at(&mut dst, at))
            .unwrap();
        b.expand_mask::<f32>(0.5, view.bits(), &mut []).unwrap();
    }
    assert_eq!(dst, words);
    // One bit there is too many unless the buffer holds it.
    let holds = at < 64 * words.len();
    assert_eq!(MaskRef::at(&words, at, 1).is_ok(), holds);
}

fn run(r: &mut Recipe) {
    if r.byte() % 8 == 0 {
        return empty(r);
    }
    let (p, seed, offset, n, at) = (r.p(), r.seed(), r.offset(), r.len(), r.at());
    let words = mask_words(at + n);
    if !valid_p(p) {
        for b in backends() {
            let mut m = vec![0u64; words];
            assert!(
                b.fill_mask(p, seed, offset, n, BitsMut::at(&mut m, at))
                    .is_err()
            );
            assert!(m.iter().all(|&w| w == 0));
        }
        return;
    }
    let keep = spec_keep(p, seed, offset, n);
    // Background bits around the call's own: a call writes exactly its bits.
    let background = r.u64();
    let mut filled = Vec::new();
    for b in backends() {
        let mut m = vec![background; words];
        b.fill_mask(p, seed, offset, n, BitsMut::at(&mut m, at))
            .unwrap();
        for i in 0..words * 64 {
            let want = if (at..at + n).contains(&i) {
                keep[i - at]
            } else {
                (background >> (i % 64)) & 1 == 1
            };
            assert_eq!(
                (m[i / 64] >> (i % 64)) & 1 == 1,
                want,
                "{} bit {i}",
                b.name()
            );
        }
        filled = m;
    }
    // Packing bools gives the same bits; reading them back gives the bools.
    let mut packed = vec![background; words];
    pack_bools(&keep, BitsMut::at(&mut packed, at)).unwrap();
    assert_eq!(packed, filled);
    let view = MaskRef::at(&filled, at, n).unwrap();
    assert_eq!(view.len(), n);
    assert_eq!(view.count_kept(), keep.iter().filter(|&&k| k).count());
    assert!(view.iter().eq(keep.iter().copied()));
    let i = r.below(n + 2);
    assert_eq!(view.get(i), keep.get(i).copied());
    let (mut bytes, mut bools) = (vec![7u8; n], vec![false; n]);
    view.write_bytes(&mut bytes).unwrap();
    view.write_bools(&mut bools).unwrap();
    assert!(bytes.iter().zip(&keep).all(|(&b, &k)| b == u8::from(k)));
    assert_eq!(bools, keep);
    assert!(view.write_bytes(&mut vec![0u8; n + 1]).is_err());
    // Owned masks: equal to the view, and equality ignores bits past `len`.
    let owned = Mask::from_bools(&keep);
    assert_eq!(owned.as_ref(), view);
    if n % 64 != 0 {
        let mut dirty = owned.clone();
        if let Some(last) = dirty.words_mut().last_mut() {
            *last |= !0u64 << (n % 64);
        }
        assert!(dirty == owned);
    }
    // A short mask is an error.
    if n > 0 {
        assert!(MaskRef::new(&filled[..mask_words(n) - 1], n).is_err());
    }
    match r.ty() {
        0 => expand::<f32>(p, &filled, at, &keep),
        1 => expand::<half::f16>(p, &filled, at, &keep),
        2 => expand::<half::bf16>(p, &filled, at, &keep),
        _ => expand::<f64>(p, &filled, at, &keep),
    }
}

fuzz_target!(|bytes: &[u8]| run(&mut Recipe(bytes)));
