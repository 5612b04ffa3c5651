//! Shapes: the `[outer][mid][inner]` view of broadcast dropout, and the strided `View` of a
//! tensor inside a larger logical tensor.

use crate::Error;

/// `a * b * ...` for dimensions, `None` when it overflows; a zero factor makes the product
/// zero whatever the order (so `[0, MAX, MAX]` and `[MAX, MAX, 0]` agree).
pub(crate) const fn product(dims: &[usize]) -> Option<usize> {
    let mut i = 0;
    while i < dims.len() {
        if dims[i] == 0 {
            return Some(0);
        }
        i += 1;
    }
    let mut acc = 1usize;
    let mut i = 0;
    while i < dims.len() {
        acc = match acc.checked_mul(dims[i]) {
            Some(v) => v,
            None => return None,
        };
        i += 1;
    }
    Some(acc)
}

/// Which elements of a row-major tensor share a broadcast decision, named by the tensor's
/// layout ([`Shape::of`] turns it and the dimensions into a [`Shape`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Structure {
    /// `[N, C, ...]`: one decision per feature map `(n, c)` (`Dropout2d`, `Dropout3d`).
    Channels,
    /// `[N, ..., C]`: one decision per `(n, c)` of a channels-last tensor.
    ChannelsLast,
    /// `[..., cols]`: one decision per column, shared by every row ("node" dropout).
    Columns,
    /// `[batch, ...]`: one decision per sample (drop-path, stochastic depth).
    Samples,
    /// `[batch, time, ...]`: locked (variational) dropout for RNNs, one decision per
    /// `(sequence, feature)` shared by every time step.
    LockedBatchFirst,
    /// `[time, batch, ...]`: locked dropout on a time-major sequence (the same mask as
    /// [`Structure::LockedBatchFirst`] on the same sequences).
    LockedTimeFirst,
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
/// // A product that overflows is reported by every call that uses the shape.
/// assert_eq!(Shape::channels(usize::MAX, 2, 1).decisions(), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shape {
    outer: usize,
    mid: usize,
    inner: usize,
    /// The constructor's own product (`outer = n * c`, `inner = batch * features`) overflowed.
    overflow: bool,
}

impl Shape {
    /// `[outer][mid][inner]`.
    pub const fn new(outer: usize, mid: usize, inner: usize) -> Self {
        Shape {
            outer,
            mid,
            inner,
            overflow: false,
        }
    }

    /// Channel dropout on NCHW (`spatial = H * W`): drops whole feature maps.
    ///
    /// ```
    /// assert_eq!(simd_dropout::Shape::channels(8, 64, 49).decisions(), Some(512));
    /// ```
    pub const fn channels(n: usize, c: usize, spatial: usize) -> Self {
        match product(&[n, c]) {
            Some(outer) => Shape::new(outer, spatial, 1),
            None => Shape {
                overflow: true,
                ..Shape::new(usize::MAX, spatial, 1)
            },
        }
    }

    /// Channel dropout on channels-last NHWC (`spatial = H * W`): one decision per `(n, c)`.
    pub const fn channels_last(n: usize, spatial: usize, c: usize) -> Self {
        Shape::new(n, spatial, c)
    }

    /// Column ("node") dropout on a row-major `[rows][cols]` matrix: drops whole columns.
    pub const fn columns(rows: usize, cols: usize) -> Self {
        Shape::new(1, rows, cols)
    }

    /// Drop-path / stochastic depth: one decision per sample of `per_sample` elements.
    pub const fn samples(batch: usize, per_sample: usize) -> Self {
        Shape::new(batch, per_sample, 1)
    }

