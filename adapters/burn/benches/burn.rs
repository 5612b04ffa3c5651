//! The adapter against burn's own dropout on the Flex CPU backend, forward and forward +
//! backward, f32 and bf16, at [512, 4096] and [32, 256].
//!
//! Yardsticks: burn has no copy operation (a clone shares the buffer), so `x * 1.0`, its
//! cheapest pass that reads and writes every element, stands for the tensor copy; and the
//! same loss and backward pass without dropout for forward + backward.
//!
//! `cargo bench -p simd-dropout-burn`

use burn::nn::DropoutConfig as BurnDropoutConfig;
use burn::tensor::{DType, Device, Distribution, Tensor};
use criterion::{Criterion, criterion_group, criterion_main};
use simd_dropout_burn::{DropoutConfig, Keep};
use std::hint::black_box;
use std::time::Duration;

fn benches(c: &mut Criterion) {
    let device = Device::flex().autodiff();
    for (rows, cols) in [(512usize, 4096usize), (32, 256)] {
        for dtype in [DType::F32, DType::BF16] {
            let x = Tensor::<2>::random([rows, cols], Distribution::Uniform(-1.0, 1.0), &device)
                .cast(dtype);
            let v = x.clone().require_grad();
            let burn_drop = BurnDropoutConfig::new(0.1).init();
            let ours = DropoutConfig::new(0.1).with_seed(1).init().unwrap();
            let ours_recompute = DropoutConfig::new(0.1)
                .with_seed(1)
                .with_keep(Keep::Recompute)
                .init()
                .unwrap();
            let mut g = c.benchmark_group(format!("burn/{dtype:?}/{rows}x{cols}"));
            g.sample_size(20)
                .measurement_time(Duration::from_secs(2))
                .warm_up_time(Duration::from_millis(300));
            g.bench_function("tensor_copy", |b| b.iter(|| black_box(x.clone()) * 1.0));
            g.bench_function("forward/burn_nn", |b| {
                b.iter(|| burn_drop.forward(black_box(x.clone())))
            });
            g.bench_function("forward/simd_dropout", |b| {
                b.iter(|| ours.forward(black_box(x.clone())))
            });
            g.bench_function("forward_backward/no_dropout", |b| {
                b.iter(|| v.clone().sum().backward())
            });
            g.bench_function("forward_backward/burn_nn", |b| {
                b.iter(|| burn_drop.forward(v.clone()).sum().backward())
            });
            g.bench_function("forward_backward/simd_dropout", |b| {
                b.iter(|| ours.forward(v.clone()).sum().backward())
            });
            g.bench_function("forward_backward/simd_dropout_recompute", |b| {
                b.iter(|| ours_recompute.forward(v.clone()).sum().backward())
            });
            g.finish();
        }
    }
}

criterion_group!(burn, benches);
criterion_main!(burn);
