//! Edge geometries the way users reach them: empty mask ranges at word boundaries past the
//! buffer, zero dimensions beside `usize::MAX` ones, thresholds of 2^32 below `p = 1`, and
//! proptests over every geometry the constructors accept, per operation family. `cargo test`
//! runs this file in the debug profile, where every size computation is overflow-checked: a
//! call may return an `Error` (and then must have written nothing) but never panic, and a
//! call that succeeds must give the contract's bits (tests/common's oracles).

mod common;

use common::*;
use proptest::prelude::*;
use simd_dropout::{
    Backend, Bits, BitsMut, Blocks, Dropout, Error, Io, MaskRef, Op, Seed, Shape, Strided, View,
    mask_words, pack_bools,
};

/// Every backend, and with rayon the parallel form of each.
fn backends() -> Vec<Backend> {
    let serial = Backend::available().filter(|b| !(cfg!(miri) && b.name() == "scalar"));
    #[cfg(feature = "rayon")]
    let serial = serial.chain(Backend::available().map(|b| b.parallel()));
    serial.collect()
}

const MAX: usize = usize::MAX;

#[test]
fn empty_masks_at_word_boundaries_past_the_buffer() {
    let w = [!0u64; 3];
    for (words, start) in [
        (&w[..0], 0),
        (&w[..0], 64),
        (&w[..1], 128),
        (&w[..2], 320),
        (&w[..0], MAX - 63),
        (&w[..3], MAX),
    ] {
        let m = MaskRef::at(words, start, 0).unwrap();
        assert_eq!(m.count_kept(), 0, "start {start}");
        m.write_bytes(&mut []).unwrap();
        m.write_bools(&mut []).unwrap();
        assert_eq!(m.iter().len(), 0);
        let mut dst = [5u64; 2];
        pack_bools(&[], BitsMut::at(&mut dst, start)).unwrap();
        assert_eq!(dst, [5; 2]);
        for b in backends() {
            let mut out = [0.0f32; 0];
            b.expand_mask(0.5, m.bits(), &mut out).unwrap();
            b.backward(
                0.5,
                Seed::default(),
                0,
                Io::InPlace(&mut out),
                Some(m.bits()),
            )
            .unwrap();
            let mut d = [5u64; 2];
            let mut d2 = d;
            b.fill_mask(0.5, Seed::default(), 0, 0, BitsMut::at(&mut d, start))
                .unwrap();
            b.forward(
                0.5,
                Seed::default(),
                0,
                Io::InPlace(&mut out),
                Some(BitsMut::at(&mut d2, start)),
            )
            .unwrap();
            assert_eq!((d, d2), ([5; 2], [5; 2]), "{} start {start}", b.name());
        }
    }
    // One bit past the buffer is refused.
    assert!(matches!(
        MaskRef::at(&w[..1], 64, 1),
        Err(Error::MaskTooShort { .. })
    ));
}

/// Views of no elements whose dimensions or full shapes multiply past `usize::MAX`.
#[test]
fn zero_element_views_beside_huge_dimensions() {
    let seed = Seed::from_u64(1);
    let huge = View::strided(&[MAX, MAX, 0], &[-1, 1, 1], 0).unwrap();
    let window = View::strided(&[0, 1, 1], &[1, 1, 1], 0)
        .unwrap()
        .within(&[0, 5, 5], &[0, MAX, MAX])
        .unwrap();
    let full = View::contiguous(&[MAX, 2, 0]).unwrap();
    for b in backends() {
        for v in [huge, window, full] {
            let (x, mut y, mut xy) = ([0.0f32; 0], [0.0f32; 0], [0.0f32; 0]);
            let io = Strided::Out {
                x: &x,
                x_view: v,
                y: &mut y,
                y_view: v.compact(),
            };
            b.strided_forward(0.5, seed, 0, io, Some(BitsMut::new(&mut [])))
                .unwrap();
            let io = Strided::InPlace {
                xy: &mut xy,
                view: v,
            };
            b.strided_backward(0.5, seed, 0, io, None).unwrap();
            let io = Strided::InPlace {
                xy: &mut xy,
                view: v,
            };
            b.strided_backward(0.5, seed, 0, io, Some(Bits::new(&[])))
                .unwrap();
        }
    }
    for training in [true, false] {
        let mut layer = Dropout::new(0.5, seed).unwrap();
        if !training {
            layer.eval();
        }
        let rec = layer.reserve(Op::Element, 0).unwrap();
        for v in [huge, window, full] {
            let mut xy = [0.0f32; 0];
            rec.strided_forward(
                Strided::InPlace {
                    xy: &mut xy,
                    view: v,
                },
                None,
            )
            .unwrap();
            rec.strided_backward(
                Strided::InPlace {
                    xy: &mut xy,
                    view: v,
                },
                None,
            )
            .unwrap();
        }
    }
}

