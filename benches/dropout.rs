//! Criterion benchmarks: every operation, element type, backend and size, each group with a
//! `memcpy` of the same element count (`copy_from_slice`) as the yardstick and, for f32
//! forward, the naive scalar one-liner (`rng.next_u32() >= t` per element with rand_pcg).
//!
//! Throughput is in the bytes each operation must move (for example 4 + 4 + 1/8 bytes per f32
//! element for a forward that writes its mask); memcpy's bytes are the read plus the write.
//!
//! ```text
//! cargo bench --bench dropout                           # everything (about 20 minutes)
//! cargo bench --bench dropout -- 'forward_mask/f32/64Ki' # one group
//! ```

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use half::{bf16, f16};
use rand_core::Rng;
use simd_dropout::{Backend, Bits, BitsMut, Element, Io, Seed, mask_words};
use std::hint::black_box;
use std::time::Duration;

const SIZES: [(usize, &str); 3] = [(1 << 16, "64Ki"), (1 << 20, "1Mi"), (1 << 26, "64Mi")];
const PS: [f64; 2] = [0.1, 0.5];
const SEED: Seed = Seed::new(42, 54);

#[derive(Clone, Copy, PartialEq)]
enum Op {
    ForwardMask,
    ForwardInPlace,
    ForwardNoMask,
    MaskAlone,
    ApplyMask,
}

impl Op {
    const ALL: [Op; 5] = [
        Op::ForwardMask,
        Op::ForwardInPlace,
        Op::ForwardNoMask,
        Op::MaskAlone,
        Op::ApplyMask,
    ];

    fn name(self) -> &'static str {
        match self {
            Op::ForwardMask => "forward_mask",
            Op::ForwardInPlace => "forward_in_place",
            Op::ForwardNoMask => "forward_no_mask_or_recompute_backward",
            Op::MaskAlone => "mask_alone",
            Op::ApplyMask => "backward_from_mask",
        }
    }

    /// Bytes the operation must move per element of `size` bytes.
    fn bytes(self, size: usize, n: usize) -> u64 {
        let data = 2 * size * n;
        let mask = n / 8;
        (match self {
            Op::ForwardMask | Op::ForwardInPlace | Op::ApplyMask => data + mask,
            Op::ForwardNoMask => data,
            Op::MaskAlone => mask,
        }) as u64
    }
}

/// The naive one-liner: one serial rand_pcg draw per element, made branch-free.
fn naive(x: &[f32], y: &mut [f32], p: f64) {
    let t = (p * 4_294_967_296.0).round() as u64;
    let s = (1.0 / (1.0 - p)) as f32;
    let mut rng = rand_pcg::Pcg32::new(SEED.state, SEED.stream);
    for (yo, &xi) in y.iter_mut().zip(x) {
        let keep = u64::from(rng.next_u32()) >= t;
        *yo = core::hint::select_unpredictable(keep, xi * s, 0.0);
    }
}

/// `n` elements starting `offset` bytes past a 4 KiB boundary. The allocator may place two
/// buffers at the same offset modulo 4 KiB (or 16 bytes apart), where every load falsely
/// depends on a recent store (4K aliasing) and memcpy and the kernels alike slow down several
/// times; fixed, distinct offsets make the runs comparable.
fn placed<T: Element>(buf: &mut Vec<T>, n: usize, offset: usize) -> &mut [T] {
    let size = std::mem::size_of::<T>();
    *buf = vec![T::ZERO; n + 8192 / size];
    let addr = buf.as_ptr() as usize;
    let skip = (4096 + offset - addr % 4096) % 4096 / size;
    &mut buf[skip..skip + n]
}

