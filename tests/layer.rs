//! The `Dropout` layer: running offset, replay, train/eval, backends.

mod common;

use common::*;
use simd_dropout::{mask_words, Backend, Dropout, Seed};

#[test]
fn offset_advances_by_exactly_the_elements_drawn() {
    let mut layer = Dropout::new(0.3, Seed::new(1, 2)).unwrap();
    let mut y = vec![0.0f32; 100];
    let mut m = vec![0u64; 2];
    layer.forward(&[1.0; 100], &mut y, &mut m).unwrap();
    layer.forward_no_mask(&[1.0; 37], &mut y[..37]).unwrap();
    layer.forward_in_place(&mut y[..5], &mut m).unwrap();
    layer.forward_in_place_no_mask(&mut y[..0]).unwrap();
    assert_eq!(layer.offset(), 142);
    layer.eval();
    layer.forward(&[1.0; 100], &mut y, &mut m).unwrap();
    assert_eq!(layer.offset(), 142);
}

#[test]
fn successive_calls_use_fresh_words_and_replay_exactly() {
    let seed = Seed::new(123, 456);
    let mut layer = Dropout::new(0.5, seed).unwrap();
    let x: Vec<f32> = data(300, 4);
    let mut recs = Vec::new();
    let mut outs = Vec::new();
    for _ in 0..3 {
        let mut y = vec![0.0f32; 300];
        recs.push(layer.forward_no_mask(&x, &mut y).unwrap());
        outs.push(y);
    }
    assert_ne!(outs[0], outs[1]);
    for (k, (rec, out)) in recs.iter().zip(&outs).enumerate() {
        assert_eq!(rec.offset, 300 * k as u64);
        // The stateless API at the recorded offset gives the same bits.
        let mut y = vec![0.0f32; 300];
        simd_dropout::forward_no_mask(0.5, seed, rec.offset, &x, &mut y).unwrap();
        assert_same(&y, out, "stateless replay");
        rec.replay(&x, &mut y).unwrap();
        assert_same(&y, out, "record replay");
    }
}

#[test]
fn every_backend_gives_the_same_layer_outputs() {
    let x: Vec<f32> = data(1000, 8);
    let mut outs = Vec::new();
    for b in Backend::available() {
        let mut layer = Dropout::new(0.25, Seed::new(5, 5)).unwrap().with_backend(b);
        let mut y = vec![0.0f32; 1000];
        let mut m = vec![0u64; mask_words(1000)];
        layer.forward(&x, &mut y, &mut m).unwrap();
        layer.forward(&x, &mut y, &mut m).unwrap();
        outs.push((y, m));
    }
    for o in &outs[1..] {
        assert_same(&o.0, &outs[0].0, "y");
        assert_eq!(o.1, outs[0].1);
    }
}

#[test]
fn offset_wraps_in_the_layer() {
    let mut layer = Dropout::new(0.5, Seed::new(1, 1)).unwrap();
    layer.set_offset(u64::MAX - 5);
    let mut y = vec![0.0f32; 10];
    let rec = layer.forward_no_mask(&[1.0; 10], &mut y).unwrap();
    assert_eq!(rec.offset, u64::MAX - 5);
    assert_eq!(layer.offset(), 4);
    let keep = spec_keep(0.5, Seed::new(1, 1), u64::MAX - 5, 10);
    for (v, k) in y.iter().zip(keep) {
        assert_eq!(*v, if k { 2.0 } else { 0.0 });
    }
}

#[test]
fn seeding_from_an_rng_is_reproducible() {
    use rand_core::SeedableRng;
    let a = Dropout::from_rng(0.1, &mut rand_pcg::Pcg64::seed_from_u64(9)).unwrap();
    let b = Dropout::from_rng(0.1, &mut rand_pcg::Pcg64::seed_from_u64(9)).unwrap();
    assert_eq!(a.seed(), b.seed());
}

