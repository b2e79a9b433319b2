//! Per-position linear maps (dense layers and 1x1 convolutions) in PyTorch's layout.

use burn::module::{Initializer, Param};
use burn::prelude::*;
use burn::tensor::DType;

use crate::device::is_flex;
use crate::kernels::flex_values::product;
use crate::kernels::norm::per_channel;

/// Configuration of a [`Dense`].
#[derive(Config, Debug)]
pub struct DenseConfig {
    /// Input features.
    pub features_in: usize,
    /// Output features.
    pub features_out: usize,
    /// Whether a bias is added.
    #[config(default = true)]
    pub bias: bool,
}

impl DenseConfig {
    /// A dense layer with Keras' Glorot-uniform weights and zero bias.
    pub fn init(&self, device: &Device) -> Dense {
        Dense {
            weight: glorot([self.features_out, self.features_in], device),
            bias: self
                .bias
                .then(|| Initializer::Zeros.init([self.features_out], device)),
        }
    }
}

/// `y = x · Wᵀ + b` on the last axis.
///
/// **NOTE:** the weight is stored `[out, in]` as in PyTorch and the golden file
/// (burn's own `Linear` stores `[in, out]`), so weights load without transposes.
///
/// # Shapes
/// - input: `[..., in]`, output: `[..., out]`
#[derive(Module, Debug)]
pub struct Dense {
    /// Weight `[out, in]`.
    pub weight: Param<Tensor<2>>,
    /// Bias `[out]`.
    pub bias: Option<Param<Tensor<1>>>,
}

impl Dense {
    /// Applies the map to every position.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        linear(x, self.weight.val(), self.bias.as_ref().map(|b| b.val()))
    }
}

/// Glorot-uniform (Keras' default kernel initializer) for a `[out, in]` weight.
pub(crate) fn glorot(shape: [usize; 2], device: &Device) -> Param<Tensor<2>> {
    Initializer::XavierUniform { gain: 1.0 }.init_with(
        shape,
        Some(shape[1]),
        Some(shape[0]),
        device,
    )
}

/// `x · weightᵀ + bias` on the last axis of `x`; weight `[out, in]`.
pub(crate) fn linear<const D: usize>(
    x: Tensor<D>,
    weight: Tensor<2>,
    bias: Option<Tensor<1>>,
) -> Tensor<D> {
    let mut shape = x.dims();
    let features_in = shape[D - 1];
    let [features_out, weight_in] = weight.dims();
    assert_eq!(
        weight_in, features_in,
        "dense weight expects {weight_in} input features, input has {features_in}"
    );
    let rows = shape[..D - 1].iter().product();
    shape[D - 1] = features_out;
    let y = rows_product(x.reshape([rows, features_in]), weight.transpose()).reshape(shape);
    match bias {
        Some(bias) => y + per_channel(bias, shape),
        None => y,
    }
}

/// `x · w` (`[rows, k] · [k, n]`); on a GPU as one batched product of blocks
/// of rows with `w` shared ([`gpu_row_blocks`]); on flex in f32 outside
/// autodiff (neither side on an autodiff device) through [`product`].
pub(crate) fn rows_product(x: Tensor<2>, w: Tensor<2>) -> Tensor<2> {
    let [rows, k] = x.dims();
    let [_, n] = w.dims();
    let plain = |t: &Tensor<2>| !t.device().is_autodiff() && t.dtype() == DType::F32;
    match gpu_row_blocks(&x.device(), rows) {
        Some(blocks) => blocked_product(x, w, blocks),
        // `expand`, not `unsqueeze`: a view on flex, where `unsqueeze` of a
        // transposed weight (every dense layer's) copied it at every call,
        // two thirds of the transformer at batch 8.
        None if plain(&x) && plain(&w) => {
            product(x.expand([1, rows, k]), w.expand([1, k, n])).reshape([rows, n])
        }
        None => x.matmul(w),
    }
}

