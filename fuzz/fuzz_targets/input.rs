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
}

/// Same bits, or both NaN (the one freedom the contract allows).
pub fn same<T: simd_dropout::Element>(a: &[T], b: &[T]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}
