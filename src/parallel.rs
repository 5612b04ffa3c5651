//! Splitting one call across rayon threads (feature `rayon`).
//!
//! A job is cut in halves at a multiple of 64 elements (whole mask words) until the pieces
//! are small, and the halves run under `rayon::join` in the pool the call runs in. Each piece
//! starts its stream at `offset + first element`, so the output bits and mask words are those
//! of the serial call for any number of threads and any cut.

use crate::kernels::Data;

/// Below this many elements a call stays serial: the fork-join costs a few microseconds,
/// about the time 8Ki elements take on one core (see `examples/throughput.rs`).
pub(crate) const SERIAL_BELOW: usize = 1 << 16;

/// Pieces are cut down to at most this many elements (whole mask words).
const PIECE: usize = 1 << 15;

/// The cut of `n > PIECE` elements: the middle, rounded down to whole mask words.
fn cut(n: usize) -> usize {
    (n / 2) & !63
}

/// Splits a mask at element `mid` (a multiple of 64).
fn split_mask(mask: Option<&mut [u64]>, mid: usize) -> (Option<&mut [u64]>, Option<&mut [u64]>) {
    match mask {
        Some(m) => {
            let (a, b) = m.split_at_mut(mid / 64);
            (Some(a), Some(b))
        }
        None => (None, None),
    }
}

/// `run(offset, data, mask)` over pieces of the job, in parallel.
pub(crate) fn generate<T: Send + Sync>(
    offset: u64,
    data: Data<'_, T>,
    mask: Option<&mut [u64]>,
    run: &(impl Fn(u64, Data<'_, T>, Option<&mut [u64]>) + Sync),
) {
    let n = data.len();
    if n <= PIECE {
        return run(offset, data, mask);
    }
    let mid = cut(n);
    let (d1, d2) = data.split_at(mid);
    let (m1, m2) = split_mask(mask, mid);
    rayon::join(
        || generate(offset, d1, m1, run),
        || generate(offset.wrapping_add(mid as u64), d2, m2, run),
    );
}

/// `run(mask, data)` over pieces of a mask application, in parallel.
pub(crate) fn apply<T: Send + Sync>(
    mask: &[u64],
    data: Data<'_, T>,
    run: &(impl Fn(&[u64], Data<'_, T>) + Sync),
) {
    let n = data.len();
    if n <= PIECE {
        return run(mask, data);
    }
    let mid = cut(n);
    let (d1, d2) = data.split_at(mid);
    let (m1, m2) = mask.split_at(mid / 64);
    rayon::join(|| apply(m1, d1, run), || apply(m2, d2, run));
}
