//! flex's values where they lie, for the loops that read and write them
//! (winograd.rs, activation.rs, training/adam.rs): a tensor's buffer as a
//! slice, copied only when it must be, and work spread over the cores.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::prelude::*;
use std::mem::MaybeUninit;

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
pub fn each_chunk<T: Send>(values: &mut [T], len: usize, f: impl Fn(usize, &mut [T]) + Sync) {
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

/// `len` values that `fill` writes in `chunk`-long chunks, as [`each_chunk`]
/// runs it, without zeroing them first (a pass over memory that the writes
/// make needless).
///
/// # Safety
/// `fill` must write every value of every chunk.
pub unsafe fn written(
    len: usize,
    chunk: usize,
    fill: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync,
) -> Vec<f32> {
    let mut values = Vec::with_capacity(len);
    each_chunk(&mut values.spare_capacity_mut()[..len], chunk, fill);
    // SAFETY: `fill` wrote every value (the caller's promise).
    unsafe { values.set_len(len) };
    values
}

/// `lhs · rhs`, `[b, m, k] · [b, k, n]` on flex, either side a strided view,
/// into a buffer that nobody zeroes or copies: flex's `matmul` zeroes its
/// output, then copies it whole to align it (~10% of a forward pass at batch
/// 256 natively). The same gemm and the same split over the cores as flex's
/// `matmul`: four or more matrices side by side, fewer each over the cores.
///
/// # Panics
/// If the shapes do not chain, or either side is not f32 on flex.
pub fn product(lhs: Tensor<3>, rhs: Tensor<3>) -> Tensor<3> {
    let ([batch, m, k], [rhs_batch, rhs_k, n]) = (lhs.dims(), rhs.dims());
    assert!(
        batch == rhs_batch && k == rhs_k,
        "product of {:?} and {:?}",
        lhs.dims(),
        rhs.dims()
    );
    let device = lhs.device();
    if k == 0 {
        return Tensor::zeros([batch, m, n], &device);
    }
    let (lhs, rhs) = (
        lhs.try_into_primitive::<Flex>().expect("a tensor on flex"),
        rhs.try_into_primitive::<Flex>().expect("a tensor on flex"),
    );
    let (l, r) = (Operand::of(&lhs), Operand::of(&rhs));
    let size = m * n;
    let mut out: Vec<f32> = Vec::with_capacity(batch * size);
    let matrix = |b: usize, dst: *mut f32, parallelism| {
        // SAFETY: `dst` holds `m × n` values (row stride `n`); every
        // element of `lhs` and `rhs` it reads lies inside their buffers
        // (their layouts say so); with `read_dst` false gemm only writes it.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                dst,
                1,
                n as isize,
                false,
                l.matrix(b),
                l.strides[2],
                l.strides[1],
                r.matrix(b),
                r.strides[2],
                r.strides[1],
                0.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
    };
    let spare = &mut out.spare_capacity_mut()[..batch * size];
    #[cfg(not(target_family = "wasm"))]
    if batch >= 4 && batch * m * n * k >= 128 * 128 * 128 {
        use rayon::prelude::*;
        spare
            .par_chunks_mut(size.max(1))
            .enumerate()
            .for_each(|(b, dst)| matrix(b, dst.as_mut_ptr().cast(), gemm::Parallelism::None));
    } else {
        let parallelism = if m * n * k >= 192 * 192 * 192 {
            gemm::Parallelism::Rayon(0)
        } else {
            gemm::Parallelism::None
        };
        for (b, dst) in spare.chunks_mut(size.max(1)).enumerate() {
            matrix(b, dst.as_mut_ptr().cast(), parallelism);
        }
    }
    #[cfg(target_family = "wasm")]
    for (b, dst) in spare.chunks_mut(size.max(1)).enumerate() {
        matrix(b, dst.as_mut_ptr().cast(), gemm::Parallelism::None);
    }
    // SAFETY: gemm wrote every one of the `batch × m × n` values.
    unsafe { out.set_len(batch * size) };
    Tensor::from_data(TensorData::new(out, [batch, m, n]), &device)
}

/// One side of [`product`]: its buffer from its first value, and its strides.
struct Operand<'a> {
    values: &'a [f32],
    strides: [isize; 3],
}

impl<'a> Operand<'a> {
    fn of(x: &'a FlexTensor) -> Self {
        let layout = x.layout();
        let strides = layout.strides();
        Self {
            values: &x.storage::<f32>()[layout.start_offset()..],
            strides: [strides[0], strides[1], strides[2]],
        }
    }

    /// Where matrix `b` starts.
    fn matrix(&self, b: usize) -> *const f32 {
        self.values[b * self.strides[0] as usize..].as_ptr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::max_abs_diff;
    use burn::tensor::Distribution;

    fn values(x: Tensor<3>) -> Vec<f32> {
        x.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn product_equals_flex_matmul_on_views_and_every_split() {
        let device = Device::flex();
        let random = |shape: [usize; 3]| Tensor::<3>::random(shape, Distribution::Default, &device);
        // Few matrices each over the cores, many side by side, small ones on
        // one core; each side also as a transposed view.
        for [batch, m, k, n] in [[1, 300, 200, 260], [6, 140, 130, 120], [2, 5, 3, 4]] {
            let (lhs, rhs) = (random([batch, m, k]), random([batch, k, n]));
            let expected = values(lhs.clone().matmul(rhs.clone()));
            let views = (
                random([batch, k, m]).swap_dims(1, 2),
                random([k, batch, n]).swap_dims(0, 1),
            );
            let expected_views = values(views.0.clone().matmul(views.1.clone()));
            assert!(max_abs_diff(&values(product(lhs, rhs)), &expected) < 1e-5);
            assert!(max_abs_diff(&values(product(views.0, views.1)), &expected_views) < 1e-5);
        }
        let empty = product(random([2, 3, 0]), random([2, 0, 4]));
        assert_eq!(values(empty), vec![0.0; 24]);
    }
}
