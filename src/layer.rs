//! The `Dropout` layer (owns `p`, the seed and a running stream offset) and the `Record` of a
//! call, which runs its forward and backward passes.

use crate::backend::Backend;
use crate::element::Element;
use crate::job::{Bits, BitsMut, Io, Rate, Shape, check_len, set_all};
use crate::ops::{Strided, alpha::Alpha, element, fused::check_rows, gaussian::Gaussian};
use crate::{Blocks, Error, Seed};
use portable_atomic::{AtomicU64, Ordering};

/// Inverted dropout as a layer: validates `p` once, switches between training and eval, and
/// owns the seed and a running offset into its PCG32 stream.
///
/// [`reserve`](Dropout::reserve) hands out the stream positions of one call through `&self`
/// (an atomic add, so a layer shared by threads gives each call disjoint positions) and
/// returns a `Copy` [`Record`] that runs the call's forward and backward passes later, for
/// example inside a framework's op. A training call advances the offset by exactly the words
/// it draws; eval calls are the identity and draw nothing.
///
/// ```
/// use simd_dropout::{mask_words, BitsMut, Dropout, Io, Seed};
/// let layer = Dropout::new(0.5, Seed::from_u64(42))?;
/// let x = [1.0f32; 6];
/// let (mut y, mut mask) = ([0.0f32; 6], [0u64; 1]);
/// let rec = layer.forward(Io::Out { x: &x, y: &mut y }, Some(BitsMut::new(&mut mask)))?;
/// assert_eq!(layer.offset(), 6);
///
/// // Backward from the stored mask, or by regenerating it: the same gradient.
/// let gy = [1.0f32; 6];
/// let (mut g1, mut g2) = ([0.0f32; 6], [0.0f32; 6]);
/// rec.backward(Io::Out { x: &gy, y: &mut g1 }, Some((&mask[..]).into()))?;
/// rec.backward(Io::Out { x: &gy, y: &mut g2 }, None)?;
/// assert_eq!(g1, g2);
/// # Ok::<(), simd_dropout::Error>(())
/// ```
#[derive(Debug)]
pub struct Dropout {
    rate: Rate,
    seed: Seed,
    offset: AtomicU64,
    training: bool,
    backend: Backend,
}

impl Clone for Dropout {
    fn clone(&self) -> Self {
        Dropout {
            offset: AtomicU64::new(self.offset()),
            ..*self
        }
    }
}

/// The state of a [`Dropout`] layer, to save with a checkpoint and restore with
/// [`Dropout::from_state`], so that a resumed run draws the same masks. With the `serde`
/// feature it serializes.
///
/// ```
/// use simd_dropout::{Dropout, Io, Seed};
/// let layer = Dropout::new(0.2, Seed::from_u64(5))?;
/// let mut xy = [1.0f32; 10];
/// layer.forward(Io::InPlace(&mut xy), None)?;
/// let resumed = Dropout::from_state(layer.state())?;
/// assert_eq!(resumed.offset(), 10);
/// # Ok::<(), simd_dropout::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct State {
    /// The drop probability.
    pub p: f64,
    /// The stream.
    pub seed: Seed,
    /// The stream position of the next training call.
    pub offset: u64,
    /// Training (`true`) or eval mode.
    pub training: bool,
}

