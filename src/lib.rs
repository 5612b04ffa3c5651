//! Bit-exact, seedable SIMD dropout for `f32`, `f16` and `bf16`, with 1-bit masks.
//!
//! Dropout zeroes each element with probability `p` while training and scales the survivors
//! by `1 / (1 - p)` (inverted dropout); in eval mode it is the identity. This crate does it
//! with vectorized, branch-free kernels whose every output bit is fixed by a public contract,
//! so results are reproducible across backends, CPUs, architectures and thread counts.
//!
//! # Example
//!
//! ```
//! use simd_dropout::{mask_words, Dropout, Seed};
//!
//! let mut layer = Dropout::new(0.5, Seed::new(42, 54))?;
//! let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
//! let mut y = [0.0f32; 6];
//! let mut mask = [0u64; mask_words(6)];
//! let record = layer.forward(&x, &mut y, &mut mask)?;
//!
//! let gy = [1.0f32; 6];
//! let mut gx = [0.0f32; 6];
//! record.backward(&mask, &gy, &mut gx)?; // or record.backward_recompute(&gy, &mut gx)
//! for i in 0..6 {
//!     let kept = (mask[0] >> i) & 1 == 1;
//!     assert_eq!(y[i], if kept { 2.0 * x[i] } else { 0.0 });
//!     assert_eq!(gx[i], if kept { 2.0 } else { 0.0 });
//! }
//! # Ok::<(), simd_dropout::Error>(())
//! ```
//!
//! # The contract
//!
//! For a call with probability `p` (finite, in `[0, 1]`), seed `(state, stream)` and offset:
//!
//! - element `i` uses the random word `r_i`, output number `offset + i` (modulo 2^64) of
//!   `rand_pcg::Pcg32::new(state, stream)`;
//! - `t = round(p * 2^32)` (f64, ties away from zero); element `i` is kept iff `r_i >= t`,
//!   so `p = 0` keeps all, `p = 1` drops all, and the keep probability is exactly
//!   `(2^32 - t) / 2^32`;
//! - `scale = (1 / (1 - p)) as f32`, computed in f64;
//! - a kept element becomes `T::from_f32(x.to_f32() * scale)`: one f32 multiply, no FMA,
//!   one rounding to nearest even; a dropped one becomes `+0.0`, whatever `x` was (NaN and
//!   infinities included: a select, not a multiply by zero).
//!
//! # Determinism
//!
//! For fixed `(seed, offset, p, input)` the output bits and mask words are the same for every
//! backend, CPU feature set, target architecture, thread count and chunking. The only freedom
//! is the payload of a NaN output. A change of any output bit is a breaking change and is
//! listed in the changelog; golden vectors in the test suite pin the bits.
//!
//! A [`Dropout`] layer advances its offset by exactly the number of elements of each training
//! call, so successive calls never reuse words and any call can be replayed from its
//! [`Record`].
//!
//! # Variants
//!
//! - DropConnect on a weight slice: [`drop_connect`], [`drop_connect_backward`].
//! - Structured dropout with one decision per `(outer, inner)` pair of a [`Shape`] (channel
//!   dropout on NCHW or NHWC, column dropout, drop-path): [`Backend::broadcast_forward`] and
//!   its siblings, [`Dropout::forward_broadcast`].
//! - Alpha dropout for SELU networks: [`Backend::alpha_forward`], [`Dropout::forward_alpha`].
//! - Fused bias + dropout + residual: [`Backend::fused_forward`], [`Dropout::forward_fused`],
//!   with the bias gradient summed in the contract's order.
//!
//! # Mask format
//!
//! A mask of `n` elements is [`mask_words(n)`](mask_words) = `ceil(n / 64)` `u64` words.
//! Element `i` is bit `i % 64` of word `i / 64`, least significant bit first; a set bit means
//! kept; bits past `n` are zero. As little-endian bytes this is numpy's
//! `packbits(bitorder="little")`. [`MaskRef`], [`Mask`] and [`pack_bools`] convert to and from
//! one `bool` per element (PyTorch's `native_dropout` format).
//!
//! # Hardware support
//!
//! | backend | x86_64 | aarch64 | wasm32 | other (e.g. thumbv7em) |
//! |---|---|---|---|---|
//! | `avx512` (F + DQ, F16C) | run-time detection (`std`), else `target_feature` | - | - | - |
//! | `avx2` (AVX2 + F16C) | run-time detection (`std`), else `target_feature` | - | - | - |
//! | `portable` (`wide`) | SSE2 | NEON | simd128 with `+simd128`, else scalar arrays | scalar arrays |
//! | `scalar` (the reference) | yes | yes | yes | yes |
//!
//! [`Backend::detect`] picks the first available from the top. f16 on the x86 backends uses
//! F16C conversions; bf16 is widened by a shift and rounded with integer arithmetic
//! everywhere; every path matches `half`'s `from_f32` exactly.
//!
//! # Crate features
//!
//! - `std` (default): run-time CPU feature detection. Implies `alloc`.
//! - `alloc`: the owned [`Mask`] type.
//! - `rayon`: [`Backend::parallel`], splitting large calls across rayon threads with results
//!   identical to the serial call. Implies `std`.
//! - `no-avx2`, `no-avx512`: test-only; switch a backend off so that CI can exercise the
//!   others on any CPU.
//!
//! Without default features the crate is `no_std` and needs no allocator.
//!
//! # Errors and panics
//!
//! Every bad input is an [`Error`], returned before anything is written: `p` NaN or outside
//! `[0, 1]` (or `p = 1` for alpha dropout), slices of different lengths, a mask buffer too
//! short, a [`Shape`] that does not describe the slice or whose product overflows `usize`.
//! Stream positions never overflow: they wrap modulo 2^64, the period of the stream. The
//! only panics left are allocation failures in the owned [`Mask`] (and in the `Vec`s the
//! examples allocate); internal consistency checks in the kernels sit behind that validation
//! and cannot be reached through the public API (the fuzz targets in `fuzz/` try).
//!
//! # Safety
//!
//! The public API is safe. `unsafe` code lives only in the kernel modules (`src/kernels/`):
//! SIMD intrinsics inside `#[target_feature]` functions, reached only through a token that
//! exists only when the CPU has the features, on pointers whose lengths are checked before
//! the call. Every unsafe block states why it is sound. Every backend is tested against the
//! scalar reference, bit for bit, and under miri (portable, AVX2 and AVX-512 paths).
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
#[cfg(feature = "rayon")]
mod parallel;
mod pcg;
mod reference;
mod variants;

pub use backend::Backend;
pub use element::Element;
pub use error::Error;
pub use layer::{Dropout, Mode, Record};
#[cfg(feature = "alloc")]
pub use mask::Mask;
pub use mask::{mask_words, pack_bools, MaskRef};
pub use ops::{
    apply_mask, apply_mask_in_place, backward_recompute, backward_recompute_in_place, fill_mask,
    forward, forward_in_place, forward_in_place_no_mask, forward_no_mask,
};
pub use pcg::Seed;
pub use variants::{drop_connect, drop_connect_backward, Shape};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
