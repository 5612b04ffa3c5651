//! The element types the kernels accept.

use half::{bf16, f16};

mod sealed {
    /// Which concrete type an `Element` is; lets kernels pick their per-type code at compile
    /// time without a second trait.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Kind {
        F32,
        F16,
        Bf16,
    }

    pub trait Sealed {
        const KIND: Kind;
    }
    impl Sealed for f32 {
        const KIND: Kind = Kind::F32;
    }
    impl Sealed for half::f16 {
        const KIND: Kind = Kind::F16;
    }
    impl Sealed for half::bf16 {
        const KIND: Kind = Kind::Bf16;
    }
}

pub(crate) use sealed::Kind;

/// A floating-point type the kernels work on: `f32`, `half::f16` or `half::bf16`.
///
/// The trait is sealed (the contract fixes the rounding of each type), but downstream crates
/// can name it to write one generic call site for all three types:
///
/// ```
/// use simd_dropout::{forward_no_mask, Element, Seed};
/// fn drop_activations<T: Element>(x: &[T], y: &mut [T]) -> Result<(), simd_dropout::Error> {
///     forward_no_mask(0.1, Seed::new(1, 1), 0, x, y)
/// }
/// let x = [half::bf16::from_f32(2.0); 8];
/// let mut y = [half::bf16::ZERO; 8];
/// drop_activations(&x, &mut y).unwrap();
/// ```
pub trait Element:
    sealed::Sealed + Copy + Default + PartialEq + core::fmt::Debug + Send + Sync + 'static
{
    /// `+0.0`, what a dropped element becomes.
    const ZERO: Self;
    /// Widens exactly to `f32`.
    ///
    /// ```
    /// use simd_dropout::Element;
    /// assert_eq!(half::f16::from_f32(0.5).to_f32(), 0.5);
    /// ```
    fn to_f32(self) -> f32;
    /// Rounds an `f32` to this type, to nearest with ties to even.
    ///
    /// ```
    /// use simd_dropout::Element;
    /// assert_eq!(<half::bf16 as Element>::from_f32(1.0).to_f32(), 1.0);
    /// ```
    fn from_f32(v: f32) -> Self;
    /// The raw bits, widened to `u32` (for bit-exact comparisons).
    ///
    /// ```
    /// use simd_dropout::Element;
    /// assert_eq!(Element::to_bits(-0.0f32), 0x8000_0000);
    /// ```
    fn to_bits(self) -> u32;
    /// `true` for any NaN.
    ///
    /// ```
    /// use simd_dropout::Element;
    /// assert!(Element::is_nan(half::f16::NAN));
    /// ```
    fn is_nan(self) -> bool;
}

impl Element for f32 {
    const ZERO: Self = 0.0;
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        v
    }
    #[inline(always)]
    fn to_bits(self) -> u32 {
        f32::to_bits(self)
    }
    #[inline(always)]
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
}

impl Element for f16 {
    const ZERO: Self = f16::ZERO;
    #[inline(always)]
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        f16::from_f32(v)
    }
    #[inline(always)]
    fn to_bits(self) -> u32 {
        u32::from(f16::to_bits(self))
    }
    #[inline(always)]
    fn is_nan(self) -> bool {
        f16::is_nan(self)
    }
}

impl Element for bf16 {
    const ZERO: Self = bf16::ZERO;
    #[inline(always)]
    fn to_f32(self) -> f32 {
        bf16::to_f32(self)
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        bf16::from_f32(v)
    }
    #[inline(always)]
    fn to_bits(self) -> u32 {
        u32::from(bf16::to_bits(self))
    }
    #[inline(always)]
    fn is_nan(self) -> bool {
        bf16::is_nan(self)
    }
}
