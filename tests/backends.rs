//! Every backend this CPU runs against the scalar reference, bit for bit, for every cell of
//! the element operation (forward / backward, out of place / in place / uninitialized, with
//! a mask at any start bit / without) and every element type: lengths around word
//! boundaries, sub-slice starts 0..8, several seeds, offsets and probabilities. The scalar
//! reference itself is checked against the independent spec of `tests/common`.

mod common;

use common::*;
use core::mem::MaybeUninit;
use half::{bf16, f16};
use simd_dropout::{Backend, Bits, BitsMut, Io, mask_words};

/// The scalar backend runs every cell too, except under miri: it is safe code (the reference),
/// which miri has nothing to check in, and its forward is still compared with the spec.
fn scalar_cells(scalar: &Backend) -> Option<&Backend> {
    (!cfg!(miri)).then_some(scalar)
}

/// The backends to check against the scalar reference.
fn fast_backends() -> Vec<Backend> {
    Backend::available()
        .filter(|b| *b != Backend::scalar())
        .collect()
}

fn check_type<T: FromBits>() {
    let scalar = Backend::scalar();
    let backends = fast_backends();
    let lens = lengths();
    let pad = 8;
    for (k, &n) in lens.iter().enumerate() {
        // Cycle seeds, offsets, starts and mask positions with the length so that the whole
        // grid of (length, p) is covered while keeping the test fast.
        let seed = SEEDS[k % SEEDS.len()];
        let offset = OFFSETS[k % OFFSETS.len()].wrapping_add(k as u64 % 5);
        let start = k % 8;
        let bit0 = [0, 1, 63, 64, 5, 100][k % 6];
        let buf: Vec<T> = data(n + pad + 8, k as u64);
        let x = &buf[start..start + n];
        for &p in ps() {
            let keep = spec_keep(p, seed, offset, n);
            let want_y = spec_forward(x, &keep, p);
            let want_m = spec_mask(&keep);
            let mut y0 = vec![T::ZERO; n];
            let mut m0 = vec![0u64; mask_words(n)];
            let io = Io::Out { x, y: &mut y0 };
            scalar
                .forward(p, seed, offset, io, Some(BitsMut::new(&mut m0)))
                .unwrap();
            assert_same(
                &y0,
                &want_y,
                &format!("scalar vs spec {} n={n} p={p}", T::NAME),
            );
            assert_eq!(m0, want_m, "scalar mask vs spec n={n} p={p}");
            for &b in backends.iter().chain(scalar_cells(&scalar)) {
                let what = format!("{} {} n={n} p={p} start={start}", b.name(), T::NAME);
                // Out of place, into a sub-slice of a padded buffer whose guard values must
                // survive; the mask at bit `bit0` of a buffer whose other bits must survive.
                let guard = T::from_f64(7.0);
                let mut ybuf = vec![guard; n + 2 * pad];
                let mut m = vec![0x5555_aaaa_5555_aaaau64; mask_words(bit0 + n) + 1];
                let before = m.clone();
                let io = Io::Out {
                    x,
                    y: &mut ybuf[pad..pad + n],
                };
                b.forward(p, seed, offset, io, Some(BitsMut::at(&mut m, bit0)))
                    .unwrap();
                assert_same(&ybuf[pad..pad + n], &want_y, &format!("forward {what}"));
                assert!(
                    ybuf[..pad]
                        .iter()
                        .chain(&ybuf[pad + n..])
                        .all(|&v| v == guard)
                );
                for i in 0..64 * m.len() {
                    let want = if (bit0..bit0 + n).contains(&i) {
                        keep[i - bit0]
                    } else {
                        bit(&before, i)
                    };
                    assert_eq!(bit(&m, i), want, "mask bit {i} (start {bit0}) {what}");
                }

                let mut xy = x.to_vec();
                let mut m2 = vec![0u64; mask_words(n)];
                b.forward(
                    p,
                    seed,
                    offset,
                    Io::InPlace(&mut xy),
                    Some(BitsMut::new(&mut m2)),
                )
                .unwrap();
                assert_same(&xy, &want_y, &format!("in place {what}"));
                assert_eq!(m2, want_m, "in-place mask {what}");

                let mut y3 = vec![MaybeUninit::<T>::uninit(); n];
                b.forward(p, seed, offset, Io::Uninit { x, y: &mut y3 }, None)
                    .unwrap();
                // SAFETY (test): a call that returned Ok initialized every element.
                let y3: Vec<T> = y3.iter().map(|v| unsafe { v.assume_init() }).collect();
                assert_same(&y3, &want_y, &format!("uninit, no mask {what}"));

                let mut m5 = vec![0u64; mask_words(n)];
                b.fill_mask(p, seed, offset, n, BitsMut::new(&mut m5))
                    .unwrap();
                assert_eq!(m5, want_m, "fill_mask {what}");

                // Backward: from the mask at `bit0`, out of place and in place; recomputed.
                let mut g1 = vec![T::ZERO; n];
                b.backward(
                    p,
                    seed,
                    offset,
                    Io::Out { x, y: &mut g1 },
                    Some(Bits::at(&m, bit0)),
                )
                .unwrap();
                assert_same(&g1, &want_y, &format!("backward from mask {what}"));
                let mut g2 = x.to_vec();
                b.backward(
                    p,
                    seed,
                    offset,
                    Io::InPlace(&mut g2),
                    Some(Bits::new(&want_m)),
                )
                .unwrap();
                assert_same(&g2, &want_y, &format!("backward in place {what}"));
                let mut g3 = x.to_vec();
                b.backward(p, seed, offset, Io::InPlace(&mut g3), None)
                    .unwrap();
                assert_same(&g3, &want_y, &format!("backward by recompute {what}"));

                // The values a framework multiplies by.
                let mut e = vec![T::ZERO; n];
                b.expand_mask(p, Bits::at(&m, bit0), &mut e).unwrap();
                let ones = vec![T::from_f64(1.0); n];
                assert_same(
                    &e,
                    &spec_forward(&ones, &keep, p),
                    &format!("expand {what}"),
                );
            }
        }
    }
}

