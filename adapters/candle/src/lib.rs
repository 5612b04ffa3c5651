//! Drop-in dropout for [candle](https://docs.rs/candle-core) on
//! [`simd_dropout`]'s kernels: exactly specified, reproducible bit for bit, with a 1-bit mask
//! kept for the backward pass or nothing at all.
//!
//! ```
//! use candle_core::{Device, ModuleT, Tensor};
//! let drop = simd_dropout_candle::Dropout::new(0.1, 42)?; // candle_nn::Dropout::new(0.1) + a seed
//! let x = Tensor::ones((4, 8), candle_core::DType::F32, &Device::Cpu)?;
//! let y = drop.forward_t(&x, true)?; // training: dropout, through autograd
//! let z = drop.forward_t(&x, false)?; // eval: the identity
//! # Ok::<(), candle_core::Error>(())
//! ```
//!
//! - [`Dropout`] is a `ModuleT` like `candle_nn::Dropout`; it owns a seed and a running stream
//!   offset (part of its [`State`](simd_dropout::State)), so a resumed run draws the same masks.
//! - [`dropout`] is the stateless function; [`dropout_with_mask`] also returns the mask as a
//!   `u8` tensor; [`broadcast_dropout`], [`alpha_dropout`], [`drop_block`],
//!   [`gaussian_dropout`] and [`fused_bias_dropout_residual`] are the variants.
//! - Every function runs through candle's autograd (`CustomOp1` / `CustomOp3` with `bwd`), on
//!   CPU storage in f32, f64, f16 and bf16. Non-contiguous layouts (transposed, narrowed,
//!   broadcast-free views) go through the crate's strided views without a copy, with the bits
//!   of the contiguous tensor.
//! - Element `i` (row-major) of a call uses word `offset + i` of the stream; see the
//!   [contract](simd_dropout::contract).
//!
//! A dropped element is `+0.0`. candle's own `x * mask * scale` gives `-0.0` for a dropped
//! negative element (and `NaN` for a dropped `NaN`); every other bit is the same.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp3, DType, Layout, ModuleT, Result, Tensor, bail};
use simd_dropout::{
    Bits, BitsMut, Blocks, Element, Io, MaskRef, Op, Record, Seed, Shape, Strided, View,
};
use std::sync::{Arc, Mutex};

/// What a training call keeps for its backward pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Keep {
    /// One bit per element (the default).
    #[default]
    Mask,
    /// Nothing: the backward pass regenerates the mask from `(seed, offset)`.
    Recompute,
}

/// Dropout as a candle module: `candle_nn::Dropout` with a seed, a running stream offset and
/// the crate's kernels.
///
/// Clones share the layer (and its stream), like clones of a candle `Var`.
#[derive(Clone, Debug)]
pub struct Dropout {
    layer: Arc<simd_dropout::Dropout>,
    keep: Keep,
}

impl Dropout {
    /// A layer dropping each element with probability `drop_p` (in `[0, 1]`), seeded from one
    /// `u64` ([`Seed::from_u64`]).
    pub fn new(drop_p: f32, seed: u64) -> Result<Dropout> {
        let layer =
            simd_dropout::Dropout::new(f64::from(drop_p), Seed::from_u64(seed)).map_err(wrap)?;
        Ok(Dropout {
            layer: Arc::new(layer),
            keep: Keep::Mask,
        })
    }

    /// The layer of a saved state (see [`Dropout::state`]).
    pub fn from_state(state: simd_dropout::State, keep: Keep) -> Result<Dropout> {
        let layer = simd_dropout::Dropout::from_state(state).map_err(wrap)?;
        Ok(Dropout {
            layer: Arc::new(layer),
            keep,
        })
    }

    /// The same layer keeping `keep` for the backward pass.
    pub fn with_keep(mut self, keep: Keep) -> Dropout {
        self.keep = keep;
        self
    }

    /// `p`, seed and the stream position of the next training call, to save with a
    /// checkpoint.
    pub fn state(&self) -> simd_dropout::State {
        self.layer.state()
    }

    /// The training forward that also returns the mask as a `u8` tensor (1 = kept) of the
    /// input's shape.
    pub fn forward_with_mask(&self, xs: &Tensor) -> Result<(Tensor, Tensor)> {
        check(xs)?;
        let rec = self
            .layer
            .reserve(Op::Element, xs.elem_count())
            .map_err(wrap)?;
        with_mask(xs, rec)
    }
}

