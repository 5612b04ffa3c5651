//! Differential fuzzing: every backend against the scalar reference, for every cell of
//! element dropout and every element type, with arbitrary lengths, sub-slice starts, mask
//! start bits, seeds, offsets and `p` from arbitrary f64 bits (invalid ones must give an
//! `Error` and write nothing).
#![no_main]

use half::{bf16, f16};
use libfuzzer_sys::fuzz_target;
use simd_dropout::{mask_words, Backend, Bits, BitsMut, Io, Seed};

#[path = "input.rs"]
mod input;
use input::{same, Float, Input};

fn check<T: Float>(x: &[T], p: f64, seed: Seed, offset: u64, at: usize, short: bool) {
    let n = x.len();
    let words = mask_words(at + n).saturating_sub(usize::from(short));
    let mut want_y = vec![T::ZERO; n];
    let mut want_m = vec![0u64; words];
    let io = Io::Out { x, y: &mut want_y };
    let want = Backend::scalar().forward(p, seed, offset, io, Some(BitsMut::at(&mut want_m, at)));
    for b in Backend::available() {
        let mut y = vec![T::ZERO; n];
        let mut m = vec![0u64; words];
        let got = b.forward(p, seed, offset, Io::Out { x, y: &mut y }, Some(BitsMut::at(&mut m, at)));
        assert_eq!(got, want);
        if got.is_err() {
            assert!(y.iter().all(|v| v.to_bits() == 0) && m.iter().all(|&w| w == 0));
            continue;
        }
        assert!(same(&y, &want_y) && m == want_m, "{}", b.name());
        let mut xy = x.to_vec();
        b.forward(p, seed, offset, Io::InPlace(&mut xy), None).unwrap();
        assert!(same(&xy, &want_y), "{}", b.name());
        let mut g = vec![T::ZERO; n];
        b.backward(p, seed, offset, Io::Out { x, y: &mut g }, Some(Bits::at(&want_m, at)))
            .unwrap();
        assert!(same(&g, &want_y), "{}", b.name());
        let mut g2 = x.to_vec();
        b.backward(p, seed, offset, Io::InPlace(&mut g2), None).unwrap();
        assert!(same(&g2, &want_y), "{}", b.name());
    }
}

fn read<T, const N: usize>(bytes: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
    bytes.chunks_exact(N).map(|c| f(c.try_into().unwrap())).collect()
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let p = input.p();
    let seed = Seed::new(input.u64(), input.u64());
    let offset = input.u64();
    let control = input.u64();
    let start = (control & 7) as usize;
    let short = control & 8 != 0;
    let at = ((control >> 8) % 130) as usize;
    let rest = input.0;
    match (control >> 4) % 4 {
        0 => {
            let x = read(rest, f32::from_le_bytes);
            check(&x[start.min(x.len())..], p, seed, offset, at, short);
        }
        1 => {
            let x = read(rest, f16::from_le_bytes);
            check(&x[start.min(x.len())..], p, seed, offset, at, short);
        }
        2 => {
            let x = read(rest, bf16::from_le_bytes);
            check(&x[start.min(x.len())..], p, seed, offset, at, short);
        }
        _ => {
            let x = read(rest, f64::from_le_bytes);
            check(&x[start.min(x.len())..], p, seed, offset, at, short);
        }
    }
});
