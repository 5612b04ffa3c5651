//! DropBlock (Ghiasi et al. 2018; torchvision `drop_block2d` / `drop_block3d`): whole
//! `block_size` squares (cubes) of a feature map are dropped together, and the survivors are
//! scaled by `numel / (eps + kept)`.
//!
//! One word per candidate block corner decides it (a seed when `word < round(gamma * 2^32)`).
//! The blocks are made with bit operations on packed rows: a seed row is dilated across by
//! ORs of shifted words, and down by ORing it into the `block_size` rows it covers; no
//! per-element max-pool. The work goes band by band (rows of one plane of one map whose bits
//! fit a stack buffer; a row wider than the buffer is cut into column tiles, each carrying
//! the last seed column of the tiles before it): a first pass counts the kept elements (the
//! scale needs them all), a second applies the bits, from the caller's mask when there is
//! one (written by the first pass), else from the bands computed again.

use crate::Error;
use crate::backend::Backend;
use crate::element::Element;
use crate::job::{
    Bits, BitsMut, Data, Rate, copy_bits, low_bits, mask_words, product, set_all, write_bits,
};
use crate::ops::At;
use crate::reference::{drop_one, scale_of};

/// Words of one band's bits, of one row of seeds, and of the rows being dilated (each on the
/// stack).
const ROW_WORDS: usize = 128;

/// Columns per tile of a row wider than one band's buffer.
const TILE: usize = 64 * ROW_WORDS;

/// The geometry of a DropBlock call: `n * c` feature maps of `h * w` (2-D) or `d * h * w`
/// (3-D) elements, in NCHW / NCDHW order or channels-last (NHWC / NDHWC), and the block size.
///
/// The layout changes only where each element sits: a channels-last call drops the same
/// `(n, c, h, w)` elements, with the same words, as the channels-first call of the same
/// dimensions (its output is that output permuted), as torchvision's is for a
/// `channels_last` tensor.
///
/// As in torchvision, the block size is clipped to the map (`min(block_size, h, w)`, and `d`
/// in 3-D), block corners are the positions where a whole block fits
/// (`(h - bs + 1) * (w - bs + 1)` per map in 2-D), and a call draws one word per corner
/// ([`candidates`](Blocks::candidates)).
///
/// ```
/// use simd_dropout::Blocks;
/// let b = Blocks::nchw(32, 64, 56, 56, 7);
/// assert_eq!(b.elements(), Some(32 * 64 * 56 * 56));
/// assert_eq!(b.candidates(), Some(32 * 64 * 50 * 50));
/// assert_eq!(Blocks::nchw(1, 1, 4, 9, 7).block_size(), 4); // clipped to the map
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Blocks {
    n: usize,
    c: usize,
    depth: usize,
    height: usize,
    width: usize,
    block_size: usize,
    three_d: bool,
    channels_last: bool,
}

/// Where the channel dimension of a DropBlock tensor is ([`Blocks::of`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChannelOrder {
    /// `[N, C, H, W]` / `[N, C, D, H, W]` (PyTorch's default).
    First,
    /// `[N, H, W, C]` / `[N, D, H, W, C]` (PyTorch's `channels_last`, TensorFlow, burn's
    /// and candle's NHWC models).
    Last,
}

impl Blocks {
    /// DropBlock 2-D on NCHW `[n][c][h][w]` (torchvision `drop_block2d`, timm `DropBlock2d`).
    pub const fn nchw(n: usize, c: usize, h: usize, w: usize, block_size: usize) -> Blocks {
        Blocks {
            n,
            c,
            depth: 1,
            height: h,
            width: w,
            block_size,
            three_d: false,
            channels_last: false,
        }
    }

    /// DropBlock 3-D on NCDHW `[n][c][d][h][w]` (torchvision `drop_block3d`): cubes of
    /// `block_size` along `d`, `h` and `w`.
    ///
    /// ```
    /// use simd_dropout::Blocks;
    /// let b = Blocks::ncdhw(2, 3, 8, 8, 8, 3);
    /// assert_eq!(b.candidates(), Some(2 * 3 * 6 * 6 * 6));
    /// ```
    pub const fn ncdhw(
        n: usize,
        c: usize,
        d: usize,
        h: usize,
        w: usize,
        block_size: usize,
    ) -> Blocks {
        Blocks {
            n,
            c,
            depth: d,
            height: h,
            width: w,
            block_size,
            three_d: true,
            channels_last: false,
        }
    }

