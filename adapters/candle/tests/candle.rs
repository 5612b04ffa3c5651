//! The candle adapter against the core crate and against candle's own formulation.

use candle_core::{DType, Device, ModuleT, Tensor, Var};
use simd_dropout::{Backend, BitsMut, Io, Seed};
use simd_dropout_candle::{
    ChannelOrder, Dropout, Keep, Structure, alpha_dropout, broadcast_dropout, drop_block, dropout,
    dropout_with_mask, fused_bias_dropout_residual, gaussian_dropout,
};

const DTYPES: [DType; 4] = [DType::F32, DType::F64, DType::F16, DType::BF16];

/// A test tensor of `shape` with negative, positive and fractional values.
fn input(shape: (usize, usize), dtype: DType) -> Tensor {
    let n = shape.0 * shape.1;
    let v: Vec<f32> = (0..n)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

/// Bits of a tensor, widened to u64, in row-major order.
fn bits(t: &Tensor) -> Vec<u64> {
    let t = t.flatten_all().unwrap();
    match t.dtype() {
        DType::F32 => t
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|v| u64::from(v.to_bits()))
            .collect(),
        DType::F64 => t
            .to_vec1::<f64>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect(),
        DType::F16 => t
            .to_vec1::<half::f16>()
            .unwrap()
            .iter()
            .map(|v| u64::from(v.to_bits()))
            .collect(),
        DType::BF16 => t
            .to_vec1::<half::bf16>()
            .unwrap()
            .iter()
            .map(|v| u64::from(v.to_bits()))
            .collect(),
        _ => unreachable!(),
    }
}

/// The core crate's forward on the same elements (row-major) and stream position.
fn core_forward(x: &Tensor, p: f32, seed: u64, offset: u64) -> (Vec<u64>, Vec<u64>) {
    fn run<T: simd_dropout::Element + candle_core::WithDType>(
        x: &Tensor,
        p: f32,
        seed: u64,
        offset: u64,
    ) -> (Vec<u64>, Vec<u64>) {
        let v = x.flatten_all().unwrap().to_vec1::<T>().unwrap();
        let mut y = vec![T::ZERO; v.len()];
        let mut m = vec![0u64; simd_dropout::mask_words(v.len())];
        let io = Io::Out { x: &v, y: &mut y };
        Backend::scalar()
            .forward(
                f64::from(p),
                Seed::from_u64(seed),
                offset,
                io,
                Some(BitsMut::new(&mut m)),
            )
            .unwrap();
        (y.iter().map(|e| e.to_bits()).collect(), m)
    }
    match x.dtype() {
        DType::F32 => run::<f32>(x, p, seed, offset),
        DType::F64 => run::<f64>(x, p, seed, offset),
        DType::F16 => run::<half::f16>(x, p, seed, offset),
        DType::BF16 => run::<half::bf16>(x, p, seed, offset),
        _ => unreachable!(),
    }
}

#[test]
fn forward_bits_equal_the_core_crate() {
    for dtype in DTYPES {
        let x = input((37, 70), dtype);
        let y = dropout(&x, 0.3, 11, 1000).unwrap();
        let (want, want_mask) = core_forward(&x, 0.3, 11, 1000);
        assert_eq!(bits(&y), want, "{dtype:?}");
        let (y2, mask) = dropout_with_mask(&x, 0.3, 11, 1000).unwrap();
        assert_eq!(bits(&y2), want, "{dtype:?}");
        let mask: Vec<u8> = mask.flatten_all().unwrap().to_vec1().unwrap();
        for (i, &m) in mask.iter().enumerate() {
            assert_eq!(m == 1, (want_mask[i / 64] >> (i % 64)) & 1 == 1);
        }
    }
}

#[test]
fn transposed_and_narrowed_tensors_equal_their_contiguous_copies() {
    for dtype in DTYPES {
        let x = input((40, 90), dtype);
        for v in [
            x.t().unwrap(),
            x.narrow(1, 7, 50).unwrap(),
            x.narrow(0, 3, 20).unwrap().t().unwrap(),
        ] {
            assert!(!v.is_contiguous());
            let a = dropout(&v, 0.4, 5, 0).unwrap();
            let b = dropout(&v.contiguous().unwrap(), 0.4, 5, 0).unwrap();
            assert_eq!(bits(&a), bits(&b), "{dtype:?} {:?}", v.dims());
        }
    }
}

