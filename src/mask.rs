//! Bit masks: element `i` is bit `i % 64` of word `i / 64`, set when the element is kept.

use crate::Error;
#[cfg(feature = "alloc")]
use alloc::vec::Vec;

/// The number of `u64` words a mask of `len` elements needs: `ceil(len / 64)`.
///
/// ```
/// assert_eq!(simd_dropout::mask_words(0), 0);
/// assert_eq!(simd_dropout::mask_words(64), 1);
/// assert_eq!(simd_dropout::mask_words(65), 2);
/// ```
pub const fn mask_words(len: usize) -> usize {
    len.div_ceil(64)
}
pub(crate) use mask_words as words_for;

/// The bits of `word` number `w` that belong to a mask of `len` elements.
#[inline]
fn valid_bits(w: usize, len: usize) -> u64 {
    let left = len - 64 * w;
    if left >= 64 {
        !0
    } else {
        (1u64 << left) - 1
    }
}

/// A borrowed mask of `len` elements (for `no_std` code and for masks stored in caller buffers).
///
/// ```
/// use simd_dropout::MaskRef;
/// let words = [0b1011u64];
/// let m = MaskRef::new(&words, 4).unwrap();
/// assert_eq!(m.count_kept(), 3);
/// assert_eq!(m.get(2), Some(false));
/// assert_eq!(m.iter().collect::<Vec<_>>(), [true, true, false, true]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaskRef<'a> {
    words: &'a [u64],
    len: usize,
}

impl<'a> MaskRef<'a> {
    /// A view of the first `ceil(len / 64)` words as a mask of `len` elements; `MaskTooShort`
    /// if there are fewer words.
    ///
    /// ```
    /// assert!(simd_dropout::MaskRef::new(&[0u64], 65).is_err());
    /// ```
    pub fn new(words: &'a [u64], len: usize) -> Result<Self, Error> {
        crate::ops::check_mask(len, words.len())?;
        Ok(MaskRef {
            words: &words[..mask_words(len)],
            len,
        })
    }

    /// The number of elements.
    ///
    /// ```
    /// assert_eq!(simd_dropout::MaskRef::new(&[0u64; 2], 100).unwrap().len(), 100);
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` for a mask of no elements.
    ///
    /// ```
    /// assert!(simd_dropout::MaskRef::new(&[], 0).unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The words (`ceil(len / 64)` of them).
    ///
    /// ```
    /// let m = simd_dropout::MaskRef::new(&[1, 2, 3], 65).unwrap();
    /// assert_eq!(m.words(), &[1, 2]);
    /// ```
    pub fn words(&self) -> &'a [u64] {
        self.words
    }

    /// Whether element `i` is kept; `None` past the end.
    ///
    /// ```
    /// let m = simd_dropout::MaskRef::new(&[0b10], 2).unwrap();
    /// assert_eq!((m.get(0), m.get(1), m.get(2)), (Some(false), Some(true), None));
    /// ```
    pub fn get(&self, i: usize) -> Option<bool> {
        (i < self.len).then(|| (self.words[i / 64] >> (i % 64)) & 1 == 1)
    }

    /// How many elements are kept (bits past `len` are not counted).
    ///
    /// ```
    /// let m = simd_dropout::MaskRef::new(&[!0u64], 10).unwrap();
    /// assert_eq!(m.count_kept(), 10);
    /// ```
    pub fn count_kept(&self) -> usize {
        self.words
            .iter()
            .enumerate()
            .map(|(w, &word)| (word & valid_bits(w, self.len)).count_ones() as usize)
            .sum()
    }

    /// The keep decisions in element order.
    ///
    /// ```
    /// let m = simd_dropout::MaskRef::new(&[0b01], 2).unwrap();
    /// assert_eq!(m.iter().collect::<Vec<_>>(), [true, false]);
    /// ```
    pub fn iter(&self) -> impl ExactSizeIterator<Item = bool> + 'a {
        let words = self.words;
        (0..self.len).map(move |i| (words[i / 64] >> (i % 64)) & 1 == 1)
    }

    /// Writes one `bool` per element (PyTorch's `native_dropout` mask format) into `out`,
    /// which must have exactly `len` elements.
    ///
    /// ```
    /// let m = simd_dropout::MaskRef::new(&[0b110], 3).unwrap();
    /// let mut b = [false; 3];
    /// m.write_bools(&mut b).unwrap();
    /// assert_eq!(b, [false, true, true]);
    /// ```
    pub fn write_bools(&self, out: &mut [bool]) -> Result<(), Error> {
        crate::ops::check_len(self.len, out.len())?;
        for (o, b) in out.iter_mut().zip(self.iter()) {
            *o = b;
        }
        Ok(())
    }
}