    /// Locked (variational) dropout on a batch-first sequence `[batch][time][features]`
    /// (Gal & Ghahramani 2016; AWD-LSTM's `LockedDropout`): one decision per
    /// `(sequence, feature)`, decision `b * features + f`, shared by every time step, so a
    /// recurrent network sees the same units dropped along the whole sequence.
    ///
    /// ```
    /// use simd_dropout::{Backend, BitsMut, Io, Seed, Shape};
    /// // 2 sequences of 4 steps with 3 features.
    /// let (batch, time, features) = (2, 4, 3);
    /// let x: Vec<f32> = (1..=24).map(|v| v as f32).collect();
    /// let mut y = [0.0f32; 24];
    /// let mut mask = [0u64; 1]; // one bit per (sequence, feature): 6 bits
    /// let io = Io::Out { x: &x, y: &mut y };
    /// let shape = Shape::locked_batch_first(batch, time, features);
    /// Backend::detect().broadcast_forward(shape, 0.5, Seed::from_u64(3), 0, io, Some(BitsMut::new(&mut mask)))?;
    /// for b in 0..batch {
    ///     for t in 0..time {
    ///         for f in 0..features {
    ///             let i = (b * time + t) * features + f;
    ///             // Every step of sequence `b` drops the same features.
    ///             let kept = mask[0] >> (b * features + f) & 1 == 1;
    ///             assert_eq!(y[i], if kept { x[i] * 2.0 } else { 0.0 });
    ///         }
    ///     }
    /// }
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    ///
    /// An RNN cell that runs one step at a time gets the same mask at every step from the
    /// same `(seed, offset)`: element dropout on its `[batch][features]` input at a fixed
    /// offset (decisions depend only on the seed and the word index, never on the call), or
    /// a mask drawn once and applied with `apply_mask` at each step.
    pub const fn locked_batch_first(batch: usize, time: usize, features: usize) -> Self {
        Shape::new(batch, time, features)
    }

    /// Locked dropout on a time-major sequence `[time][batch][features]` (the layout of
    /// PyTorch's RNNs without `batch_first`): one decision per `(sequence, feature)`,
    /// decision `b * features + f` as in [`Shape::locked_batch_first`], so the same sequence
    /// gets the same mask in either layout.
    ///
    /// ```
    /// use simd_dropout::Shape;
    /// assert_eq!(Shape::locked_time_first(5, 2, 3), Shape::new(1, 5, 6));
    /// assert_eq!(Shape::locked_time_first(5, 2, 3).decisions(), Some(6));
    /// assert_eq!(Shape::locked_time_first(5, usize::MAX, 3).decisions(), None);
    /// ```
    pub const fn locked_time_first(time: usize, batch: usize, features: usize) -> Self {
        match product(&[batch, features]) {
            Some(inner) => Shape::new(1, time, inner),
            None => Shape {
                overflow: true,
                ..Shape::new(1, time, usize::MAX)
            },
        }
    }

    /// The broadcast shape of `structure` over a row-major tensor of dimensions `dims` (what a
    /// framework adapter has), or `None` when the tensor has too few dimensions for it.
    ///
    /// ```
    /// use simd_dropout::{Shape, Structure};
    /// assert_eq!(Shape::of(Structure::Channels, &[8, 64, 7, 7]), Some(Shape::channels(8, 64, 49)));
    /// assert_eq!(Shape::of(Structure::ChannelsLast, &[8, 7, 7, 64]), Some(Shape::channels_last(8, 49, 64)));
    /// assert_eq!(Shape::of(Structure::LockedTimeFirst, &[5, 2, 3]), Some(Shape::locked_time_first(5, 2, 3)));
    /// assert_eq!(Shape::of(Structure::Channels, &[8]), None);
    /// // A product that overflows gives a shape every call refuses.
    /// let huge = Shape::of(Structure::Samples, &[2, usize::MAX, 2]).unwrap();
    /// assert_eq!(huge.elements(), None);
    /// ```
    pub fn of(structure: Structure, dims: &[usize]) -> Option<Shape> {
        // A product that overflows makes a shape every call refuses.
        let overflowed = Shape {
            overflow: true,
            ..Shape::new(usize::MAX, 1, 1)
        };
        let shape = match (structure, dims) {
            (Structure::Channels, [n, c, rest @ ..]) => {
                product(rest).map(|r| Shape::channels(*n, *c, r))
            }
            (Structure::ChannelsLast, [n, mid @ .., c]) => {
                product(mid).map(|m| Shape::channels_last(*n, m, *c))
            }
            (Structure::Columns, [rows @ .., cols]) => {
                product(rows).map(|r| Shape::columns(r, *cols))
            }
            (Structure::Samples, [batch, rest @ ..]) => {
                product(rest).map(|r| Shape::samples(*batch, r))
            }
            (Structure::LockedBatchFirst, [batch, time, rest @ ..]) => {
                product(rest).map(|f| Shape::locked_batch_first(*batch, *time, f))
            }
            (Structure::LockedTimeFirst, [time, batch, rest @ ..]) => {
                product(rest).map(|f| Shape::locked_time_first(*time, *batch, f))
            }
            _ => return None,
        };
        Some(shape.unwrap_or(overflowed))
    }

