//! The vocabulary of a checked job, shared by every layer of the crate: the validated rate,
//! length checks, the elements a call reads and writes, and mask bit positions. This module
//! depends on nothing else in the crate but the error type, so every other module can use it.

mod shape;

pub(crate) use shape::product;
pub use shape::{MAX_RANK, Shape, Structure, View};

use crate::Error;
use core::mem::MaybeUninit;

/// A validated drop probability with what is derived from it once per call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Rate {
    /// `p`, finite and in `[0, 1]`.
    pub(crate) p: f64,
    /// `round(p * 2^32)`, ties away from zero, in `[0, 2^32]`: element kept iff `r >= t`.
    pub(crate) threshold: u64,
    /// What a kept element is multiplied by, in f64: `1 / (1 - p)` for dropout (0 when
    /// `p = 1`), alpha dropout's `a` for its backward. `f32` types round it once to f32.
    pub(crate) scale: f64,
}

impl Rate {
    /// `InvalidProbability` unless `p` is in `[0, 1]`.
    pub(crate) fn new(p: f64) -> Result<Self, Error> {
        if !(0.0..=1.0).contains(&p) {
            // NaN fails `contains` too.
            return Err(Error::InvalidProbability {
                p,
                below_one: false,
            });
        }
        let threshold = round_half_away(p * 4_294_967_296.0);
        let scale = if p < 1.0 { 1.0 / (1.0 - p) } else { 0.0 };
        Ok(Rate {
            p,
            threshold,
            scale,
        })
    }

    /// `InvalidProbability` unless `p` is in `[0, 1)` (alpha dropout).
    pub(crate) fn below_one(p: f64) -> Result<Self, Error> {
        match Rate::new(p) {
            Ok(rate) if p < 1.0 => Ok(rate),
            _ => Err(Error::InvalidProbability { p, below_one: true }),
        }
    }

    /// Whether no element is kept, whatever a mask says (`p = 1`).
    pub(crate) fn drops_all(&self) -> bool {
        self.threshold > u64::from(u32::MAX)
    }
}

/// `v.round()` for `0 <= v <= 2^32`, without `std`: `v` has at most 53 significant bits, so
/// the truncation and the fraction are exact.
fn round_half_away(v: f64) -> u64 {
    let whole = v as u64;
    let frac = v - whole as f64;
    whole + u64::from(frac >= 0.5)
}

/// `found == expected`, else a `LengthMismatch` naming `arg`.
pub(crate) fn check_len(arg: &'static str, expected: usize, found: usize) -> Result<(), Error> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            arg,
            expected,
            found,
        })
    }
}

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

/// The elements of a call: what it reads and where it writes.
///
/// ```
/// use simd_dropout::{Io, Seed};
/// use core::mem::MaybeUninit;
/// let seed = Seed::from_u64(7);
/// let x = [1.0f32; 8];
///
/// let mut y = [0.0f32; 8];
/// simd_dropout::forward(0.5, seed, 0, Io::Out { x: &x, y: &mut y }, None)?;
///
/// let mut xy = x;
/// simd_dropout::forward(0.5, seed, 0, Io::InPlace(&mut xy), None)?;
///
/// // Fresh storage needs no zero-fill first: every element is written.
/// let mut fresh = [MaybeUninit::<f32>::uninit(); 8];
/// simd_dropout::forward(0.5, seed, 0, Io::Uninit { x: &x, y: &mut fresh }, None)?;
///
/// assert_eq!(xy, y);
/// assert!(fresh.iter().zip(&y).all(|(f, y)| unsafe { f.assume_init() } == *y));
/// # Ok::<(), simd_dropout::Error>(())
/// ```
#[derive(Debug)]
pub enum Io<'a, T> {
    /// Read `x`, write `y` (the same length).
    Out {
        /// The input.
        x: &'a [T],
        /// The output.
        y: &'a mut [T],
    },
    /// Read and overwrite one slice.
    InPlace(&'a mut [T]),
    /// Read `x`, write every element of the uninitialized `y` (the same length).
    Uninit {
        /// The input.
        x: &'a [T],
        /// The output; initialized by a call that returns `Ok`.
        y: &'a mut [MaybeUninit<T>],
    },
}

impl<'a, T> Io<'a, T> {
    /// The number of elements (that of the input).
    pub(crate) fn len(&self) -> usize {
        match self {
            Io::Out { x, .. } | Io::Uninit { x, .. } => x.len(),
            Io::InPlace(xy) => xy.len(),
        }
    }

    /// `LengthMismatch` when `y` differs from `x` in length.
    pub(crate) fn check(&self) -> Result<(), Error> {
        match self {
            Io::Out { x, y } => check_len("y", x.len(), y.len()),
            Io::Uninit { x, y } => check_len("y", x.len(), y.len()),
            Io::InPlace(_) => Ok(()),
        }
    }