/// The gradient equals candle's own `x * mask * scale` with the same mask, every bit but the
/// sign of a dropped zero (candle's multiply gives `-0.0` for a negative gradient), for every
/// dtype where the scale is exact (p = 0.5), and for f32 and f64 at any p. At p = 0.25 the f16
/// and bf16 scale `4/3` is not a 16-bit number: candle rounds it to the type before
/// multiplying (two roundings), the contract multiplies in f32 and rounds once, so there the
/// gradient equals the native formulation computed in f32.
#[test]
fn gradients_equal_the_native_formulation() {
    for (dtype, p) in DTYPES.iter().flat_map(|&d| [(d, 0.5f32), (d, 0.25)]) {
        for keep in [Keep::Mask, Keep::Recompute] {
            let x = Var::from_tensor(&input((16, 48), dtype)).unwrap();
            let layer = Dropout::new(p, 99).unwrap().with_keep(keep);
            let (y, mask) = layer.forward_with_mask(x.as_tensor()).unwrap();
            let up = input((16, 48), dtype).affine(0.5, -1.0).unwrap(); // both signs
            let grads = (y * &up).unwrap().sum_all().unwrap().backward().unwrap();
            let gx = grads.get(x.as_tensor()).unwrap();
            let scale = 1.0 / (1.0 - f64::from(p));
            let exact_scale = matches!(dtype, DType::F32 | DType::F64) || p == 0.5;
            let native = if exact_scale {
                (up * mask.to_dtype(dtype).unwrap()).unwrap() * scale
            } else {
                let up32 = up.to_dtype(DType::F32).unwrap();
                ((up32 * mask.to_dtype(DType::F32).unwrap()).unwrap() * scale)
                    .and_then(|t| t.to_dtype(dtype))
            }
            .unwrap();
            let (g, n) = (bits(gx), bits(&native));
            let sign = match dtype {
                DType::F64 => 1u64 << 63,
                DType::F32 => 1 << 31,
                _ => 1 << 15,
            };
            for (a, b) in g.iter().zip(&n) {
                let same_but_zero_sign = (a & !sign) == 0 && (b & !sign) == 0;
                assert!(
                    a == b || same_but_zero_sign,
                    "{dtype:?} p={p} {keep:?}: {a:#x} vs {b:#x}"
                );
            }
        }
    }
}

#[test]
fn mask_and_recompute_give_the_same_gradients() {
    let x = Var::from_tensor(&input((8, 300), DType::BF16)).unwrap();
    let mut g = Vec::new();
    for keep in [Keep::Mask, Keep::Recompute] {
        let layer = Dropout::new(0.5, 3).unwrap().with_keep(keep);
        let y = layer.forward_t(&x.as_tensor().t().unwrap(), true).unwrap();
        let grads = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        g.push(bits(grads.get(x.as_tensor()).unwrap()));
    }
    assert_eq!(g[0], g[1]);
}

#[test]
fn train_eval_offsets_and_resume() {
    let x = input((10, 10), DType::F32);
    let layer = Dropout::new(0.5, 1).unwrap();
    assert_eq!(bits(&layer.forward_t(&x, false).unwrap()), bits(&x));
    let a = layer.forward_t(&x, true).unwrap();
    assert_eq!(layer.state().offset, 100);
    let saved = layer.state();
    let b = layer.forward_t(&x, true).unwrap();
    assert_ne!(bits(&a), bits(&b));
    let resumed = Dropout::from_state(saved, Keep::Mask).unwrap();
    assert_eq!(bits(&resumed.forward_t(&x, true).unwrap()), bits(&b));
    assert_eq!(bits(&b), core_forward(&x, 0.5, 1, 100).0);
}

#[test]
fn bad_input_is_a_candle_error() {
    let x = input((2, 3), DType::F32);
    for p in [-0.1f32, 1.5, f32::NAN] {
        let e = Dropout::new(p, 0).unwrap_err().to_string();
        assert!(e.contains("drop probability"), "{e}");
        assert!(dropout(&x, p, 0, 0).is_err());
    }
    let ints = Tensor::arange(0u32, 6, &Device::Cpu).unwrap();
    let e = dropout(&ints, 0.5, 0, 0).unwrap_err().to_string();
    assert!(e.contains("not supported"), "{e}");
    assert!(alpha_dropout(&x, 1.0, 0, 0).is_err());
    let bad_bias = input((1, 4), DType::F32).flatten_all().unwrap();
    assert!(fused_bias_dropout_residual(&x, &bad_bias, &x, 0.1, 0, 0).is_err());
    assert!(broadcast_dropout(&x.flatten_all().unwrap(), Structure::Channels, 0.1, 0, 0).is_err());
}