    /// `(outer, mid, inner)`.
    pub const fn dims(self) -> (usize, usize, usize) {
        (self.outer, self.mid, self.inner)
    }

    /// The number of elements, or `None` if it overflows `usize`.
    ///
    /// ```
    /// assert_eq!(simd_dropout::Shape::new(2, 3, 4).elements(), Some(24));
    /// assert_eq!(simd_dropout::Shape::new(usize::MAX, 2, 1).elements(), None);
    /// assert_eq!(simd_dropout::Shape::new(usize::MAX, usize::MAX, 0).elements(), Some(0));
    /// ```
    pub const fn elements(self) -> Option<usize> {
        if self.overflow {
            return None;
        }
        product(&[self.outer, self.mid, self.inner])
    }

    /// The number of decisions (`outer * inner`: the mask's bits and the words drawn), or
    /// `None` if it overflows.
    ///
    /// ```
    /// assert_eq!(simd_dropout::Shape::new(2, 3, 4).decisions(), Some(8));
    /// ```
    pub const fn decisions(self) -> Option<usize> {
        if self.overflow {
            return None;
        }
        product(&[self.outer, self.inner])
    }

    /// The decisions of a shape that describes exactly `len` elements of `arg`.
    pub(crate) fn check(self, arg: &'static str, len: usize) -> Result<usize, Error> {
        match (self.elements(), self.decisions()) {
            (Some(n), Some(d)) if n == len => Ok(d),
            (Some(n), Some(_)) => Err(Error::ShapeMismatch {
                arg,
                elements: Some(n),
                len,
            }),
            _ => Err(Error::ShapeMismatch {
                arg,
                elements: None,
                len,
            }),
        }
    }
}

/// The most dimensions a [`View`] has.
pub const MAX_RANK: usize = 6;

/// Where the elements of a strided call sit: in memory (dimensions, strides in elements, and
/// the buffer index of the first element) and in the stream (the view's place in a larger
/// logical tensor).
///
/// Element `(i_0, ..., i_k)` of the view is at buffer index `base + sum(i_d * stride_d)`.
/// Its random word is `offset + j`, where `j` is the row-major index of
/// `(start_0 + i_0, ..., start_k + i_k)` in the full tensor (the view itself when no window
/// is given). So a transposed or sliced array, a tensor-parallel shard of a weight matrix, or
/// a data-parallel slice of a batch each gets, in one call, the bits the contiguous call on
/// the full logical tensor gives its elements. Mask bit `n` of a call is the view's `n`-th
/// element in row-major order.
///
/// A view that is written (an output, or an in-place view) must pass the *overlap rule*: its
/// dimensions of size 2 or more, sorted by `|stride|`, each step over everything the smaller
/// ones reach (`|stride| > sum((dim - 1) * |stride|)` of those before it). That refuses every
/// view with two elements at one index, and also rare hand-made ones whose elements happen
/// not to collide (dims `[2, 3]`, strides `[3, 2]`); transposes, slices, reversals and
/// broadcast inputs of real tensors all pass. A view of no elements is always accepted.
///
/// ```
/// use simd_dropout::{Backend, Seed, Strided, View};
/// let mut y = [0.0f32; 8];
/// let refused = View::strided(&[2, 3], &[3, 2], 0)?; // indices 0, 2, 4, 3, 5, 7
/// let io = Strided::InPlace { xy: &mut y, view: refused };
/// assert!(Backend::detect().strided_forward(0.5, Seed::default(), 0, io, None).is_err());
/// # Ok::<(), simd_dropout::Error>(())
/// ```
///
/// ```
/// use simd_dropout::View;
/// // A [3, 4] matrix stored column-major (a transposed array).
/// let v = View::strided(&[3, 4], &[1, 3], 0)?;
/// assert_eq!(v.len(), 12);
/// // Rows 2..4 of an [8, 4] batch: the same words as those rows of the whole batch.
/// let shard = View::contiguous(&[2, 4])?.within(&[2, 0], &[8, 4])?;
/// assert_eq!(shard.dims(), &[2, 4]);
/// # Ok::<(), simd_dropout::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct View {
    rank: usize,
    dims: [usize; MAX_RANK],
    strides: [isize; MAX_RANK],
    base: usize,
    start: [usize; MAX_RANK],
    full: [usize; MAX_RANK],
    len: usize,
}

