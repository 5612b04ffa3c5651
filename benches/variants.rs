//! The variants (contract section 7) on f32 against a memcpy of the same element count, with throughput in
//! the bytes each variant must move (memcpy's: its read and its write).
//!
//! `cargo bench --bench variants`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use simd_dropout::{Backend, Bits, BitsMut, Blocks, Io, Seed, Shape, mask_words};
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
    let sizes = [(1usize << 16, "64Ki"), (1 << 20, "1Mi"), (1 << 26, "64Mi")];
    for (n, label) in sizes {
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
        // The yardsticks: plain element dropout (the variants' in-cache target is a time per
        // element within 1.25x of it), and plain loops with each variant's arithmetic and
        // bytes but no random numbers (their DRAM target).
        g.bench_function(format!("{}/forward_mask", b.name()), |bch| {
            bch.iter(|| {
                let io = Io::Out {
                    x: black_box(x),
                    y: &mut *y,
                };
                b.forward(0.1, SEED, 0, io, Some(BitsMut::new(&mut m)))
            })
        });
        g.bench_function("scale_loop", |bch| {
            bch.iter(|| {
                let s = black_box(1.0f32 / 0.9);
                for (o, &i) in y.iter_mut().zip(black_box(x)) {
                    *o = i * s;
                }
            })
        });
        g.bench_function("alpha_loop", |bch| {
            bch.iter(|| {
                let (a, c) = (black_box(0.9f32), black_box(0.2f32));
                for (o, &i) in y.iter_mut().zip(black_box(x)) {
                    *o = i * a + c;
                }
            })
        });
        g.bench_function("fused_loop", |bch| {
            bch.iter(|| {
                let s = black_box(1.0f32 / 0.9);
                let rows = y.chunks_exact_mut(cols).zip(x.chunks_exact(cols));
                for ((yr, xr), rr) in rows.zip(black_box(r).chunks_exact(cols)) {
                    for (((o, &xv), &rv), &bv) in yr.iter_mut().zip(xr).zip(rr).zip(&bias) {
                        *o = rv + (xv + bv) * s;
                    }
                }
            })
        });
        g.bench_function("fused_backward_loop", |bch| {
            bch.iter(|| {
                let s = black_box(1.0f32 / 0.9);
                g_bias.fill(0.0);
                for (gx, gy) in y
                    .chunks_exact_mut(cols)
                    .zip(black_box(x).chunks_exact(cols))
                {
                    for ((o, &v), acc) in gx.iter_mut().zip(gy).zip(g_bias.iter_mut()) {
                        *o = v * s;
                        *acc += *o;
                    }
                }
            })
        });

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
                bch.iter(|| {
                    let io = Io::Out {
                        x: black_box(x),
                        y: &mut *y,
                    };
                    b.broadcast_forward(shape, 0.1, SEED, 0, io, Some(BitsMut::new(&mut m)))
                })
            });
        }
        g.throughput(elem(8.125));
        g.bench_function(format!("{}/alpha_forward", b.name()), |bch| {
            bch.iter(|| {
                let io = Io::Out {
                    x: black_box(x),
                    y: &mut *y,
                };
                b.alpha_forward(0.1, SEED, 0, io, Some(BitsMut::new(&mut m)))
            })
        });
        g.bench_function(format!("{}/alpha_backward", b.name()), |bch| {
            bch.iter(|| {
                let io = Io::Out {
                    x: black_box(x),
                    y: &mut *y,
                };
                b.alpha_backward(0.1, SEED, 0, io, Some(Bits::new(black_box(&m))))
            })
        });
        // Fused: x and the residual read, y written, the mask.
        g.throughput(elem(12.125));
        g.bench_function(format!("{}/fused_forward", b.name()), |bch| {
            bch.iter(|| {
                let io = Io::Out {
                    x: black_box(x),
                    y: &mut *y,
                };
                b.fused_forward(&bias, r, 0.1, SEED, 0, io, Some(BitsMut::new(&mut m)))
            })
        });
        // Fused backward: gy read, gx written (and read again for the bias sums), the mask.
        g.throughput(elem(8.125));
        g.bench_function(format!("{}/fused_backward", b.name()), |bch| {
            bch.iter(|| {
                let io = Io::Out {
                    x: black_box(x),
                    y: &mut *y,
                };
                b.fused_backward(
                    &mut g_bias,
                    0.1,
                    SEED,
                    0,
                    io,
                    Some(Bits::new(black_box(&m))),
                )
            })
        });
        g.finish();
    }
}

