//! The SPEC 5 variants on f32 against a memcpy of the same element count, with throughput in
//! the bytes each variant must move (memcpy's: its read and its write).
//!
//! `cargo bench --bench variants`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use simd_dropout::{mask_words, Backend, Seed, Shape};
use std::hint::black_box;
use std::time::Duration;

const SEED: Seed = Seed::new(42, 54);

/// `n` f32 starting `offset` bytes past a 4 KiB boundary (see benches/dropout.rs: fixed,
/// distinct offsets keep the allocator from creating 4K aliasing between buffers).
fn placed(buf: &mut Vec<f32>, n: usize, offset: usize) -> &mut [f32] {
    *buf = vec![0.0; n + 2048];
    let skip = (4096 + offset - buf.as_ptr() as usize % 4096) % 4096 / 4;
    let s = &mut buf[skip..skip + n];
    for (i, v) in s.iter_mut().enumerate() {
        *v = (i % 1000) as f32 - 500.0;
    }
    s
}

fn benches(c: &mut Criterion) {
    let b = Backend::detect();
    for (n, label) in [(1usize << 20, "1Mi"), (1 << 26, "64Mi")] {
        let (mut xb, mut yb, mut rb) = (Vec::new(), Vec::new(), Vec::new());
        let x: &[f32] = placed(&mut xb, n, 0);
        let y = placed(&mut yb, n, 2048);
        let r: &[f32] = placed(&mut rb, n, 1024);
        let mut m = vec![0u64; mask_words(n)];
        let cols = 1024;
        let bias = vec![0.5f32; cols];
        let mut g_bias = vec![0.0f32; cols];
        let mut g = c.benchmark_group(format!("variants/f32/{label}"));
        if n > 1 << 24 {
            g.sample_size(10).measurement_time(Duration::from_secs(3));
        } else {
            g.sample_size(30).measurement_time(Duration::from_secs(2));
        }
        g.warm_up_time(Duration::from_millis(500));
        let elem = |bytes: f64| Throughput::Bytes((bytes * n as f64) as u64);
        g.throughput(elem(8.0));
        g.bench_function("memcpy", |bch| bch.iter(|| y.copy_from_slice(black_box(x))));

        // Broadcast: x and y (the mask is a few bits per row).
        g.throughput(elem(8.0));
        let shapes = [
            ("channels_nchw", Shape::channels(64, 16, n / 1024)),
            (
                "channels_last",
                Shape::channels_last(16, n / (16 * 256), 256),
            ),
            ("columns", Shape::columns(n / 4096, 4096)),
            ("drop_path", Shape::samples(64, n / 64)),
        ];
        for (name, shape) in shapes {
            g.bench_function(format!("{}/broadcast_{name}", b.name()), |bch| {
                bch.iter(|| b.broadcast_forward(0.1, SEED, 0, shape, black_box(x), y, &mut m))
            });
        }
        g.throughput(elem(8.125));
        g.bench_function(format!("{}/alpha_forward", b.name()), |bch| {
            bch.iter(|| b.alpha_forward(0.1, SEED, 0, black_box(x), y, &mut m))
        });
        g.bench_function(format!("{}/alpha_backward", b.name()), |bch| {
            bch.iter(|| b.alpha_backward(0.1, black_box(&m), black_box(x), y))
        });
        // Fused: x and the residual read, y written, the mask.
        g.throughput(elem(12.125));
        g.bench_function(format!("{}/fused_forward", b.name()), |bch| {
            bch.iter(|| b.fused_forward(0.1, SEED, 0, black_box(x), &bias, r, y, &mut m))
        });
        // Fused backward: gy read, gx written (and read again for the bias sums), the mask.
        g.throughput(elem(8.125));
        g.bench_function(format!("{}/fused_backward", b.name()), |bch| {
            bch.iter(|| b.fused_backward(0.1, black_box(&m), black_box(x), y, &mut g_bias))
        });
        g.finish();
    }
}

criterion_group!(variants, benches);
criterion_main!(variants);
