//! The operations, one topic per file. Each checks nothing (the public methods of
//! [`Backend`](crate::Backend) have), draws its decisions through the backend's kernels, and
//! writes its elements.

pub(crate) mod alpha;
pub(crate) mod block;
pub(crate) mod broadcast;
mod decisions;
pub(crate) mod element;
pub(crate) mod fused;
pub(crate) mod gaussian;
mod math;
pub(crate) mod strided;

pub use block::{Blocks, ChannelOrder};
pub use strided::Strided;

/// A stream: the seed and the position of the call's first word.
pub(crate) type At = (crate::Seed, u64);