impl ModuleT for Dropout {
    /// Dropout in training (`train = true`), the identity otherwise.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        if !train {
            return Ok(xs.clone());
        }
        check(xs)?;
        let rec = self
            .layer
            .reserve(Op::Element, xs.elem_count())
            .map_err(wrap)?;
        xs.apply_op1(ElementOp::new(rec, self.keep))
    }
}

/// Element dropout of `xs` at stream position `offset`, through autograd, keeping nothing
/// (the backward pass regenerates the mask).
///
/// ```
/// use candle_core::{Device, Tensor};
/// let x = Tensor::arange(0f32, 12., &Device::Cpu)?.reshape((3, 4))?;
/// let a = simd_dropout_candle::dropout(&x.t()?, 0.5, 7, 0)?; // a transposed view, no copy
/// let b = simd_dropout_candle::dropout(&x.t()?.contiguous()?, 0.5, 7, 0)?;
/// assert_eq!(a.to_vec2::<f32>()?, b.to_vec2::<f32>()?);
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn dropout(xs: &Tensor, p: f32, seed: u64, offset: u64) -> Result<Tensor> {
    check(xs)?;
    xs.apply_op1(ElementOp::new(
        record(Op::Element, xs, p, seed, offset)?,
        Keep::Recompute,
    ))
}

/// [`dropout`] keeping a 1-bit mask for the backward pass, also returned as a `u8` tensor
/// (1 = kept) of the input's shape.
pub fn dropout_with_mask(xs: &Tensor, p: f32, seed: u64, offset: u64) -> Result<(Tensor, Tensor)> {
    check(xs)?;
    with_mask(xs, record(Op::Element, xs, p, seed, offset)?)
}

/// Which elements share a decision in [`broadcast_dropout`] (the core crate's type).
pub use simd_dropout::{ChannelOrder, Structure};

/// Structured dropout: whole channels, columns or samples, through autograd (the backward
/// pass regenerates the decisions). A non-contiguous input is made contiguous first.
pub fn broadcast_dropout(
    xs: &Tensor,
    structure: Structure,
    p: f32,
    seed: u64,
    offset: u64,
) -> Result<Tensor> {
    check(xs)?;
    let dims = xs.dims();
    let Some(shape) = Shape::of(structure, dims) else {
        bail!("simd-dropout: {structure:?} dropout needs more dimensions than {dims:?}");
    };
    let xs = xs.contiguous()?;
    xs.apply_op1(VariantOp {
        rec: record(Op::Broadcast(shape), &xs, p, seed, offset)?,
    })
}

/// Alpha dropout for SELU networks (`p` in `[0, 1)`), through autograd. A non-contiguous
/// input is made contiguous first.
pub fn alpha_dropout(xs: &Tensor, p: f32, seed: u64, offset: u64) -> Result<Tensor> {
    check(xs)?;
    let xs = xs.contiguous()?;
    xs.apply_op1(VariantOp {
        rec: record(Op::Alpha, &xs, p, seed, offset)?,
    })
}

/// DropBlock (torchvision `drop_block2d` / `drop_block3d`) on `[N, C, H, W]` /
/// `[N, C, D, H, W]` (`ChannelOrder::First`) or channels-last `[N, H, W, C]` /
/// `[N, D, H, W, C]` (`ChannelOrder::Last`: the same blocks, each element where its layout
/// puts it), through autograd. The call draws
/// [`Blocks::candidates`](simd_dropout::Blocks::candidates) words from `offset` on. A
/// non-contiguous input is made contiguous first.
///
/// ```
/// use candle_core::{Device, DType, Tensor};
/// use simd_dropout_candle::ChannelOrder;
/// let x = Tensor::ones((2, 3, 10, 10), DType::F32, &Device::Cpu)?;
/// let y = simd_dropout_candle::drop_block(&x, ChannelOrder::First, 3, 0.1, 42, 0)?;
/// assert_eq!(y.dims(), x.dims());
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn drop_block(
    xs: &Tensor,
    order: ChannelOrder,
    block_size: usize,
    p: f32,
    seed: u64,
    offset: u64,
) -> Result<Tensor> {
    check(xs)?;
    let Some(blocks) = Blocks::of(order, xs.dims(), block_size) else {
        bail!(
            "simd-dropout: DropBlock needs 4 or 5 dimensions ({order:?} channels), got {:?}",
            xs.dims()
        )
    };
    let xs = xs.contiguous()?;
    xs.apply_op1(VariantOp {
        rec: record(Op::Block(blocks), &xs, p, seed, offset)?,
    })
}