/// Narrow broadcast shapes (rows shorter than a mask word, decisions about as many as
/// elements) against element dropout without a mask on the same elements.
fn narrow(c: &mut Criterion) {
    let b = Backend::detect();
    let n = 1usize << 20;
    let (mut xb, mut yb) = (Vec::new(), Vec::new());
    let x: &[f32] = placed(&mut xb, n, 0);
    let y = placed(&mut yb, n, 2048);
    let mut g = c.benchmark_group("variants/narrow/f32/1Mi");
    g.sample_size(30)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(300));
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("memcpy", |bch| bch.iter(|| y.copy_from_slice(black_box(x))));
    g.bench_function(format!("{}/forward_no_mask", b.name()), |bch| {
        bch.iter(|| {
            b.forward(
                0.1,
                SEED,
                0,
                Io::Out {
                    x: black_box(x),
                    y: &mut *y,
                },
                None,
            )
        })
    });
    let shapes = [
        ("n_1_1", Shape::new(n, 1, 1)),
        ("samples_half_2", Shape::samples(n / 2, 2)),
        ("half_1_2", Shape::new(n / 2, 1, 2)),
        ("quarter_2_2", Shape::new(n / 4, 2, 2)),
        ("samples_third_3", Shape::samples(n / 3, 3)),
        ("eighth_2_4", Shape::new(n / 8, 2, 4)),
        ("columns_16", Shape::columns(n / 16, 16)),
        ("channels_spatial_9", Shape::channels(n / 9 / 8, 8, 9)),
    ];
    for (name, shape) in shapes {
        let len = shape.elements().unwrap();
        g.bench_function(format!("{}/broadcast_{name}", b.name()), |bch| {
            bch.iter(|| {
                let io = Io::Out {
                    x: black_box(&x[..len]),
                    y: &mut y[..len],
                };
                b.broadcast_forward(shape, 0.1, SEED, 0, io, None)
            })
        });
    }
    g.finish();
}

/// Gaussian dropout in cache (64Ki f32: x and y fill half of a 1 MiB L2) against the plain
/// forward with and without a mask on the same elements.
fn gaussian(c: &mut Criterion) {
    let b = Backend::detect();
    let n = 1usize << 16;
    let (mut xb, mut yb) = (Vec::new(), Vec::new());
    let x: &[f32] = placed(&mut xb, n, 0);
    let y = placed(&mut yb, n, 2048);
    let mut m = vec![0u64; mask_words(n)];
    let mut g = c.benchmark_group("variants/gaussian/f32/64Ki");
    g.sample_size(50)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(300));
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("memcpy", |bch| bch.iter(|| y.copy_from_slice(black_box(x))));
    g.bench_function(format!("{}/forward_no_mask", b.name()), |bch| {
        bch.iter(|| {
            b.forward(
                0.1,
                SEED,
                0,
                Io::Out {
                    x: black_box(x),
                    y: &mut *y,
                },
                None,
            )
        })
    });
    g.bench_function(format!("{}/forward_mask", b.name()), |bch| {
        bch.iter(|| {
            let io = Io::Out {
                x: black_box(x),
                y: &mut *y,
            };
            b.forward(0.1, SEED, 0, io, Some(BitsMut::new(&mut m)))
        })
    });
    g.bench_function(format!("{}/gaussian_forward", b.name()), |bch| {
        bch.iter(|| {
            let io = Io::Out {
                x: black_box(x),
                y: &mut *y,
            };
            b.gaussian_forward(0.1, SEED, 0, io)
        })
    });
    g.finish();
}

/// DropBlock 2-D on `[32, 64, 56, 56]` f32 with `block_size` 7 (a ResNet stage) against the
/// plain forward with a mask on the same elements.
fn dropblock(c: &mut Criterion) {
    let b = Backend::detect();
    let blocks = Blocks::nchw(32, 64, 56, 56, 7);
    let n = blocks.elements().unwrap_or(0);
    let (mut xb, mut yb) = (Vec::new(), Vec::new());
    let x: &[f32] = placed(&mut xb, n, 0);
    let y = placed(&mut yb, n, 2048);
    let mut m = vec![0u64; mask_words(n)];
    let mut g = c.benchmark_group("variants/dropblock/f32/32x64x56x56");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_millis(500));
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("memcpy", |bch| bch.iter(|| y.copy_from_slice(black_box(x))));
    g.bench_function(format!("{}/forward_mask", b.name()), |bch| {
        bch.iter(|| {
            let io = Io::Out {
                x: black_box(x),
                y: &mut *y,
            };
            b.forward(0.1, SEED, 0, io, Some(BitsMut::new(&mut m)))
        })
    });
    // The same tensor channels-first and channels-last (the same blocks, placed apart).
    for (layout, blocks) in [("", blocks), ("_nhwc", Blocks::nhwc(32, 56, 56, 64, 7))] {
        g.bench_function(format!("{}/block_forward_mask{layout}", b.name()), |bch| {
            bch.iter(|| {
                let io = Io::Out {
                    x: black_box(x),
                    y: &mut *y,
                };
                b.block_forward(blocks, 0.1, SEED, 0, io, Some(BitsMut::new(&mut m)))
            })
        });
        g.bench_function(
            format!("{}/block_forward_no_mask{layout}", b.name()),
            |bch| {
                bch.iter(|| {
                    let io = Io::Out {
                        x: black_box(x),
                        y: &mut *y,
                    };
                    b.block_forward(blocks, 0.1, SEED, 0, io, None)
                })
            },
        );
    }
    g.bench_function(format!("{}/block_backward_mask", b.name()), |bch| {
        bch.iter(|| {
            let io = Io::Out {
                x: black_box(x),
                y: &mut *y,
            };
            b.block_backward(blocks, 0.1, SEED, 0, io, Some(Bits::new(black_box(&m))))
        })
    });
    g.finish();
}

criterion_group!(variants, benches, narrow, gaussian, dropblock);
criterion_main!(variants);