/// Locked dropout: one mask per (sequence, feature) at every step, the same for the
/// batch-first and time-first layouts of one batch, and gradients by recompute.
#[test]
fn locked_dropout_in_both_layouts() {
    let (batch, time, features) = (3, 5, 4);
    let x = input((batch, time * features), DType::F32)
        .reshape((batch, time, features))
        .unwrap();
    let y = broadcast_dropout(&x, Structure::LockedBatchFirst, 0.5, 2, 9).unwrap();
    let xt = x.transpose(0, 1).unwrap();
    let yt = broadcast_dropout(&xt, Structure::LockedTimeFirst, 0.5, 2, 9).unwrap();
    let y3 = y.to_vec3::<f32>().unwrap();
    assert_eq!(yt.transpose(0, 1).unwrap().to_vec3::<f32>().unwrap(), y3);
    let x3 = x.to_vec3::<f32>().unwrap();
    let mut dropped = 0;
    for b in 0..batch {
        for f in 0..features {
            let kept = y3[b][0][f] != 0.0;
            dropped += usize::from(!kept);
            for t in 0..time {
                let want = if kept { x3[b][t][f] * 2.0 } else { 0.0 };
                assert_eq!(y3[b][t][f], want, "b={b} t={t} f={f}");
            }
        }
    }
    assert!(dropped > 0 && dropped < batch * features, "{dropped}");
    let xv = Var::from_tensor(&x).unwrap();
    let grads = broadcast_dropout(xv.as_tensor(), Structure::LockedBatchFirst, 0.5, 2, 9)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let g = grads.get(xv.as_tensor()).unwrap().to_vec3::<f32>().unwrap();
    for (gb, yb) in g.iter().zip(&y3) {
        for gt in gb {
            for (f, &gv) in gt.iter().enumerate() {
                let want = if yb[0][f] != 0.0 { 2.0 } else { 0.0 };
                assert_eq!(gv, want);
            }
        }
    }
    let flat = x.flatten_all().unwrap();
    assert!(broadcast_dropout(&flat, Structure::LockedTimeFirst, 0.5, 2, 9).is_err());
}

#[test]
fn variants_equal_the_core_crate_and_run_backward() {
    let b = Backend::scalar();
    let seed = Seed::from_u64(8);
    for dtype in [DType::F32, DType::BF16] {
        let x = input((12, 20), dtype);
        // Column dropout.
        let y = broadcast_dropout(&x, Structure::Columns, 0.5, 8, 4).unwrap();
        let v = x
            .flatten_all()
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        if dtype == DType::F32 {
            let mut want = vec![0.0f32; v.len()];
            let io = Io::Out {
                x: &v,
                y: &mut want,
            };
            b.broadcast_forward(simd_dropout::Shape::columns(12, 20), 0.5, seed, 4, io, None)
                .unwrap();
            assert_eq!(y.flatten_all().unwrap().to_vec1::<f32>().unwrap(), want);
            let mut want = vec![0.0f32; v.len()];
            // The adapter takes p as f32, like candle.
            b.alpha_forward(
                f64::from(0.2f32),
                seed,
                4,
                Io::Out {
                    x: &v,
                    y: &mut want,
                },
                None,
            )
            .unwrap();
            let got = alpha_dropout(&x, 0.2, 8, 4).unwrap();
            assert_eq!(got.flatten_all().unwrap().to_vec1::<f32>().unwrap(), want);
        }
        // Gradients flow through each variant.
        let xv = Var::from_tensor(&x).unwrap();
        let bias = Var::from_tensor(&input((1, 20), dtype).flatten_all().unwrap()).unwrap();
        let res = Var::from_tensor(&input((12, 20), dtype).affine(2.0, 0.0).unwrap()).unwrap();
        let y = fused_bias_dropout_residual(
            xv.as_tensor(),
            bias.as_tensor(),
            res.as_tensor(),
            0.1,
            8,
            4,
        )
        .unwrap();
        let z = broadcast_dropout(&y, Structure::Samples, 0.3, 9, 0).unwrap();
        let grads = alpha_dropout(&z, 0.1, 10, 0)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for v in [&xv, &bias, &res] {
            let g = grads.get(v.as_tensor()).unwrap();
            assert_eq!(g.dims(), v.dims());
        }
    }
}