/// Gaussian dropout (Keras `GaussianDropout`, `p` in `[0, 1)`): `x * (1 + sigma * z)` with
/// `sigma = sqrt(p / (1 - p))` and standard normal `z`, through autograd (the backward pass
/// regenerates the noise). A non-contiguous input is made contiguous first.
pub fn gaussian_dropout(xs: &Tensor, p: f32, seed: u64, offset: u64) -> Result<Tensor> {
    check(xs)?;
    let xs = xs.contiguous()?;
    xs.apply_op1(VariantOp {
        rec: record(Op::Gaussian, &xs, p, seed, offset)?,
    })
}

/// `residual + dropout(x + bias)` for `x` and `residual` of shape `[..., cols]` and `bias` of
/// `[cols]`, with the contract's rounding order, through autograd: the gradients of `x`,
/// `bias` (summed over rows in the contract's order) and `residual`.
pub fn fused_bias_dropout_residual(
    x: &Tensor,
    bias: &Tensor,
    residual: &Tensor,
    p: f32,
    seed: u64,
    offset: u64,
) -> Result<Tensor> {
    for t in [x, bias, residual] {
        check(t)?;
    }
    if bias.rank() != 1 || x.dims().last() != Some(&bias.dims()[0]) || residual.shape() != x.shape()
    {
        bail!(
            "simd-dropout: fused needs x and residual of one shape [..., cols] and bias [cols]; got {:?}, {:?}, {:?}",
            x.dims(),
            bias.dims(),
            residual.dims()
        );
    }
    if bias.dtype() != x.dtype() || residual.dtype() != x.dtype() {
        bail!(
            "simd-dropout: fused needs one dtype, got {:?}, {:?}, {:?}",
            x.dtype(),
            bias.dtype(),
            residual.dtype()
        );
    }
    let cols = bias.dims()[0];
    let rec = record(Op::Fused { cols }, x, p, seed, offset)?;
    x.contiguous()?.apply_op3(
        &bias.contiguous()?,
        &residual.contiguous()?,
        FusedOp { rec },
    )
}

// ---- Internals.

/// A device and dtype the kernels take.
fn check(xs: &Tensor) -> Result<()> {
    if !xs.device().is_cpu() {
        bail!(
            "simd-dropout runs on the CPU; this tensor is on {:?} (move it with to_device(&Device::Cpu))",
            xs.device().location()
        );
    }
    match xs.dtype() {
        DType::F32 | DType::F64 | DType::F16 | DType::BF16 => Ok(()),
        other => bail!("simd-dropout: dtype {other:?} is not supported (f32, f64, f16, bf16)"),
    }
}

/// A crate error as a candle error.
fn wrap(e: simd_dropout::Error) -> candle_core::Error {
    candle_core::Error::Msg(format!("simd-dropout: {e}")).bt()
}

/// The record of a stateless call.
fn record(op: Op, xs: &Tensor, p: f32, seed: u64, offset: u64) -> Result<Record> {
    let state = simd_dropout::State {
        p: f64::from(p),
        seed: Seed::from_u64(seed),
        offset,
        training: true,
    };
    let layer = simd_dropout::Dropout::from_state(state).map_err(wrap)?;
    layer.reserve(op, xs.elem_count()).map_err(wrap)
}

/// A candle layout as a view of its storage.
fn view_of(l: &Layout) -> Result<View> {
    let strides: Vec<isize> = l.stride().iter().map(|&s| s as isize).collect();
    View::strided(l.dims(), &strides, l.start_offset()).map_err(wrap)
}

/// A computation on the elements of one storage, for each supported type.
trait Kernel {
    fn run<T: Element + candle_core::WithDType>(&self, x: &[T], layout: &Layout) -> Result<Vec<T>>;
}

/// `k` on the storage's element type.
fn dispatch(k: &impl Kernel, s: &CpuStorage, l: &Layout) -> Result<CpuStorage> {
    Ok(match s {
        CpuStorage::F32(x) => CpuStorage::F32(k.run(x, l)?),
        CpuStorage::F64(x) => CpuStorage::F64(k.run(x, l)?),
        CpuStorage::F16(x) => CpuStorage::F16(k.run(x, l)?),
        CpuStorage::BF16(x) => CpuStorage::BF16(k.run(x, l)?),
        other => bail!(
            "simd-dropout: dtype {:?} is not supported (f32, f64, f16, bf16)",
            other.dtype()
        ),
    })
}

