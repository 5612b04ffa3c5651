//! Trains a small MLP (64-256-256-10, ReLU, softmax cross-entropy, minibatch SGD) on the UCI
//! handwritten digits (data/digits.csv) four ways, and compares them:
//!
//! - no dropout;
//! - this crate's dropout on both hidden layers, storing 1-bit masks for the backward pass;
//! - this crate's dropout regenerating the masks in the backward pass (stores nothing): it
//!   must end with weights bit-identical to the previous run;
//! - a plain reference dropout written the way a tutorial does it: one `rand_pcg` draw per
//!   element, a byte mask, a multiply.
//!
//! A small training split (300 images) overfits without dropout; the test split is the rest.
//!
//! `cargo run --release --example train_digits`

use rand_core::{Rng, SeedableRng};
use simd_dropout::{Bits, BitsMut, Dropout, Io, Record, Seed, mask_words};
use std::time::{Duration, Instant};

const HIDDEN: usize = 256;
const CLASSES: usize = 10;
const PIXELS: usize = 64;
const TRAIN: usize = 300;
const EPOCHS: usize = 60;
const BATCH: usize = 20;
const LR: f32 = 0.05;
const P: f64 = 0.3;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    NoDropout,
    BitMask,
    Recompute,
    Reference,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::NoDropout => "no dropout",
            Mode::BitMask => "crate, 1-bit mask",
            Mode::Recompute => "crate, recompute",
            Mode::Reference => "reference (byte mask)",
        }
    }
}

/// A dense layer `y = x W + b`, `W` stored `[inputs][outputs]`.
#[derive(Clone)]
struct Dense {
    w: Vec<f32>,
    b: Vec<f32>,
    inp: usize,
    out: usize,
}

impl Dense {
    fn new(inp: usize, out: usize, rng: &mut impl Rng) -> Self {
        let bound = (6.0 / inp as f32).sqrt(); // He (uniform) initialization
        let w = (0..inp * out)
            .map(|_| (rng.next_u32() as f32 / u32::MAX as f32 * 2.0 - 1.0) * bound)
            .collect();
        Dense {
            w,
            b: vec![0.0; out],
            inp,
            out,
        }
    }

    fn forward(&self, x: &[f32], y: &mut [f32]) {
        for (xr, yr) in x.chunks(self.inp).zip(y.chunks_mut(self.out)) {
            yr.copy_from_slice(&self.b);
            for (i, &v) in xr.iter().enumerate() {
                for (o, w) in yr.iter_mut().zip(&self.w[i * self.out..(i + 1) * self.out]) {
                    *o += v * w;
                }
            }
        }
    }

    /// Given dL/dy, updates W and b by SGD and writes dL/dx (when asked).
    fn backward(&mut self, x: &[f32], gy: &[f32], gx: Option<&mut [f32]>, lr: f32) {
        if let Some(gx) = gx {
            for (gxr, gyr) in gx.chunks_mut(self.inp).zip(gy.chunks(self.out)) {
                for (i, g) in gxr.iter_mut().enumerate() {
                    let w = &self.w[i * self.out..(i + 1) * self.out];
                    *g = w.iter().zip(gyr).map(|(a, b)| a * b).sum();
                }
            }
        }
        for (xr, gyr) in x.chunks(self.inp).zip(gy.chunks(self.out)) {
            for (i, &v) in xr.iter().enumerate() {
                for (w, g) in self.w[i * self.out..(i + 1) * self.out].iter_mut().zip(gyr) {
                    *w -= lr * v * g;
                }
            }
            for (b, g) in self.b.iter_mut().zip(gyr) {
                *b -= lr * g;
            }
        }
    }
}

/// What one hidden layer's dropout keeps for the backward pass.
enum Saved {
    None,
    Bits(Record, Vec<u64>),
    Record(Record),
    Bytes(Vec<u8>),
}

impl Saved {
    fn bytes(&self) -> usize {
        match self {
            Saved::None | Saved::Record(_) => 0,
            Saved::Bits(_, m) => 8 * m.len(),
            Saved::Bytes(b) => b.len(),
        }
    }
}

/// Dropout of one hidden activation in place, in the chosen mode.
struct HiddenDropout {
    mode: Mode,
    layer: Dropout,
    reference_rng: rand_pcg::Pcg32,
    time: Duration,
    peak_mask_bytes: usize,
}

impl HiddenDropout {
    fn new(mode: Mode, seed: Seed) -> Self {
        HiddenDropout {
            mode,
            layer: Dropout::new(P, seed).expect("valid p"),
            // An independent stream: with the crate's seed the reference would draw the very
            // same words and, since `r / 2^32 >= p` matches the crate's threshold, drop the
            // very same elements.
            reference_rng: rand_pcg::Pcg32::new(seed.state ^ 0x5eed, seed.stream),
            time: Duration::ZERO,
            peak_mask_bytes: 0,
        }
    }

