//! Per-call overhead: the forward with a mask on f32 at 64, 256, 1Ki, 4Ki, 16Ki and 64Ki
//! elements, through the stateless call ([`Backend::forward`]) and through the layer
//! ([`Dropout::forward`], which also reserves its stream positions), with memcpy of the same
//! elements in each group. The fixed cost of a call is the 256-element time minus 256 times
//! the per-element time at 64Ki.
//!
//! `cargo bench --bench calls`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use simd_dropout::{Backend, BitsMut, Dropout, Io, Seed, mask_words};
use std::hint::black_box;
use std::time::Duration;

const SEED: Seed = Seed::new(42, 54);
const SIZES: [(usize, &str); 6] = [
    (64, "64"),
    (256, "256"),
    (1 << 10, "1Ki"),
    (1 << 12, "4Ki"),
    (1 << 14, "16Ki"),
    (1 << 16, "64Ki"),
];

fn calls(c: &mut Criterion) {
    let b = Backend::detect();
    for (n, label) in SIZES {
        let x: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 - 500.0).collect();
        let mut y = vec![0.0f32; n];
        let mut m = vec![0u64; mask_words(n)];
        let layer = Dropout::new(0.1, SEED).unwrap().with_backend(b);
        let mut g = c.benchmark_group(format!("calls/forward_mask/f32/{label}"));
        g.sample_size(50)
            .measurement_time(Duration::from_secs(2))
            .warm_up_time(Duration::from_millis(300));
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function("memcpy", |bch| {
            bch.iter(|| y.copy_from_slice(black_box(&x)))
        });
        g.bench_function(format!("{}/stateless", b.name()), |bch| {
            bch.iter(|| {
                let io = Io::Out {
                    x: black_box(&x),
                    y: &mut y,
                };
                b.forward(0.1, SEED, black_box(12_345), io, Some(BitsMut::new(&mut m)))
            })
        });
        g.bench_function(format!("{}/layer", b.name()), |bch| {
            bch.iter(|| {
                let io = Io::Out {
                    x: black_box(&x),
                    y: &mut y,
                };
                layer.forward(io, Some(BitsMut::new(&mut m)))
            })
        });
        g.finish();
    }
}

criterion_group!(benches, calls);
criterion_main!(benches);
