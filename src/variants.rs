//! The variants of SPEC section 5: broadcast (structured) dropout, DropConnect, alpha dropout,
//! and fused bias + dropout + residual.
//!
//! Decisions come in chunks of 4096 from the vectorized mask kernel (or from a stored mask),
//! and rows go through the vectorized apply kernel wherever the variant's arithmetic is
//! plain dropout's; alpha dropout and the fused block do their element arithmetic in plain
//! code, in the order SPEC fixes.

use crate::backend::Backend;
use crate::element::Element;
use crate::kernels::Data;
use crate::ops::{check_len, check_mask};
use crate::reference::Rate;
use crate::{mask_words, Error, Seed};

/// Decisions per chunk: 64 mask words on the stack.
const CHUNK: usize = 4096;
const CHUNK_WORDS: usize = CHUNK / 64;
const ONES: [u64; CHUNK_WORDS] = [!0; CHUNK_WORDS];

/// Where keep decisions come from.
#[derive(Clone, Copy)]
enum Decisions<'a> {
    /// Drawn from the stream: decision `j` uses word `offset + j`.
    Stream {
        backend: Backend,
        seed: Seed,
        offset: u64,
        rate: Rate,
    },
    /// Read from a stored mask: decision `j` is bit `j`.
    Mask(&'a [u64]),
}

impl Decisions<'_> {
    /// Decisions `j0 .. j0 + len` (`len <= CHUNK`) into `out`, decision `j0` at bit 0.
    fn fill(&self, j0: usize, len: usize, out: &mut [u64; CHUNK_WORDS]) {
        let words = &mut out[..mask_words(len)];
        match *self {
            Decisions::Stream {
                backend,
                seed,
                offset,
                rate,
            } => backend.serial().generate::<f32>(
                seed,
                offset.wrapping_add(j0 as u64),
                rate,
                Data::None(len),
                Some(words),
            ),
            Decisions::Mask(mask) => copy_bits(mask, j0, len, words),
        }
    }
}

/// Bits `start .. start + len` of `src` into `out` (bit 0 of `out` = bit `start`), zero past
/// `len`. `src` holds at least `start + len` bits.
fn copy_bits(src: &[u64], start: usize, len: usize, out: &mut [u64]) {
    let (w0, shift) = (start / 64, start % 64);
    for (i, o) in out.iter_mut().enumerate() {
        let lo = src[w0 + i] >> shift;
        let hi = match (shift, src.get(w0 + i + 1)) {
            (0, _) | (_, None) => 0,
            (_, Some(&w)) => w << (64 - shift),
        };
        *o = lo | hi;
    }
    if let (Some(last), rem @ 1..) = (out.last_mut(), len % 64) {
        *last &= (1u64 << rem) - 1;
    }
}

/// A row-major `[outer][mid][inner]` view for broadcast (structured) dropout: one decision per
/// `(outer, inner)` pair, shared by every `mid`. Decision `o * inner + k` uses word
/// `offset + o * inner + k`; the mask has `outer * inner` bits.
///
/// ```
/// use simd_dropout::Shape;
/// // Channel dropout on NCHW [2][3][4][4]: one decision per (n, c).
/// assert_eq!(Shape::channels(2, 3, 16), Shape::new(6, 16, 1));
/// // Column ("node") dropout on a [rows][cols] matrix: one decision per column.
/// assert_eq!(Shape::columns(5, 7), Shape::new(1, 5, 7));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shape {
    /// Groups with independent decisions (batch, or batch x channels).
    pub outer: usize,
    /// Elements that share a decision (spatial positions, rows).
    pub mid: usize,
    /// Decisions per group, innermost (channels-last, columns).
    pub inner: usize,
}

impl Shape {
    /// `[outer][mid][inner]`.
    ///
    /// ```
    /// assert_eq!(simd_dropout::Shape::new(2, 3, 4).decisions(), Some(8));
    /// ```
    pub const fn new(outer: usize, mid: usize, inner: usize) -> Self {
        Shape { outer, mid, inner }
    }

    /// Channel dropout on NCHW (`spatial = H * W`): drops whole feature maps.
    ///
    /// ```
    /// assert_eq!(simd_dropout::Shape::channels(8, 64, 49).decisions(), Some(512));
    /// ```
    pub const fn channels(n: usize, c: usize, spatial: usize) -> Self {
        Shape::new(n.saturating_mul(c), spatial, 1)
    }

    /// Channel dropout on channels-last NHWC (`spatial = H * W`).
    ///
    /// ```
    /// assert_eq!(simd_dropout::Shape::channels_last(8, 49, 64).decisions(), Some(512));
    /// ```
    pub const fn channels_last(n: usize, spatial: usize, c: usize) -> Self {
        Shape::new(n, spatial, c)
    }

