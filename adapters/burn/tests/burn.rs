//! The burn adapter against the core crate and against burn's own formulation.
#![allow(deprecated)] // Device::ndarray: burn's deprecated backend stands for "any other backend"

use burn::module::Module;
use burn::tensor::{Bool, DType, Device, Tensor, TensorData};
use simd_dropout::{Backend, BitsMut, Io, Seed};
use simd_dropout_burn::{DropoutConfig, Keep, dropout, dropout_with_mask};

const DTYPES: [DType; 4] = [DType::F32, DType::F64, DType::F16, DType::BF16];

/// A test tensor of `shape` with negative, positive and fractional values.
fn input(shape: [usize; 2], dtype: DType, device: &Device) -> Tensor<2> {
    let n = shape[0] * shape[1];
    let v: Vec<f32> = (0..n)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
        .collect();
    Tensor::<2>::from_data(TensorData::new(v, shape), device).cast(dtype)
}

/// The bits of a tensor's elements (row-major), widened to u64.
fn bits<const D: usize>(t: Tensor<D>) -> Vec<u64> {
    let data = t.into_data();
    match data.dtype() {
        DType::F32 => data.iter::<f32>().map(|v| u64::from(v.to_bits())).collect(),
        DType::F64 => data.iter::<f64>().map(|v| v.to_bits()).collect(),
        DType::F16 => data
            .iter::<half::f16>()
            .map(|v| u64::from(v.to_bits()))
            .collect(),
        DType::BF16 => data
            .iter::<half::bf16>()
            .map(|v| u64::from(v.to_bits()))
            .collect(),
        other => panic!("not a test dtype: {other:?}"),
    }
}

/// The core crate's forward (output bits, mask words) on the same elements and position.
fn core_forward<const D: usize>(
    x: Tensor<D>,
    p: f64,
    seed: u64,
    offset: u64,
) -> (Vec<u64>, Vec<u64>) {
    fn run<T: simd_dropout::Element + burn::tensor::Element>(
        data: TensorData,
        p: f64,
        seed: u64,
        offset: u64,
    ) -> (Vec<u64>, Vec<u64>) {
        let v: Vec<T> = data.iter::<T>().collect();
        let mut y = vec![T::ZERO; v.len()];
        let mut m = vec![0u64; simd_dropout::mask_words(v.len())];
        Backend::scalar()
            .forward(
                p,
                Seed::from_u64(seed),
                offset,
                Io::Out { x: &v, y: &mut y },
                Some(BitsMut::new(&mut m)),
            )
            .unwrap();
        (y.iter().map(|e| e.to_bits()).collect(), m)
    }
    let data = x.into_data();
    match data.dtype() {
        DType::F32 => run::<f32>(data, p, seed, offset),
        DType::F64 => run::<f64>(data, p, seed, offset),
        DType::F16 => run::<half::f16>(data, p, seed, offset),
        DType::BF16 => run::<half::bf16>(data, p, seed, offset),
        other => panic!("not a test dtype: {other:?}"),
    }
}

/// The mask words of a `Bool` tensor.
fn words<const D: usize>(mask: Tensor<D, Bool>) -> Vec<u64> {
    let bools: Vec<bool> = mask.into_data().iter::<bool>().collect();
    let mut w = vec![0u64; simd_dropout::mask_words(bools.len())];
    simd_dropout::pack_bools(&bools, BitsMut::new(&mut w)).unwrap();
    w
}

#[test]
fn forward_bits_and_masks_equal_the_core_crate() {
    for device in [Device::flex(), Device::flex().autodiff()] {
        for dtype in DTYPES {
            for (p, offset) in [(0.5, 0), (0.1, 3), (0.9, u64::MAX - 40), (1.0, 5)] {
                let x = input([9, 70], dtype, &device);
                let (want, want_mask) = core_forward(x.clone(), p, 11, offset);
                let y = dropout(x.clone(), p, 11, offset).unwrap();
                assert_eq!(bits(y), want, "{dtype:?} p={p}");
                let (y, mask) = dropout_with_mask(x, p, 11, offset).unwrap();
                assert_eq!(bits(y), want, "{dtype:?} p={p} with mask");
                assert_eq!(words(mask), want_mask, "{dtype:?} p={p} mask");
            }
        }
    }
}