impl View {
    /// A row-major contiguous view of `dims` at buffer index 0.
    pub fn contiguous(dims: &[usize]) -> Result<View, Error> {
        let mut strides = [0isize; MAX_RANK];
        let mut acc: isize = 1;
        for d in (0..dims.len().min(MAX_RANK)).rev() {
            strides[d] = acc;
            acc = acc.saturating_mul(dims[d].try_into().unwrap_or(isize::MAX));
        }
        View::strided(dims, &strides[..dims.len().min(MAX_RANK)], 0)
    }

    /// A view of `dims` with `strides` (in elements, negative allowed) whose first element is
    /// at buffer index `base`. Errors: more than [`MAX_RANK`] dimensions, `strides` of another
    /// length, an element count that overflows `usize`.
    pub fn strided(dims: &[usize], strides: &[isize], base: usize) -> Result<View, Error> {
        if dims.len() > MAX_RANK {
            return Err(Error::InvalidView {
                reason: "more than MAX_RANK (6) dimensions",
            });
        }
        if strides.len() != dims.len() {
            return Err(Error::InvalidView {
                reason: "strides and dims differ in length",
            });
        }
        let len = product(dims).ok_or(Error::InvalidView {
            reason: "the element count overflows usize",
        })?;
        let mut v = View {
            rank: dims.len(),
            dims: [1; MAX_RANK],
            strides: [0; MAX_RANK],
            base,
            start: [0; MAX_RANK],
            full: [1; MAX_RANK],
            len,
        };
        v.dims[..dims.len()].copy_from_slice(dims);
        v.strides[..dims.len()].copy_from_slice(strides);
        v.full[..dims.len()].copy_from_slice(dims);
        Ok(v)
    }

    /// The same view placed at index `start` of a full logical tensor of shape `full`, whose
    /// row-major index gives each element's stream position. Errors: lengths that differ from
    /// the view's rank, a window outside `full`, a full tensor whose count overflows `usize`.
    pub fn within(mut self, start: &[usize], full: &[usize]) -> Result<View, Error> {
        if start.len() != self.rank || full.len() != self.rank {
            return Err(Error::InvalidView {
                reason: "start or full shape differs from the view's rank",
            });
        }
        for d in 0..self.rank {
            let end = start[d].checked_add(self.dims[d]);
            if end.is_none_or(|e| e > full[d]) {
                return Err(Error::InvalidView {
                    reason: "the window lies outside the full shape",
                });
            }
        }
        if product(full).is_none() {
            return Err(Error::InvalidView {
                reason: "the full shape's element count overflows usize",
            });
        }
        self.start[..self.rank].copy_from_slice(start);
        self.full[..self.rank].copy_from_slice(full);
        Ok(self)
    }

