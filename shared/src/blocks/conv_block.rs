//! Convolution blocks 1–3: "[conv → BN → ReLU] → dilated residual stack →
//! attention pool", with dropout.

use burn::prelude::*;
use burn::tensor::activation::relu;

use crate::blocks::attention_pool::{AttentionPool, AttentionPoolConfig};
use crate::blocks::residual::{Residual, ResidualConfig};
use crate::kernels::conv::{Conv, ConvConfig};
use crate::kernels::dropout::Dropout;
use crate::kernels::norm::{BatchNorm, BatchNormConfig};

/// Configuration of a [`ConvBlock`].
#[derive(Config, Debug)]
pub struct ConvBlockConfig {
    /// Channels of the input.
    pub channels_in: usize,
    /// Channels of the block (entry conv's output, residual, pool).
    pub channels: usize,
    /// Kernel of the entry convolution; `None` for block 1, which has none.
    pub entry_kernel: Option<usize>,
    /// Block 2 applies a ReLU before its batch norm as well as after it.
    #[config(default = false)]
    pub relu_before_bn: bool,
    /// Block 1 drops out before its pool; blocks 2 and 3 after it.
    #[config(default = false)]
    pub dropout_before_pool: bool,
    /// Layers of the residual stack.
    pub res_layers: usize,
    /// Kernel of the residual convolutions.
    pub res_kernel: usize,
    /// Attention-pool window.
    pub pool: usize,
    /// The block's dropout.
    pub dropout: f64,
    /// Dropout inside the residual stack.
    pub dropout_residual: f64,
    /// Batch-norm momentum (Keras convention).
    pub bn_momentum: f64,
    /// Batch-norm epsilon.
    pub bn_epsilon: f64,
}

impl ConvBlockConfig {
    /// Builds the block.
    pub fn init(&self, device: &Device) -> ConvBlock {
        let bn = |channels| {
            BatchNormConfig::new(channels)
                .with_momentum(self.bn_momentum)
                .with_epsilon(self.bn_epsilon)
                .init(device)
        };
        ConvBlock {
            conv: self
                .entry_kernel
                .map(|k| ConvConfig::new(self.channels_in, self.channels, k).init(device)),
            bn: self.entry_kernel.map(|_| bn(self.channels)),
            res: ResidualConfig::new(self.channels, self.res_layers)
                .with_kernel(self.res_kernel)
                .with_dropout(self.dropout_residual)
                .with_bn_momentum(self.bn_momentum)
                .with_bn_epsilon(self.bn_epsilon)
                .init(device),
            pool: AttentionPoolConfig::new(self.channels, self.pool).init(device),
            dropout: Dropout::new(self.dropout),
            relu_before_bn: self.relu_before_bn,
            dropout_before_pool: self.dropout_before_pool,
        }
    }
}

/// One convolution block.
///
/// - block 1: `pool(dropout(res(x)))`
/// - block 2: `dropout(pool(res(relu(bn(relu(conv(x)))))))`
/// - block 3: `dropout(pool(res(relu(bn(conv(x))))))`
///
/// # Shapes
/// - input: `[batch, length, channels_in]`, output: `[batch, length / pool, channels]`
#[derive(Module, Debug)]
pub struct ConvBlock {
    /// Entry convolution (blocks 2 and 3).
    pub conv: Option<Conv>,
    /// Batch norm after the entry convolution.
    pub bn: Option<BatchNorm>,
    /// Dilated residual stack.
    pub res: Residual,
    /// Attention pool.
    pub pool: AttentionPool,
    /// The block's dropout.
    pub dropout: Dropout,
    /// ReLU before the batch norm too (block 2).
    pub relu_before_bn: bool,
    /// Dropout before rather than after the pool (block 1).
    pub dropout_before_pool: bool,
}

impl ConvBlock {
    /// Applies the block.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let mut h = x;
        if let (Some(conv), Some(bn)) = (&self.conv, &self.bn) {
            h = if self.relu_before_bn {
                bn.forward(relu(conv.forward(h)))
            } else {
                conv.forward_bn(h, bn)
            };
            h = relu(h);
        }
        h = self.res.forward(h);
        if self.dropout_before_pool {
            self.pool.forward(self.dropout.forward(h))
        } else {
            self.dropout.forward(self.pool.forward(h))
        }
    }
}
