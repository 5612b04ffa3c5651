//! Correctly rounded square roots that `no_std` builds can compute too (core has no `sqrt`).
//! IEEE 754 fixes the bits of a square root, so these equal `f64::sqrt` and `f32::sqrt`.

/// The correctly rounded square root of `v >= 0` (`+0.0` for zero).
pub(crate) fn sqrt(v: f64) -> f64 {
    if v == 0.0 {
        return 0.0;
    }
    if v < f64::MIN_POSITIVE {
        // A subnormal: scaled by 2^104 into the normal range, and back by 2^-52 (both exact).
        return sqrt(v * pow2(104)) * pow2(-52);
    }
    let bits = v.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i64 - 1075; // v = sig * 2^exp
    let sig = u128::from((bits & ((1u64 << 52) - 1)) | (1u64 << 52));
    // v = scaled * 2^(exp - shift) with an even exponent and scaled in [2^106, 2^108), so
    // that the integer root has exactly 54 bits: 53 and a rounding bit.
    let shift: i64 = if (exp - 54).rem_euclid(2) == 0 {
        54
    } else {
        55
    };
    let scaled = sig << shift;
    let root = scaled.isqrt();
    // Round to 53 bits. The root is never exactly halfway (`scaled` is even, an odd root's
    // square is odd), so the dropped bit alone decides.
    let rounded = (root >> 1) + (root & 1);
    rounded as f64 * pow2((exp - shift) / 2 + 1)
}

/// `2^e` for a normal result.
fn pow2(e: i64) -> f64 {
    f64::from_bits(((e + 1023) as u64) << 52)
}

/// The correctly rounded square root of `v`, zero or a positive normal f32: the hardware
/// instruction with `std` (`f32::sqrt` is vectorized), integer arithmetic without.
#[inline(always)]
pub(crate) fn sqrt_f32(v: f32) -> f32 {
    #[cfg(feature = "std")]
    return v.sqrt();
    #[cfg(not(feature = "std"))]
    return soft_sqrt_f32(v);
}

/// [`sqrt_f32`] in integer arithmetic, for zero and positive normals (what the Gaussian
/// noise takes roots of).
#[cfg_attr(feature = "std", allow(dead_code))]
pub(crate) fn soft_sqrt_f32(v: f32) -> f32 {
    if v == 0.0 {
        return v;
    }
    let bits = v.to_bits();
    let exp = ((bits >> 23) & 0xff) as i32 - 150; // v = sig * 2^exp
    let sig = u64::from((bits & 0x7f_ffff) | 0x80_0000);
    // scaled in [2^48, 2^50) with an even exponent left: a 25-bit root, 24 and a rounding bit.
    let shift = if (exp - 25).rem_euclid(2) == 0 {
        25
    } else {
        26
    };
    let root = (sig << shift).isqrt();
    // As in `sqrt`: `sig << shift` is even, so never a tie.
    let rounded = (root >> 1) + (root & 1);
    let e = (exp - shift) / 2 + 1;
    rounded as f32 * f32::from_bits(((e + 127) as u32) << 23)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqrt_is_correctly_rounded() {
        let mut v = 1e-3f64;
        while v < 1e3 {
            assert_eq!(sqrt(v).to_bits(), v.sqrt().to_bits(), "{v}");
            v = f64::from_bits(v.to_bits() + 0x0000_0123_4567_89ab);
        }
        for v in [
            0.0,
            f64::MIN_POSITIVE,
            5e-324,
            1e-310,
            f64::MAX,
            1.0 / 9.0,
            1e300,
        ] {
            assert_eq!(sqrt(v).to_bits(), v.sqrt().to_bits(), "{v:e}");
        }
    }

    /// A root's mantissa depends only on the argument's mantissa and exponent parity: every
    /// f32 of [1, 4) (2^24 values), and a sample of other binades, equal the hardware's.
    #[test]
    fn soft_sqrt_f32_is_correctly_rounded() {
        let step = if cfg!(miri) { 40_009 } else { 1 };
        let (lo, hi) = (1.0f32.to_bits(), 4.0f32.to_bits());
        for b in (lo..hi).step_by(step) {
            let v = f32::from_bits(b);
            assert_eq!(soft_sqrt_f32(v).to_bits(), v.sqrt().to_bits(), "{v:e}");
        }
        let (lo, hi) = (f32::MIN_POSITIVE.to_bits(), f32::MAX.to_bits());
        for b in (lo..hi).step_by(7_919 * step) {
            let v = f32::from_bits(b);
            assert_eq!(soft_sqrt_f32(v).to_bits(), v.sqrt().to_bits(), "{v:e}");
        }
        assert_eq!(soft_sqrt_f32(0.0).to_bits(), 0);
        assert_eq!(soft_sqrt_f32(-0.0).to_bits(), (-0.0f32).to_bits());
    }
}
