//! The `Dropout` layer: owns `p`, the seed and a running stream offset.

use crate::backend::Backend;
use crate::element::Element;
use crate::kernels::Data;
use crate::ops::{check_len, check_mask};
use crate::reference::Rate;
use crate::{Error, Seed, Shape};

/// Inverted dropout as a layer: validates `p` once, switches between training and eval, and
/// owns the seed and a running offset into its PCG32 stream.
///
/// Each training call draws one word per element and advances the offset by exactly the
/// element count, so successive calls get fresh masks, and any call can be replayed from the
/// [`Record`] it returns. In eval mode a call is the identity and draws nothing.
///
/// ```
/// use simd_dropout::{mask_words, Dropout, Seed};
/// let mut layer = Dropout::new(0.5, Seed::new(42, 54)).unwrap();
/// let x = [1.0f32; 6];
/// let mut y = [0.0f32; 6];
/// let mut mask = [0u64; 1];
/// let rec = layer.forward(&x, &mut y, &mut mask).unwrap();
/// assert_eq!(layer.offset(), 6);
///
/// // Backward from the stored mask, or by regenerating it: the same gradient.
/// let gy = [1.0f32; 6];
/// let (mut g1, mut g2) = ([0.0f32; 6], [0.0f32; 6]);
/// rec.backward(&mask, &gy, &mut g1).unwrap();
/// rec.backward_recompute(&gy, &mut g2).unwrap();
/// assert_eq!(g1, g2);
///
/// layer.eval();
/// layer.forward_no_mask(&x, &mut y).unwrap();
/// assert_eq!(y, x);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dropout {
    rate: Rate,
    seed: Seed,
    offset: u64,
    training: bool,
    backend: Backend,
}

/// What one [`Dropout`] call used: enough to replay it or to run its backward pass without a
/// stored mask (`seed`, `offset`, `p`, `len`).
///
/// ```
/// use simd_dropout::{Dropout, Seed};
/// let mut layer = Dropout::new(0.2, Seed::new(1, 2)).unwrap();
/// let x = [1.0f32; 10];
/// let mut y = [0.0f32; 10];
/// let rec = layer.forward_no_mask(&x, &mut y).unwrap();
/// assert_eq!((rec.offset, rec.len, rec.training), (0, 10, true));
/// let mut again = [0.0f32; 10];
/// rec.replay(&x, &mut again).unwrap();
/// assert_eq!(again, y);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Record {
    /// The drop probability.
    pub p: f64,
    /// The stream.
    pub seed: Seed,
    /// The stream position of the call's first element.
    pub offset: u64,
    /// The number of elements.
    pub len: usize,
    /// `false` for an eval-mode call (the identity; its backward is the identity too).
    pub training: bool,
    /// The backend that ran the call (any backend gives the same bits).
    pub backend: Backend,
    /// Which dropout the call was, for its backward pass.
    pub mode: Mode,
}

/// The kind of dropout a [`Record`] describes.
///
/// ```
/// use simd_dropout::{Dropout, Mode, Seed, Shape};
/// let mut layer = Dropout::new(0.5, Seed::new(1, 1)).unwrap();
/// let (x, mut y) = ([1.0f32; 6], [0.0f32; 6]);
/// let rec = layer.forward_broadcast_no_mask(Shape::columns(2, 3), &x, &mut y).unwrap();
/// assert_eq!(rec.mode, Mode::Broadcast(Shape::columns(2, 3)));
/// assert_eq!(layer.offset(), 3); // one word per column
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// Element-wise dropout (also DropConnect on weights).
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
}

impl Dropout {
    /// A layer in training mode at offset 0; `InvalidProbability` unless `p` is in `[0, 1]`.
    ///
    /// ```
    /// use simd_dropout::{Dropout, Seed};
    /// assert!(Dropout::new(0.1, Seed::new(0, 0)).is_ok());
    /// assert!(Dropout::new(1.5, Seed::new(0, 0)).is_err());
    /// ```
    pub fn new(p: f64, seed: Seed) -> Result<Self, Error> {
        Ok(Dropout {
            rate: Rate::new(p)?,
            seed,
            offset: 0,
            training: true,
            backend: Backend::detect(),
        })
    }