    /// Column ("node") dropout on a row-major `[rows][cols]` matrix: drops whole columns.
    ///
    /// ```
    /// assert_eq!(simd_dropout::Shape::columns(2, 3).decisions(), Some(3));
    /// ```
    pub const fn columns(rows: usize, cols: usize) -> Self {
        Shape::new(1, rows, cols)
    }

    /// Drop-path / stochastic depth: one decision per sample of `per_sample` elements.
    ///
    /// ```
    /// assert_eq!(simd_dropout::Shape::samples(32, 1000).decisions(), Some(32));
    /// ```
    pub const fn samples(batch: usize, per_sample: usize) -> Self {
        Shape::new(batch, per_sample, 1)
    }

    /// The number of elements, or `None` if it overflows `usize`.
    ///
    /// ```
    /// assert_eq!(simd_dropout::Shape::new(2, 3, 4).len(), Some(24));
    /// assert_eq!(simd_dropout::Shape::new(usize::MAX, 2, 1).len(), None);
    /// ```
    pub const fn len(self) -> Option<usize> {
        match self.outer.checked_mul(self.mid) {
            Some(om) => om.checked_mul(self.inner),
            None => None,
        }
    }

    /// `true` when the shape has no elements.
    ///
    /// ```
    /// assert!(simd_dropout::Shape::new(2, 0, 4).is_empty());
    /// ```
    pub const fn is_empty(self) -> bool {
        matches!(self.len(), Some(0))
    }

    /// The number of decisions (`outer * inner`, the mask's bits and the words drawn), or
    /// `None` if it overflows.
    ///
    /// ```
    /// assert_eq!(simd_dropout::Shape::new(2, 3, 4).decisions(), Some(8));
    /// ```
    pub const fn decisions(self) -> Option<usize> {
        self.outer.checked_mul(self.inner)
    }

    /// The decisions of a shape that describes exactly `len` elements.
    fn check(self, len: usize) -> Result<usize, Error> {
        match (self.len(), self.decisions()) {
            (Some(n), Some(d)) if n == len => Ok(d),
            (n, _) => Err(Error::ShapeMismatch {
                elements: n.unwrap_or(usize::MAX),
                len,
            }),
        }
    }
}

/// Broadcast dropout over outer groups `o0 .. o0 + oc`, `mc` mid rows each; `data` holds
/// exactly those elements. Decisions do not depend on `mid`, so either axis can be cut.
fn broadcast<T: Element>(
    backend: Backend,
    scale: f32,
    shape: Shape,
    (o0, oc): (usize, usize),
    mc: usize,
    dec: &Decisions<'_>,
    data: Data<'_, T>,
) {
    #[cfg(feature = "rayon")]
    if backend.is_parallel() && data.len() >= crate::parallel::SERIAL_BELOW {
        if oc >= 2 {
            let h = oc / 2;
            let (d1, d2) = data.split_at(h * mc * shape.inner);
            rayon::join(
                || broadcast(backend, scale, shape, (o0, h), mc, dec, d1),
                || broadcast(backend, scale, shape, (o0 + h, oc - h), mc, dec, d2),
            );
            return;
        }
        if mc >= 2 {
            let h = mc / 2;
            let (d1, d2) = data.split_at(h * shape.inner);
            rayon::join(
                || broadcast(backend, scale, shape, (o0, oc), h, dec, d1),
                || broadcast(backend, scale, shape, (o0, oc), mc - h, dec, d2),
            );
            return;
        }
    }
    let backend = backend.serial();
    let mut data = data;
    let mut bits = [0u64; CHUNK_WORDS];
    let inner = shape.inner;
    if inner == 1 {
        // One decision per row of `mc` elements.
        let mut done = 0;
        while done < oc {
            let count = (oc - done).min(CHUNK);
            dec.fill(o0 + done, count, &mut bits);
            for i in 0..count {
                let kept = (bits[i / 64] >> (i % 64)) & 1 == 1;
                scale_or_zero(backend, data.sub((done + i) * mc, mc), kept, scale);
            }
            done += count;
        }
        return;
    }
    for oi in 0..oc {
        for k0 in (0..inner).step_by(CHUNK) {
            let len = (inner - k0).min(CHUNK);
            dec.fill((o0 + oi) * inner + k0, len, &mut bits);
            for mi in 0..mc {
                let start = (oi * mc + mi) * inner + k0;
                backend.apply(&bits[..mask_words(len)], scale, data.sub(start, len));
            }
        }
    }
}

