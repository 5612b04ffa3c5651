//! Element dropout on strided views: every element uses the word of its row-major position
//! in the full logical tensor, so a transposed, sliced or sharded view gets, in one call, the
//! bits of the contiguous call on the whole tensor.
//!
//! Rows whose elements are contiguous in both buffers go through the vectorized kernels
//! directly. Other rows draw their keep bits with the vectorized mask kernel, 4096 at a
//! time, and apply them with a strided loop.

use crate::Error;
use crate::backend::Backend;
use crate::element::Element;
use crate::job::{Bits, BitsMut, Data, Rate, View, copy_bits, mask_words, write_bits};
use crate::ops::At;
use crate::reference::{drop_one, scale_of};

/// The elements of a strided call: buffers and their [`View`]s.
///
/// ```
/// use simd_dropout::{Strided, View};
/// let x = [1.0f32; 12];
/// let mut y = [0.0f32; 12];
/// let view = View::strided(&[3, 4], &[1, 3], 0)?; // column-major 3x4
/// let io = Strided::Out { x: &x, x_view: view, y: &mut y, y_view: view.compact() };
/// simd_dropout::Backend::detect().strided_forward(0.5, Default::default(), 0, io, None)?;
/// # Ok::<(), simd_dropout::Error>(())
/// ```
// Views are plain `Copy` data (no allocation in `no_std`); the enum is built per call.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Strided<'a, T> {
    /// Read `x` through `x_view`, write `y` through `y_view`; the two views must cover the
    /// same positions (dimensions and window).
    Out {
        /// The input buffer.
        x: &'a [T],
        /// Where the input elements sit in `x`.
        x_view: View,
        /// The output buffer.
        y: &'a mut [T],
        /// Where the output elements go in `y`.
        y_view: View,
    },
    /// Read and overwrite the elements of `view` in `xy`.
    InPlace {
        /// The buffer.
        xy: &'a mut [T],
        /// Where the elements sit in `xy`.
        view: View,
    },
}

impl<T> Strided<'_, T> {
    /// The number of elements.
    pub(crate) fn len(&self) -> usize {
        match self {
            Strided::Out { x_view, .. } => x_view.len(),
            Strided::InPlace { view, .. } => view.len(),
        }
    }

    /// The number of elements of the full logical tensor.
    pub(crate) fn full_len(&self) -> usize {
        match self {
            Strided::Out { x_view, .. } => x_view.full_len(),
            Strided::InPlace { view, .. } => view.full_len(),
        }
    }

    /// Every view fits its buffer, written views do not overlap themselves, and the input and
    /// output cover the same positions.
    pub(crate) fn check(&self) -> Result<(), Error> {
        match self {
            Strided::Out {
                x,
                x_view,
                y,
                y_view,
            } => {
                if !x_view.same_positions(y_view) {
                    return Err(Error::InvalidView {
                        reason: "the input and output views cover different positions",
                    });
                }
                x_view.check_fits(x.len())?;
                y_view.check_fits(y.len())?;
                y_view.check_no_overlap()
            }
            Strided::InPlace { xy, view } => {
                view.check_fits(xy.len())?;
                view.check_no_overlap()
            }
        }
    }
}

