//! The rayon path: identical outputs and mask words for pools of 1, 2, 3 and 7 threads and
//! for the serial path, over lengths around the piece size and the serial threshold, with
//! masks at aligned and unaligned start bits.
#![cfg(feature = "rayon")]

mod common;

use common::*;
use half::bf16;
use simd_dropout::{Backend, Bits, BitsMut, Dropout, Io, Seed, Strided, View, mask_words};

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
        for (k, n) in lengths().into_iter().enumerate() {
            let x: Vec<T> = data(n, n as u64);
            let offset = u64::MAX - (n as u64 / 2); // the call wraps around the period
            let at = [0, 7][k % 2];
            let mut want_y = vec![T::ZERO; n];
            let mut want_m = vec![0u64; mask_words(n + at)];
            let io = Io::Out {
                x: &x,
                y: &mut want_y,
            };
            b.forward(0.3, seed, offset, io, Some(BitsMut::at(&mut want_m, at)))
                .unwrap();
            for threads in [1, 2, 3, 7] {
                let what = format!("{} {} n={n} threads={threads}", b.name(), T::NAME);
                pool(threads).install(|| {
                    let par = b.parallel();
                    let mut y = vec![T::ZERO; n];
                    let mut m = vec![0u64; mask_words(n + at)];
                    let io = Io::Out { x: &x, y: &mut y };
                    par.forward(0.3, seed, offset, io, Some(BitsMut::at(&mut m, at)))
                        .unwrap();
                    assert_same(&y, &want_y, &what);
                    assert_eq!(m, want_m, "{what}");

                    let mut xy = x.clone();
                    par.forward(0.3, seed, offset, Io::InPlace(&mut xy), None)
                        .unwrap();
                    assert_same(&xy, &want_y, &what);

                    let mut m2 = vec![0u64; mask_words(n + at)];
                    par.fill_mask(0.3, seed, offset, n, BitsMut::at(&mut m2, at))
                        .unwrap();
                    assert_eq!(m2, want_m, "{what}");

                    let mut g = vec![T::ZERO; n];
                    let io = Io::Out { x: &x, y: &mut g };
                    par.backward(0.3, seed, offset, io, Some(Bits::at(&want_m, at)))
                        .unwrap();
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
fn f64_parallel_equals_serial() {
    check::<f64>();
}

#[test]
fn bf16_parallel_equals_serial() {
    check::<bf16>();
}

#[test]
fn strided_views_equal_serial_for_any_pool() {
    // A [300, 700] batch as a sliced view (every other row of a [600, 700] buffer) with a
    // long contiguous inner dimension, and its transpose.
    let (r, c) = (300usize, 700usize);
    let buf: Vec<f32> = data(2 * r * c, 3);
    let seed = Seed::from_u64(8);
    let sliced = View::strided(&[r, c], &[2 * c as isize, 1], 0).unwrap();
    let transposed = View::strided(&[c, r], &[1, 2 * c as isize], 0).unwrap();
    // Rows 100..400 of a contiguous [600, 700] batch: merged into one row of the stream,
    // which the parallel backend splits.
    let window = View::contiguous(&[r, c])
        .unwrap()
        .within(&[100, 0], &[2 * r, c])
        .unwrap();
    for view in [sliced, transposed, window] {
        let b = Backend::detect();
        let mut want = vec![0.0f32; r * c];
        let io = Strided::Out {
            x: &buf,
            x_view: view,
            y: &mut want,
            y_view: view.compact(),
        };
        b.strided_forward(0.3, seed, 5, io, None).unwrap();
        for threads in [1, 2, 3, 7] {
            pool(threads).install(|| {
                let mut y = vec![0.0f32; r * c];
                let io = Strided::Out {
                    x: &buf,
                    x_view: view,
                    y: &mut y,
                    y_view: view.compact(),
                };
                b.parallel()
                    .strided_forward(0.3, seed, 5, io, None)
                    .unwrap();
                assert_same(&y, &want, &format!("threads={threads}"));
            });
        }
    }
}

#[test]
fn layer_offsets_advance_as_in_serial() {
    let n = 200_000;
    let x: Vec<f32> = data(n, 1);
    let serial = Dropout::new(0.5, Seed::new(2, 3)).unwrap();
    let par = Dropout::new(0.5, Seed::new(2, 3))
        .unwrap()
        .with_backend(Backend::detect().parallel());
    let (mut a, mut b) = (vec![0.0f32; n], vec![0.0f32; n]);
    for _ in 0..3 {
        serial.forward(Io::Out { x: &x, y: &mut a }, None).unwrap();
        pool(3).install(|| par.forward(Io::Out { x: &x, y: &mut b }, None).unwrap());
        assert_same(&a, &b, "layer");
    }
    assert_eq!(serial.offset(), par.offset());
    assert_eq!(par.offset(), 3 * n as u64);
}
