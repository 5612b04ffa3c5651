//! Golden vectors: mask words and output bits committed in `tests/golden/`, so that any
//! change of output bits fails loudly (SPEC 6: such a change is a breaking change).
//!
//! The files were written from SPEC's formula computed with `rand_pcg` (tests/common), not
//! from the crate. To write them again after a deliberate, changelogged break:
//! `SIMD_DROPOUT_BLESS=1 cargo test --test golden`.

mod common;

use common::*;
use half::{bf16, f16};
use simd_dropout::{Backend, BitsMut, Io, Seed, mask_words};
use std::fmt::Write as _;

struct Case {
    name: &'static str,
    seed: Seed,
    offset: u64,
    p: f64,
    n: usize,
}

const CASES: [Case; 3] = [
    Case {
        name: "a",
        seed: Seed::new(42, 54),
        offset: 1000,
        p: 0.3,
        n: 16_384,
    },
    Case {
        name: "b",
        seed: Seed::new(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210),
        offset: u64::MAX - 300,
        p: 0.9,
        n: 1_001,
    },
    Case {
        name: "c",
        seed: Seed::new(7, 0),
        offset: 3,
        p: 1.0 / 3.0,
        n: 257,
    },
];

/// Inputs: a ramp through negative, small and large values.
fn input<T: FromBits>(n: usize) -> Vec<T> {
    (0..n)
        .map(|i| T::from_f64(f64::from((i as f32 - 100.0) * 0.37 + (i % 7) as f32 * 1e-3)))
        .collect()
}

/// The text of one case: every mask word, the output bits of the first 1000 elements of each
/// type, and an FNV-1a digest of all of them, in hex.
fn render(masks: &[u64], outputs: &[(&str, Vec<u64>)]) -> String {
    let mut s = String::new();
    for w in masks {
        writeln!(s, "m {w:016x}").unwrap();
    }
    for (ty, bits) in outputs {
        for b in bits.iter().take(1000) {
            // f64 bits print as 16 digits, the narrower types' as 8 (the 0.1 files).
            let width = if *ty == "f64" { 16 } else { 8 };
            writeln!(s, "{ty} {b:0width$x}").unwrap();
        }
        let digest = bits.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ b).wrapping_mul(0x0100_0000_01b3)
        });
        writeln!(s, "{ty} digest {digest:016x}").unwrap();
    }
    s
}

fn bits_of<T: FromBits>(v: &[T]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn spec_outputs<T: FromBits>(c: &Case) -> Vec<u64> {
    let keep = spec_keep(c.p, c.seed, c.offset, c.n);
    bits_of(&spec_forward(&input::<T>(c.n), &keep, c.p))
}

fn crate_outputs<T: FromBits>(b: Backend, c: &Case, mask: &mut Vec<u64>) -> Vec<u64> {
    let x: Vec<T> = input(c.n);
    let mut y = vec![T::ZERO; c.n];
    *mask = vec![0u64; mask_words(c.n)];
    let io = Io::Out { x: &x, y: &mut y };
    b.forward(c.p, c.seed, c.offset, io, Some(BitsMut::new(mask)))
        .unwrap();
    bits_of(&y)
}

#[test]
fn golden_vectors() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    // Under miri (a million times slower) the smallest case only.
    let cases = if cfg!(miri) { &CASES[2..] } else { &CASES[..] };
    for c in cases {
        let path = dir.join(format!("{}.txt", c.name));
        if std::env::var_os("SIMD_DROPOUT_BLESS").is_some() {
            let keep = spec_keep(c.p, c.seed, c.offset, c.n);
            let text = render(
                &spec_mask(&keep),
                &[
                    ("f32", spec_outputs::<f32>(c)),
                    ("f16", spec_outputs::<f16>(c)),
                    ("bf16", spec_outputs::<bf16>(c)),
                ],
            );
            std::fs::write(&path, text).unwrap();
        }
        let golden = std::fs::read_to_string(&path).unwrap();
        for b in Backend::available() {
            let mut m = Vec::new();
            let f32s = crate_outputs::<f32>(b, c, &mut m);
            let f16s = crate_outputs::<f16>(b, c, &mut m);
            let bf16s = crate_outputs::<bf16>(b, c, &mut m);
            let text = render(&m, &[("f32", f32s), ("f16", f16s), ("bf16", bf16s)]);
            assert!(
                text == golden,
                "{} differs from {}",
                b.name(),
                path.display()
            );
        }
    }
}

