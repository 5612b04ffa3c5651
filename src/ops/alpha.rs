//! Alpha dropout (Klambauer et al. 2017) for self-normalizing (SELU) networks: a dropped
//! element becomes SELU's negative saturation value, and an affine map restores mean 0 and
//! variance 1.

use crate::Error;
use crate::backend::Backend;
use crate::element::Element;
use crate::job::{Bits, BitsMut, Data, Rate};
use crate::kernels::variants::Affine;
use crate::ops::math::sqrt;
use crate::ops::{At, element};

/// Alpha dropout's rate and constants in f64: kept `a * x + b`, dropped `c`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Alpha {
    pub(crate) rate: Rate,
    a: f64,
    b: f64,
    c: f64,
}

impl Alpha {
    /// `InvalidProbability` unless `p` is in `[0, 1)`.
    pub(crate) fn new(p: f64) -> Result<Alpha, Error> {
        let rate = Rate::below_one(p)?;
        let a = 1.0 / sqrt((1.0 - p) * (1.0 + p * (SELU_ALPHA * SELU_ALPHA)));
        let b = a * SELU_ALPHA * p;
        let c = -a * SELU_ALPHA * (1.0 - p);
        Ok(Alpha { rate, a, b, c })
    }

    /// The backward pass's rate: the dropout kernel with `a` for the scale.
    fn backward_rate(&self) -> Rate {
        Rate {
            scale: self.a,
            ..self.rate
        }
    }
}

/// The forward pass; the keep bits go to `mask` when given.
pub(crate) fn forward<T: Element>(
    backend: Backend,
    k: Alpha,
    (seed, offset): At,
    data: Data<'_, T>,
    mask: Option<BitsMut<'_>>,
) {
    let map = Affine::<T>::new(k.a, k.b, k.c);
    backend.generate_map_at(seed, offset, k.rate, &map, data, mask);
}

/// The backward pass: `keep ? a * gy : +0.0`, the dropout kernels with `a` for the scale.
pub(crate) fn backward<T: Element>(
    backend: Backend,
    k: Alpha,
    at: At,
    data: Data<'_, T>,
    mask: Option<Bits<'_>>,
) {
    element::backward(backend, k.backward_rate(), at, data, mask);
}

const SELU_ALPHA: f64 = 1.758_099_340_847_376_6;
