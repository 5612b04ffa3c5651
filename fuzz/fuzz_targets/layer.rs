//! The `Dropout` layer and its records against the contract's oracle: a run of reservations
//! of every op (element, broadcast, alpha, fused), in training and eval mode, each record's
//! forward and backward cells checked at the stream position the layer handed out, the
//! layer's position after every call, a saved and restored state, and misuse (a record run
//! through another op's method, a wrong length) as an `Error` with nothing written.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recipe::common::{spec_alpha, spec_broadcast, spec_forward, spec_fused, spec_keep};
use recipe::{FromBits, Recipe, data, same, valid_p};
use simd_dropout::{Dropout, Io, Op, Record, Shape, mask_words};

#[path = "recipe.rs"]
mod recipe;

/// One call on a fresh record of `op`: forward checked against the oracle, then misuse.
fn call<T: FromBits>(r: &mut Recipe, layer: &Dropout, op: Op, n: usize) {
    let before = layer.offset();
    let training = layer.state().training;
    let p = layer.state().p;
    let rec = match layer.reserve(op, n) {
        Ok(rec) => rec,
        Err(_) => {
            assert_eq!(
                layer.offset(),
                before,
                "a refused reservation moves nothing"
            );
            return;
        }
    };
    let words = match op {
        Op::Broadcast(s) => s.decisions().unwrap(),
        _ => n,
    };
    let step = if training { words as u64 } else { 0 };
    assert_eq!(
        (rec.offset, layer.offset()),
        (before, before.wrapping_add(step))
    );
    let x: Vec<T> = data(n, r.u64());
    let keep = if training {
        spec_keep(p, rec.seed, rec.offset, words)
    } else {
        vec![true; words]
    };
    let p_eff = if training { p } else { 0.0 };
    let mut y = vec![T::ZERO; n];
    let mut m = vec![0u64; mask_words(words)];
    let want = match op {
        Op::Fused { cols } => {
            let (bias, res): (Vec<T>, Vec<T>) = (data(cols, r.u64()), data(n, r.u64()));
            // Misuse: an element method on a fused record.
            let mut z = x.clone();
            assert!(rec.forward(Io::InPlace(&mut z), None).is_err());
            assert!(same(&z, &x));
            let io = Io::Out { x: &x, y: &mut y };
            rec.fused_forward(&bias, &res, io, Some(simd_dropout::BitsMut::new(&mut m)))
                .unwrap();
            spec_fused(&x, &bias, &res, &keep, p_eff)
        }
        _ => {
            // Misuse: the fused method on another record, and a wrong length.
            let mut z = x.clone();
            let mut gb = vec![T::ZERO; 1];
            assert!(
                rec.fused_backward(&mut gb, Io::InPlace(&mut z), None)
                    .is_err()
            );
            let mut long = x.clone();
            long.push(T::ZERO);
            assert!(rec.forward(Io::InPlace(&mut long), None).is_err());
            assert!(same(&z, &x) && same(&long[..n], &x));
            rec.forward(
                Io::Out { x: &x, y: &mut y },
                Some(simd_dropout::BitsMut::new(&mut m)),
            )
            .unwrap();
            match op {
                Op::Broadcast(s) => {
                    let (_, mid, inner) = s.dims();
                    spec_broadcast(&x, (mid, inner), &keep, p_eff)
                }
                Op::Alpha if training => spec_alpha(&x, &keep, p),
                Op::Alpha => x.clone(),
                _ => spec_forward(&x, &keep, p_eff),
            }
        }
    };
    assert!(same(&y, &want), "{op:?} training={training}");
    let got: Vec<bool> = (0..words).map(|i| recipe::common::bit(&m, i)).collect();
    assert_eq!(got, keep, "{op:?} mask");
    replay(&rec, &x, &y);
}

/// A record replays the same bits.
fn replay<T: FromBits>(rec: &Record, x: &[T], y: &[T]) {
    if let Op::Fused { .. } = rec.op {
        return; // replayed above through fused_forward's inputs
    }
    let mut again = x.to_vec();
    rec.forward(Io::InPlace(&mut again), None).unwrap();
    assert!(same(&again, y));
}

fn run(r: &mut Recipe) {
    let (p, seed) = (r.p(), r.seed());
    let Ok(layer) = Dropout::new(p, seed) else {
        assert!(!valid_p(p));
        return;
    };
    assert!(valid_p(p));
    let mut layer = layer;
    for _ in 0..1 + r.below(4) {
        match r.byte() % 8 {
            0 => layer.eval(),
            1 => layer.train(),
            2 => {
                let restored = Dropout::from_state(layer.state()).unwrap();
                assert_eq!(restored.state(), layer.state());
                layer = restored;
            }
            _ => {}
        }
        let n = r.len();
        let op = match r.byte() % 4 {
            0 => Op::Element,
            1 => {
                let (outer, inner) = (1 + r.below(20), 1 + r.below(20));
                let mid = if r.byte() % 8 == 0 {
                    r.below(4)
                } else {
                    n / (outer * inner)
                };
                Op::Broadcast(Shape::new(outer, mid, inner))
            }
            2 => Op::Alpha,
            _ => Op::Fused { cols: r.below(40) },
        };
        let n = match op {
            Op::Broadcast(s) if r.byte() % 8 != 0 => s.elements().unwrap(),
            Op::Fused { cols } if cols > 0 && r.byte() % 8 != 0 => n - n % cols,
            _ => n,
        };
        each_type!(r.ty(), T => call::<T>(r, &layer, op, n));
    }
}

fuzz_target!(|bytes: &[u8]| run(&mut Recipe(bytes)));