/// f64 (added in 0.2): its own files, so that the 0.1 files stay byte for byte as they were.
#[test]
fn golden_vectors_f64() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let cases = if cfg!(miri) { &CASES[2..] } else { &CASES[..] };
    for c in cases {
        let path = dir.join(format!("{}-f64.txt", c.name));
        if std::env::var_os("SIMD_DROPOUT_BLESS").is_some() {
            let keep = spec_keep(c.p, c.seed, c.offset, c.n);
            let text = render(&spec_mask(&keep), &[("f64", spec_outputs::<f64>(c))]);
            std::fs::write(&path, text).unwrap();
        }
        let golden = std::fs::read_to_string(&path).unwrap();
        for b in Backend::available() {
            let mut m = Vec::new();
            let out = crate_outputs::<f64>(b, c, &mut m);
            let text = render(&m, &[("f64", out)]);
            assert!(
                text == golden,
                "{} differs from {}",
                b.name(),
                path.display()
            );
        }
    }
}

/// Broadcast golden vectors (added in 0.2, for the Cortex-M firmware and any backend): one
/// decision per `(o, k)`, shared by every `m` (CONTRACT.md, broadcast).
struct BroadcastCase {
    name: &'static str,
    shape: (usize, usize, usize),
    case: Case,
}

const BROADCAST: [BroadcastCase; 2] = [
    // Channel dropout on NCHW [3, 4, 5, 7]: outer = N*C, mid = H*W, inner = 1.
    BroadcastCase {
        name: "broadcast-nchw",
        shape: (12, 35, 1),
        case: Case {
            name: "",
            seed: Seed::new(99, 7),
            offset: u64::MAX - 5,
            p: 0.25,
            n: 420,
        },
    },
    // Channels-last [2, 9, 70] (N, H*W, C): outer = N, mid = H*W, inner = C.
    BroadcastCase {
        name: "broadcast-nhwc",
        shape: (2, 9, 70),
        case: Case {
            name: "",
            seed: Seed::new(0xdead_beef, 3),
            offset: 77,
            p: 0.6,
            n: 1260,
        },
    },
];

fn spec_broadcast_case<T: FromBits>(b: &BroadcastCase) -> (Vec<u64>, Vec<u64>) {
    let (outer, mid, inner) = b.shape;
    let c = &b.case;
    let keep = spec_keep(c.p, c.seed, c.offset, outer * inner);
    let y = spec_broadcast(&input::<T>(c.n), (mid, inner), &keep, c.p);
    (spec_mask(&keep), bits_of(&y))
}

fn crate_broadcast<T: FromBits>(backend: Backend, b: &BroadcastCase) -> (Vec<u64>, Vec<u64>) {
    let (outer, mid, inner) = b.shape;
    let c = &b.case;
    let x: Vec<T> = input(c.n);
    let mut y = vec![T::ZERO; c.n];
    let mut mask = vec![0u64; mask_words(outer * inner)];
    let shape = simd_dropout::Shape::new(outer, mid, inner);
    let io = Io::Out { x: &x, y: &mut y };
    backend
        .broadcast_forward(
            shape,
            c.p,
            c.seed,
            c.offset,
            io,
            Some(BitsMut::new(&mut mask)),
        )
        .unwrap();
    (mask, bits_of(&y))
}

#[test]
fn golden_vectors_broadcast() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    // Under miri the NCHW case only (the firmware and every native run check both).
    let cases = if cfg!(miri) {
        &BROADCAST[..1]
    } else {
        &BROADCAST[..]
    };
    for b in cases {
        let path = dir.join(format!("{}.txt", b.name));
        if std::env::var_os("SIMD_DROPOUT_BLESS").is_some() {
            let (m, f32s) = spec_broadcast_case::<f32>(b);
            let (_, f16s) = spec_broadcast_case::<f16>(b);
            let (_, bf16s) = spec_broadcast_case::<bf16>(b);
            let text = render(&m, &[("f32", f32s), ("f16", f16s), ("bf16", bf16s)]);
            std::fs::write(&path, text).unwrap();
        }
        let golden = std::fs::read_to_string(&path).unwrap();
        for backend in Backend::available() {
            let (m, f32s) = crate_broadcast::<f32>(backend, b);
            let (_, f16s) = crate_broadcast::<f16>(backend, b);
            let (_, bf16s) = crate_broadcast::<bf16>(backend, b);
            let text = render(&m, &[("f32", f32s), ("f16", f16s), ("bf16", bf16s)]);
            assert!(
                text == golden,
                "{} differs from {}",
                backend.name(),
                path.display()
            );
        }
    }
}

/// Gaussian dropout's golden vectors (CONTRACT.md, Gaussian): the outputs of the ramp, a call
/// that starts on the second word of a pair and wraps the stream. The Cortex-M firmware checks
/// the same file (where the square root is computed without the FPU's instruction).
const GAUSSIAN: Case = Case {
    name: "gaussian",
    seed: Seed::new(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210),
    offset: u64::MAX - 300,
    p: 0.3,
    n: 1_001,
};