    /// A layer seeded from any `rand_core` generator (see [`Seed::from_rng`]).
    ///
    /// ```
    /// use rand_core::SeedableRng;
    /// let mut rng = rand_pcg::Pcg64::seed_from_u64(3);
    /// let layer = simd_dropout::Dropout::from_rng(0.1, &mut rng).unwrap();
    /// assert_eq!(layer.offset(), 0);
    /// ```
    pub fn from_rng<R: rand_core::Rng + ?Sized>(p: f64, rng: &mut R) -> Result<Self, Error> {
        Self::new(p, Seed::from_rng(rng))
    }

    /// The same layer running on `backend` (all backends give the same bits).
    ///
    /// ```
    /// use simd_dropout::{Backend, Dropout, Seed};
    /// let layer = Dropout::new(0.1, Seed::new(0, 0)).unwrap().with_backend(Backend::scalar());
    /// assert_eq!(layer.backend(), Backend::scalar());
    /// ```
    pub fn with_backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// The backend the layer calls.
    ///
    /// ```
    /// let layer = simd_dropout::Dropout::new(0.1, simd_dropout::Seed::new(0, 0)).unwrap();
    /// assert_eq!(layer.backend(), simd_dropout::Backend::detect());
    /// ```
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The drop probability.
    ///
    /// ```
    /// assert_eq!(simd_dropout::Dropout::new(0.3, simd_dropout::Seed::new(0, 0)).unwrap().p(), 0.3);
    /// ```
    pub fn p(&self) -> f64 {
        self.rate.p
    }

    /// The seed.
    ///
    /// ```
    /// use simd_dropout::{Dropout, Seed};
    /// assert_eq!(Dropout::new(0.1, Seed::new(4, 5)).unwrap().seed(), Seed::new(4, 5));
    /// ```
    pub fn seed(&self) -> Seed {
        self.seed
    }

    /// The stream position the next training call starts at.
    ///
    /// ```
    /// let layer = simd_dropout::Dropout::new(0.1, simd_dropout::Seed::new(0, 0)).unwrap();
    /// assert_eq!(layer.offset(), 0);
    /// ```
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Moves the running offset (for example to resume a checkpoint).
    ///
    /// ```
    /// let mut layer = simd_dropout::Dropout::new(0.1, simd_dropout::Seed::new(0, 0)).unwrap();
    /// layer.set_offset(1 << 40);
    /// assert_eq!(layer.offset(), 1 << 40);
    /// ```
    pub fn set_offset(&mut self, offset: u64) {
        self.offset = offset;
    }

    /// Training mode: calls drop elements.
    ///
    /// ```
    /// let mut layer = simd_dropout::Dropout::new(0.1, simd_dropout::Seed::new(0, 0)).unwrap();
    /// layer.eval();
    /// layer.train();
    /// assert!(layer.is_training());
    /// ```
    pub fn train(&mut self) {
        self.training = true;
    }

    /// Eval mode: calls are the identity and draw no words.
    ///
    /// ```
    /// let mut layer = simd_dropout::Dropout::new(0.1, simd_dropout::Seed::new(0, 0)).unwrap();
    /// layer.eval();
    /// assert!(!layer.is_training());
    /// ```
    pub fn eval(&mut self) {
        self.training = false;
    }

    /// Whether the layer is in training mode.
    ///
    /// ```
    /// assert!(simd_dropout::Dropout::new(0.1, simd_dropout::Seed::new(0, 0)).unwrap().is_training());
    /// ```
    pub fn is_training(&self) -> bool {
        self.training
    }

