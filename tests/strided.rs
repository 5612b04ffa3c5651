//! Strided, windowed and sharded calls are bit-identical to the contiguous call on the full
//! logical tensor: random ranks, dimensions (zero included), axis orders, steps, reversed
//! axes and windows, on every backend, forward and backward, out of place and in place, with
//! the mask of the view's elements in row-major order at any start bit.

mod common;

use common::*;
use half::bf16;
use proptest::prelude::*;
use rand_core::Rng;
use rand_pcg::Pcg32;
use simd_dropout::{Backend, Bits, BitsMut, Seed, Strided, View, mask_words};

/// A random view of `dims` at `start` of `full`, laid out in a buffer with a random axis
/// order, random steps (padding) and random reversed axes. Returns the view and the buffer
/// size; `index(view index)` gives each element's buffer index.
struct Layout {
    view: View,
    size: usize,
    strides: Vec<isize>,
    base: usize,
}

impl Layout {
    fn random(g: &mut Pcg32, dims: &[usize], start: &[usize], full: &[usize]) -> Layout {
        let r = dims.len();
        // Axis order in memory (innermost first) and a step per axis.
        let mut order: Vec<usize> = (0..r).collect();
        for i in (1..r).rev() {
            order.swap(i, g.next_u32() as usize % (i + 1));
        }
        let mut strides = vec![0isize; r];
        let mut extent = 1usize;
        for &a in &order {
            let step = 1 + (g.next_u32() % 3) as usize;
            strides[a] = (extent * if a == order[0] { step } else { 1 }) as isize;
            extent = strides[a] as usize * dims[a].max(1) + (g.next_u32() % 2) as usize;
        }
        let mut base = (g.next_u32() % 3) as usize;
        for a in 0..r {
            if g.next_u32().is_multiple_of(4) && dims[a] > 0 {
                // Reverse the axis: start at its far end.
                base += strides[a] as usize * (dims[a] - 1);
                strides[a] = -strides[a];
            }
        }
        let size = base + extent + 3;
        let view = View::strided(dims, &strides, base)
            .unwrap()
            .within(start, full)
            .unwrap();
        Layout {
            view,
            size,
            strides,
            base,
        }
    }

    fn index(&self, idx: &[usize]) -> usize {
        let mut at = self.base as isize;
        for (i, s) in idx.iter().zip(&self.strides) {
            at += *i as isize * s;
        }
        at as usize
    }
}

/// Every multi-index of `dims` in row-major order.
fn indices(dims: &[usize]) -> Vec<Vec<usize>> {
    let n: usize = dims.iter().product();
    (0..n)
        .map(|mut k| {
            let mut idx = vec![0; dims.len()];
            for d in (0..dims.len()).rev() {
                idx[d] = k % dims[d];
                k /= dims[d];
            }
            idx
        })
        .collect()
}

fn row_major(idx: &[usize], full: &[usize]) -> usize {
    idx.iter().zip(full).fold(0, |acc, (&i, &f)| acc * f + i)
}

fn case(seed_bits: u64, p: f64) {
    let mut g = Pcg32::new(seed_bits, 17);
    let r = 1 + g.next_u32() as usize % 4;
    let full: Vec<usize> = (0..r).map(|_| 1 + g.next_u32() as usize % 7).collect();
    let start: Vec<usize> = full
        .iter()
        .map(|&f| g.next_u32() as usize % (f + 1))
        .collect();
    let dims: Vec<usize> = full
        .iter()
        .zip(&start)
        .map(|(&f, &s)| g.next_u32() as usize % (f - s + 1))
        .collect();
    let n: usize = dims.iter().product();
    let full_n: usize = full.iter().product();
    let seed = Seed::from_u64(seed_bits);
    let offset = u64::from(g.next_u32()) << 20;

    // The contract on the full logical tensor.
    let logical: Vec<bf16> = data(full_n, seed_bits);
    let keep = spec_keep(p, seed, offset, full_n);
    let want_full = spec_forward(&logical, &keep, p);

    let xl = Layout::random(&mut g, &dims, &start, &full);
    let yl = Layout::random(&mut g, &dims, &start, &full);
    let sentinel = bf16::from_f32(-7.0);
    let mut x = vec![sentinel; xl.size];
    let idx = indices(&dims);
    let pos: Vec<usize> = idx
        .iter()
        .map(|i| {
            row_major(
                &i.iter().zip(&start).map(|(a, b)| a + b).collect::<Vec<_>>(),
                &full,
            )
        })
        .collect();
    for (i, &q) in idx.iter().zip(&pos) {
        x[xl.index(i)] = logical[q];
    }
    let bit0 = g.next_u32() as usize % 70;
    for b in Backend::available() {
        let what = format!(
            "{} full {full:?} start {start:?} dims {dims:?} p {p}",
            b.name()
        );
        let mut y = vec![sentinel; yl.size];
        let mut m = vec![0xa5a5_a5a5_a5a5_a5a5u64; mask_words(bit0 + n) + 1];
        let before = m.clone();
        let io = Strided::Out {
            x: &x,
            x_view: xl.view,
            y: &mut y,
            y_view: yl.view,
        };
        b.strided_forward(p, seed, offset, io, Some(BitsMut::at(&mut m, bit0)))
            .unwrap();
        let mut touched = vec![false; yl.size];
        for (k, (i, &q)) in idx.iter().zip(&pos).enumerate() {
            let at = yl.index(i);
            touched[at] = true;
            assert!(same(y[at], want_full[q]), "forward element {i:?} {what}");
            assert_eq!(bit(&m, bit0 + k), keep[q], "mask bit {k} {what}");
        }
        assert!(
            y.iter()
                .zip(&touched)
                .all(|(v, &t)| t || v.to_bits() == sentinel.to_bits()),
            "outside the view {what}"
        );
        for i in (0..bit0).chain(bit0 + n..64 * m.len()) {
            assert_eq!(
                bit(&m, i),
                bit(&before, i),
                "mask bit {i} outside the call {what}"
            );
        }
        // Backward in place through the input's own layout, from the mask and by recompute.
        for from_mask in [true, false] {
            let mut g2 = x.clone();
            let mask = from_mask.then(|| Bits::at(&m, bit0));
            b.strided_backward(
                p,
                seed,
                offset,
                Strided::InPlace {
                    xy: &mut g2,
                    view: xl.view,
                },
                mask,
            )
            .unwrap();
            for (i, &q) in idx.iter().zip(&pos) {
                assert!(
                    same(g2[xl.index(i)], want_full[q]),
                    "backward {from_mask} {i:?} {what}"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 4 } else { 256 }, .. ProptestConfig::default() })]

    #[test]
    fn strided_views_equal_the_contiguous_call(seed: u64, p in prop_oneof![Just(0.0), Just(0.5), Just(1.0), 0.0f64..1.0]) {
        case(seed, p);
    }
}

