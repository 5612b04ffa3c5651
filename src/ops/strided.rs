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

/// Bits per staged chunk of a strided row.
const CHUNK: usize = 4096;

/// Runs a checked strided call.
pub(crate) fn run<T: Element>(
    backend: Backend,
    rate: Rate,
    at: At,
    io: Strided<'_, T>,
    mut mask: Mask<'_>,
) {
    match io {
        Strided::Out {
            x,
            x_view,
            y,
            y_view,
        } => {
            let ys = y_view.rows();
            for (xr, yr) in x_view.rows().zip(ys.clone()) {
                let row = Row {
                    len: ys.row_len,
                    x: (xr.at, x_view.rows().row_stride),
                    y: (yr.at, ys.row_stride),
                    pos: at.1.wrapping_add(xr.pos),
                    bit: xr.index,
                };
                one_row(backend, rate, at.0, Elements::Out(x, y), row, &mut mask);
            }
        }
        Strided::InPlace { xy, view } => {
            let rows = view.rows();
            let stride = rows.row_stride;
            for r in rows.clone() {
                let row = Row {
                    len: rows.row_len,
                    x: (r.at, stride),
                    y: (r.at, stride),
                    pos: at.1.wrapping_add(r.pos),
                    bit: r.index,
                };
                one_row(
                    backend,
                    rate,
                    at.0,
                    Elements::InPlace(&mut *xy),
                    row,
                    &mut mask,
                );
            }
        }
    }
}

/// The buffers of a row.
enum Elements<'a, 'b, T> {
    Out(&'a [T], &'b mut [T]),
    InPlace(&'b mut [T]),
}

/// One row: its length, `(buffer index, stride)` in the input and the output, its stream
/// position and its first mask bit.
#[derive(Clone, Copy)]
struct Row {
    len: usize,
    x: (usize, isize),
    y: (usize, isize),
    pos: u64,
    bit: usize,
}

fn one_row<T: Element>(
    backend: Backend,
    rate: Rate,
    seed: crate::Seed,
    el: Elements<'_, '_, T>,
    row: Row,
    mask: &mut Mask<'_>,
) {
    let n = row.len;
    if row.x.1 == 1 && row.y.1 == 1 {
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
        return;
    }
    // A strided row: stage the keep bits, then a strided loop.
    let scale = scale_of::<T>(&rate);
    let mut bits = [0u64; CHUNK / 64];
    let mut el = el;
    for k0 in (0..n).step_by(CHUNK) {
        let len = (n - k0).min(CHUNK);
        let words = &mut bits[..mask_words(len)];
        match mask {
            Mask::In(Some(m)) if rate.drops_all() => {
                let _ = m;
                words.fill(0);
            }
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
        let index = |(at, stride): (usize, isize), k: usize| {
            (at as isize + (k0 + k) as isize * stride) as usize
        };
        let kept = |k: usize| (words[k / 64] >> (k % 64)) & 1 == 1;
        match &mut el {
            Elements::Out(x, y) => {
                for k in 0..len {
                    y[index(row.y, k)] = drop_one(x[index(row.x, k)], kept(k), scale);
                }
            }
            Elements::InPlace(xy) => {
                for k in 0..len {
                    let i = index(row.x, k);
                    xy[i] = drop_one(xy[i], kept(k), scale);
                }
            }
        }
    }
}
