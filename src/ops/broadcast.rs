//! Broadcast (structured) dropout: one decision per `(outer, inner)` pair of a
//! [`Shape`], shared by every `mid` (channel dropout, column dropout, drop-path).
//!
//! Work is bounded by the elements and the mask bits a call writes: with no elements and no
//! mask nothing is drawn. Long rows (`inner >= 64`) apply a chunk of decisions directly to
//! every row that shares it; short rows are expanded into element bits first, so that every
//! shape goes through the vectorized kernels rather than a call per row.

use crate::backend::Backend;
use crate::element::Element;
use crate::job::{Bits, BitsMut, Data, Rate, Shape, low_bits, mask_words};
use crate::ops::At;
use crate::ops::decisions::{CHUNK, CHUNK_WORDS, Decisions, decide};

/// The forward pass; the decisions go to `mask` when given.
pub(crate) fn forward<T: Element>(
    backend: Backend,
    shape: Shape,
    rate: Rate,
    at: At,
    data: Data<'_, T>,
    mask: Option<BitsMut<'_>>,
) {
    if mask.is_none() && data.len() == 0 {
        return;
    }
    let (outer, _, inner) = shape.dims();
    let dec = decide(backend, at, rate, outer * inner, mask);
    run(backend, shape, rate, &dec, data);
}

/// The backward pass: the stored decisions, or the forward's regenerated.
pub(crate) fn backward<T: Element>(
    backend: Backend,
    shape: Shape,
    rate: Rate,
    at: At,
    data: Data<'_, T>,
    mask: Option<Bits<'_>>,
) {
    let dec = match mask {
        Some(m) => Decisions::Mask(m),
        None => Decisions::Stream { backend, at, rate },
    };
    run(backend, shape, rate, &dec, data);
}

fn run<T: Element>(
    backend: Backend,
    shape: Shape,
    rate: Rate,
    dec: &Decisions<'_>,
    mut data: Data<'_, T>,
) {
    if data.len() == 0 {
        return;
    }
    if rate.drops_all() {
        return data.fill(T::ZERO);
    }
    let (outer, mid, inner) = shape.dims();
    // Whole groups when there are several, else whole rows.
    let unit = if outer >= 2 { mid * inner } else { inner };
    let piece = |first: usize, d: Data<'_, T>| {
        let rows = Rows {
            mid,
            inner,
            first_row: first / inner,
        };
        if inner >= 64 {
            long_rows(backend.serial(), rate, dec, rows, d);
        } else {
            short_rows(backend.serial(), rate, dec, rows, d);
        }
    };
    backend.pieces(data, unit, &piece);
}

/// The rows `(o, m)` of a piece: row `r` of the whole is group `r / mid`.
#[derive(Clone, Copy)]
struct Rows {
    mid: usize,
    inner: usize,
    first_row: usize,
}

/// Rows of at least 64 elements: each chunk of a group's decisions is drawn once and applied
/// to every row of the group in the piece.
fn long_rows<T: Element>(
    backend: Backend,
    rate: Rate,
    dec: &Decisions<'_>,
    rows: Rows,
    mut d: Data<'_, T>,
) {
    let Rows {
        mid,
        inner,
        first_row,
    } = rows;
    let count = d.len() / inner;
    let mut bits = [0u64; CHUNK_WORDS];
    let mut r = 0;
    while r < count {
        let o = (first_row + r) / mid;
        // The rows of group `o` inside this piece.
        let in_group = ((o + 1) * mid - (first_row + r)).min(count - r);
        for k0 in (0..inner).step_by(CHUNK) {
            let len = (inner - k0).min(CHUNK);
            dec.fill(o * inner + k0, len, &mut bits);
            for row in r..r + in_group {
                backend.apply(&bits[..mask_words(len)], rate, d.sub(row * inner + k0, len));
            }
        }
        r += in_group;
    }
}

/// Rows shorter than 64 elements: each row's `inner` decisions are copied into element bits,
/// and every 4096 elements go through the vectorized apply kernel.
fn short_rows<T: Element>(
    backend: Backend,
    rate: Rate,
    dec: &Decisions<'_>,
    rows: Rows,
    mut d: Data<'_, T>,
) {
    let Rows {
        mid,
        inner,
        first_row,
    } = rows;
    let count = d.len() / inner;
    // Element bits, one spare word for a row that crosses the chunk's end.
    let mut ebits = [0u64; CHUNK_WORDS + 1];
    let (mut filled, mut done) = (0usize, 0usize);
    // A window of decisions: `window_start .. window_start + window_len`.
    let mut window = [0u64; CHUNK_WORDS + 1];
    let (mut window_start, mut window_len) = (0usize, 0usize);
    let last_decision = ((first_row + count - 1) / mid + 1) * inner;
    let mut r = 0;
    while r < count {
        let o = (first_row + r) / mid;
        let j = o * inner;
        if j < window_start || j + inner > window_start + window_len {
            window_start = j;
            window_len = (last_decision - j).min(CHUNK);
            if let Some(words) = window.first_chunk_mut::<CHUNK_WORDS>() {
                dec.fill(j, window_len, words);
            }
        }
        let pattern = bits_at(&window, j - window_start, inner);
        let in_group = ((o + 1) * mid - (first_row + r)).min(count - r);
        for _ in 0..in_group {
            if inner == 1 {
                // One decision for the whole group: whole words at a time.
                let mut left = in_group;
                while left > 0 {
                    let shift = filled % 64;
                    let take = (64 - shift).min(left);
                    ebits[filled / 64] |= (pattern * low_bits(take)) << shift;
                    filled += take;
                    left -= take;
                    flush(backend, rate, &mut ebits, &mut filled, &mut done, &mut d);
                }
                break;
            }
            let shift = filled % 64;
            ebits[filled / 64] |= pattern << shift;
            if shift + inner > 64 {
                ebits[filled / 64 + 1] |= pattern >> (64 - shift);
            }
            filled += inner;
            flush(backend, rate, &mut ebits, &mut filled, &mut done, &mut d);
        }
        r += in_group;
    }
    // The rest.
    if filled > 0 {
        backend.apply(&ebits[..mask_words(filled)], rate, d.sub(done, filled));
    }
}

/// Applies a full chunk of element bits and moves the spill word to the front.
#[inline(always)]
fn flush<T: Element>(
    backend: Backend,
    rate: Rate,
    ebits: &mut [u64; CHUNK_WORDS + 1],
    filled: &mut usize,
    done: &mut usize,
    d: &mut Data<'_, T>,
) {
    if *filled >= CHUNK {
        backend.apply(&ebits[..CHUNK_WORDS], rate, d.sub(*done, CHUNK));
        *done += CHUNK;
        *filled -= CHUNK;
        let spill = ebits[CHUNK_WORDS];
        ebits.fill(0);
        ebits[0] = spill;
    }
}

/// `width <= 64` bits of `words` from bit `at`.
#[inline(always)]
fn bits_at(words: &[u64], at: usize, width: usize) -> u64 {
    let (w, shift) = (at / 64, at % 64);
    let lo = words[w] >> shift;
    let hi = if shift == 0 || w + 1 >= words.len() {
        0
    } else {
        words[w + 1] << (64 - shift)
    };
    (lo | hi) & low_bits(width)
}
