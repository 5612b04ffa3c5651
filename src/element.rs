//! The element types the kernels accept, and the one place where each type's arithmetic is
//! fixed: `f32`, `f16` and `bf16` compute in `f32`, `f64` computes in `f64`.

use half::{bf16, f16};

pub(crate) mod sealed {
    use core::ops::{Add, Mul};

    /// Which concrete type an `Element` is. Matched once, in `kernels::apply64`, to pick the
    /// per-type method of an instruction set.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Kind {
        F32,
        F16,
        Bf16,
        F64,
    }

    /// The type a call computes in: `f32` for the 32- and 16-bit types, `f64` for `f64`.
    pub trait Acc:
        Copy + Default + PartialEq + Send + Sync + Add<Output = Self> + Mul<Output = Self>
    {
        /// A constant derived in f64 (a scale, alpha dropout's `a`, `b`, `c`), rounded once.
        fn from_f64(v: f64) -> Self;
        /// An f32 value (a Gaussian noise variate), widened exactly.
        fn from_f32(v: f32) -> Self;
    }
    impl Acc for f32 {
        #[inline(always)]
        fn from_f64(v: f64) -> f32 {
            v as f32
        }
        #[inline(always)]
        fn from_f32(v: f32) -> f32 {
            v
        }
    }
    impl Acc for f64 {
        #[inline(always)]
        fn from_f64(v: f64) -> f64 {
            v
        }
        #[inline(always)]
        fn from_f32(v: f32) -> f64 {
            f64::from(v)
        }
    }

    pub trait Sealed: Copy {
        const KIND: Kind;
        /// 1.0, the input whose scaled value is the scale itself (mask expansion).
        const ONE: Self;
        type Acc: Acc;
        /// Exact widening to the computing type.
        fn widen(self) -> Self::Acc;
        /// One rounding to nearest, ties to even (`half`'s `from_f32` for the 16-bit types).
        fn narrow(v: Self::Acc) -> Self;
    }
}

pub(crate) use sealed::{Acc, Kind};

/// A floating-point type the kernels work on: `f32`, `f64`, `half::f16` or `half::bf16`.
///
/// The trait is sealed (the contract fixes each type's rounding), but downstream crates can
/// name it to write one generic call site for every type:
///
/// ```
/// use simd_dropout::{Element, Io, Seed};
/// fn drop_activations<T: Element>(x: &[T], y: &mut [T]) -> Result<(), simd_dropout::Error> {
///     simd_dropout::forward(0.1, Seed::from_u64(1), 0, Io::Out { x, y }, None)
/// }
/// let x = [half::bf16::from_f32(2.0); 8];
/// let mut y = [half::bf16::ZERO; 8];
/// drop_activations(&x, &mut y)?;
/// # Ok::<(), simd_dropout::Error>(())
/// ```
pub trait Element:
    sealed::Sealed + Copy + Default + PartialEq + core::fmt::Debug + Send + Sync + 'static
{
    /// `+0.0`, what a dropped element becomes.
    const ZERO: Self;
    /// The raw bits, widened to `u64` (for bit-exact comparisons).
    ///
    /// ```
    /// use simd_dropout::Element;
    /// assert_eq!(Element::to_bits(-0.0f32), 0x8000_0000);
    /// ```
    fn to_bits(self) -> u64;
}

impl sealed::Sealed for f32 {
    const KIND: Kind = Kind::F32;
    const ONE: Self = 1.0;
    type Acc = f32;
    #[inline(always)]
    fn widen(self) -> f32 {
        self
    }
    #[inline(always)]
    fn narrow(v: f32) -> Self {
        v
    }
}

impl Element for f32 {
    const ZERO: Self = 0.0;
    #[inline(always)]
    fn to_bits(self) -> u64 {
        u64::from(f32::to_bits(self))
    }
}

impl sealed::Sealed for f64 {
    const KIND: Kind = Kind::F64;
    const ONE: Self = 1.0;
    type Acc = f64;
    #[inline(always)]
    fn widen(self) -> f64 {
        self
    }
    #[inline(always)]
    fn narrow(v: f64) -> Self {
        v
    }
}

impl Element for f64 {
    const ZERO: Self = 0.0;
    #[inline(always)]
    fn to_bits(self) -> u64 {
        f64::to_bits(self)
    }
}

impl sealed::Sealed for f16 {
    const KIND: Kind = Kind::F16;
    const ONE: Self = f16::ONE;
    type Acc = f32;
    #[inline(always)]
    fn widen(self) -> f32 {
        f16::to_f32(self)
    }
    #[inline(always)]
    fn narrow(v: f32) -> Self {
        f16::from_f32(v)
    }
}

impl Element for f16 {
    const ZERO: Self = f16::ZERO;
    #[inline(always)]
    fn to_bits(self) -> u64 {
        u64::from(f16::to_bits(self))
    }
}

impl sealed::Sealed for bf16 {
    const KIND: Kind = Kind::Bf16;
    const ONE: Self = bf16::ONE;
    type Acc = f32;
    #[inline(always)]
    fn widen(self) -> f32 {
        bf16::to_f32(self)
    }
    #[inline(always)]
    fn narrow(v: f32) -> Self {
        bf16::from_f32(v)
    }
}

impl Element for bf16 {
    const ZERO: Self = bf16::ZERO;
    #[inline(always)]
    fn to_bits(self) -> u64 {
        u64::from(bf16::to_bits(self))
    }
}
