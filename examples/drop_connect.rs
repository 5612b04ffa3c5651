//! DropConnect (Wan et al. 2013) in a linear layer: each training step drops individual
//! weights (not activations), and the weight gradient flows through the same mask.
//!
//! `cargo run --release --example drop_connect` fits `y = W x` to a random target matrix with
//! plain SGD, printing the loss, then shows that the mask of a step can be regenerated from
//! `(seed, offset)` instead of stored.
//!
//! DropConnect is element dropout applied to the weights, so the recipe is the crate's
//! `forward` on the weight slice and `backward` on its gradient, with the same mask.

use rand_core::{Rng, SeedableRng};
use simd_dropout::{Bits, BitsMut, Io, Seed, backward, forward, mask_words};

/// A linear layer `y = W x` with `W` row-major `[out][inp]`, regularized by DropConnect.
struct Linear {
    w: Vec<f32>,
    inp: usize,
    out: usize,
    p: f64,
    seed: Seed,
    /// The stream position of the next step's mask.
    offset: u64,
}

impl Linear {
    /// One SGD step on a batch (`xs`: `[batch][inp]`, `ts`: `[batch][out]`); returns the loss.
    fn step(&mut self, xs: &[f32], ts: &[f32], lr: f32) -> Result<f32, simd_dropout::Error> {
        let n = self.w.len();
        let mut w_dropped = vec![0.0f32; n];
        let mut mask = vec![0u64; mask_words(n)];
        let io = Io::Out {
            x: &self.w,
            y: &mut w_dropped,
        };
        forward(
            self.p,
            self.seed,
            self.offset,
            io,
            Some(BitsMut::new(&mut mask)),
        )?;

        // Forward with the dropped weights, mean squared error, and its gradient with
        // respect to the dropped weights.
        let batch = xs.len() / self.inp;
        let mut g_dropped = vec![0.0f32; n];
        let mut loss = 0.0f32;
        for (x, t) in xs.chunks(self.inp).zip(ts.chunks(self.out)) {
            for o in 0..self.out {
                let row = &w_dropped[o * self.inp..(o + 1) * self.inp];
                let y: f32 = row.iter().zip(x).map(|(w, v)| w * v).sum();
                let err = y - t[o];
                loss += err * err / batch as f32;
                for (g, v) in g_dropped[o * self.inp..(o + 1) * self.inp]
                    .iter_mut()
                    .zip(x)
                {
                    *g += 2.0 * err * v / batch as f32;
                }
            }
        }

        // The weight gradient: the same mask and scale, from the stored bits...
        let mut g_w = vec![0.0f32; n];
        let io = Io::Out {
            x: &g_dropped,
            y: &mut g_w,
        };
        backward(self.p, self.seed, self.offset, io, Some(Bits::new(&mask)))?;
        // ...or regenerated from (seed, offset), storing nothing: the same bits.
        let mut g_w2 = vec![0.0f32; n];
        let io = Io::Out {
            x: &g_dropped,
            y: &mut g_w2,
        };
        backward(self.p, self.seed, self.offset, io, None)?;
        assert_eq!(g_w, g_w2);

        for (w, g) in self.w.iter_mut().zip(&g_w) {
            *w -= lr * g;
        }
        self.offset += n as u64; // one word per weight: the next step gets a fresh mask
        Ok(loss)
    }
}

fn main() -> Result<(), simd_dropout::Error> {
    let (inp, out, batch) = (16, 4, 64);
    let mut rng = rand_pcg::Pcg64::seed_from_u64(1);
    let mut uniform = move || (rng.next_u32() as f32 / u32::MAX as f32) * 2.0 - 1.0;
    let target: Vec<f32> = (0..inp * out).map(|_| uniform()).collect();
    let mut layer = Linear {
        w: vec![0.0; inp * out],
        inp,
        out,
        p: 0.2,
        seed: Seed::new(2024, 1),
        offset: 0,
    };
    for epoch in 0..=300 {
        let xs: Vec<f32> = (0..batch * inp).map(|_| uniform()).collect();
        let ts: Vec<f32> = xs
            .chunks(inp)
            .flat_map(|x| {
                (0..out)
                    .map(|o| {
                        let row = &target[o * inp..(o + 1) * inp];
                        row.iter().zip(x).map(|(w, v)| w * v).sum::<f32>()
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let loss = layer.step(&xs, &ts, 0.05)?;
        if epoch % 50 == 0 {
            println!("step {epoch:3}: loss {loss:.4}");
        }
    }
    let err: f32 = layer
        .w
        .iter()
        .zip(&target)
        .map(|(w, t)| (w - t).abs())
        .sum::<f32>()
        / target.len() as f32;
    println!("mean |W - W_target| after training: {err:.4}");
    Ok(())
}