/// The shapes: a transposed `[2048, 2048]`-like matrix (smaller here), a sliced
/// batch, and a tensor-parallel column shard of a weight matrix, each one call.
#[test]
fn transposed_sliced_and_sharded() {
    let (r, c) = if cfg!(miri) { (9, 70) } else { (64, 300) };
    let seed = Seed::from_u64(3);
    let logical: Vec<f32> = data(r * c, 1);
    let keep = spec_keep(0.3, seed, 11, r * c);
    let want = spec_forward(&logical, &keep, 0.3);
    // Stored transposed: element (i, j) at j * r + i.
    let mut t = vec![0.0f32; r * c];
    for i in 0..r {
        for j in 0..c {
            t[j * r + i] = logical[i * c + j];
        }
    }
    let view = View::strided(&[r, c], &[1, r as isize], 0).unwrap();
    for b in Backend::available() {
        let mut y = vec![0.0f32; r * c];
        let io = Strided::Out {
            x: &t,
            x_view: view,
            y: &mut y,
            y_view: view.compact(),
        };
        b.strided_forward(0.3, seed, 11, io, None).unwrap();
        assert_same(&y, &want, &format!("transposed {}", b.name()));
        // Columns c/3 .. 2c/3 of the matrix as a shard of its own (rows of the shard are
        // not contiguous in the stream).
        let (c0, c1) = (c / 3, 2 * c / 3);
        let shard: Vec<f32> = (0..r)
            .flat_map(|i| logical[i * c + c0..i * c + c1].to_vec())
            .collect();
        let sv = View::contiguous(&[r, c1 - c0])
            .unwrap()
            .within(&[0, c0], &[r, c])
            .unwrap();
        let mut ys = shard.clone();
        b.strided_forward(
            0.3,
            seed,
            11,
            Strided::InPlace {
                xy: &mut ys,
                view: sv,
            },
            None,
        )
        .unwrap();
        let want_shard: Vec<f32> = (0..r)
            .flat_map(|i| want[i * c + c0..i * c + c1].to_vec())
            .collect();
        assert_same(&ys, &want_shard, &format!("shard {}", b.name()));
    }
}

/// Contiguous output rows from broadcast (stride 0), reversed and step-2 inputs: the gathered
/// path, forward with a mask at an odd start bit and backward from it, against the
/// contiguous call on the logical tensor.
#[test]
fn near_strided_inputs_into_contiguous_outputs() {
    let (r, c) = if cfg!(miri) { (3, 70) } else { (5, 2100) };
    let seed = Seed::from_u64(21);
    let buf: Vec<f32> = data(2 * r * c + 8, 4);
    let layouts: [([isize; 2], usize); 3] = [
        // Every row the same broadcast value along the row (stride 0).
        ([1, 0], 0),
        // Each row reversed.
        ([c as isize, -1], c - 1),
        // Every other element.
        ([2 * c as isize, 2], 1),
    ];
    for (strides, base) in layouts {
        let view = View::strided(&[r, c], &strides, base).unwrap();
        // The logical tensor, indexed here without the crate.
        let logical: Vec<f32> = (0..r * c)
            .map(|k| {
                let (i, j) = ((k / c) as isize, (k % c) as isize);
                buf[(base as isize + i * strides[0] + j * strides[1]) as usize]
            })
            .collect();
        let keep = spec_keep(0.3, seed, 9, r * c);
        let want = spec_forward(&logical, &keep, 0.3);
        for b in Backend::available() {
            let mut y = vec![0.0f32; r * c];
            let mut m = vec![0u64; mask_words(r * c + 5)];
            let io = Strided::Out {
                x: &buf,
                x_view: view,
                y: &mut y,
                y_view: view.compact(),
            };
            b.strided_forward(0.3, seed, 9, io, Some(BitsMut::at(&mut m, 5)))
                .unwrap();
            assert_same(&y, &want, &format!("forward {view:?} {}", b.name()));
            for (k, &kept) in keep.iter().enumerate() {
                assert_eq!(bit(&m, 5 + k), kept);
            }
            for mask in [Some(Bits::at(&m, 5)), None] {
                let mut g = vec![0.0f32; r * c];
                let io = Strided::Out {
                    x: &buf,
                    x_view: view,
                    y: &mut g,
                    y_view: view.compact(),
                };
                b.strided_backward(0.3, seed, 9, io, mask).unwrap();
                assert_same(&g, &want, &format!("backward {view:?} {}", b.name()));
            }
        }
    }
}