#[test]
fn variant_modes_advance_by_the_words_drawn_and_replay() {
    use simd_dropout::{Mode, Shape};
    let seed = Seed::new(6, 7);
    let mut layer = Dropout::new(0.3, seed).unwrap();
    let shape = Shape::channels(2, 4, 25);
    let x: Vec<f32> = data(200, 2);
    let mut y = vec![0.0f32; 200];
    let mut m = vec![0u64; 1];
    let rec = layer.forward_broadcast(shape, &x, &mut y, &mut m).unwrap();
    assert_eq!((rec.mode, layer.offset()), (Mode::Broadcast(shape), 8));
    let mut want = vec![0.0f32; 200];
    Backend::detect()
        .broadcast_forward_no_mask(0.3, seed, 0, shape, &x, &mut want)
        .unwrap();
    assert_same(&y, &want, "broadcast");
    let (mut g1, mut g2) = (vec![0.0f32; 200], vec![0.0f32; 200]);
    rec.backward(&m, &x, &mut g1).unwrap();
    rec.backward_recompute(&x, &mut g2).unwrap();
    assert_same(&g1, &g2, "broadcast backward");

    let mut m2 = vec![0u64; mask_words(200)];
    let rec = layer.forward_alpha(&x, &mut y, &mut m2).unwrap();
    assert_eq!(
        (rec.mode, rec.offset, layer.offset()),
        (Mode::Alpha, 8, 208)
    );
    rec.backward(&m2, &x, &mut g1).unwrap();
    rec.backward_recompute(&x, &mut g2).unwrap();
    assert_same(&g1, &g2, "alpha backward");

    // An invalid call writes nothing and draws nothing.
    let mut one = Dropout::new(1.0, seed).unwrap();
    assert!(one.forward_alpha(&x, &mut y, &mut m2).is_err());
    assert!(layer
        .forward_broadcast(Shape::new(3, 3, 3), &x, &mut y, &mut m)
        .is_err());
    assert_eq!((one.offset(), layer.offset()), (0, 208));

    let bias = vec![0.5f32; 20];
    let rec = layer.forward_fused(&x, &bias, &x, &mut y, &mut m2).unwrap();
    assert_eq!((rec.mode, layer.offset()), (Mode::Fused { cols: 20 }, 408));
    let mut gb = vec![0.0f32; 20];
    rec.backward_fused(&m2, &x, &mut g1, &mut gb).unwrap();
}

#[test]
fn every_mode_replays_and_runs_its_backward_in_place() {
    use simd_dropout::{Error, Shape};
    let x: Vec<f32> = data(300, 9);
    let gy: Vec<f32> = data(300, 10);
    let mut layer = Dropout::new(0.4, Seed::new(3, 3)).unwrap();
    let mut y = vec![0.0f32; 300];
    let mut m = vec![0u64; mask_words(300)];
    let recs = [
        layer.forward(&x, &mut y.clone(), &mut m.clone()).unwrap(),
        layer
            .forward_broadcast(Shape::columns(3, 100), &x, &mut y.clone(), &mut m.clone())
            .unwrap(),
        layer
            .forward_alpha(&x, &mut y.clone(), &mut m.clone())
            .unwrap(),
    ];
    for rec in recs {
        // Run the call again with a mask, at the recorded offset.
        layer.set_offset(rec.offset);
        let out = match rec.mode {
            simd_dropout::Mode::Broadcast(s) => layer.forward_broadcast(s, &x, &mut y, &mut m),
            simd_dropout::Mode::Alpha => layer.forward_alpha(&x, &mut y, &mut m),
            _ => layer.forward(&x, &mut y, &mut m),
        };
        assert_eq!(out.unwrap(), rec);
        let mut z = vec![0.0f32; 300];
        rec.replay(&x, &mut z).unwrap();
        assert_same(&z, &y, "replay");
        let mut zi = x.clone();
        rec.replay_in_place(&mut zi).unwrap();
        assert_same(&zi, &y, "replay in place");
        let mut g = vec![0.0f32; 300];
        rec.backward(&m, &gy, &mut g).unwrap();
        let mut g2 = gy.clone();
        rec.backward_in_place(&m, &mut g2).unwrap();
        assert_same(&g2, &g, "backward in place");
        let mut g3 = gy.clone();
        rec.backward_recompute_in_place(&mut g3).unwrap();
        assert_same(&g3, &g, "recompute in place");
    }
    let bias = vec![0.0f32; 100];
    let rec = layer.forward_fused(&x, &bias, &x, &mut y, &mut m).unwrap();
    assert_eq!(rec.replay(&x, &mut y), Err(Error::UnsupportedMode));
}