/// The element forward and its backward; in mask mode the forward fills `mask`.
struct ElementOp {
    rec: Record,
    mask: Option<Arc<Mutex<Vec<u64>>>>,
}

impl ElementOp {
    fn new(rec: Record, keep: Keep) -> ElementOp {
        let mask = (keep == Keep::Mask)
            .then(|| Arc::new(Mutex::new(vec![0u64; simd_dropout::mask_words(rec.len)])));
        ElementOp { rec, mask }
    }
}

/// Locks a mask (a poisoned lock is an error, not a panic).
fn lock(m: &Mutex<Vec<u64>>) -> Result<std::sync::MutexGuard<'_, Vec<u64>>> {
    m.lock()
        .map_err(|_| candle_core::Error::Msg("simd-dropout: a mask lock was poisoned".into()))
}

/// The forward of an element record (`backward: false`) or its backward.
struct ElementRun<'a> {
    rec: Record,
    mask: Option<&'a Mutex<Vec<u64>>>,
    backward: bool,
}

impl Kernel for ElementRun<'_> {
    fn run<T: Element + candle_core::WithDType>(&self, x: &[T], l: &Layout) -> Result<Vec<T>> {
        let view = view_of(l)?;
        let mut y = vec![T::ZERO; view.len()];
        let io = Strided::Out {
            x,
            x_view: view,
            y: &mut y,
            y_view: view.compact(),
        };
        let mut guard = self.mask.map(lock).transpose()?;
        let words = guard.as_deref_mut();
        if self.backward {
            self.rec
                .strided_backward(io, words.map(|w| Bits::new(w)))
                .map_err(wrap)?;
        } else {
            self.rec
                .strided_forward(io, words.map(|w| BitsMut::new(w)))
                .map_err(wrap)?;
        }
        Ok(y)
    }
}

impl CustomOp1 for ElementOp {
    fn name(&self) -> &'static str {
        "simd-dropout"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, candle_core::Shape)> {
        let run = ElementRun {
            rec: self.rec,
            mask: self.mask.as_deref(),
            backward: false,
        };
        Ok((dispatch(&run, s, l)?, l.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let back = ElementBackward {
            rec: self.rec,
            mask: self.mask.clone(),
        };
        Ok(Some(grad.apply_op1_no_bwd(&back)?))
    }
}

/// The backward pass of [`ElementOp`] (from its mask, or regenerated).
struct ElementBackward {
    rec: Record,
    mask: Option<Arc<Mutex<Vec<u64>>>>,
}

impl CustomOp1 for ElementBackward {
    fn name(&self) -> &'static str {
        "simd-dropout-backward"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, candle_core::Shape)> {
        let run = ElementRun {
            rec: self.rec,
            mask: self.mask.as_deref(),
            backward: true,
        };
        Ok((dispatch(&run, s, l)?, l.shape().clone()))
    }
}

/// A forward in mask mode, returning the mask as a `u8` tensor too.
fn with_mask(xs: &Tensor, rec: Record) -> Result<(Tensor, Tensor)> {
    let op = ElementOp::new(rec, Keep::Mask);
    let mask = op.mask.clone();
    let y = xs.apply_op1(op)?;
    let mut bytes = vec![0u8; rec.len];
    if let Some(m) = mask {
        let words = lock(&m)?;
        MaskRef::new(&words, rec.len)
            .and_then(|r| r.write_bytes(&mut bytes))
            .map_err(wrap)?;
    }
    Ok((y, Tensor::from_vec(bytes, xs.shape(), xs.device())?))
}

/// Broadcast, alpha, DropBlock and Gaussian dropout on contiguous storage (the backward pass
/// regenerates).
struct VariantOp {
    rec: Record,
}

/// The forward of a variant record (`backward: false`) or its backward.
struct VariantRun {
    rec: Record,
    backward: bool,
}

impl Kernel for VariantRun {
    fn run<T: Element + candle_core::WithDType>(&self, x: &[T], l: &Layout) -> Result<Vec<T>> {
        let Some((start, end)) = l.contiguous_offsets() else {
            bail!("simd-dropout: internal: a variant op got a non-contiguous layout");
        };
        let mut y = vec![T::ZERO; end - start];
        let io = Io::Out {
            x: &x[start..end],
            y: &mut y,
        };
        let r = if self.backward {
            self.rec.backward(io, None)
        } else {
            self.rec.forward(io, None)
        };
        r.map_err(wrap)?;
        Ok(y)
    }
}

