//! Dropout for [burn](https://docs.rs/burn) 0.22 on [`simd_dropout`]'s kernels: exactly
//! specified, reproducible bit for bit, and with a 1-bit mask (or nothing) kept for the backward
//! pass.
//!
//! ```
//! use burn::tensor::{Device, Tensor};
//! use simd_dropout_burn::DropoutConfig;
//!
//! let drop = DropoutConfig::new(0.1).with_seed(42).init()?; // burn's DropoutConfig + a seed
//! let device = Device::flex().autodiff();
//! let x = Tensor::<2>::ones([4, 8], &device);
//! let y = drop.forward(x); // training on an autodiff device: dropout, through autograd
//! # Ok::<(), simd_dropout_burn::Error>(())
//! ```
//!
//! - [`Dropout`] is a burn `Module` like `burn::nn::Dropout`: training when its flag is on and
//!   the input is on an autodiff device, the identity otherwise. It owns a seed and a running
//!   stream position, which are part of its record: a saved and loaded model draws the same
//!   masks as the run that saved it.
//! - [`dropout`] is the stateless function; [`dropout_with_mask`] also returns the mask as a
//!   `Bool` tensor. [`broadcast_dropout`] (channels, columns, drop-path, locked dropout),
//!   [`drop_block`] and [`gaussian_dropout`] are the variants, on any backend: the crate
//!   computes their multipliers on the host and burn multiplies (in f32, rounded once to the
//!   type, so the bits are the crate's).
//! - **Fast path.** On burn's Flex CPU backend, with or without autodiff, the crate's kernels
//!   run forward and backward through the [`DropoutOps`] backend extension: one pass, the
//!   output in a fresh buffer, strided tensors (transposed, sliced, expanded) read in place,
//!   and a 1-bit mask kept for the backward pass ([`Keep::Mask`]) or nothing
//!   ([`Keep::Recompute`]).
//! - **Any other backend** (GPU, remote, NdArray, ...): the crate computes the mask on the host
//!   and burn multiplies, `x * m` with `m` in `{0, 1/(1-p)}`, so burn's autodiff does the rest.
//!   The decisions are the same; dropped elements are `x * 0` there (`-0.0` for a negative
//!   `x`), and f16/bf16 survivors round as burn's multiply rounds.
//! - Element `i` (row-major over the logical shape) of a call uses word `offset + i` of the
//!   stream; see the [contract](simd_dropout::contract).

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, DispatchDevice, backend_extension};
use burn::module::{
    Content, Devices, Flag, Module, ModuleDisplay, ModuleDisplayDefault, ModuleMapper,
    ModuleVisitor, Param, ParamId,
};
use burn::tensor::{Bool, DType, Device, Int, Tensor, TensorData};
use burn_autodiff::Autodiff;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::CheckpointStrategy;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind, unary};
use simd_dropout::{Bits, BitsMut, MaskRef, Op, Record, Seed, Strided};
use std::sync::{Arc, Mutex};

mod flex;
mod variants;

pub use variants::{ChannelOrder, Structure, broadcast_dropout, drop_block, gaussian_dropout};

/// What goes wrong: a bad probability or seed state, from the crate's checks.
///
/// burn's tensor operations have no error type of their own (they panic); this adapter returns
/// this one instead, and never panics on bad input.
#[derive(Clone, Debug, PartialEq)]
pub enum Error {
    /// The crate refused the call (for example `p` outside `[0, 1]`); the message names the
    /// argument and its value.
    Dropout(simd_dropout::Error),
    /// A tensor of a rank the operation does not take.
    Rank {
        /// The operation.
        op: &'static str,
        /// The ranks it takes.
        needs: &'static str,
        /// The rank given.
        rank: usize,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Dropout(e) => write!(f, "simd-dropout: {e}"),
            Error::Rank { op, needs, rank } => {
                write!(
                    f,
                    "simd-dropout: {op} needs {needs}, got a tensor of rank {rank}"
                )
            }
        }
    }
}

impl std::error::Error for Error {}

impl From<simd_dropout::Error> for Error {
    fn from(e: simd_dropout::Error) -> Error {
        Error::Dropout(e)
    }
}

/// What a training call keeps for its backward pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Keep {
    /// One bit per element (the default).
    #[default]
    Mask,
    /// Nothing: the backward pass regenerates the mask from `(seed, offset)`.
    Recompute,
}