    /// The record of a call of `len` elements starting now.
    fn record(&self, len: usize, mode: Mode) -> Record {
        Record {
            p: self.rate.p,
            seed: self.seed,
            offset: self.offset,
            len,
            training: self.training,
            backend: self.backend,
            mode,
        }
    }

    /// The record of an element-wise call; advances the offset in training.
    fn begin(&mut self, len: usize) -> Record {
        let rec = self.record(len, Mode::Element);
        self.advance(&rec, len);
        rec
    }

    /// After a successful training call that drew `words` words.
    fn advance(&mut self, rec: &Record, words: usize) {
        if rec.training {
            self.offset = self.offset.wrapping_add(words as u64);
        }
    }

    /// Broadcast (structured) dropout of `x` viewed as `shape` (see
    /// [`Backend::broadcast_forward`]); the call draws `shape.decisions()` words. Eval mode
    /// copies `x` and sets every mask bit.
    ///
    /// ```
    /// use simd_dropout::{Dropout, Seed, Shape};
    /// let mut layer = Dropout::new(0.5, Seed::new(1, 1)).unwrap();
    /// let (x, mut y, mut mask) = ([1.0f32; 6], [0.0f32; 6], [0u64; 1]);
    /// let rec = layer.forward_broadcast(Shape::columns(2, 3), &x, &mut y, &mut mask).unwrap();
    /// let mut gx = [0.0f32; 6];
    /// rec.backward(&mask, &[1.0; 6], &mut gx).unwrap();
    /// assert_eq!(gx, y);
    /// ```
    pub fn forward_broadcast<T: Element>(
        &mut self,
        shape: Shape,
        x: &[T],
        y: &mut [T],
        mask: &mut [u64],
    ) -> Result<Record, Error> {
        let rec = self.record(x.len(), Mode::Broadcast(shape));
        let words = shape.decisions().unwrap_or(usize::MAX);
        if rec.training {
            self.backend
                .broadcast_forward(rec.p, rec.seed, rec.offset, shape, x, y, mask)?;
        } else {
            check_len(x.len(), y.len())?;
            if shape.len() != Some(x.len()) {
                return Err(Error::ShapeMismatch {
                    elements: shape.len().unwrap_or(usize::MAX),
                    len: x.len(),
                });
            }
            check_mask(words, mask.len())?;
            y.copy_from_slice(x);
            all_kept(words, mask);
        }
        self.advance(&rec, words);
        Ok(rec)
    }

    /// [`forward_broadcast`](Dropout::forward_broadcast) storing no mask.
    ///
    /// ```
    /// use simd_dropout::{Dropout, Seed, Shape};
    /// let mut layer = Dropout::new(0.5, Seed::new(1, 1)).unwrap();
    /// let (x, mut y) = ([1.0f32; 8], [0.0f32; 8]);
    /// let rec = layer.forward_broadcast_no_mask(Shape::samples(2, 4), &x, &mut y).unwrap();
    /// let mut gx = [0.0f32; 8];
    /// rec.backward_recompute(&[1.0; 8], &mut gx).unwrap();
    /// assert_eq!(gx, y);
    /// ```
    pub fn forward_broadcast_no_mask<T: Element>(
        &mut self,
        shape: Shape,
        x: &[T],
        y: &mut [T],
    ) -> Result<Record, Error> {
        let rec = self.record(x.len(), Mode::Broadcast(shape));
        rec.replay(x, y)?;
        self.advance(&rec, shape.decisions().unwrap_or(usize::MAX));
        Ok(rec)
    }