/// The kind of call a [`Record`] describes.
///
/// ```
/// use simd_dropout::{Dropout, Op, Seed, Shape};
/// let layer = Dropout::new(0.5, Seed::from_u64(1))?;
/// let rec = layer.reserve(Op::Broadcast(Shape::columns(2, 3)), 6)?;
/// assert_eq!(layer.offset(), 3); // one word per column
/// assert_eq!(rec.op, Op::Broadcast(Shape::columns(2, 3)));
/// # Ok::<(), simd_dropout::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// Element-wise dropout (also on strided views, and DropConnect on weights).
    Element,
    /// Broadcast (structured) dropout over a shape.
    Broadcast(Shape),
    /// Alpha dropout.
    Alpha,
    /// Fused bias + dropout + residual with rows of `cols` elements.
    Fused {
        /// Columns (the bias length).
        cols: usize,
    },
    /// DropBlock over the feature maps of a [`Blocks`]: draws [`Blocks::candidates`] words,
    /// one mask bit per element.
    ///
    /// ```
    /// use simd_dropout::{Blocks, Dropout, Io, Op, Seed};
    /// let layer = Dropout::new(0.1, Seed::from_u64(4))?;
    /// let blocks = Blocks::nchw(2, 4, 8, 8, 3);
    /// let rec = layer.reserve(Op::Block(blocks), 512)?;
    /// assert_eq!(layer.offset(), 2 * 4 * 6 * 6); // one word per block corner
    /// let mut xy = [1.0f32; 512];
    /// rec.forward(Io::InPlace(&mut xy), None)?;
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    Block(Blocks),
    /// Gaussian (multiplicative) dropout: noise instead of a mask, so its calls take no mask
    /// (a mask is a `WrongOp` error).
    ///
    /// ```
    /// use simd_dropout::{Dropout, Io, Op, Seed};
    /// let layer = Dropout::new(0.1, Seed::from_u64(4))?;
    /// let rec = layer.reserve(Op::Gaussian, 8)?;
    /// let mut xy = [1.0f32; 8];
    /// rec.forward(Io::InPlace(&mut xy), None)?;
    /// let mut g = [1.0f32; 8];
    /// rec.backward(Io::InPlace(&mut g), None)?; // the same noise, regenerated
    /// assert_eq!(g, xy);
    /// assert_eq!(layer.offset(), 8);
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    Gaussian,
}

impl Op {
    /// The words a call of `len` elements draws at `p`, after checking that the op fits:
    /// `p` valid (below 1 for alpha and Gaussian), the shape describes `len`, `cols` divides `len`.
    fn words(self, p: f64, len: usize) -> Result<usize, Error> {
        Rate::new(p)?;
        match self {
            Op::Broadcast(shape) => shape.check("x", len),
            Op::Alpha => Alpha::new(p).map(|_| len),
            Op::Gaussian => Gaussian::new(p).map(|_| len),
            Op::Block(blocks) => blocks.check(len).map(|g| g.candidates),
            Op::Fused { cols } => check_rows("bias", len, cols).map(|_| len),
            Op::Element => Ok(len),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Op::Element => "an element",
            Op::Broadcast(_) => "a broadcast",
            Op::Alpha => "an alpha",
            Op::Gaussian => "a Gaussian",
            Op::Block(_) => "a DropBlock",
            Op::Fused { .. } => "a fused",
        }
    }
}

impl Dropout {
    /// A layer in training mode at offset 0; `InvalidProbability` unless `p` is in `[0, 1]`.
    ///
    /// ```
    /// use simd_dropout::{Dropout, Seed};
    /// assert!(Dropout::new(0.1, Seed::from_u64(0)).is_ok());
    /// assert!(Dropout::new(1.5, Seed::from_u64(0)).is_err());
    /// ```
    pub fn new(p: f64, seed: Seed) -> Result<Self, Error> {
        Ok(Dropout {
            rate: Rate::new(p)?,
            seed,
            offset: AtomicU64::new(0),
            training: true,
            backend: Backend::detect(),
        })
    }

    /// The layer of a saved [`State`]; `InvalidProbability` unless its `p` is in `[0, 1]`.
    pub fn from_state(state: State) -> Result<Self, Error> {
        let mut layer = Dropout::new(state.p, state.seed)?;
        *layer.offset.get_mut() = state.offset;
        layer.training = state.training;
        Ok(layer)
    }

    /// The state: `p`, seed, offset and mode (to save with a checkpoint, or to read).
    pub fn state(&self) -> State {
        State {
            p: self.rate.p,
            seed: self.seed,
            offset: self.offset(),
            training: self.training,
        }
    }

    /// The same layer running on `backend` (every backend gives the same bits).
    pub fn with_backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// The stream position the next training call starts at.
    pub fn offset(&self) -> u64 {
        self.offset.load(Ordering::Relaxed)
    }

    /// Training mode: calls drop elements (the default).
    pub fn train(&mut self) {
        self.training = true;
    }

    /// Eval mode: calls are the identity and draw no words.
    pub fn eval(&mut self) {
        self.training = false;
    }