    /// The checked job: `LengthMismatch` when `y` differs from `x` in length.
    pub(crate) fn data(self) -> Result<Data<'a, T>, Error> {
        match self {
            Io::Out { x, y } => {
                check_len("y", x.len(), y.len())?;
                Ok(Data::Out {
                    x,
                    y: crate::kernels::as_uninit(y),
                })
            }
            Io::Uninit { x, y } => {
                check_len("y", x.len(), y.len())?;
                Ok(Data::Out { x, y })
            }
            Io::InPlace(xy) => Ok(Data::InPlace(xy)),
        }
    }
}

/// The elements one checked job reads and writes.
#[derive(Debug)]
pub(crate) enum Data<'a, T> {
    /// Read `x`, write every element of `y` (same length).
    Out {
        x: &'a [T],
        y: &'a mut [MaybeUninit<T>],
    },
    /// Read and write the same slice.
    InPlace(&'a mut [T]),
    /// No elements: only the mask of this many.
    MaskOnly(usize),
}

impl<'a, T: Copy> Data<'a, T> {
    pub(crate) fn len(&self) -> usize {
        match self {
            Data::Out { x, .. } => x.len(),
            Data::InPlace(xy) => xy.len(),
            Data::MaskOnly(n) => *n,
        }
    }

    /// The first `mid` elements and the rest.
    pub(crate) fn split_at(self, mid: usize) -> (Data<'a, T>, Data<'a, T>) {
        match self {
            Data::Out { x, y } => {
                let (x1, x2) = x.split_at(mid);
                let (y1, y2) = y.split_at_mut(mid);
                (Data::Out { x: x1, y: y1 }, Data::Out { x: x2, y: y2 })
            }
            Data::InPlace(xy) => {
                let (a, b) = xy.split_at_mut(mid);
                (Data::InPlace(a), Data::InPlace(b))
            }
            Data::MaskOnly(n) => (Data::MaskOnly(mid), Data::MaskOnly(n - mid)),
        }
    }

    /// Elements `start .. start + len`, reborrowed.
    pub(crate) fn sub(&mut self, start: usize, len: usize) -> Data<'_, T> {
        match self {
            Data::Out { x, y } => Data::Out {
                x: &x[start..start + len],
                y: &mut y[start..start + len],
            },
            Data::InPlace(xy) => Data::InPlace(&mut xy[start..start + len]),
            Data::MaskOnly(_) => Data::MaskOnly(len),
        }
    }

    /// Every output element set to `v`.
    pub(crate) fn fill(&mut self, v: T) {
        match self {
            Data::Out { y, .. } => y.fill(MaybeUninit::new(v)),
            Data::InPlace(xy) => xy.fill(v),
            Data::MaskOnly(_) => {}
        }
    }

    /// `out[i] = f(in[i], i)` for every element (the element loops of the variants and the
    /// scalar reference).
    #[inline(always)]
    pub(crate) fn map(&mut self, mut f: impl FnMut(T, usize) -> T) {
        match self {
            Data::Out { x, y } => {
                for (i, (yo, &xi)) in y.iter_mut().zip(x.iter()).enumerate() {
                    yo.write(f(xi, i));
                }
            }
            Data::InPlace(xy) => {
                for (i, v) in xy.iter_mut().enumerate() {
                    *v = f(*v, i);
                }
            }
            Data::MaskOnly(_) => {}
        }
    }

    /// `out[k] = f(in[k], i)` for the `count` elements `k = start + i * step` (channels-last
    /// DropBlock without a mask).
    #[inline(always)]
    pub(crate) fn map_step(
        &mut self,
        start: usize,
        step: usize,
        count: usize,
        mut f: impl FnMut(T, usize) -> T,
    ) {
        let at = |i: usize| start + i * step;
        match self {
            Data::Out { x, y } => (0..count).for_each(|i| {
                y[at(i)].write(f(x[at(i)], i));
            }),
            Data::InPlace(xy) => (0..count).for_each(|i| xy[at(i)] = f(xy[at(i)], i)),
            Data::MaskOnly(_) => {}
        }
    }

    /// `out[i] = f(in[i], with[i])` for the first `min(len, with.len())` elements: `map` with a
    /// second input, zipped so that no index is bounds-checked in the (vectorized) loop.
    #[inline(always)]
    pub(crate) fn zip_map<U: Copy>(&mut self, with: &[U], mut f: impl FnMut(T, U) -> T) {
        match self {
            Data::Out { x, y } => {
                for ((yo, &xi), &w) in y.iter_mut().zip(x.iter()).zip(with) {
                    yo.write(f(xi, w));
                }
            }
            Data::InPlace(xy) => {
                for (v, &w) in xy.iter_mut().zip(with) {
                    *v = f(*v, w);
                }
            }
            Data::MaskOnly(_) => {}
        }
    }
}

