//! The rayon path: identical outputs and mask words for pools of 1, 2, 3 and 7 threads and
//! for the serial path, over lengths around the piece size and the serial threshold.
#![cfg(feature = "rayon")]

mod common;

use common::*;
use half::bf16;
use simd_dropout::{mask_words, Backend, Dropout, Seed};

fn lengths() -> Vec<usize> {
    let mut v = Vec::new();
    for base in [1usize << 15, 1 << 16, 1 << 17, 3 << 16] {
        v.extend([
            base - 65,
            base - 64,
            base - 1,
            base,
            base + 1,
            base + 63,
            base + 64,
        ]);
    }
    v.push(1_000_003);
    v
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

fn check<T: FromBits>() {
    let seed = Seed::new(31, 41);
    for b in Backend::available() {
        for n in lengths() {
            let x: Vec<T> = data(n, n as u64);
            let offset = u64::MAX - (n as u64 / 2); // the call wraps around the period
            let mut want_y = vec![T::ZERO; n];
            let mut want_m = vec![0u64; mask_words(n)];
            b.forward(0.3, seed, offset, &x, &mut want_y, &mut want_m)
                .unwrap();
            for threads in [1, 2, 3, 7] {
                let what = format!("{} {} n={n} threads={threads}", b.name(), T::NAME);
                pool(threads).install(|| {
                    let par = b.parallel();
                    let mut y = vec![T::ZERO; n];
                    let mut m = vec![0u64; mask_words(n)];
                    par.forward(0.3, seed, offset, &x, &mut y, &mut m).unwrap();
                    assert_same(&y, &want_y, &what);
                    assert_eq!(m, want_m, "{what}");

                    let mut xy = x.clone();
                    par.forward_in_place_no_mask(0.3, seed, offset, &mut xy)
                        .unwrap();
                    assert_same(&xy, &want_y, &what);

                    let mut m2 = vec![0u64; mask_words(n)];
                    par.fill_mask(0.3, seed, offset, n, &mut m2).unwrap();
                    assert_eq!(m2, want_m, "{what}");

                    let mut g = vec![T::ZERO; n];
                    par.apply_mask(0.3, &want_m, &x, &mut g).unwrap();
                    assert_same(&g, &want_y, &what);
                });
            }
        }
    }
}

#[test]
fn f32_parallel_equals_serial() {
    check::<f32>();
}

#[test]
fn bf16_parallel_equals_serial() {
    check::<bf16>();
}

#[test]
fn layer_offsets_advance_as_in_serial() {
    let n = 200_000;
    let x: Vec<f32> = data(n, 1);
    let mut serial = Dropout::new(0.5, Seed::new(2, 3)).unwrap();
    let mut par = Dropout::new(0.5, Seed::new(2, 3))
        .unwrap()
        .with_backend(Backend::detect().parallel());
    let (mut a, mut b) = (vec![0.0f32; n], vec![0.0f32; n]);
    for _ in 0..3 {
        serial.forward_no_mask(&x, &mut a).unwrap();
        pool(3).install(|| par.forward_no_mask(&x, &mut b).unwrap());
        assert_same(&a, &b, "layer");
    }
    assert_eq!(serial.offset(), par.offset());
    assert_eq!(par.offset(), 3 * n as u64);
}
