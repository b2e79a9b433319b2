//! The whole network, in the paper's order: stem → three convolution blocks →
//! transformer layer → dense head.

use burn::prelude::*;

use crate::blocks::conv_block::{ConvBlock, ConvBlockConfig};
use crate::blocks::head::{Head, HeadConfig};
use crate::blocks::stem::{Stem, StemConfig};
use crate::blocks::transformer::{TransformerConfig, TransformerLayer};
use crate::config::ModelConfig;

/// A point of the forward pass whose activations the golden file records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// After the stem, `[B, L, 2·filters]`.
    Stem,
    /// After block 1.
    Block1,
    /// After block 2.
    Block2,
    /// After block 3.
    Block3,
    /// After the transformer layer.
    Transformer,
}

impl Stage {
    /// The golden file's name for this stage's activations (`trace.<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Stage::Stem => "stem",
            Stage::Block1 => "block1",
            Stage::Block2 => "block2",
            Stage::Block3 => "block3",
            Stage::Transformer => "transformer",
        }
    }
}

impl ModelConfig {
    /// Builds the network with fresh (Glorot-uniform) weights.
    ///
    /// # Panics
    /// If [`ModelConfig::validate`] fails.
    pub fn init(&self, device: &Device) -> Model {
        if let Err(problem) = self.validate() {
            panic!("invalid model config: {problem}");
        }
        let block = |channels_in, channels, res_layers, pool, dropout| {
            ConvBlockConfig::new(
                channels_in,
                channels,
                res_layers,
                self.res_kernel,
                pool,
                dropout,
                self.dropout_residual,
                self.bn_momentum,
                self.bn_epsilon,
            )
        };
        let c1 = self.block1_channels();
        let (c2, c3) = (self.block2_channels, self.block3_channels);
        Model {
            stem: StemConfig::new(
                self.stem_filters,
                self.stem_kernel,
                self.bn_momentum,
                self.bn_epsilon,
            )
            .init(device),
            block1: block(
                c1,
                c1,
                self.block1_res_layers,
                self.block1_pool,
                self.dropout_block1,
            )
            .with_dropout_before_pool(true)
            .init(device),
            block2: block(
                c1,
                c2,
                self.block2_res_layers,
                self.block2_pool,
                self.dropout_block2,
            )
            .with_entry_kernel(Some(self.block2_kernel))
            .with_relu_before_bn(true)
            .init(device),
            block3: block(
                c2,
                c3,
                self.block3_res_layers,
                self.block3_pool,
                self.dropout_block3,
            )
            .with_entry_kernel(Some(self.block3_kernel))
            .init(device),
            transformer: TransformerConfig::new(
                self.block3_len(),
                self.block3_channels,
                self.heads,
                self.ffn_width,
                self.dropout_transformer,
                self.ln_epsilon,
            )
            .init(device),
            head: HeadConfig::new(
                self.flat_width(),
                self.head_width,
                self.dropout_head,
                self.bn_momentum,
                self.bn_epsilon,
            )
            .init(device),
        }
    }
}

/// The HSAYN promoter-expression network.
///
/// On an autodiff device the model trains (dropout on, batch statistics);
/// elsewhere it is in eval mode.
///
/// # Shapes
/// - input: `[batch, seq_len, 4]` one-hot (A, C, G, T), output: `[batch, 1]`
#[derive(Module, Debug)]
pub struct Model {
    /// Reverse-complement-tied convolution + BN + exp.
    pub stem: Stem,
    /// Dilated residual stack + attention pool.
    pub block1: ConvBlock,
    /// Conv k9 + residual + attention pool.
    pub block2: ConvBlock,
    /// Conv k7 + residual + attention pool.
    pub block3: ConvBlock,
    /// One transformer layer with relative positions.
    pub transformer: TransformerLayer,
    /// Dense head.
    pub head: Head,
}

impl Model {
    /// Predicts expression.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        self.forward_observed(x, |_, _| {})
    }

    /// Predicts expression, showing each [`Stage`]'s activations to `observe`.
    pub fn forward_observed(
        &self,
        x: Tensor<3>,
        observe: impl FnMut(Stage, &Tensor<3>),
    ) -> Tensor<2> {
        self.head.forward(self.trunk(x, observe))
    }

    /// The head's last hidden layer and the prediction made from it, side by
    /// side: `[batch, head_width + 1]` (what quick fine-tuning reads).
    pub fn hidden_and_output(&self, x: Tensor<3>) -> Tensor<2> {
        let hidden = self.head.hidden(self.trunk(x, |_, _| {}));
        let output = self.head.out.forward(hidden.clone());
        Tensor::cat(vec![hidden, output], 1)
    }

    /// Everything before the head: the stem, the blocks and the transformer.
    fn trunk(&self, x: Tensor<3>, mut observe: impl FnMut(Stage, &Tensor<3>)) -> Tensor<3> {
        assert_shape!(x, [_, _, 4]);
        let mut h = x;
        let stages: [(Stage, &dyn Fn(Tensor<3>) -> Tensor<3>); 5] = [
            (Stage::Stem, &|h| self.stem.forward(h)),
            (Stage::Block1, &|h| self.block1.forward(h)),
            (Stage::Block2, &|h| self.block2.forward(h)),
            (Stage::Block3, &|h| self.block3.forward(h)),
            (Stage::Transformer, &|h| self.transformer.forward(h)),
        ];
        for (stage, apply) in stages {
            h = apply(h);
            observe(stage, &h);
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_has_the_papers_parameter_count() {
        let model = ModelConfig::new().init(&Device::flex());
        assert_eq!(model.num_params(), 4_688_321);
    }

    #[test]
    fn pooled_lengths_follow_the_input_length() {
        let config = ModelConfig::tiny().with_seq_len(150);
        assert_eq!(
            [
                config.block1_len(),
                config.block2_len(),
                config.block3_len()
            ],
            [37, 9, 4]
        );
        let model = config.init(&Device::flex());
        let mut shapes = Vec::new();
        let y = model.forward_observed(Tensor::zeros([2, 150, 4], &Device::flex()), |s, h| {
            shapes.push((s, h.dims()))
        });
        assert_eq!(y.dims(), [2, 1]);
        assert_eq!(shapes[1], (Stage::Block1, [2, 37, 16]));
        assert_eq!(shapes[4], (Stage::Transformer, [2, 4, 12]));
    }

    #[test]
    #[should_panic(expected = "invalid model config: seq_len 60 is too short")]
    fn a_single_transformer_position_is_rejected() {
        // 60 → 15 → 3 → 1 position: the relative-position basis would be NaN.
        ModelConfig::tiny().with_seq_len(60).init(&Device::flex());
    }

    #[test]
    #[should_panic(expected = "invalid model config: stem_kernel must be odd")]
    fn even_kernel_is_rejected() {
        ModelConfig::tiny()
            .with_stem_kernel(6)
            .init(&Device::flex());
    }
}