#[test]
fn f32_every_backend_matches_scalar() {
    check_type::<f32>();
}

#[test]
fn f64_every_backend_matches_scalar() {
    check_type::<f64>();
}

#[test]
fn f16_every_backend_matches_scalar() {
    check_type::<f16>();
}

#[test]
fn bf16_every_backend_matches_scalar() {
    check_type::<bf16>();
}

/// Masks with arbitrary bits (not only those a stream produces) through the backward pass;
/// at p = 1 every element is dropped whatever the bits say.
#[test]
fn apply_arbitrary_masks() {
    let mut g = rand_pcg::Pcg32::new(5, 5);
    for n in [63usize, 64, 65, 200, 513] {
        let mask: Vec<u64> = (0..mask_words(n) + 1)
            .map(|_| rand_core::Rng::next_u64(&mut g))
            .collect();
        let x: Vec<f32> = data(n, n as u64);
        for p in [0.3, 1.0] {
            for start in [0, 3] {
                let keep: Vec<bool> = (0..n).map(|i| bit(&mask, start + i)).collect();
                let want = spec_forward(&x, &keep, p);
                for b in Backend::available() {
                    let mut y = vec![0.0f32; n];
                    let io = Io::Out { x: &x, y: &mut y };
                    b.backward(p, Default::default(), 0, io, Some(Bits::at(&mask, start)))
                        .unwrap();
                    assert_same(&y, &want, b.name());
                }
            }
        }
    }
}

/// The backends with streaming stores (x86_64), serial and, with rayon, split across threads.
#[cfg(target_arch = "x86_64")]
fn streaming_backends() -> Vec<(Backend, &'static str)> {
    let mut all = Vec::new();
    for b in fast_backends()
        .into_iter()
        .filter(|b| b.name().starts_with("avx"))
    {
        all.push((b, ""));
        #[cfg(feature = "rayon")]
        all.push((b.parallel(), " (parallel)"));
    }
    all
}

