//! The one error type of the crate.

use core::fmt;

/// Why a call was refused. A call that returns an `Error` has written nothing.
///
/// ```
/// use simd_dropout::{forward, Error, Seed};
/// let x = [1.0f32; 4];
/// let mut y = [0.0f32; 4];
/// let mut mask = [0u64; 1];
/// let err = forward(f64::NAN, Seed::new(1, 2), 0, &x, &mut y, &mut mask).unwrap_err();
/// assert!(matches!(err, Error::InvalidProbability { .. }));
/// assert_eq!(y, [0.0; 4]); // untouched
/// ```
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Error {
    /// `p` is NaN or outside `[0, 1]` (or equal to 1 where the operation needs `p < 1`).
    InvalidProbability {
        /// The value given.
        p: f64,
    },
    /// Two slices that must have the same length do not.
    LengthMismatch {
        /// The length required (that of the input).
        expected: usize,
        /// The length found.
        found: usize,
    },
    /// A mask buffer holds fewer `u64` words than `ceil(len / 64)`.
    MaskTooShort {
        /// Words needed.
        needed: usize,
        /// Words given.
        found: usize,
    },
    /// The operation needs inputs that a [`Record`](crate::Record) of this mode does not
    /// describe (a fused call is replayed with `Backend::fused_forward_no_mask`).
    UnsupportedMode,
    /// A shape's product does not equal the slice length, or overflows `usize`.
    ShapeMismatch {
        /// Elements the shape describes (`usize::MAX` when the product overflows).
        elements: usize,
        /// The slice length.
        len: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::InvalidProbability { p } => {
                write!(
                    f,
                    "dropout probability {p} is not a finite number in [0, 1]"
                )
            }
            Error::LengthMismatch { expected, found } => {
                write!(f, "slice has {found} elements, expected {expected}")
            }
            Error::MaskTooShort { needed, found } => {
                write!(f, "mask buffer has {found} u64 words, needs {needed}")
            }
            Error::ShapeMismatch { elements, len } => {
                write!(
                    f,
                    "shape describes {elements} elements but the slice has {len}"
                )
            }
            Error::UnsupportedMode => {
                write!(
                    f,
                    "the record's dropout mode does not support this operation"
                )
            }
        }
    }
}

/// Errors compare by value, with `p` compared by its bits, so that an error about a NaN `p`
/// equals itself.
///
/// ```
/// use simd_dropout::Error;
/// let e = Error::InvalidProbability { p: f64::NAN };
/// assert_eq!(e, e);
/// ```
impl PartialEq for Error {
    fn eq(&self, other: &Self) -> bool {
        use Error::*;
        match (*self, *other) {
            (InvalidProbability { p: a }, InvalidProbability { p: b }) => {
                a.to_bits() == b.to_bits()
            }
            (
                LengthMismatch {
                    expected: a,
                    found: b,
                },
                LengthMismatch {
                    expected: c,
                    found: d,
                },
            )
            | (
                MaskTooShort {
                    needed: a,
                    found: b,
                },
                MaskTooShort {
                    needed: c,
                    found: d,
                },
            )
            | (
                ShapeMismatch {
                    elements: a,
                    len: b,
                },
                ShapeMismatch {
                    elements: c,
                    len: d,
                },
            ) => (a, b) == (c, d),
            (UnsupportedMode, UnsupportedMode) => true,
            _ => false,
        }
    }
}

impl Eq for Error {}

impl core::error::Error for Error {}
