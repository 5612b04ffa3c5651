//! The public operations: validate, then hand the job to a backend.
//!
//! Each operation is a method of [`Backend`] (for tests and benchmarks that pick one) and a
//! free function of the crate root that uses [`Backend::detect`].

use crate::backend::Backend;
use crate::element::Element;
use crate::kernels::Data;
use crate::mask::words_for;
use crate::reference::Rate;
use crate::{Error, Seed};

/// `found == expected`, else a `LengthMismatch`.
pub(crate) fn check_len(expected: usize, found: usize) -> Result<(), Error> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::LengthMismatch { expected, found })
    }
}

/// A mask buffer of at least `ceil(len / 64)` words, else a `MaskTooShort`.
pub(crate) fn check_mask(len: usize, words: usize) -> Result<(), Error> {
    let needed = words_for(len);
    if words >= needed {
        Ok(())
    } else {
        Err(Error::MaskTooShort {
            needed,
            found: words,
        })
    }
}

impl Backend {
    /// Forward dropout: `y[i] = keep[i] ? x[i] * scale : +0.0`, and the keep bits in `mask`
    /// (`ceil(len / 64)` words; words past that are left alone).
    ///
    /// Element `i` uses word `offset + i` of the PCG32 stream `seed`; see the crate docs for
    /// the exact contract. Errors (nothing written): `p` not in `[0, 1]`, `y.len() != x.len()`,
    /// a mask buffer too short.
    ///
    /// ```
    /// use simd_dropout::{mask_words, Backend, Seed};
    /// let x = [1.0f32, 2.0, 3.0, 4.0];
    /// let mut y = [0.0f32; 4];
    /// let mut mask = vec![0u64; mask_words(x.len())];
    /// Backend::detect().forward(0.5, Seed::new(7, 0), 0, &x, &mut y, &mut mask).unwrap();
    /// for i in 0..4 {
    ///     let kept = mask[0] >> i & 1 == 1;
    ///     assert_eq!(y[i], if kept { x[i] * 2.0 } else { 0.0 });
    /// }
    /// ```
    pub fn forward<T: Element>(
        self,
        p: f64,
        seed: Seed,
        offset: u64,
        x: &[T],
        y: &mut [T],
        mask: &mut [u64],
    ) -> Result<(), Error> {
        let rate = Rate::new(p)?;
        check_len(x.len(), y.len())?;
        check_mask(x.len(), mask.len())?;
        self.generate(seed, offset, rate, Data::Out { x, y }, Some(mask));
        Ok(())
    }

    /// [`forward`](Backend::forward) overwriting `xy` with its result.
    ///
    /// ```
    /// use simd_dropout::{Backend, Seed};
    /// let mut xy = [1.0f32; 100];
    /// let mut mask = [0u64; 2];
    /// Backend::detect().forward_in_place(0.25, Seed::new(3, 4), 10, &mut xy, &mut mask).unwrap();
    /// let kept = xy.iter().filter(|&&v| v != 0.0).count();
    /// assert_eq!(kept as u32, mask[0].count_ones() + mask[1].count_ones());
    /// ```
    pub fn forward_in_place<T: Element>(
        self,
        p: f64,
        seed: Seed,
        offset: u64,
        xy: &mut [T],
        mask: &mut [u64],
    ) -> Result<(), Error> {
        let rate = Rate::new(p)?;
        check_mask(xy.len(), mask.len())?;
        self.generate(seed, offset, rate, Data::InPlace(xy), Some(mask));
        Ok(())
    }

    /// [`forward`](Backend::forward) without a mask: for a backward pass that regenerates it
    /// from `(seed, offset, p)`. Also that backward pass itself (see
    /// [`backward_recompute`](crate::backward_recompute)).
    ///
    /// ```
    /// use simd_dropout::{Backend, Seed};
    /// let x = [2.0f32; 8];
    /// let mut y = [0.0f32; 8];
    /// Backend::detect().forward_no_mask(0.0, Seed::new(1, 1), 0, &x, &mut y).unwrap();
    /// assert_eq!(y, x); // p = 0 keeps everything, scale 1
    /// ```
    pub fn forward_no_mask<T: Element>(
        self,
        p: f64,
        seed: Seed,
        offset: u64,
        x: &[T],
        y: &mut [T],
    ) -> Result<(), Error> {
        Rate::new(p)?;
        check_len(x.len(), y.len())?;
        self.forward_data(p, seed, offset, Data::Out { x, y })
    }

    /// Element-wise dropout on validated data, storing no mask.
    pub(crate) fn forward_data<T: Element>(
        self,
        p: f64,
        seed: Seed,
        offset: u64,
        data: Data<'_, T>,
    ) -> Result<(), Error> {
        let rate = Rate::new(p)?;
        self.generate(seed, offset, rate, data, None);
        Ok(())
    }