fn crate_gaussian<T: FromBits>(b: Backend, c: &Case) -> Vec<u64> {
    let x: Vec<T> = input(c.n);
    let mut y = vec![T::ZERO; c.n];
    b.gaussian_forward(c.p, c.seed, c.offset, Io::Out { x: &x, y: &mut y })
        .unwrap();
    bits_of(&y)
}

#[test]
#[cfg_attr(
    miri,
    ignore = "safe code over kernels whose words miri checks in tests/gaussian.rs and tests/backends.rs"
)]
fn golden_vectors_gaussian() {
    let c = &GAUSSIAN;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/gaussian.txt");
    if std::env::var_os("SIMD_DROPOUT_BLESS").is_some() {
        let text = render(
            &[],
            &[
                (
                    "f32",
                    bits_of(&spec_gaussian(&input::<f32>(c.n), c.p, c.seed, c.offset)),
                ),
                (
                    "f16",
                    bits_of(&spec_gaussian(&input::<f16>(c.n), c.p, c.seed, c.offset)),
                ),
                (
                    "bf16",
                    bits_of(&spec_gaussian(&input::<bf16>(c.n), c.p, c.seed, c.offset)),
                ),
                (
                    "f64",
                    bits_of(&spec_gaussian(&input::<f64>(c.n), c.p, c.seed, c.offset)),
                ),
            ],
        );
        std::fs::write(&path, text).unwrap();
    }
    let golden = std::fs::read_to_string(&path).unwrap();
    for b in Backend::available() {
        let text = render(
            &[],
            &[
                ("f32", crate_gaussian::<f32>(b, c)),
                ("f16", crate_gaussian::<f16>(b, c)),
                ("bf16", crate_gaussian::<bf16>(b, c)),
                ("f64", crate_gaussian::<f64>(b, c)),
            ],
        );
        assert!(
            text == golden,
            "{} differs from {}",
            b.name(),
            path.display()
        );
    }
}

/// DropBlock's golden vectors (CONTRACT.md, DropBlock): a 2-D call with several maps and
/// rows of three words, and a 3-D call, their masks and outputs.
#[test]
#[cfg_attr(
    miri,
    ignore = "safe code over kernels whose words miri checks in tests/gaussian.rs and tests/backends.rs"
)]
fn golden_vectors_dropblock() {
    let cases = [
        (
            "dropblock-2d",
            simd_dropout::Blocks::nchw(2, 3, 9, 130, 3),
            SpecBlocks {
                maps: 6,
                d: 1,
                h: 9,
                w: 130,
                block_size: 3,
                three_d: false,
            },
        ),
        (
            "dropblock-3d",
            simd_dropout::Blocks::ncdhw(1, 2, 5, 6, 7, 2),
            SpecBlocks {
                maps: 2,
                d: 5,
                h: 6,
                w: 7,
                block_size: 2,
                three_d: true,
            },
        ),
    ];
    let (p, seed, offset) = (0.3, Seed::new(5, 6), u64::MAX - 40);
    for (name, blocks, spec) in cases {
        let n = spec.elements();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("tests/golden/{name}.txt"));
        if std::env::var_os("SIMD_DROPOUT_BLESS").is_some() {
            let (keep, scale) = spec_block(spec, p, seed, offset);
            let text = render(
                &spec_mask(&keep),
                &[
                    ("f32", bits_of(&spec_apply(&input::<f32>(n), &keep, scale))),
                    (
                        "bf16",
                        bits_of(&spec_apply(&input::<bf16>(n), &keep, scale)),
                    ),
                    ("f64", bits_of(&spec_apply(&input::<f64>(n), &keep, scale))),
                ],
            );
            std::fs::write(&path, text).unwrap();
        }
        let golden = std::fs::read_to_string(&path).unwrap();
        for b in Backend::available() {
            let mut m = vec![0u64; mask_words(n)];
            let mut run = |ty: &'static str| -> (&'static str, Vec<u64>) {
                let mask = Some(BitsMut::new(&mut m));
                let bits = match ty {
                    "f32" => {
                        let mut y = input::<f32>(n);
                        b.block_forward(blocks, p, seed, offset, Io::InPlace(&mut y), mask)
                            .unwrap();
                        bits_of(&y)
                    }
                    "bf16" => {
                        let mut y = input::<bf16>(n);
                        b.block_forward(blocks, p, seed, offset, Io::InPlace(&mut y), mask)
                            .unwrap();
                        bits_of(&y)
                    }
                    _ => {
                        let mut y = input::<f64>(n);
                        b.block_forward(blocks, p, seed, offset, Io::InPlace(&mut y), mask)
                            .unwrap();
                        bits_of(&y)
                    }
                };
                (ty, bits)
            };
            let outputs = [run("f32"), run("bf16"), run("f64")];
            let text = render(&m, &outputs);
            assert!(
                text == golden,
                "{} differs from {}",
                b.name(),
                path.display()
            );
        }
    }
}