/// DropBlock geometries of no elements, a zero in any position beside `usize::MAX`: all
/// accepted, in any order; a product that overflows without a zero is refused.
#[test]
fn zero_element_blocks_in_any_order() {
    let geometries = [
        Blocks::nchw(0, 1, MAX, 8, 3),
        Blocks::nchw(MAX, 2, 0, 8, 3),
        Blocks::nchw(MAX, MAX, MAX, MAX, 3),
        Blocks::nhwc(MAX, 0, MAX, MAX, 7),
        Blocks::ncdhw(2, MAX, MAX, 0, MAX, 1),
        Blocks::ndhwc(MAX, MAX, MAX, MAX, 0, MAX),
    ];
    let layer = Dropout::new(0.3, Seed::from_u64(2)).unwrap();
    for (i, g) in geometries.into_iter().enumerate() {
        let empty = g.elements() == Some(0);
        assert_eq!(empty, i != 2, "{g:?}");
        assert_eq!(g.block_size() == 0, empty, "{g:?}");
        for b in backends() {
            for p in [0.0, 0.3, 1.0] {
                let mut xy = [0.0f32; 0];
                let r = b.block_forward(g, p, Seed::default(), 0, Io::InPlace(&mut xy), None);
                assert_eq!(r.is_ok(), empty, "{g:?} {r:?}");
                let r = b.block_forward(
                    g,
                    p,
                    Seed::default(),
                    0,
                    Io::InPlace(&mut xy),
                    Some(BitsMut::new(&mut [])),
                );
                assert_eq!(r.is_ok(), empty, "{g:?}");
                let r = b.block_backward(g, p, Seed::default(), 0, Io::InPlace(&mut xy), None);
                assert_eq!(r.is_ok(), empty, "{g:?}");
                let mask = Some(Bits::new(&[]));
                let r = b.block_backward(g, p, Seed::default(), 0, Io::InPlace(&mut xy), mask);
                assert_eq!(r.is_ok(), empty, "{g:?}");
            }
        }
        let before = layer.offset();
        assert_eq!(layer.reserve(Op::Block(g), 0).is_ok(), empty);
        assert_eq!(layer.offset(), before);
    }
    assert_eq!(Blocks::nchw(MAX, 2, 1, 8, 3).candidates(), None);
    // A block size of 0 is an error even on an empty map.
    let r = Backend::detect().block_forward(
        Blocks::nchw(0, 1, 4, 4, 0),
        0.3,
        Seed::default(),
        0,
        Io::InPlace(&mut [0.0f32; 0]),
        None,
    );
    assert!(matches!(r, Err(Error::InvalidBlock { .. })), "{r:?}");
}