/// The configuration of a [`Dropout`]: burn's `DropoutConfig` with a seed and a [`Keep`] mode.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DropoutConfig {
    /// The probability that an element is dropped, in `[0, 1]`.
    pub prob: f64,
    /// The seed of the layer's stream ([`Seed::from_u64`]).
    pub seed: u64,
    /// What a training call keeps for the backward pass.
    pub keep: Keep,
}

impl DropoutConfig {
    /// Dropping with probability `prob`, seed 0, keeping a mask.
    pub fn new(prob: f64) -> DropoutConfig {
        DropoutConfig {
            prob,
            seed: 0,
            keep: Keep::Mask,
        }
    }

    /// The same configuration with another seed.
    pub fn with_seed(self, seed: u64) -> DropoutConfig {
        DropoutConfig { seed, ..self }
    }

    /// The same configuration keeping `keep` for the backward pass.
    pub fn with_keep(self, keep: Keep) -> DropoutConfig {
        DropoutConfig { keep, ..self }
    }

    /// The layer, at stream position 0. A `prob` that is NaN or outside `[0, 1]` is an
    /// [`Error`] (burn's own `init` panics).
    ///
    /// ```
    /// assert!(simd_dropout_burn::DropoutConfig::new(1.5).init().is_err());
    /// ```
    pub fn init(&self) -> Result<Dropout, Error> {
        let layer = simd_dropout::Dropout::new(self.prob, Seed::from_u64(self.seed))?;
        Ok(Dropout {
            prob: self.prob,
            training: Param::from_bool(true),
            stream: Stream {
                layer: Arc::new(layer),
                keep: self.keep,
                id: ParamId::new(),
            },
        })
    }
}

/// Dropout as a burn module: `burn::nn::Dropout` with a seed, a running stream position (in
/// its record) and the crate's kernels.
///
/// It drops when its training flag is on (cleared by `valid()` and `freeze()`, like burn's)
/// and the input is on an autodiff device; otherwise `forward` is the identity and the stream
/// does not move. Clones share the stream, so two clones never draw the same words.
///
/// ```
/// use burn::module::Module;
/// use burn::tensor::{Device, Tensor};
/// let drop = simd_dropout_burn::DropoutConfig::new(0.5).with_seed(7).init()?;
/// let x = Tensor::<1>::ones([1000], &Device::flex().autodiff());
/// let y = drop.forward(x.clone());
/// assert_eq!(drop.offset(), 1000); // the next call starts at word 1000
/// let same = drop.valid().forward(x.clone().inner()); // eval: the identity
/// assert_eq!(same.into_data(), x.inner().into_data());
/// # Ok::<(), simd_dropout_burn::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct Dropout {
    /// The probability that an element is dropped.
    pub prob: f64,
    /// Whether to behave as during training (burn's flag).
    pub training: Param<Flag>,
    /// Seed and stream position, recorded with the module.
    pub stream: Stream,
}

impl Dropout {
    /// Dropout of `input` (any shape) in training, the identity otherwise; in training the
    /// call takes the next `input.shape().num_elements()` words of the stream.
    pub fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        if !self.training.is_enabled() || !input.device().is_autodiff() || self.prob == 0.0 {
            return input;
        }
        let len = input.shape().num_elements();
        match self.stream.layer.reserve(Op::Element, len) {
            Ok(rec) => apply(input, rec, self.stream.keep),
            // Unreachable: p was checked at init and an element record has no shape to check.
            Err(_) => input,
        }
    }

    /// [`Dropout::forward`] in training, also returning the mask (`true` = kept). Applies
    /// dropout whatever the flag and the device say.
    pub fn forward_with_mask<const D: usize>(
        &self,
        input: Tensor<D>,
    ) -> (Tensor<D>, Tensor<D, Bool>) {
        let len = input.shape().num_elements();
        match self.stream.layer.reserve(Op::Element, len) {
            Ok(rec) => with_mask(input, rec),
            Err(_) => {
                let mask = Tensor::<D, Bool>::ones(input.shape(), &input.device());
                (input, mask)
            }
        }
    }

    /// The stream position of the next training call.
    pub fn offset(&self) -> u64 {
        self.stream.layer.offset()
    }

    /// `p`, seed and stream position, as the core crate's [`State`](simd_dropout::State).
    pub fn state(&self) -> simd_dropout::State {
        self.stream.layer.state()
    }
}