/// The mask of a strided call: written by a forward, read by a backward (or absent).
pub(crate) enum Mask<'a> {
    Out(Option<BitsMut<'a>>),
    In(Option<Bits<'a>>),
}

/// Columns staged per row at a time, and rows per tile of the strided path.
const CHUNK: usize = 4096;
const TILE_ROWS: usize = 32;

/// Runs a checked strided call.
pub(crate) fn run<T: Element>(
    backend: Backend,
    rate: Rate,
    at: At,
    io: Strided<'_, T>,
    mut mask: Mask<'_>,
) {
    let (x_view, y_view, mut el) = match io {
        Strided::Out {
            x,
            x_view,
            y,
            y_view,
        } => (x_view, y_view, Elements::Out(x, y)),
        Strided::InPlace { xy, view } => (view, view, Elements::InPlace(xy)),
    };
    // Rows adjacent in memory and in the stream become one longer row.
    let (x_view, y_view) = View::merged(&x_view, &y_view);
    let (xs, ys) = (x_view.rows(), y_view.rows());
    let (len, sx, sy) = (xs.row_len, xs.row_stride, ys.row_stride);
    let rows = xs.zip(ys).map(|(a, b)| Row {
        len,
        x: (a.at, sx),
        y: (b.at, sy),
        pos: at.1.wrapping_add(a.pos),
        bit: a.index,
    });
    if (sx == 1 && sy == 1) || len <= 1 {
        for row in rows {
            contiguous_row(backend, rate, at.0, el.reborrow(), row, &mut mask);
        }
        return;
    }
    if sy == 1 && sx.unsigned_abs() < NEAR {
        // A contiguous output row reading a broadcast (stride 0), reversed or short-stride
        // input: a cache-friendly gather into a stack chunk, then the vector kernels.
        if let Elements::Out(x, y) = el {
            for row in rows {
                gathered_row(backend, rate, at.0, (x, &mut *y), row, &mut mask);
            }
            return;
        }
    }
    // Strided rows go in tiles of TILE_ROWS rows by 64 columns: the rows' bits are drawn
    // once per 4096 columns, and a tile touches few pages and cache lines of either buffer
    // (a transposed view reads each line of a column for 16 rows in a row).
    let mut block = [Row::default(); TILE_ROWS];
    let mut n = 0;
    for row in rows {
        block[n] = row;
        n += 1;
        if n == TILE_ROWS {
            tiles(backend, rate, at.0, &mut el, &block, &mut mask);
            n = 0;
        }
    }
    if n > 0 {
        tiles(backend, rate, at.0, &mut el, &block[..n], &mut mask);
    }
}

/// The buffers of a call.
enum Elements<'a, T> {
    Out(&'a [T], &'a mut [T]),
    InPlace(&'a mut [T]),
}

impl<T> Elements<'_, T> {
    fn reborrow(&mut self) -> Elements<'_, T> {
        match self {
            Elements::Out(x, y) => Elements::Out(x, y),
            Elements::InPlace(xy) => Elements::InPlace(xy),
        }
    }
}

/// One row: its length, `(buffer index, stride)` in the input and the output, its stream
/// position and its first mask bit.
#[derive(Clone, Copy, Default)]
struct Row {
    len: usize,
    x: (usize, isize),
    y: (usize, isize),
    pos: u64,
    bit: usize,
}

/// A row whose elements are contiguous in both buffers: the kernels directly.
fn contiguous_row<T: Element>(
    backend: Backend,
    rate: Rate,
    seed: crate::Seed,
    el: Elements<'_, T>,
    row: Row,
    mask: &mut Mask<'_>,
) {
    let n = row.len;
    let data = match el {
        Elements::Out(x, y) => Data::Out {
            x: &x[row.x.0..row.x.0 + n],
            y: crate::kernels::as_uninit(&mut y[row.y.0..row.y.0 + n]),
        },
        Elements::InPlace(xy) => Data::InPlace(&mut xy[row.x.0..row.x.0 + n]),
    };
    match mask {
        Mask::Out(m) => {
            let m = m.as_mut().map(|m| m.advanced(row.bit));
            backend.generate_at(seed, row.pos, rate, data, m);
        }
        Mask::In(Some(m)) => backend.apply_at(Bits::at(m.words, m.start + row.bit), rate, data),
        Mask::In(None) => backend.generate_at(seed, row.pos, rate, data, None),
    }
}

/// Input strides below this many elements gather rows directly (each cache line is reused
/// within the row); larger ones go through tiles.
const NEAR: usize = 16;

/// A row whose output is contiguous and whose input is near-contiguous, through a stack chunk.
fn gathered_row<T: Element>(
    backend: Backend,
    rate: Rate,
    seed: crate::Seed,
    (x, y): (&[T], &mut [T]),
    row: Row,
    mask: &mut Mask<'_>,
) {
    const GATHER: usize = 1024;
    let mut buf = [T::ZERO; GATHER];
    for k0 in (0..row.len).step_by(GATHER) {
        let len = (row.len - k0).min(GATHER);
        for (k, b) in buf[..len].iter_mut().enumerate() {
            // Checked against the buffer by `check_fits`, so never negative.
            *b = x[(row.x.0 as isize + (k0 + k) as isize * row.x.1) as usize];
        }
        let start = row.y.0 + k0;
        let data = Data::Out {
            x: &buf[..len],
            y: crate::kernels::as_uninit(&mut y[start..start + len]),
        };
        let pos = row.pos.wrapping_add(k0 as u64);
        match mask {
            Mask::Out(m) => {
                let m = m.as_mut().map(|m| m.advanced(row.bit + k0));
                backend.generate_at(seed, pos, rate, data, m);
            }
            Mask::In(Some(m)) => {
                backend.apply_at(Bits::at(m.words, m.start + row.bit + k0), rate, data)
            }
            Mask::In(None) => backend.generate_at(seed, pos, rate, data, None),
        }
    }
}