    /// DropBlock 2-D on channels-last NHWC `[n][h][w][c]`: the blocks of
    /// [`nchw(n, c, h, w, block_size)`](Blocks::nchw), each element where NHWC puts it.
    ///
    /// ```
    /// use simd_dropout::{Backend, Blocks, Io, Seed};
    /// let (b, seed) = (Backend::detect(), Seed::from_u64(3));
    /// // x in NCHW [1][2][4][4] and the same tensor in NHWC [1][4][4][2].
    /// let x: Vec<f32> = (0..32).map(|i| i as f32).collect();
    /// let x_nhwc: Vec<f32> = (0..32).map(|i| x[(i % 2) * 16 + i / 2]).collect();
    /// let (mut y, mut y_nhwc) = (vec![0.0; 32], vec![0.0; 32]);
    /// b.block_forward(Blocks::nchw(1, 2, 4, 4, 2), 0.3, seed, 0, Io::Out { x: &x, y: &mut y }, None)?;
    /// b.block_forward(Blocks::nhwc(1, 4, 4, 2, 2), 0.3, seed, 0, Io::Out { x: &x_nhwc, y: &mut y_nhwc }, None)?;
    /// assert!((0..32).all(|i| y_nhwc[i].to_bits() == y[(i % 2) * 16 + i / 2].to_bits()));
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    pub const fn nhwc(n: usize, h: usize, w: usize, c: usize, block_size: usize) -> Blocks {
        let mut b = Blocks::nchw(n, c, h, w, block_size);
        b.channels_last = true;
        b
    }

    /// DropBlock 3-D on channels-last NDHWC `[n][d][h][w][c]`: the blocks of
    /// [`ncdhw(n, c, d, h, w, block_size)`](Blocks::ncdhw), each element where NDHWC puts it.
    pub const fn ndhwc(
        n: usize,
        d: usize,
        h: usize,
        w: usize,
        c: usize,
        block_size: usize,
    ) -> Blocks {
        let mut b = Blocks::ncdhw(n, c, d, h, w, block_size);
        b.channels_last = true;
        b
    }

    /// The geometry of a tensor of dimensions `dims` (4 for 2-D, 5 for 3-D) with the channels
    /// where `order` says; `None` for any other rank.
    ///
    /// ```
    /// use simd_dropout::{Blocks, ChannelOrder};
    /// assert_eq!(Blocks::of(ChannelOrder::First, &[8, 64, 28, 28], 7), Some(Blocks::nchw(8, 64, 28, 28, 7)));
    /// assert_eq!(Blocks::of(ChannelOrder::Last, &[8, 4, 28, 28, 64], 3), Some(Blocks::ndhwc(8, 4, 28, 28, 64, 3)));
    /// assert_eq!(Blocks::of(ChannelOrder::First, &[8, 64], 7), None);
    /// ```
    pub const fn of(order: ChannelOrder, dims: &[usize], block_size: usize) -> Option<Blocks> {
        let bs = block_size;
        Some(match (order, dims) {
            (ChannelOrder::First, &[n, c, h, w]) => Blocks::nchw(n, c, h, w, bs),
            (ChannelOrder::First, &[n, c, d, h, w]) => Blocks::ncdhw(n, c, d, h, w, bs),
            (ChannelOrder::Last, &[n, h, w, c]) => Blocks::nhwc(n, h, w, c, bs),
            (ChannelOrder::Last, &[n, d, h, w, c]) => Blocks::ndhwc(n, d, h, w, c, bs),
            _ => return None,
        })
    }

    /// The number of elements, `None` when it overflows `usize`. A zero dimension makes it 0
    /// wherever it stands, as for [`Shape`](crate::Shape) and [`View`](crate::View).
    ///
    /// ```
    /// use simd_dropout::Blocks;
    /// assert_eq!(Blocks::nchw(usize::MAX, 2, 0, 8, 3).elements(), Some(0));
    /// assert_eq!(Blocks::nchw(0, 1, usize::MAX, 8, 3).elements(), Some(0));
    /// assert_eq!(Blocks::nchw(usize::MAX, 2, 1, 8, 3).elements(), None);
    /// ```
    pub const fn elements(&self) -> Option<usize> {
        product(&[self.n, self.c, self.depth, self.height, self.width])
    }