/// The stream of a [`Dropout`]: its seed and the position of the next training call, shared by
/// clones.
///
/// In the module's record it is one `Int` parameter of 12 elements: seed state, seed stream
/// and position, each as four 16-bit limbs (least significant first), which any integer dtype
/// holds exactly.
#[derive(Clone, Debug)]
pub struct Stream {
    layer: Arc<simd_dropout::Dropout>,
    keep: Keep,
    id: ParamId,
}

/// The number of 16-bit limbs in a recorded stream.
const LIMBS: usize = 12;

impl Stream {
    /// The stream as a parameter (what a record stores).
    fn param(&self) -> Param<Tensor<1, Int>> {
        let s = self.layer.state();
        let limbs: Vec<i64> = [s.seed.state, s.seed.stream, s.offset]
            .iter()
            .flat_map(|w| (0..4).map(move |k| ((w >> (16 * k)) & 0xFFFF) as i64))
            .collect();
        let t = Tensor::<1, Int>::from_data(TensorData::new(limbs, [LIMBS]), &Device::default());
        Param::initialized(self.id, t)
    }

    /// The stream a (possibly loaded) parameter describes; `self` if it describes no stream.
    fn with_param(self, param: Param<Tensor<1, Int>>) -> Stream {
        let id = param.id;
        let data = param.val().into_data().convert::<i64>();
        let Ok(limbs) = data.try_to_vec::<i64>() else {
            return self;
        };
        if limbs.len() != LIMBS {
            return self;
        }
        let word = |i: usize| {
            (0..4).fold(0u64, |w, k| {
                w | (((limbs[4 * i + k] as u64) & 0xFFFF) << (16 * k))
            })
        };
        let mut state = self.layer.state();
        let (seed, offset) = (Seed::new(word(0), word(1)), word(2));
        if seed == state.seed && offset == state.offset && id == self.id {
            return self;
        }
        (state.seed, state.offset) = (seed, offset);
        match simd_dropout::Dropout::from_state(state) {
            Ok(layer) => Stream {
                layer: Arc::new(layer),
                keep: self.keep,
                id,
            },
            Err(_) => self,
        }
    }
}

impl Module for Stream {
    fn collect_devices(&self, devices: Devices) -> Devices {
        devices // host state, like a flag
    }

    fn fork(self, _device: &Device) -> Self {
        self
    }

    fn to_device(self, _device: &Device) -> Self {
        self
    }

    fn train(self) -> Self {
        self
    }

    fn valid(&self) -> Self {
        self.clone()
    }

    fn materialize(self) -> Self {
        self
    }

    fn visit<V: ModuleVisitor>(&self, visitor: &mut V) {
        visitor.visit_int(&self.param());
    }

    fn map<M: ModuleMapper>(self, mapper: &mut M) -> Self {
        let param = mapper.map_int(self.param());
        self.with_param(param)
    }
}

impl ModuleDisplayDefault for Stream {
    fn content(&self, content: Content) -> Option<Content> {
        let s = self.layer.state();
        content
            .add_formatted(&format!("offset {} ({:?})", s.offset, self.keep))
            .optional()
    }
}

impl ModuleDisplay for Stream {}

/// Element dropout of `x` at stream position `offset` (the identity at `p = 0`), keeping
/// nothing: the backward pass regenerates the mask. Runs through autograd on an autodiff
/// device.
///
/// ```
/// use burn::tensor::{Device, Int, Tensor};
/// let device = Device::flex();
/// let x = Tensor::<1, Int>::arange(0..12, &device).float().reshape([3, 4]);
/// let a = simd_dropout_burn::dropout(x.clone().transpose(), 0.5, 7, 0)?; // a view, no copy
/// let copy = Tensor::<2>::from_data(x.transpose().into_data(), &device); // contiguous
/// let b = simd_dropout_burn::dropout(copy, 0.5, 7, 0)?;
/// assert_eq!(a.into_data(), b.into_data());
/// # Ok::<(), simd_dropout_burn::Error>(())
/// ```
pub fn dropout<const D: usize>(
    x: Tensor<D>,
    p: f64,
    seed: u64,
    offset: u64,
) -> Result<Tensor<D>, Error> {
    let rec = record(&x, p, seed, offset)?;
    Ok(apply(x, rec, Keep::Recompute))
}

