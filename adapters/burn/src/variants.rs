//! The variants on any burn backend: structured (broadcast) dropout, DropBlock and Gaussian
//! dropout. The crate computes each call's multipliers on the host (its forward of ones:
//! `{0, scale}` per element, or the Gaussian noise) and burn multiplies, so burn's autodiff
//! gives the backward pass (`gx = gy * m`, the crate's backward rule).
//!
//! The product is taken in f32 (f64 for f64) and rounded once to the tensor's type, as the
//! crate's kernels do, so the outputs equal the crate's bits for every dtype (a dropped
//! element is `x * 0`: `-0.0` for a negative `x`, where the crate writes `+0.0`).

use crate::Error;
use burn::tensor::{DType, Tensor, TensorData};
use simd_dropout::{Blocks, Io, Op, Record, Seed, Shape};

/// Which elements share a decision in [`broadcast_dropout`] (the core crate's type).
pub use simd_dropout::{ChannelOrder, Structure};

/// Structured dropout: whole channels, columns, samples or sequence features, through
/// autograd. The call draws one word per decision from `offset` on.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use simd_dropout_burn::{broadcast_dropout, Structure};
/// let x = Tensor::<4>::ones([2, 3, 4, 4], &Device::flex());
/// let y = broadcast_dropout(x, Structure::Channels, 0.5, 7, 0)?; // Dropout2d
/// # Ok::<(), simd_dropout_burn::Error>(())
/// ```
pub fn broadcast_dropout<const D: usize>(
    x: Tensor<D>,
    structure: Structure,
    p: f64,
    seed: u64,
    offset: u64,
) -> Result<Tensor<D>, Error> {
    let Some(shape) = Shape::of(structure, &x.shape().dims::<D>()) else {
        return Err(Error::Rank {
            op: "broadcast dropout",
            needs: "more dimensions (1 for columns and samples, 2 for channels, 3 for locked dropout)",
            rank: D,
        });
    };
    multiply(x, Op::Broadcast(shape), p, seed, offset)
}

/// DropBlock (torchvision `drop_block2d` / `drop_block3d`) on `[N, C, H, W]` /
/// `[N, C, D, H, W]` (`ChannelOrder::First`) or channels-last `[N, H, W, C]` /
/// `[N, D, H, W, C]` (`ChannelOrder::Last`: the same blocks, each element where its layout
/// puts it), through autograd. The call draws
/// [`Blocks::candidates`](simd_dropout::Blocks::candidates) words from `offset` on.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use simd_dropout_burn::ChannelOrder;
/// let x = Tensor::<4>::ones([2, 3, 10, 10], &Device::flex());
/// let y = simd_dropout_burn::drop_block(x, ChannelOrder::First, 3, 0.1, 42, 0)?;
/// # Ok::<(), simd_dropout_burn::Error>(())
/// ```
pub fn drop_block<const D: usize>(
    x: Tensor<D>,
    order: ChannelOrder,
    block_size: usize,
    p: f64,
    seed: u64,
    offset: u64,
) -> Result<Tensor<D>, Error> {
    let Some(blocks) = Blocks::of(order, &x.shape().dims::<D>(), block_size) else {
        return Err(Error::Rank {
            op: "DropBlock",
            needs: "4 dimensions (2-D) or 5 (3-D)",
            rank: D,
        });
    };
    multiply(x, Op::Block(blocks), p, seed, offset)
}

/// Gaussian dropout (Keras `GaussianDropout`, `p` in `[0, 1)`): `x * (1 + sigma * z)`,
/// `sigma = sqrt(p / (1 - p))`, through autograd. The call uses stream positions
/// `offset .. offset + numel`.
pub fn gaussian_dropout<const D: usize>(
    x: Tensor<D>,
    p: f64,
    seed: u64,
    offset: u64,
) -> Result<Tensor<D>, Error> {
    multiply(x, Op::Gaussian, p, seed, offset)
}

/// `x * m` with `m` the call's multipliers, in f32 (f64 for f64) and rounded once to `x`'s
/// type.
fn multiply<const D: usize>(
    x: Tensor<D>,
    op: Op,
    p: f64,
    seed: u64,
    offset: u64,
) -> Result<Tensor<D>, Error> {
    let state = simd_dropout::State {
        p,
        seed: Seed::from_u64(seed),
        offset,
        training: true,
    };
    let rec = simd_dropout::Dropout::from_state(state)?.reserve(op, x.shape().num_elements())?;
    let (dtype, device) = (x.dtype(), x.device());
    let (work, data) = match dtype {
        DType::F64 => (DType::F64, multipliers::<f64>(rec)?),
        _ => (DType::F32, multipliers::<f32>(rec)?),
    };
    let m = Tensor::<1>::from_data(data, (&device, work)).reshape(x.shape());
    Ok((x.cast(work) * m).cast(dtype))
}

/// The forward of `rec` on ones: its multiplier per element.
fn multipliers<T: simd_dropout::Element + burn::tensor::Element>(
    rec: Record,
) -> Result<TensorData, Error> {
    let mut m = vec![one::<T>(); rec.len];
    rec.forward(Io::InPlace(&mut m), None)?;
    Ok(TensorData::new(m, [rec.len]))
}

/// 1 in `T` (f32 or f64).
fn one<T: burn::tensor::Element>() -> T {
    T::from_elem(1.0f32)
}
