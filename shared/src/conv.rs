//! The one convolution every block uses: 1-D, 'same' zero padding, channels last.
//!
//! It is written as im2col + one matrix product rather than burn's `conv1d`,
//! whose kernels were ~10× slower on the GPU for these shapes (see TOOLCHAIN.md);
//! a faster kernel replaces [`conv1d_same`] here and every block follows.

use burn::module::{Initializer, Param};
use burn::prelude::*;
use burn::tensor::ops::PadMode;

/// Configuration of a [`Conv`].
#[derive(Config, Debug)]
pub struct ConvConfig {
    /// Input channels.
    pub channels_in: usize,
    /// Output channels.
    pub channels_out: usize,
    /// Kernel width; odd, so that 'same' padding is symmetric.
    pub kernel: usize,
    /// Spacing between kernel taps.
    #[config(default = 1)]
    pub dilation: usize,
    /// Whether a bias is added.
    #[config(default = true)]
    pub bias: bool,
}

impl ConvConfig {
    /// A convolution with Keras' Glorot-uniform weights and zero bias.
    pub fn init(&self, device: &Device) -> Conv {
        let fan_in = self.channels_in * self.kernel;
        let fan_out = self.channels_out * self.kernel;
        let weight = Initializer::XavierUniform { gain: 1.0 }.init_with(
            [self.channels_out, self.channels_in, self.kernel],
            Some(fan_in),
            Some(fan_out),
            device,
        );
        let bias = self
            .bias
            .then(|| Initializer::Zeros.init([self.channels_out], device));
        Conv {
            weight,
            bias,
            dilation: self.dilation,
        }
    }
}

/// A 1-D convolution with 'same' zero padding on `[batch, length, channels]`.
///
/// # Shapes
/// - weight: `[out, in, kernel]` (PyTorch's layout, the golden file's)
/// - input: `[batch, length, in]`, output: `[batch, length, out]`
#[derive(Module, Debug)]
pub struct Conv {
    /// Kernel `[out, in, kernel]`.
    pub weight: Param<Tensor<3>>,
    /// Bias `[out]`.
    pub bias: Option<Param<Tensor<1>>>,
    /// Spacing between kernel taps.
    pub dilation: usize,
}

impl Conv {
    /// Applies the convolution.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        conv1d_same(
            x,
            self.weight.val(),
            self.bias.as_ref().map(|b| b.val()),
            self.dilation,
        )
    }
}

/// `y[b, l, o] = bias[o] + Σ_{t, c} x[b, l + (t - (k-1)/2)·dilation, c] · w[o, c, t]`,
/// with zeros outside the sequence.
///
/// # Shapes
/// - x: `[batch, length, in]`, weight: `[out, in, kernel]`, bias: `[out]`
/// - output: `[batch, length, out]`
///
/// # Panics
/// If the kernel is even or the channel counts disagree.
pub fn conv1d_same(
    x: Tensor<3>,
    weight: Tensor<3>,
    bias: Option<Tensor<1>>,
    dilation: usize,
) -> Tensor<3> {
    let [batch, length, channels_in] = x.dims();
    let [channels_out, weight_in, kernel] = weight.dims();
    assert_eq!(
        weight_in, channels_in,
        "conv weight expects {weight_in} input channels, input has {channels_in}"
    );
    assert!(kernel % 2 == 1, "conv kernel must be odd, got {kernel}");
    let pad = dilation * (kernel - 1) / 2;

    // Columns: the kernel's taps side by side on the channel axis, tap-major,
    // matching the weight permuted to [kernel, in, out].
    let x = x.pad([(0, 0), (pad, pad), (0, 0)], PadMode::Constant(0.0));
    let taps: Vec<_> = (0..kernel)
        .map(|t| x.clone().narrow(1, t * dilation, length))
        .collect();
    let columns = Tensor::cat(taps, 2).reshape([batch * length, kernel * channels_in]);
    let weight = weight
        .permute([2, 1, 0])
        .reshape([kernel * channels_in, channels_out]);

    let mut y = columns.matmul(weight);
    if let Some(bias) = bias {
        y = y + bias.unsqueeze_dim(0);
    }
    y.reshape([batch, length, channels_out])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_hand_computed_dilated_case() {
        let device = Device::flex();
        // One channel in and out, kernel [1, 2, 3], dilation 2, bias 0.5.
        let x = Tensor::<3>::from_floats([[[1.0], [2.0], [3.0], [4.0], [5.0]]], &device);
        let w = Tensor::<3>::from_floats([[[1.0, 2.0, 3.0]]], &device);
        let b = Tensor::<1>::from_floats([0.5], &device);
        let y = conv1d_same(x, w, Some(b), 2);
        // y[l] = 1·x[l-2] + 2·x[l] + 3·x[l+2] + 0.5, zeros outside.
        let expected = [
            2.0 + 9.0 + 0.5,
            4.0 + 12.0 + 0.5,
            1.0 + 6.0 + 15.0 + 0.5,
            2.0 + 8.0 + 0.5,
            3.0 + 10.0 + 0.5,
        ];
        let got = y.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(got, expected);
    }

    #[test]
    fn keeps_length_and_maps_channels() {
        let device = Device::flex();
        let conv = ConvConfig::new(5, 7, 9).with_dilation(3).init(&device);
        let y = conv.forward(Tensor::ones([2, 11, 5], &device));
        assert_eq!(y.dims(), [2, 11, 7]);
    }

    #[test]
    #[should_panic(expected = "conv weight expects 4 input channels, input has 3")]
    fn rejects_wrong_channels() {
        let device = Device::flex();
        let conv = ConvConfig::new(4, 2, 3).init(&device);
        conv.forward(Tensor::ones([1, 5, 3], &device));
    }
}
