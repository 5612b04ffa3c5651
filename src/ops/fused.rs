//! Fused bias + dropout + residual (the end of a transformer block):
//! `y = residual + dropout(x + bias)`, with the bias gradient summed in the contract's order.

use crate::Error;
use crate::backend::Backend;
use crate::element::{Acc, Element};
use crate::job::{Bits, BitsMut, Data, Io, Rate};
use crate::kernels::variants::Residual;
use crate::ops::{At, element};

/// Rows of `cols` elements in a slice of `len` (`arg` is the bias or its gradient):
/// `ShapeMismatch` unless `cols` divides `len` (an empty bias fits only an empty slice).
pub(crate) fn check_rows(arg: &'static str, len: usize, cols: usize) -> Result<(), Error> {
    let fits = if cols == 0 {
        len == 0
    } else {
        len.is_multiple_of(cols)
    };
    if fits {
        Ok(())
    } else {
        Err(Error::RowMismatch { arg, cols, len })
    }
}

/// The forward pass; the keep bits go to `mask` when given.
pub(crate) fn forward<T: Element>(
    backend: Backend,
    (bias, residual): (&[T], &[T]),
    rate: Rate,
    at: At,
    data: Data<'_, T>,
    mask: Option<BitsMut<'_>>,
) {
    // A call with elements has a non-empty bias.
    let map = Residual::new(bias, residual, 0, rate.scale);
    backend.generate_map_at(at.0, at.1, rate, &map, data, mask);
}

/// The backward pass: `gx` as dropout's backward, then the column sums of `gx` into `g_bias`.
pub(crate) fn backward<T: Element>(
    backend: Backend,
    g_bias: &mut [T],
    rate: Rate,
    at: At,
    io: Io<'_, T>,
    mask: Option<Bits<'_>>,
) {
    // Run the kernel on storage that stays readable for the sums.
    let gx: &mut [T] = match io {
        Io::Out { x, y } => {
            element::backward(
                backend,
                rate,
                at,
                Data::Out {
                    x,
                    y: crate::kernels::as_uninit(&mut *y),
                },
                mask,
            );
            y
        }
        Io::InPlace(xy) => {
            element::backward(backend, rate, at, Data::InPlace(xy), mask);
            xy
        }
        Io::Uninit { x, y } => {
            // Initialized from the gradient first, then masked in place.
            let y = y.write_copy_of_slice(x);
            element::backward(backend, rate, at, Data::InPlace(y), mask);
            y
        }
    };
    backend.with_isa(|| column_sums(gx, g_bias));
}

/// Column sums of `g` (`[rows][cols]`, `cols = out.len()`) in row order, one accumulator per
/// column in the type's computing type, rounded once at the end.
fn column_sums<T: Element>(g: &[T], out: &mut [T]) {
    const COLS: usize = 1024;
    let cols = out.len();
    let mut acc = [T::Acc::default(); COLS];
    for c0 in (0..cols).step_by(COLS) {
        let width = (cols - c0).min(COLS);
        let acc = &mut acc[..width];
        acc.fill(T::Acc::from_f64(0.0));
        for row in g.chunks_exact(cols) {
            for (a, v) in acc.iter_mut().zip(&row[c0..c0 + width]) {
                *a = *a + v.widen();
            }
        }
        for (o, a) in out[c0..c0 + width].iter_mut().zip(acc.iter()) {
            *o = T::narrow(*a);
        }
    }
}