    /// The block size after clipping to the map (0 for an empty call).
    pub const fn block_size(&self) -> usize {
        let mut bs = self.block_size;
        let mut dims = [self.height, self.width, self.depth];
        if !self.three_d {
            dims[2] = usize::MAX;
        }
        let mut i = 0;
        while i < 3 {
            if dims[i] < bs {
                bs = dims[i];
            }
            i += 1;
        }
        match self.elements() {
            Some(0) => 0,
            _ => bs,
        }
    }

    /// The words a call draws: one per block corner (`None` when the elements overflow).
    pub const fn candidates(&self) -> Option<usize> {
        match self.elements() {
            None => None,
            Some(0) => Some(0),
            Some(_) if self.block_size == 0 => Some(0),
            Some(_) => {
                let bs = self.block_size();
                let dv = if self.three_d { self.depth - bs + 1 } else { 1 };
                // At most the element count, which did not overflow.
                Some(self.n * self.c * dv * (self.height - bs + 1) * (self.width - bs + 1))
            }
        }
    }

    /// The call's geometry after the checks every operation makes.
    pub(crate) fn check(&self, len: usize) -> Result<Geometry, Error> {
        if self.block_size == 0 {
            return Err(Error::InvalidBlock {
                reason: "block_size is 0",
            });
        }
        match self.elements() {
            Some(n) if n == len => {}
            elements => {
                return Err(Error::ShapeMismatch {
                    arg: "x",
                    elements,
                    len,
                });
            }
        }
        let bs = self.block_size();
        let (bsd, dv) = match (self.three_d, len) {
            (_, 0) => (0, 0),
            (true, _) => (bs, self.depth - bs + 1),
            (false, _) => (1, 1),
        };
        Ok(Geometry {
            // Without elements, `n * c` alone may overflow; no band is visited.
            maps: if len == 0 { 0 } else { self.n * self.c },
            c: self.c,
            channels_last: self.channels_last,
            d: self.depth,
            h: self.height,
            w: self.width,
            bs,
            bsd,
            dv,
            // An empty call has no corners; otherwise `bs <= h, w`.
            hv: if len == 0 { 0 } else { self.height - bs + 1 },
            wv: if len == 0 { 0 } else { self.width - bs + 1 },
            elements: len,
            candidates: self.candidates().unwrap_or(0),
            three_d: self.three_d,
        })
    }
}

/// A checked geometry (see [`Blocks`]): the clipped block size `bs` (`bsd` along the depth:
/// 1 in 2-D) and the corner counts `dv`, `hv`, `wv`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geometry {
    maps: usize,
    c: usize,
    channels_last: bool,
    d: usize,
    h: usize,
    w: usize,
    bs: usize,
    bsd: usize,
    dv: usize,
    hv: usize,
    wv: usize,
    pub(crate) elements: usize,
    pub(crate) candidates: usize,
    three_d: bool,
}

impl Geometry {
    /// The seed rate: `gamma` as torchvision computes it in f64,
    /// `p * h * w / (bs^2 * hv * wv)` (and `d`, `bs^3`, `dv` in 3-D), clipped to 1.
    fn seeds(&self, p: f64) -> Result<Rate, Error> {
        let mut num = p;
        if self.three_d {
            num *= self.d as f64;
        }
        num = num * self.h as f64 * self.w as f64;
        let corners = self.dv as u128 * self.hv as u128 * self.wv as u128;
        let cube = (self.bs as u128).pow(if self.three_d { 3 } else { 2 });
        let gamma = num / (cube * corners) as f64;
        Rate::new(gamma.min(1.0))
    }

    /// Output rows per band: its bits and its rows of words fit the stack buffers (one row,
    /// cut into tiles, when a row is wider than a buffer).
    fn band_rows(&self) -> usize {
        if self.w > TILE {
            return 1;
        }
        let per_row = mask_words(self.w).max(1);
        (TILE / self.w.max(1)).min(ROW_WORDS / per_row).max(1)
    }