/// A whole row kept (scaled, through the vectorized kernel) or dropped (`+0.0`).
fn scale_or_zero<T: Element>(backend: Backend, mut row: Data<'_, T>, kept: bool, scale: f32) {
    if kept {
        let n = row.len();
        for start in (0..n).step_by(CHUNK) {
            let len = (n - start).min(CHUNK);
            backend.apply(&ONES[..mask_words(len)], scale, row.sub(start, len));
        }
    } else {
        match row {
            Data::Out { y, .. } => y.fill(T::ZERO),
            Data::InPlace(xy) => xy.fill(T::ZERO),
            Data::None(_) => {}
        }
    }
}

/// `f(first element, keep bits, elements)` over chunks of `CHUNK` elements, split across
/// rayon threads for a parallel backend.
fn chunked<T: Element>(
    backend: Backend,
    dec: &Decisions<'_>,
    start: usize,
    data: Data<'_, T>,
    f: &(impl Fn(usize, &[u64], Data<'_, T>) + Sync),
) {
    let n = data.len();
    #[cfg(feature = "rayon")]
    if backend.is_parallel() && n >= crate::parallel::SERIAL_BELOW {
        let mid = n / 2 / CHUNK * CHUNK;
        let (d1, d2) = data.split_at(mid);
        rayon::join(
            || chunked(backend, dec, start, d1, f),
            || chunked(backend, dec, start + mid, d2, f),
        );
        return;
    }
    let _ = backend;
    let mut data = data;
    let mut bits = [0u64; CHUNK_WORDS];
    for done in (0..n).step_by(CHUNK) {
        let len = (n - done).min(CHUNK);
        dec.fill(start + done, len, &mut bits);
        f(start + done, &bits[..mask_words(len)], data.sub(done, len));
    }
}

/// Alpha dropout of one chunk: kept `a * x + b` (two roundings), dropped `c`.
#[inline(always)]
fn alpha_chunk<T: Element>(k: Alpha, bits: &[u64], data: Data<'_, T>) {
    let dropped = T::from_f32(k.c);
    let one = |v: T, kept: bool| {
        core::hint::select_unpredictable(kept, T::from_f32(k.a * v.to_f32() + k.b), dropped)
    };
    // Whole words with a fixed trip count, so that the bit tests become constant shifts.
    match data {
        Data::Out { x, y } => {
            for ((yw, xw), &w) in y.chunks_mut(64).zip(x.chunks(64)).zip(bits) {
                for (i, (yo, &xi)) in yw.iter_mut().zip(xw).enumerate() {
                    *yo = one(xi, (w >> i) & 1 == 1);
                }
            }
        }
        Data::InPlace(xy) => {
            for (vw, &w) in xy.chunks_mut(64).zip(bits) {
                for (i, v) in vw.iter_mut().enumerate() {
                    *v = one(*v, (w >> i) & 1 == 1);
                }
            }
        }
        Data::None(_) => {}
    }
}

/// SELU's alpha (Klambauer et al. 2017), as SPEC fixes it.
const SELU_ALPHA: f64 = 1.758_099_340_847_376_6;

/// Alpha dropout's constants for `p` in `[0, 1)`: kept `a * x + b`, dropped `c`.
#[derive(Clone, Copy, Debug)]
struct Alpha {
    a: f32,
    b: f32,
    c: f32,
}

impl Alpha {
    fn new(p: f64) -> Result<(Rate, Alpha), Error> {
        let rate = Rate::new(p)?;
        if p >= 1.0 {
            return Err(Error::InvalidProbability { p });
        }
        let a = 1.0 / sqrt((1.0 - p) * (1.0 + p * (SELU_ALPHA * SELU_ALPHA)));
        let b = a * SELU_ALPHA * p;
        let c = -a * SELU_ALPHA * (1.0 - p);
        Ok((
            rate,
            Alpha {
                a: a as f32,
                b: b as f32,
                c: c as f32,
            },
        ))
    }
}

/// The correctly rounded square root of a positive normal `v`, without `std` (so that
/// `no_std` builds compute the same constants as `f64::sqrt`).
fn sqrt(v: f64) -> f64 {
    let bits = v.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i64 - 1075; // v = sig * 2^exp
    let sig = u128::from((bits & ((1u64 << 52) - 1)) | (1u64 << 52));
    // v = scaled * 2^(exp - shift) with an even exponent and scaled in [2^106, 2^108), so
    // that the integer root has exactly 54 bits: 53 and a rounding bit.
    let shift: i64 = if (exp - 54).rem_euclid(2) == 0 {
        54
    } else {
        55
    };
    let scaled = sig << shift;
    let half = (exp - shift) / 2;
    let mut root = approx_isqrt(scaled);
    while root * root > scaled {
        root -= 1;
    }
    while (root + 1) * (root + 1) <= scaled {
        root += 1;
    }
    // Round to 53 bits. The root of a double is never exactly halfway between two doubles,
    // so the dropped bit alone decides.
    let rounded = (root >> 1) + (root & 1);
    rounded as f64 * pow2(half + 1)
}

/// `2^e` for a normal result.
fn pow2(e: i64) -> f64 {
    f64::from_bits(((e + 1023) as u64) << 52)
}

/// An integer square root good to a few units: Newton's iteration in f64.
fn approx_isqrt(x: u128) -> u128 {
    let f = x as f64;
    let mut g = pow2((((f.to_bits() >> 52) & 0x7ff) as i64 - 1023) / 2);
    for _ in 0..8 {
        g = 0.5 * (g + f / g);
    }
    g as u128
}

/// Fused `y = residual + dropout(x + bias)` on chunk elements `first ..`, `cols` columns per
/// row, one mask word (64 elements) at a time with a fixed trip count; the bias is a
/// contiguous slice unless the word crosses the end of a row.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn fused_chunk<T: Element>(
    first: usize,
    bits: &[u64],
    cols: usize,
    bias: &[T],
    residual: &[T],
    scale: f32,
    data: Data<'_, T>,
) {
    let Data::Out { x, y } = data else {
        return;
    };
    let one = |xv: T, bv: T, rv: T, kept: bool| {
        let t = xv.to_f32() + bv.to_f32();
        core::hint::select_unpredictable(kept, T::from_f32(rv.to_f32() + t * scale), rv)
    };
    let words = y.chunks_mut(64).zip(x.chunks(64)).zip(bits);
    for (j, ((yw, xw), &w)) in words.enumerate() {
        let start = first + 64 * j;
        let rw = &residual[start..start + xw.len()];
        let c0 = start % cols;
        if c0 + xw.len() <= cols {
            let bw = &bias[c0..c0 + xw.len()];
            for (i, (yo, ((&xv, &bv), &rv))) in
                yw.iter_mut().zip(xw.iter().zip(bw).zip(rw)).enumerate()
            {
                *yo = one(xv, bv, rv, (w >> i) & 1 == 1);
            }
        } else {
            for (i, (yo, (&xv, &rv))) in yw.iter_mut().zip(xw.iter().zip(rw)).enumerate() {
                *yo = one(xv, bias[(c0 + i) % cols], rv, (w >> i) & 1 == 1);
            }
        }
    }
}

/// Column sums of `g` (`[rows][cols]`) in row order, one f32 accumulator per column.
fn column_sums<T: Element>(g: &[T], cols: usize, out: &mut [T]) {
    const COLS: usize = 1024;
    let mut acc = [0f32; COLS];
    for c0 in (0..cols).step_by(COLS) {
        let width = (cols - c0).min(COLS);
        let acc = &mut acc[..width];
        acc.fill(0.0);
        for row in g.chunks_exact(cols) {
            for (a, v) in acc.iter_mut().zip(&row[c0..c0 + width]) {
                *a += v.to_f32();
            }
        }
        for (o, a) in out[c0..c0 + width].iter_mut().zip(acc.iter()) {
            *o = T::from_f32(*a);
        }
    }
}

/// Rows of `cols` elements in a slice of `len`; `ShapeMismatch` unless `cols` divides `len`.
fn check_rows(len: usize, cols: usize) -> Result<(), Error> {
    if len.is_multiple_of(cols) {
        Ok(())
    } else {
        Err(Error::ShapeMismatch {
            elements: len - len.checked_rem(cols).unwrap_or(len),
            len,
        })
    }
}

impl Backend {
    /// Broadcast (structured) dropout of `x` viewed as `shape` into `y`: one decision per
    /// `(outer, inner)` pair, shared by every `mid`; the decisions go to `mask`
    /// (`shape.decisions()` bits). The call draws `outer * inner` words.
    ///
    /// Errors: `p` not in `[0, 1]`; `y.len() != x.len()`; `ShapeMismatch` when the shape does
    /// not describe `x.len()` elements; a mask buffer too short.
    ///
    /// ```
    /// use simd_dropout::{Backend, Seed, Shape};
    /// // Column dropout on a 2x3 matrix: a dropped column is zero in every row.
    /// let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
    /// let mut y = [0.0f32; 6];
    /// let mut mask = [0u64; 1];
    /// let shape = Shape::columns(2, 3);
    /// Backend::detect().broadcast_forward(0.5, Seed::new(42, 54), 0, shape, &x, &mut y, &mut mask)?;
    /// for c in 0..3 {
    ///     let kept = (mask[0] >> c) & 1 == 1;
    ///     assert_eq!(y[c], if kept { 2.0 * x[c] } else { 0.0 });
    ///     assert_eq!(y[3 + c], if kept { 2.0 * x[3 + c] } else { 0.0 });
    /// }
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn broadcast_forward<T: Element>(
        self,
        p: f64,
        seed: Seed,
        offset: u64,
        shape: Shape,
        x: &[T],
        y: &mut [T],
        mask: &mut [u64],
    ) -> Result<(), Error> {
        let rate = Rate::new(p)?;
        check_len(x.len(), y.len())?;
        let decisions = shape.check(x.len())?;
        check_mask(decisions, mask.len())?;
        let mask = &mut mask[..mask_words(decisions)];
        self.generate::<T>(seed, offset, rate, Data::None(decisions), Some(mask));
        let dec = Decisions::Mask(mask);
        let all = (0, shape.outer);
        broadcast(
            self,
            rate.scale,
            shape,
            all,
            shape.mid,
            &dec,
            Data::Out { x, y },
        );
        Ok(())
    }

    /// [`broadcast_forward`](Backend::broadcast_forward) storing no mask; also the backward
    /// pass by recompute (`x` = the output gradient).
    ///
    /// ```
    /// use simd_dropout::{Backend, Seed, Shape};
    /// // Drop-path: 4 samples of 3 elements, each kept or dropped whole.
    /// let x = [1.0f32; 12];
    /// let mut y = [0.0f32; 12];
    /// Backend::detect().broadcast_forward_no_mask(0.5, Seed::new(1, 2), 0, Shape::samples(4, 3), &x, &mut y)?;
    /// for s in y.chunks(3) {
    ///     assert!(s == [0.0; 3] || s == [2.0; 3]);
    /// }
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    pub fn broadcast_forward_no_mask<T: Element>(
        self,
        p: f64,
        seed: Seed,
        offset: u64,
        shape: Shape,
        x: &[T],
        y: &mut [T],
    ) -> Result<(), Error> {
        Rate::new(p)?;
        check_len(x.len(), y.len())?;
        self.broadcast_data(p, shape, Err((seed, offset)), Data::Out { x, y })
    }

    /// Broadcast dropout of `data` with decisions from a mask or the stream, after checking
    /// the shape and the mask.
    pub(crate) fn broadcast_data<T: Element>(
        self,
        p: f64,
        shape: Shape,
        source: Result<&[u64], (Seed, u64)>,
        data: Data<'_, T>,
    ) -> Result<(), Error> {
        let rate = Rate::new(p)?;
        let decisions = shape.check(data.len())?;
        let dec = match source {
            Ok(mask) => {
                check_mask(decisions, mask.len())?;
                Decisions::Mask(mask)
            }
            Err((seed, offset)) => Decisions::Stream {
                backend: self,
                seed,
                offset,
                rate,
            },
        };
        broadcast(
            self,
            rate.scale,
            shape,
            (0, shape.outer),
            shape.mid,
            &dec,
            data,
        );
        Ok(())
    }

    /// Alpha dropout's forward on `data` with decisions from the stream (a replay).
    pub(crate) fn alpha_forward_data<T: Element>(
        self,
        p: f64,
        seed: Seed,
        offset: u64,
        data: Data<'_, T>,
    ) -> Result<(), Error> {
        let (rate, k) = Alpha::new(p)?;
        let dec = Decisions::Stream {
            backend: self,
            seed,
            offset,
            rate,
        };
        let alpha =
            |_: usize, bits: &[u64], d: Data<'_, T>| self.with_isa(|| alpha_chunk(k, bits, d));
        chunked(self, &dec, 0, data, &alpha);
        Ok(())
    }

    /// Alpha dropout's backward (`keep ? a * g : +0.0`) on `data`, from a mask or the stream.
    pub(crate) fn alpha_backward_data<T: Element>(
        self,
        p: f64,
        source: Result<&[u64], (Seed, u64)>,
        data: Data<'_, T>,
    ) -> Result<(), Error> {
        let (rate, k) = Alpha::new(p)?;
        match source {
            Ok(mask) => {
                check_mask(data.len(), mask.len())?;
                self.apply(mask, k.a, data);
            }
            Err((seed, offset)) => {
                let rate = Rate { scale: k.a, ..rate };
                self.generate(seed, offset, rate, data, None);
            }
        }
        Ok(())
    }

    /// Applies a stored broadcast mask: the backward pass of
    /// [`broadcast_forward`](Backend::broadcast_forward) (`x` = the output gradient).
    ///
    /// ```
    /// use simd_dropout::{Backend, Shape};
    /// let gy = [1.0f32; 4];
    /// let mut gx = [0.0f32; 4];
    /// // Two channels of two elements; channel 0 kept, channel 1 dropped.
    /// Backend::detect().broadcast_apply_mask(0.5, Shape::channels(1, 2, 2), &[0b01], &gy, &mut gx)?;
    /// assert_eq!(gx, [2.0, 2.0, 0.0, 0.0]);
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    pub fn broadcast_apply_mask<T: Element>(
        self,
        p: f64,
        shape: Shape,
        mask: &[u64],
        x: &[T],
        y: &mut [T],
    ) -> Result<(), Error> {
        Rate::new(p)?;
        check_len(x.len(), y.len())?;
        self.broadcast_data(p, shape, Ok(mask), Data::Out { x, y })
    }

    /// Alpha dropout (for SELU networks), `p` in `[0, 1)`: with `alpha = 1.7580993408473766`,
    /// `a = 1 / sqrt((1 - p) (1 + p alpha^2))`, `b = a alpha p`, `c = -a alpha (1 - p)` (f64,
    /// then f32), a kept element becomes `a * x + b` (two f32 roundings), a dropped one `c`.
    /// Keeps mean 0 and variance 1 for standard normal input. The keep bits go to `mask`.
    ///
    /// ```
    /// use simd_dropout::{Backend, Seed};
    /// let x = [0.5f32; 100];
    /// let mut y = [0.0f32; 100];
    /// let mut mask = [0u64; 2];
    /// Backend::detect().alpha_forward(0.1, Seed::new(3, 4), 0, &x, &mut y, &mut mask)?;
    /// assert!(Backend::detect().alpha_forward(1.0, Seed::new(3, 4), 0, &x, &mut y, &mut mask).is_err());
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    pub fn alpha_forward<T: Element>(
        self,
        p: f64,
        seed: Seed,
        offset: u64,
        x: &[T],
        y: &mut [T],
        mask: &mut [u64],
    ) -> Result<(), Error> {
        let (rate, k) = Alpha::new(p)?;
        check_len(x.len(), y.len())?;
        check_mask(x.len(), mask.len())?;
        let mask = &mut mask[..mask_words(x.len())];
        self.generate::<T>(seed, offset, rate, Data::None(x.len()), Some(mask));
        let alpha =
            |_: usize, bits: &[u64], d: Data<'_, T>| self.with_isa(|| alpha_chunk(k, bits, d));
        chunked(self, &Decisions::Mask(mask), 0, Data::Out { x, y }, &alpha);
        Ok(())
    }

    /// The backward pass of [`alpha_forward`](Backend::alpha_forward) from its mask:
    /// `gx = keep ? a * gy : +0.0`.
    ///
    /// ```
    /// use simd_dropout::Backend;
    /// let mut gx = [1.0f32; 2];
    /// Backend::detect().alpha_backward(0.0, &[0b01], &[1.0, 1.0], &mut gx)?;
    /// assert_eq!(gx, [1.0, 0.0]); // p = 0: a = 1
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    pub fn alpha_backward<T: Element>(
        self,
        p: f64,
        mask: &[u64],
        gy: &[T],
        gx: &mut [T],
    ) -> Result<(), Error> {
        Alpha::new(p)?;
        check_len(gy.len(), gx.len())?;
        // The same kernel as dropout's backward, with `a` for the scale.
        self.alpha_backward_data(p, Ok(mask), Data::Out { x: gy, y: gx })
    }

    /// [`alpha_backward`](Backend::alpha_backward) regenerating the mask from
    /// `(p, seed, offset)`: the dropout kernel with `a` for the scale.
    ///
    /// ```
    /// use simd_dropout::{Backend, Seed};
    /// let (x, gy) = ([1.0f32; 70], [1.0f32; 70]);
    /// let (mut y, mut m, mut g1, mut g2) = ([0.0f32; 70], [0u64; 2], [0.0f32; 70], [0.0f32; 70]);
    /// let b = Backend::detect();
    /// b.alpha_forward(0.2, Seed::new(1, 1), 0, &x, &mut y, &mut m)?;
    /// b.alpha_backward(0.2, &m, &gy, &mut g1)?;
    /// b.alpha_backward_recompute(0.2, Seed::new(1, 1), 0, &gy, &mut g2)?;
    /// assert_eq!(g1, g2);
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    pub fn alpha_backward_recompute<T: Element>(
        self,
        p: f64,
        seed: Seed,
        offset: u64,
        gy: &[T],
        gx: &mut [T],
    ) -> Result<(), Error> {
        Alpha::new(p)?;
        check_len(gy.len(), gx.len())?;
        self.alpha_backward_data(p, Err((seed, offset)), Data::Out { x: gy, y: gx })
    }

    /// Fused bias + dropout + residual of a transformer block, with `x` and `residual`
    /// row-major `[rows][cols]` and `bias` of `cols`: kept
    /// `y = residual + (x + bias) * scale` (each operation one f32 rounding, in that order),
    /// dropped `y = residual` bit for bit. Element `i` uses word `offset + i`; the keep bits
    /// go to `mask`.
    ///
    /// ```
    /// use simd_dropout::{Backend, Seed};
    /// let (x, bias, residual) = ([1.0f32; 6], [0.5f32, 0.0, -1.0], [10.0f32; 6]);
    /// let mut y = [0.0f32; 6];
    /// let mut mask = [0u64; 1];
    /// Backend::detect().fused_forward(0.5, Seed::new(1, 1), 0, &x, &bias, &residual, &mut y, &mut mask)?;
    /// for i in 0..6 {
    ///     let kept = (mask[0] >> i) & 1 == 1;
    ///     assert_eq!(y[i], if kept { 10.0 + (1.0 + bias[i % 3]) * 2.0 } else { 10.0 });
    /// }
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn fused_forward<T: Element>(
        self,
        p: f64,
        seed: Seed,
        offset: u64,
        x: &[T],
        bias: &[T],
        residual: &[T],
        y: &mut [T],
        mask: &mut [u64],
    ) -> Result<(), Error> {
        self.fused(p, seed, offset, (x, bias, residual), y, Some(mask))
    }

    /// [`fused_forward`](Backend::fused_forward) storing no mask.
    ///
    /// ```
    /// use simd_dropout::{Backend, Seed};
    /// let (x, bias, residual) = ([1.0f32; 4], [0.0f32; 2], [3.0f32; 4]);
    /// let mut y = [0.0f32; 4];
    /// Backend::detect().fused_forward_no_mask(0.0, Seed::new(1, 1), 0, &x, &bias, &residual, &mut y)?;
    /// assert_eq!(y, [4.0; 4]);
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn fused_forward_no_mask<T: Element>(
        self,
        p: f64,
        seed: Seed,
        offset: u64,
        x: &[T],
        bias: &[T],
        residual: &[T],
        y: &mut [T],
    ) -> Result<(), Error> {
        self.fused(p, seed, offset, (x, bias, residual), y, None)
    }

    /// The fused forward, with its mask written to `mask` or drawn chunk by chunk.
    fn fused<T: Element>(
        self,
        p: f64,
        seed: Seed,
        offset: u64,
        (x, bias, residual): (&[T], &[T], &[T]),
        y: &mut [T],
        mask: Option<&mut [u64]>,
    ) -> Result<(), Error> {
        let rate = Rate::new(p)?;
        let cols = bias.len();
        check_rows(x.len(), cols)?;
        check_len(x.len(), residual.len())?;
        check_len(x.len(), y.len())?;
        let f = |first: usize, bits: &[u64], d: Data<'_, T>| {
            self.with_isa(|| fused_chunk(first, bits, cols, bias, residual, rate.scale, d))
        };
        let data = Data::Out { x, y };
        match mask {
            Some(mask) => {
                check_mask(x.len(), mask.len())?;
                let mask = &mut mask[..mask_words(x.len())];
                self.generate::<T>(seed, offset, rate, Data::None(x.len()), Some(mask));
                chunked(self, &Decisions::Mask(mask), 0, data, &f);
            }
            None => {
                let dec = Decisions::Stream {
                    backend: self,
                    seed,
                    offset,
                    rate,
                };
                chunked(self, &dec, 0, data, &f);
            }
        }
        Ok(())
    }

    /// The backward pass of [`fused_forward`](Backend::fused_forward) from its mask:
    /// `gx = keep ? gy * scale : +0.0`, and `g_bias[c]` the sum of `gx[r][c]` over the rows in
    /// increasing `r`, one f32 accumulator per column, rounded once. The residual's gradient
    /// is `gy` itself.
    ///
    /// ```
    /// use simd_dropout::Backend;
    /// let gy = [1.0f32; 6];
    /// let (mut gx, mut g_bias) = ([0.0f32; 6], [0.0f32; 3]);
    /// Backend::detect().fused_backward(0.5, &[0b011_101], &gy, &mut gx, &mut g_bias)?;
    /// assert_eq!(gx, [2.0, 0.0, 2.0, 2.0, 2.0, 0.0]);
    /// assert_eq!(g_bias, [4.0, 2.0, 2.0]);
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    pub fn fused_backward<T: Element>(
        self,
        p: f64,
        mask: &[u64],
        gy: &[T],
        gx: &mut [T],
        g_bias: &mut [T],
    ) -> Result<(), Error> {
        let rate = Rate::new(p)?;
        check_rows(gy.len(), g_bias.len())?;
        check_len(gy.len(), gx.len())?;
        check_mask(gy.len(), mask.len())?;
        self.apply(mask, rate.scale, Data::Out { x: gy, y: gx });
        column_sums(gx, g_bias.len(), g_bias);
        Ok(())
    }

    /// [`fused_backward`](Backend::fused_backward) regenerating the mask from
    /// `(p, seed, offset)`.
    ///
    /// ```
    /// use simd_dropout::{Backend, Seed};
    /// let gy = [1.0f32; 4];
    /// let (mut gx, mut g_bias) = ([0.0f32; 4], [0.0f32; 2]);
    /// Backend::detect().fused_backward_recompute(0.0, Seed::new(1, 1), 0, &gy, &mut gx, &mut g_bias)?;
    /// assert_eq!(g_bias, [2.0, 2.0]);
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    pub fn fused_backward_recompute<T: Element>(
        self,
        p: f64,
        seed: Seed,
        offset: u64,
        gy: &[T],
        gx: &mut [T],
        g_bias: &mut [T],
    ) -> Result<(), Error> {
        let rate = Rate::new(p)?;
        check_rows(gy.len(), g_bias.len())?;
        check_len(gy.len(), gx.len())?;
        self.generate(seed, offset, rate, Data::Out { x: gy, y: gx }, None);
        column_sums(gx, g_bias.len(), g_bias);
        Ok(())
    }
}

