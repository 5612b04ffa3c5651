//! PCG32 (XSH-RR 64/32), the generator of `rand_pcg::Pcg32`, re-implemented so that any word of
//! a stream can be reached in O(log n) and so that SIMD lanes can step several words at once.
//! rand_pcg keeps its state private; the tests check every word against it.

/// The LCG multiplier of PCG32 (the same as `rand_pcg`'s).
const MULTIPLIER: u64 = 6_364_136_223_846_793_005;

/// Selects one PCG32 stream: the same pair as `rand_pcg::Pcg32::new(state, stream)`.
///
/// Only the low 63 bits of `stream` matter (the LCG increment is `(stream << 1) | 1`), exactly
/// as in rand_pcg.
///
/// ```
/// use simd_dropout::Seed;
/// let a = Seed::new(42, 54);
/// let b = Seed { state: 42, stream: 54 };
/// assert_eq!(a, b);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Seed {
    /// The initial state, as passed to `Pcg32::new`.
    pub state: u64,
    /// The stream selector, as passed to `Pcg32::new`.
    pub stream: u64,
}

impl Seed {
    /// The stream that `rand_pcg::Pcg32::new(state, stream)` produces.
    ///
    /// ```
    /// let seed = simd_dropout::Seed::new(0xcafef00dd15ea5e5, 0xa02bdbf7bb3c0a7);
    /// assert_eq!(seed.state, 0xcafef00dd15ea5e5);
    /// ```
    pub const fn new(state: u64, stream: u64) -> Self {
        Seed { state, stream }
    }

    /// The seed of a framework's single `u64`: `state` and `stream` are the first two outputs
    /// of SplitMix64 started at `seed` (the contract fixes this derivation).
    ///
    /// ```
    /// use simd_dropout::Seed;
    /// assert_eq!(Seed::from_u64(0), Seed::new(0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4));
    /// assert_eq!(Seed::from(0u64), Seed::from_u64(0));
    /// ```
    pub const fn from_u64(seed: u64) -> Self {
        let mut s = seed;
        let state = splitmix64(&mut s);
        let stream = splitmix64(&mut s);
        Seed { state, stream }
    }

    /// Draws a seed (state, then stream) from any `rand_core` generator, for example
    /// `rand::rng()` or a seeded `Pcg64`.
    ///
    /// ```
    /// use rand_core::SeedableRng;
    /// let mut rng = rand_pcg::Pcg64::seed_from_u64(7);
    /// let seed = simd_dropout::Seed::from_rng(&mut rng);
    /// assert_ne!(seed, simd_dropout::Seed::from_rng(&mut rng));
    /// ```
    pub fn from_rng<R: rand_core::Rng + ?Sized>(rng: &mut R) -> Self {
        let state = rng.next_u64();
        let stream = rng.next_u64();
        Seed { state, stream }
    }

    /// The LCG increment of this stream.
    #[inline]
    pub(crate) const fn increment(self) -> u64 {
        (self.stream << 1) | 1
    }

    /// The one-word step of this stream's LCG.
    #[inline]
    pub(crate) const fn step(self) -> Affine {
        Affine {
            mul: MULTIPLIER,
            add: self.increment(),
        }
    }

    /// The LCG state whose output is word number `index` of the stream (indices wrap modulo
    /// 2^64, the period).
    #[inline]
    pub(crate) fn state_at(self, index: u64) -> u64 {
        let inc = self.increment();
        // rand_pcg's constructor: add the increment, then take one step.
        let first = self
            .state
            .wrapping_add(inc)
            .wrapping_mul(MULTIPLIER)
            .wrapping_add(inc);
        // One mul-add per set bit of `index`, from the constant table of doublings (the
        // steps commute, so any order gives the same state).
        let (mut state, mut rest) = (first, index);
        while rest != 0 {
            let (mul, sum) = DOUBLINGS[rest.trailing_zeros() as usize];
            state = state.wrapping_mul(mul).wrapping_add(inc.wrapping_mul(sum));
            rest &= rest - 1;
        }
        state
    }
}

impl From<u64> for Seed {
    /// [`Seed::from_u64`].
    fn from(seed: u64) -> Self {
        Seed::from_u64(seed)
    }
}

/// One step of SplitMix64 (Steele, Lea and Flood 2014; the seeding generator Vigna
/// recommends): advance by the golden gamma, then mix.
const fn splitmix64(s: &mut u64) -> u64 {
    *s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *s;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `n` steps of any PCG32 stream are `s -> M^n * s + inc * (1 + M + ... + M^(n-1))`: only
/// the increment `inc` depends on the stream, so the pairs `(M^n, 1 + M + ... + M^(n-1))`
/// are constants. They make a seek one mul-add per set bit of the distance, and the 64 lane
/// states of a kernel 64 independent mul-adds instead of a chain of 64 steps.
const fn steps(n: u64) -> (u64, u64) {
    let (mut mul, mut sum, mut i) = (1u64, 0u64, 0);
    while i < n {
        (mul, sum) = (
            mul.wrapping_mul(MULTIPLIER),
            sum.wrapping_mul(MULTIPLIER).wrapping_add(1),
        );
        i += 1;
    }
    (mul, sum)
}

/// `steps(2^k)` for every `k < 64`.
const DOUBLINGS: [(u64, u64); 64] = {
    let mut t = [(0u64, 0u64); 64];
    let (mut mul, mut sum) = steps(1);
    let mut k = 0;
    while k < 64 {
        t[k] = (mul, sum);
        // Twice `(mul, sum)`: s -> mul * (mul * s + inc * sum) + inc * sum.
        (mul, sum) = (mul.wrapping_mul(mul), sum.wrapping_mul(mul.wrapping_add(1)));
        k += 1;
    }
    t
};

/// `steps(j)` for `j` in `0..=64` (a kernel's lanes and their stride).
pub(crate) const RUNS: [(u64, u64); 65] = {
    let mut t = [(0u64, 0u64); 65];
    let mut j = 0;
    while j <= 64 {
        t[j] = steps(j as u64);
        j += 1;
    }
    t
};

/// An affine map `s -> s * mul + add` modulo 2^64: one LCG step, or any number of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Affine {
    pub(crate) mul: u64,
    pub(crate) add: u64,
}