/// `round(p * 2^32) = 2^32` below `p = 1` (p >= 1 - 2^-33): every decision drops, from the
/// stream and from a stored mask, in every operation with a mask (contract section 5). One
/// step below (`t = 2^32 - 1`) a stored mask's set bits are kept and scaled.
#[test]
fn threshold_of_two_to_the_32_drops_every_element() {
    let all = [
        1.0 - 2f64.powi(-33),
        1.0 - 2f64.powi(-34),
        1.0 - f64::EPSILON / 2.0,
        1.0,
    ];
    let below = 1.0 - 2f64.powi(-32);
    let ones = [!0u64; 4];
    let gy = [1.5f32; 192];
    for b in backends() {
        let what = b.name();
        for &p in all.iter().chain([&below]) {
            let drops = p != below;
            let s = (1.0 / (1.0 - p)) as f32;
            let want = |v: f32| if drops { 0.0 } else { v * s };
            let check = |got: &[f32], op: &str| {
                for &g in got {
                    assert_eq!(g.to_bits(), want(1.5).to_bits(), "{op} {what} p = {p}");
                }
            };
            // Element, out of place, and in place at a start bit.
            let mut gx = [9.0f32; 192];
            b.backward(
                p,
                Seed::default(),
                0,
                Io::Out { x: &gy, y: &mut gx },
                Some(Bits::new(&ones)),
            )
            .unwrap();
            check(&gx, "backward");
            let mut g = gy;
            b.backward(
                p,
                Seed::default(),
                0,
                Io::InPlace(&mut g[..100]),
                Some(Bits::at(&ones, 37)),
            )
            .unwrap();
            check(&g[..100], "backward at bit 37");
            // expand_mask: the multipliers.
            let mut m = [9.0f32; 70];
            b.expand_mask(p, Bits::at(&ones, 3), &mut m).unwrap();
            assert!(
                m.iter().all(|&v| v.to_bits() == want(1.0).to_bits()),
                "expand {what} {p}"
            );
            // Broadcast (channels and columns).
            for shape in [Shape::channels(2, 3, 32), Shape::columns(3, 64)] {
                let mut g = gy;
                b.broadcast_backward(
                    shape,
                    p,
                    Seed::default(),
                    0,
                    Io::InPlace(&mut g),
                    Some(Bits::new(&ones)),
                )
                .unwrap();
                check(&g, "broadcast backward");
            }
            // Strided, transposed.
            let view = View::strided(&[12, 16], &[1, 12], 0).unwrap();
            let mut g = gy;
            b.strided_backward(
                p,
                Seed::default(),
                0,
                Strided::InPlace { xy: &mut g, view },
                Some(Bits::new(&ones)),
            )
            .unwrap();
            check(&g, "strided backward");
            // Fused: gx and the bias gradient.
            let (mut gx, mut gb) = ([9.0f32; 192], [9.0f32; 64]);
            b.fused_backward(
                &mut gb,
                p,
                Seed::default(),
                0,
                Io::Out { x: &gy, y: &mut gx },
                Some(Bits::new(&ones)),
            )
            .unwrap();
            check(&gx, "fused backward");
            let sum = if drops { 0.0 } else { 3.0 * (1.5 * s) };
            assert!(
                gb.iter().all(|v| v.to_bits() == sum.to_bits()),
                "g_bias {what} {p}"
            );
            // The forward at such a p keeps nothing.
            let mut mask = [!0u64; 3];
            b.fill_mask(p, Seed::from_u64(5), 0, 192, BitsMut::new(&mut mask))
                .unwrap();
            if drops {
                assert_eq!(mask, [0; 3], "fill_mask {what} p = {p}");
            }
            // Alpha dropout takes p < 1: from a stored mask it drops everything too.
            if p < 1.0 {
                let mut g = gy;
                b.alpha_backward(
                    p,
                    Seed::default(),
                    0,
                    Io::InPlace(&mut g),
                    Some(Bits::new(&ones)),
                )
                .unwrap();
                assert_eq!(
                    g.iter().all(|v| v.to_bits() == 0),
                    drops,
                    "alpha {what} {p}"
                );
            }
        }
    }
}

/// The overlap rule for output views (contract section 6), which is sufficient, not exact:
/// these two views put no two elements at one index, yet the rule refuses them.
#[test]
fn output_views_follow_the_sorted_stride_rule() {
    for (dims, strides) in [([2, 3], [3, 2]), ([5, 3], [3, 5])] {
        let v = View::strided(&dims, &strides, 0).unwrap();
        let mut y = [1.0f32; 64];
        let r = Backend::detect().strided_forward(
            0.5,
            Seed::default(),
            0,
            Strided::InPlace {
                xy: &mut y,
                view: v,
            },
            None,
        );
        assert!(matches!(r, Err(Error::InvalidView { .. })), "{r:?}");
        assert_eq!(y, [1.0; 64]);
    }
}