    /// Alpha dropout (see [`Backend::alpha_forward`]; needs `p < 1`). Eval mode copies `x`
    /// and sets every mask bit.
    ///
    /// ```
    /// use simd_dropout::{Dropout, Seed};
    /// let mut layer = Dropout::new(0.1, Seed::new(1, 1)).unwrap();
    /// let (x, mut y, mut mask) = ([1.0f32; 6], [0.0f32; 6], [0u64; 1]);
    /// let rec = layer.forward_alpha(&x, &mut y, &mut mask).unwrap();
    /// let (mut g1, mut g2) = ([0.0f32; 6], [0.0f32; 6]);
    /// rec.backward(&mask, &[1.0; 6], &mut g1).unwrap();
    /// rec.backward_recompute(&[1.0; 6], &mut g2).unwrap();
    /// assert_eq!(g1, g2);
    /// ```
    pub fn forward_alpha<T: Element>(
        &mut self,
        x: &[T],
        y: &mut [T],
        mask: &mut [u64],
    ) -> Result<Record, Error> {
        let rec = self.record(x.len(), Mode::Alpha);
        if rec.training {
            self.backend
                .alpha_forward(rec.p, rec.seed, rec.offset, x, y, mask)?;
        } else {
            check_len(x.len(), y.len())?;
            check_mask(x.len(), mask.len())?;
            y.copy_from_slice(x);
            all_kept(x.len(), mask);
        }
        self.advance(&rec, x.len());
        Ok(rec)
    }

    /// Fused `y = residual + dropout(x + bias)` (see [`Backend::fused_forward`]). Eval mode
    /// computes `residual + (x + bias)` with the same roundings and sets every mask bit.
    /// Its backward pass is [`Record::backward_fused`].
    ///
    /// ```
    /// use simd_dropout::{Dropout, Seed};
    /// let mut layer = Dropout::new(0.1, Seed::new(1, 1)).unwrap();
    /// let (x, bias, res) = ([1.0f32; 6], [0.0f32; 3], [2.0f32; 6]);
    /// let (mut y, mut mask) = ([0.0f32; 6], [0u64; 1]);
    /// let rec = layer.forward_fused(&x, &bias, &res, &mut y, &mut mask).unwrap();
    /// let (mut gx, mut gb) = ([0.0f32; 6], [0.0f32; 3]);
    /// rec.backward_fused(&mask, &[1.0; 6], &mut gx, &mut gb).unwrap();
    /// ```
    pub fn forward_fused<T: Element>(
        &mut self,
        x: &[T],
        bias: &[T],
        residual: &[T],
        y: &mut [T],
        mask: &mut [u64],
    ) -> Result<Record, Error> {
        let rec = self.record(x.len(), Mode::Fused { cols: bias.len() });
        let p = if rec.training { rec.p } else { 0.0 };
        self.backend
            .fused_forward(p, rec.seed, rec.offset, x, bias, residual, y, mask)?;
        self.advance(&rec, x.len());
        Ok(rec)
    }

    /// Dropout of `x` into `y`, storing the keep bits in `mask` (all ones in eval mode).
    ///
    /// ```
    /// let mut layer = simd_dropout::Dropout::new(0.5, simd_dropout::Seed::new(1, 1)).unwrap();
    /// let (x, mut y, mut mask) = ([1.0f32; 3], [0.0f32; 3], [0u64; 1]);
    /// layer.forward(&x, &mut y, &mut mask).unwrap();
    /// ```
    pub fn forward<T: Element>(
        &mut self,
        x: &[T],
        y: &mut [T],
        mask: &mut [u64],
    ) -> Result<Record, Error> {
        check_len(x.len(), y.len())?;
        check_mask(x.len(), mask.len())?;
        let rec = self.begin(x.len());
        if rec.training {
            self.backend
                .forward(rec.p, rec.seed, rec.offset, x, y, mask)?;
        } else {
            y.copy_from_slice(x);
            all_kept(x.len(), mask);
        }
        Ok(rec)
    }