impl Affine {
    #[cfg(test)]
    const IDENTITY: Affine = Affine { mul: 1, add: 0 };

    #[inline(always)]
    pub(crate) const fn apply(self, s: u64) -> u64 {
        s.wrapping_mul(self.mul).wrapping_add(self.add)
    }

    /// `self` after `first`.
    #[cfg(test)]
    const fn after(self, first: Affine) -> Affine {
        Affine {
            mul: self.mul.wrapping_mul(first.mul),
            add: self.mul.wrapping_mul(first.add).wrapping_add(self.add),
        }
    }

    /// A stream's one-word step taken `j <= 64` times, from the constant table (`self` is
    /// [`Seed::step`]: its `add` is the stream's increment).
    #[inline(always)]
    pub(crate) const fn run(self, j: usize) -> Affine {
        let (mul, sum) = RUNS[j];
        Affine {
            mul,
            add: self.add.wrapping_mul(sum),
        }
    }

    /// The map applied `n` times (square and multiply: O(log n)): what the tables are checked
    /// against.
    #[cfg(test)]
    const fn pow(self, mut n: u64) -> Affine {
        let mut acc = Affine::IDENTITY;
        let mut base = self;
        while n > 0 {
            if n & 1 == 1 {
                acc = base.after(acc);
            }
            base = base.after(base);
            n >>= 1;
        }
        acc
    }
}

/// The XSH-RR output function: the 32-bit word a state yields (before it steps).
#[inline(always)]
pub(crate) const fn output(state: u64) -> u32 {
    let rot = (state >> 59) as u32;
    let xsh = (((state >> 18) ^ state) >> 27) as u32;
    xsh.rotate_right(rot)
}

/// Words of one stream from a position on, one at a time (the scalar path).
#[derive(Clone, Debug)]
pub(crate) struct Words {
    state: u64,
    step: Affine,
}

impl Words {
    #[inline]
    pub(crate) fn new(seed: Seed, index: u64) -> Self {
        Words {
            state: seed.state_at(index),
            step: seed.step(),
        }
    }
}

impl Iterator for Words {
    type Item = u32;
    #[inline(always)]
    fn next(&mut self) -> Option<u32> {
        let r = output(self.state);
        self.state = self.step.apply(self.state);
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::Rng;
    use rand_pcg::Pcg32;

    #[test]
    fn known_answer_of_rand_pcg() {
        // rand_pcg's own known-answer test for Pcg32::new(42, 54).
        let expected = [0xa15c02b7u32, 0x7b47f409, 0xba1d3330, 0x83d2f293];
        let got: [u32; 4] = core::array::from_fn({
            let mut w = Words::new(Seed::new(42, 54), 0);
            move |_| w.next().unwrap()
        });
        assert_eq!(got, expected);
    }

    #[test]
    fn seek_matches_rand_pcg_advance() {
        let seeds = [
            (42, 54),
            (0, 0),
            (u64::MAX, u64::MAX),
            (0xdead_beef, 1 << 63),
        ];
        let indices = [
            0u64,
            1,
            2,
            63,
            64,
            65,
            1000,
            1 << 40,
            u64::MAX - 1,
            u64::MAX,
        ];
        for (state, stream) in seeds {
            for index in indices {
                let mut g = Pcg32::new(state, stream);
                g.advance(index);
                let mut w = Words::new(Seed::new(state, stream), index);
                for _ in 0..70 {
                    assert_eq!(w.next().unwrap(), g.next_u32(), "{state} {stream} {index}");
                }
            }
        }
    }

    #[test]
    fn index_wraps_modulo_the_period() {
        let seed = Seed::new(3, 4);
        let mut w = Words::new(seed, u64::MAX);
        w.next();
        assert_eq!(w.next(), Words::new(seed, 0).next());
    }

    #[test]
    fn pow_composes() {
        let step = Seed::new(9, 10).step();
        let mut s = 12345u64;
        for _ in 0..100 {
            s = step.apply(s);
        }
        assert_eq!(step.pow(100).apply(12345), s);
        assert_eq!(step.pow(37).after(step.pow(63)), step.pow(100));
    }

    #[test]
    fn tables_are_the_steps() {
        for stream in [0u64, 10, u64::MAX] {
            let step = Seed::new(1, stream).step();
            for j in 0..=64 {
                assert_eq!(step.run(j), step.pow(j as u64), "run {j}");
            }
            for (k, &(mul, sum)) in DOUBLINGS.iter().enumerate() {
                let by_pow = step.pow(1 << k);
                assert_eq!(
                    (mul, step.add.wrapping_mul(sum)),
                    (by_pow.mul, by_pow.add),
                    "2^{k}"
                );
            }
        }
    }
}