    /// Reserves the stream positions of one call of `op` on `len` elements and returns its
    /// [`Record`]. In training the offset advances by the words the call draws (`len`, or
    /// the shape's decisions for broadcast), atomically, so calls from several threads get
    /// disjoint positions; in eval nothing advances.
    ///
    /// Errors (nothing advances): a shape or DropBlock geometry that does not describe `len`
    /// elements, a fused `cols` that does not divide `len`, alpha or Gaussian dropout at
    /// `p = 1`.
    ///
    /// ```
    /// use simd_dropout::{Dropout, Io, Op, Seed};
    /// let layer = Dropout::new(0.1, Seed::from_u64(3))?;
    /// // A framework op: reserve when the graph is built, run when the kernel runs.
    /// let rec = layer.reserve(Op::Element, 4)?;
    /// let x = [1.0f32; 4];
    /// let mut y = [0.0f32; 4];
    /// rec.forward(Io::Out { x: &x, y: &mut y }, None)?;
    /// assert_eq!((rec.offset, layer.offset()), (0, 4));
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    pub fn reserve(&self, op: Op, len: usize) -> Result<Record, Error> {
        let words = op.words(self.rate.p, len)?;
        let offset = if self.training {
            self.offset.fetch_add(words as u64, Ordering::Relaxed)
        } else {
            self.offset()
        };
        Ok(self.record(op, len, offset))
    }

    /// The record of a call of `op` on `len` elements at stream position `offset`.
    fn record(&self, op: Op, len: usize, offset: u64) -> Record {
        Record {
            p: self.rate.p,
            seed: self.seed,
            offset,
            len,
            training: self.training,
            backend: self.backend,
            op,
        }
    }

    /// Element dropout of a whole call: checks the lengths, reserves the positions, runs
    /// the forward (keep bits to `mask` when given, all set in eval mode).
    ///
    /// ```
    /// let mut layer = simd_dropout::Dropout::new(0.5, simd_dropout::Seed::from_u64(1))?;
    /// layer.eval();
    /// let x = [1.0f32, -0.0, 3.0];
    /// let mut y = [0.0f32; 3];
    /// layer.forward(simd_dropout::Io::Out { x: &x, y: &mut y }, None)?;
    /// assert_eq!(y.map(f32::to_bits), x.map(f32::to_bits));
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    pub fn forward<T: Element>(
        &self,
        io: Io<'_, T>,
        mask: Option<BitsMut<'_>>,
    ) -> Result<Record, Error> {
        let n = io.len();
        io_len(&io)?;
        if let Some(m) = &mask {
            m.check(n)?;
        }
        if !self.training {
            let rec = self.reserve(Op::Element, n)?;
            rec.forward(io, mask)?;
            return Ok(rec);
        }
        // Training, the hot path of small layers: `p` was validated by `new` and the lengths
        // above, so the call goes straight to the kernels (one atomic add, no second check).
        let data = io.data()?;
        let offset = self.offset.fetch_add(n as u64, Ordering::Relaxed);
        let rec = self.record(Op::Element, n, offset);
        element::forward(self.backend, self.rate, (self.seed, rec.offset), data, mask);
        Ok(rec)
    }
}

/// `LengthMismatch` unless the output has the input's length.
fn io_len<T>(io: &Io<'_, T>) -> Result<(), Error> {
    io.check()
}

/// What one call used: enough to run its forward, replay it, or run its backward pass
/// without a stored mask. Made by [`Dropout::reserve`] (or written by hand from a saved
/// `(p, seed, offset)`).
///
/// ```
/// use simd_dropout::{Dropout, Io, Op, Seed};
/// let layer = Dropout::new(0.2, Seed::from_u64(2))?;
/// let rec = layer.reserve(Op::Element, 10)?;
/// let x = [1.0f32; 10];
/// let (mut y, mut again) = ([0.0f32; 10], [0.0f32; 10]);
/// rec.forward(Io::Out { x: &x, y: &mut y }, None)?;
/// rec.forward(Io::Out { x: &x, y: &mut again }, None)?; // a replay: the same bits
/// assert_eq!(again, y);
/// # Ok::<(), simd_dropout::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Record {
    /// The drop probability.
    pub p: f64,
    /// The stream.
    pub seed: Seed,
    /// The stream position of the call's first word.
    pub offset: u64,
    /// The number of elements (of the full logical tensor, for strided calls).
    pub len: usize,
    /// `false` for an eval-mode call: the identity (the fused block computes
    /// `residual + (x + bias)`), with every mask bit set.
    pub training: bool,
    /// The backend that runs the call (any backend gives the same bits).
    pub backend: Backend,
    /// Which dropout the call is.
    pub op: Op,
}

