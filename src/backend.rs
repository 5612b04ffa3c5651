//! Which kernel runs: the one place where a backend is chosen and called.

use crate::element::Element;
use crate::job::{Bits, BitsMut, Data, Io, Rate, Shape, copy_bits, mask_words, write_bits};
use crate::kernels::portable::Portable;
use crate::kernels::{self, Map, Scale, WordJob};
use crate::ops::{Blocks, Strided, alpha, block, broadcast, element, fused, gaussian, strided};
use crate::parallel::{Split, for_pieces};
use crate::pcg::Words;
use crate::reference;
use crate::{Error, Seed};

#[cfg(target_arch = "x86_64")]
use crate::kernels::{avx2::Avx2, avx512::Avx512};

/// A kernel implementation: the scalar reference, the portable `wide` backend, or an x86_64
/// backend that this CPU has.
///
/// Every backend produces the same bits (the crate's determinism promise); they differ only
/// in speed. [`Backend::detect`] picks the fastest; the other constructors exist so that
/// tests and benchmarks can compare them. A `Backend` value can only be made on a CPU that
/// runs it, so every method is safe.
///
/// # Operations
///
/// Every operation has the same arguments: its own parameters (a [`Shape`], a bias), then
/// `p`, the stream (`seed`, `offset`), the elements ([`Io`] or [`Strided`]), and the mask:
///
/// | operation | forward | backward |
/// |---|---|---|
/// | element dropout (also DropConnect on a weight slice) | [`forward`](Backend::forward) | [`backward`](Backend::backward) |
/// | broadcast (channel, column, drop-path) | [`broadcast_forward`](Backend::broadcast_forward) | [`broadcast_backward`](Backend::broadcast_backward) |
/// | alpha dropout (SELU) | [`alpha_forward`](Backend::alpha_forward) | [`alpha_backward`](Backend::alpha_backward) |
/// | fused bias + dropout + residual | [`fused_forward`](Backend::fused_forward) | [`fused_backward`](Backend::fused_backward) |
/// | element dropout on strided views | [`strided_forward`](Backend::strided_forward) | [`strided_backward`](Backend::strided_backward) |
///
/// A forward writes the keep bits to `mask: Some(BitsMut)`, or nowhere with `None`. A
/// backward reads them from `mask: Some(Bits)`, or regenerates them from `(seed, offset)`
/// with `None` (then nothing needs storing). `Io::Out`, `Io::InPlace` and `Io::Uninit` choose
/// where the result goes.
///
/// ```
/// use simd_dropout::{Backend, Io, Seed};
/// let x = vec![1.0f32; 1000];
/// let (mut y1, mut y2) = (vec![0.0; 1000], vec![0.0; 1000]);
/// let seed = Seed::from_u64(1);
/// Backend::scalar().forward(0.5, seed, 0, Io::Out { x: &x, y: &mut y1 }, None)?;
/// Backend::detect().forward(0.5, seed, 0, Io::Out { x: &x, y: &mut y2 }, None)?;
/// assert_eq!(y1, y2);
/// # Ok::<(), simd_dropout::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backend {
    imp: Imp,
    /// Split large calls across rayon threads (feature `rayon`).
    parallel: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Imp {
    Scalar,
    Portable(Portable),
    #[cfg(target_arch = "x86_64")]
    Avx2(Avx2),
    #[cfg(target_arch = "x86_64")]
    Avx512(Avx512),
}

impl Backend {
    /// The fastest backend this CPU runs: AVX-512, else AVX2, where the CPU has them (detected
    /// at run time under `std`, by compile-time target features without it), else the
    /// portable one.
    ///
    /// ```
    /// println!("dropout kernels: {}", simd_dropout::Backend::detect().name());
    /// ```
    #[inline]
    pub fn detect() -> Backend {
        #[cfg(target_arch = "x86_64")]
        if let Some(b) = Self::avx512().or_else(Self::avx2) {
            return b;
        }
        Self::portable()
    }

    /// The scalar reference: the contract written plainly, one element at a time.
    pub const fn scalar() -> Backend {
        Backend::of(Imp::Scalar)
    }

    /// The portable backend on `wide` (SSE2 / NEON / simd128, chosen at compile time).
    pub const fn portable() -> Backend {
        Backend::of(Imp::Portable(Portable::new()))
    }

    /// The AVX2 + F16C backend, if this CPU has those features (always `None` off x86_64 and
    /// and under CI's `--cfg simd_dropout_cap="portable"`).
    ///
    /// ```
    /// if let Some(b) = simd_dropout::Backend::avx2() {
    ///     assert_eq!(b.name(), "avx2");
    /// }
    /// ```
    #[inline]
    pub fn avx2() -> Option<Backend> {
        #[cfg(target_arch = "x86_64")]
        return Avx2::new().map(|t| Backend::of(Imp::Avx2(t)));
        #[cfg(not(target_arch = "x86_64"))]
        None
    }

