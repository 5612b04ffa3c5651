//! Bit masks: element `i` is bit `i % 64` of word `i / 64` (from a start bit), set when the
//! element is kept; conversions to and from one byte or `bool` per element.

use crate::job::{BitsMut, check_bits, check_len, copy_bits, low_bits, mask_words, write_bits};
use crate::{Bits, Error};
#[cfg(feature = "alloc")]
use alloc::vec::Vec;

/// Bits per staged chunk when a mask does not start at a word boundary.
const CHUNK: usize = 4096;

/// The eight values (`0`/`1`, or `false`/`true`) of the eight bits of each byte value.
const fn spread_table<E: Copy>(no: E, yes: E) -> [[E; 8]; 256] {
    let mut t = [[no; 8]; 256];
    let mut b = 0;
    while b < 256 {
        let mut j = 0;
        while j < 8 {
            if (b >> j) & 1 == 1 {
                t[b][j] = yes;
            }
            j += 1;
        }
        b += 1;
    }
    t
}

const SPREAD_BYTES: [[u8; 8]; 256] = spread_table(0, 1);
const SPREAD_BOOLS: [[bool; 8]; 256] = spread_table(false, true);

/// A borrowed mask of `len` elements from bit `start` of a word slice (for `no_std` code
/// and for masks stored in caller buffers).
///
/// ```
/// use simd_dropout::MaskRef;
/// let words = [0b1011u64];
/// let m = MaskRef::new(&words, 4)?;
/// assert_eq!(m.count_kept(), 3);
/// assert_eq!(m.get(2), Some(false));
/// assert_eq!(m.iter().collect::<Vec<_>>(), [true, true, false, true]);
/// assert_eq!(MaskRef::at(&words, 1, 3)?.iter().collect::<Vec<_>>(), [true, false, true]);
/// # Ok::<(), simd_dropout::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct MaskRef<'a> {
    words: &'a [u64],
    start: usize,
    len: usize,
}

impl<'a> MaskRef<'a> {
    /// The first `len` bits of `words`; `MaskTooShort` if there are fewer.
    pub fn new(words: &'a [u64], len: usize) -> Result<Self, Error> {
        Self::at(words, 0, len)
    }

    /// Bits `start .. start + len` of `words`; `MaskTooShort` if there are fewer.
    pub fn at(words: &'a [u64], start: usize, len: usize) -> Result<Self, Error> {
        check_bits(start, len, words.len())?;
        Ok(MaskRef { words, start, len })
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` for a mask of no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The same bits, to pass to a backward call.
    pub fn bits(&self) -> Bits<'a> {
        Bits::at(self.words, self.start)
    }

    /// Whether element `i` is kept; `None` past the end.
    pub fn get(&self, i: usize) -> Option<bool> {
        (i < self.len).then(|| {
            let b = self.start + i;
            (self.words[b / 64] >> (b % 64)) & 1 == 1
        })
    }

    /// How many elements are kept (bits outside the mask are not counted).
    pub fn count_kept(&self) -> usize {
        let mut n = 0;
        self.chunks(|_, words, len| {
            n += words
                .iter()
                .enumerate()
                .map(|(w, &v)| (v & low_bits(len - 64 * w)).count_ones() as usize)
                .sum::<usize>();
        });
        n
    }

    /// The keep decisions in element order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = bool> + 'a {
        let (words, start) = (self.words, self.start);
        (0..self.len).map(move |i| (words[(start + i) / 64] >> ((start + i) % 64)) & 1 == 1)
    }

    /// Writes one byte per element, `1` kept and `0` dropped (a `u8` mask tensor), into
    /// `out`, which must have exactly `len` elements.
    ///
    /// ```
    /// let m = simd_dropout::MaskRef::new(&[0b110], 3)?;
    /// let mut b = [9u8; 3];
    /// m.write_bytes(&mut b)?;
    /// assert_eq!(b, [0, 1, 1]);
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    pub fn write_bytes(&self, out: &mut [u8]) -> Result<(), Error> {
        check_len("out", self.len, out.len())?;
        self.spread(out, &SPREAD_BYTES);
        Ok(())
    }

    /// Writes one `bool` per element (PyTorch's `native_dropout` mask format) into `out`,
    /// which must have exactly `len` elements.
    ///
    /// ```
    /// let m = simd_dropout::MaskRef::new(&[0b110], 3)?;
    /// let mut b = [false; 3];
    /// m.write_bools(&mut b)?;
    /// assert_eq!(b, [false, true, true]);
    /// # Ok::<(), simd_dropout::Error>(())
    /// ```
    pub fn write_bools(&self, out: &mut [bool]) -> Result<(), Error> {
        check_len("out", self.len, out.len())?;
        self.spread(out, &SPREAD_BOOLS);
        Ok(())
    }

    /// One value per element from a table of eight per mask byte: one 8-element copy per
    /// look-up.
    fn spread<E: Copy>(&self, out: &mut [E], table: &[[E; 8]; 256]) {
        self.chunks(|first, words, len| {
            let out = &mut out[first..first + len];
            let bytes = words.iter().flat_map(|w| w.to_le_bytes());
            let mut groups = out.chunks_exact_mut(8);
            for (o, b) in (&mut groups).zip(bytes.clone()) {
                o.copy_from_slice(&table[usize::from(b)]);
            }
            let rest = groups.into_remainder();
            if let Some(b) = bytes.clone().nth(len / 8) {
                rest.copy_from_slice(&table[usize::from(b)][..rest.len()]);
            }
        });
    }

    /// `f(first element, words, len)` over the mask realigned to bit 0, a chunk at a time
    /// (the words themselves when the mask starts at a word boundary).
    fn chunks(&self, mut f: impl FnMut(usize, &[u64], usize)) {
        if self.len == 0 {
            // No bits: `start` may stand at (or past) the buffer's end.
            return f(0, &[], 0);
        }
        if self.start.is_multiple_of(64) {
            let w0 = self.start / 64;
            return f(0, &self.words[w0..w0 + mask_words(self.len)], self.len);
        }
        let mut staged = [0u64; CHUNK / 64];
        for first in (0..self.len).step_by(CHUNK) {
            let len = (self.len - first).min(CHUNK);
            let words = &mut staged[..mask_words(len)];
            copy_bits(self.words, self.start + first, len, words);
            f(first, words, len);
        }
    }
}

/// Masks compare by their `len` bits, wherever they start.
impl PartialEq for MaskRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl Eq for MaskRef<'_> {}

/// Packs one `bool` per element into mask bits (bits `start .. start + bools.len()` of the
/// destination; every other bit is left as it was).
///
/// ```
/// use simd_dropout::BitsMut;
/// let mut words = [0u64; 1];
/// simd_dropout::pack_bools(&[true, false, true], BitsMut::new(&mut words))?;
/// assert_eq!(words[0], 0b101);
/// # Ok::<(), simd_dropout::Error>(())
/// ```
pub fn pack_bools(bools: &[bool], mask: BitsMut<'_>) -> Result<(), Error> {
    mask.check(bools.len())?;
    let mut staged = [0u64; CHUNK / 64];
    for (c, chunk) in bools.chunks(CHUNK).enumerate() {
        let words = &mut staged[..mask_words(chunk.len())];
        for (word, group) in words.iter_mut().zip(chunk.chunks(64)) {
            *word = group
                .iter()
                .enumerate()
                .fold(0, |acc, (i, &b)| acc | (u64::from(b) << i));
        }
        write_bits(mask.words, mask.start + c * CHUNK, words, chunk.len());
    }
    Ok(())
}

/// An owned mask (with the `alloc` feature): `ceil(len / 64)` words plus the element count.
/// Equality and hashing see only the first `len` bits.
///
/// ```
/// use simd_dropout::{Backend, BitsMut, Mask, Seed};
/// let mut mask = Mask::new(100);
/// Backend::detect().fill_mask(0.5, Seed::from_u64(1), 0, 100, BitsMut::new(mask.words_mut()))?;
/// let bools: Vec<bool> = mask.as_ref().iter().collect();
/// assert_eq!(Mask::from_bools(&bools), mask);
/// # Ok::<(), simd_dropout::Error>(())
/// ```
#[cfg(feature = "alloc")]
#[derive(Clone, Debug, Default)]
pub struct Mask {
    words: Vec<u64>,
    len: usize,
}

#[cfg(feature = "alloc")]
impl Mask {
    /// A mask of `len` elements, all dropped (every word zero).
    pub fn new(len: usize) -> Self {
        Mask {
            words: alloc::vec![0; mask_words(len)],
            len,
        }
    }

