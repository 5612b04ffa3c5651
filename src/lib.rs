//! Bit-exact, seedable SIMD dropout for `f32`, `f64`, `f16` and `bf16`, with 1-bit masks.
//!
//! Dropout zeroes each element with probability `p` while training and scales the survivors
//! by `1 / (1 - p)` (inverted dropout); in eval mode it is the identity. This crate does it
//! with vectorized, branch-free kernels whose every output bit is fixed by a public contract,
//! so results are reproducible across backends, CPUs, architectures and thread counts.
//!
//! # Example
//!
//! ```
//! use simd_dropout::{mask_words, BitsMut, Dropout, Io, Seed};
//!
//! let layer = Dropout::new(0.5, Seed::from_u64(42))?;
//! let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
//! let mut y = [0.0f32; 6];
//! let mut mask = [0u64; mask_words(6)];
//! let record = layer.forward(Io::Out { x: &x, y: &mut y }, Some(BitsMut::new(&mut mask)))?;
//!
//! let gy = [1.0f32; 6];
//! let mut gx = [0.0f32; 6];
//! record.backward(Io::Out { x: &gy, y: &mut gx }, None)?; // regenerated: nothing stored
//! for i in 0..6 {
//!     let kept = (mask[0] >> i) & 1 == 1;
//!     assert_eq!(y[i], if kept { 2.0 * x[i] } else { 0.0 });
//!     assert_eq!(gx[i], if kept { 2.0 } else { 0.0 });
//! }
//! # Ok::<(), simd_dropout::Error>(())
//! ```
//!
//! # The API
//!
//! - [`Backend`] holds every stateless operation, each a forward and a backward with the same
//!   arguments: element dropout, broadcast (structured) dropout over a [`Shape`], alpha
//!   dropout, fused bias + dropout + residual, DropBlock over [`Blocks`], Gaussian dropout,
//!   and element dropout on strided [`View`]s.
//!   Where the result goes is an argument ([`Io`]: out of place, in place, or into
//!   uninitialized memory), and so is the mask (`Some` bits at any start position, or `None`:
//!   a backward then regenerates the decisions from the stream).
//! - [`forward`] and [`backward`] are the element operations on [`Backend::detect`].
//! - [`Dropout`] owns `p`, the seed and a running offset; [`Dropout::reserve`] hands out the
//!   positions of a call through `&self` and returns a `Copy` [`Record`] that runs the call.
//! - DropConnect is element dropout applied to a weight slice: `forward` on the weights,
//!   `backward` on their gradient, with the same mask.
//!
//! # The contract
//!
//! The [`contract`] page fixes every output bit; in brief, for a call with probability `p`
//! (in `[0, 1]`), seed `(state, stream)` and offset:
//!
//! - element `i` uses the random word `r_i`, output number `offset + i` (modulo 2^64) of
//!   `rand_pcg::Pcg32::new(state, stream)`;
//! - `t = round(p * 2^32)` (f64, ties away from zero); element `i` is kept iff `r_i >= t`;
//! - `scale = 1 / (1 - p)` computed in f64 (rounded to f32 for `f32`, `f16` and `bf16`);
//! - a kept element becomes `x * scale` with one multiply and one rounding (in f32 for the
//!   32- and 16-bit types, in f64 for `f64`), a dropped one `+0.0`, whatever `x` was.
//!
//! # Determinism
//!
//! For fixed `(seed, offset, p, input)` the output bits and mask words are the same for every
//! backend, CPU feature set, target architecture, thread count and chunking. The only freedom
//! is the payload of a NaN output. A change of any output bit is a breaking change and is
//! listed in the changelog; golden vectors in the test suite pin the bits.
//!
//! A [`Dropout`] layer advances its offset by exactly the words each training call draws
//! (its elements for element dropout; decisions, candidates, elements for the variants,
//! whatever `p`), so successive calls never reuse words and any call can be replayed from
//! its [`Record`].
//!
//! # Mask format
//!
//! A mask of `n` elements is [`mask_words(n)`](mask_words) = `ceil(n / 64)` `u64` words.
//! Element `i` is bit `i % 64` of word `i / 64`, least significant bit first; a set bit means
//! kept. As little-endian bytes this is numpy's `packbits(bitorder="little")`. A call may
//! start at any bit ([`Bits::at`], [`BitsMut::at`]) and writes only its own bits, so per-row
//! and per-shard calls fill one mask. [`MaskRef`] and [`Mask`] convert to one byte or `bool`
//! per element, [`pack_bools`] back, and [`Backend::expand_mask`] to the `{0, scale}` values
//! a framework multiplies by.
//!
//! # Hardware support
//!
//! | backend | x86_64 | aarch64 | wasm32 | other (e.g. thumbv7em) |
//! |---|---|---|---|---|
//! | `avx512` (F + DQ + BW, F16C) | run-time detection (`std`), else `target_feature` | - | - | - |
//! | `avx2` (AVX2 + F16C) | run-time detection (`std`), else `target_feature` | - | - | - |
//! | `portable` (`wide`) | SSE2 | NEON | simd128 with `+simd128`, else scalar arrays | scalar arrays |
//! | `scalar` (the reference) | yes | yes | yes | yes |
//!
//! [`Backend::detect`] picks the first available from the top. f16 on the x86 backends uses
//! F16C conversions; bf16 is widened by a shift and rounded with integer arithmetic
//! everywhere; every path matches `half`'s `from_f32` exactly. `f64` uses 4-lane (AVX2),
//! 8-lane (AVX-512) or 2-lane (portable) double multiplies.
//!
//! # Crate features
//!
//! - `std` (default): run-time CPU feature detection. Implies `alloc`.
//! - `alloc`: the owned [`Mask`] type and [`forward_to_vec`].
//! - `serde`: `Serialize` and `Deserialize` for [`Seed`] and the layer's [`State`].
//! - `rayon`: [`Backend::parallel`], splitting large calls across rayon threads with results
//!   identical to the serial call. Implies `std`.
//!
//! Every feature is additive. CI reaches the slower backends' `detect()` through a compiler
//! flag, not a feature (one crate in a dependency graph could otherwise switch a backend off
//! for all): `RUSTFLAGS='--cfg simd_dropout_cap="avx2"'` (or `"portable"`) makes the faster
//! backends unavailable.
//!
//! Without default features the crate is `no_std` and needs no allocator.
//!
//! # Errors and panics
//!
//! Every bad input is an [`Error`], returned before anything is written: `p` NaN or outside
//! `[0, 1]` (or `p = 1` for alpha and Gaussian dropout), slices of different lengths, a mask buffer too
//! short for its bits, a [`Shape`] that does not describe the slice or overflows `usize`, a
//! bias that does not divide the elements into rows, a [`View`] that reaches outside its
//! buffer or whose output strides may overlap, a [`Blocks`] geometry with a block size of 0,
//! a [`Record`] asked for another kind of call.
//! Stream positions never overflow: they wrap modulo 2^64, the period of the stream. The
//! only panics left are allocation failures (in [`Mask`] and [`forward_to_vec`]); internal
//! consistency checks in the kernels sit behind that validation and cannot be reached
//! through the public API (the fuzz targets in `fuzz/` try).
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
mod job;
mod kernels;
mod layer;
mod mask;
mod ops;
mod parallel;
mod pcg;
mod reference;