    /// The AVX-512 backend (F + DQ + BW, with AVX2 and F16C), if this CPU has those features
    /// (always `None` off x86_64 and under CI's `--cfg simd_dropout_cap`).
    ///
    /// ```
    /// if let Some(b) = simd_dropout::Backend::avx512() {
    ///     assert_eq!(b.name(), "avx512");
    /// }
    /// ```
    #[inline]
    pub fn avx512() -> Option<Backend> {
        #[cfg(target_arch = "x86_64")]
        return Avx512::new().map(|t| Backend::of(Imp::Avx512(t)));
        #[cfg(not(target_arch = "x86_64"))]
        None
    }

    /// Every backend this CPU runs, slowest first.
    ///
    /// ```
    /// let all: Vec<_> = simd_dropout::Backend::available().collect();
    /// assert!(all.contains(&simd_dropout::Backend::scalar()));
    /// ```
    pub fn available() -> impl Iterator<Item = Backend> {
        [
            Some(Self::scalar()),
            Some(Self::portable()),
            Self::avx2(),
            Self::avx512(),
        ]
        .into_iter()
        .flatten()
    }

    /// The same kernels, one thread per call.
    pub(crate) const fn serial(self) -> Backend {
        Backend {
            imp: self.imp,
            parallel: false,
        }
    }

    const fn of(imp: Imp) -> Backend {
        Backend {
            imp,
            parallel: false,
        }
    }

    /// The same kernels, with calls of 64Ki elements or more split across the threads of the
    /// rayon pool the call runs in (the pool of an enclosing `ThreadPool::install`, else
    /// rayon's global pool). The output bits and mask words are those of the serial call, for
    /// any number of threads.
    ///
    /// ```
    /// use simd_dropout::{Backend, Io, Seed};
    /// let x = vec![1.0f32; 1 << 20];
    /// let (mut a, mut b) = (vec![0.0; 1 << 20], vec![0.0; 1 << 20]);
    /// let seed = Seed::from_u64(1);
    /// Backend::detect().forward(0.1, seed, 0, Io::Out { x: &x, y: &mut a }, None)?;
    /// Backend::detect().parallel().forward(0.1, seed, 0, Io::Out { x: &x, y: &mut b }, None)?;
    /// assert_eq!(a, b);
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    #[cfg(feature = "rayon")]
    pub const fn parallel(self) -> Backend {
        Backend {
            imp: self.imp,
            parallel: true,
        }
    }

    /// Whether calls are split across rayon threads.
    pub(crate) const fn is_parallel(self) -> bool {
        self.parallel
    }