/// Mask bits to read, from bit `start` of `words` on (bit `i % 64` of word `i / 64` is bit
/// `i`; set = kept). A call of `n` elements reads bits `start .. start + n`.
///
/// ```
/// use simd_dropout::{Bits, Io};
/// // Two rows of 3 elements whose decisions sit at bits 3..6 of one mask.
/// let mask = [0b101_000u64];
/// let gy = [1.0f32; 3];
/// let mut gx = [0.0f32; 3];
/// simd_dropout::backward(0.5, Default::default(), 0, Io::Out { x: &gy, y: &mut gx }, Some(Bits::at(&mask, 3)))?;
/// assert_eq!(gx, [2.0, 0.0, 2.0]);
/// # Ok::<(), simd_dropout::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bits<'a> {
    pub(crate) words: &'a [u64],
    pub(crate) start: usize,
}

impl<'a> Bits<'a> {
    /// The bits of `words` from bit 0.
    pub const fn new(words: &'a [u64]) -> Self {
        Bits { words, start: 0 }
    }

    /// The bits of `words` from bit `start`.
    pub const fn at(words: &'a [u64], start: usize) -> Self {
        Bits { words, start }
    }

    /// `MaskTooShort` unless bits `start .. start + n` exist.
    pub(crate) fn check(&self, n: usize) -> Result<(), Error> {
        check_bits(self.start, n, self.words.len())
    }
}

impl<'a> From<&'a [u64]> for Bits<'a> {
    /// [`Bits::new`].
    fn from(words: &'a [u64]) -> Self {
        Bits::new(words)
    }
}

impl<'a> From<&'a mut [u64]> for BitsMut<'a> {
    /// [`BitsMut::new`].
    fn from(words: &'a mut [u64]) -> Self {
        BitsMut::new(words)
    }
}

/// Mask bits to write, from bit `start` of `words` on. A call of `n` elements writes bits
/// `start .. start + n` and leaves every other bit as it was, so calls on rows, chunks or
/// shards can fill one mask.
///
/// ```
/// use simd_dropout::{BitsMut, Io, Seed};
/// let seed = Seed::from_u64(3);
/// let x = [1.0f32; 100];
/// let (mut y, mut whole, mut pieces) = ([0.0f32; 100], [0u64; 2], [0u64; 2]);
/// simd_dropout::forward(0.5, seed, 0, Io::Out { x: &x, y: &mut y }, Some(BitsMut::new(&mut whole)))?;
/// // The same elements as two calls of 30 and 70, at stream offsets 0 and 30, bits 0 and 30.
/// for (start, n) in [(0, 30), (30, 70)] {
///     let mut part = vec![0.0f32; n];
///     let io = Io::Out { x: &x[start..start + n], y: &mut part };
///     simd_dropout::forward(0.5, seed, start as u64, io, Some(BitsMut::at(&mut pieces, start)))?;
///     assert_eq!(part, y[start..start + n]);
/// }
/// assert_eq!(whole, pieces);
/// # Ok::<(), simd_dropout::Error>(())
/// ```
#[derive(Debug, PartialEq, Eq)]
pub struct BitsMut<'a> {
    pub(crate) words: &'a mut [u64],
    pub(crate) start: usize,
}

impl<'a> BitsMut<'a> {
    /// The bits of `words` from bit 0.
    pub const fn new(words: &'a mut [u64]) -> Self {
        BitsMut { words, start: 0 }
    }

    /// The bits of `words` from bit `start`.
    pub const fn at(words: &'a mut [u64], start: usize) -> Self {
        BitsMut { words, start }
    }

    /// `MaskTooShort` unless bits `start .. start + n` exist.
    pub(crate) fn check(&self, n: usize) -> Result<(), Error> {
        check_bits(self.start, n, self.words.len())
    }

    /// Bits `at ..` of this position (`at` bits further on).
    pub(crate) fn advanced(&mut self, at: usize) -> BitsMut<'_> {
        BitsMut {
            words: self.words,
            start: self.start + at,
        }
    }
}

/// `MaskTooShort` unless a buffer of `words` words holds bits `start .. start + n`.
pub(crate) fn check_bits(start: usize, n: usize, words: usize) -> Result<(), Error> {
    let needed = start
        .checked_add(n)
        .map_or(usize::MAX, |end| if n == 0 { 0 } else { mask_words(end) });
    if words >= needed {
        Ok(())
    } else {
        Err(Error::MaskTooShort {
            needed,
            found: words,
        })
    }
}