/// DropConnect (Wan et al. 2013): element dropout applied to a weight slice for one training
/// step, under the same contract as [`forward`](crate::forward). `w_dropped` is what the
/// layer multiplies by; keep `mask` (or `(seed, offset)`) for the backward pass.
///
/// ```
/// use simd_dropout::{drop_connect, drop_connect_backward, mask_words, Seed};
/// let w = [0.5f32; 6]; // a 2x3 weight matrix
/// let mut w_dropped = [0.0f32; 6];
/// let mut mask = [0u64; mask_words(6)];
/// drop_connect(0.5, Seed::new(42, 54), 0, &w, &mut w_dropped, &mut mask)?;
/// // The gradient with respect to w_dropped flows back through the same mask and scale.
/// let g_dropped = [1.0f32; 6];
/// let mut g_w = [0.0f32; 6];
/// drop_connect_backward(0.5, &mask, &g_dropped, &mut g_w)?;
/// for i in 0..6 {
///     assert_eq!(g_w[i] == 0.0, w_dropped[i] == 0.0);
/// }
/// # Ok::<(), simd_dropout::Error>(())
/// ```
pub fn drop_connect<T: Element>(
    p: f64,
    seed: Seed,
    offset: u64,
    w: &[T],
    w_dropped: &mut [T],
    mask: &mut [u64],
) -> Result<(), Error> {
    Backend::detect().forward(p, seed, offset, w, w_dropped, mask)
}

