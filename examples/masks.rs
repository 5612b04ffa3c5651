//! A picture of every mask: the same NCHW batch `[2, 4, 28, 28]` of ones through element
//! dropout, column dropout, channel dropout, drop-path, DropBlock (block 7) and Gaussian
//! dropout, all at `p = 0.3` from one seed, side by side in one PNG.
//!
//! `cargo run --release --example masks -- examples/masks.png`
//!
//! Each panel shows the batch as 2 rows (samples) of 4 maps (channels). Dropped elements are
//! black, kept ones white (their value is the panel's scale: `1 / (1 - p)`, or DropBlock's
//! `numel / kept`); Gaussian noise is grey around its mean of 1, darker below and lighter
//! above (mean +- 2 sigma spans black to white).

use simd_dropout::{Backend, Blocks, Error, Io, Seed, Shape};
use std::fs::File;
use std::io::BufWriter;

const N: usize = 2;
const C: usize = 4;
const H: usize = 28;
const W: usize = 28;
const P: f64 = 0.3;
/// Pixels per element, and the gaps between maps and between panels.
const ZOOM: usize = 3;
const GAP: usize = 4;
const PANEL_GAP: usize = 16;

/// The six outputs, each `N * C * H * W` values of a batch of ones.
fn panels(b: Backend, seed: Seed) -> Result<Vec<Vec<f32>>, Error> {
    let n = N * C * H * W;
    let run = |f: &dyn Fn(&mut [f32]) -> Result<(), Error>| -> Result<Vec<f32>, Error> {
        let mut y = vec![1.0f32; n];
        f(&mut y)?;
        Ok(y)
    };
    let broadcast =
        |shape, y: &mut [f32]| b.broadcast_forward(shape, P, seed, 0, Io::InPlace(y), None);
    Ok(vec![
        run(&|y| b.forward(P, seed, 0, Io::InPlace(y), None))?,
        // Column dropout on the batch seen as a [N*C*H][W] matrix (the same columns of every
        // row of every map), then channel dropout and drop-path.
        run(&|y| broadcast(Shape::columns(N * C * H, W), y))?,
        run(&|y| broadcast(Shape::channels(N, C, H * W), y))?,
        run(&|y| broadcast(Shape::samples(N, C * H * W), y))?,
        run(&|y| {
            b.block_forward(
                Blocks::nchw(N, C, H, W, 7),
                P,
                seed,
                0,
                Io::InPlace(y),
                None,
            )
        })?,
        run(&|y| b.gaussian_forward(P, seed, 0, Io::InPlace(y)))?,
    ])
}

/// A grey level for a value: 0 black, the panel's scale (its largest value) white; Gaussian
/// multipliers map `1 +- 2 sigma` to black and white.
fn grey(v: f32, max: f32, gaussian: bool) -> u8 {
    let level = if gaussian {
        let sigma = (P / (1.0 - P)).sqrt() as f32;
        (v - (1.0 - 2.0 * sigma)) / (4.0 * sigma)
    } else {
        v / max
    };
    (level.clamp(0.0, 1.0) * 255.0).round() as u8
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/masks.png".into());
    // With two samples, drop-path at p = 0.3 keeps both about half the time; the picture takes
    // the first seed from 2024 on whose drop-path panel drops one, so that it shows something.
    let b = Backend::detect();
    let mut k = 2024;
    let outputs = loop {
        let outputs = panels(b, Seed::from_u64(k))?;
        let sample = C * H * W;
        let dropped = (0..N).filter(|s| outputs[3][s * sample] == 0.0).count();
        if dropped == 1 {
            break outputs;
        }
        k += 1;
    };
    let panel_w = C * W * ZOOM + (C - 1) * GAP;
    let panel_h = N * H * ZOOM + (N - 1) * GAP;
    let width = outputs.len() * panel_w + (outputs.len() + 1) * PANEL_GAP;
    let height = panel_h + 2 * PANEL_GAP;
    // A mid-blue background, so that black and white elements both stand out.
    let mut rgb = vec![0u8; width * height * 3];
    for px in rgb.chunks_exact_mut(3) {
        px.copy_from_slice(&[40, 70, 120]);
    }
    for (k, y) in outputs.iter().enumerate() {
        let gaussian = k == outputs.len() - 1;
        let max = y.iter().fold(0.0f32, |m, &v| m.max(v));
        let x0 = PANEL_GAP + k * (panel_w + PANEL_GAP);
        for (i, &v) in y.iter().enumerate() {
            let (s, c, r, col) = (i / (C * H * W), i / (H * W) % C, i / W % H, i % W);
            let g = grey(v, max, gaussian);
            for dy in 0..ZOOM {
                for dx in 0..ZOOM {
                    let px = x0 + c * (W * ZOOM + GAP) + col * ZOOM + dx;
                    let py = PANEL_GAP + s * (H * ZOOM + GAP) + r * ZOOM + dy;
                    let at = 3 * (py * width + px);
                    rgb[at..at + 3].copy_from_slice(&[g, g, g]);
                }
            }
        }
    }
    let mut enc = png::Encoder::new(
        BufWriter::new(File::create(&path)?),
        width as u32,
        height as u32,
    );
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()?.write_image_data(&rgb)?;
    println!(
        "wrote {path} ({width} x {height}, seed Seed::from_u64({k})): element, column, channel, \
         drop-path, DropBlock (7), Gaussian; p = {P}"
    );
    Ok(())
}
