//! Test firmware for a Cortex-M4F: the crate's golden vectors (element, broadcast and Gaussian,
//! f32, f16 and bf16, the scalar and portable backends), checked on the target and reported
//! through semihosting. No allocator: every buffer is a fixed array on the stack.
//!
//! `cargo run --release` in this directory (qemu-system-arm, `-machine mps2-an386`); the exit
//! status is 0 when every check passes.

#![no_std]
#![no_main]

use core::fmt::Write as _;
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hio};
use half::{bf16, f16};
use simd_dropout::{Backend, BitsMut, Blocks, Element, Io, Seed, Shape};

/// One golden file: the call's parameters (the same as `tests/golden.rs`) and its text.
struct Case {
    name: &'static str,
    text: &'static str,
    seed: Seed,
    offset: u64,
    p: f64,
    n: usize,
    kind: Kind,
}

/// Which operation a golden file pins.
#[derive(Clone, Copy)]
enum Kind {
    Element,
    /// `(outer, mid, inner)`.
    Broadcast(usize, usize, usize),
    /// Gaussian dropout: no mask lines.
    Gaussian,
}

const CASES: [Case; 6] = [
    Case {
        name: "a",
        text: include_str!("../../golden/a.txt"),
        seed: Seed::new(42, 54),
        offset: 1000,
        p: 0.3,
        n: 16_384,
        kind: Kind::Element,
    },
    Case {
        name: "b",
        text: include_str!("../../golden/b.txt"),
        seed: Seed::new(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210),
        offset: u64::MAX - 300,
        p: 0.9,
        n: 1_001,
        kind: Kind::Element,
    },
    Case {
        name: "c",
        text: include_str!("../../golden/c.txt"),
        seed: Seed::new(7, 0),
        offset: 3,
        p: 1.0 / 3.0,
        n: 257,
        kind: Kind::Element,
    },
    Case {
        name: "broadcast-nchw",
        text: include_str!("../../golden/broadcast-nchw.txt"),
        seed: Seed::new(99, 7),
        offset: u64::MAX - 5,
        p: 0.25,
        n: 420,
        kind: Kind::Broadcast(12, 35, 1),
    },
    Case {
        name: "broadcast-nhwc",
        text: include_str!("../../golden/broadcast-nhwc.txt"),
        seed: Seed::new(0xdead_beef, 3),
        offset: 77,
        p: 0.6,
        n: 1260,
        kind: Kind::Broadcast(2, 9, 70),
    },
    Case {
        name: "gaussian",
        text: include_str!("../../golden/gaussian.txt"),
        seed: Seed::new(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210),
        offset: u64::MAX - 300,
        p: 0.3,
        n: 1_001,
        kind: Kind::Gaussian,
    },
];

/// Elements per call of the element cases (a multiple of 64: whole mask words per chunk).
const CHUNK: usize = 512;
/// The largest broadcast case, elements and decisions.
const MAX_BROADCAST: usize = 1280;

/// A type of the golden files.
trait Ty: Element {
    const NAME: &'static str;
    fn from_f32(v: f32) -> Self;
}

impl Ty for f32 {
    const NAME: &'static str = "f32";
    fn from_f32(v: f32) -> Self {
        v
    }
}

impl Ty for f16 {
    const NAME: &'static str = "f16";
    fn from_f32(v: f32) -> Self {
        f16::from_f32(v)
    }
}

impl Ty for bf16 {
    const NAME: &'static str = "bf16";
    fn from_f32(v: f32) -> Self {
        bf16::from_f32(v)
    }
}

/// Input element `i` of every golden file: a ramp through negative, small and large values.
fn input<T: Ty>(i: usize) -> T {
    T::from_f32((i as f32 - 100.0) * 0.37 + (i % 7) as f32 * 1e-3)
}

/// The hex values of the lines of `text` that start with `tag ` (digest lines excluded).
fn values<'a>(text: &'a str, tag: &'a str) -> impl Iterator<Item = u64> + 'a {
    text.lines().filter_map(move |line| {
        let rest = line.strip_prefix(tag)?.strip_prefix(' ')?;
        u64::from_str_radix(rest, 16).ok()
    })
}

/// The digest line of `tag` in `text`.
fn digest(text: &str, tag: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(tag)?.strip_prefix(" digest ")?;
        u64::from_str_radix(rest, 16).ok()
    })
}

/// What a check found: mask words, the first 1000 outputs and the digest of all outputs.
struct Outcome {
    masks_ok: bool,
    outputs_ok: bool,
    digest_ok: bool,
}

/// Checks outputs as they are produced: the first 1000 against the file, all into the digest.
struct Outputs<I: Iterator<Item = u64>> {
    want: I,
    seen: usize,
    ok: bool,
    hash: u64,
}

