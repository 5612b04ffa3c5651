//! A 64-256-10 MLP on the UCI handwritten digits (the core crate's `data/digits.csv`),
//! trained with burn's AdamW on the Flex CPU backend, with `simd_dropout_burn::Dropout` on the
//! hidden layer.
//!
//! `cargo run --release -p simd-dropout-burn --example burn_digits`

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Int, Tensor, TensorData};
use simd_dropout_burn::{Dropout, DropoutConfig};

#[derive(Module, Debug)]
struct Mlp {
    l1: Linear,
    drop: Dropout,
    l2: Linear,
}

impl Mlp {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.l2.forward(self.drop.forward(relu(self.l1.forward(x))))
    }
}

/// Features scaled to [0, 1] and labels, 1,797 images of 8x8 pixels.
fn load(device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/digits.csv");
    let text = std::fs::read_to_string(path).expect("data/digits.csv");
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let v: Vec<f32> = line
            .split(',')
            .map(|s| s.trim().parse().unwrap_or(0.0))
            .collect();
        xs.extend(v[..64].iter().map(|p| p / 16.0));
        ys.push(v[64] as i64);
    }
    let n = ys.len();
    (
        Tensor::from_data(TensorData::new(xs, [n, 64]), device),
        Tensor::from_data(TensorData::new(ys, [n]), device),
    )
}

fn accuracy(logits: Tensor<2>, y: Tensor<1, Int>) -> f32 {
    let n = y.dims()[0];
    let hits = logits.argmax(1).flatten::<1>(0, 1).equal(y).int().sum();
    hits.into_scalar::<i64>() as f32 / n as f32
}

fn main() -> Result<(), simd_dropout_burn::Error> {
    let device = Device::flex().autodiff();
    let (x, y) = load(&device);
    let n = y.dims()[0];
    // The first 300 images train, the rest test (as in the core crate's train_digits).
    let (xtr, ytr) = (x.clone().narrow(0, 0, 300), y.clone().narrow(0, 0, 300));
    let (xte, yte) = (x.narrow(0, 300, n - 300), y.narrow(0, 300, n - 300));
    let mut model = Mlp {
        l1: LinearConfig::new(64, 256).init(&device),
        drop: DropoutConfig::new(0.3).with_seed(2024).init()?,
        l2: LinearConfig::new(256, 10).init(&device),
    };
    let mut optim = AdamWConfig::new().init();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    for epoch in 1..=150 {
        let logits = model.forward(xtr.clone());
        let loss = loss_fn.forward(logits, ytr.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let value = loss.into_scalar::<f32>();
        model = optim.step(3e-3, model, grads);
        if epoch % 30 == 0 {
            let test = accuracy(
                model.valid().forward(xte.clone().inner()),
                yte.clone().inner(),
            );
            println!(
                "epoch {epoch:3}: loss {value:.4}, test accuracy {:.1}%",
                100.0 * test
            );
        }
    }
    let eval = model.valid();
    let train = accuracy(eval.forward(xtr.inner()), ytr.inner());
    let test = accuracy(eval.forward(xte.inner()), yte.inner());
    println!(
        "train accuracy {:.1}%, test accuracy {:.1}%",
        100.0 * train,
        100.0 * test
    );
    println!(
        "dropout stream position after training: {}",
        model.drop.offset()
    );
    Ok(())
}