// ---- Any geometry the constructors accept.

/// Dimensions where arithmetic goes wrong: 0, 1, around word and tile sizes, near `usize::MAX`.
fn edge_dim() -> impl Strategy<Value = usize> {
    prop_oneof![
        4 => 0usize..=4,
        3 => 5usize..=70,
        2 => prop::sample::select(vec![63usize, 64, 65, 127, 128, 129, 191, 192, 193, 257]),
        1 => prop::sample::select(vec![MAX, MAX - 1, MAX - 63, MAX / 2, 1 << (usize::BITS / 2)]),
    ]
}

fn edge_stride() -> impl Strategy<Value = isize> {
    prop_oneof![
        4 => -4isize..=4,
        2 => prop::sample::select(vec![-64isize, 64, 7, -9, 16, 33]),
        1 => prop::sample::select(vec![isize::MAX, isize::MIN, isize::MIN + 1, 1 << (isize::BITS - 24)]),
    ]
}

/// The contract's strided forward, element by element: `y[index] = rule(x[index], word)`.
fn spec_strided(
    p: f64,
    seed: Seed,
    offset: u64,
    (x, xv): (&[f32], &ViewSpec),
    (y, yv): (&mut [f32], &ViewSpec),
) -> Vec<bool> {
    let mut keeps = Vec::new();
    for (xi, yi, pos) in xv
        .elements()
        .zip(yv.elements())
        .map(|(a, b)| (a.0, b.0, a.1))
    {
        let keep = spec_keep(p, seed, offset.wrapping_add(pos), 1)[0];
        keeps.push(keep);
        y[yi] = spec_out(x[xi], keep, p);
    }
    keeps
}

/// A view as the test knows it: dimensions, strides, base, window start and full shape.
#[derive(Clone, Debug)]
struct ViewSpec {
    dims: Vec<usize>,
    strides: Vec<isize>,
    base: usize,
    start: Vec<usize>,
    full: Vec<usize>,
}

impl ViewSpec {
    /// `(buffer index, stream position)` of each element in row-major order.
    fn elements(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        let n: usize = if self.dims.contains(&0) {
            0
        } else {
            self.dims.iter().product()
        };
        (0..n).map(move |mut i| {
            let (mut at, mut pos, mut pstride) = (self.base as i128, 0u128, 1u128);
            for d in (0..self.dims.len()).rev() {
                let k = i % self.dims[d];
                i /= self.dims[d];
                at += k as i128 * self.strides[d] as i128;
                pos += (self.start[d] + k) as u128 * pstride;
                pstride *= self.full[d] as u128;
            }
            (at as usize, pos as u64)
        })
    }
}

fn view_spec() -> impl Strategy<Value = (ViewSpec, bool)> {
    (0usize..=4)
        .prop_flat_map(|rank| {
            (
                prop::collection::vec(edge_dim(), rank),
                prop::collection::vec(edge_stride(), rank),
                prop_oneof![3 => 0usize..40, 1 => Just(MAX)],
                prop::collection::vec(edge_dim(), rank),
                prop::collection::vec(edge_dim(), rank),
                any::<bool>(),
            )
        })
        .prop_map(|(dims, strides, base, start, extra, windowed)| {
            let full = if windowed {
                (0..dims.len())
                    .map(|d| {
                        dims[d]
                            .saturating_add(start[d])
                            .saturating_add(extra[d] % 3)
                    })
                    .collect()
            } else {
                dims.clone()
            };
            let start = if windowed { start } else { vec![0; dims.len()] };
            (
                ViewSpec {
                    dims,
                    strides,
                    base,
                    start,
                    full,
                },
                windowed,
            )
        })
}

/// A DropBlock geometry with its oracle form and element order.
#[derive(Clone, Debug)]
struct BlockSpec {
    dims: [usize; 5],
    bs: usize,
    three_d: bool,
    last: bool,
}

