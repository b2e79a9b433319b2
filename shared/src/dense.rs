//! Per-position linear maps (dense layers and 1x1 convolutions) in PyTorch's layout.

use burn::module::{Initializer, Param};
use burn::prelude::*;

use crate::norm::per_channel;

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
    let y = x
        .reshape([rows, features_in])
        .matmul(weight.transpose())
        .reshape(shape);
    match bias {
        Some(bias) => y + per_channel(bias, shape),
        None => y,
    }
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
}
