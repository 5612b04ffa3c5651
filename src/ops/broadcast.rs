//! Broadcast (structured) dropout: one decision per `(outer, inner)` pair of a
//! [`Shape`], shared by every `mid` (channel dropout, column dropout, drop-path).
//!
//! Work is bounded by the elements and the mask bits a call writes: with no elements and no
//! mask nothing is drawn. Long rows (`inner >= 64`) apply a chunk of decisions directly to
//! every row that shares it; short rows are expanded into element bits first (a whole group
//! of at most 64 elements at a time), so that every shape goes through the vectorized
//! kernels rather than a call per row.

use crate::backend::Backend;
use crate::element::Element;
use crate::job::{Bits, BitsMut, Data, Rate, Shape, low_bits, mask_words, write_bits};
use crate::kernels::{self, Scale};
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
    let (outer, mid, inner) = shape.dims();
    if mid == 1 {
        // One element per decision: element dropout, one pass for the mask and the elements.
        let (seed, offset) = at;
        return backend.generate_at(seed, offset, rate, data, mask);
    }
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
    if mid == 1 {
        // One element per decision: element dropout, decision j on element j.
        return match *dec {
            Decisions::Stream {
                at: (seed, offset), ..
            } => backend.generate_at(seed, offset, rate, data, None),
            Decisions::Mask(bits) => backend.apply_at(bits, rate, data),
        };
    }
    // Whole groups when there are several, else whole rows.
    let unit = if outer >= 2 { mid * inner } else { inner };
    let large = kernels::large::<T>(data.len());
    let piece = |first: usize, d: Data<'_, T>| {
        let rows = Rows {
            mid,
            inner,
            first_row: first / inner,
            large,
        };
        if inner >= 64 {
            long_rows(backend.serial(), rate, dec, rows, d);
        } else if mid * inner <= 64 {
            small_groups(backend.serial(), rate, dec, rows, d);
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
    /// The whole call's output is [`kernels::large`]: its chunks stream too.
    large: bool,
}

/// Rows of at least 64 elements: each chunk of a group's decisions is drawn once and applied
/// to every row of the group in the piece. In a [`kernels::large`] call, rows of at most
/// `CHUNK` elements are applied several at a time, their bits tiled, so that each kernel call
/// covers at least `CHUNK` elements and streams its stores (channels-last shapes have rows of
/// a few hundred elements: 1.6x faster at 256 MiB).
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
        large,
    } = rows;
    let count = d.len() / inner;
    let mut bits = [0u64; CHUNK_WORDS];
    // Up to 2 * CHUNK bits of whole rows, so that a call covers at least CHUNK elements.
    let mut tiled = [0u64; 2 * CHUNK_WORDS];
    let per_call = 2 * CHUNK / inner;
    let mut r = 0;
    while r < count {
        let o = (first_row + r) / mid;
        // The rows of group `o` inside this piece.
        let in_group = ((o + 1) * mid - (first_row + r)).min(count - r);
        if inner <= CHUNK {
            dec.fill(o * inner, inner, &mut bits);
            // In cache, a call per row measured faster (channels-last at 64Ki: 4096-element
            // calls took 1.12x the time).
            let per = if large { per_call.min(in_group) } else { 1 };
            let words: &[u64] = if per > 1 {
                for i in 0..per {
                    write_bits(&mut tiled, i * inner, &bits, inner);
                }
                &tiled
            } else {
                &bits
            };
            for row in (r..r + in_group).step_by(per) {
                let len = per.min(r + in_group - row) * inner;
                let words = &words[..mask_words(len)];
                backend.apply_in(words, &Scale::new(&rate), d.sub(row * inner, len), large);
            }
            r += in_group;
            continue;
        }
        for k0 in (0..inner).step_by(CHUNK) {
            let len = (inner - k0).min(CHUNK);
            dec.fill(o * inner + k0, len, &mut bits);
            for row in r..r + in_group {
                backend.apply_in(
                    &bits[..mask_words(len)],
                    &Scale::new(&rate),
                    d.sub(row * inner + k0, len),
                    large,
                );
            }
        }
        r += in_group;
    }
}

