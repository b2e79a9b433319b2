//! Attention pooling: "windows of p positions are summed with softmax weights
//! given by a 1x1 convolution".

use crate::kernels::activation::softmax_pool;
use burn::module::Param;
use burn::prelude::*;

use crate::kernels::dense::{glorot, linear};

/// Configuration of an [`AttentionPool`].
#[derive(Config, Debug)]
pub struct AttentionPoolConfig {
    /// Channels in and out.
    pub channels: usize,
    /// Window width p.
    pub pool: usize,
}

impl AttentionPoolConfig {
    /// Builds the pool.
    pub fn init(&self, device: &Device) -> AttentionPool {
        AttentionPool {
            weight: glorot([self.channels, self.channels], device),
            pool: self.pool,
        }
    }
}

/// Softmax-weighted sum over non-overlapping windows, separately per channel;
/// the last `length mod p` positions are dropped.
///
/// # Shapes
/// - input: `[batch, length, channels]`, output: `[batch, length / p, channels]`
#[derive(Module, Debug)]
pub struct AttentionPool {
    /// 1x1-convolution weight `[channels, channels]`, no bias.
    pub weight: Param<Tensor<2>>,
    /// Window width p.
    pub pool: usize,
}

impl AttentionPool {
    /// Pools `x`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [batch, length, channels] = x.dims();
        let windows = length / self.pool;
        let x = x
            .narrow(1, 0, windows * self.pool)
            .reshape([batch, windows, self.pool, channels]);
        let logits = linear(x.clone(), self.weight.val(), None);
        softmax_pool(x, logits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_logits_average_each_window_and_drop_the_tail() {
        let device = Device::flex();
        let pool = AttentionPool {
            weight: Param::from_data([[0.0]], &device),
            pool: 2,
        };
        let x = Tensor::<3>::from_floats([[[1.0], [3.0], [5.0], [9.0], [100.0]]], &device);
        let y = pool.forward(x);
        assert_eq!(y.into_data().try_to_vec::<f32>().unwrap(), [2.0, 7.0]);
    }

    #[test]
    fn large_logits_pick_the_window_maximum() {
        let device = Device::flex();
        let pool = AttentionPool {
            weight: Param::from_data([[50.0]], &device),
            pool: 3,
        };
        let x = Tensor::<3>::from_floats([[[0.1], [0.9], [0.5]]], &device);
        let y = pool.forward(x).into_scalar::<f32>();
        assert!((y - 0.9).abs() < 1e-4, "{y}");
    }
}