impl<I: Iterator<Item = u64>> Outputs<I> {
    fn new(want: I) -> Self {
        Outputs {
            want,
            seen: 0,
            ok: true,
            hash: 0xcbf2_9ce4_8422_2325,
        }
    }

    fn push(&mut self, bits: u64) {
        if self.seen < 1000 {
            self.ok &= self.want.next() == Some(bits);
        }
        self.seen += 1;
        self.hash = (self.hash ^ bits).wrapping_mul(0x0100_0000_01b3);
    }
}

/// An element or Gaussian case through `backend`, in calls of `CHUNK` elements (position
/// `offset + i` for element `i`, so the chunks give the bits of one call).
fn element<T: Ty>(backend: Backend, c: &Case) -> Outcome {
    let mut masks = values(c.text, "m");
    let mut outputs = Outputs::new(values(c.text, T::NAME));
    let mut masks_ok = true;
    let (mut x, mut y, mut m) = ([T::ZERO; CHUNK], [T::ZERO; CHUNK], [0u64; CHUNK / 64]);
    for start in (0..c.n).step_by(CHUNK) {
        let len = CHUNK.min(c.n - start);
        for (k, v) in x[..len].iter_mut().enumerate() {
            *v = input(start + k);
        }
        m.fill(0);
        let words = len.div_ceil(64);
        let io = Io::Out {
            x: &x[..len],
            y: &mut y[..len],
        };
        let offset = c.offset.wrapping_add(start as u64);
        let ran = match c.kind {
            Kind::Gaussian => backend.gaussian_forward(c.p, c.seed, offset, io),
            _ => {
                let mask = Some(BitsMut::new(&mut m[..words]));
                backend.forward(c.p, c.seed, offset, io, mask)
            }
        };
        if ran.is_err() {
            masks_ok = false;
        }
        if let Kind::Gaussian = c.kind {
            y[..len].iter().for_each(|v| outputs.push(v.to_bits()));
            continue;
        }
        for &w in &m[..words] {
            masks_ok &= masks.next() == Some(w);
        }
        y[..len].iter().for_each(|v| outputs.push(v.to_bits()));
    }
    Outcome {
        masks_ok: masks_ok && masks.next().is_none(),
        outputs_ok: outputs.ok,
        digest_ok: digest(c.text, T::NAME) == Some(outputs.hash),
    }
}

/// A broadcast case through `backend`, in one call.
fn broadcast<T: Ty>(backend: Backend, c: &Case, outer: usize, mid: usize, inner: usize) -> Outcome {
    let decisions = outer * inner;
    if c.n > MAX_BROADCAST || decisions > MAX_BROADCAST || outer * mid * inner != c.n {
        return Outcome {
            masks_ok: false,
            outputs_ok: false,
            digest_ok: false,
        };
    }
    let (mut x, mut y) = ([T::ZERO; MAX_BROADCAST], [T::ZERO; MAX_BROADCAST]);
    let mut m = [0u64; MAX_BROADCAST / 64];
    for (i, v) in x[..c.n].iter_mut().enumerate() {
        *v = input(i);
    }
    let words = decisions.div_ceil(64);
    let io = Io::Out {
        x: &x[..c.n],
        y: &mut y[..c.n],
    };
    let shape = Shape::new(outer, mid, inner);
    let mask = Some(BitsMut::new(&mut m[..words]));
    let ran = backend
        .broadcast_forward(shape, c.p, c.seed, c.offset, io, mask)
        .is_ok();
    let mut outputs = Outputs::new(values(c.text, T::NAME));
    y[..c.n].iter().for_each(|v| outputs.push(v.to_bits()));
    Outcome {
        masks_ok: ran && values(c.text, "m").eq(m[..words].iter().copied()),
        outputs_ok: ran && outputs.ok,
        digest_ok: digest(c.text, T::NAME) == Some(outputs.hash),
    }
}

/// One case in one type: prints a line, returns whether it passed.
fn check<T: Ty>(out: &mut impl core::fmt::Write, backend: Backend, c: &Case) -> bool {
    let o = match c.kind {
        Kind::Broadcast(outer, mid, inner) => broadcast::<T>(backend, c, outer, mid, inner),
        _ => element::<T>(backend, c),
    };
    let pass = o.masks_ok && o.outputs_ok && o.digest_ok;
    let verdict = if pass { "pass" } else { "FAIL" };
    let _ = writeln!(
        out,
        "{verdict} {:8} {:15} {:4} masks {} outputs {} digest {}",
        backend.name(),
        c.name,
        T::NAME,
        o.masks_ok,
        o.outputs_ok,
        o.digest_ok
    );
    pass
}

