//! The adapter against candle's own dropout, forward and forward + backward, f32 and bf16,
//! at [512, 4096] and [32, 256], with candle's tensor copy as the yardstick.
//!
//! `cargo bench -p simd-dropout-candle`

use candle_core::{DType, Device, Tensor, Var};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;

fn benches(c: &mut Criterion) {
    for (rows, cols) in [(512usize, 4096usize), (32, 256)] {
        for dtype in [DType::F32, DType::BF16] {
            let x = Tensor::rand(-1f32, 1f32, (rows, cols), &Device::Cpu)
                .and_then(|t| t.to_dtype(dtype))
                .unwrap();
            let v = Var::from_tensor(&x).unwrap();
            let mut g = c.benchmark_group(format!("candle/{dtype:?}/{rows}x{cols}"));
            g.sample_size(20)
                .measurement_time(Duration::from_secs(2))
                .warm_up_time(Duration::from_millis(300));
            g.bench_function("tensor_copy", |b| b.iter(|| black_box(&x).copy().unwrap()));
            g.bench_function("forward/candle_nn", |b| {
                b.iter(|| candle_nn::ops::dropout(black_box(&x), 0.1).unwrap())
            });
            g.bench_function("forward/simd_dropout", |b| {
                b.iter(|| simd_dropout_candle::dropout(black_box(&x), 0.1, 1, 0).unwrap())
            });
            // The autograd yardstick: the same loss and backward pass with no dropout.
            g.bench_function("forward_backward/no_dropout", |b| {
                b.iter(|| v.as_tensor().sum_all().unwrap().backward().unwrap())
            });
            g.bench_function("forward_backward/candle_nn", |b| {
                b.iter(|| {
                    let y = candle_nn::ops::dropout(v.as_tensor(), 0.1).unwrap();
                    y.sum_all().unwrap().backward().unwrap()
                })
            });
            g.bench_function("forward_backward/simd_dropout", |b| {
                b.iter(|| {
                    let y = simd_dropout_candle::dropout(v.as_tensor(), 0.1, 1, 0).unwrap();
                    y.sum_all().unwrap().backward().unwrap()
                })
            });
            g.finish();
        }
    }
}

criterion_group!(candle, benches);
criterion_main!(candle);
