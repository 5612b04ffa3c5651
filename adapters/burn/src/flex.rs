//! The kernels on burn's Flex CPU backend.

use crate::{Call, DropoutOps};
use burn::backend::ops::FloatTensorOps;
use burn::tensor::{DType, FloatDType, TensorData};
use burn_flex::{Flex, FlexTensor};
use simd_dropout::{Strided, View};

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
        DType::F32 => typed::<f32>(x, call, backward),
        DType::F64 => typed::<f64>(x, call, backward),
        DType::F16 => typed::<half::f16>(x, call, backward),
        DType::BF16 => typed::<half::bf16>(x, call, backward),
        other => {
            let y = run(Flex::float_cast(x, FloatDType::F32), call, backward);
            Flex::float_cast(y, FloatDType::from(other))
        }
    }
}

/// The output of `call` on the elements of `x`: in place when `x` owns its contiguous buffer
/// (a fresh buffer costs more in page faults than the kernels take), else read in place
/// through its strides into a new contiguous tensor.
fn typed<T>(mut x: FlexTensor, call: &Call, backward: bool) -> FlexTensor
where
    T: simd_dropout::Element + burn::tensor::Element + bytemuck::Pod,
{
    let flat = View::contiguous(&[call.rec.len]).expect("one dimension");
    if let Some((start, end)) = x.layout().contiguous_offsets()
        && let Some(storage) = x.try_storage_mut::<T>()
    {
        call.run(
            Strided::InPlace {
                xy: &mut storage[start..end],
                view: flat,
            },
            backward,
        );
        return x;
    }
    let layout = x.layout();
    let dims = layout.shape().to_vec();
    let mut y = vec![T::ZERO; call.rec.len];
    match View::strided(&dims, layout.strides(), layout.start_offset()) {
        Ok(view) => {
            let (x, x_view, y_view) = (x.storage::<T>(), view, view.compact());
            call.run(
                Strided::Out {
                    x,
                    x_view,
                    y: &mut y,
                    y_view,
                },
                backward,
            );
        }
        // More dimensions than the crate's views take: read a contiguous copy.
        Err(_) => {
            let c = x.to_contiguous();
            let (start, end) = c.layout().contiguous_offsets().expect("a contiguous copy");
            let x = &c.storage::<T>()[start..end];
            call.run(
                Strided::Out {
                    x,
                    x_view: flat,
                    y: &mut y,
                    y_view: flat,
                },
                backward,
            );
        }
    }
    FlexTensor::from_data(TensorData::new(y, layout.shape().clone()))
}
