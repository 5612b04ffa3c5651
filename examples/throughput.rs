//! A quick throughput table for users who will not wait for criterion: per operation and size,
//! ns per element, GB/s of the bytes the operation must move, and the ratio to a memcpy of the
//! same bytes measured in the same run (median of several repetitions).
//!
//! ```text
//! cargo run --release --example throughput                 # detected backend, f32
//! cargo run --release --example throughput -- portable bf16 # a chosen backend and type
//! cargo run --release --example throughput -- all f16 quick # every backend, small sizes only
//! cargo run --release --example throughput -- f64           # f32 (default), f64, f16, bf16
//! ```

use half::{bf16, f16};
use simd_dropout::{Backend, Bits, BitsMut, Element, Io, Seed, mask_words};
use std::hint::black_box;
use std::time::Instant;

/// Median seconds of `reps` runs of `f`, with one warm-up run.
fn median_secs(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[reps / 2]
}

fn table<T: Element + From<u8>>(backends: &[Backend], sizes: &[usize]) {
    let size = std::mem::size_of::<T>() as f64;
    println!(
        "{:<10} {:<22} {:>6} {:>9} {:>8} {:>9}",
        "backend", "operation", "size", "ns/elem", "GB/s", "x memcpy"
    );
    for &n in sizes {
        let reps = if n >= 1 << 24 { 5 } else { 21 };
        let x: Vec<T> = (0..n).map(|i| T::from((i % 200) as u8)).collect();
        let mut y = vec![T::ZERO; n];
        let mut m = vec![0u64; mask_words(n)];
        let seed = Seed::new(42, 54);
        let memcpy = median_secs(reps, || y.copy_from_slice(black_box(&x)));
        let memcpy_bps = 2.0 * size * n as f64 / memcpy;
        let label = if n >= 1 << 20 {
            format!("{}Mi", n >> 20)
        } else {
            format!("{}Ki", n >> 10)
        };
        println!(
            "{:<10} {:<22} {:>6} {:>9.3} {:>8.2} {:>9}",
            "-",
            "memcpy",
            label,
            memcpy * 1e9 / n as f64,
            memcpy_bps / 1e9,
            "1.00"
        );
        for &b in backends {
            let mask_bytes = 0.125;
            let row = |name: &str, bytes_per_elem: f64, secs: f64| {
                let bps = bytes_per_elem * n as f64 / secs;
                println!(
                    "{:<10} {:<22} {:>6} {:>9.3} {:>8.2} {:>9.2}",
                    b.name(),
                    name,
                    label,
                    secs * 1e9 / n as f64,
                    bps / 1e9,
                    bps / memcpy_bps
                );
            };
            for p in [0.1, 0.5] {
                let s = median_secs(reps, || {
                    let io = Io::Out {
                        x: black_box(&x),
                        y: &mut y,
                    };
                    b.forward(p, seed, 0, io, Some(BitsMut::new(&mut m)))
                        .unwrap()
                });
                row(&format!("forward+mask p={p}"), 2.0 * size + mask_bytes, s);
            }
            let s = median_secs(reps, || {
                let mask = Some(BitsMut::new(&mut m));
                b.forward(0.1, seed, 0, Io::InPlace(&mut y), mask).unwrap()
            });
            row("forward in place", 2.0 * size + mask_bytes, s);
            let s = median_secs(reps, || {
                let io = Io::Out {
                    x: black_box(&x),
                    y: &mut y,
                };
                b.forward(0.1, seed, 0, io, None).unwrap()
            });
            row("forward no mask", 2.0 * size, s);
            let s = median_secs(reps, || {
                b.fill_mask(0.1, seed, 0, n, BitsMut::new(&mut m)).unwrap()
            });
            row("mask alone", mask_bytes, s);
            let s = median_secs(reps, || {
                let io = Io::Out {
                    x: black_box(&x),
                    y: &mut y,
                };
                let mask = Some(Bits::new(black_box(&m)));
                b.backward(0.1, seed, 0, io, mask).unwrap()
            });
            row("backward from mask", 2.0 * size + mask_bytes, s);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let has = |w: &str| args.iter().any(|a| a == w);
    let backends: Vec<Backend> = if has("all") {
        Backend::available().collect()
    } else if has("scalar") {
        vec![Backend::scalar()]
    } else if has("portable") {
        vec![Backend::portable()]
    } else {
        vec![Backend::detect()]
    };
    let sizes: &[usize] = if has("quick") {
        &[1 << 16, 1 << 20]
    } else {
        &[1 << 16, 1 << 20, 1 << 26]
    };
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    println!("CPU: {cpu}; detected backend: {}", Backend::detect().name());
    if has("f16") {
        println!("element: f16");
        table::<f16>(&backends, sizes);
    } else if has("f64") {
        println!("element: f64");
        table::<f64>(&backends, sizes);
    } else if has("bf16") {
        println!("element: bf16");
        table::<bf16>(&backends, sizes);
    } else {
        println!("element: f32");
        table::<f32>(&backends, sizes);
    }
}