    /// [`forward`](Dropout::forward) overwriting `xy`.
    ///
    /// ```
    /// let mut layer = simd_dropout::Dropout::new(0.5, simd_dropout::Seed::new(1, 1)).unwrap();
    /// let (mut xy, mut mask) = ([1.0f32; 3], [0u64; 1]);
    /// layer.forward_in_place(&mut xy, &mut mask).unwrap();
    /// ```
    pub fn forward_in_place<T: Element>(
        &mut self,
        xy: &mut [T],
        mask: &mut [u64],
    ) -> Result<Record, Error> {
        check_mask(xy.len(), mask.len())?;
        let rec = self.begin(xy.len());
        if rec.training {
            self.backend
                .forward_in_place(rec.p, rec.seed, rec.offset, xy, mask)?;
        } else {
            all_kept(xy.len(), mask);
        }
        Ok(rec)
    }

    /// Dropout of `x` into `y` storing nothing: the backward pass regenerates the mask from
    /// the returned [`Record`].
    ///
    /// ```
    /// let mut layer = simd_dropout::Dropout::new(0.5, simd_dropout::Seed::new(1, 1)).unwrap();
    /// let (x, mut y) = ([1.0f32; 3], [0.0f32; 3]);
    /// let rec = layer.forward_no_mask(&x, &mut y).unwrap();
    /// assert_eq!(rec.len, 3);
    /// ```
    pub fn forward_no_mask<T: Element>(&mut self, x: &[T], y: &mut [T]) -> Result<Record, Error> {
        check_len(x.len(), y.len())?;
        let rec = self.begin(x.len());
        rec.replay(x, y)?;
        Ok(rec)
    }

    /// [`forward_no_mask`](Dropout::forward_no_mask) overwriting `xy`.
    ///
    /// ```
    /// let mut layer = simd_dropout::Dropout::new(0.5, simd_dropout::Seed::new(1, 1)).unwrap();
    /// let mut xy = [1.0f32; 3];
    /// layer.forward_in_place_no_mask(&mut xy).unwrap();
    /// ```
    pub fn forward_in_place_no_mask<T: Element>(&mut self, xy: &mut [T]) -> Result<Record, Error> {
        let rec = self.begin(xy.len());
        rec.replay_in_place(xy)?;
        Ok(rec)
    }
}

/// The eval-mode mask: every element kept.
fn all_kept(len: usize, mask: &mut [u64]) {
    for (w, word) in mask.iter_mut().take(crate::mask_words(len)).enumerate() {
        let left = len - 64 * w;
        *word = if left >= 64 { !0 } else { (1u64 << left) - 1 };
    }
}

impl Record {
    /// Recomputes the call's output from its input (the same bits as the original call).
    ///
    /// ```
    /// # use simd_dropout::{Dropout, Seed};
    /// let mut layer = Dropout::new(0.5, Seed::new(1, 1)).unwrap();
    /// let (x, mut y, mut z) = ([1.0f32; 9], [0.0f32; 9], [0.0f32; 9]);
    /// let rec = layer.forward_no_mask(&x, &mut y).unwrap();
    /// rec.replay(&x, &mut z).unwrap();
    /// assert_eq!(y, z);
    /// ```
    pub fn replay<T: Element>(&self, x: &[T], y: &mut [T]) -> Result<(), Error> {
        check_len(self.len, x.len())?;
        check_len(self.len, y.len())?;
        if !self.training {
            y.copy_from_slice(x);
            return Ok(());
        }
        self.replay_data(Data::Out { x, y })
    }

    /// The replay of a training call on `data`.
    fn replay_data<T: Element>(&self, data: Data<'_, T>) -> Result<(), Error> {
        let (b, p, seed, offset) = (self.backend, self.p, self.seed, self.offset);
        match self.mode {
            Mode::Element => b.forward_data(p, seed, offset, data),
            Mode::Broadcast(shape) => b.broadcast_data(p, shape, Err((seed, offset)), data),
            Mode::Alpha => b.alpha_forward_data(p, seed, offset, data),
            Mode::Fused { .. } => Err(Error::UnsupportedMode),
        }
    }