#[test]
fn an_owned_input_is_overwritten_in_place_with_the_same_bits() {
    let device = Device::flex();
    for dtype in DTYPES {
        let x = input([5, 300], dtype, &device);
        let shared = bits(dropout(x.clone(), 0.4, 8, 2).unwrap()); // x still held: a new buffer
        // A window of a buffer that nothing else holds: in place, at the window's offset.
        let window = input([5, 300], dtype, &device).slice([1..4, 0..300]);
        let windowed = bits(dropout(window, 0.4, 8, 2).unwrap());
        let owned = bits(dropout(x, 0.4, 8, 2).unwrap()); // the last handle: in place
        assert_eq!(owned, shared, "{dtype:?}");
        assert_eq!(
            windowed[..],
            core_forward(
                input([5, 300], dtype, &device).slice([1..4, 0..300]),
                0.4,
                8,
                2
            )
            .0[..]
        );
    }
}

#[test]
fn other_backends_draw_the_same_mask_and_burn_multiplies() {
    let device = Device::ndarray();
    for dtype in [DType::F32, DType::F64] {
        let x = input([7, 33], dtype, &device);
        let (want, want_mask) = core_forward(x.clone(), 0.3, 5, 9);
        let (y, mask) = dropout_with_mask(x.clone(), 0.3, 5, 9).unwrap();
        assert_eq!(words(mask), want_mask);
        // Survivors are x * scale, as in the kernels; dropped elements are x * 0.
        let sign = if dtype == DType::F32 {
            1u64 << 31
        } else {
            1 << 63
        };
        for (a, b) in bits(y).iter().zip(&want) {
            assert!(a == b || (a & !sign == 0 && *b == 0), "{a:#x} vs {b:#x}");
        }
        let a = bits(dropout(x.clone(), 0.3, 5, 9).unwrap());
        let b = bits(dropout_with_mask(x, 0.3, 5, 9).unwrap().0);
        assert_eq!(a, b);
    }
}

/// A contiguous copy of `t`.
fn copy<const D: usize>(t: Tensor<D>) -> Tensor<D> {
    let (device, dtype) = (t.device(), t.dtype());
    Tensor::from_data(t.into_data(), (&device, dtype))
}

#[test]
fn transposed_sliced_and_expanded_tensors_equal_their_contiguous_copies() {
    let device = Device::flex();
    for dtype in DTYPES {
        let x = input([12, 40], dtype, &device);
        let views: Vec<Tensor<2>> = vec![
            x.clone().transpose(),
            x.clone().slice([2..9, 5..33]),
            x.clone().transpose().slice([3..30, 1..11]),
            x.clone().flip([1]),
            x.clone().slice([4..5, 0..40]).expand([6, 40]),
        ];
        for v in views {
            let a = bits(dropout(v.clone(), 0.5, 3, 17).unwrap());
            let b = bits(dropout(copy(v.clone()), 0.5, 3, 17).unwrap());
            assert_eq!(a, b, "{dtype:?} {:?}", v.shape());
        }
        // More dimensions than a view takes: a contiguous copy, the same bits.
        let deep = x.clone().reshape([2, 2, 3, 2, 5, 2, 2]).swap_dims(0, 6);
        let a = bits(dropout(deep.clone(), 0.5, 3, 0).unwrap());
        let b = bits(dropout(copy(deep), 0.5, 3, 0).unwrap());
        assert_eq!(a, b);
    }
}

