//! Statistical quality of the masks. Every test is deterministic (fixed seeds); each bound is
//! set for a false-alarm probability of about 1e-6 had the seeds been random, so a failure
//! means a real defect, not bad luck.

use simd_dropout::{Backend, BitsMut, Dropout, Io, MaskRef, Seed, mask_words};

/// z-score with a two-sided tail probability of about 1e-6.
const Z: f64 = 4.9;

/// Upper 1e-6 quantile of chi-square with `k` degrees of freedom (Wilson-Hilferty).
fn chi2_bound(k: f64) -> f64 {
    let h = 2.0 / (9.0 * k);
    k * (1.0 - h + Z * h.sqrt()).powi(3)
}

fn keep_prob(p: f64) -> f64 {
    1.0 - (p * 4_294_967_296.0).round() / 4_294_967_296.0
}

fn mask(b: Backend, p: f64, seed: Seed, offset: u64, n: usize) -> Vec<bool> {
    let mut m = vec![0u64; mask_words(n)];
    b.fill_mask(p, seed, offset, n, BitsMut::new(&mut m))
        .unwrap();
    MaskRef::new(&m, n).unwrap().iter().collect()
}

#[test]
fn keep_rate_per_bit_position_and_lane() {
    // Bit j of every mask word is lane j of the interleaved generators on every backend.
    let words = if cfg!(miri) { 200 } else { 20_000 };
    for b in Backend::available() {
        for p in [0.1, 0.5, 0.9] {
            let keep = mask(b, p, Seed::new(101, 7), 12_345, 64 * words);
            let q = keep_prob(p);
            let mut counts = [0usize; 64];
            for (i, &k) in keep.iter().enumerate() {
                counts[i % 64] += usize::from(k);
            }
            let (n, e) = (words as f64, words as f64 * q);
            let chi2: f64 = counts
                .iter()
                .map(|&c| (c as f64 - e).powi(2) / (n * q * (1.0 - q)))
                .sum();
            assert!(
                chi2 < chi2_bound(64.0),
                "{} p={p}: chi2 {chi2:.1}",
                b.name()
            );
        }
    }
}

/// The 2x2 table of (keep[i], keep[i + lag]) against independence: chi-square, 1 dof.
fn independence_chi2(keep: &[bool], lag: usize, q: f64) -> f64 {
    let mut t = [[0f64; 2]; 2];
    for i in 0..keep.len() - lag {
        t[usize::from(keep[i])][usize::from(keep[i + lag])] += 1.0;
    }
    let n = (keep.len() - lag) as f64;
    let pr = [1.0 - q, q];
    let mut chi2 = 0.0;
    for a in 0..2 {
        for b in 0..2 {
            let e = n * pr[a] * pr[b];
            chi2 += (t[a][b] - e).powi(2) / e;
        }
    }
    chi2
}

#[test]
fn neighbouring_decisions_are_independent() {
    // Lag 1 (neighbours), 63/64/65 (the same lane one step on, and across word boundaries),
    // 4096 and 32768 (chunk and parallel piece sizes).
    let n = if cfg!(miri) { 5_000 } else { 2_000_000 };
    let keep = mask(Backend::detect(), 0.5, Seed::new(5, 9), 0, n);
    for lag in [1usize, 2, 63, 64, 65, 128, 4096, 32_768] {
        if lag >= n / 2 {
            continue;
        }
        let chi2 = independence_chi2(&keep, lag, keep_prob(0.5));
        // The four cells have 3 degrees of freedom with the margins known.
        assert!(chi2 < chi2_bound(3.0), "lag {lag}: chi2 {chi2:.1}");
    }
}

/// Agreement of two independent masks: `q^2 + (1 - q)^2` per element.
fn assert_uncorrelated(a: &[bool], b: &[bool], q: f64, what: &str) {
    let n = a.len() as f64;
    let agree = a.iter().zip(b).filter(|(x, y)| x == y).count() as f64;
    let pa = q * q + (1.0 - q) * (1.0 - q);
    let sd = (n * pa * (1.0 - pa)).sqrt();
    assert!(
        (agree - n * pa).abs() < Z * sd,
        "{what}: {agree} of {n} agree"
    );
}

#[test]
fn consecutive_layer_calls_and_neighbouring_streams_are_uncorrelated() {
    let n = if cfg!(miri) { 2_000 } else { 500_000 };
    let p = 0.3;
    let q = keep_prob(p);
    // Consecutive calls of a layer.
    let layer = Dropout::new(p, Seed::new(77, 1)).unwrap();
    let x = vec![1.0f32; n];
    let (mut y1, mut y2) = (vec![0.0f32; n], vec![0.0f32; n]);
    layer.forward(Io::Out { x: &x, y: &mut y1 }, None).unwrap();
    layer.forward(Io::Out { x: &x, y: &mut y2 }, None).unwrap();
    let k1: Vec<bool> = y1.iter().map(|&v| v != 0.0).collect();
    let k2: Vec<bool> = y2.iter().map(|&v| v != 0.0).collect();
    assert_uncorrelated(&k1, &k2, q, "consecutive calls");
    // Neighbouring streams of the same state, and neighbouring states.
    let b = Backend::detect();
    let base = mask(b, p, Seed::new(1234, 10), 0, n);
    for (seed, what) in [
        (Seed::new(1234, 11), "stream + 1"),
        (Seed::new(1235, 10), "state + 1"),
        (
            Seed::from_u64(1),
            "from_u64(1) against a neighbouring raw seed",
        ),
    ] {
        assert_uncorrelated(&base, &mask(b, p, seed, 0, n), q, what);
    }
    // Offsets one piece apart (what two threads draw).
    let other = mask(b, p, Seed::new(1234, 10), 1 << 15, n);
    assert_uncorrelated(&base, &other, q, "offset + 2^15");
}