    /// The bands in element order.
    fn bands(&self) -> impl Iterator<Item = Band> + '_ {
        let rows = self.band_rows();
        let cols = self.w.min(TILE);
        (0..self.maps * self.d).flat_map(move |mz| {
            (0..self.h).step_by(rows).flat_map(move |u0| {
                (0..self.w).step_by(cols.max(1)).map(move |v0| Band {
                    map: mz / self.d,
                    plane: mz % self.d,
                    row: u0,
                    rows: rows.min(self.h - u0),
                    col: v0,
                    cols: cols.min(self.w - v0),
                })
            })
        })
    }

    /// Where a band's elements are: the index of its first, and the distance between
    /// consecutive ones (1 channels-first; `c` channels-last, where the band's row-major
    /// `(u, v)` positions are `c` apart).
    fn place(&self, band: Band) -> (usize, usize) {
        let (k, z, u0, v0) = (band.map, band.plane, band.row, band.col);
        if self.channels_last {
            let (n, ch) = (k / self.c, k % self.c);
            (
                ((((n * self.d + z) * self.h + u0) * self.w) + v0) * self.c + ch,
                self.c,
            )
        } else {
            (((k * self.d + z) * self.h + u0) * self.w + v0, 1)
        }
    }

    /// Corner planes and corner rows whose blocks reach output rows `u0 .. u0 + rows` of
    /// plane `z`.
    fn reaching(
        &self,
        z: usize,
        u0: usize,
        rows: usize,
    ) -> (core::ops::Range<usize>, core::ops::Range<usize>) {
        (
            (z + 1).saturating_sub(self.bsd)..(z + 1).min(self.dv),
            (u0 + 1).saturating_sub(self.bs)..(u0 + rows).min(self.hv),
        )
    }

    /// The keep bits of one band, row-major from bit 0 of `out` (`rows * cols` bits), from
    /// the corner words of `corners`. `last_seed` carries, from tile to tile of one wide
    /// row, the last seed column left of the tile.
    fn band(
        &self,
        corners: &mut Corners,
        band: Band,
        out: &mut [u64; ROW_WORDS],
        last_seed: &mut Option<usize>,
    ) {
        if self.w > TILE {
            return self.tile(corners, band, out, last_seed);
        }
        let rw = mask_words(self.w);
        if rw == 1 {
            return self.narrow_band(corners, band, out);
        }
        let (k, z, u0, rows) = (band.map, band.plane, band.row, band.rows);
        // The words of one row of corners: `wv` bits, which can be a word fewer than a row
        // of elements (`w` bits).
        let cw = mask_words(self.wv);
        let mut dropped = [0u64; ROW_WORDS];
        let mut row = [0u64; ROW_WORDS];
        let (planes, corner_rows) = self.reaching(z, u0, rows);
        for dz in planes {
            for i in corner_rows.clone() {
                let at = corners.row(((k * self.dv + dz) * self.hv + i) * self.wv, self.wv);
                // The keep bits are the words at or above the seed threshold.
                copy_bits(&corners.stage, at, self.wv, &mut row[..cw]);
                for (j, v) in row[..rw].iter_mut().enumerate() {
                    *v = !*v & low_bits(self.wv.saturating_sub(64 * j));
                }
                dilate_across(&mut row[..rw], self.bs);
                // Down: the block of corner row i covers rows i .. i + bs.
                for u in i.max(u0)..(i + self.bs).min(u0 + rows) {
                    let at = (u - u0) * rw;
                    for (d, s) in dropped[at..at + rw].iter_mut().zip(&row[..rw]) {
                        *d |= s;
                    }
                }
            }
        }
        for u in 0..rows {
            let at = u * rw;
            for (j, v) in row[..rw].iter_mut().enumerate() {
                *v = !dropped[at + j] & low_bits(self.w.saturating_sub(64 * j));
            }
            write_bits(out, u * self.w, &row[..rw], self.w);
        }
    }

    /// [`Geometry::band`] for one tile of a row wider than [`TILE`] columns: the seeds of the
    /// tile's corner columns (every reaching corner row ORed: dilating across commutes with
    /// the OR), dilated within the tile, plus the block of the last seed left of the tile.
    fn tile(
        &self,
        corners: &mut Corners,
        band: Band,
        out: &mut [u64; ROW_WORDS],
        last_seed: &mut Option<usize>,
    ) {
        let (k, z, u0, v0, cols) = (band.map, band.plane, band.row, band.col, band.cols);
        if v0 == 0 {
            *last_seed = None;
        }
        let words = mask_words(cols);
        let mut seeds = [0u64; ROW_WORDS];
        // Corner columns in this tile (none past `wv`).
        let count = self.wv.saturating_sub(v0).min(cols);
        if count > 0 {
            let mut row = [0u64; ROW_WORDS];
            let cw = mask_words(count);
            let (planes, corner_rows) = self.reaching(z, u0, 1);
            for dz in planes {
                for i in corner_rows.clone() {
                    let first = ((k * self.dv + dz) * self.hv + i) * self.wv + v0;
                    let at = corners.row(first, count);
                    copy_bits(&corners.stage, at, count, &mut row[..cw]);
                    for (j, (s, v)) in seeds[..cw].iter_mut().zip(&row[..cw]).enumerate() {
                        *s |= !v & low_bits(count - 64 * j);
                    }
                }
            }
        }
        let highest = (0..words)
            .rev()
            .find(|&j| seeds[j] != 0)
            .map(|j| 64 * j + 63 - seeds[j].leading_zeros() as usize);
        dilate_across(&mut seeds[..words], self.bs);
        if let Some(last) = *last_seed {
            // The last seed's block reaches columns up to `last + bs - 1`.
            let reach = last.saturating_add(self.bs).saturating_sub(v0).min(cols);
            for (j, s) in seeds[..mask_words(reach)].iter_mut().enumerate() {
                *s |= low_bits(reach - 64 * j);
            }
        }
        if let Some(h) = highest {
            *last_seed = Some(v0 + h);
        }
        for (j, (o, s)) in out[..words].iter_mut().zip(&seeds[..words]).enumerate() {
            *o = !s & low_bits(cols - 64 * j);
        }
    }
}