    /// [`forward_no_mask`](Backend::forward_no_mask) overwriting `xy`.
    ///
    /// ```
    /// use simd_dropout::{Backend, Seed};
    /// let mut xy = [5.0f32; 8];
    /// Backend::detect().forward_in_place_no_mask(1.0, Seed::new(1, 1), 0, &mut xy).unwrap();
    /// assert_eq!(xy, [0.0; 8]); // p = 1 drops everything
    /// ```
    pub fn forward_in_place_no_mask<T: Element>(
        self,
        p: f64,
        seed: Seed,
        offset: u64,
        xy: &mut [T],
    ) -> Result<(), Error> {
        self.forward_data(p, seed, offset, Data::InPlace(xy))
    }

    /// Only the mask of `len` elements: the same bits [`forward`](Backend::forward) writes.
    ///
    /// ```
    /// use simd_dropout::{Backend, Seed};
    /// let mut mask = [0u64; 2];
    /// Backend::detect().fill_mask(0.5, Seed::new(9, 9), 0, 100, &mut mask).unwrap();
    /// assert_eq!(mask[1] >> 36, 0); // bits past len are zero
    /// ```
    pub fn fill_mask(
        self,
        p: f64,
        seed: Seed,
        offset: u64,
        len: usize,
        mask: &mut [u64],
    ) -> Result<(), Error> {
        let rate = Rate::new(p)?;
        check_mask(len, mask.len())?;
        self.generate::<f32>(seed, offset, rate, Data::None(len), Some(mask));
        Ok(())
    }

    /// Applies a stored mask: `y[i] = bit i ? x[i] * scale(p) : +0.0`. This is the backward
    /// pass from a mask (`x` = the output gradient, `y` = the input gradient), and the replay
    /// of a forward. Bits past `x.len()` are ignored.
    ///
    /// ```
    /// use simd_dropout::{Backend, Seed};
    /// let mask = [0b1010u64];
    /// let gy = [1.0f32; 4];
    /// let mut gx = [9.0f32; 4];
    /// Backend::detect().apply_mask(0.5, &mask, &gy, &mut gx).unwrap();
    /// assert_eq!(gx, [0.0, 2.0, 0.0, 2.0]);
    /// ```
    pub fn apply_mask<T: Element>(
        self,
        p: f64,
        mask: &[u64],
        x: &[T],
        y: &mut [T],
    ) -> Result<(), Error> {
        let rate = Rate::new(p)?;
        check_len(x.len(), y.len())?;
        check_mask(x.len(), mask.len())?;
        self.apply(mask, rate.scale, Data::Out { x, y });
        Ok(())
    }

    /// [`apply_mask`](Backend::apply_mask) overwriting `xy`.
    ///
    /// ```
    /// use simd_dropout::Backend;
    /// let mut g = [1.0f32; 3];
    /// Backend::detect().apply_mask_in_place(0.0, &[0b101], &mut g).unwrap();
    /// assert_eq!(g, [1.0, 0.0, 1.0]);
    /// ```
    pub fn apply_mask_in_place<T: Element>(
        self,
        p: f64,
        mask: &[u64],
        xy: &mut [T],
    ) -> Result<(), Error> {
        let rate = Rate::new(p)?;
        check_mask(xy.len(), mask.len())?;
        self.apply(mask, rate.scale, Data::InPlace(xy));
        Ok(())
    }
}

/// [`Backend::forward`] on the detected backend: dropout of `x` into `y`, keep bits into
/// `mask`.
///
/// ```
/// use simd_dropout::{forward, mask_words, Seed};
/// let x = vec![1.0f32; 300];
/// let mut y = vec![0.0f32; 300];
/// let mut mask = vec![0u64; mask_words(300)];
/// forward(0.1, Seed::new(42, 54), 0, &x, &mut y, &mut mask).unwrap();
/// ```
pub fn forward<T: Element>(
    p: f64,
    seed: Seed,
    offset: u64,
    x: &[T],
    y: &mut [T],
    mask: &mut [u64],
) -> Result<(), Error> {
    Backend::detect().forward(p, seed, offset, x, y, mask)
}

/// [`Backend::forward_in_place`] on the detected backend.
///
/// ```
/// let mut xy = [1.0f32; 64];
/// let mut mask = [0u64; 1];
/// simd_dropout::forward_in_place(0.5, simd_dropout::Seed::new(1, 2), 0, &mut xy, &mut mask)
///     .unwrap();
/// ```
pub fn forward_in_place<T: Element>(
    p: f64,
    seed: Seed,
    offset: u64,
    xy: &mut [T],
    mask: &mut [u64],
) -> Result<(), Error> {
    Backend::detect().forward_in_place(p, seed, offset, xy, mask)
}