    fn forward(&mut self, h: &mut [f32], training: bool) -> Saved {
        if !training || self.mode == Mode::NoDropout {
            return Saved::None;
        }
        let start = Instant::now();
        let saved = match self.mode {
            Mode::BitMask => {
                let mut mask = vec![0u64; mask_words(h.len())];
                let rec = self
                    .layer
                    .forward(Io::InPlace(h), Some(BitsMut::new(&mut mask)))
                    .expect("sizes match");
                Saved::Bits(rec, mask)
            }
            Mode::Recompute => Saved::Record(
                self.layer
                    .forward(Io::InPlace(h), None)
                    .expect("sizes match"),
            ),
            Mode::Reference => {
                // The tutorial way: a uniform draw per element, a byte mask, a multiply.
                let scale = (1.0 / (1.0 - P)) as f32;
                let mask: Vec<u8> = h
                    .iter()
                    .map(|_| u8::from((self.reference_rng.next_u32() as f64 / 4294967296.0) >= P))
                    .collect();
                for (v, &m) in h.iter_mut().zip(&mask) {
                    *v *= f32::from(m) * scale;
                }
                Saved::Bytes(mask)
            }
            Mode::NoDropout => Saved::None,
        };
        self.time += start.elapsed();
        self.peak_mask_bytes = self.peak_mask_bytes.max(saved.bytes());
        saved
    }

    fn backward(&mut self, saved: &Saved, g: &mut [f32]) {
        let start = Instant::now();
        match saved {
            Saved::None => {}
            Saved::Bits(rec, mask) => rec
                .backward(Io::InPlace(g), Some(Bits::new(mask)))
                .expect("sizes match"),
            Saved::Record(rec) => rec.backward(Io::InPlace(g), None).expect("sizes match"),
            Saved::Bytes(mask) => {
                let scale = (1.0 / (1.0 - P)) as f32;
                for (v, &m) in g.iter_mut().zip(mask) {
                    *v *= f32::from(m) * scale;
                }
            }
        }
        self.time += start.elapsed();
    }
}

struct Net {
    l1: Dense,
    l2: Dense,
    l3: Dense,
    d1: HiddenDropout,
    d2: HiddenDropout,
}

/// Softmax cross-entropy: the loss summed over the batch, the number correct, and
/// dL/dlogits (mean over the batch) in `logits`' place.
fn softmax_xent(logits: &mut [f32], labels: &[usize]) -> (f32, usize) {
    let (mut loss, mut correct) = (0.0, 0);
    let n = labels.len() as f32;
    for (z, &label) in logits.chunks_mut(CLASSES).zip(labels) {
        let max = z.iter().cloned().fold(f32::MIN, f32::max);
        let argmax = z.iter().position(|&v| v == max).unwrap_or(0);
        correct += usize::from(argmax == label);
        let sum: f32 = z.iter().map(|v| (v - max).exp()).sum();
        loss += sum.ln() + max - z[label];
        for (k, v) in z.iter_mut().enumerate() {
            *v = ((*v - max).exp() / sum - f32::from(u8::from(k == label))) / n;
        }
    }
    (loss, correct)
}

impl Net {
    fn new(mode: Mode) -> Self {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(7);
        Net {
            l1: Dense::new(PIXELS, HIDDEN, &mut rng),
            l2: Dense::new(HIDDEN, HIDDEN, &mut rng),
            l3: Dense::new(HIDDEN, CLASSES, &mut rng),
            d1: HiddenDropout::new(mode, Seed::new(11, 1)),
            d2: HiddenDropout::new(mode, Seed::new(11, 2)),
        }
    }

    /// One pass over a batch; trains when `lr` is given. Returns (loss sum, correct).
    fn run(&mut self, x: &[f32], labels: &[usize], lr: Option<f32>) -> (f32, usize) {
        let b = labels.len();
        let training = lr.is_some();
        let relu = |h: &mut [f32]| h.iter_mut().for_each(|v| *v = v.max(0.0));
        let mut h1 = vec![0.0; b * HIDDEN];
        self.l1.forward(x, &mut h1);
        relu(&mut h1);
        let s1 = self.d1.forward(&mut h1, training);
        let mut h2 = vec![0.0; b * HIDDEN];
        self.l2.forward(&h1, &mut h2);
        relu(&mut h2);
        let s2 = self.d2.forward(&mut h2, training);
        let mut z = vec![0.0; b * CLASSES];
        self.l3.forward(&h2, &mut z);
        let (loss, correct) = softmax_xent(&mut z, labels);
        if let Some(lr) = lr {
            let mut g2 = vec![0.0; b * HIDDEN];
            self.l3.backward(&h2, &z, Some(&mut g2), lr);
            self.d2.backward(&s2, &mut g2);
            g2.iter_mut()
                .zip(&h2)
                .for_each(|(g, h)| *g *= f32::from(u8::from(*h > 0.0)));
            let mut g1 = vec![0.0; b * HIDDEN];
            self.l2.backward(&h1, &g2, Some(&mut g1), lr);
            self.d1.backward(&s1, &mut g1);
            g1.iter_mut()
                .zip(&h1)
                .for_each(|(g, h)| *g *= f32::from(u8::from(*h > 0.0)));
            self.l1.backward(x, &g1, None, lr);
        }
        (loss, correct)
    }

