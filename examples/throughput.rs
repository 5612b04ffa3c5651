//! A quick throughput table for users who will not wait for criterion: per operation and size,
//! ns per element, GB/s of the bytes the operation must move, and the ratio to a memcpy of the
//! same bytes measured in the same run (median of several repetitions), beside the plain
//! scaling loops `y = x * s` and `x *= s` (no random numbers); then the fixed cost of a call
//! (the per-call curve of `benches/calls.rs`).
//!
//! ```text
//! cargo run --release --example throughput                 # detected backend, f32
//! cargo run --release --example throughput -- portable bf16 # a chosen backend and type
//! cargo run --release --example throughput -- all f16 quick # every backend, small sizes only
//! cargo run --release --example throughput -- f64           # f32 (default), f64, f16, bf16
//! ```

use half::{bf16, f16};
use simd_dropout::{Backend, Bits, BitsMut, Dropout, Element, Io, Seed, mask_words};
use std::hint::black_box;
use std::time::Instant;

/// The element types' multiply, for the plain scaling loops (f16 and bf16 through f32, as
/// the kernels compute them).
trait Mul: Copy {
    fn mul(a: Self, b: Self) -> Self;
}

impl Mul for f32 {
    fn mul(a: f32, b: f32) -> f32 {
        a * b
    }
}

impl Mul for f64 {
    fn mul(a: f64, b: f64) -> f64 {
        a * b
    }
}

impl Mul for f16 {
    fn mul(a: f16, b: f16) -> f16 {
        f16::from_f32(a.to_f32() * b.to_f32())
    }
}

impl Mul for bf16 {
    fn mul(a: bf16, b: bf16) -> bf16 {
        bf16::from_f32(a.to_f32() * b.to_f32())
    }
}

/// The fixed cost of a call: forward with a mask on f32 from 64 to 64Ki elements, stateless
/// and through the layer; the overhead is the 256-element time minus 256 times the per-element
/// time at 64Ki.
fn calls(backends: &[Backend]) {
    const SIZES: [usize; 6] = [64, 256, 1 << 10, 1 << 12, 1 << 14, 1 << 16];
    println!("\nper call, forward + mask, f32 (ns per call; median of 201 runs)");
    print!("{:<10} {:<10}", "backend", "call");
    SIZES.iter().for_each(|n| print!(" {n:>8}"));
    println!(" {:>9}", "overhead");
    let seed = Seed::new(42, 54);
    for &b in backends {
        let layer = Dropout::new(0.1, seed).unwrap().with_backend(b);
        for stateful in [false, true] {
            let times: Vec<f64> = SIZES
                .iter()
                .map(|&n| {
                    let x: Vec<f32> = (0..n).map(|i| (i % 200) as f32).collect();
                    let (mut y, mut m) = (vec![0.0f32; n], vec![0u64; mask_words(n)]);
                    // Several calls per timing: one call of 64 elements is near the clock's
                    // resolution.
                    let per = (1 << 16) / n;
                    let secs = median_secs(201, || {
                        for _ in 0..per {
                            let io = Io::Out {
                                x: black_box(&x),
                                y: &mut y,
                            };
                            let mask = Some(BitsMut::new(&mut m));
                            if stateful {
                                layer.forward(io, mask).unwrap();
                            } else {
                                b.forward(0.1, seed, 12_345, io, mask).unwrap();
                            }
                        }
                    });
                    secs / per as f64
                })
                .collect();
            let name = if stateful { "layer" } else { "stateless" };
            print!("{:<10} {name:<10}", b.name());
            times.iter().for_each(|t| print!(" {:>8.1}", t * 1e9));
            let overhead = times[1] - 256.0 * times[5] / 65536.0;
            println!(" {:>9.1}", overhead * 1e9);
        }
    }
}

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

fn table<T: Element + From<u8> + Mul>(backends: &[Backend], sizes: &[usize]) {
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
        // The plain scaling loops (no RNG, no mask) on the same bytes: what a kernel that hides
        // its random numbers behind the memory traffic would approach.
        let scale = T::from(3);
        let plain_row = |name: &str, secs: f64| {
            let bps = 2.0 * size * n as f64 / secs;
            println!(
                "{:<10} {:<22} {:>6} {:>9.3} {:>8.2} {:>9.2}",
                "-",
                name,
                label,
                secs * 1e9 / n as f64,
                bps / 1e9,
                bps / memcpy_bps
            );
        };
        let s = median_secs(reps, || {
            for (yo, &xi) in y.iter_mut().zip(black_box(&x)) {
                *yo = T::mul(xi, scale);
            }
        });
        plain_row("scale loop y = x * s", s);
        let s = median_secs(reps, || y.iter_mut().for_each(|v| *v = T::mul(*v, scale)));
        plain_row("scale loop x *= s", s);
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
    calls(&backends);
}