/// [`Backend::forward_no_mask`] on the detected backend.
///
/// ```
/// let x = [1.0f32; 10];
/// let mut y = [0.0f32; 10];
/// simd_dropout::forward_no_mask(0.3, simd_dropout::Seed::new(1, 2), 0, &x, &mut y).unwrap();
/// ```
pub fn forward_no_mask<T: Element>(
    p: f64,
    seed: Seed,
    offset: u64,
    x: &[T],
    y: &mut [T],
) -> Result<(), Error> {
    Backend::detect().forward_no_mask(p, seed, offset, x, y)
}

/// [`Backend::forward_in_place_no_mask`] on the detected backend.
///
/// ```
/// let mut xy = [1.0f32; 10];
/// simd_dropout::forward_in_place_no_mask(0.3, simd_dropout::Seed::new(1, 2), 0, &mut xy)
///     .unwrap();
/// ```
pub fn forward_in_place_no_mask<T: Element>(
    p: f64,
    seed: Seed,
    offset: u64,
    xy: &mut [T],
) -> Result<(), Error> {
    Backend::detect().forward_in_place_no_mask(p, seed, offset, xy)
}

/// [`Backend::fill_mask`] on the detected backend: the mask of `len` elements alone.
///
/// ```
/// let mut mask = [0u64; 1];
/// simd_dropout::fill_mask(0.0, simd_dropout::Seed::new(1, 2), 0, 5, &mut mask).unwrap();
/// assert_eq!(mask[0], 0b11111);
/// ```
pub fn fill_mask(
    p: f64,
    seed: Seed,
    offset: u64,
    len: usize,
    mask: &mut [u64],
) -> Result<(), Error> {
    Backend::detect().fill_mask(p, seed, offset, len, mask)
}

/// [`Backend::apply_mask`] on the detected backend: the backward pass from a stored mask.
///
/// ```
/// let gy = [1.0f32, 1.0];
/// let mut gx = [0.0f32; 2];
/// simd_dropout::apply_mask(0.5, &[0b01], &gy, &mut gx).unwrap();
/// assert_eq!(gx, [2.0, 0.0]);
/// ```
pub fn apply_mask<T: Element>(p: f64, mask: &[u64], x: &[T], y: &mut [T]) -> Result<(), Error> {
    Backend::detect().apply_mask(p, mask, x, y)
}

/// [`Backend::apply_mask_in_place`] on the detected backend.
///
/// ```
/// let mut g = [1.0f32, 1.0];
/// simd_dropout::apply_mask_in_place(0.5, &[0b10], &mut g).unwrap();
/// assert_eq!(g, [0.0, 2.0]);
/// ```
pub fn apply_mask_in_place<T: Element>(p: f64, mask: &[u64], xy: &mut [T]) -> Result<(), Error> {
    Backend::detect().apply_mask_in_place(p, mask, xy)
}

/// The backward pass with nothing stored: regenerates the forward's mask from
/// `(p, seed, offset)` and applies it to the output gradient `gy`, writing `gx`.
/// (The same computation as [`forward_no_mask`].)
///
/// ```
/// use simd_dropout::{backward_recompute, forward, Seed};
/// let x = [1.0f32; 70];
/// let (mut y, mut mask) = ([0.0f32; 70], [0u64; 2]);
/// forward(0.2, Seed::new(5, 6), 100, &x, &mut y, &mut mask).unwrap();
/// let gy = [1.0f32; 70];
/// let mut gx = [0.0f32; 70];
/// backward_recompute(0.2, Seed::new(5, 6), 100, &gy, &mut gx).unwrap();
/// assert_eq!(gx, y); // the same mask and scale
/// ```
pub fn backward_recompute<T: Element>(
    p: f64,
    seed: Seed,
    offset: u64,
    gy: &[T],
    gx: &mut [T],
) -> Result<(), Error> {
    Backend::detect().forward_no_mask(p, seed, offset, gy, gx)
}

/// [`backward_recompute`] overwriting the gradient in place.
///
/// ```
/// let mut g = [1.0f32; 4];
/// simd_dropout::backward_recompute_in_place(0.0, simd_dropout::Seed::new(1, 1), 0, &mut g)
///     .unwrap();
/// assert_eq!(g, [1.0; 4]);
/// ```
pub fn backward_recompute_in_place<T: Element>(
    p: f64,
    seed: Seed,
    offset: u64,
    g: &mut [T],
) -> Result<(), Error> {
    Backend::detect().forward_in_place_no_mask(p, seed, offset, g)
}