/// Rows shorter than 64 elements: each row's `inner` decisions are appended to element bits,
/// and every 4096 elements go through the vectorized apply kernel. Groups are walked in
/// order, so no row needs a division.
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
        large,
    } = rows;
    let count = d.len() / inner;
    // The chunk's element bits, and the word being filled (kept apart so that it can stay in
    // registers).
    let mut words = [0u64; CHUNK_WORDS];
    let mut bits = Appender::default();
    let mut done = 0usize;
    // A window of decisions: `window_start .. window_start + window_len`.
    let mut window = [0u64; CHUNK_WORDS + 1];
    let (mut window_start, mut window_len) = (0usize, 0usize);
    let mut skip = first_row % mid;
    let last_decision = ((first_row + count - 1) / mid + 1) * inner;
    let mut left = count;
    let mut o = first_row / mid;
    while left > 0 {
        let j = o * inner;
        if j + inner > window_start + window_len {
            window_start = j;
            window_len = (last_decision - j).min(CHUNK);
            if let Some(words) = window.first_chunk_mut::<CHUNK_WORDS>() {
                dec.fill(j, window_len, words);
            }
        }
        let pattern = bits_at(&window, j - window_start, inner);
        let rows_here = (mid - skip).min(left);
        skip = 0;
        left -= rows_here;
        o += 1;
        // One decision for a whole group is appended up to 64 bits at a time.
        let (pattern, width, times) = if inner == 1 {
            (pattern.wrapping_neg(), 64, rows_here)
        } else {
            (pattern, inner, rows_here * inner)
        };
        let mut n = times;
        while n > 0 {
            let take = n.min(width);
            if bits.push(&mut words, pattern & low_bits(take), take) {
                backend.apply_in(&words, &Scale::new(&rate), d.sub(done, CHUNK), large);
                done += CHUNK;
            }
            n -= take;
        }
    }
    // The rest.
    let n = bits.finish(&mut words);
    if n > 0 {
        backend.apply_in(
            &words[..mask_words(n)],
            &Scale::new(&rate),
            d.sub(done, n),
            large,
        );
    }
}

/// Groups of at most 64 elements (`mid * inner <= 64`: drop-path, channel or column dropout
/// on tiny samples): a group's element bits are its `inner` decisions repeated `mid` times.
/// Groups of up to 32 elements with `inner <= 4` go several to a table lookup ([`Spread`]);
/// the others take one multiply (the copies do not overlap, so nothing carries) and one
/// append per group.
/// Pieces hold whole groups (`run` splits at groups when `outer >= 2`, and one group of at
/// most 64 elements is never split).
fn small_groups<T: Element>(
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
        large,
    } = rows;
    let size = mid * inner;
    debug_assert!(first_row.is_multiple_of(mid) && d.len().is_multiple_of(size));
    let repeat = (0..mid).fold(0u64, |r, m| r | 1 << (m * inner));
    let mut words = [0u64; CHUNK_WORDS];
    let mut bits = Appender::default();
    let mut done = 0usize;
    // Decisions of whole groups, with a spare word for reads across the last one.
    let mut window = [0u64; CHUNK_WORDS + 1];
    let per_window = CHUNK / inner;
    let (mut g, end) = (first_row / mid, first_row / mid + d.len() / size);
    let spread = Spread::new(mid, inner, repeat, end - g);
    while g < end {
        let groups = (end - g).min(per_window);
        if let Some(w) = window.first_chunk_mut::<CHUNK_WORDS>() {
            dec.fill(g * inner, groups * inner, w);
        }
        let mut push = |v: u64, width: usize| {
            if bits.push(&mut words, v, width) {
                backend.apply_in(&words, &Scale::new(&rate), d.sub(done, CHUNK), large);
                done += CHUNK;
            }
        };
        if let Some(spread) = &spread {
            // Several groups per table lookup: `index` decision bits give `width` element bits.
            let (index, width) = (spread.groups * inner, spread.groups * size);
            let full = groups / spread.groups;
            if 64 % index == 0 {
                // Indices never cross a decision word: shift them off the word.
                let per_word = 64 / index;
                for (i, &word) in window[..full.div_ceil(per_word)].iter().enumerate() {
                    let mut w = word;
                    for _ in 0..per_word.min(full - i * per_word) {
                        push(spread.expand(w & low_bits(index)), width);
                        w >>= index;
                    }
                }
            } else {
                for k in 0..full {
                    push(spread.expand(bits_at(&window, k * index, index)), width);
                }
            }
            let n = groups - full * spread.groups;
            if n > 0 {
                push(
                    spread.expand(bits_at(&window, full * index, n * inner)),
                    n * size,
                );
            }
        } else if inner == 1 {
            // One decision per group: a bit off the word, no funnel shift.
            let ones = low_bits(mid);
            for (i, &word) in window[..mask_words(groups)].iter().enumerate() {
                for k in 0..(groups - 64 * i).min(64) {
                    push(((word >> k) & 1).wrapping_neg() & ones, size);
                }
            }
        } else {
            for k in 0..groups {
                push(
                    bits_at(&window, k * inner, inner).wrapping_mul(repeat),
                    size,
                );
            }
        }
        g += groups;
    }
    let n = bits.finish(&mut words);
    if n > 0 {
        backend.apply_in(
            &words[..mask_words(n)],
            &Scale::new(&rate),
            d.sub(done, n),
            large,
        );
    }
}