    /// The dimensions.
    pub fn dims(&self) -> &[usize] {
        &self.dims[..self.rank]
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` when the view has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The same dimensions and window, stored row-major and contiguous from index 0 (the
    /// layout of a fresh output buffer).
    ///
    /// ```
    /// let v = simd_dropout::View::strided(&[3, 4], &[1, 3], 0)?.within(&[1, 0], &[5, 4])?;
    /// let out = v.compact();
    /// assert_eq!((out.dims(), out.len()), (v.dims(), 12));
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    pub fn compact(&self) -> View {
        let mut v = *self;
        let mut acc = 1isize;
        for d in (0..MAX_RANK).rev() {
            v.strides[d] = acc;
            // The element count fits usize, so no partial product overflows unless a later
            // dimension is zero, where strides do not matter.
            acc = acc.wrapping_mul(v.dims[d] as isize);
        }
        v.base = 0;
        v
    }

    /// The number of elements of the full logical tensor.
    pub(crate) fn full_len(&self) -> usize {
        // `within` and `strided` checked that it fits (a zero anywhere makes it 0).
        product(&self.full).unwrap_or(usize::MAX)
    }

    /// Two views of the same positions with neighbouring dimensions merged wherever both lay
    /// them out as one (`stride[d - 1] == stride[d] * dims[d]` in both) and the window covers
    /// the inner one whole (`full[d] == dims[d]`, so `start[d] == 0`): the same elements,
    /// positions and order in fewer, longer rows (a contiguous tensor becomes one row).
    pub(crate) fn merged(a: &View, b: &View) -> (View, View) {
        let (mut a, mut b) = (*a, *b);
        if a.len == 0 || b.len == 0 {
            // No elements: no rows to merge (and the products of huge dimensions beside a
            // zero one would overflow).
            return (a, b);
        }
        let mut d = a.rank;
        while d >= 2 {
            let (i, j) = (d - 2, d - 1);
            let one = |v: &View| v.strides[i] == v.strides[j].wrapping_mul(v.dims[j] as isize);
            if a.full[j] == a.dims[j] && one(&a) && one(&b) {
                for v in [&mut a, &mut b] {
                    v.start[i] *= v.dims[j];
                    v.dims[i] *= v.dims[j];
                    v.full[i] *= v.full[j];
                    v.strides[i] = v.strides[j];
                    for k in j..v.rank - 1 {
                        v.dims[k] = v.dims[k + 1];
                        v.strides[k] = v.strides[k + 1];
                        v.start[k] = v.start[k + 1];
                        v.full[k] = v.full[k + 1];
                    }
                    v.rank -= 1;
                    v.dims[v.rank] = 1;
                    v.strides[v.rank] = 0;
                    v.start[v.rank] = 0;
                    v.full[v.rank] = 1;
                }
            }
            d -= 1;
        }
        (a, b)
    }

    /// Whether two views cover the same elements of the same full tensor.
    pub(crate) fn same_positions(&self, other: &View) -> bool {
        self.rank == other.rank
            && self.dims == other.dims
            && self.start == other.start
            && self.full == other.full
    }

    /// `InvalidView` unless every element lies inside a buffer of `len` elements.
    pub(crate) fn check_fits(&self, len: usize) -> Result<(), Error> {
        if self.len == 0 {
            return Ok(());
        }
        let (mut lo, mut hi) = (self.base as i128, self.base as i128);
        for d in 0..MAX_RANK {
            let reach = self.strides[d] as i128 * (self.dims[d] as i128 - 1);
            if reach < 0 {
                lo += reach;
            } else {
                hi += reach;
            }
        }
        if lo < 0 || hi >= len as i128 {
            return Err(Error::InvalidView {
                reason: "the view reaches outside its buffer",
            });
        }
        Ok(())
    }

    /// `InvalidView` unless the view passes the overlap rule (a written view): sorted by
    /// stride, each dimension steps over everything the smaller ones reach. Sufficient, not
    /// exact (an exact test is a subset-sum search); CONTRACT.md section 6 states it.
    pub(crate) fn check_no_overlap(&self) -> Result<(), Error> {
        if self.len <= 1 {
            return Ok(());
        }
        let mut used: [(u128, u128); MAX_RANK] = [(0, 0); MAX_RANK];
        let mut n = 0;
        for d in 0..MAX_RANK {
            if self.dims[d] > 1 {
                used[n] = (self.strides[d].unsigned_abs() as u128, self.dims[d] as u128);
                n += 1;
            }
        }
        let used = &mut used[..n];
        used.sort_unstable();
        let mut reach = 0u128;
        for &(stride, dim) in used.iter() {
            if stride <= reach {
                return Err(Error::InvalidView {
                    reason: "the written view fails the overlap rule (sorted by |stride|, each stride must exceed what the smaller ones reach)",
                });
            }
            reach += stride * (dim - 1);
        }
        Ok(())
    }

    /// The rows of the view (every index but the last), each as
    /// `(buffer index of its first element, stream position, row-major view index)`, with
    /// the length and stride of a row.
    pub(crate) fn rows(&self) -> Rows {
        let last = MAX_RANK - 1;
        // Right-align the dimensions so the last one is always the row.
        let mut v = Rows {
            dims: [1; MAX_RANK],
            strides: [0; MAX_RANK],
            pos_strides: [0; MAX_RANK],
            idx: [0; MAX_RANK],
            base: self.base as isize,
            first_pos: 0,
            row_len: 1,
            row_stride: 0,
            rows_left: 0,
            done: 0,
        };
        let shift = MAX_RANK - self.rank;
        let mut pos_stride = 1u64;
        let mut first = 0u64;
        for d in (0..self.rank).rev() {
            v.dims[d + shift] = self.dims[d];
            v.strides[d + shift] = self.strides[d];
            v.pos_strides[d + shift] = pos_stride;
            first = first.wrapping_add((self.start[d] as u64).wrapping_mul(pos_stride));
            pos_stride = pos_stride.wrapping_mul(self.full[d] as u64);
        }
        v.first_pos = first;
        v.row_len = v.dims[last];
        v.row_stride = v.strides[last];
        v.rows_left = if self.len == 0 {
            0
        } else {
            self.len / v.row_len
        };
        v
    }
}

/// The rows of a [`View`] in row-major order.
#[derive(Clone, Debug)]
pub(crate) struct Rows {
    dims: [usize; MAX_RANK],
    strides: [isize; MAX_RANK],
    pos_strides: [u64; MAX_RANK],
    idx: [usize; MAX_RANK],
    base: isize,
    first_pos: u64,
    /// Elements per row and their stride.
    pub(crate) row_len: usize,
    pub(crate) row_stride: isize,
    rows_left: usize,
    done: usize,
}

/// One row: where it starts in the buffer, its stream position (relative to the call's
/// offset), and the row-major index of its first element in the view.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Row {
    pub(crate) at: usize,
    pub(crate) pos: u64,
    pub(crate) index: usize,
}