/// Up to `TILE_ROWS` strided rows of equal length, in tiles of 64 columns.
fn tiles<T: Element>(
    backend: Backend,
    rate: Rate,
    seed: crate::Seed,
    el: &mut Elements<'_, T>,
    rows: &[Row],
    mask: &mut Mask<'_>,
) {
    let n = rows[0].len;
    let scale = scale_of::<T>(&rate);
    let mut staged = [[0u64; CHUNK / 64]; TILE_ROWS];
    for k0 in (0..n).step_by(CHUNK) {
        let len = (n - k0).min(CHUNK);
        for (words, row) in staged.iter_mut().zip(rows) {
            let words = &mut words[..mask_words(len)];
            match mask {
                Mask::In(Some(_)) if rate.drops_all() => words.fill(0),
                Mask::In(Some(m)) => copy_bits(m.words, m.start + row.bit + k0, len, words),
                _ => backend.serial().generate_at(
                    seed,
                    row.pos.wrapping_add(k0 as u64),
                    rate,
                    Data::<T>::MaskOnly(len),
                    Some(BitsMut::new(words)),
                ),
            }
            if let Mask::Out(Some(m)) = mask {
                write_bits(m.words, m.start + row.bit + k0, words, len);
            }
        }
        // Sub-tiles of SUB rows by 64 columns through a stack copy: read in runs along the
        // input's contiguous direction, written in runs along the output's (the vector
        // kernel when output rows are contiguous), so that each cache line is touched once,
        // completely, and the misses of a tile overlap (a transposed view reads a new line
        // for every column).
        for c0 in (0..len).step_by(64) {
            let cw = (len - c0).min(64);
            let k = (k0 + c0) as isize;
            // Checked against the buffers by `check_fits`, so never negative.
            let at = |(start, stride): (usize, isize), c: usize| {
                (start as isize + (k + c as isize) * stride) as usize
            };
            for r0 in (0..rows.len()).step_by(SUB) {
                let sub = &rows[r0..(r0 + SUB).min(rows.len())];
                let rh = sub.len();
                // Rows one element apart all through the sub-tile (a tile may span an outer
                // dimension, where the step changes).
                let unit = |side: fn(&Row) -> usize| {
                    rh > 1 && sub.windows(2).all(|w| side(&w[1]) == side(&w[0]) + 1)
                };
                let (x_step, y_step) = (unit(|r| r.x.0), unit(|r| r.y.0));
                let mut tile = [[T::ZERO; 64]; SUB];
                let src: &[T] = match el {
                    Elements::Out(x, _) => x,
                    Elements::InPlace(xy) => xy,
                };
                if x_step {
                    for c in 0..cw {
                        let start = at(sub[0].x, c);
                        for (t, &v) in tile.iter_mut().zip(&src[start..start + rh]) {
                            t[c] = v;
                        }
                    }
                } else {
                    for (t, row) in tile.iter_mut().zip(sub) {
                        for (c, v) in t[..cw].iter_mut().enumerate() {
                            *v = src[at(row.x, c)];
                        }
                    }
                }
                let word = |r: usize| staged[r0 + r][c0 / 64];
                let dst: &mut [T] = match el {
                    Elements::Out(_, y) => y,
                    Elements::InPlace(xy) => xy,
                };
                if sub[0].y.1 == 1 {
                    for (r, (t, row)) in tile.iter().zip(sub).enumerate() {
                        let start = at(row.y, 0);
                        let out = crate::kernels::as_uninit(&mut dst[start..start + cw]);
                        let data = Data::Out {
                            x: &t[..cw],
                            y: out,
                        };
                        backend.apply(&[word(r)], rate, data);
                    }
                } else if y_step {
                    for c in 0..cw {
                        let start = at(sub[0].y, c);
                        for (r, (o, t)) in dst[start..start + rh].iter_mut().zip(&tile).enumerate()
                        {
                            *o = drop_one(t[c], (word(r) >> c) & 1 == 1, scale);
                        }
                    }
                } else {
                    for (r, (t, row)) in tile.iter().zip(sub).enumerate() {
                        for (c, &v) in t[..cw].iter().enumerate() {
                            dst[at(row.y, c)] = drop_one(v, (word(r) >> c) & 1 == 1, scale);
                        }
                    }
                }
            }
        }
    }
}

/// Rows per sub-tile of the strided path.
const SUB: usize = 16;