/// Semihosting output as a `core::fmt::Write`.
struct Host(Option<hio::HostStream>);

impl core::fmt::Write for Host {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        match &mut self.0 {
            Some(h) => h.write_str(s),
            None => Ok(()),
        }
    }
}

// ---- Stack measurement: paint the unused stack, run, find the deepest overwritten word.

const PAINT: u32 = 0xA5A5_5A5A;
/// How far below the caller's frame the paint reaches.
const DEPTH: usize = 48 * 1024;

unsafe extern "C" {
    /// The end of `.bss`/`.uninit` (cortex-m-rt): the stack may not grow below it.
    static __sheap: u32;
}

/// The words from `DEPTH` bytes below the current stack pointer up to 256 bytes below it, or
/// `None` if that would reach the static data.
fn paint_region() -> Option<(usize, usize)> {
    let sp = cortex_m::register::msp::read() as usize;
    let floor = core::ptr::addr_of!(__sheap) as usize;
    let low = sp.checked_sub(DEPTH)?;
    (low > floor).then_some((low, sp - 256))
}

/// Runs `f` and returns how many bytes of stack below this function's frame it used.
#[inline(never)]
fn stack_used(f: impl FnOnce()) -> usize {
    let Some((low, high)) = paint_region() else {
        return usize::MAX;
    };
    for addr in (low..high).step_by(4) {
        // SAFETY: `low..high` lies between the end of the static data and 256 bytes below the
        // live stack pointer: unused stack that no live frame or static owns, word aligned
        // (the stack pointer is 8-byte aligned), and nothing else runs (no interrupts).
        unsafe { core::ptr::write_volatile(addr as *mut u32, PAINT) };
    }
    f();
    let deepest = (low..high).step_by(4).find(|&addr| {
        // SAFETY: the same region as above, read after `f` returned.
        unsafe { core::ptr::read_volatile(addr as *const u32) != PAINT }
    });
    deepest.map_or(0, |addr| high + 256 - addr)
}

#[entry]
fn main() -> ! {
    let mut out = Host(hio::hstdout().ok());
    let mut failures = 0usize;
    for backend in [Backend::scalar(), Backend::portable()] {
        for c in &CASES {
            failures += usize::from(!check::<f32>(&mut out, backend, c));
            failures += usize::from(!check::<f16>(&mut out, backend, c));
            failures += usize::from(!check::<bf16>(&mut out, backend, c));
        }
    }
    // The kernels' own stack: one call of each kind, measured apart from the checks' buffers.
    let (x, mut y, mut m) = ([1.5f32; CHUNK], [0f32; CHUNK], [0u64; CHUNK / 64]);
    let seed = Seed::new(1, 2);
    for backend in [Backend::scalar(), Backend::portable()] {
        let element = stack_used(|| {
            let io = Io::Out { x: &x, y: &mut y };
            let _ = backend.forward(0.3, seed, 0, io, Some(BitsMut::new(&mut m)));
        });
        let broadcast = stack_used(|| {
            let io = Io::Out { x: &x, y: &mut y };
            let shape = Shape::new(8, 16, 4);
            let _ = backend.broadcast_forward(shape, 0.3, seed, 0, io, Some(BitsMut::new(&mut m)));
        });
        let gaussian = stack_used(|| {
            let _ = backend.gaussian_forward(0.3, seed, 0, Io::Out { x: &x, y: &mut y });
        });
        // DropBlock without a mask (its deepest path: the count pass, then the bands again),
        // NCHW and NHWC.
        let mut block = |blocks| {
            stack_used(|| {
                let io = Io::Out { x: &x, y: &mut y };
                let _ = backend.block_forward(blocks, 0.3, seed, 0, io, None);
            })
        };
        let nchw = block(Blocks::nchw(2, 4, 8, CHUNK / 64, 3));
        let nhwc = block(Blocks::nhwc(2, 8, CHUNK / 64, 4, 3));
        let _ = writeln!(
            out,
            "stack {:8}: element forward {element} bytes, broadcast forward {broadcast} bytes, \
             Gaussian forward {gaussian} bytes, DropBlock forward {nchw} (NCHW) / {nhwc} (NHWC) \
             bytes",
            backend.name()
        );
    }
    let whole = stack_used(|| {
        for c in &CASES {
            check::<f32>(&mut Host(None), Backend::portable(), c);
        }
    });
    let _ = writeln!(
        out,
        "stack of a whole f32 check (with its buffers): {whole} bytes"
    );
    let _ = writeln!(out, "{} failures", failures);
    if failures == 0 {
        debug::exit(debug::EXIT_SUCCESS);
    } else {
        debug::exit(debug::EXIT_FAILURE);
    }
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let _ = writeln!(Host(hio::hstdout().ok()), "panic: {info}");
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