/// The element bits of several small groups from their decisions, by table: an index of
/// `groups * inner` decision bits gives `groups * mid * inner` element bits. A lookup
/// replaces a per-group extract, multiply and append, which dominated groups of 2 to 8
/// elements.
struct Spread {
    /// Groups per lookup (at least 2).
    groups: usize,
    table: [u64; 256],
}

impl Spread {
    /// Groups below this count are cheaper one at a time than a table build.
    const MIN_GROUPS: usize = 1024;

    /// The table for groups of `mid * inner <= 64` elements whose bits are their decisions
    /// times `repeat`, or `None` when fewer than two groups fit a lookup (8 decision bits, 64
    /// element bits) or there are too few groups.
    fn new(mid: usize, inner: usize, repeat: u64, count: usize) -> Option<Self> {
        let size = mid * inner;
        let groups = (8 / inner).min(64 / size);
        if groups < 2 || count < Self::MIN_GROUPS {
            return None;
        }
        let mut table = [0u64; 256];
        for idx in 1..1usize << (groups * inner) {
            // Decision bit `j` is position `j % inner` of group `j / inner`.
            let j = idx.trailing_zeros() as usize;
            table[idx] = table[idx & (idx - 1)] | repeat << ((j / inner) * size + j % inner);
        }
        Some(Self { groups, table })
    }

    #[inline(always)]
    fn expand(&self, decisions: u64) -> u64 {
        self.table[(decisions & 0xff) as usize]
    }
}

/// Element bits appended a row at a time into a chunk of words: the word being filled stays
/// in a register and is stored once when full.
#[derive(Default)]
struct Appender {
    /// Full words stored.
    w: usize,
    /// The word being filled and its bit count (< 64).
    cur: u64,
    fill: usize,
}

impl Appender {
    /// Appends the low `width` (1..=64) bits of `bits` (zero above them); `true` when the
    /// chunk's `CHUNK` bits are complete in `words`.
    #[inline(always)]
    fn push(&mut self, words: &mut [u64; CHUNK_WORDS], bits: u64, width: usize) -> bool {
        self.cur |= bits << self.fill;
        let total = self.fill + width;
        if total < 64 {
            self.fill = total;
            return false;
        }
        words[self.w] = self.cur;
        self.w += 1;
        self.cur = if self.fill == 0 {
            0
        } else {
            bits >> (64 - self.fill)
        };
        self.fill = total - 64;
        if self.w == CHUNK_WORDS {
            self.w = 0;
            return true;
        }
        false
    }

    /// Stores the partial word; the number of bits in `words`.
    fn finish(&mut self, words: &mut [u64; CHUNK_WORDS]) -> usize {
        if self.fill > 0 {
            words[self.w] = self.cur;
        }
        64 * self.w + self.fill
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
