//! Differential fuzzing of the variants: broadcast dropout with arbitrary shapes, alpha
//! dropout and fused bias + dropout + residual, every backend against the scalar one, with
//! arbitrary `p` bits (invalid ones must give the same `Error` and write nothing).
#![no_main]

use libfuzzer_sys::fuzz_target;
use simd_dropout::{mask_words, Backend, Bits, BitsMut, Io, Seed, Shape};

#[path = "input.rs"]
mod input;
use input::{same, Input};

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let p = input.p();
    let seed = Seed::new(input.u64(), input.u64());
    let offset = input.u64();
    let control = input.u64();
    let x: Vec<f32> = input
        .0
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let n = x.len();
    let scalar = Backend::scalar();
    match control % 3 {
        0 => {
            // A shape that may or may not describe n elements.
            let (outer, inner) = (((control >> 8) % 9) as usize, ((control >> 16) % 70) as usize);
            let mid = if outer * inner == 0 { (control >> 24) as usize % 5 } else { n / (outer * inner) };
            let shape = Shape::new(outer, mid, inner);
            let d = shape.decisions().unwrap_or(0);
            let words = mask_words(d);
            let mut want = (vec![0.0f32; n], vec![0u64; words]);
            let io = Io::Out { x: &x, y: &mut want.0 };
            let r = scalar.broadcast_forward(shape, p, seed, offset, io, Some(BitsMut::new(&mut want.1)));
            for b in Backend::available() {
                let mut got = (vec![0.0f32; n], vec![0u64; words]);
                let io = Io::Out { x: &x, y: &mut got.0 };
                let g = b.broadcast_forward(shape, p, seed, offset, io, Some(BitsMut::new(&mut got.1)));
                assert_eq!(g, r);
                assert!(same(&got.0, &want.0) && got.1 == want.1, "{}", b.name());
                let mut y = x.clone();
                let g = b.broadcast_backward(shape, p, seed, offset, Io::InPlace(&mut y), None);
                assert_eq!(g, r);
                if r.is_ok() {
                    assert!(same(&y, &want.0), "{}", b.name());
                }
            }
        }
        1 => {
            let mut want = (vec![0.0f32; n], vec![0u64; mask_words(n)]);
            let io = Io::Out { x: &x, y: &mut want.0 };
            let r = scalar.alpha_forward(p, seed, offset, io, Some(BitsMut::new(&mut want.1)));
            for b in Backend::available() {
                let mut got = (vec![0.0f32; n], vec![0u64; mask_words(n)]);
                let io = Io::Out { x: &x, y: &mut got.0 };
                assert_eq!(b.alpha_forward(p, seed, offset, io, Some(BitsMut::new(&mut got.1))), r);
                assert!(same(&got.0, &want.0) && got.1 == want.1, "{}", b.name());
                if r.is_ok() {
                    let mut g = vec![0.0f32; n];
                    let mut g2 = x.clone();
                    b.alpha_backward(p, seed, offset, Io::Out { x: &x, y: &mut g }, Some(Bits::new(&want.1)))
                        .unwrap();
                    b.alpha_backward(p, seed, offset, Io::InPlace(&mut g2), None).unwrap();
                    assert!(same(&g, &g2), "{}", b.name());
                }
            }
        }
        _ => {
            let cols = ((control >> 8) % 40) as usize;
            let bias: Vec<f32> = x.iter().take(cols).map(|v| v * 0.5).collect();
            let residual: Vec<f32> = x.iter().rev().copied().collect();
            let mut want = (vec![0.0f32; n], vec![0u64; mask_words(n)]);
            let io = Io::Out { x: &x, y: &mut want.0 };
            let r = scalar.fused_forward(&bias, &residual, p, seed, offset, io, Some(BitsMut::new(&mut want.1)));
            for b in Backend::available() {
                let mut got = (vec![0.0f32; n], vec![0u64; mask_words(n)]);
                let io = Io::Out { x: &x, y: &mut got.0 };
                let g = b.fused_forward(&bias, &residual, p, seed, offset, io, Some(BitsMut::new(&mut got.1)));
                assert_eq!(g, r);
                assert!(same(&got.0, &want.0) && got.1 == want.1, "{}", b.name());
                if r.is_ok() {
                    let (mut gx, mut gb) = (vec![0.0f32; n], vec![0.0f32; bias.len()]);
                    let (mut gx2, mut gb2) = (x.clone(), vec![0.0f32; bias.len()]);
                    let io = Io::Out { x: &x, y: &mut gx };
                    b.fused_backward(&mut gb, p, seed, offset, io, Some(Bits::new(&want.1))).unwrap();
                    scalar.fused_backward(&mut gb2, p, seed, offset, Io::InPlace(&mut gx2), None).unwrap();
                    assert!(same(&gx, &gx2) && same(&gb, &gb2), "{}", b.name());
                }
            }
        }
    }
});
