//! Keep decisions in chunks of 4096, from the stream or from a stored mask, for the variants
//! with one decision per group of elements (broadcast).

use crate::backend::Backend;
use crate::job::{Bits, BitsMut, Data, Rate, copy_bits, mask_words};
use crate::ops::At;

/// Decisions per chunk: 64 mask words on the stack.
pub(crate) const CHUNK: usize = 4096;
pub(crate) const CHUNK_WORDS: usize = CHUNK / 64;

/// Where keep decisions come from.
#[derive(Clone, Copy)]
pub(crate) enum Decisions<'a> {
    /// Drawn from the stream: decision `j` uses word `offset + j`.
    Stream {
        backend: Backend,
        at: At,
        rate: Rate,
    },
    /// Read from a stored mask: decision `j` is bit `start + j`.
    Mask(Bits<'a>),
}

impl Decisions<'_> {
    /// Decisions `j0 .. j0 + len` (`len <= CHUNK`) into `out`, decision `j0` at bit 0.
    pub(crate) fn fill(&self, j0: usize, len: usize, out: &mut [u64; CHUNK_WORDS]) {
        let words = &mut out[..mask_words(len)];
        match *self {
            Decisions::Stream {
                backend,
                at: (seed, offset),
                rate,
            } => backend.serial().generate_at(
                seed,
                offset.wrapping_add(j0 as u64),
                rate,
                Data::<f32>::MaskOnly(len),
                Some(BitsMut::new(words)),
            ),
            Decisions::Mask(m) => copy_bits(m.words, m.start + j0, len, words),
        }
    }
}

/// The decisions of a forward: written to `mask` first (then read back from it), or drawn
/// chunk by chunk from the stream.
pub(crate) fn decide<'a>(
    backend: Backend,
    at: At,
    rate: Rate,
    count: usize,
    mask: Option<BitsMut<'a>>,
) -> Decisions<'a> {
    match mask {
        Some(m) => {
            let start = m.start;
            let words: &'a mut [u64] = m.words;
            backend.generate_at(
                at.0,
                at.1,
                rate,
                Data::<f32>::MaskOnly(count),
                Some(BitsMut::at(&mut *words, start)),
            );
            Decisions::Mask(Bits::at(words, start))
        }
        None => Decisions::Stream { backend, at, rate },
    }
}
