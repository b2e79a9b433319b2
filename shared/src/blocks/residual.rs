//! Dilated residual stack: "a stack of 3-wide convolutions with dilations
//! 1, 2, 4, ... whose sum with the input goes through a ReLU".

use burn::prelude::*;
use burn::tensor::activation::relu;

use crate::kernels::conv::{Conv, ConvConfig};
use crate::kernels::dropout::Dropout;
use crate::kernels::norm::{BatchNorm, BatchNormConfig};

/// Configuration of a [`Residual`] stack.
#[derive(Config, Debug)]
pub struct ResidualConfig {
    /// Channels in and out.
    pub channels: usize,
    /// Layers; layer `i` has dilation `2^i`.
    pub layers: usize,
    /// Kernel width of every layer.
    #[config(default = 3)]
    pub kernel: usize,
    /// Dropout before each dilated convolution (layers 1..).
    #[config(default = 0.1)]
    pub dropout: f64,
    /// Batch-norm momentum (Keras convention).
    #[config(default = 0.99)]
    pub bn_momentum: f64,
    /// Batch-norm epsilon.
    #[config(default = 1e-3)]
    pub bn_epsilon: f64,
}

impl ResidualConfig {
    /// Builds the stack: layer 0 without bias, the dilated ones with.
    pub fn init(&self, device: &Device) -> Residual {
        let convs = (0..self.layers)
            .map(|i| {
                ConvConfig::new(self.channels, self.channels, self.kernel)
                    .with_dilation(1 << i)
                    .with_bias(i > 0)
                    .init(device)
            })
            .collect();
        let bns = (0..self.layers)
            .map(|_| {
                BatchNormConfig::new(self.channels)
                    .with_momentum(self.bn_momentum)
                    .with_epsilon(self.bn_epsilon)
                    .init(device)
            })
            .collect();
        Residual {
            convs,
            bns,
            dropout: Dropout::new(self.dropout),
        }
    }
}

/// `h = bn0(conv0(x))`; `h = bn_i(conv_i(dropout(relu(h))))` for i ≥ 1; `relu(x + h)`.
///
/// # Shapes
/// - input and output: `[batch, length, channels]`
#[derive(Module, Debug)]
pub struct Residual {
    /// `conv{i}`: kernel 3, dilation `2^i`; `conv0` has no bias.
    pub convs: Vec<Conv>,
    /// `bn{i}`, after `conv{i}`.
    pub bns: Vec<BatchNorm>,
    /// Before each dilated convolution.
    pub dropout: Dropout,
}

impl Residual {
    /// Applies the stack.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let mut h = self.convs[0].forward_bn(x.clone(), &self.bns[0]);
        for (conv, bn) in self.convs.iter().zip(&self.bns).skip(1) {
            h = conv.forward_bn(self.dropout.forward(relu(h)), bn);
        }
        relu(x + h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dilations_double_and_only_layer_zero_lacks_bias() {
        let device = Device::flex();
        let res = ResidualConfig::new(4, 3).init(&device);
        let dilations: Vec<_> = res.convs.iter().map(|c| c.dilation).collect();
        assert_eq!(dilations, [1, 2, 4]);
        let biased: Vec<_> = res.convs.iter().map(|c| c.bias.is_some()).collect();
        assert_eq!(biased, [false, true, true]);
        let y = res.forward(Tensor::ones([2, 9, 4], &device));
        assert_eq!(y.dims(), [2, 9, 4]);
        assert!(y.min().into_scalar::<f32>() >= 0.0);
    }
}