/// [`rows_product`] in `blocks` blocks of rows.
fn blocked_product(x: Tensor<2>, w: Tensor<2>, blocks: usize) -> Tensor<2> {
    let [rows, k] = x.dims();
    let [_, n] = w.dims();
    if blocks == 1 {
        return x.matmul(w);
    }
    x.reshape([blocks, rows / blocks, k])
        .matmul(w.unsqueeze::<3>())
        .reshape([rows, n])
}

/// Into how many blocks a product `rows` deep is split on `device`: `None` on
/// the CPU (flex), which multiplies fastest as it is; on a GPU the most, up to
/// 16, that divide `rows` evenly.
///
/// The gradient of a weight `w` is `xᵀ · grad`, a product `rows` deep (batch ×
/// positions, 113,664 at batch 1024) into a small `[k, n]`. burn's untuned GPU
/// matmul runs it on the few tiles `[k, n]` makes, each looping over every row:
/// 37 ms of the stem's 44 on an H100. In blocks, autodiff computes one `[k, n]`
/// per block side by side and sums them (split-K); the stem's forward +
/// backward took 11 ms (docs/BENCHMARKS.md).
pub(crate) fn gpu_row_blocks(device: &Device, rows: usize) -> Option<usize> {
    (!is_flex(device)).then(|| row_blocks(rows))
}

/// The most blocks, up to 16, that divide `rows` evenly (1 for no rows).
fn row_blocks(rows: usize) -> usize {
    const MAX_BLOCKS: usize = 16;
    (1..=MAX_BLOCKS.min(rows.max(1)))
        .rev()
        .find(|&b| rows.is_multiple_of(b))
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computes_x_times_w_transposed_plus_b() {
        let device = Device::flex();
        let dense = Dense {
            weight: Param::from_data([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], &device),
            bias: Some(Param::from_data([0.5, -0.5, 1.0], &device)),
        };
        let y = dense.forward(Tensor::<3>::from_floats([[[1.0, -1.0]]], &device));
        assert_eq!(y.dims(), [1, 1, 3]);
        assert_eq!(
            y.into_data().try_to_vec::<f32>().unwrap(),
            [-0.5, -1.5, 0.0]
        );
    }

    #[test]
    fn blocked_product_matches_one_product_in_value_and_gradient() {
        let device = Device::flex().autodiff();
        device.seed(3);
        let x = Tensor::<2>::random([12, 5], burn::tensor::Distribution::Default, &device)
            .require_grad();
        let w = Tensor::<2>::random([5, 3], burn::tensor::Distribution::Default, &device)
            .require_grad();
        let grads = |blocks| {
            let y = blocked_product(x.clone(), w.clone(), blocks);
            let g = (y.clone() * y.clone()).sum().backward();
            let grad = |t: &Tensor<2>| t.grad(&g).unwrap().into_data().try_to_vec::<f32>().unwrap();
            (
                y.into_data().try_to_vec::<f32>().unwrap(),
                grad(&x),
                grad(&w),
            )
        };
        let (y1, gx1, gw1) = grads(1);
        let (y4, gx4, gw4) = grads(4);
        for (a, b) in [(y1, y4), (gx1, gx4), (gw1, gw4)] {
            let diff = crate::metrics::max_abs_diff(&a, &b);
            assert!(diff < 1e-5, "largest difference {diff}");
        }
    }

    #[test]
    fn row_blocks_divide_the_rows_evenly() {
        // Batch 1024 × 111 positions, a batch, a prime batch (ISM's 331 rows), none.
        for (rows, blocks) in [(113_664, 16), (1024, 16), (12, 12), (331, 1), (0, 1)] {
            assert_eq!(row_blocks(rows), blocks, "{rows} rows");
        }
    }

    #[test]
    fn the_cpu_keeps_its_products_whole() {
        assert_eq!(gpu_row_blocks(&Device::flex(), 1024), None);
        assert_eq!(gpu_row_blocks(&Device::flex().autodiff(), 1024), None);
    }
}