/// DropBlock and Gaussian dropout: the core crate's bits on the same elements and stream
/// position, and gradients that are the same rule applied to the output gradient.
#[test]
fn drop_block_and_gaussian_equal_the_core_crate() {
    let b = Backend::scalar();
    let seed = Seed::from_u64(21);
    let v: Vec<f32> = (0..2 * 3 * 9 * 11)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
        .collect();
    let x = Tensor::from_vec(v.clone(), (2, 3, 9, 11), &Device::Cpu).unwrap();
    let blocks = simd_dropout::Blocks::nchw(2, 3, 9, 11, 3);
    let mut want = vec![0.0f32; v.len()];
    let io = Io::Out {
        x: &v,
        y: &mut want,
    };
    b.block_forward(blocks, f64::from(0.25f32), seed, 5, io, None)
        .unwrap();
    let got = drop_block(&x, ChannelOrder::First, 3, 0.25, 21, 5).unwrap();
    assert_eq!(got.flatten_all().unwrap().to_vec1::<f32>().unwrap(), want);
    let mut want_g = vec![0.0f32; v.len()];
    let io = Io::Out {
        x: &v,
        y: &mut want_g,
    };
    b.gaussian_forward(f64::from(0.25f32), seed, 5, io).unwrap();
    let got = gaussian_dropout(&x, 0.25, 21, 5).unwrap();
    assert_eq!(got.flatten_all().unwrap().to_vec1::<f32>().unwrap(), want_g);
    // Gradients of sum(y): the output for ones (the mask times the scale, or the noise).
    let grad_of_sum = |f: &dyn Fn(&Tensor) -> candle_core::Result<Tensor>| -> Vec<f32> {
        let xv = Var::from_tensor(&x).unwrap();
        let grads = f(xv.as_tensor())
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let g = grads.get(xv.as_tensor()).unwrap();
        g.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    };
    let mut want = vec![1.0f32; v.len()];
    let io = Io::InPlace(&mut want);
    b.block_forward(blocks, f64::from(0.25f32), seed, 5, io, None)
        .unwrap();
    assert_eq!(
        grad_of_sum(&|t| drop_block(t, ChannelOrder::First, 3, 0.25, 21, 5)),
        want,
        "drop_block"
    );
    let mut want = vec![1.0f32; v.len()];
    let io = Io::InPlace(&mut want);
    b.gaussian_forward(f64::from(0.25f32), seed, 5, io).unwrap();
    assert_eq!(
        grad_of_sum(&|t| gaussian_dropout(t, 0.25, 21, 5)),
        want,
        "gaussian"
    );
    // Channels-last: the same tensor permuted to NHWC gives the NCHW output permuted.
    let x_nhwc = x.permute((0, 2, 3, 1)).unwrap();
    let y_nhwc = drop_block(&x_nhwc, ChannelOrder::Last, 3, 0.25, 21, 5).unwrap();
    let y = drop_block(&x, ChannelOrder::First, 3, 0.25, 21, 5).unwrap();
    let back = y_nhwc.permute((0, 3, 1, 2)).unwrap().flatten_all().unwrap();
    assert_eq!(
        back.to_vec1::<f32>().unwrap(),
        y.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    );
    // 3-D, and shapes DropBlock does not take.
    let x3 = Tensor::ones((1, 2, 4, 5, 6), DType::F32, &Device::Cpu).unwrap();
    assert_eq!(
        drop_block(&x3, ChannelOrder::First, 2, 0.3, 1, 0)
            .unwrap()
            .dims(),
        x3.dims()
    );
    assert!(
        drop_block(
            &Tensor::ones((4, 5), DType::F32, &Device::Cpu).unwrap(),
            ChannelOrder::First,
            2,
            0.3,
            1,
            0
        )
        .is_err()
    );
    assert!(gaussian_dropout(&x, 1.0, 1, 0).is_err());
}