impl CustomOp1 for VariantOp {
    fn name(&self) -> &'static str {
        "simd-dropout-variant"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, candle_core::Shape)> {
        let run = VariantRun {
            rec: self.rec,
            backward: false,
        };
        Ok((dispatch(&run, s, l)?, l.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let back = VariantBackward { rec: self.rec };
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&back)?))
    }
}

/// The backward pass of [`VariantOp`].
struct VariantBackward {
    rec: Record,
}

impl CustomOp1 for VariantBackward {
    fn name(&self) -> &'static str {
        "simd-dropout-variant-backward"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, candle_core::Shape)> {
        let run = VariantRun {
            rec: self.rec,
            backward: true,
        };
        Ok((dispatch(&run, s, l)?, l.shape().clone()))
    }
}

/// Fused bias + dropout + residual on contiguous storage.
struct FusedOp {
    rec: Record,
}

/// The contiguous elements of a storage of type `T`.
fn elements<'a, T: candle_core::WithDType>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    let Some((start, end)) = l.contiguous_offsets() else {
        bail!("simd-dropout: internal: a fused op got a non-contiguous layout");
    };
    Ok(&T::cpu_storage_as_slice(s)?[start..end])
}

impl CustomOp3 for FusedOp {
    fn name(&self) -> &'static str {
        "simd-dropout-fused"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, candle_core::Shape)> {
        fn run<T: Element + candle_core::WithDType>(
            rec: &Record,
            (s1, l1): (&CpuStorage, &Layout),
            (s2, l2): (&CpuStorage, &Layout),
            (s3, l3): (&CpuStorage, &Layout),
        ) -> Result<Vec<T>> {
            let (x, bias, res) = (
                elements::<T>(s1, l1)?,
                elements::<T>(s2, l2)?,
                elements::<T>(s3, l3)?,
            );
            let mut y = vec![T::ZERO; x.len()];
            rec.fused_forward(bias, res, Io::Out { x, y: &mut y }, None)
                .map_err(wrap)?;
            Ok(y)
        }
        let a = (s1, l1, s2, l2, s3, l3);
        let out = match s1 {
            CpuStorage::F32(_) => {
                CpuStorage::F32(run(&self.rec, (a.0, a.1), (a.2, a.3), (a.4, a.5))?)
            }
            CpuStorage::F64(_) => {
                CpuStorage::F64(run(&self.rec, (a.0, a.1), (a.2, a.3), (a.4, a.5))?)
            }
            CpuStorage::F16(_) => {
                CpuStorage::F16(run(&self.rec, (a.0, a.1), (a.2, a.3), (a.4, a.5))?)
            }
            CpuStorage::BF16(_) => {
                CpuStorage::BF16(run(&self.rec, (a.0, a.1), (a.2, a.3), (a.4, a.5))?)
            }
            other => bail!(
                "simd-dropout: dtype {:?} is not supported (f32, f64, f16, bf16)",
                other.dtype()
            ),
        };
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let (gx, g_bias) = fused_backward(&self.rec, &grad, bias)?;
        Ok((Some(gx), Some(g_bias), Some(grad)))
    }
}

/// The input and bias gradients of a fused call from the output gradient.
fn fused_backward(rec: &Record, grad: &Tensor, bias: &Tensor) -> Result<(Tensor, Tensor)> {
    fn run<T: Element + candle_core::WithDType>(
        rec: &Record,
        grad: &Tensor,
        cols: usize,
    ) -> Result<(Tensor, Tensor)> {
        let gy = grad.flatten_all()?.to_vec1::<T>()?;
        let (mut gx, mut gb) = (vec![T::ZERO; gy.len()], vec![T::ZERO; cols]);
        rec.fused_backward(&mut gb, Io::Out { x: &gy, y: &mut gx }, None)
            .map_err(wrap)?;
        Ok((
            Tensor::from_vec(gx, grad.shape(), grad.device())?,
            Tensor::from_vec(gb, cols, grad.device())?,
        ))
    }
    let cols = bias.dims()[0];
    match grad.dtype() {
        DType::F32 => run::<f32>(rec, grad, cols),
        DType::F64 => run::<f64>(rec, grad, cols),
        DType::F16 => run::<half::f16>(rec, grad, cols),
        DType::BF16 => run::<half::bf16>(rec, grad, cols),
        other => bail!("simd-dropout: dtype {other:?} is not supported (f32, f64, f16, bf16)"),
    }
}
