//! Every backend this CPU runs against the scalar reference, bit for bit, for every operation
//! and element type: lengths around word boundaries, sub-slice starts 0..8, several seeds,
//! offsets and probabilities.

mod common;

use common::*;
use half::{bf16, f16};
use simd_dropout::{mask_words, Backend};

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
        // Cycle seeds, offsets and starts with the length so that the whole grid of
        // (length, p) is covered while keeping the test fast.
        let seed = SEEDS[k % SEEDS.len()];
        let offset = OFFSETS[k % OFFSETS.len()].wrapping_add(k as u64 % 5);
        let start = k % 8;
        let buf: Vec<T> = data(n + pad + 8, k as u64);
        let x = &buf[start..start + n];
        for &p in ps() {
            let mut want_y = vec![T::ZERO; n];
            let mut want_m = vec![0u64; mask_words(n)];
            scalar
                .forward(p, seed, offset, x, &mut want_y, &mut want_m)
                .unwrap();
            for &b in &backends {
                let what = format!("{} {} n={n} p={p} start={start}", b.name(), T::NAME);
                // Out of place, into a sub-slice of a padded buffer whose guard values must
                // survive.
                let guard = T::from_f32(7.0);
                let mut ybuf = vec![guard; n + 2 * pad];
                let mut m = vec![!0u64; mask_words(n) + 1];
                b.forward(p, seed, offset, x, &mut ybuf[pad..pad + n], &mut m)
                    .unwrap();
                assert_same(&ybuf[pad..pad + n], &want_y, &format!("forward {what}"));
                assert!(ybuf[..pad]
                    .iter()
                    .chain(&ybuf[pad + n..])
                    .all(|&v| v == guard));
                assert_eq!(&m[..mask_words(n)], &want_m[..], "mask {what}");
                assert_eq!(m[mask_words(n)], !0, "word past the mask written {what}");

                let mut xy = x.to_vec();
                let mut m2 = vec![0u64; mask_words(n)];
                b.forward_in_place(p, seed, offset, &mut xy, &mut m2)
                    .unwrap();
                assert_same(&xy, &want_y, &format!("in place {what}"));
                assert_eq!(m2, want_m, "in-place mask {what}");

                let mut y3 = vec![T::ZERO; n];
                b.forward_no_mask(p, seed, offset, x, &mut y3).unwrap();
                assert_same(&y3, &want_y, &format!("no mask {what}"));
                let mut xy4 = x.to_vec();
                b.forward_in_place_no_mask(p, seed, offset, &mut xy4)
                    .unwrap();
                assert_same(&xy4, &want_y, &format!("in place no mask {what}"));

                let mut m5 = vec![0u64; mask_words(n)];
                b.fill_mask(p, seed, offset, n, &mut m5).unwrap();
                assert_eq!(m5, want_m, "fill_mask {what}");

                let mut y6 = vec![T::ZERO; n];
                b.apply_mask(p, &want_m, x, &mut y6).unwrap();
                assert_same(&y6, &want_y, &format!("apply {what}"));
                let mut xy7 = x.to_vec();
                b.apply_mask_in_place(p, &want_m, &mut xy7).unwrap();
                assert_same(&xy7, &want_y, &format!("apply in place {what}"));
            }
        }
    }
}

#[test]
fn f32_every_backend_matches_scalar() {
    check_type::<f32>();
}

#[test]
fn f16_every_backend_matches_scalar() {
    check_type::<f16>();
}

#[test]
fn bf16_every_backend_matches_scalar() {
    check_type::<bf16>();
}

/// Masks with arbitrary bits (not only those a stream produces) through apply_mask.
#[test]
fn apply_arbitrary_masks() {
    let mut g = rand_pcg::Pcg32::new(5, 5);
    for n in [63usize, 64, 65, 200, 513] {
        let mask: Vec<u64> = (0..mask_words(n))
            .map(|_| rand_core::Rng::next_u64(&mut g))
            .collect();
        let x: Vec<f32> = data(n, n as u64);
        let mut want = vec![0.0f32; n];
        Backend::scalar()
            .apply_mask(0.3, &mask, &x, &mut want)
            .unwrap();
        for b in fast_backends() {
            let mut y = vec![0.0f32; n];
            b.apply_mask(0.3, &mask, &x, &mut y).unwrap();
            assert_same(&y, &want, b.name());
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
            "avx512" => {
                std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512dq")
            }
            _ => std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("f16c"),
        };
        let want = if has("avx512") && !cfg!(feature = "no-avx512") {
            "avx512"
        } else if has("avx2") && !cfg!(feature = "no-avx2") {
            "avx2"
        } else {
            "portable"
        };
        assert_eq!(Backend::detect().name(), want);
    }
}