    /// A mask from one `bool` per element.
    pub fn from_bools(bools: &[bool]) -> Self {
        let mut m = Mask::new(bools.len());
        // The buffer has exactly the words needed, so packing cannot fail.
        let _ = pack_bools(bools, BitsMut::new(&mut m.words));
        m
    }

    /// The words.
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// The words, to be filled by a forward call.
    pub fn words_mut(&mut self) -> &mut [u64] {
        &mut self.words
    }

    /// A borrowed view (counting, reading bits, converting to bytes or bools).
    pub fn as_ref(&self) -> MaskRef<'_> {
        MaskRef {
            words: &self.words,
            start: 0,
            len: self.len,
        }
    }
}

#[cfg(feature = "alloc")]
impl PartialEq for Mask {
    fn eq(&self, other: &Self) -> bool {
        self.as_ref() == other.as_ref()
    }
}

#[cfg(feature = "alloc")]
impl Eq for Mask {}

#[cfg(feature = "alloc")]
impl core::hash::Hash for Mask {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.len.hash(state);
        for (w, &v) in self.words.iter().enumerate() {
            (v & low_bits(self.len - 64 * w)).hash(state);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_masks_at_word_boundaries_past_the_buffer() {
        let w = [!0u64, !0, !0];
        for (words, start) in [
            (&w[..0], 0),
            (&w[..0], 64),
            (&w[..1], 128),
            (&w[..2], 320),
            (&w[..0], usize::MAX - 63),
            (&w[..3], usize::MAX),
        ] {
            let m = MaskRef::at(words, start, 0).unwrap();
            assert_eq!(m.count_kept(), 0);
            m.write_bytes(&mut []).unwrap();
            m.write_bools(&mut []).unwrap();
            assert_eq!(m.iter().count(), 0);
            assert_eq!(m.get(0), None);
            assert_eq!(m, MaskRef::new(&[], 0).unwrap());
        }
    }

    #[test]
    fn bytes_and_bools_at_every_start() {
        let words = [0x0123_4567_89ab_cdefu64, 0xfedc_ba98_7654_3210, 0x5555];
        for start in 0..70 {
            for len in [0, 1, 7, 8, 9, 63, 64, 65, 100] {
                let m = MaskRef::at(&words, start, len).unwrap();
                let want: Vec<bool> = m.iter().collect();
                let mut bytes = vec![7u8; len];
                let mut bools = vec![false; len];
                m.write_bytes(&mut bytes).unwrap();
                m.write_bools(&mut bools).unwrap();
                assert_eq!(bools, want);
                assert_eq!(bytes, want.iter().map(|&b| u8::from(b)).collect::<Vec<_>>());
                assert_eq!(m.count_kept(), want.iter().filter(|&&b| b).count());
            }
        }
    }
}