/// A band: output rows `row .. row + rows` and columns `col .. col + cols` of plane `plane`
/// of feature map `map` (every column, unless a row is wider than a tile).
#[derive(Clone, Copy, Debug)]
struct Band {
    map: usize,
    plane: usize,
    row: usize,
    rows: usize,
    col: usize,
    cols: usize,
}

impl Band {
    /// Its elements.
    fn len(&self) -> usize {
        self.rows * self.cols
    }
}

impl Geometry {
    /// [`Geometry::band`] for rows of at most 64 elements (one word each), the common case of
    /// convolutional feature maps: the same bits, in word arithmetic.
    fn narrow_band(&self, corners: &mut Corners, band: Band, out: &mut [u64; ROW_WORDS]) {
        let (k, z, u0, rows) = (band.map, band.plane, band.row, band.rows);
        let (wv, bs) = (self.wv, self.bs);
        // t[j]: the seeds of corner row u0 + 1 - bs + j (all planes ORed), for the rows whose
        // blocks reach the band: j < rows + bs - 1 <= 2 * ROW_WORDS.
        let mut t = [0u64; 2 * ROW_WORDS];
        let span = rows + bs - 1;
        let first_row = (u0 + 1).saturating_sub(bs);
        let skip = (bs - 1).saturating_sub(u0); // rows above the map
        let (planes, corner_rows) = self.reaching(z, u0, rows);
        let last_row = corner_rows.end;
        for dz in planes {
            let base = (k * self.dv + dz) * self.hv;
            // The plane's corner rows in one window when they fit, else row by row.
            let whole = (last_row - first_row) * wv <= 64 * ROW_WORDS;
            if whole && first_row < last_row {
                corners.row((base + first_row) * wv, (last_row - first_row) * wv);
            }
            for i in first_row..last_row {
                let at = corners.row((base + i) * wv, wv);
                t[skip + i - first_row] |= !bits_at(&corners.stage, at) & low_bits(wv);
            }
        }
        let t = &mut t[..span];
        // Across: doubling spans of shifted ORs (bs <= w <= 64 here).
        let mut done = 1;
        while done < bs {
            let step = done.min(bs - done);
            for v in t.iter_mut() {
                *v |= *v << step;
            }
            done += step;
        }
        // Down: t[j] becomes the OR of t[j .. j + bs], the block rows over output row u0 + j.
        let mut done = 1;
        while done < bs {
            let step = done.min(bs - done);
            for j in 0..span - step {
                t[j] |= t[j + step];
            }
            done += step;
        }
        let dropped = &t[..rows];
        // Pack the kept rows, w bits each, from bit 0.
        let (w, mask) = (self.w, low_bits(self.w));
        let (mut acc, mut filled, mut word) = (0u128, 0, 0);
        for d in dropped {
            acc |= u128::from(!d & mask) << filled;
            filled += w;
            if filled >= 64 {
                out[word] = acc as u64;
                word += 1;
                acc >>= 64;
                filled -= 64;
            }
        }
        if filled > 0 {
            out[word] = acc as u64;
        }
    }
}

