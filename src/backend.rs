//! Which kernel runs: the one place where a backend is chosen and called.

use crate::element::Element;
use crate::kernels::{portable::Portable, Data};
use crate::reference::{self, Rate};
use crate::Seed;

#[cfg(target_arch = "x86_64")]
use crate::kernels::{avx2::Avx2, avx512::Avx512};

/// A kernel implementation: the scalar reference, the portable `wide` backend, or an x86_64
/// backend that this CPU has.
///
/// Every backend produces the same bits (the crate's determinism promise); they differ only
/// in speed. [`Backend::detect`] picks the fastest; the other constructors exist so that
/// tests and benchmarks can compare them. A `Backend` value can only be made on a CPU that
/// runs it, so every method is safe.
///
/// ```
/// use simd_dropout::{Backend, Seed};
/// let x = vec![1.0f32; 1000];
/// let (mut y1, mut y2) = (vec![0.0; 1000], vec![0.0; 1000]);
/// Backend::scalar().forward_no_mask(0.5, Seed::new(1, 2), 0, &x, &mut y1).unwrap();
/// Backend::detect().forward_no_mask(0.5, Seed::new(1, 2), 0, &x, &mut y2).unwrap();
/// assert_eq!(y1, y2);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backend {
    imp: Imp,
    /// Split large calls across rayon threads (feature `rayon`).
    parallel: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Imp {
    Scalar,
    Portable(Portable),
    #[cfg(target_arch = "x86_64")]
    Avx2(Avx2),
    #[cfg(target_arch = "x86_64")]
    Avx512(Avx512),
}

impl Backend {
    /// The fastest backend this CPU runs: AVX-512, else AVX2, where the CPU has them (detected
    /// at run time under `std`, by compile-time target features without it), else the
    /// portable one.
    ///
    /// ```
    /// println!("dropout kernels: {}", simd_dropout::Backend::detect().name());
    /// ```
    #[inline]
    pub fn detect() -> Backend {
        #[cfg(target_arch = "x86_64")]
        if let Some(b) = Self::avx512().or_else(Self::avx2) {
            return b;
        }
        Self::portable()
    }

    /// The scalar reference: the contract written plainly, one element at a time.
    ///
    /// ```
    /// assert_eq!(simd_dropout::Backend::scalar().name(), "scalar");
    /// ```
    pub const fn scalar() -> Backend {
        Backend::of(Imp::Scalar)
    }

    /// The portable backend on `wide` (SSE2 / NEON / simd128, chosen at compile time).
    ///
    /// ```
    /// assert_eq!(simd_dropout::Backend::portable().name(), "portable");
    /// ```
    pub const fn portable() -> Backend {
        Backend::of(Imp::Portable(Portable::new()))
    }

    /// The AVX2 + F16C backend, if this CPU has those features (always `None` off x86_64 and
    /// with the test-only `no-avx2` feature).
    ///
    /// ```
    /// if let Some(b) = simd_dropout::Backend::avx2() {
    ///     assert_eq!(b.name(), "avx2");
    /// }
    /// ```
    #[inline]
    pub fn avx2() -> Option<Backend> {
        #[cfg(target_arch = "x86_64")]
        return Avx2::new().map(|t| Backend::of(Imp::Avx2(t)));
        #[cfg(not(target_arch = "x86_64"))]
        None
    }

    /// The AVX-512 backend (F + DQ, with AVX2 and F16C), if this CPU has those features
    /// (always `None` off x86_64 and with the test-only `no-avx512` feature).
    ///
    /// ```
    /// if let Some(b) = simd_dropout::Backend::avx512() {
    ///     assert_eq!(b.name(), "avx512");
    /// }
    /// ```
    #[inline]
    pub fn avx512() -> Option<Backend> {
        #[cfg(target_arch = "x86_64")]
        return Avx512::new().map(|t| Backend::of(Imp::Avx512(t)));
        #[cfg(not(target_arch = "x86_64"))]
        None
    }

    /// Every backend this CPU runs, slowest first.
    ///
    /// ```
    /// let all: Vec<_> = simd_dropout::Backend::available().collect();
    /// assert!(all.contains(&simd_dropout::Backend::scalar()));
    /// ```
    pub fn available() -> impl Iterator<Item = Backend> {
        [
            Some(Self::scalar()),
            Some(Self::portable()),
            Self::avx2(),
            Self::avx512(),
        ]
        .into_iter()
        .flatten()
    }

    const fn of(imp: Imp) -> Backend {
        Backend {
            imp,
            parallel: false,
        }
    }

