//! Differential fuzzing: every backend against the scalar reference, for every forward
//! operation and element type, with arbitrary lengths, sub-slice starts, seeds, offsets and
//! `p` from arbitrary f64 bits (invalid ones must give an `Error` and write nothing).
#![no_main]

use half::{bf16, f16};
use libfuzzer_sys::fuzz_target;
use simd_dropout::{mask_words, Backend, Element, Seed};

/// Reads little-endian words off the front of the input.
#[path = "input.rs"]
mod input;
use input::{same, Input};

fn check<T: Element>(x: &[T], p: f64, seed: Seed, offset: u64, short: bool) {
    let n = x.len();
    let words = if short { mask_words(n).saturating_sub(1) } else { mask_words(n) };
    let mut want_y = vec![T::ZERO; n];
    let mut want_m = vec![0u64; words];
    let want = Backend::scalar().forward(p, seed, offset, x, &mut want_y, &mut want_m);
    for b in Backend::available() {
        let mut y = vec![T::ZERO; n];
        let mut m = vec![0u64; words];
        let got = b.forward(p, seed, offset, x, &mut y, &mut m);
        assert_eq!(got, want);
        if got.is_err() {
            assert!(y.iter().all(|v| v.to_bits() == 0) && m.iter().all(|&w| w == 0));
            continue;
        }
        assert!(same(&y, &want_y) && m == want_m, "{}", b.name());
        let mut xy = x.to_vec();
        b.forward_in_place_no_mask(p, seed, offset, &mut xy).unwrap();
        assert!(same(&xy, &want_y), "{}", b.name());
        let mut g = vec![T::ZERO; n];
        b.apply_mask(p, &want_m, x, &mut g).unwrap();
        assert!(same(&g, &want_y), "{}", b.name());
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let p = if input.u64() & 1 == 0 {
        f64::from_bits(input.u64())
    } else {
        (input.u64() >> 11) as f64 / (1u64 << 53) as f64
    };
    let seed = Seed::new(input.u64(), input.u64());
    let offset = input.u64();
    let control = input.u64();
    let start = (control & 7) as usize;
    let short = control & 8 != 0;
    let rest = input.0;
    match (control >> 4) % 3 {
        0 => {
            let x: Vec<f32> = rest
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            check(&x[start.min(x.len())..], p, seed, offset, short);
        }
        1 => {
            let x: Vec<f16> = rest
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes(c.try_into().unwrap()))
                .collect();
            check(&x[start.min(x.len())..], p, seed, offset, short);
        }
        _ => {
            let x: Vec<bf16> = rest
                .chunks_exact(2)
                .map(|c| bf16::from_le_bytes(c.try_into().unwrap()))
                .collect();
            check(&x[start.min(x.len())..], p, seed, offset, short);
        }
    }
});