    /// [`replay`](Record::replay) overwriting `xy`.
    ///
    /// ```
    /// # use simd_dropout::{Dropout, Seed};
    /// let mut layer = Dropout::new(0.5, Seed::new(1, 1)).unwrap();
    /// let (x, mut y) = ([1.0f32; 9], [0.0f32; 9]);
    /// let rec = layer.forward_no_mask(&x, &mut y).unwrap();
    /// let mut z = x;
    /// rec.replay_in_place(&mut z).unwrap();
    /// assert_eq!(y, z);
    /// ```
    pub fn replay_in_place<T: Element>(&self, xy: &mut [T]) -> Result<(), Error> {
        check_len(self.len, xy.len())?;
        if !self.training {
            return Ok(());
        }
        self.replay_data(Data::InPlace(xy))
    }

    /// The backward pass from the stored mask: `gx = keep ? gy * scale : +0.0`.
    ///
    /// ```
    /// # use simd_dropout::{Dropout, Seed};
    /// let mut layer = Dropout::new(0.5, Seed::new(1, 1)).unwrap();
    /// let (x, mut y, mut mask) = ([1.0f32; 4], [0.0f32; 4], [0u64; 1]);
    /// let rec = layer.forward(&x, &mut y, &mut mask).unwrap();
    /// let mut gx = [0.0f32; 4];
    /// rec.backward(&mask, &[1.0; 4], &mut gx).unwrap();
    /// assert_eq!(gx, y);
    /// ```
    pub fn backward<T: Element>(&self, mask: &[u64], gy: &[T], gx: &mut [T]) -> Result<(), Error> {
        check_len(self.len, gy.len())?;
        check_len(self.len, gx.len())?;
        if !self.training {
            // Eval: the identity, but a mask that could not have come from the call is still
            // an error.
            let bits = match self.mode {
                Mode::Broadcast(shape) => shape.decisions().unwrap_or(usize::MAX),
                _ => self.len,
            };
            check_mask(bits, mask.len())?;
            gx.copy_from_slice(gy);
            return Ok(());
        }
        match self.mode {
            Mode::Broadcast(shape) => self
                .backend
                .broadcast_apply_mask(self.p, shape, mask, gy, gx),
            Mode::Alpha => self.backend.alpha_backward(self.p, mask, gy, gx),
            Mode::Element | Mode::Fused { .. } => self.backend.apply_mask(self.p, mask, gy, gx),
        }
    }

    /// The backward pass with nothing stored: regenerates the mask and applies it.
    ///
    /// ```
    /// # use simd_dropout::{Dropout, Seed};
    /// let mut layer = Dropout::new(0.5, Seed::new(1, 1)).unwrap();
    /// let (x, mut y) = ([1.0f32; 4], [0.0f32; 4]);
    /// let rec = layer.forward_no_mask(&x, &mut y).unwrap();
    /// let mut gx = [0.0f32; 4];
    /// rec.backward_recompute(&[1.0; 4], &mut gx).unwrap();
    /// assert_eq!(gx, y);
    /// ```
    pub fn backward_recompute<T: Element>(&self, gy: &[T], gx: &mut [T]) -> Result<(), Error> {
        check_len(self.len, gy.len())?;
        check_len(self.len, gx.len())?;
        if !self.training {
            gx.copy_from_slice(gy);
            return Ok(());
        }
        let (b, p, seed, offset) = (self.backend, self.p, self.seed, self.offset);
        match self.mode {
            Mode::Alpha => b.alpha_backward_recompute(p, seed, offset, gy, gx),
            Mode::Broadcast(_) => self.replay(gy, gx),
            // A fused call's input gradient is plain dropout's.
            Mode::Element | Mode::Fused { .. } => b.forward_no_mask(p, seed, offset, gy, gx),
        }
    }

