//! Bit-exact, seedable SIMD dropout for f32, f16 and bf16, with 1-bit masks.
#![cfg_attr(not(any(feature = "std", test)), no_std)]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(feature = "alloc")]
extern crate alloc;

mod backend;
mod element;
mod error;
mod kernels;
mod layer;
mod mask;
mod ops;
mod pcg;
mod reference;

pub use backend::Backend;
pub use element::Element;
pub use error::Error;
pub use layer::{Dropout, Record};
#[cfg(feature = "alloc")]
pub use mask::Mask;
pub use mask::{mask_words, pack_bools, MaskRef};
pub use ops::{
    apply_mask, apply_mask_in_place, backward_recompute, backward_recompute_in_place, fill_mask,
    forward, forward_in_place, forward_in_place_no_mask, forward_no_mask,
};
pub use pcg::Seed;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