/// The 64 bits of `words` from bit `start` on (zero past the end).
#[inline(always)]
fn bits_at(words: &[u64], start: usize) -> u64 {
    let (w, s) = (start / 64, start % 64);
    let lo = words.get(w).copied().unwrap_or(0) >> s;
    let hi = match s {
        0 => 0,
        _ => words.get(w + 1).copied().unwrap_or(0) << (64 - s),
    };
    lo | hi
}

/// A window of the call's corner decisions (keep bits: set when the word is at or above the
/// seed threshold), drawn in runs of up to `64 * ROW_WORDS` corners so that consecutive
/// bands, which read consecutive corners, seek the stream rarely.
struct Corners {
    backend: Backend,
    at: At,
    seeds: Rate,
    /// Corners in the call.
    total: usize,
    stage: [u64; ROW_WORDS],
    /// The corner of bit 0 of `stage`, and how many bits are valid.
    start: usize,
    len: usize,
}

impl Corners {
    fn new(backend: Backend, at: At, seeds: Rate, total: usize) -> Corners {
        Corners {
            backend: backend.serial(),
            at,
            seeds,
            total,
            stage: [0; ROW_WORDS],
            start: 0,
            len: 0,
        }
    }

    /// The bit of `stage` where corner `first` is, after making sure that corners
    /// `first .. first + count` (`count <= 64 * ROW_WORDS`) are in the window.
    fn row(&mut self, first: usize, count: usize) -> usize {
        if first < self.start || first + count > self.start + self.len {
            // Whole words, so that no call ends in a scalar tail (the corners past the call's
            // last are drawn and never used).
            let len = (64 * ROW_WORDS).min(mask_words(self.total - first) * 64);
            let (seed, offset) = self.at;
            self.backend.generate_at(
                seed,
                offset.wrapping_add(first as u64),
                self.seeds,
                Data::<f32>::MaskOnly(len),
                Some(BitsMut::new(&mut self.stage[..len / 64])),
            );
            (self.start, self.len) = (first, len);
        }
        first - self.start
    }
}

/// ORs every set bit into the `bs - 1` bits above it (towards higher columns): a seed at
/// column `j` covers columns `j .. j + bs`. Doubling spans: `log2(bs)` shifted ORs.
fn dilate_across(row: &mut [u64], bs: usize) {
    let mut span = 1;
    while span < bs {
        let step = span.min(bs - span);
        // row |= row << step, across words, from the top word down.
        for j in (0..row.len()).rev() {
            let (q, r) = (step / 64, step % 64);
            let from = |i: usize| if i <= j { row[j - i] } else { 0 };
            let shifted = match r {
                0 => from(q),
                _ => (from(q) << r) | (if q < j { from(q + 1) >> (64 - r) } else { 0 }),
            };
            row[j] |= shifted;
        }
        span += step;
    }
}

/// `f(band, its keep bits)` for every band of the call, in element order.
fn each_band(
    backend: Backend,
    g: &Geometry,
    at: At,
    seeds: Rate,
    mut f: impl FnMut(Band, &[u64; ROW_WORDS]),
) {
    let mut bits = [0u64; ROW_WORDS];
    let mut corners = Corners::new(backend, at, seeds, g.candidates);
    let mut last_seed = None;
    for band in g.bands() {
        g.band(&mut corners, band, &mut bits, &mut last_seed);
        f(band, &bits);
    }
}

/// Bits `0 .. n` of `src` to bits `start`, `start + step`, ... of `dst`.
fn scatter_bits(dst: &mut [u64], start: usize, step: usize, src: &[u64], n: usize) {
    let mut e = start;
    for (j, &w) in src[..mask_words(n)].iter().enumerate() {
        for b in 0..(n - 64 * j).min(64) {
            let (word, s) = (&mut dst[e / 64], e % 64);
            *word = (*word & !(1 << s)) | (((w >> b) & 1) << s);
            e += step;
        }
    }
}

