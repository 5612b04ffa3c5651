//! Reading the fuzzer's bytes as little-endian words, shared by the targets.

/// Reads little-endian words off the front of the input (zeros once it runs out).
pub struct Input<'a>(pub &'a [u8]);

impl Input<'_> {
    pub fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        let k = self.0.len().min(8);
        b[..k].copy_from_slice(&self.0[..k]);
        self.0 = &self.0[k..];
        u64::from_le_bytes(b)
    }

    /// `p`: arbitrary f64 bits (mostly invalid) or a uniform value in `[0, 1)`.
    pub fn p(&mut self) -> f64 {
        match self.u64() % 3 {
            0 => f64::from_bits(self.u64()),
            _ => (self.u64() >> 11) as f64 / (1u64 << 53) as f64,
        }
    }
}

/// The element types, with NaN detection for the comparisons.
pub trait Float: simd_dropout::Element {
    fn nan(self) -> bool;
}
impl Float for f32 {
    fn nan(self) -> bool {
        self.is_nan()
    }
}
impl Float for f64 {
    fn nan(self) -> bool {
        self.is_nan()
    }
}
impl Float for half::f16 {
    fn nan(self) -> bool {
        self.is_nan()
    }
}
impl Float for half::bf16 {
    fn nan(self) -> bool {
        self.is_nan()
    }
}

/// Same bits, or both NaN (the one freedom the contract allows).
pub fn same<T: Float>(a: &[T], b: &[T]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.to_bits() == y.to_bits() || (x.nan() && y.nan()))
}
