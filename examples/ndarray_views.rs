//! Dropout on ndarray views, one call each: a contiguous array, a sliced view and a
//! transposed view. Each result equals, bit for bit, dropout of the view's contiguous copy;
//! a slice of a batch can also keep the positions (and so the masks) of the whole batch.
//!
//! `cargo run --example ndarray_views`

use ndarray::{Array2, ArrayView, Dimension, s};
use simd_dropout::{Backend, Error, Io, Seed, Strided, View};

/// The glue: an ndarray view of `buf` as a crate view (shape, strides, first element).
fn view_of<D: Dimension>(buf: &[f32], v: &ArrayView<'_, f32, D>) -> Result<View, Error> {
    let base = (v.as_ptr() as usize - buf.as_ptr() as usize) / size_of::<f32>();
    View::strided(v.shape(), v.strides(), base)
}

fn main() -> Result<(), Error> {
    let (p, seed, b) = (0.5, Seed::from_u64(2024), Backend::detect());
    let a = Array2::from_shape_fn((6, 8), |(i, j)| (i * 8 + j) as f32 + 1.0);
    let buf = a.as_slice().expect("a fresh array is contiguous");
    let views = [
        ("contiguous", a.view()),
        ("sliced [1..5, ..;2]", a.slice(s![1..5, ..;2])),
        ("transposed", a.t()),
    ];
    for (name, v) in views {
        let view = view_of(buf, &v)?;
        let mut y = vec![0.0f32; view.len()];
        let io = Strided::Out {
            x: buf,
            x_view: view,
            y: &mut y,
            y_view: view.compact(),
        };
        b.strided_forward(p, seed, 0, io, None)?;
        // The same call on the view's contiguous copy.
        let copy: Vec<f32> = v.iter().copied().collect();
        let mut want = vec![0.0f32; copy.len()];
        b.forward(
            p,
            seed,
            0,
            Io::Out {
                x: &copy,
                y: &mut want,
            },
            None,
        )?;
        assert_eq!(y, want);
        let kept = y.iter().filter(|&&v| v != 0.0).count();
        println!(
            "{name:>20}: {:?}, {kept} of {} kept, equal to its copy",
            v.shape(),
            y.len()
        );
    }
    // Rows 2..4 of the batch, with the words those rows get in the whole batch.
    let rows = a.slice(s![2..4, ..]);
    let shard = view_of(buf, &rows)?.within(&[2, 0], a.shape())?;
    let mut y = vec![0.0f32; shard.len()];
    let io = Strided::Out {
        x: buf,
        x_view: shard,
        y: &mut y,
        y_view: shard.compact(),
    };
    b.strided_forward(p, seed, 0, io, None)?;
    let mut whole = vec![0.0f32; a.len()];
    b.forward(
        p,
        seed,
        0,
        Io::Out {
            x: buf,
            y: &mut whole,
        },
        None,
    )?;
    assert_eq!(y, whole[16..32]);
    println!(
        "{:>20}: rows 2..4 equal those rows of the whole batch's dropout",
        "window"
    );
    Ok(())
}