/// Outputs large enough to be streamed (16 MiB and up, f32, out of place) at every position
/// of the output against a 64-byte line, in every cell that streams: element dropout, the
/// broadcast chunks (and their tiled rows) and alpha dropout, serial and split across
/// threads. The contract's bits (computed by the tests' own spec, since the large-call paths
/// are shared by every backend, the scalar one included), and nothing written outside `y`.
/// 16 MiB per case: the release test steps run it.
#[test]
#[cfg(target_arch = "x86_64")]
#[cfg_attr(
    any(miri, debug_assertions),
    ignore = "16 MiB per case: run in release"
)]
fn streamed_outputs_match_the_contract() {
    // Element and alpha dropout on 4Mi + 77 elements; column dropout on 1025 rows of 4096
    // (each row's decisions are one chunk); channels-last rows of 350 (their bits tiled 23
    // rows to a kernel call, the last call short).
    let (rows, cols) = (1025, 4096);
    let columns = simd_dropout::Shape::columns(rows, cols);
    let channels_last = simd_dropout::Shape::channels_last(3, 4000, 350);
    let x: Vec<f32> = data(3 * 4000 * 350, 9);
    let mut buf = vec![0.0f32; 3 * 4000 * 350 + 32];
    let seed = simd_dropout::Seed::default();
    let cases = [
        ("element", 0.3),
        ("element", 1.0),
        ("columns", 0.3),
        ("channels_last", 0.3),
        ("alpha", 0.3),
    ];
    for (op, p) in cases {
        let n = match op {
            "columns" => rows * cols,
            "channels_last" => 3 * 4000 * 350,
            _ => (16 << 20) / 4 + 77,
        };
        let x = &x[..n];
        let decisions = match op {
            "columns" => cols,
            "channels_last" => 3 * 350,
            _ => n,
        };
        let forward = |b: Backend, io: Io<'_, f32>, mask: Option<BitsMut<'_>>| match op {
            "element" => b.forward(p, seed, 5, io, mask),
            "columns" => b.broadcast_forward(columns, p, seed, 5, io, mask),
            "channels_last" => b.broadcast_forward(channels_last, p, seed, 5, io, mask),
            _ => b.alpha_forward(p, seed, 5, io, mask),
        };
        let backward = |b: Backend, io: Io<'_, f32>, mask: Option<Bits<'_>>| match op {
            "element" => b.backward(p, seed, 5, io, mask),
            "columns" => b.broadcast_backward(columns, p, seed, 5, io, mask),
            "channels_last" => b.broadcast_backward(channels_last, p, seed, 5, io, mask),
            _ => b.alpha_backward(p, seed, 5, io, mask),
        };
        // The contract's outputs, computed independently of the crate (every backend's
        // broadcast goes through the same row and chunk logic, so the scalar backend is no
        // reference for it).
        let keep = spec_keep(p, seed, 5, decisions);
        let want_mask = spec_mask(&keep);
        let want = match op {
            "element" => spec_forward(x, &keep, p),
            "columns" => spec_broadcast(x, (rows, cols), &keep, p),
            "channels_last" => spec_broadcast(x, (4000, 350), &keep, p),
            _ => spec_alpha(x, &keep, p),
        };
        let want_back = match op {
            "alpha" => spec_alpha_backward(x, &keep, p),
            _ => want.clone(),
        };
        let scalar = (Backend::scalar(), "");
        for (b, how) in std::iter::once(scalar).chain(streaming_backends()) {
            for k in [0, 4, 15] {
                let skip = (64 - buf.as_ptr() as usize % 64) % 64 / 4 + k;
                let cells = ["forward", "forward_no_mask", "from_mask", "recompute"];
                for cell in cells {
                    buf.fill(-7.0);
                    let mut mask = vec![0u64; mask_words(decisions)];
                    let (head, rest) = buf.split_at_mut(skip);
                    let (y, after) = rest.split_at_mut(n);
                    let io = Io::Out { x, y };
                    match cell {
                        "forward" => forward(b, io, Some(BitsMut::new(&mut mask))),
                        "forward_no_mask" => forward(b, io, None),
                        "from_mask" => backward(b, io, Some(Bits::new(&want_mask))),
                        _ => backward(b, io, None),
                    }
                    .unwrap();
                    let what = format!("{}{how} {op} {cell} p {p} line offset {k}", b.name());
                    let backward = cell == "from_mask" || cell == "recompute";
                    assert_same(y, if backward { &want_back } else { &want }, &what);
                    if cell == "forward" {
                        assert_eq!(mask, want_mask, "{what}");
                    }
                    assert!(
                        head.iter().chain(after.iter()).all(|v| *v == -7.0),
                        "{what}"
                    );
                }
            }
        }
    }
}

#[test]
fn detect_is_the_fastest_available() {
    let last = Backend::available().last().unwrap();
    assert_eq!(Backend::detect(), last);
    // Under std the x86_64 backends are found at run time.
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    {
        let has = |f: &str| match f {
            // Everything the AVX-512 backend needs, not only F and DQ.
            "avx512" => {
                std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512dq")
                    && std::is_x86_feature_detected!("avx512bw")
                    && std::is_x86_feature_detected!("avx2")
                    && std::is_x86_feature_detected!("f16c")
            }
            _ => std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("f16c"),
        };
        let capped_to_avx2 = cfg!(any(
            simd_dropout_cap = "avx2",
            simd_dropout_cap = "portable"
        ));
        let want = if has("avx512") && !capped_to_avx2 {
            "avx512"
        } else if has("avx2") && !cfg!(simd_dropout_cap = "portable") {
            "avx2"
        } else {
            "portable"
        };
        assert_eq!(Backend::detect().name(), want);
    }
}