/// The low `n` bits set (`n <= 64`).
#[inline(always)]
pub(crate) const fn low_bits(n: usize) -> u64 {
    if n >= 64 { !0 } else { (1u64 << n) - 1 }
}

/// Bits `start .. start + len` of `src` into `out` (bit 0 of `out` = bit `start`), zero past
/// `len`. `src` holds at least `start + len` bits; `out` has `ceil(len / 64)` words (more
/// would read past the bits `src` is known to hold).
pub(crate) fn copy_bits(src: &[u64], start: usize, len: usize, out: &mut [u64]) {
    debug_assert_eq!(
        out.len(),
        mask_words(len),
        "copy_bits: words for {len} bits"
    );
    let (w0, shift) = (start / 64, start % 64);
    for (i, o) in out.iter_mut().enumerate() {
        let lo = src[w0 + i] >> shift;
        let hi = match (shift, src.get(w0 + i + 1)) {
            (0, _) | (_, None) => 0,
            (_, Some(&w)) => w << (64 - shift),
        };
        *o = lo | hi;
    }
    if let Some(last) = out.last_mut() {
        *last &= low_bits(len - 64 * (mask_words(len) - 1));
    }
}

/// Writes the first `len` bits of `src` to bits `start .. start + len` of `dst`, leaving every
/// other bit of `dst` as it was. `dst` holds at least `start + len` bits.
pub(crate) fn write_bits(dst: &mut [u64], start: usize, src: &[u64], len: usize) {
    let mut done = 0;
    if start.is_multiple_of(64) {
        // Aligned: whole words are copied.
        let (w0, full) = (start / 64, len / 64);
        dst[w0..w0 + full].copy_from_slice(&src[..full]);
        done = 64 * full;
    }
    while done < len {
        let at = start + done;
        let (w, shift) = (at / 64, at % 64);
        // As many bits as fit in this destination word and remain in the source.
        let count = (64 - shift).min(len - done);
        let bits = (src[done / 64] >> (done % 64))
            | match (done % 64, src.get(done / 64 + 1)) {
                (0, _) | (_, None) => 0,
                (s, Some(&next)) => next << (64 - s),
            };
        let keep = low_bits(count) << shift;
        dst[w] = (dst[w] & !keep) | ((bits << shift) & keep);
        done += count;
    }
}

/// `n` bits set from the mask's start (eval mode, and calls that keep everything).
pub(crate) fn set_all(mask: Option<BitsMut<'_>>, n: usize) {
    const ONES: [u64; 64] = [!0; 64];
    if let Some(m) = mask {
        for at in (0..n).step_by(64 * 64) {
            let len = (n - at).min(64 * 64);
            write_bits(m.words, m.start + at, &ONES[..mask_words(len)], len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_matches_std_round() {
        let cases = [
            0.0,
            0.5,
            1.5,
            2.5,
            0.49999999999999994,
            4294967295.5,
            4294967296.0,
            1e-300,
        ];
        for v in cases {
            assert_eq!(round_half_away(v), v.round() as u64, "{v}");
        }
        let mut x = 0.0f64;
        while x < 1.0 {
            let v = x * 4_294_967_296.0;
            assert_eq!(round_half_away(v), v.round() as u64, "{x}");
            x += 0.000_123_456_7;
        }
    }

    fn bit(words: &[u64], i: usize) -> u64 {
        (words[i / 64] >> (i % 64)) & 1
    }

    #[test]
    fn copy_bits_at_every_shift() {
        let src = [
            0x0123_4567_89ab_cdefu64,
            0xfedc_ba98_7654_3210,
            0xffff_0000_ffff_0000,
        ];
        for start in 0..130 {
            for len in 0..(192 - start).min(70) {
                let mut out = [0u64; 2];
                copy_bits(&src, start, len, &mut out[..mask_words(len)]);
                for i in 0..len {
                    assert_eq!(bit(&out, i), bit(&src, start + i));
                }
                if len % 64 != 0 {
                    assert_eq!(out[len / 64] >> (len % 64), 0);
                }
            }
        }
    }

    #[test]
    fn write_bits_touches_only_its_range() {
        let src = [0x0123_4567_89ab_cdefu64, 0xfedc_ba98_7654_3210];
        for start in 0..130 {
            for len in 0..=128 {
                let mut dst = [0xaaaa_5555_aaaa_5555u64; 5];
                let before = dst;
                write_bits(&mut dst, start, &src, len);
                for i in 0..320 {
                    let want = if (start..start + len).contains(&i) {
                        bit(&src, i - start)
                    } else {
                        bit(&before, i)
                    };
                    assert_eq!(bit(&dst, i), want, "start {start} len {len} bit {i}");
                }
            }
        }
    }
}
