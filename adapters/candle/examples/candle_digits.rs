//! A 64-256-10 MLP on the UCI handwritten digits (the core crate's `data/digits.csv`),
//! trained with candle's AdamW, with `simd_dropout_candle::Dropout` on the hidden layer.
//!
//! `cargo run --release -p simd-dropout-candle --example candle_digits`

use candle_core::{D, DType, Device, ModuleT, Result, Tensor};
use candle_nn::{AdamW, Linear, Module, Optimizer, ParamsAdamW, VarBuilder, VarMap, linear, loss};
use simd_dropout_candle::Dropout;

struct Mlp {
    l1: Linear,
    drop: Dropout,
    l2: Linear,
}

impl Mlp {
    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let h = self.l1.forward(x)?.relu()?;
        self.l2.forward(&self.drop.forward_t(&h, train)?)
    }
}

/// Features scaled to [0, 1] and labels, 1,797 images of 8x8 pixels.
fn load(dev: &Device) -> Result<(Tensor, Tensor)> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/digits.csv"
    ))?;
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let v: Vec<f32> = line
            .split(',')
            .map(|s| s.trim().parse().unwrap_or(0.0))
            .collect();
        xs.extend(v[..64].iter().map(|p| p / 16.0));
        ys.push(v[64] as u32);
    }
    let n = ys.len();
    Ok((
        Tensor::from_vec(xs, (n, 64), dev)?,
        Tensor::from_vec(ys, n, dev)?,
    ))
}

fn accuracy(logits: &Tensor, y: &Tensor) -> Result<f32> {
    let hits = logits
        .argmax(D::Minus1)?
        .eq(y)?
        .to_dtype(DType::F32)?
        .sum_all()?;
    Ok(hits.to_scalar::<f32>()? / y.dims()[0] as f32)
}

fn main() -> Result<()> {
    let dev = Device::Cpu;
    let (x, y) = load(&dev)?;
    // The first 300 images train, the rest test (as in the core crate's train_digits).
    let (xtr, ytr) = (x.narrow(0, 0, 300)?, y.narrow(0, 0, 300)?);
    let (xte, yte) = (
        x.narrow(0, 300, x.dims()[0] - 300)?,
        y.narrow(0, 300, y.dims()[0] - 300)?,
    );
    let vars = VarMap::new();
    let vb = VarBuilder::from_varmap(&vars, DType::F32, &dev);
    let model = Mlp {
        l1: linear(64, 256, vb.pp("l1"))?,
        drop: Dropout::new(0.3, 2024)?,
        l2: linear(256, 10, vb.pp("l2"))?,
    };
    let mut opt = AdamW::new(
        vars.all_vars(),
        ParamsAdamW {
            lr: 3e-3,
            ..Default::default()
        },
    )?;
    for epoch in 1..=150 {
        let logits = model.forward(&xtr, true)?;
        let l = loss::cross_entropy(&logits, &ytr)?;
        opt.backward_step(&l)?;
        if epoch % 30 == 0 {
            let test = accuracy(&model.forward(&xte, false)?, &yte)?;
            println!(
                "epoch {epoch:2}: loss {:.4}, test accuracy {:.1}%",
                l.to_scalar::<f32>()?,
                100.0 * test
            );
        }
    }
    let train = accuracy(&model.forward(&xtr, false)?, &ytr)?;
    let test = accuracy(&model.forward(&xte, false)?, &yte)?;
    println!(
        "train accuracy {:.1}%, test accuracy {:.1}%",
        100.0 * train,
        100.0 * test
    );
    println!(
        "dropout stream position after training: {}",
        model.drop.state().offset
    );
    Ok(())
}