/// Set bits among the first `n` of `words`.
fn popcount(words: &[u64], n: usize) -> u64 {
    words[..mask_words(n)]
        .iter()
        .enumerate()
        .map(|(j, w)| u64::from((w & low_bits(n - 64 * j)).count_ones()))
        .sum()
}

/// The survivors' scale, `numel / (eps + kept)` with `eps = 1e-6`, in f64 (torchvision's
/// formula); a rate that applies it to the kept bits.
fn scale(g: &Geometry, p: f64, kept: u64) -> Rate {
    Rate {
        p,
        threshold: 0,
        scale: g.elements as f64 / (1e-6 + kept as f64),
    }
}

/// The forward pass (and the backward by recompute): keep bits to `mask` when given.
pub(crate) fn forward<T: Element>(
    backend: Backend,
    g: Geometry,
    p: f64,
    at: At,
    mut data: Data<'_, T>,
    mask: Option<BitsMut<'_>>,
) -> Result<(), Error> {
    if p == 0.0 || g.elements == 0 {
        // torchvision's `p == 0`: the identity; nothing is drawn.
        data.map(|x, _| x);
        set_all(mask, g.elements);
        return Ok(());
    }
    let seeds = g.seeds(p)?;
    match mask {
        Some(m) => {
            let (words, start) = (m.words, m.start);
            let mut kept = 0;
            each_band(backend, &g, at, seeds, |band, bits| {
                let n = band.len();
                kept += popcount(bits, n);
                match g.place(band) {
                    (first, 1) => write_bits(words, start + first, bits, n),
                    (first, step) => scatter_bits(words, start + first, step, bits, n),
                }
            });
            backend.apply_at(Bits::at(words, start), scale(&g, p, kept), data);
        }
        None => {
            // The scale needs every band's count before any element is written.
            let mut kept = 0;
            each_band(backend, &g, at, seeds, |band, bits| {
                kept += popcount(bits, band.len());
            });
            let rate = scale(&g, p, kept);
            let s = scale_of::<T>(&rate);
            each_band(backend, &g, at, seeds, |band, bits| {
                let n = band.len();
                match g.place(band) {
                    (first, 1) => {
                        let piece = data.sub(first, n);
                        backend.serial().apply_at(Bits::new(bits), rate, piece);
                    }
                    // Channels-last without a mask: element by element, `step` apart (with a
                    // mask the scattered bits are applied by the kernels in one pass).
                    (first, step) => data.map_step(first, step, n, |x, i| {
                        drop_one(x, (bits[i / 64] >> (i % 64)) & 1 == 1, s)
                    }),
                }
            });
        }
    }
    Ok(())
}

/// The backward pass: the stored block mask applied with the scale its kept bits give, or the
/// forward's bits computed again.
pub(crate) fn backward<T: Element>(
    backend: Backend,
    g: Geometry,
    p: f64,
    at: At,
    mut data: Data<'_, T>,
    mask: Option<Bits<'_>>,
) -> Result<(), Error> {
    let Some(m) = mask else {
        return forward(backend, g, p, at, data, None);
    };
    if p == 0.0 || g.elements == 0 {
        data.map(|x, _| x);
        return Ok(());
    }
    let mut kept = 0;
    let mut chunk = [0u64; ROW_WORDS];
    for start in (0..g.elements).step_by(64 * ROW_WORDS) {
        let n = (g.elements - start).min(64 * ROW_WORDS);
        copy_bits(m.words, m.start + start, n, &mut chunk[..mask_words(n)]);
        kept += popcount(&chunk, n);
    }
    backend.apply_at(m, scale(&g, p, kept), data);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dilation_covers_the_next_columns() {
        for bs in 1..=70 {
            for seed in [0usize, 1, 5, 63, 64, 100, 190] {
                let mut row = [0u64; 3];
                row[seed / 64] |= 1 << (seed % 64);
                dilate_across(&mut row, bs);
                for col in 0..192 {
                    let set = (row[col / 64] >> (col % 64)) & 1 == 1;
                    assert_eq!(
                        set,
                        col >= seed && col < seed + bs,
                        "bs {bs} seed {seed} col {col}"
                    );
                }
            }
        }
    }
}