/// Packs one `bool` per element into mask words (`ceil(len / 64)` of them; bits past the end
/// are zero; words past those are left alone).
///
/// ```
/// let mut words = [0u64; 1];
/// simd_dropout::pack_bools(&[true, false, true], &mut words).unwrap();
/// assert_eq!(words[0], 0b101);
/// ```
pub fn pack_bools(bools: &[bool], words: &mut [u64]) -> Result<(), Error> {
    crate::ops::check_mask(bools.len(), words.len())?;
    for (word, chunk) in words.iter_mut().zip(bools.chunks(64)) {
        *word = chunk
            .iter()
            .enumerate()
            .fold(0, |acc, (i, &b)| acc | (u64::from(b) << i));
    }
    Ok(())
}

/// An owned mask (with the `alloc` feature): words plus the element count.
///
/// ```
/// use simd_dropout::{Mask, Seed};
/// let mut mask = Mask::new(100);
/// simd_dropout::fill_mask(0.5, Seed::new(1, 1), 0, mask.len(), mask.words_mut()).unwrap();
/// let bools = mask.to_bools();
/// assert_eq!(Mask::from_bools(&bools), mask);
/// ```
#[cfg(feature = "alloc")]
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Mask {
    words: Vec<u64>,
    len: usize,
}

#[cfg(feature = "alloc")]
impl Mask {
    /// A mask of `len` elements, all dropped (every word zero).
    ///
    /// ```
    /// let m = simd_dropout::Mask::new(65);
    /// assert_eq!((m.len(), m.words().len(), m.count_kept()), (65, 2, 0));
    /// ```
    pub fn new(len: usize) -> Self {
        Mask {
            words: alloc::vec![0; mask_words(len)],
            len,
        }
    }

    /// A mask from one `bool` per element.
    ///
    /// ```
    /// let m = simd_dropout::Mask::from_bools(&[true, true, false]);
    /// assert_eq!(m.count_kept(), 2);
    /// ```
    pub fn from_bools(bools: &[bool]) -> Self {
        let mut m = Mask::new(bools.len());
        // The buffer has exactly the words needed, so packing cannot fail.
        let _ = pack_bools(bools, &mut m.words);
        m
    }

    /// The number of elements.
    ///
    /// ```
    /// assert_eq!(simd_dropout::Mask::new(3).len(), 3);
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` for a mask of no elements.
    ///
    /// ```
    /// assert!(simd_dropout::Mask::new(0).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The words.
    ///
    /// ```
    /// assert_eq!(simd_dropout::Mask::new(64).words(), &[0]);
    /// ```
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// The words, to be filled by [`forward`](crate::forward) or [`fill_mask`](crate::fill_mask).
    ///
    /// ```
    /// let mut m = simd_dropout::Mask::new(3);
    /// simd_dropout::fill_mask(0.0, simd_dropout::Seed::new(0, 0), 0, 3, m.words_mut()).unwrap();
    /// assert_eq!(m.count_kept(), 3);
    /// ```
    pub fn words_mut(&mut self) -> &mut [u64] {
        &mut self.words
    }

    /// A borrowed view.
    ///
    /// ```
    /// let m = simd_dropout::Mask::from_bools(&[true]);
    /// assert_eq!(m.as_ref().get(0), Some(true));
    /// ```
    pub fn as_ref(&self) -> MaskRef<'_> {
        MaskRef {
            words: &self.words,
            len: self.len,
        }
    }

    /// Whether element `i` is kept; `None` past the end.
    ///
    /// ```
    /// assert_eq!(simd_dropout::Mask::from_bools(&[false]).get(0), Some(false));
    /// ```
    pub fn get(&self, i: usize) -> Option<bool> {
        self.as_ref().get(i)
    }

    /// How many elements are kept.
    ///
    /// ```
    /// assert_eq!(simd_dropout::Mask::from_bools(&[true, false]).count_kept(), 1);
    /// ```
    pub fn count_kept(&self) -> usize {
        self.as_ref().count_kept()
    }

    /// The keep decisions in element order.
    ///
    /// ```
    /// let m = simd_dropout::Mask::from_bools(&[false, true]);
    /// assert_eq!(m.iter().collect::<Vec<_>>(), [false, true]);
    /// ```
    pub fn iter(&self) -> impl ExactSizeIterator<Item = bool> + '_ {
        self.as_ref().iter()
    }

    /// One `bool` per element (PyTorch's `native_dropout` mask format).
    ///
    /// ```
    /// assert_eq!(simd_dropout::Mask::from_bools(&[true]).to_bools(), [true]);
    /// ```
    pub fn to_bools(&self) -> Vec<bool> {
        self.iter().collect()
    }
}
