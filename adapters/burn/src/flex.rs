//! The kernels on burn's Flex CPU backend.

use crate::{Call, DropoutOps};
use burn::backend::ops::FloatTensorOps;
use burn::tensor::{DType, FloatDType, TensorData};
use burn_flex::{Flex, FlexTensor};
use simd_dropout::View;

impl DropoutOps for Flex {
    fn simd_dropout(x: FlexTensor, call: Call) -> FlexTensor {
        run(x, &call, false)
    }

    fn simd_dropout_backward(grad: FlexTensor, call: Call) -> FlexTensor {
        run(grad, &call, true)
    }
}

/// `call` on `x` for each float dtype the kernels take; any other float dtype runs in f32.
fn run(x: FlexTensor, call: &Call, backward: bool) -> FlexTensor {
    match x.dtype() {
        DType::F32 => typed::<f32>(&x, call, backward),
        DType::F64 => typed::<f64>(&x, call, backward),
        DType::F16 => typed::<half::f16>(&x, call, backward),
        DType::BF16 => typed::<half::bf16>(&x, call, backward),
        other => {
            let y = run(Flex::float_cast(x, FloatDType::F32), call, backward);
            match other {
                DType::F32 => y,
                _ => Flex::float_cast(y, FloatDType::from(other)),
            }
        }
    }
}

/// The output of `call` on the elements of `x` (read in place through its strides) in a new
/// contiguous tensor.
fn typed<T>(x: &FlexTensor, call: &Call, backward: bool) -> FlexTensor
where
    T: simd_dropout::Element + burn::tensor::Element + bytemuck::Pod,
{
    let layout = x.layout();
    let dims = layout.shape().to_vec();
    let view = View::strided(&dims, layout.strides(), layout.start_offset());
    let mut y = vec![T::ZERO; call.rec.len];
    match view {
        Ok(view) => call.run(x.storage::<T>(), view, &mut y, backward),
        // More dimensions than the crate's views take: read a contiguous copy.
        Err(_) => {
            let c = x.to_contiguous();
            let flat = View::contiguous(&[call.rec.len]).expect("one dimension");
            let (start, end) = c.layout().contiguous_offsets().expect("a contiguous copy");
            call.run(&c.storage::<T>()[start..end], flat, &mut y, backward);
        }
    }
    FlexTensor::from_data(TensorData::new(y, layout.shape().clone()))
}