/// [`dropout`] keeping a 1-bit mask for the backward pass, also returned as a `Bool` tensor
/// (`true` = kept) of the input's shape.
pub fn dropout_with_mask<const D: usize>(
    x: Tensor<D>,
    p: f64,
    seed: u64,
    offset: u64,
) -> Result<(Tensor<D>, Tensor<D, Bool>), Error> {
    let rec = record(&x, p, seed, offset)?;
    Ok(with_mask(x, rec))
}

/// The extension that runs the crate's kernels inside a burn backend: implemented for Flex
/// (the kernels) and for `Autodiff` over it (a backward pass from the kept mask or by
/// regeneration), and routed by burn's `Dispatch`.
///
/// [`dropout`] and [`Dropout`] call it on Flex devices and compose burn's own operations
/// elsewhere; call it directly only to add a backend.
#[backend_extension(Flex, Autodiff)]
pub trait DropoutOps: Backend {
    /// The forward of `call` on `x`; fills `call.mask` if it has one.
    fn simd_dropout(x: FloatTensor<Self>, call: Call) -> FloatTensor<Self>;

    /// The backward of `call`: the input gradient from the output gradient `grad`.
    fn simd_dropout_backward(grad: FloatTensor<Self>, call: Call) -> FloatTensor<Self>;
}

/// One call of [`DropoutOps`]: what to draw, and where the mask goes.
#[derive(Clone, Debug)]
pub struct Call {
    /// `p`, seed, stream position and element count.
    pub rec: Record,
    /// The mask: filled by the forward, read by the backward. `None`: regenerate.
    pub mask: Option<Arc<Mutex<Vec<u64>>>>,
}

impl Call {
    /// A call keeping `keep`.
    fn new(rec: Record, keep: Keep) -> Call {
        let mask = (keep == Keep::Mask)
            .then(|| Arc::new(Mutex::new(vec![0u64; simd_dropout::mask_words(rec.len)])));
        Call { rec, mask }
    }

    /// Runs the crate on `io`: the forward, or the backward pass with `backward`.
    fn run<T: simd_dropout::Element>(&self, io: Strided<'_, T>, backward: bool) {
        // A poisoned lock still holds whole words (the kernels do not panic mid-word).
        let mut guard = self
            .mask
            .as_deref()
            .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()));
        let words = guard.as_deref_mut();
        let r = if backward {
            self.rec.strided_backward(io, words.map(|w| Bits::new(w)))
        } else {
            self.rec.strided_forward(io, words.map(|w| BitsMut::new(w)))
        };
        // The views and the mask were sized from the same record.
        r.expect("simd-dropout-burn: a call sized from its own record");
    }
}

impl<B: Backend + DropoutOps, C: CheckpointStrategy> DropoutOps for Autodiff<B, C> {
    fn simd_dropout(x: FloatTensor<Self>, call: Call) -> FloatTensor<Self> {
        tracked::<B, C>(x, call, false)
    }

    fn simd_dropout_backward(grad: FloatTensor<Self>, call: Call) -> FloatTensor<Self> {
        // Linear in `grad`, so its own backward is itself: a double backward works too.
        tracked::<B, C>(grad, call, true)
    }
}

/// The autograd node of a dropout forward or backward: its backward pass applies the same
/// mask again (dropout is a diagonal linear map).
#[derive(Debug)]
struct DropNode;

impl<B: Backend + DropoutOps> Backward<B, 1> for DropNode {
    type State = Call;

    fn backward(self, ops: Ops<Call, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let call = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |g| {
            B::simd_dropout_backward(g, call)
        });
    }
}

/// `call` on an autodiff tensor, recorded for the backward pass when it is tracked.
fn tracked<B: Backend + DropoutOps, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    call: Call,
    backward: bool,
) -> FloatTensor<Autodiff<B, C>> {
    let run = |x, call| match backward {
        false => B::simd_dropout(x, call),
        true => B::simd_dropout_backward(x, call),
    };
    match DropNode.prepare::<C>([x.node()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let y = run(x.into_primitive(), call.clone());
            prep.finish(call, y)
        }
        // Nothing will ask for a gradient: no mask, unless the caller holds the other handle
        // to read it (`dropout_with_mask`).
        OpsKind::UnTracked(prep) => {
            let wanted = call.mask.as_ref().is_some_and(|m| Arc::strong_count(m) > 1);
            let call = match wanted {
                true => call,
                false => Call { mask: None, ..call },
            };
            prep.finish(run(x.into_primitive(), call))
        }
    }
}

