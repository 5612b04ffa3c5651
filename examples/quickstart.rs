//! The crate in one page, on a 2x3 matrix: DropConnect-style dropout with a full element
//! mask (forward, backward, replay from the record), then node (column) dropout with a
//! broadcast mask, where a dropped column is zero in every row.
//!
//! `cargo run --release --example quickstart`

use simd_dropout::{Bits, BitsMut, Dropout, Io, MaskRef, Op, Seed, Shape, mask_words};

fn print_matrix(name: &str, m: &[f32]) {
    println!("{name}:");
    for row in m.chunks(3) {
        let cells: Vec<String> = row.iter().map(|v| format!("{v:6.2}")).collect();
        println!("  [{}]", cells.join(", "));
    }
}

fn main() -> Result<(), simd_dropout::Error> {
    // A 2x3 weight (or activation) matrix, row-major.
    let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
    print_matrix("x", &x);

    // p = 0.5: each element is dropped with probability 1/2, survivors are scaled by 2.
    let mut layer = Dropout::new(0.5, Seed::new(42, 54))?;
    let mut y = [0.0f32; 6];
    let mut mask = [0u64; mask_words(6)];
    let record = layer.forward(Io::Out { x: &x, y: &mut y }, Some(BitsMut::new(&mut mask)))?;

    let bits: Vec<u8> = MaskRef::new(&mask, 6)?.iter().map(u8::from).collect();
    println!(
        "mask (1 = kept), one bit per element: {bits:?} = word {:#b}",
        mask[0]
    );
    print_matrix("y = dropout(x)", &y);

    // Backward: the gradient flows only through kept elements, scaled the same way.
    let gy = [1.0f32; 6];
    let mut gx = [0.0f32; 6];
    record.backward(Io::Out { x: &gy, y: &mut gx }, Some(Bits::new(&mask)))?;
    print_matrix("dL/dx from the stored mask (dL/dy = 1)", &gx);

    // Or store nothing: the record (seed, offset, p, len) regenerates the mask.
    let mut gx2 = [0.0f32; 6];
    record.backward(
        Io::Out {
            x: &gy,
            y: &mut gx2,
        },
        None,
    )?;
    assert_eq!(gx, gx2);
    println!(
        "backward by recompute from (seed, offset = {}, p = {}): identical",
        record.offset, record.p
    );

    // The next call draws fresh words: the layer's offset advanced by 6.
    let mut y2 = [0.0f32; 6];
    layer.forward(Io::Out { x: &x, y: &mut y2 }, None)?;
    print_matrix(&format!("next call (offset {})", record.offset + 6), &y2);

    // Any call can be replayed from its record, bit for bit.
    let mut replay = [0.0f32; 6];
    record.forward(
        Io::Out {
            x: &x,
            y: &mut replay,
        },
        None,
    )?;
    assert_eq!(replay, y);
    println!("replay of the first call: identical to y");

    // Node (column) dropout: one decision per column, broadcast over the rows. The mask
    // has 3 bits, and the call draws 3 words.
    println!();
    let shape = Shape::columns(2, 3);
    let mut cols_mask = [0u64; 1];
    let before = layer.offset();
    let rec = layer.reserve(Op::Broadcast(shape), x.len())?;
    rec.forward(
        Io::Out { x: &x, y: &mut y },
        Some(BitsMut::new(&mut cols_mask)),
    )?;
    let bits: Vec<u8> = MaskRef::new(&cols_mask, 3)?.iter().map(u8::from).collect();
    println!("node dropout, column mask (1 = kept): {bits:?}");
    print_matrix("y = node_dropout(x)", &y);
    let mut gcols = [0.0f32; 6];
    rec.backward(
        Io::Out {
            x: &gy,
            y: &mut gcols,
        },
        Some(Bits::new(&cols_mask)),
    )?;
    print_matrix("dL/dx (dL/dy = 1)", &gcols);
    println!(
        "offset advanced by {} (one word per column)",
        layer.offset() - before
    );

    // Eval mode is the identity.
    layer.eval();
    layer.forward(Io::Out { x: &x, y: &mut y2 }, None)?;
    assert_eq!(y2, x);
    println!("eval mode: y = x");
    Ok(())
}
