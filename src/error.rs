//! The one error type of the crate.

use core::fmt;

/// Why a call was refused. A call that returns an `Error` has written nothing.
///
/// Every message names the argument, what was expected and what was found.
///
/// ```
/// use simd_dropout::{Error, Io, Seed};
/// let x = [1.0f32; 4];
/// let mut y = [0.0f32; 4];
/// let err = simd_dropout::forward(f64::NAN, Seed::from_u64(1), 0, Io::Out { x: &x, y: &mut y }, None)
///     .unwrap_err();
/// assert!(matches!(err, Error::InvalidProbability { .. }));
/// assert_eq!(y, [0.0; 4]); // untouched
/// assert_eq!(err.to_string(), "p = NaN: the drop probability must be a number in [0, 1]");
/// ```
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Error {
    /// `p` is NaN or outside `[0, 1]`, or `1` where the operation needs `p < 1` (alpha and
    /// Gaussian dropout).
    InvalidProbability {
        /// The value given.
        p: f64,
        /// `true` when the operation also excludes `p = 1`.
        below_one: bool,
    },
    /// A slice does not have the length the call needs.
    LengthMismatch {
        /// The argument (`"y"`, `"residual"`, `"out"`, ...).
        arg: &'static str,
        /// The length required.
        expected: usize,
        /// The length found.
        found: usize,
    },
    /// A mask buffer holds fewer words than the call's bits need (`ceil((start + n) / 64)`).
    MaskTooShort {
        /// Words needed (`usize::MAX` when the bit count overflows).
        needed: usize,
        /// Words given.
        found: usize,
    },
    /// A shape does not describe the slice, or its element count overflows `usize`.
    ShapeMismatch {
        /// The argument the shape is checked against (`"x"`, `"bias"`, ...).
        arg: &'static str,
        /// Elements the shape describes; `None` when the count overflows `usize`.
        elements: Option<usize>,
        /// The slice length.
        len: usize,
    },
    /// A bias (or its gradient) whose length does not divide the elements into rows.
    RowMismatch {
        /// `"bias"` or `"g_bias"`.
        arg: &'static str,
        /// Its length (the columns).
        cols: usize,
        /// The number of elements.
        len: usize,
    },
    /// A strided view does not fit its buffer, overlaps itself where it is written, or its
    /// window lies outside the full tensor.
    InvalidView {
        /// What is wrong.
        reason: &'static str,
    },
    /// A DropBlock geometry ([`Blocks`](crate::Blocks)) the operation cannot run: a block size
    /// of 0.
    InvalidBlock {
        /// What is wrong.
        reason: &'static str,
    },
    /// A [`Record`](crate::Record) was asked to run an operation of another kind of call.
    WrongOp {
        /// What the record describes.
        record: &'static str,
        /// What was asked.
        asked: &'static str,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            // `{:?}` prints f64::MAX as 1.7976931348623157e308, not 309 digits.
            Error::InvalidProbability { p, below_one } => {
                let range = if below_one {
                    "in [0, 1) for alpha and Gaussian dropout"
                } else {
                    "in [0, 1]"
                };
                write!(
                    f,
                    "p = {p:?}: the drop probability must be a number {range}"
                )
            }
            Error::LengthMismatch {
                arg,
                expected,
                found,
            } => write!(
                f,
                "`{arg}` has length {found}, but the call needs length {expected}"
            ),
            Error::MaskTooShort { needed, found } if needed == usize::MAX => write!(
                f,
                "mask has {found} u64 words; the call's bit count overflows usize"
            ),
            Error::MaskTooShort { needed, found } => {
                write!(f, "mask has {found} u64 words, the call needs {needed}")
            }
            Error::ShapeMismatch {
                arg,
                elements: Some(n),
                len,
            } => write!(
                f,
                "the shape describes {n} elements, but `{arg}` has length {len}"
            ),
            Error::ShapeMismatch {
                arg,
                elements: None,
                len,
            } => write!(
                f,
                "the shape's element count overflows usize (`{arg}` has length {len})"
            ),
            Error::RowMismatch { arg, cols, len } => write!(
                f,
                "`{arg}` has length {cols}, which does not divide the {len} elements into rows"
            ),
            Error::InvalidView { reason } => write!(f, "invalid strided view: {reason}"),
            Error::InvalidBlock { reason } => write!(f, "invalid DropBlock geometry: {reason}"),
            Error::WrongOp { record, asked } => {
                write!(f, "the record of {record} call cannot run {asked}")
            }
        }
    }
}

/// Errors compare by value, with `p` compared by its bits, so that an error about a NaN `p`
/// equals itself.
///
/// ```
/// use simd_dropout::Error;
/// let e = Error::InvalidProbability { p: f64::NAN, below_one: false };
/// assert_eq!(e, e);
/// ```
impl PartialEq for Error {
    fn eq(&self, other: &Self) -> bool {
        use Error::*;
        match (*self, *other) {
            (
                InvalidProbability { p: a, below_one: x },
                InvalidProbability { p: b, below_one: y },
            ) => a.to_bits() == b.to_bits() && x == y,
            (
                LengthMismatch {
                    arg: a,
                    expected: b,
                    found: c,
                },
                LengthMismatch {
                    arg: d,
                    expected: e,
                    found: g,
                },
            ) => (a, b, c) == (d, e, g),
            (
                MaskTooShort {
                    needed: a,
                    found: b,
                },
                MaskTooShort {
                    needed: c,
                    found: d,
                },
            ) => (a, b) == (c, d),
            (
                ShapeMismatch {
                    arg: a,
                    elements: b,
                    len: c,
                },
                ShapeMismatch {
                    arg: d,
                    elements: e,
                    len: g,
                },
            ) => (a, b, c) == (d, e, g),
            (
                RowMismatch {
                    arg: a,
                    cols: b,
                    len: c,
                },
                RowMismatch {
                    arg: d,
                    cols: e,
                    len: g,
                },
            ) => (a, b, c) == (d, e, g),
            (InvalidView { reason: a }, InvalidView { reason: b }) => a == b,
            (InvalidBlock { reason: a }, InvalidBlock { reason: b }) => a == b,
            (
                WrongOp {
                    record: a,
                    asked: b,
                },
                WrongOp {
                    record: c,
                    asked: d,
                },
            ) => (a, b) == (c, d),
            _ => false,
        }
    }
}

impl Eq for Error {}

impl core::error::Error for Error {}