#[test]
fn gradients_equal_the_native_formulation() {
    let device = Device::flex().autodiff();
    for (dtype, p) in DTYPES.iter().flat_map(|&d| [(d, 0.5), (d, 0.25)]) {
        for keep in [Keep::Mask, Keep::Recompute] {
            let x = input([16, 48], dtype, &device).require_grad();
            let layer = DropoutConfig::new(p)
                .with_seed(99)
                .with_keep(keep)
                .init()
                .unwrap();
            let (y, mask) = layer.forward_with_mask(x.clone().transpose());
            let up = input([48, 16], dtype, &device) * 0.5 - 1.0; // both signs
            let grads = (y * up.clone()).sum().backward();
            let gx = x.grad(&grads).unwrap();
            // burn's own: x * mask * scale, in f32 where the scale is not exact in the dtype.
            let scale = 1.0 / (1.0 - p);
            let exact_scale = matches!(dtype, DType::F32 | DType::F64) || p == 0.5;
            let native = if exact_scale {
                up.inner() * mask.float().cast(dtype) * scale
            } else {
                (up.inner().cast(DType::F32) * mask.float() * scale).cast(dtype)
            };
            let sign = match dtype {
                DType::F64 => 1u64 << 63,
                DType::F32 => 1 << 31,
                _ => 1 << 15,
            };
            let (g, n) = (bits(gx), bits(native.transpose()));
            assert_eq!(g.len(), 16 * 48);
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
fn mask_and_recompute_give_the_same_gradients_on_every_path() {
    for device in [Device::flex().autodiff(), Device::ndarray().autodiff()] {
        let mut g = Vec::new();
        for keep in [Keep::Mask, Keep::Recompute] {
            let x = input([8, 300], DType::F32, &device).require_grad();
            let layer = DropoutConfig::new(0.5)
                .with_seed(3)
                .with_keep(keep)
                .init()
                .unwrap();
            let y = layer.forward(x.clone().transpose());
            let grads = (y.clone() * y).sum().backward();
            g.push(bits(x.grad(&grads).unwrap()));
        }
        assert_eq!(g[0], g[1]);
        assert!(g[0].contains(&0) && g[0].iter().any(|&b| b != 0));
    }
}

#[test]
fn train_eval_and_the_stream_position() {
    let device = Device::flex().autodiff();
    let x = input([10, 10], DType::F32, &device);
    let layer = DropoutConfig::new(0.5).with_seed(1).init().unwrap();
    // Eval: valid() clears the flag; a device without autodiff is eval too.
    assert_eq!(
        bits(layer.valid().forward(x.clone().inner())),
        bits(x.clone().inner())
    );
    assert_eq!(
        bits(layer.clone().forward(x.clone().inner())),
        bits(x.clone().inner())
    );
    assert_eq!(layer.offset(), 0);
    let a = layer.forward(x.clone());
    assert_eq!(layer.offset(), 100);
    let b = layer.clone().forward(x.clone()); // clones share the stream
    assert_eq!(layer.offset(), 200);
    assert_ne!(bits(a), bits(b.clone()));
    assert_eq!(bits(b), core_forward(x.clone(), 0.5, 1, 100).0);
    // freeze() stops it too; unfreeze() resumes at the same position.
    let frozen = layer.clone().freeze();
    assert_eq!(bits(frozen.forward(x.clone())), bits(x.clone()));
    let again = frozen.unfreeze().forward(x.clone());
    assert_eq!(bits(again), core_forward(x, 0.5, 1, 200).0);
}

#[derive(Module, Debug)]
struct Net {
    linear: burn::nn::Linear,
    drop: simd_dropout_burn::Dropout,
}

#[test]
fn a_saved_and_loaded_model_resumes_the_same_masks() {
    let device = Device::flex().autodiff();
    let net = Net {
        linear: burn::nn::LinearConfig::new(6, 6).init(&device),
        drop: DropoutConfig::new(0.5).with_seed(77).init().unwrap(),
    };
    let x = input([4, 6], DType::F32, &device);
    let _ = net.drop.forward(x.clone());
    let bytes = net.clone().into_record().into_bytes().unwrap();
    let next = bits(net.drop.forward(x.clone()));
    // A fresh model with another seed, loaded from the record.
    let fresh = Net {
        linear: burn::nn::LinearConfig::new(6, 6).init(&device),
        drop: DropoutConfig::new(0.5).with_seed(1).init().unwrap(),
    };
    let record = burn::store::ModuleRecord::from_bytes(bytes).unwrap();
    let loaded = fresh.load_record(record);
    assert_eq!(loaded.drop.offset(), 24);
    assert_eq!(loaded.drop.state().seed, Seed::from_u64(77));
    assert_eq!(bits(loaded.drop.forward(x)), next);
    // An optimizer step (a module map) keeps the stream.
    assert_eq!(loaded.clone().fork(&device).drop.offset(), 48);
}

#[test]
fn bad_input_is_an_error() {
    let x = input([2, 3], DType::F32, &Device::flex());
    for p in [-0.1, 1.5, f64::NAN] {
        let e = DropoutConfig::new(p).init().unwrap_err().to_string();
        assert!(e.contains("drop probability"), "{e}");
        assert!(dropout(x.clone(), p, 0, 0).is_err());
        assert!(dropout_with_mask(x.clone(), p, 0, 0).is_err());
    }
}

/// The core crate's output bits of a variant record (`op`) on the same elements.
fn core_variant<const D: usize>(
    x: Tensor<D>,
    op: simd_dropout::Op,
    p: f64,
    seed: u64,
    offset: u64,
) -> Vec<u64> {
    fn run<T: simd_dropout::Element + burn::tensor::Element>(
        data: TensorData,
        rec: simd_dropout::Record,
    ) -> Vec<u64> {
        let mut v: Vec<T> = data.iter::<T>().collect();
        rec.forward(Io::InPlace(&mut v), None).unwrap();
        v.iter().map(|e| e.to_bits()).collect()
    }
    let state = simd_dropout::State {
        p,
        seed: Seed::from_u64(seed),
        offset,
        training: true,
    };
    let rec = simd_dropout::Dropout::from_state(state)
        .unwrap()
        .reserve(op, x.shape().num_elements())
        .unwrap();
    let data = x.into_data();
    match data.dtype() {
        DType::F32 => run::<f32>(data, rec),
        DType::F64 => run::<f64>(data, rec),
        DType::F16 => run::<half::f16>(data, rec),
        DType::BF16 => run::<half::bf16>(data, rec),
        other => panic!("not a test dtype: {other:?}"),
    }
}

/// Broadcast dropout, DropBlock and Gaussian dropout: the core crate's bits for every dtype
/// (up to the sign of zeros, where burn's `x * 0` keeps `x`'s sign), and gradients that are
/// the multipliers.
#[test]
fn variants_equal_the_core_crate() {
    use simd_dropout::{Blocks, Op, Shape};
    use simd_dropout_burn::{
        ChannelOrder, Structure, broadcast_dropout, drop_block, gaussian_dropout,
    };
    // Zeros without their sign: a dropped negative element is -0.0 here, +0.0 in the crate.
    let unsigned = |v: Vec<u64>, dtype: DType| -> Vec<u64> {
        let sign = match dtype {
            DType::F64 => 1u64 << 63,
            DType::F32 => 1 << 31,
            _ => 1 << 15,
        };
        v.into_iter()
            .map(|b| if b == sign { 0 } else { b })
            .collect()
    };
    for device in [Device::flex(), Device::flex().autodiff()] {
        for dtype in DTYPES {
            let x = input([24, 35], dtype, &device).reshape([2, 3, 4, 35]);
            let y = broadcast_dropout(x.clone(), Structure::Channels, 0.4, 3, 9).unwrap();
            let want = core_variant(
                x.clone(),
                Op::Broadcast(Shape::channels(2, 3, 140)),
                0.4,
                3,
                9,
            );
            assert_eq!(
                unsigned(bits(y), dtype),
                unsigned(want, dtype),
                "channels {dtype:?}"
            );
            let y = drop_block(x.clone(), ChannelOrder::First, 3, 0.3, 4, 1).unwrap();
            let want = core_variant(
                x.clone(),
                Op::Block(Blocks::nchw(2, 3, 4, 35, 3)),
                0.3,
                4,
                1,
            );
            assert_eq!(
                unsigned(bits(y), dtype),
                unsigned(want, dtype),
                "DropBlock {dtype:?}"
            );
            // Channels-last: the NHWC tensor's output is the NCHW output permuted.
            let y = drop_block(
                x.clone().permute([0, 2, 3, 1]),
                ChannelOrder::Last,
                3,
                0.3,
                4,
                1,
            )
            .unwrap();
            let want = core_variant(
                x.clone(),
                Op::Block(Blocks::nchw(2, 3, 4, 35, 3)),
                0.3,
                4,
                1,
            );
            assert_eq!(
                unsigned(bits(y.permute([0, 3, 1, 2])), dtype),
                unsigned(want, dtype),
                "DropBlock channels-last {dtype:?}"
            );
            let y = gaussian_dropout(x.clone(), 0.3, 5, 2).unwrap();
            let want = core_variant(x.clone(), Op::Gaussian, 0.3, 5, 2);
            // Nothing is dropped: every bit equal.
            assert_eq!(bits(y), want, "Gaussian {dtype:?}");
        }
    }
    // Gradients through autodiff: d sum(y) / dx is the multiplier (the forward of ones).
    let device = Device::flex().autodiff();
    let x = input([24, 35], DType::F32, &device)
        .reshape([2, 3, 4, 35])
        .require_grad();
    let ones = Tensor::<4>::ones([2, 3, 4, 35], &Device::flex());
    let grads = gaussian_dropout(x.clone(), 0.3, 5, 2)
        .unwrap()
        .sum()
        .backward();
    let want = bits(gaussian_dropout(ones.clone(), 0.3, 5, 2).unwrap());
    assert_eq!(bits(x.grad(&grads).unwrap()), want);
    let grads = drop_block(x.clone(), ChannelOrder::First, 3, 0.3, 4, 1)
        .unwrap()
        .sum()
        .backward();
    let want = bits(drop_block(ones, ChannelOrder::First, 3, 0.3, 4, 1).unwrap());
    assert_eq!(bits(x.grad(&grads).unwrap()), want);
    // Ranks an operation does not take.
    let flat = Tensor::<1>::ones([8], &Device::flex());
    assert!(matches!(
        broadcast_dropout(flat.clone(), Structure::Channels, 0.5, 1, 0),
        Err(simd_dropout_burn::Error::Rank { .. })
    ));
    assert!(drop_block(flat.clone(), ChannelOrder::Last, 2, 0.5, 1, 0).is_err());
    assert!(gaussian_dropout(flat, 1.0, 1, 0).is_err());
}