impl Record {
    /// `WrongOp` unless `ok`; then the record itself checked (its fields are public, so a
    /// record written by hand is validated like one from `reserve`, in every mode).
    fn expect(&self, ok: bool, asked: &'static str) -> Result<(), Error> {
        if ok {
            self.op.words(self.p, self.len)?;
            Ok(())
        } else {
            Err(Error::WrongOp {
                record: self.op.name(),
                asked,
            })
        }
    }

    /// The mask bits of the call (decisions, for broadcast).
    fn bits(&self) -> usize {
        match self.op {
            Op::Broadcast(shape) => shape.decisions().unwrap_or(usize::MAX),
            _ => self.len,
        }
    }

    /// The forward pass of an element, broadcast, alpha, DropBlock or Gaussian call (keep bits to `mask` when
    /// given). Running it again is a replay: the same bits.
    pub fn forward<T: Element>(
        &self,
        io: Io<'_, T>,
        mask: Option<BitsMut<'_>>,
    ) -> Result<(), Error> {
        self.expect(
            !matches!(self.op, Op::Fused { .. }),
            "forward (a fused record runs fused_forward)",
        )?;
        self.expect(
            !(self.op == Op::Gaussian && mask.is_some()),
            "forward with a mask (Gaussian dropout has none)",
        )?;
        check_len("x", self.len, io.len())?;
        let (b, p, seed, offset) = (self.backend, self.p, self.seed, self.offset);
        if !self.training {
            io_len(&io)?;
            check_mask_out(&mask, self.bits())?;
            identity(io);
            set_all(mask, self.bits());
            return Ok(());
        }
        match self.op {
            Op::Broadcast(shape) => b.broadcast_forward(shape, p, seed, offset, io, mask),
            Op::Alpha => b.alpha_forward(p, seed, offset, io, mask),
            Op::Gaussian => b.gaussian_forward(p, seed, offset, io),
            Op::Block(blocks) => b.block_forward(blocks, p, seed, offset, io, mask),
            _ => b.forward(p, seed, offset, io, mask),
        }
    }

    /// The backward pass of an element, broadcast, alpha, DropBlock or Gaussian call (`x` = the output gradient,
    /// `y` = the input gradient), from the stored `mask` or, with `None`, regenerated from
    /// the record. In eval mode the identity.
    pub fn backward<T: Element>(&self, io: Io<'_, T>, mask: Option<Bits<'_>>) -> Result<(), Error> {
        self.expect(
            !matches!(self.op, Op::Fused { .. }),
            "backward (a fused record runs fused_backward)",
        )?;
        self.expect(
            !(self.op == Op::Gaussian && mask.is_some()),
            "backward from a mask (Gaussian dropout has none)",
        )?;
        check_len("x", self.len, io.len())?;
        let (b, p, seed, offset) = (self.backend, self.p, self.seed, self.offset);
        if !self.training {
            io_len(&io)?;
            if let Some(m) = &mask {
                m.check(self.bits())?;
            }
            identity(io);
            return Ok(());
        }
        match self.op {
            Op::Broadcast(shape) => b.broadcast_backward(shape, p, seed, offset, io, mask),
            Op::Alpha => b.alpha_backward(p, seed, offset, io, mask),
            Op::Gaussian => b.gaussian_backward(p, seed, offset, io),
            Op::Block(blocks) => b.block_backward(blocks, p, seed, offset, io, mask),
            _ => b.backward(p, seed, offset, io, mask),
        }
    }