impl Iterator for Rows {
    type Item = Row;
    fn next(&mut self) -> Option<Row> {
        if self.rows_left == 0 {
            return None;
        }
        let mut at = self.base;
        let mut pos = self.first_pos;
        for d in 0..MAX_RANK - 1 {
            at += self.idx[d] as isize * self.strides[d];
            pos = pos.wrapping_add(self.idx[d] as u64 * self.pos_strides[d]);
        }
        let row = Row {
            // Checked against the buffer by `check_fits`, so never negative.
            at: at as usize,
            pos,
            index: self.done * self.row_len,
        };
        self.rows_left -= 1;
        self.done += 1;
        // The odometer over every dimension but the last.
        for d in (0..MAX_RANK - 1).rev() {
            self.idx[d] += 1;
            if self.idx[d] < self.dims[d] {
                break;
            }
            self.idx[d] = 0;
        }
        Some(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_detection() {
        assert!(
            View::strided(&[4, 4], &[4, 1], 0)
                .unwrap()
                .check_no_overlap()
                .is_ok()
        );
        assert!(
            View::strided(&[4, 4], &[1, 4], 0)
                .unwrap()
                .check_no_overlap()
                .is_ok()
        );
        assert!(
            View::strided(&[4, 4], &[2, 1], 0)
                .unwrap()
                .check_no_overlap()
                .is_err()
        );
        assert!(
            View::strided(&[4, 4], &[0, 1], 0)
                .unwrap()
                .check_no_overlap()
                .is_err()
        );
        assert!(
            View::strided(&[1, 4], &[0, 1], 0)
                .unwrap()
                .check_no_overlap()
                .is_ok()
        );
        assert!(
            View::strided(&[3, 4], &[-4, 1], 8)
                .unwrap()
                .check_no_overlap()
                .is_ok()
        );
    }

    #[test]
    fn fits_with_negative_strides() {
        let v = View::strided(&[3, 4], &[-4, 1], 8).unwrap();
        assert!(v.check_fits(12).is_ok());
        assert!(v.check_fits(11).is_err());
        assert!(
            View::strided(&[3, 4], &[-4, 1], 7)
                .unwrap()
                .check_fits(100)
                .is_err()
        );
    }
}
