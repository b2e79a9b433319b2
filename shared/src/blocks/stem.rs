//! Stem: "a convolution applied to the sequence and, with the same weights,
//! to its reverse complement, followed by batch norm and an exponential".

use burn::prelude::*;

use crate::kernels::activation;
use crate::kernels::conv::{Conv, ConvConfig};
use crate::kernels::norm::{BatchNorm, BatchNormConfig};

/// Configuration of the [`Stem`].
#[derive(Config, Debug)]
pub struct StemConfig {
    /// Filters per strand; the stem emits twice as many channels.
    pub filters: usize,
    /// Kernel width.
    pub kernel: usize,
    /// Batch-norm momentum (Keras convention).
    pub bn_momentum: f64,
    /// Batch-norm epsilon.
    pub bn_epsilon: f64,
}

impl StemConfig {
    /// Builds the stem.
    pub fn init(&self, device: &Device) -> Stem {
        Stem {
            conv: ConvConfig::new(4, self.filters, self.kernel).init(device),
            bn: BatchNormConfig::new(2 * self.filters)
                .with_momentum(self.bn_momentum)
                .with_epsilon(self.bn_epsilon)
                .init(device),
        }
    }
}

/// Reverse-complement-tied convolution, then batch norm, then `exp`.
///
/// The reverse-complement twin of a kernel flips it on its base axis
/// (A,C,G,T → T,G,C,A) and its width, so channel `f + filters` answers the
/// reverse strand exactly as channel `f` answers the forward one.
///
/// # Shapes
/// - input: `[batch, length, 4]` one-hot, output: `[batch, length, 2·filters]`
#[derive(Module, Debug)]
pub struct Stem {
    /// The shared kernel `[filters, 4, kernel]` and bias.
    pub conv: Conv,
    /// Batch norm over both strands' channels.
    pub bn: BatchNorm,
}

impl Stem {
    /// Applies the stem.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [filters, _, _] = self.conv.weight.dims();
        assert_shape!(x, [_, _, 4]);
        let h = self.conv.forward_derived_bn(x, &self.bn, |weight, bias| {
            let tied = Tensor::cat(vec![weight.clone(), weight.flip([1, 2])], 0);
            (tied, bias.map(|b| b.repeat_dim(0, 2)))
        });
        debug_assert_eq!(h.dims()[2], 2 * filters);
        activation::exp(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::{one_hot, reverse_complement};

    /// The reverse-strand channels equal the forward channels of the reverse
    /// complement, read backwards: the tie computed explicitly.
    #[test]
    fn reverse_channels_are_the_forward_channels_of_the_reverse_complement() {
        let device = Device::flex();
        device.seed(7);
        let stem = StemConfig::new(3, 5, 0.99, 1e-3).init(&device);
        let seq = "ACGTTGCAAGGN";
        let rc = reverse_complement(seq).unwrap();
        let x = Tensor::<3>::from_data(one_hot(&[seq], seq.len()).unwrap(), &device);
        let x_rc = Tensor::<3>::from_data(one_hot(&[&rc], seq.len()).unwrap(), &device);
        let h = stem.forward(x);
        let h_rc = stem.forward(x_rc);
        let reverse = h.slice(s![.., .., 3..6]);
        let forward_of_rc = h_rc.slice(s![.., .., 0..3]).flip([1]);
        let diff = crate::tensor_max_abs_diff(reverse, forward_of_rc);
        assert!(diff < 1e-5, "largest difference {diff}");
    }

    #[test]
    fn output_is_positive_with_both_strands() {
        let device = Device::flex();
        let stem = StemConfig::new(6, 7, 0.99, 1e-3).init(&device);
        let h = stem.forward(Tensor::zeros([2, 10, 4], &device));
        assert_eq!(h.dims(), [2, 10, 12]);
        assert!(h.min().into_scalar::<f32>() > 0.0);
    }
}