    /// The forward pass of a fused call: `y = residual + dropout(x + bias)` (in eval mode
    /// `residual + (x + bias)`).
    ///
    /// ```
    /// use simd_dropout::{Dropout, Io, Op, Seed};
    /// let layer = Dropout::new(0.1, Seed::from_u64(1))?;
    /// let (x, bias, res) = ([1.0f32; 6], [0.0f32; 3], [2.0f32; 6]);
    /// let rec = layer.reserve(Op::Fused { cols: 3 }, 6)?;
    /// let mut y = [0.0f32; 6];
    /// rec.fused_forward(&bias, &res, Io::Out { x: &x, y: &mut y }, None)?;
    /// let (mut gx, mut gb) = ([0.0f32; 6], [0.0f32; 3]);
    /// rec.fused_backward(&mut gb, Io::Out { x: &[1.0; 6], y: &mut gx }, None)?;
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    pub fn fused_forward<T: Element>(
        &self,
        bias: &[T],
        residual: &[T],
        io: Io<'_, T>,
        mask: Option<BitsMut<'_>>,
    ) -> Result<(), Error> {
        let Op::Fused { cols } = self.op else {
            return self.expect(false, "fused_forward");
        };
        self.expect(true, "fused_forward")?;
        check_len("x", self.len, io.len())?;
        check_len("bias", cols, bias.len())?;
        let p = if self.training { self.p } else { 0.0 };
        self.backend
            .fused_forward(bias, residual, p, self.seed, self.offset, io, mask)
    }

    /// The backward pass of a fused call: the input gradient into `io`'s output and the bias
    /// gradient into `g_bias` (the residual's gradient is `gy` itself).
    pub fn fused_backward<T: Element>(
        &self,
        g_bias: &mut [T],
        io: Io<'_, T>,
        mask: Option<Bits<'_>>,
    ) -> Result<(), Error> {
        let Op::Fused { cols } = self.op else {
            return self.expect(false, "fused_backward");
        };
        self.expect(true, "fused_backward")?;
        check_len("x", self.len, io.len())?;
        check_len("g_bias", cols, g_bias.len())?;
        let (p, mask) = if self.training {
            (self.p, mask)
        } else {
            if let Some(m) = &mask {
                m.check(self.len)?;
            }
            (0.0, None)
        };
        self.backend
            .fused_backward(g_bias, p, self.seed, self.offset, io, mask)
    }

    /// The forward pass of an element call on strided views: the record covers the full
    /// logical tensor (`len` elements), the views any window of it.
    pub fn strided_forward<T: Element>(
        &self,
        io: Strided<'_, T>,
        mask: Option<BitsMut<'_>>,
    ) -> Result<(), Error> {
        self.expect(self.op == Op::Element, "strided_forward")?;
        check_len("the views' full shape", self.len, io.full_len())?;
        if !self.training {
            io.check()?;
            check_mask_out(&mask, io.len())?;
            let n = io.len();
            self.backend
                .strided_forward(0.0, self.seed, self.offset, io, None)?;
            set_all(mask, n);
            return Ok(());
        }
        self.backend
            .strided_forward(self.p, self.seed, self.offset, io, mask)
    }

    /// The backward pass of an element call on strided views.
    pub fn strided_backward<T: Element>(
        &self,
        io: Strided<'_, T>,
        mask: Option<Bits<'_>>,
    ) -> Result<(), Error> {
        self.expect(self.op == Op::Element, "strided_backward")?;
        check_len("the views' full shape", self.len, io.full_len())?;
        let (p, mask) = if self.training {
            (self.p, mask)
        } else {
            if let Some(m) = &mask {
                m.check(io.len())?;
            }
            (0.0, None)
        };
        self.backend
            .strided_backward(p, self.seed, self.offset, io, mask)
    }
}

/// `MaskTooShort` unless an output mask holds `n` bits.
fn check_mask_out(mask: &Option<BitsMut<'_>>, n: usize) -> Result<(), Error> {
    mask.as_ref().map_or(Ok(()), |m| m.check(n))
}

/// The eval-mode forward: `y = x`, bit for bit.
fn identity<T: Element>(io: Io<'_, T>) {
    match io {
        Io::Out { x, y } => y.copy_from_slice(x),
        Io::Uninit { x, y } => {
            y.write_copy_of_slice(x);
        }
        Io::InPlace(_) => {}
    }
}