fn bench_type<T: Element + Into<f64> + From<i8>>(c: &mut Criterion, ty: &str) {
    for (n, label) in SIZES {
        let size = std::mem::size_of::<T>();
        let mut xbuf = Vec::new();
        let mut ybuf = Vec::new();
        let x = placed(&mut xbuf, n, 0);
        for (i, v) in x.iter_mut().enumerate() {
            *v = T::from(((i % 200) as i16 - 100) as i8);
        }
        let x: &[T] = x;
        let y = placed(&mut ybuf, n, 2048);
        let mut m = vec![0u64; mask_words(n)];
        for op in Op::ALL {
            let mut g = c.benchmark_group(format!("{}/{ty}/{label}", op.name()));
            if n >= 1 << 24 {
                g.sample_size(10).measurement_time(Duration::from_secs(3));
            } else {
                g.sample_size(30).measurement_time(Duration::from_secs(2));
            }
            g.warm_up_time(Duration::from_millis(500));
            // The yardstick: memcpy of n elements (its bytes: the read and the write).
            g.throughput(Throughput::Bytes((2 * size * n) as u64));
            g.bench_function("memcpy", |b| b.iter(|| y.copy_from_slice(black_box(x))));
            g.throughput(Throughput::Bytes(op.bytes(size, n)));
            for backend in Backend::available() {
                for p in PS {
                    let id = BenchmarkId::new(backend.name(), format!("p{p}"));
                    g.bench_function(id, |b| match op {
                        Op::ForwardMask => b.iter(|| {
                            let io = Io::Out {
                                x: black_box(x),
                                y: &mut *y,
                            };
                            backend.forward(p, SEED, 0, io, Some(BitsMut::new(&mut m)))
                        }),
                        Op::ForwardInPlace => b.iter(|| {
                            let io = Io::InPlace(&mut *y);
                            backend.forward(p, SEED, 0, io, Some(BitsMut::new(&mut m)))
                        }),
                        Op::ForwardNoMask => b.iter(|| {
                            let io = Io::Out {
                                x: black_box(x),
                                y: &mut *y,
                            };
                            backend.forward(p, SEED, 0, io, None)
                        }),
                        Op::MaskAlone => {
                            b.iter(|| backend.fill_mask(p, SEED, 0, n, BitsMut::new(&mut m)))
                        }
                        Op::ApplyMask => b.iter(|| {
                            let io = Io::Out {
                                x: black_box(x),
                                y: &mut *y,
                            };
                            backend.backward(p, SEED, 0, io, Some(Bits::new(black_box(&m))))
                        }),
                    });
                }
            }
            // The plain scaling loop on the same elements (no RNG, no mask): what a kernel that
            // hides its random numbers behind the memory traffic approaches.
            if ty == "f32" && op != Op::MaskAlone {
                let (mut xb, mut yb) = (Vec::new(), Vec::new());
                let xf: &[f32] = placed::<f32>(&mut xb, n, 0);
                let yf = placed::<f32>(&mut yb, n, 2048);
                g.throughput(Throughput::Bytes((2 * size * n) as u64));
                if op == Op::ForwardInPlace {
                    g.bench_function("scale_loop_in_place", |b| {
                        b.iter(|| {
                            let s = black_box(3.0f32);
                            yf.iter_mut().for_each(|v| *v *= s)
                        })
                    });
                } else {
                    g.bench_function("scale_loop", |b| {
                        b.iter(|| {
                            let s = black_box(3.0f32);
                            for (o, &i) in yf.iter_mut().zip(black_box(xf)) {
                                *o = i * s;
                            }
                        })
                    });
                }
            }
            if ty == "f32" && op == Op::ForwardNoMask {
                let (mut xb, mut yb) = (Vec::new(), Vec::new());
                let xf = placed::<f32>(&mut xb, n, 0);
                for (o, v) in xf.iter_mut().zip(x) {
                    *o = (*v).into() as f32;
                }
                let xf: &[f32] = xf;
                let yf = placed::<f32>(&mut yb, n, 2048);
                for p in PS {
                    let id = BenchmarkId::new("naive_one_liner", format!("p{p}"));
                    g.bench_function(id, |b| b.iter(|| naive(black_box(xf), yf, p)));
                }
            }
            g.finish();
        }
    }
}

fn benches(c: &mut Criterion) {
    bench_type::<f32>(c, "f32");
    bench_type::<f64>(c, "f64");
    bench_type::<f16>(c, "f16");
    bench_type::<bf16>(c, "bf16");
}

criterion_group!(dropout, benches);
criterion_main!(dropout);
