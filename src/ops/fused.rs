//! Fused bias + dropout + residual (the end of a transformer block):
//! `y = residual + dropout(x + bias)`, with the bias gradient summed in the contract's order.

use crate::Error;
use crate::backend::Backend;
use crate::element::{Acc, Element, Kind};
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

/// Elements per block of the serial f32/f64 backward: whole rows, about 64 KiB of f32, so
/// that a block's gradient is still in L2 when its column sums read it.
const BLOCK: usize = 1 << 14;

/// The backward pass: `gx` as dropout's backward, then the column sums of `gx` into `g_bias`.
///
/// f32 and f64 sum in their own type, so on one thread the sums go straight into `g_bias`
/// block by block, right after the kernel wrote each block (one pass over memory instead of
/// two). The other types, and a parallel backend (whose pieces would otherwise sum in a
/// different order), sum after the whole kernel, in the computing type. Both orders add each
/// column's rows first to last.
pub(crate) fn backward<T: Element>(
    backend: Backend,
    g_bias: &mut [T],
    rate: Rate,
    at: At,
    io: Io<'_, T>,
    mask: Option<Bits<'_>>,
) {
    // The kernel's input (none in place) and the storage that stays readable for the sums.
    let (src, gx): (Option<&[T]>, &mut [T]) = match io {
        Io::Out { x, y } => (Some(x), y),
        Io::InPlace(xy) => (None, xy),
        // Initialized from the gradient first, then masked in place.
        Io::Uninit { x, y } => (None, y.write_copy_of_slice(x)),
    };
    let kernel = |backend: Backend, start: usize, gx: &mut [T]| {
        let data = match src {
            Some(x) => Data::Out {
                x: &x[start..start + gx.len()],
                y: crate::kernels::as_uninit(gx),
            },
            None => Data::InPlace(gx),
        };
        let bits = mask.map(|m| Bits::at(m.words, m.start + start));
        element::backward(
            backend,
            rate,
            (at.0, at.1.wrapping_add(start as u64)),
            data,
            bits,
        );
    };
    let cols = g_bias.len();
    let own_type = matches!(T::KIND, Kind::F32 | Kind::F64);
    if !own_type || backend.is_parallel() || cols == 0 {
        kernel(backend, 0, gx);
        return backend.with_isa(|| column_sums(gx, g_bias));
    }
    g_bias.fill(T::ZERO);
    let rows = (BLOCK / cols).max(1) * cols;
    for (b, block) in gx.chunks_mut(rows).enumerate() {
        kernel(backend, b * rows, block);
        backend.with_isa(|| {
            for row in block.chunks_exact(cols) {
                for (a, v) in g_bias.iter_mut().zip(row) {
                    // `narrow(widen(a) + widen(v))`, exactly `a + v` for f32 and f64.
                    *a = T::narrow(a.widen() + v.widen());
                }
            }
        });
    }
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