    /// The same kernels, with calls of 64Ki elements or more split across the threads of the
    /// rayon pool the call runs in (the pool of an enclosing `ThreadPool::install`, else
    /// rayon's global pool). The output bits and mask words are those of the serial call, for
    /// any number of threads.
    ///
    /// ```
    /// use simd_dropout::{Backend, Seed};
    /// let x = vec![1.0f32; 1 << 20];
    /// let (mut a, mut b) = (vec![0.0; 1 << 20], vec![0.0; 1 << 20]);
    /// Backend::detect().forward_no_mask(0.1, Seed::new(1, 2), 0, &x, &mut a).unwrap();
    /// Backend::detect().parallel().forward_no_mask(0.1, Seed::new(1, 2), 0, &x, &mut b).unwrap();
    /// assert_eq!(a, b);
    /// ```
    #[cfg(feature = "rayon")]
    pub const fn parallel(self) -> Backend {
        Backend {
            imp: self.imp,
            parallel: true,
        }
    }

    /// The same kernels, one thread per call (the default).
    ///
    /// ```
    /// let b = simd_dropout::Backend::detect();
    /// assert!(!b.serial().is_parallel());
    /// ```
    pub const fn serial(self) -> Backend {
        Backend {
            imp: self.imp,
            parallel: false,
        }
    }

    /// Whether large calls are split across rayon threads.
    ///
    /// ```
    /// assert!(!simd_dropout::Backend::scalar().is_parallel());
    /// ```
    pub const fn is_parallel(self) -> bool {
        self.parallel
    }

    /// A short name: `"scalar"`, `"portable"`, `"avx2"` or `"avx512"`.
    ///
    /// ```
    /// assert!(!simd_dropout::Backend::detect().name().is_empty());
    /// ```
    pub fn name(self) -> &'static str {
        match self.imp {
            Imp::Scalar => "scalar",
            Imp::Portable(_) => "portable",
            #[cfg(target_arch = "x86_64")]
            Imp::Avx2(_) => "avx2",
            #[cfg(target_arch = "x86_64")]
            Imp::Avx512(_) => "avx512",
        }
    }

    /// Forward dropout on a job whose lengths `ops` has validated.
    pub(crate) fn generate<T: Element>(
        self,
        seed: Seed,
        offset: u64,
        rate: Rate,
        data: Data<'_, T>,
        mask: Option<&mut [u64]>,
    ) {
        #[cfg(feature = "rayon")]
        if self.parallel && data.len() >= crate::parallel::SERIAL_BELOW {
            let one = self.serial();
            let run = |off: u64, d: Data<'_, T>, m: Option<&mut [u64]>| {
                one.generate(seed, off, rate, d, m)
            };
            return crate::parallel::generate(offset, data, mask, &run);
        }
        match self.imp {
            Imp::Scalar => reference::generate(seed, offset, rate, data, mask),
            Imp::Portable(k) => k.generate(seed, offset, rate, data, mask),
            #[cfg(target_arch = "x86_64")]
            Imp::Avx2(k) => k.generate(seed, offset, rate, data, mask),
            #[cfg(target_arch = "x86_64")]
            Imp::Avx512(k) => k.generate(seed, offset, rate, data, mask),
        }
    }

    /// Runs `f` compiled for this backend's instruction set (safe code only: its loops get
    /// auto-vectorized with the wider registers).
    #[inline]
    pub(crate) fn with_isa<R>(self, f: impl FnOnce() -> R) -> R {
        match self.imp {
            #[cfg(target_arch = "x86_64")]
            Imp::Avx2(k) => k.run(f),
            #[cfg(target_arch = "x86_64")]
            Imp::Avx512(k) => k.run(f),
            _ => f(),
        }
    }

    /// Mask application on a job whose lengths `ops` has validated.
    pub(crate) fn apply<T: Element>(self, mask: &[u64], scale: f32, data: Data<'_, T>) {
        #[cfg(feature = "rayon")]
        if self.parallel && data.len() >= crate::parallel::SERIAL_BELOW {
            let one = self.serial();
            let run = |m: &[u64], d: Data<'_, T>| one.apply(m, scale, d);
            return crate::parallel::apply(mask, data, &run);
        }
        match self.imp {
            Imp::Scalar => reference::apply(mask, scale, data),
            Imp::Portable(k) => k.apply(mask, scale, data),
            #[cfg(target_arch = "x86_64")]
            Imp::Avx2(k) => k.apply(mask, scale, data),
            #[cfg(target_arch = "x86_64")]
            Imp::Avx512(k) => k.apply(mask, scale, data),
        }
    }
}

impl Default for Backend {
    /// [`Backend::detect`].
    fn default() -> Self {
        Self::detect()
    }
}
