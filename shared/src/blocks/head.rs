//! Head: "the transformer output, flattened, goes through two dense layers with
//! batch norm and ReLU to one number".

use burn::prelude::*;
use burn::tensor::activation::relu;

use crate::kernels::dense::{Dense, DenseConfig};
use crate::kernels::dropout::Dropout;
use crate::kernels::norm::{BatchNorm, BatchNormConfig};

/// Configuration of the [`Head`].
#[derive(Config, Debug)]
pub struct HeadConfig {
    /// Flattened input width (positions × channels).
    pub features_in: usize,
    /// Width of both hidden layers.
    pub width: usize,
    /// Dropout after each ReLU.
    pub dropout: f64,
    /// Batch-norm momentum (Keras convention).
    pub bn_momentum: f64,
    /// Batch-norm epsilon.
    pub bn_epsilon: f64,
}

impl HeadConfig {
    /// Builds the head.
    pub fn init(&self, device: &Device) -> Head {
        let bn = || {
            BatchNormConfig::new(self.width)
                .with_momentum(self.bn_momentum)
                .with_epsilon(self.bn_epsilon)
                .init(device)
        };
        Head {
            fc1: DenseConfig::new(self.features_in, self.width).init(device),
            bn1: bn(),
            fc2: DenseConfig::new(self.width, self.width).init(device),
            bn2: bn(),
            out: DenseConfig::new(self.width, 1).init(device),
            dropout: Dropout::new(self.dropout),
        }
    }
}

/// `out(dropout(relu(bn2(fc2(dropout(relu(bn1(fc1(flatten(h))))))))))`.
///
/// # Shapes
/// - input: `[batch, length, channels]`, flattened position-major;
///   output: `[batch, 1]`
#[derive(Module, Debug)]
pub struct Head {
    /// First dense layer.
    pub fc1: Dense,
    /// Batch norm after `fc1`.
    pub bn1: BatchNorm,
    /// Second dense layer.
    pub fc2: Dense,
    /// Batch norm after `fc2`.
    pub bn2: BatchNorm,
    /// Output layer, one unit.
    pub out: Dense,
    /// After each ReLU.
    pub dropout: Dropout,
}

impl Head {
    /// Applies the head.
    pub fn forward(&self, h: Tensor<3>) -> Tensor<2> {
        self.out.forward(self.hidden(h))
    }

    /// The last hidden layer, `[batch, width]`: what `out` reads (quick
    /// fine-tuning re-fits `out` on it, [`crate::tune`]).
    pub fn hidden(&self, h: Tensor<3>) -> Tensor<2> {
        let [batch, length, channels] = h.dims();
        let z = h.reshape([batch, length * channels]);
        let z = self
            .dropout
            .forward(relu(self.bn1.forward(self.fc1.forward(z))));
        self.dropout
            .forward(relu(self.bn2.forward(self.fc2.forward(z))))
    }
}
