//! The rayon path on this machine's cores: one thread against two, with a two-thread memcpy
//! of the same bytes (rayon `par_chunks`) as the yardstick in the same group.
//!
//! `cargo bench --features rayon --bench parallel`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rayon::prelude::*;
use simd_dropout::{Backend, BitsMut, Error, Io, Seed, mask_words};
use std::hint::black_box;
use std::time::Duration;

const SEED: Seed = Seed::new(42, 54);

fn placed(buf: &mut Vec<f32>, n: usize, offset: usize) -> &mut [f32] {
    *buf = vec![0.0; n + 2048];
    let skip = (4096 + offset - buf.as_ptr() as usize % 4096) % 4096 / 4;
    &mut buf[skip..skip + n]
}

/// Where splitting starts to pay: one thread against the same call cut in two halves under
/// `rayon::join` (what the parallel path does above its threshold).
fn threshold(c: &mut Criterion) {
    let two = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let b = Backend::detect();
    for (n, label) in [
        (1usize << 14, "16Ki"),
        (1 << 15, "32Ki"),
        (1 << 16, "64Ki"),
        (1 << 17, "128Ki"),
        (1 << 18, "256Ki"),
        (1 << 19, "512Ki"),
    ] {
        let (mut xb, mut yb) = (Vec::new(), Vec::new());
        let x: &[f32] = placed(&mut xb, n, 0);
        let y = placed(&mut yb, n, 2048);
        let mut m = vec![0u64; mask_words(n)];
        let mut g = c.benchmark_group(format!("parallel/threshold/f32/{label}"));
        g.sample_size(50)
            .measurement_time(Duration::from_secs(2))
            .warm_up_time(Duration::from_millis(300));
        g.throughput(Throughput::Bytes((8 * n + n / 8) as u64));
        g.bench_function("1_thread", |bch| {
            bch.iter(|| fwd(b, 0, black_box(x), y, &mut m))
        });
        g.bench_function("split_2_threads", |bch| {
            bch.iter(|| {
                let h = n / 2;
                let (y1, y2) = y.split_at_mut(h);
                let (m1, m2) = m.split_at_mut(h / 64);
                two.install(|| {
                    rayon::join(
                        || fwd(b, 0, black_box(&x[..h]), y1, m1),
                        || fwd(b, h as u64, black_box(&x[h..]), y2, m2),
                    )
                })
            })
        });
        g.finish();
    }
}

/// Forward with mask at p = 0.1.
fn fwd(b: Backend, offset: u64, x: &[f32], y: &mut [f32], m: &mut [u64]) -> Result<(), Error> {
    b.forward(0.1, SEED, offset, Io::Out { x, y }, Some(BitsMut::new(m)))
}

fn benches(c: &mut Criterion) {
    let two = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let b = Backend::detect();
    for (n, label) in [(1usize << 20, "1Mi"), (1 << 26, "64Mi")] {
        let (mut xb, mut yb) = (Vec::new(), Vec::new());
        let x = placed(&mut xb, n, 0);
        for (i, v) in x.iter_mut().enumerate() {
            *v = (i % 1000) as f32;
        }
        let x: &[f32] = x;
        let y = placed(&mut yb, n, 2048);
        let mut m = vec![0u64; mask_words(n)];
        let mut g = c.benchmark_group(format!("parallel/forward_mask/f32/{label}"));
        g.sample_size(if n > 1 << 24 { 10 } else { 30 })
            .measurement_time(Duration::from_secs(3))
            .warm_up_time(Duration::from_millis(500));
        g.throughput(Throughput::Bytes((8 * n) as u64));
        g.bench_function("memcpy_2_threads", |bch| {
            bch.iter(|| {
                two.install(|| {
                    y.par_chunks_mut(1 << 16)
                        .zip(black_box(x).par_chunks(1 << 16))
                        .for_each(|(d, s)| d.copy_from_slice(s))
                })
            })
        });
        // The plain scaling loop y = x * s (no RNG, no mask) on the same two threads.
        g.bench_function("scale_loop_2_threads", |bch| {
            bch.iter(|| {
                let s = black_box(3.0f32);
                two.install(|| {
                    y.par_chunks_mut(1 << 16)
                        .zip(black_box(x).par_chunks(1 << 16))
                        .for_each(|(d, src)| d.iter_mut().zip(src).for_each(|(o, &i)| *o = i * s))
                })
            })
        });
        g.throughput(Throughput::Bytes((8 * n + n / 8) as u64));
        g.bench_function(format!("{}_1_thread", b.name()), |bch| {
            bch.iter(|| fwd(b, 0, black_box(x), y, &mut m))
        });
        let par = b.parallel();
        g.bench_function(format!("{}_2_threads", b.name()), |bch| {
            bch.iter(|| two.install(|| fwd(par, 0, black_box(x), y, &mut m)))
        });
        g.finish();
    }
}

criterion_group!(parallel, benches, threshold);
criterion_main!(parallel);
