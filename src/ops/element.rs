//! Element dropout: one decision per element (also DropConnect on a weight slice).

use crate::backend::Backend;
use crate::element::Element;
use crate::job::{Bits, BitsMut, Data, Rate};
use crate::ops::At;

/// The forward pass: the kernels do it all.
pub(crate) fn forward<T: Element>(
    backend: Backend,
    rate: Rate,
    (seed, offset): At,
    data: Data<'_, T>,
    mask: Option<BitsMut<'_>>,
) {
    backend.generate_at(seed, offset, rate, data, mask);
}

/// The backward pass (or a replay): the stored bits applied, or the forward's regenerated.
pub(crate) fn backward<T: Element>(
    backend: Backend,
    rate: Rate,
    (seed, offset): At,
    data: Data<'_, T>,
    mask: Option<Bits<'_>>,
) {
    match mask {
        Some(bits) => backend.apply_at(bits, rate, data),
        None => backend.generate_at(seed, offset, rate, data, None),
    }
}

/// `out[i] = bit i ? scale : +0.0`: the mask applied to ones, a cached chunk at a time.
pub(crate) fn expand<T: Element>(backend: Backend, rate: Rate, mask: Bits<'_>, out: &mut [T]) {
    const CHUNK: usize = 4096;
    let run = |first: usize, d: Data<'_, T>| {
        let Data::InPlace(out) = d else { return };
        for (i, piece) in out.chunks_mut(CHUNK).enumerate() {
            piece.fill(T::ONE);
            let bits = Bits::at(mask.words, mask.start + first + i * CHUNK);
            backend.serial().apply_at(bits, rate, Data::InPlace(piece));
        }
    };
    backend.pieces(Data::InPlace(out), CHUNK, &run);
}