impl BlockSpec {
    fn blocks(&self) -> Blocks {
        let [n, c, d, h, w] = self.dims;
        match (self.three_d, self.last) {
            (false, false) => Blocks::nchw(n, c, h, w, self.bs),
            (false, true) => Blocks::nhwc(n, h, w, c, self.bs),
            (true, false) => Blocks::ncdhw(n, c, d, h, w, self.bs),
            (true, true) => Blocks::ndhwc(n, d, h, w, c, self.bs),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 2 } else { 96 }, .. ProptestConfig::default() })]

    /// Any mask range `MaskRef::at` accepts can be read; any it refuses is `MaskTooShort`.
    #[test]
    fn any_mask_range(
        words in 0usize..4,
        start in prop_oneof![edge_dim(), (0usize..6).prop_map(|k| 64 * k)],
        len in prop_oneof![edge_dim(), Just(0usize)],
        fill: u64,
    ) {
        let buf = vec![fill; words];
        match MaskRef::at(&buf, start, len) {
            Ok(m) => {
                let bits: Vec<bool> = m.iter().collect();
                prop_assert_eq!(bits.len(), len);
                for (i, &k) in bits.iter().enumerate() {
                    prop_assert_eq!(k, bit(&buf, start + i));
                }
                prop_assert_eq!(m.count_kept(), bits.iter().filter(|&&k| k).count());
                let (mut bytes, mut bools) = (vec![7u8; len], vec![false; len]);
                m.write_bytes(&mut bytes).unwrap();
                m.write_bools(&mut bools).unwrap();
                prop_assert_eq!(&bools, &bits);
                prop_assert!(bytes.iter().zip(&bits).all(|(&b, &k)| b == u8::from(k)));
                let mut out = vec![0.0f32; len];
                Backend::detect().expand_mask(0.5, m.bits(), &mut out).unwrap();
                let expanded = out.iter().zip(&bits).all(|(&v, &k)| v == if k { 2.0 } else { 0.0 });
                prop_assert!(expanded);
            }
            Err(e) => prop_assert!(matches!(e, Error::MaskTooShort { .. }), "{:?}", e),
        }
        // The same range to write: accepted exactly when reading was, bits outside untouched.
        let mut dst = vec![fill; words];
        let r = Backend::detect().fill_mask(0.5, Seed::from_u64(fill), 3, len, BitsMut::at(&mut dst, start));
        prop_assert_eq!(r.is_ok(), MaskRef::at(&buf, start, len).is_ok());
        if r.is_err() {
            prop_assert_eq!(&dst, &buf);
        } else {
            for i in 0..64 * words {
                if !(start..start.saturating_add(len)).contains(&i) {
                    prop_assert_eq!(bit(&dst, i), bit(&buf, i));
                }
            }
        }
    }

    /// Any view the constructors accept: a call returns an error and writes nothing, or gives
    /// the contract's bits; an accepted output view never puts two elements at one index.
    #[test]
    fn any_view((spec, windowed) in view_spec(), p in prop::sample::select(vec![0.0, 0.3, 1.0]), offset: u64, bit0 in 0usize..70) {
        let view = View::strided(&spec.dims, &spec.strides, spec.base)
            .and_then(|v| if windowed { v.within(&spec.start, &spec.full) } else { Ok(v) });
        let Ok(view) = view else { return Ok(()) };
        let seed = Seed::from_u64(offset);
        let x: Vec<f32> = data(256, offset);
        let out = view.compact();
        let out_spec = ViewSpec { strides: {
            let mut s = vec![1isize; spec.dims.len()];
            for d in (0..spec.dims.len().saturating_sub(1)).rev() {
                s[d] = s[d + 1].wrapping_mul(spec.dims[d + 1] as isize);
            }
            s
        }, base: 0, ..spec.clone() };
        for b in [Backend::scalar(), Backend::detect()] {
            // Out of place into the compact layout, with a mask at `bit0`.
            let mut y = vec![7.0f32; 256];
            let mut m = vec![!0u64; 6];
            let io = Strided::Out { x: &x, x_view: view, y: &mut y, y_view: out };
            let r = b.strided_forward(p, seed, offset, io, Some(BitsMut::at(&mut m, bit0)));
            match r {
                Err(_) => {
                    assert_same(&y, &[7.0f32; 256], "a refused forward writes nothing");
                    prop_assert_eq!(&m, &vec![!0u64; 6]);
                }
                Ok(()) => {
                    let mut want = vec![7.0f32; 256];
                    let keeps = spec_strided(p, seed, offset, (&x, &spec), (&mut want, &out_spec));
                    assert_same(&y, &want, "strided forward");
                    for (i, &k) in keeps.iter().enumerate() {
                        prop_assert_eq!(bit(&m, bit0 + i), k);
                    }
                    // Backward from the mask into the input's own layout, in place.
                    let mut g = x.clone();
                    let r = b.strided_backward(p, seed, offset, Strided::InPlace { xy: &mut g, view }, Some(Bits::at(&m, bit0)));
                    if r.is_ok() {
                        // The view writes no index twice (else the call had been refused).
                        let mut seen = vec![false; 256];
                        for (at, _) in spec.elements() {
                            prop_assert!(!seen[at], "two elements at {}", at);
                            seen[at] = true;
                        }
                        let mut want = x.clone();
                        let xs = x.clone();
                        spec_strided(p, seed, offset, (&xs, &spec), (&mut want, &spec));
                        assert_same(&g, &want, "strided backward in place");
                    } else {
                        assert_same(&g, &x, "a refused backward writes nothing");
                    }
                }
            }
        }
        // Through a layer's record of the full tensor.
        if let Ok(layer) = Dropout::new(p, seed) {
            let full: Option<usize> = spec.full.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            let full = if spec.full.contains(&0) { Some(0) } else { full };
            if let Some(full) = full {
                let rec = layer.reserve(Op::Element, full).unwrap();
                let mut g = x.clone();
                let _ = rec.strided_forward(Strided::InPlace { xy: &mut g, view }, None);
            }
        }
    }

    /// Any DropBlock geometry: refused (nothing written, the layer's offset unmoved) or the
    /// contract's bits, forward and both backwards, with the mask at a start bit.
    #[test]
    fn any_block_geometry(
        dims in (
            prop_oneof![6 => 1usize..=2, 1 => Just(0usize), 1 => Just(MAX)],
            prop_oneof![6 => 1usize..=3, 1 => Just(0usize), 1 => Just(MAX)],
            prop_oneof![6 => 1usize..=4, 1 => Just(0usize), 1 => Just(MAX)],
            prop_oneof![6 => 1usize..=40, 2 => 60usize..=70, 1 => Just(0usize), 1 => Just(MAX)],
            prop_oneof![8 => 1usize..=300, 1 => Just(0usize), 1 => Just(MAX)],
        ).prop_map(|(n, c, d, h, w)| [n, c, d, h, w]),
        bs in prop_oneof![6 => 1usize..=9, 2 => 10usize..=80, 1 => Just(0usize), 1 => Just(MAX)],
        three_d: bool,
        last: bool,
        p in prop::sample::select(vec![0.0, 0.05, 0.3, 1.0]),
        offset: u64,
    ) {
        let mut dims = dims;
        if !three_d {
            dims[2] = 1;
        }
        let spec = BlockSpec { dims, bs, three_d, last };
        let blocks = spec.blocks();
        let [n, c, d, h, w] = dims;
        let elements = blocks.elements();
        let seed = Seed::from_u64(offset);
        let layer = Dropout::new(p, seed).unwrap();
        let small = elements.filter(|&e| e <= 40_000 && bs > 0);
        let Some(len) = small else {
            // Refused with a buffer of any other length, writing nothing.
            let mut xy = vec![3.0f32; 5];
            let mut m = [!0u64; 1];
            let r = Backend::detect().block_forward(blocks, p, seed, offset, Io::InPlace(&mut xy), Some(BitsMut::new(&mut m)));
            prop_assert_eq!(r.is_ok(), elements == Some(5) && bs > 0);
            if r.is_err() {
                prop_assert_eq!(&xy, &vec![3.0f32; 5]);
                prop_assert_eq!(m, [!0u64; 1]);
            }
            let before = layer.offset();
            let r = layer.reserve(Op::Block(blocks), 5);
            if r.is_err() {
                prop_assert_eq!(layer.offset(), before);
            }
            return Ok(());
        };
        let (keep, scale) = if len == 0 {
            (Vec::new(), 1.0)
        } else {
            spec_block(SpecBlocks { maps: n * c, d, h, w, block_size: bs, three_d }, p, seed, offset)
        };
        let order = if last && len > 0 { channels_first_index(n, c, d, h, w) } else { (0..len).collect() };
        let keep: Vec<bool> = order.iter().map(|&i| keep[i]).collect();
        let x: Vec<f32> = data(len, offset);
        let want = spec_apply(&x, &keep, scale);
        // The layer's record, moved to this call's stream position.
        let rec = layer.reserve(Op::Block(blocks), len).unwrap();
        prop_assert_eq!(layer.offset(), offset_after(0, blocks.candidates().unwrap()));
        let rec = simd_dropout::Record { offset, ..rec };
        for b in [Backend::scalar(), Backend::detect()] {
            let mut y = vec![0.0f32; len];
            let mut m = vec![!0u64; mask_words(len + 3)];
            b.block_forward(blocks, p, seed, offset, Io::Out { x: &x, y: &mut y }, Some(BitsMut::at(&mut m, 3))).unwrap();
            assert_same(&y, &want, &format!("{} {spec:?} p {p}", b.name()));
            for (i, &k) in keep.iter().enumerate() {
                prop_assert_eq!(bit(&m, 3 + i), k);
            }
            let mut g = x.clone();
            b.block_backward(blocks, p, seed, offset, Io::InPlace(&mut g), Some(Bits::at(&m, 3))).unwrap();
            assert_same(&g, &want, "backward from the mask");
            let mut g = x.clone();
            b.block_backward(blocks, p, seed, offset, Io::InPlace(&mut g), None).unwrap();
            assert_same(&g, &want, "backward by recompute");
        }
        let mut y = x.clone();
        rec.forward(Io::InPlace(&mut y), None).unwrap();
        assert_same(&y, &want, "record");
    }

    /// Any broadcast shape: refused (nothing written) or the contract's bits.
    #[test]
    fn any_broadcast_shape(outer in edge_dim(), mid in edge_dim(), inner in edge_dim(), p in prop::sample::select(vec![0.0, 0.4, 1.0]), offset: u64) {
        let shape = Shape::new(outer, mid, inner);
        let seed = Seed::from_u64(offset);
        let len = shape.elements().filter(|&e| e <= 20_000);
        let decisions = shape.decisions().filter(|&d| d <= 20_000);
        let b = Backend::detect();
        match (len, decisions) {
            (Some(len), Some(dec)) => {
                let x: Vec<f32> = data(len, offset);
                let mut y = vec![0.0f32; len];
                let mut m = vec![!0u64; mask_words(dec + 1)];
                b.broadcast_forward(shape, p, seed, offset, Io::Out { x: &x, y: &mut y }, Some(BitsMut::at(&mut m, 1))).unwrap();
                let keep = spec_keep(p, seed, offset, dec);
                if len > 0 {
                    assert_same(&y, &spec_broadcast(&x, (mid, inner), &keep, p), "broadcast");
                }
                // With no elements (mid = 0) the decisions are still drawn into the mask.
                for (i, &k) in keep.iter().enumerate() {
                    prop_assert_eq!(bit(&m, 1 + i), k);
                }
                let mut g = x.clone();
                b.broadcast_backward(shape, p, seed, offset, Io::InPlace(&mut g), Some(Bits::at(&m, 1))).unwrap();
                prop_assert_eq!(g.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), y.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
            }
            _ => {
                let mut xy = vec![2.0f32; 3];
                let r = b.broadcast_forward(shape, p, seed, offset, Io::InPlace(&mut xy), None);
                if r.is_err() {
                    prop_assert_eq!(&xy, &vec![2.0f32; 3]);
                }
                let _ = Dropout::new(p, seed).unwrap().reserve(Op::Broadcast(shape), 3);
            }
        }
    }
}

/// The layer's offset after a call of `words` words.
fn offset_after(offset: u64, words: usize) -> u64 {
    offset.wrapping_add(words as u64)
}