pub use backend::Backend;
pub use element::Element;
pub use error::Error;
pub use job::{Bits, BitsMut, Io, MAX_RANK, Shape, Structure, View, mask_words};
pub use layer::{Dropout, Op, Record, State};
#[cfg(feature = "alloc")]
pub use mask::Mask;
pub use mask::{MaskRef, pack_bools};
pub use ops::{Blocks, ChannelOrder, Strided};
pub use pcg::Seed;

/// The contract: every rule that fixes an output bit.
#[doc = include_str!("../CONTRACT.md")]
pub mod contract {}

/// [`Backend::forward`] on the detected backend: element dropout of `io`, keep bits to `mask`
/// when given.
///
/// ```
/// use simd_dropout::{mask_words, BitsMut, Io, Seed};
/// let x = vec![1.0f32; 300];
/// let mut y = vec![0.0f32; 300];
/// let mut mask = vec![0u64; mask_words(300)];
/// simd_dropout::forward(0.1, Seed::from_u64(42), 0, Io::Out { x: &x, y: &mut y }, Some(BitsMut::new(&mut mask)))?;
/// # Ok::<(), simd_dropout::Error>(())
/// ```
pub fn forward<T: Element>(
    p: f64,
    seed: Seed,
    offset: u64,
    io: Io<'_, T>,
    mask: Option<BitsMut<'_>>,
) -> Result<(), Error> {
    Backend::detect().forward(p, seed, offset, io, mask)
}

/// [`Backend::backward`] on the detected backend: the backward pass of [`forward`] from its
/// mask, or regenerated from `(seed, offset)` when `mask` is `None`.
///
/// ```
/// use simd_dropout::{Io, Seed};
/// let seed = Seed::from_u64(5);
/// let x = [1.0f32; 70];
/// let mut y = [0.0f32; 70];
/// simd_dropout::forward(0.2, seed, 100, Io::Out { x: &x, y: &mut y }, None)?;
/// let mut g = [1.0f32; 70];
/// simd_dropout::backward(0.2, seed, 100, Io::InPlace(&mut g), None)?;
/// assert_eq!(g, y); // the same mask and scale
/// # Ok::<(), simd_dropout::Error>(())
/// ```
pub fn backward<T: Element>(
    p: f64,
    seed: Seed,
    offset: u64,
    io: Io<'_, T>,
    mask: Option<Bits<'_>>,
) -> Result<(), Error> {
    Backend::detect().backward(p, seed, offset, io, mask)
}

/// [`forward`] into fresh storage: the output and its owned [`Mask`] (feature `alloc`).
///
/// ```
/// let (y, mask) = simd_dropout::forward_to_vec(0.5, simd_dropout::Seed::from_u64(1), 0, &[1.0f32; 8])?;
/// assert_eq!(y.iter().filter(|&&v| v == 2.0).count(), mask.as_ref().count_kept());
/// # Ok::<(), simd_dropout::Error>(())
/// ```
#[cfg(feature = "alloc")]
pub fn forward_to_vec<T: Element>(
    p: f64,
    seed: Seed,
    offset: u64,
    x: &[T],
) -> Result<(alloc::vec::Vec<T>, Mask), Error> {
    // Zeroed storage (for f32 and f64 the allocator's zeroed pages, not a pass over them):
    // keeping the crate's `unsafe` inside the kernel modules rules out `Vec::set_len`.
    let mut y = alloc::vec![T::ZERO; x.len()];
    let mut mask = Mask::new(x.len());
    let io = Io::Out { x, y: &mut y };
    forward(p, seed, offset, io, Some(BitsMut::new(mask.words_mut())))?;
    Ok((y, mask))
}

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