/// The backward pass of [`drop_connect`]: the weight gradient is the gradient with respect to
/// the dropped weights, masked and scaled the same way.
///
/// ```
/// let mut g_w = [0.0f32; 2];
/// simd_dropout::drop_connect_backward(0.5, &[0b10], &[1.0, 1.0], &mut g_w)?;
/// assert_eq!(g_w, [0.0, 2.0]);
/// # Ok::<(), simd_dropout::Error>(())
/// ```
pub fn drop_connect_backward<T: Element>(
    p: f64,
    mask: &[u64],
    g_dropped: &[T],
    g_w: &mut [T],
) -> Result<(), Error> {
    Backend::detect().apply_mask(p, mask, g_dropped, g_w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqrt_is_correctly_rounded() {
        let mut v = 1e-3f64;
        while v < 1e3 {
            assert_eq!(sqrt(v).to_bits(), v.sqrt().to_bits(), "{v}");
            v = f64::from_bits(v.to_bits() + 0x0000_0123_4567_89ab);
        }
        for p in [0.0, 0.1, 0.2, 0.5, 0.9, 0.999] {
            let v = (1.0 - p) * (1.0 + p * (SELU_ALPHA * SELU_ALPHA));
            assert_eq!(sqrt(v).to_bits(), v.sqrt().to_bits());
        }
    }

    #[test]
    fn copy_bits_at_every_shift() {
        let src = [
            0x0123_4567_89ab_cdefu64,
            0xfedc_ba98_7654_3210,
            0xffff_0000_ffff_0000,
        ];
        for start in 0..130 {
            for len in 0..(192 - start).min(70) {
                let mut out = [0u64; 2];
                copy_bits(&src, start, len, &mut out[..mask_words(len)]);
                for i in 0..len {
                    let want = (src[(start + i) / 64] >> ((start + i) % 64)) & 1;
                    assert_eq!((out[i / 64] >> (i % 64)) & 1, want);
                }
                if len % 64 != 0 {
                    assert_eq!(out[len / 64] >> (len % 64), 0);
                }
            }
        }
    }
}
