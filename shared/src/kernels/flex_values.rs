//! flex's values where they lie, for the loops that read and write them
//! (winograd.rs, activation.rs, training/adam.rs): a tensor's buffer as a
//! slice, copied only when it must be, and work spread over the cores.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::prelude::*;

/// `x` as flex holds it, contiguous: copied only if `x` is a strided view.
/// (`into_data` copies whenever another tensor shares the buffer, as the
/// residual connection shares every convolution's input: 9–10 ms of a
/// block-1 convolution at batch 256.)
///
/// # Panics
/// If `x` is not on flex: callers test the device first.
pub fn contiguous<const D: usize>(x: Tensor<D>) -> FlexTensor {
    let x = x.try_into_primitive::<Flex>().expect("a tensor on flex");
    if x.as_slice::<f32>().is_some() {
        x
    } else {
        x.to_contiguous()
    }
}

/// The values of a contiguous f32 tensor.
pub fn slice(x: &FlexTensor) -> &[f32] {
    x.as_slice().expect("contiguous f32 values")
}

/// `x`'s values in a buffer of its own, to be written in place
/// (`try_storage_mut` succeeds): copied if another tensor shares them.
pub fn owned<const D: usize>(x: Tensor<D>) -> FlexTensor {
    let x = contiguous(x);
    if x.is_unique() && x.bytes().len() == x.layout().num_elements() * size_of::<f32>() {
        return x;
    }
    let values = slice(&x).to_vec();
    FlexTensor::from_data(TensorData::new(values, x.layout().shape().clone()))
}

/// `f(i, chunk)` on the `i`-th `len`-long chunk of `values`: on every core
/// natively, one after the other in the browser.
pub fn each_chunk(values: &mut [f32], len: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    #[cfg(not(target_family = "wasm"))]
    {
        use rayon::prelude::*;
        values
            .par_chunks_mut(len)
            .enumerate()
            .for_each(|(i, chunk)| f(i, chunk));
    }
    #[cfg(target_family = "wasm")]
    values
        .chunks_mut(len)
        .enumerate()
        .for_each(|(i, chunk)| f(i, chunk));
}
