//! What every target shares: the fuzzer's bytes read as a recipe (a few words that choose
//! the type, `p`, seed, offset, sizes and a data seed), data generated from it, the backends
//! under test and the contract's oracle (`tests/common`, computed with rand_pcg, not the
//! crate). Lengths reach past the 64Ki parallel split, which raw bytes never would.
#![allow(dead_code)]

#[path = "../../tests/common/mod.rs"]
pub mod common;

#[allow(unused_imports)] // not every target draws data
pub use common::{FromBits, data};
use simd_dropout::{Backend, Seed};

/// Little-endian words off the front of the input (zeros once it runs out).
pub struct Recipe<'a>(pub &'a [u8]);

impl Recipe<'_> {
    pub fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        let k = self.0.len().min(8);
        b[..k].copy_from_slice(&self.0[..k]);
        self.0 = &self.0[k..];
        u64::from_le_bytes(b)
    }

    pub fn byte(&mut self) -> u8 {
        let b = self.0.first().copied().unwrap_or(0);
        self.0 = self.0.get(1..).unwrap_or(&[]);
        b
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.u64() % n as u64) as usize
    }

    /// `p`: arbitrary f64 bits (mostly invalid), the contract's edge values, or uniform.
    pub fn p(&mut self) -> f64 {
        match self.byte() % 8 {
            0 => f64::from_bits(self.u64()),
            1 => common::PS[self.below(common::PS.len())],
            _ => (self.u64() >> 11) as f64 / (1u64 << 53) as f64,
        }
    }

    pub fn seed(&mut self) -> Seed {
        Seed::new(self.u64(), self.u64())
    }

    /// An offset, often next to the stream's wrap at `u64::MAX`.
    pub fn offset(&mut self) -> u64 {
        match self.byte() % 4 {
            0 => u64::MAX - self.below(200_000) as u64,
            1 => self.below(1000) as u64,
            _ => self.u64(),
        }
    }

    /// An element count: mostly small, sometimes around the 64Ki parallel split or past it.
    pub fn len(&mut self) -> usize {
        match self.byte() % 16 {
            15 => (1 << 16) - 300 + self.below(600),
            14 => (1 << 17) + self.below(5_000),
            12 | 13 => self.below(5_000),
            _ => self.below(300),
        }
    }

    /// A mask start bit.
    pub fn at(&mut self) -> usize {
        self.below(130)
    }

    /// Which element type: 0 f32, 1 f16, 2 bf16, 3 f64.
    pub fn ty(&mut self) -> u8 {
        self.byte() % 4
    }
}

/// Every backend of this CPU, and the rayon form of each.
pub fn backends() -> Vec<Backend> {
    Backend::available()
        .flat_map(|b| [b, b.parallel()])
        .collect()
}

/// Whether `p` is one the crate takes (else every call must be an error).
pub fn valid_p(p: f64) -> bool {
    (0.0..=1.0).contains(&p)
}

/// Same bits, or both NaN (the one freedom the contract allows).
pub fn same<T: FromBits>(a: &[T], b: &[T]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| common::same(x, y))
}

/// Bit `at + i` of `words` for each `i < n`.
pub fn bits_at(words: &[u64], at: usize, n: usize) -> Vec<bool> {
    (0..n).map(|i| common::bit(words, at + i)).collect()
}

/// Runs `$body` with `$T` bound to the element type `$ty` names.
#[macro_export]
macro_rules! each_type {
    ($ty:expr, $T:ident => $body:expr) => {
        match $ty {
            0 => {
                type $T = f32;
                $body
            }
            1 => {
                type $T = half::f16;
                $body
            }
            2 => {
                type $T = half::bf16;
                $body
            }
            _ => {
                type $T = f64;
                $body
            }
        }
    };
}

/// A forward's outcome against the oracle: when the call `fails`, an error with nothing
/// written; otherwise the oracle's outputs and its keep bits at `at`. Whether it ran.
pub fn forward_matches<T: FromBits>(
    what: &str,
    got: Result<(), simd_dropout::Error>,
    fails: bool,
    (y, want): (&[T], &[T]),
    (m, at, keep): (&[u64], usize, &[bool]),
) -> bool {
    if fails {
        assert!(got.is_err(), "{what}: accepted");
        assert!(
            y.iter().all(|v| v.to_bits() == 0) && m.iter().all(|&w| w == 0),
            "{what}: wrote"
        );
        return false;
    }
    got.unwrap();
    assert!(same(y, want), "{what}: forward");
    assert_eq!(bits_at(m, at, keep.len()), keep, "{what}: mask");
    true
}
