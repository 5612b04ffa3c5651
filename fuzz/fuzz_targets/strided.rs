//! Differential fuzzing of strided views: arbitrary dimensions, strides (negative and
//! overlapping ones included), buffer bases and windows. A call either fails with the same
//! `Error` on every backend and writes nothing, or gives, on every backend, the scalar
//! backend's bits, and those equal the contiguous call on the full tensor at each element's
//! position.
#![no_main]

use libfuzzer_sys::fuzz_target;
use simd_dropout::{mask_words, Backend, BitsMut, Io, Seed, Strided, View};

#[path = "input.rs"]
mod input;
use input::{same, Input};

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let p = input.p();
    let seed = Seed::from_u64(input.u64());
    let offset = input.u64();
    let c = input.u64();
    let rank = 1 + (c % 3) as usize;
    let dims: Vec<usize> = (0..rank).map(|d| ((c >> (4 + 4 * d)) % 9) as usize).collect();
    let strides: Vec<isize> = (0..rank).map(|d| ((c >> (20 + 6 * d)) % 41) as isize - 20).collect();
    let base = ((c >> 40) % 200) as usize;
    let pad: Vec<usize> = (0..rank).map(|d| ((c >> (50 + 2 * d)) % 3) as usize).collect();
    let start: Vec<usize> = pad.iter().map(|&k| k.min(1)).collect();
    let full: Vec<usize> = dims.iter().zip(&pad).map(|(&d, &k)| d + k).collect();
    let len = 200 + (c >> 58) as usize;
    let x: Vec<f32> = input
        .0
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .chain(core::iter::repeat(1.5))
        .take(len)
        .collect();
    let Ok(view) = View::strided(&dims, &strides, base).and_then(|v| v.within(&start, &full)) else {
        return;
    };
    let n = view.len();
    let run = |b: Backend| {
        let mut y = x.clone();
        let mut m = vec![0u64; mask_words(n) + 1];
        let r = b.strided_forward(p, seed, offset, Strided::InPlace { xy: &mut y, view }, Some(BitsMut::at(&mut m, 3)));
        (r, y, m)
    };
    let (want_r, want_y, want_m) = run(Backend::scalar());
    if want_r.is_err() {
        assert!(same(&want_y, &x) && want_m.iter().all(|&w| w == 0));
    }
    for b in Backend::available() {
        let (r, y, m) = run(b);
        assert_eq!(r, want_r, "{}", b.name());
        assert!(same(&y, &want_y) && m == want_m, "{}", b.name());
    }
    if want_r.is_err() {
        return;
    }
    // The oracle: the contiguous call on the full tensor, of ones, gives each position's
    // scale or zero; the view's element at that position must be x times it.
    let full_n: usize = full.iter().product();
    let mut ones = vec![1.0f32; full_n];
    Backend::scalar().forward(p, seed, offset, Io::InPlace(&mut ones), None).unwrap();
    let mut k = 0;
    let mut idx = vec![0usize; rank];
    while k < n {
        let mut at = base as isize;
        let mut pos = 0;
        for d in 0..rank {
            at += idx[d] as isize * strides[d];
            pos = pos * full[d] + start[d] + idx[d];
        }
        let (xv, yv) = (x[at as usize], want_y[at as usize]);
        let kept = (want_m[(3 + k) / 64] >> ((3 + k) % 64)) & 1 == 1;
        assert_eq!(kept, ones[pos] != 0.0);
        let expect = if kept { xv * ones[pos] } else { 0.0 };
        assert!(same(&[yv], &[expect]), "element {idx:?}");
        k += 1;
        for d in (0..rank).rev() {
            idx[d] += 1;
            if idx[d] < dims[d] {
                break;
            }
            idx[d] = 0;
        }
    }
});