// ---- The front end: fast path or burn's operations.

/// A stateless element record for `x`.
fn record<const D: usize>(x: &Tensor<D>, p: f64, seed: u64, offset: u64) -> Result<Record, Error> {
    let state = simd_dropout::State {
        p,
        seed: Seed::from_u64(seed),
        offset,
        training: true,
    };
    let layer = simd_dropout::Dropout::from_state(state)?;
    Ok(layer.reserve(Op::Element, x.shape().num_elements())?)
}

/// Whether the crate's kernels run on tensors of `device` and `dtype`.
fn fast(device: &Device, dtype: DType) -> bool {
    let inner = match device.as_dispatch() {
        DispatchDevice::Autodiff(d) => d.clone().inner(),
        d => d.clone(),
    };
    matches!(inner, DispatchDevice::Flex(_))
        && matches!(dtype, DType::F32 | DType::F64 | DType::F16 | DType::BF16)
}

/// The forward of `rec` on `x`, keeping `keep` when autograd needs a backward pass.
fn apply<const D: usize>(x: Tensor<D>, rec: Record, keep: Keep) -> Tensor<D> {
    if rec.p == 0.0 {
        return x;
    }
    if fast(&x.device(), x.dtype()) {
        let call = Call::new(rec, keep);
        let y = <burn::backend::Dispatch as DropoutOps>::simd_dropout(x.into_dispatch(), call);
        return Tensor::from_dispatch(y);
    }
    let kept = mask_words(rec);
    x.clone() * scale_tensor(&x, rec, &kept)
}

/// The forward of `rec` on `x` with its mask as a `Bool` tensor.
fn with_mask<const D: usize>(x: Tensor<D>, rec: Record) -> (Tensor<D>, Tensor<D, Bool>) {
    let (shape, device) = (x.shape(), x.device());
    let (y, words) = if fast(&device, x.dtype()) {
        let call = Call::new(rec, Keep::Mask);
        let mask = call.mask.clone();
        let y = <burn::backend::Dispatch as DropoutOps>::simd_dropout(x.into_dispatch(), call);
        let words = mask
            .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .unwrap_or_default();
        (Tensor::from_dispatch(y), words)
    } else {
        let words = mask_words(rec);
        let y = x.clone() * scale_tensor(&x, rec, &words);
        (y, words)
    };
    let mut bools = vec![false; rec.len];
    MaskRef::new(&words, rec.len)
        .and_then(|m| m.write_bools(&mut bools))
        .expect("simd-dropout-burn: a mask sized from its own record");
    let mask = Tensor::<D, Bool>::from_data(TensorData::new(bools, shape), &device);
    (y, mask)
}

/// The mask of `rec`, from the stream.
fn mask_words(rec: Record) -> Vec<u64> {
    let mut words = vec![0u64; simd_dropout::mask_words(rec.len)];
    rec.backend
        .fill_mask(
            rec.p,
            rec.seed,
            rec.offset,
            rec.len,
            BitsMut::new(&mut words),
        )
        .expect("simd-dropout-burn: a mask sized from its own record");
    words
}

/// `{0, 1/(1-p)}` per element of `x` (row-major), as a constant tensor of `x`'s dtype on its
/// device: the scale in f64 for f64, else in f32 (f16 and bf16 multiply in f32 in the kernels
/// too).
fn scale_tensor<const D: usize>(x: &Tensor<D>, rec: Record, words: &[u64]) -> Tensor<D> {
    fn expand<T: simd_dropout::Element + burn::tensor::Element>(
        rec: Record,
        words: &[u64],
    ) -> TensorData {
        let mut m = vec![T::ZERO; rec.len];
        rec.backend
            .expand_mask(rec.p, Bits::new(words), &mut m)
            .expect("simd-dropout-burn: a mask sized from its own record");
        TensorData::new(m, [rec.len])
    }
    let (dtype, data) = match x.dtype() {
        DType::F64 => (DType::F64, expand::<f64>(rec, words)),
        _ => (DType::F32, expand::<f32>(rec, words)),
    };
    Tensor::<1>::from_data(data, (&x.device(), dtype))
        .reshape(x.shape())
        .cast(x.dtype())
}