    /// [`backward`](Record::backward) overwriting the gradient `g` in place.
    ///
    /// ```
    /// # use simd_dropout::{Dropout, Seed};
    /// let mut layer = Dropout::new(0.5, Seed::new(1, 1)).unwrap();
    /// let (x, mut y, mut mask) = ([1.0f32; 4], [0.0f32; 4], [0u64; 1]);
    /// let rec = layer.forward(&x, &mut y, &mut mask).unwrap();
    /// let mut g = [1.0f32; 4];
    /// rec.backward_in_place(&mask, &mut g).unwrap();
    /// assert_eq!(g, y);
    /// ```
    pub fn backward_in_place<T: Element>(&self, mask: &[u64], g: &mut [T]) -> Result<(), Error> {
        check_len(self.len, g.len())?;
        let (b, p) = (self.backend, self.p);
        if !self.training {
            let bits = match self.mode {
                Mode::Broadcast(shape) => shape.decisions().unwrap_or(usize::MAX),
                _ => self.len,
            };
            return check_mask(bits, mask.len());
        }
        match self.mode {
            Mode::Broadcast(shape) => b.broadcast_data(p, shape, Ok(mask), Data::InPlace(g)),
            Mode::Alpha => b.alpha_backward_data(p, Ok(mask), Data::InPlace(g)),
            Mode::Element | Mode::Fused { .. } => b.apply_mask_in_place(p, mask, g),
        }
    }

    /// [`backward_recompute`](Record::backward_recompute) overwriting the gradient `g` in
    /// place.
    ///
    /// ```
    /// # use simd_dropout::{Dropout, Seed};
    /// let mut layer = Dropout::new(0.5, Seed::new(1, 1)).unwrap();
    /// let (x, mut y) = ([1.0f32; 4], [0.0f32; 4]);
    /// let rec = layer.forward_no_mask(&x, &mut y).unwrap();
    /// let mut g = [1.0f32; 4];
    /// rec.backward_recompute_in_place(&mut g).unwrap();
    /// assert_eq!(g, y);
    /// ```
    pub fn backward_recompute_in_place<T: Element>(&self, g: &mut [T]) -> Result<(), Error> {
        check_len(self.len, g.len())?;
        if !self.training {
            return Ok(());
        }
        let (b, p, source) = (self.backend, self.p, Err((self.seed, self.offset)));
        match self.mode {
            Mode::Broadcast(shape) => b.broadcast_data(p, shape, source, Data::InPlace(g)),
            Mode::Alpha => b.alpha_backward_data(p, source, Data::InPlace(g)),
            Mode::Element | Mode::Fused { .. } => {
                b.forward_in_place_no_mask(p, self.seed, self.offset, g)
            }
        }
    }

    /// The backward pass of a fused call ([`Dropout::forward_fused`]) from its mask: the input
    /// gradient `gx` and the bias gradient `g_bias` (column sums of `gx` in row order). The
    /// residual's gradient is `gy` itself.
    ///
    /// ```
    /// use simd_dropout::{Dropout, Seed};
    /// let mut layer = Dropout::new(0.5, Seed::new(1, 1)).unwrap();
    /// let (x, bias, res) = ([1.0f32; 4], [0.0f32; 2], [0.0f32; 4]);
    /// let (mut y, mut mask) = ([0.0f32; 4], [0u64; 1]);
    /// let rec = layer.forward_fused(&x, &bias, &res, &mut y, &mut mask).unwrap();
    /// let (mut gx, mut gb) = ([0.0f32; 4], [0.0f32; 2]);
    /// rec.backward_fused(&mask, &[1.0; 4], &mut gx, &mut gb).unwrap();
    /// assert_eq!(gb[0], gx[0] + gx[2]);
    /// ```
    pub fn backward_fused<T: Element>(
        &self,
        mask: &[u64],
        gy: &[T],
        gx: &mut [T],
        g_bias: &mut [T],
    ) -> Result<(), Error> {
        check_len(self.len, gy.len())?;
        let p = if self.training { self.p } else { 0.0 };
        self.backend.fused_backward(p, mask, gy, gx, g_bias)
    }
}
