//! Strided views and mask conversions, f32, on the detected backend.
//!
//! - `views/f32/2048x2048`: the contiguous call, a transposed view (inner stride 2048) and a
//!   sliced view (every other row of a [4096, 2048] buffer), each one call with the bits of
//!   the contiguous call on the logical tensor, beside a memcpy of the same elements.
//! - `masks/4Mi`: expanding a mask to `{0, scale}` f32 values, to bytes and to bools, in
//!   bytes written per second.
//!
//! `cargo bench --bench views`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use simd_dropout::{Backend, Bits, BitsMut, Io, MaskRef, Seed, Strided, View, mask_words};
use std::hint::black_box;
use std::time::Duration;

const SEED: Seed = Seed::new(42, 54);

fn views(c: &mut Criterion) {
    let b = Backend::detect();
    let (r, k) = (2048usize, 2048usize);
    let n = r * k;
    let x: Vec<f32> = (0..2 * n).map(|i| (i % 1000) as f32).collect();
    let mut y = vec![0.0f32; n];
    let mut g = c.benchmark_group("views/f32/2048x2048");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    g.throughput(Throughput::Bytes((8 * n) as u64));
    g.bench_function("memcpy", |bch| {
        bch.iter(|| y.copy_from_slice(black_box(&x[..n])))
    });
    g.bench_function(format!("{}/contiguous", b.name()), |bch| {
        bch.iter(|| {
            b.forward(
                0.1,
                SEED,
                0,
                Io::Out {
                    x: black_box(&x[..n]),
                    y: &mut y,
                },
                None,
            )
        })
    });
    // The yardstick for the transposed view: the plain loop that moves the same bytes in the
    // same pattern (a transposing copy in 16 x 16 blocks, the best block size measured here).
    // On 4 KiB pages every column of the input is its own page, so any transpose is bound by
    // the TLB and the memory system rather than by arithmetic.
    g.bench_function("transpose_copy", |bch| {
        bch.iter(|| {
            let x = black_box(&x);
            for r0 in (0..r).step_by(16) {
                for c0 in (0..k).step_by(16) {
                    for c in c0..c0 + 16 {
                        let col = &x[c * r + r0..c * r + r0 + 16];
                        for (i, v) in col.iter().enumerate() {
                            y[(r0 + i) * k + c] = *v;
                        }
                    }
                }
            }
        })
    });
    let transposed = View::strided(&[r, k], &[1, r as isize], 0).unwrap();
    let sliced = View::strided(&[r, k], &[2 * k as isize, 1], 0).unwrap();
    for (name, view) in [("transposed", transposed), ("sliced_rows", sliced)] {
        let out = view.compact();
        g.bench_function(format!("{}/{name}", b.name()), |bch| {
            bch.iter(|| {
                let io = Strided::Out {
                    x: black_box(&x),
                    x_view: view,
                    y: &mut y,
                    y_view: out,
                };
                b.strided_forward(0.1, SEED, 0, io, None)
            })
        });
    }
    g.finish();
}

fn masks(c: &mut Criterion) {
    let b = Backend::detect();
    let n = 1usize << 22;
    let mut m = vec![0u64; mask_words(n)];
    b.fill_mask(0.5, SEED, 0, n, BitsMut::new(&mut m)).unwrap();
    let mask = MaskRef::new(&m, n).unwrap();
    let mut g = c.benchmark_group("masks/4Mi");
    g.sample_size(30)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(300));
    let mut values = vec![0.0f32; n];
    g.throughput(Throughput::Bytes((4 * n) as u64));
    g.bench_function("memcpy_f32", |bch| {
        let src = vec![1.0f32; n];
        bch.iter(|| values.copy_from_slice(black_box(&src)))
    });
    g.bench_function(format!("{}/expand_to_f32", b.name()), |bch| {
        bch.iter(|| b.expand_mask(0.5, Bits::new(black_box(&m)), &mut values))
    });
    g.throughput(Throughput::Bytes(n as u64));
    let mut bytes = vec![0u8; n];
    g.bench_function("to_bytes", |bch| {
        bch.iter(|| black_box(mask).write_bytes(&mut bytes))
    });
    let mut bools = vec![false; n];
    g.bench_function("to_bools", |bch| {
        bch.iter(|| black_box(mask).write_bools(&mut bools))
    });
    g.bench_function("iter_collect_bools (0.1's way)", |bch| {
        bch.iter(|| black_box(mask).iter().collect::<Vec<bool>>())
    });
    g.finish();
}

criterion_group!(benches, views, masks);
criterion_main!(benches);