    fn weights_bits(&self) -> Vec<u32> {
        [&self.l1, &self.l2, &self.l3]
            .iter()
            .flat_map(|l| l.w.iter().chain(&l.b).map(|v| v.to_bits()))
            .collect()
    }
}

fn load() -> (Vec<f32>, Vec<usize>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv");
    let text = std::fs::read_to_string(path).expect("data/digits.csv is part of the repo");
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for line in text.lines().filter(|l| !l.is_empty()) {
        let v: Vec<f32> = line
            .split(',')
            .map(|s| s.trim().parse().expect("a number"))
            .collect();
        x.extend(v[..PIXELS].iter().map(|p| p / 16.0));
        y.push(v[PIXELS] as usize);
    }
    (x, y)
}

struct Outcome {
    mode: Mode,
    test_acc: f32,
    train_acc: f32,
    dropout_time: Duration,
    mask_bytes: usize,
    weights: Vec<u32>,
}

fn train(mode: Mode, x: &[f32], y: &[usize], order: &[usize]) -> Outcome {
    let (train_idx, test_idx) = order.split_at(TRAIN);
    let gather = |idx: &[usize]| -> (Vec<f32>, Vec<usize>) {
        let xs = idx
            .iter()
            .flat_map(|&i| x[i * PIXELS..(i + 1) * PIXELS].iter().copied());
        (xs.collect(), idx.iter().map(|&i| y[i]).collect())
    };
    let (vx, vy) = gather(test_idx);
    let mut net = Net::new(mode);
    let mut shuffle = rand_pcg::Pcg64::seed_from_u64(99);
    let mut idx: Vec<usize> = (0..TRAIN).collect();
    let (mut train_acc, mut test_acc) = (0.0, 0.0);
    println!("\n{}:", mode.name());
    println!("  epoch  train loss  train acc   test loss  test acc");
    for epoch in 1..=EPOCHS {
        for i in (1..idx.len()).rev() {
            let j = (shuffle.next_u64() % (i as u64 + 1)) as usize;
            idx.swap(i, j);
        }
        let (mut loss, mut correct) = (0.0, 0);
        for batch in idx.chunks(BATCH) {
            let (bx, by) = gather(&batch.iter().map(|&k| train_idx[k]).collect::<Vec<_>>());
            let (l, c) = net.run(&bx, &by, Some(LR));
            loss += l;
            correct += c;
        }
        train_acc = correct as f32 / TRAIN as f32;
        let (tl, tc) = net.run(&vx, &vy, None);
        test_acc = tc as f32 / vy.len() as f32;
        if epoch % 10 == 0 || epoch == 1 {
            println!(
                "  {epoch:5}  {:10.4}  {:8.1}%  {:10.4}  {:7.1}%",
                loss / TRAIN as f32,
                100.0 * train_acc,
                tl / vy.len() as f32,
                100.0 * test_acc
            );
        } else {
            eprint!("  epoch {epoch}/{EPOCHS}\r");
        }
    }
    Outcome {
        mode,
        test_acc,
        train_acc,
        dropout_time: net.d1.time + net.d2.time,
        mask_bytes: net.d1.peak_mask_bytes + net.d2.peak_mask_bytes,
        weights: net.weights_bits(),
    }
}

fn main() {
    let (x, y) = load();
    let n = y.len();
    // A fixed shuffle of the samples: the first TRAIN train, the rest test.
    let mut rng = rand_pcg::Pcg64::seed_from_u64(2026);
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    println!(
        "digits: {n} images, {TRAIN} to train, {} to test; MLP {PIXELS}-{HIDDEN}-{HIDDEN}-{CLASSES}, \
         dropout p = {P} on both hidden layers, {EPOCHS} epochs of SGD (batch {BATCH}, lr {LR})",
        n - TRAIN
    );
    let outcomes: Vec<Outcome> = [
        Mode::NoDropout,
        Mode::BitMask,
        Mode::Recompute,
        Mode::Reference,
    ]
    .into_iter()
    .map(|m| train(m, &x, &y, &order))
    .collect();

    println!(
        "\n{:<24} {:>10} {:>10} {:>14} {:>16}",
        "mode", "train acc", "test acc", "dropout time", "mask bytes/step"
    );
    for o in &outcomes {
        println!(
            "{:<24} {:>9.1}% {:>9.1}% {:>11.1} ms {:>16}",
            o.mode.name(),
            100.0 * o.train_acc,
            100.0 * o.test_acc,
            o.dropout_time.as_secs_f64() * 1e3,
            o.mask_bytes
        );
    }
    let same = outcomes[1].weights == outcomes[2].weights;
    println!(
        "\n1-bit mask and recompute runs end with bit-identical weights: {}",
        if same { "yes" } else { "NO" }
    );
    assert!(
        same,
        "the mask and recompute backward passes must agree bit for bit"
    );
}