    /// A short name: `"scalar"`, `"portable"`, `"avx2"` or `"avx512"`.
    pub fn name(self) -> &'static str {
        match self.imp {
            Imp::Scalar => "scalar",
            Imp::Portable(_) => "portable",
            #[cfg(target_arch = "x86_64")]
            Imp::Avx2(_) => "avx2",
            #[cfg(target_arch = "x86_64")]
            Imp::Avx512(_) => "avx512",
        }
    }

    // ---- The operations. Each checks everything before it writes anything.

    /// Element dropout: element `i` is kept iff word `offset + i` of the stream `seed` is at
    /// least `round(p * 2^32)`; a kept element becomes `x * (1 / (1 - p))` (one multiply,
    /// one rounding), a dropped one `+0.0`. The keep bits go to `mask` when given.
    ///
    /// Errors (nothing written): `p` NaN or outside `[0, 1]`; `y` of another length than
    /// `x`; a mask too short for its bits.
    ///
    /// ```
    /// use simd_dropout::{mask_words, Backend, BitsMut, Io, Seed};
    /// let x = [1.0f32, 2.0, 3.0, 4.0];
    /// let mut y = [0.0f32; 4];
    /// let mut mask = vec![0u64; mask_words(x.len())];
    /// let io = Io::Out { x: &x, y: &mut y };
    /// Backend::detect().forward(0.5, Seed::from_u64(7), 0, io, Some(BitsMut::new(&mut mask)))?;
    /// for i in 0..4 {
    ///     let kept = mask[0] >> i & 1 == 1;
    ///     assert_eq!(y[i], if kept { x[i] * 2.0 } else { 0.0 });
    /// }
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    pub fn forward<T: Element>(
        self,
        p: f64,
        seed: Seed,
        offset: u64,
        io: Io<'_, T>,
        mask: Option<BitsMut<'_>>,
    ) -> Result<(), Error> {
        let rate = Rate::new(p)?;
        let data = io.data()?;
        check_out(&mask, data.len())?;
        element::forward(self, rate, (seed, offset), data, mask);
        Ok(())
    }

    /// The backward pass of [`forward`](Backend::forward) (`x` = the output gradient, `y` =
    /// the input gradient): `gx = keep ? gy * scale : +0.0`, with the keep bits read from
    /// `mask`, or regenerated from `(seed, offset)` when `mask` is `None` (nothing stored).
    /// Also the replay of a forward. When `round(p * 2^32) = 2^32` (`p = 1`, and every
    /// `p >= 1 - 2^-33`) every element is dropped, whatever the mask.
    ///
    /// ```
    /// use simd_dropout::{Backend, Bits, Io, Seed};
    /// let gy = [1.0f32; 4];
    /// let mut gx = [9.0f32; 4];
    /// let io = Io::Out { x: &gy, y: &mut gx };
    /// Backend::detect().backward(0.5, Seed::default(), 0, io, Some(Bits::new(&[0b1010])))?;
    /// assert_eq!(gx, [0.0, 2.0, 0.0, 2.0]);
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    pub fn backward<T: Element>(
        self,
        p: f64,
        seed: Seed,
        offset: u64,
        io: Io<'_, T>,
        mask: Option<Bits<'_>>,
    ) -> Result<(), Error> {
        let rate = Rate::new(p)?;
        let data = io.data()?;
        check_in(&mask, data.len())?;
        element::backward(self, rate, (seed, offset), data, mask);
        Ok(())
    }

    /// Broadcast (structured) dropout of the elements viewed as `shape`: one decision per
    /// `(outer, inner)` pair, shared by every `mid`; decision `j = o * inner + k` uses word
    /// `offset + j` and mask bit `j`. The call draws `shape.decisions()` words.
    ///
    /// Errors: as [`forward`](Backend::forward), and `ShapeMismatch` when the shape does not
    /// describe `x` or overflows.
    ///
    /// ```
    /// use simd_dropout::{Backend, BitsMut, Io, Seed, Shape};
    /// // Column dropout on a 2x3 matrix: a dropped column is zero in every row.
    /// let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
    /// let (mut y, mut mask) = ([0.0f32; 6], [0u64; 1]);
    /// let io = Io::Out { x: &x, y: &mut y };
    /// Backend::detect().broadcast_forward(Shape::columns(2, 3), 0.5, Seed::from_u64(4), 0, io, Some(BitsMut::new(&mut mask)))?;
    /// for c in 0..3 {
    ///     let kept = (mask[0] >> c) & 1 == 1;
    ///     assert_eq!([y[c], y[3 + c]], if kept { [2.0 * x[c], 2.0 * x[3 + c]] } else { [0.0; 2] });
    /// }
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn broadcast_forward<T: Element>(
        self,
        shape: Shape,
        p: f64,
        seed: Seed,
        offset: u64,
        io: Io<'_, T>,
        mask: Option<BitsMut<'_>>,
    ) -> Result<(), Error> {
        let rate = Rate::new(p)?;
        let data = io.data()?;
        let decisions = shape.check("x", data.len())?;
        check_out(&mask, decisions)?;
        broadcast::forward(self, shape, rate, (seed, offset), data, mask);
        Ok(())
    }

    /// The backward pass of [`broadcast_forward`](Backend::broadcast_forward), from its mask
    /// or regenerated from `(seed, offset)`.
    ///
    /// ```
    /// use simd_dropout::{Backend, Bits, Io, Seed, Shape};
    /// let gy = [1.0f32; 4];
    /// let mut gx = [0.0f32; 4];
    /// // Two channels of two elements; channel 0 kept, channel 1 dropped.
    /// let io = Io::Out { x: &gy, y: &mut gx };
    /// Backend::detect().broadcast_backward(Shape::channels(1, 2, 2), 0.5, Seed::default(), 0, io, Some(Bits::new(&[0b01])))?;
    /// assert_eq!(gx, [2.0, 2.0, 0.0, 0.0]);
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn broadcast_backward<T: Element>(
        self,
        shape: Shape,
        p: f64,
        seed: Seed,
        offset: u64,
        io: Io<'_, T>,
        mask: Option<Bits<'_>>,
    ) -> Result<(), Error> {
        let rate = Rate::new(p)?;
        let data = io.data()?;
        let decisions = shape.check("x", data.len())?;
        check_in(&mask, decisions)?;
        broadcast::backward(self, shape, rate, (seed, offset), data, mask);
        Ok(())
    }

    /// Alpha dropout (for SELU networks), `p` in `[0, 1)`: with `alpha = 1.7580993408473766`,
    /// `a = 1 / sqrt((1 - p) (1 + p alpha^2))`, `b = a alpha p`, `c = -a alpha (1 - p)`, a
    /// kept element becomes `a * x + b` (two roundings), a dropped one `c`. Keeps mean 0 and
    /// variance 1 for standard normal input.
    ///
    /// ```
    /// use simd_dropout::{Backend, Io, Seed};
    /// let x = [0.5f32; 100];
    /// let mut y = [0.0f32; 100];
    /// let b = Backend::detect();
    /// b.alpha_forward(0.1, Seed::from_u64(3), 0, Io::Out { x: &x, y: &mut y }, None)?;
    /// assert!(b.alpha_forward(1.0, Seed::from_u64(3), 0, Io::Out { x: &x, y: &mut y }, None).is_err());
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    pub fn alpha_forward<T: Element>(
        self,
        p: f64,
        seed: Seed,
        offset: u64,
        io: Io<'_, T>,
        mask: Option<BitsMut<'_>>,
    ) -> Result<(), Error> {
        let k = alpha::Alpha::new(p)?;
        let data = io.data()?;
        check_out(&mask, data.len())?;
        alpha::forward(self, k, (seed, offset), data, mask);
        Ok(())
    }

    /// The backward pass of [`alpha_forward`](Backend::alpha_forward):
    /// `gx = keep ? a * gy : +0.0`, from its mask or regenerated from `(seed, offset)`.
    ///
    /// ```
    /// use simd_dropout::{Backend, Bits, Io, Seed};
    /// let mut gx = [1.0f32; 2];
    /// let io = Io::Out { x: &[1.0f32, 1.0], y: &mut gx };
    /// Backend::detect().alpha_backward(0.0, Seed::default(), 0, io, Some(Bits::new(&[0b01])))?;
    /// assert_eq!(gx, [1.0, 0.0]); // p = 0: a = 1
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    pub fn alpha_backward<T: Element>(
        self,
        p: f64,
        seed: Seed,
        offset: u64,
        io: Io<'_, T>,
        mask: Option<Bits<'_>>,
    ) -> Result<(), Error> {
        let k = alpha::Alpha::new(p)?;
        let data = io.data()?;
        check_in(&mask, data.len())?;
        alpha::backward(self, k, (seed, offset), data, mask);
        Ok(())
    }

    /// DropBlock (Ghiasi et al. 2018; torchvision `drop_block2d` / `drop_block3d`) on the
    /// feature maps `blocks` describes: each block corner is a seed with probability
    /// `gamma = p * h * w / (bs^2 * (h - bs + 1) * (w - bs + 1))` (torchvision's formula;
    /// `d`, `bs^3` in 3-D), every seed drops the `bs x bs` (`x bs`) block below and to the
    /// right of it, and the kept elements are scaled by `numel / (1e-6 + kept)` over the
    /// whole call. `p = 0` is the identity. The mask has one bit per element (set = kept),
    /// and `offset` advances by [`Blocks::candidates`] words per call.
    ///
    /// Channels-last geometries ([`Blocks::nhwc`], [`Blocks::ndhwc`]) place each map's bits
    /// `c` elements apart, one at a time: pass a mask there, which the kernels then apply in
    /// one pass (without one, the elements themselves are visited `c` apart, which caches
    /// poorly).
    ///
    /// Errors: as [`forward`](Backend::forward); `ShapeMismatch` when `blocks` does not
    /// describe `x`; `InvalidBlock` for a block size of 0 (even for an empty map).
    ///
    /// ```
    /// use simd_dropout::{mask_words, Backend, Blocks, BitsMut, Io, Seed};
    /// let blocks = Blocks::nchw(2, 3, 10, 10, 3);
    /// let x = vec![1.0f32; 600];
    /// let (mut y, mut mask) = (vec![0.0f32; 600], vec![0u64; mask_words(600)]);
    /// let io = Io::Out { x: &x, y: &mut y };
    /// Backend::detect().block_forward(blocks, 0.2, Seed::from_u64(1), 0, io, Some(BitsMut::new(&mut mask)))?;
    /// let kept = mask.iter().map(|w| w.count_ones() as usize).sum::<usize>();
    /// let scale = (600.0 / (1e-6 + kept as f64)) as f32;
    /// for i in 0..600 {
    ///     let bit = (mask[i / 64] >> (i % 64)) & 1 == 1;
    ///     assert_eq!(y[i], if bit { scale } else { 0.0 });
    /// }
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    pub fn block_forward<T: Element>(
        self,
        blocks: Blocks,
        p: f64,
        seed: Seed,
        offset: u64,
        io: Io<'_, T>,
        mask: Option<BitsMut<'_>>,
    ) -> Result<(), Error> {
        Rate::new(p)?;
        let data = io.data()?;
        let g = blocks.check(data.len())?;
        check_out(&mask, data.len())?;
        block::forward(self, g, p, (seed, offset), data, mask)
    }

    /// The backward pass of [`block_forward`](Backend::block_forward): `gx = keep ? gy * s :
    /// +0.0` with the block mask, from the stored mask (and the scale its kept bits give) or,
    /// with `None`, computed again from `(seed, offset)`.
    ///
    /// ```
    /// use simd_dropout::{mask_words, Backend, Bits, BitsMut, Blocks, Io, Seed};
    /// let (b, blocks, seed) = (Backend::detect(), Blocks::ncdhw(1, 2, 6, 6, 6, 2), Seed::from_u64(9));
    /// let mut mask = vec![0u64; mask_words(432)];
    /// let mut y = vec![1.0f32; 432];
    /// b.block_forward(blocks, 0.3, seed, 0, Io::InPlace(&mut y), Some(BitsMut::new(&mut mask)))?;
    /// let (mut g1, mut g2) = (vec![1.0f32; 432], vec![1.0f32; 432]);
    /// b.block_backward(blocks, 0.3, seed, 0, Io::InPlace(&mut g1), Some(Bits::new(&mask)))?;
    /// b.block_backward(blocks, 0.3, seed, 0, Io::InPlace(&mut g2), None)?;
    /// assert_eq!(g1, y);
    /// assert_eq!(g2, y);
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    pub fn block_backward<T: Element>(
        self,
        blocks: Blocks,
        p: f64,
        seed: Seed,
        offset: u64,
        io: Io<'_, T>,
        mask: Option<Bits<'_>>,
    ) -> Result<(), Error> {
        Rate::new(p)?;
        let data = io.data()?;
        let g = blocks.check(data.len())?;
        check_in(&mask, data.len())?;
        block::backward(self, g, p, (seed, offset), data, mask)
    }

    /// Gaussian (multiplicative) dropout (Srivastava et al. 2014; Keras `GaussianDropout`),
    /// `p` in `[0, 1)`: `y = x * (1 + sigma * z)` with `sigma = sqrt(p / (1 - p))` and `z` a
    /// standard normal variate per element, so every element is kept and `E[y] = x`. The
    /// variate of stream position `offset + i` is fixed by the [contract](crate::contract)
    /// (a Box-Muller transform in IEEE arithmetic on the word pair containing that position),
    /// the same on every backend and architecture. `p = 0` is the identity and draws nothing.
    ///
    /// There is no 1-bit mask: the backward regenerates the noise. The multipliers
    /// themselves are the forward of ones (`1 * m` is exact).
    ///
    /// ```
    /// use simd_dropout::{Backend, Io, Seed};
    /// let b = Backend::detect();
    /// let (seed, x) = (Seed::from_u64(3), [2.0f32; 1000]);
    /// let mut y = [0.0f32; 1000];
    /// b.gaussian_forward(0.2, seed, 0, Io::Out { x: &x, y: &mut y })?;
    /// let mean = y.iter().sum::<f32>() / 1000.0;
    /// assert!((mean - 2.0).abs() < 0.1); // sigma = 0.5: E[y] = x, sd(y) = 1
    ///
    /// let mut noise = [1.0f32; 1000]; // the multipliers 1 + sigma * z
    /// b.gaussian_forward(0.2, seed, 0, Io::InPlace(&mut noise))?;
    /// assert!(x.iter().zip(&noise).zip(&y).all(|((x, m), y)| x * m == *y));
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    pub fn gaussian_forward<T: Element>(
        self,
        p: f64,
        seed: Seed,
        offset: u64,
        io: Io<'_, T>,
    ) -> Result<(), Error> {
        let g = gaussian::Gaussian::new(p)?;
        gaussian::apply(self, g, (seed, offset), io.data()?);
        Ok(())
    }

    /// The backward pass of [`gaussian_forward`](Backend::gaussian_forward):
    /// `gx = gy * (1 + sigma * z)` with the forward's noise, regenerated from
    /// `(seed, offset)`.
    ///
    /// ```
    /// use simd_dropout::{Backend, Io, Seed};
    /// let (b, seed) = (Backend::detect(), Seed::from_u64(8));
    /// let mut m = [1.0f64; 10];
    /// b.gaussian_forward(0.5, seed, 77, Io::InPlace(&mut m))?;
    /// let mut g = [3.0f64; 10];
    /// b.gaussian_backward(0.5, seed, 77, Io::InPlace(&mut g))?;
    /// assert!(g.iter().zip(&m).all(|(g, m)| *g == 3.0 * m));
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    pub fn gaussian_backward<T: Element>(
        self,
        p: f64,
        seed: Seed,
        offset: u64,
        io: Io<'_, T>,
    ) -> Result<(), Error> {
        self.gaussian_forward(p, seed, offset, io)
    }

    /// Fused bias + dropout + residual of a transformer block, the elements row-major
    /// `[rows][cols]` with `cols = bias.len()`: kept `y = residual + (x + bias) * scale`
    /// (each operation one rounding, in that order), dropped `y = residual` bit for bit.
    /// Element `i` uses word `offset + i`.
    ///
    /// Errors: as [`forward`](Backend::forward); `ShapeMismatch` when `bias` is empty while
    /// `x` is not, or its length does not divide `x`'s; `LengthMismatch` for `residual`.
    ///
    /// ```
    /// use simd_dropout::{Backend, BitsMut, Io, Seed};
    /// let (x, bias, residual) = ([1.0f32; 6], [0.5f32, 0.0, -1.0], [10.0f32; 6]);
    /// let (mut y, mut mask) = ([0.0f32; 6], [0u64; 1]);
    /// let io = Io::Out { x: &x, y: &mut y };
    /// Backend::detect().fused_forward(&bias, &residual, 0.5, Seed::from_u64(1), 0, io, Some(BitsMut::new(&mut mask)))?;
    /// for i in 0..6 {
    ///     let kept = (mask[0] >> i) & 1 == 1;
    ///     assert_eq!(y[i], if kept { 10.0 + (1.0 + bias[i % 3]) * 2.0 } else { 10.0 });
    /// }
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn fused_forward<T: Element>(
        self,
        bias: &[T],
        residual: &[T],
        p: f64,
        seed: Seed,
        offset: u64,
        io: Io<'_, T>,
        mask: Option<BitsMut<'_>>,
    ) -> Result<(), Error> {
        let rate = Rate::new(p)?;
        let data = io.data()?;
        fused::check_rows("bias", data.len(), bias.len())?;
        crate::job::check_len("residual", data.len(), residual.len())?;
        check_out(&mask, data.len())?;
        fused::forward(self, (bias, residual), rate, (seed, offset), data, mask);
        Ok(())
    }

    /// The backward pass of [`fused_forward`](Backend::fused_forward): `gx = keep ? gy *
    /// scale : +0.0`, and `g_bias[c]` the sum of `gx[r][c]` over the rows in increasing `r`,
    /// one accumulator per column (f32, or f64 for f64), rounded once. The residual's
    /// gradient is `gy` itself.
    ///
    /// ```
    /// use simd_dropout::{Backend, Bits, Io, Seed};
    /// let gy = [1.0f32; 6];
    /// let (mut gx, mut g_bias) = ([0.0f32; 6], [0.0f32; 3]);
    /// let io = Io::Out { x: &gy, y: &mut gx };
    /// Backend::detect().fused_backward(&mut g_bias, 0.5, Seed::default(), 0, io, Some(Bits::new(&[0b011_101])))?;
    /// assert_eq!(gx, [2.0, 0.0, 2.0, 2.0, 2.0, 0.0]);
    /// assert_eq!(g_bias, [4.0, 2.0, 2.0]);
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn fused_backward<T: Element>(
        self,
        g_bias: &mut [T],
        p: f64,
        seed: Seed,
        offset: u64,
        io: Io<'_, T>,
        mask: Option<Bits<'_>>,
    ) -> Result<(), Error> {
        let rate = Rate::new(p)?;
        let n = io.len();
        io.check()?;
        fused::check_rows("g_bias", n, g_bias.len())?;
        check_in(&mask, n)?;
        fused::backward(self, g_bias, rate, (seed, offset), io, mask);
        Ok(())
    }

    /// Element dropout on strided views: each element uses the word of its row-major
    /// position in the full logical tensor (see [`View`](crate::View)), so the bits equal
    /// those of [`forward`](Backend::forward) on the contiguous full tensor. Mask bit `n`
    /// (from the mask's start) is the view's `n`-th element in row-major order.
    ///
    /// Errors: as [`forward`](Backend::forward); `InvalidView` when a view reaches outside its
    /// buffer, when the input and output views cover different positions, or when the
    /// written view fails the overlap rule (see [`View`](crate::View): the sorted-stride
    /// test, which refuses every view with two elements at one index and also some rare
    /// hand-made views without). Elements of `y` outside its view are never written.
    ///
    /// ```
    /// use simd_dropout::{Backend, Io, Seed, Strided, View};
    /// let seed = Seed::from_u64(9);
    /// // A 3x4 matrix stored column-major, and its row-major copy.
    /// let col_major: Vec<f32> = (0..12).map(|i| i as f32).collect();
    /// let row_major: Vec<f32> = (0..12).map(|i| ((i % 4) * 3 + i / 4) as f32).collect();
    /// let view = View::strided(&[3, 4], &[1, 3], 0)?;
    /// let (mut a, mut b) = (vec![0.0f32; 12], vec![0.0f32; 12]);
    /// let io = Strided::Out { x: &col_major, x_view: view, y: &mut a, y_view: view.compact() };
    /// Backend::detect().strided_forward(0.5, seed, 0, io, None)?;
    /// Backend::detect().forward(0.5, seed, 0, Io::Out { x: &row_major, y: &mut b }, None)?;
    /// assert_eq!(a, b);
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    pub fn strided_forward<T: Element>(
        self,
        p: f64,
        seed: Seed,
        offset: u64,
        io: Strided<'_, T>,
        mask: Option<BitsMut<'_>>,
    ) -> Result<(), Error> {
        let rate = Rate::new(p)?;
        io.check()?;
        check_out(&mask, io.len())?;
        strided::run(self, rate, (seed, offset), io, strided::Mask::Out(mask));
        Ok(())
    }

    /// The backward pass of [`strided_forward`](Backend::strided_forward), from its mask or
    /// regenerated from `(seed, offset)`.
    ///
    /// ```
    /// use simd_dropout::{Backend, Seed, Strided, View};
    /// let view = View::contiguous(&[2, 3])?;
    /// let mut g = [1.0f32; 6];
    /// Backend::detect().strided_backward(0.0, Seed::default(), 0, Strided::InPlace { xy: &mut g, view }, None)?;
    /// assert_eq!(g, [1.0; 6]);
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    pub fn strided_backward<T: Element>(
        self,
        p: f64,
        seed: Seed,
        offset: u64,
        io: Strided<'_, T>,
        mask: Option<Bits<'_>>,
    ) -> Result<(), Error> {
        let rate = Rate::new(p)?;
        io.check()?;
        check_in(&mask, io.len())?;
        strided::run(self, rate, (seed, offset), io, strided::Mask::In(mask));
        Ok(())
    }

    /// Only the keep bits of `len` elements: the bits [`forward`](Backend::forward) writes.
    ///
    /// ```
    /// use simd_dropout::{Backend, BitsMut, Seed};
    /// let mut mask = [0u64; 2];
    /// Backend::detect().fill_mask(0.0, Seed::default(), 0, 100, BitsMut::new(&mut mask))?;
    /// assert_eq!(mask, [!0, (1 << 36) - 1]);
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    pub fn fill_mask(
        self,
        p: f64,
        seed: Seed,
        offset: u64,
        len: usize,
        mask: BitsMut<'_>,
    ) -> Result<(), Error> {
        let rate = Rate::new(p)?;
        mask.check(len)?;
        self.generate_at(seed, offset, rate, Data::<f32>::MaskOnly(len), Some(mask));
        Ok(())
    }

    /// Expands mask bits into the values a forward multiplies by: `out[i] = bit i ? scale :
    /// +0.0` in `T` (for frameworks that multiply by a mask tensor).
    ///
    /// ```
    /// use simd_dropout::{Backend, Bits};
    /// let mut m = [0.0f32; 3];
    /// Backend::detect().expand_mask(0.5, Bits::new(&[0b101]), &mut m)?;
    /// assert_eq!(m, [2.0, 0.0, 2.0]);
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    pub fn expand_mask<T: Element>(
        self,
        p: f64,
        mask: Bits<'_>,
        out: &mut [T],
    ) -> Result<(), Error> {
        let rate = Rate::new(p)?;
        mask.check(out.len())?;
        element::expand(self, rate, mask, out);
        Ok(())
    }

    // ---- Dispatch: the one place where a kernel is chosen and called.

    /// Forward dropout on a checked job whose mask (if any) starts at bit `mask.start`.
    pub(crate) fn generate_at<T: Element>(
        self,
        seed: Seed,
        offset: u64,
        rate: Rate,
        data: Data<'_, T>,
        mask: Option<BitsMut<'_>>,
    ) {
        self.generate_map_at(seed, offset, rate, &Scale::new(&rate), data, mask)
    }

    /// [`Backend::generate_at`] with `map`'s elements (a variant's forward), in the pass that
    /// draws the keep bits.
    pub(crate) fn generate_map_at<T: Element, M: Map<T>>(
        self,
        seed: Seed,
        offset: u64,
        rate: Rate,
        map: &M,
        data: Data<'_, T>,
        mask: Option<BitsMut<'_>>,
    ) {
        let Some(m) = mask else {
            return self.generate(seed, offset, rate, map, data, None);
        };
        let n = data.len();
        if n == 0 {
            // No bits to write (and the start may lie past the buffer).
            return;
        }
        let (w0, shift) = (m.start / 64, m.start % 64);
        if shift == 0 {
            return self.generate(seed, offset, rate, map, data, Some(&mut m.words[w0..]));
        }
        // Up to the mask's next word boundary through one staged word, then aligned.
        let head = (64 - shift).min(n);
        let (first, rest) = data.split_at(head);
        let mut staged = [0u64; 1];
        self.serial()
            .generate(seed, offset, rate, map, first, Some(&mut staged));
        write_bits(m.words, m.start, &staged, head);
        if n > head {
            let rest_offset = offset.wrapping_add(head as u64);
            let words = Some(&mut m.words[w0 + 1..]);
            self.generate(seed, rest_offset, rate, &map.from(head), rest, words);
        }
    }

    /// Forward dropout with the mask (if any) at bit 0 of `mask`.
    fn generate<T: Element, M: Map<T>>(
        self,
        seed: Seed,
        offset: u64,
        rate: Rate,
        map: &M,
        data: Data<'_, T>,
        mask: Option<&mut [u64]>,
    ) {
        // Only the AVX-512 arm asks whether the call streams to DRAM.
        #[cfg(target_arch = "x86_64")]
        let large = kernels::large::<T>(data.len());
        let run = |first: usize, (d, m): (Data<'_, T>, Option<&mut [u64]>)| {
            let off = offset.wrapping_add(first as u64);
            let map = &map.from(first);
            match self.imp {
                Imp::Scalar => reference::generate(seed, off, rate, map, d, m),
                Imp::Portable(k) => k.generate(seed, off, rate, map, d, m, false),
                // Streaming stores slowed this loop with AVX2 (`kernels::generate`'s `dram`).
                #[cfg(target_arch = "x86_64")]
                Imp::Avx2(k) => k.generate(seed, off, rate, map, d, m, false),
                #[cfg(target_arch = "x86_64")]
                Imp::Avx512(k) => {
                    let dram = large && k.drawing_in_dram();
                    k.generate(seed, off, rate, map, d, m, dram)
                }
            }
        };
        for_pieces(self.parallel, (data, mask), 64, &run);
    }

    /// Applies mask bits from any start bit to a checked job. At a threshold of 2^32 nothing
    /// is kept, whatever the bits say.
    pub(crate) fn apply_at<T: Element>(self, mask: Bits<'_>, rate: Rate, mut data: Data<'_, T>) {
        if rate.drops_all() {
            return data.fill(T::ZERO);
        }
        if data.len() == 0 {
            // No bits to read (and the start may lie past the buffer).
            return;
        }
        let (w0, shift) = (mask.start / 64, mask.start % 64);
        if shift == 0 {
            return self.apply(&mask.words[w0..], rate, data);
        }
        // Realign through a staged chunk of words.
        const CHUNK: usize = 4096;
        let large = kernels::large::<T>(data.len());
        let map = Scale::new(&rate);
        let run = |first: usize, mut d: Data<'_, T>| {
            let n = d.len();
            let mut staged = [0u64; CHUNK / 64];
            for at in (0..n).step_by(CHUNK) {
                let len = (n - at).min(CHUNK);
                let words = &mut staged[..mask_words(len)];
                copy_bits(mask.words, mask.start + first + at, len, words);
                self.serial().apply_in(words, &map, d.sub(at, len), large);
            }
        };
        for_pieces(self.parallel, data, CHUNK, &run);
    }

    /// Applies mask words from bit 0 of `mask`.
    pub(crate) fn apply<T: Element>(self, mask: &[u64], rate: Rate, data: Data<'_, T>) {
        let large = kernels::large::<T>(data.len());
        self.apply_in(mask, &Scale::new(&rate), data, large)
    }

    /// `map`'s elements (plain dropout's: [`Scale`]) with keep bits from bit 0 of `mask`, on
    /// a part of a call whose whole output is `large` ([`kernels::large`]), which decides the
    /// kind of store.
    pub(crate) fn apply_in<T: Element, M: Map<T>>(
        self,
        mask: &[u64],
        map: &M,
        data: Data<'_, T>,
        large: bool,
    ) {
        let run = |first: usize, (d, m): (Data<'_, T>, &[u64])| {
            let map = &map.from(first);
            match self.imp {
                Imp::Scalar => reference::apply(m, map, d),
                Imp::Portable(k) => k.apply(m, map, d, large),
                #[cfg(target_arch = "x86_64")]
                Imp::Avx2(k) => k.apply(m, map, d, large),
                #[cfg(target_arch = "x86_64")]
                Imp::Avx512(k) => k.apply(m, map, d, large),
            }
        };
        for_pieces(self.parallel, (data, mask), 64, &run);
    }

    /// Runs `job` on the raw words of `seed` from `offset` on, compiled for this backend's
    /// instruction set (the scalar reference draws them one by one).
    pub(crate) fn run_words<J: WordJob>(self, seed: Seed, offset: u64, job: J) {
        match self.imp {
            Imp::Scalar => job.run(&mut Words::new(seed, offset)),
            Imp::Portable(k) => k.run_words(seed, offset, job),
            #[cfg(target_arch = "x86_64")]
            Imp::Avx2(k) => k.run_words(seed, offset, job),
            #[cfg(target_arch = "x86_64")]
            Imp::Avx512(k) => k.run_words(seed, offset, job),
        }
    }

    /// Runs `f` compiled for this backend's instruction set (safe code only: its loops get
    /// auto-vectorized with the wider registers).
    #[inline]
    pub(crate) fn with_isa<R>(self, f: impl FnOnce() -> R) -> R {
        match self.imp {
            #[cfg(target_arch = "x86_64")]
            Imp::Avx2(k) => k.run(f),
            #[cfg(target_arch = "x86_64")]
            Imp::Avx512(k) => k.run(f),
            _ => f(),
        }
    }

    /// `run(first, piece)` over pieces of `job` (cut at multiples of `unit`), in parallel for
    /// a parallel backend.
    pub(crate) fn pieces<J: Split>(self, job: J, unit: usize, run: &(impl Fn(usize, J) + Sync)) {
        for_pieces(self.parallel, job, unit, run)
    }
}

/// `MaskTooShort` unless an output mask holds `n` bits from its start.
fn check_out(mask: &Option<BitsMut<'_>>, n: usize) -> Result<(), Error> {
    mask.as_ref().map_or(Ok(()), |m| m.check(n))
}

/// `MaskTooShort` unless an input mask holds `n` bits from its start.
fn check_in(mask: &Option<Bits<'_>>, n: usize) -> Result<(), Error> {
    mask.as_ref().map_or(Ok(()), |m| m.check(n))
}

impl Default for Backend {
    /// [`Backend::detect`].
    fn default() -> Self {
        Self::detect()
    }
}
