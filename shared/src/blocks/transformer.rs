//! Transformer layer: "multi-head attention with Enformer's relative positions,
//! then a feed-forward of two 1x1 convolutions, each with a residual and layer norm".

use burn::module::{Initializer, Param};
use burn::prelude::*;
use burn::tensor::activation::{relu, softmax};

use crate::blocks::relative_position::relative_position_basis;
use crate::kernels::dense::{Dense, DenseConfig};
use crate::kernels::dropout::Dropout;
use crate::kernels::norm::{LayerNorm, LayerNormConfig};

/// Configuration of a [`TransformerLayer`].
#[derive(Config, Debug)]
pub struct TransformerConfig {
    /// Positions L.
    pub length: usize,
    /// Model width d.
    pub width: usize,
    /// Heads; each is `width / heads` wide.
    pub heads: usize,
    /// Hidden width of the feed-forward.
    pub ffn_width: usize,
    /// Dropout on the attention output, the feed-forward and the position basis.
    pub dropout: f64,
    /// Layer-norm epsilon.
    pub ln_epsilon: f64,
}

impl TransformerConfig {
    /// Builds the layer.
    pub fn init(&self, device: &Device) -> TransformerLayer {
        let d = self.width;
        let projection = || DenseConfig::new(d, d).with_bias(false).init(device);
        let head_dim = d / self.heads;
        let basis = relative_position_basis(self.length, d);
        TransformerLayer {
            mha: RelativeAttention {
                wq: projection(),
                wk: projection(),
                wv: projection(),
                r_k: projection(),
                r_w: Initializer::Zeros.init([self.heads, head_dim], device),
                r_r: Initializer::Zeros.init([self.heads, head_dim], device),
                out: DenseConfig::new(d, d).init(device),
                posenc: Tensor::from_data(TensorData::new(basis, [2 * self.length - 1, d]), device),
                dropout: Dropout::new(self.dropout),
            },
            ln1: LayerNormConfig::new(d)
                .with_epsilon(self.ln_epsilon)
                .init(device),
            ffn: FeedForward {
                conv1: DenseConfig::new(d, self.ffn_width).init(device),
                conv2: DenseConfig::new(self.ffn_width, d).init(device),
            },
            ln2: LayerNormConfig::new(d)
                .with_epsilon(self.ln_epsilon)
                .init(device),
            dropout: Dropout::new(self.dropout),
        }
    }
}

/// `h = ln1(h + dropout(mha(h)))`; `h = ln2(h + dropout(conv2(relu(dropout(conv1(h))))))`.
///
/// # Shapes
/// - input and output: `[batch, length, width]`
#[derive(Module, Debug)]
pub struct TransformerLayer {
    /// Multi-head attention with relative positions.
    pub mha: RelativeAttention,
    /// Layer norm after the attention residual.
    pub ln1: LayerNorm,
    /// Position-wise feed-forward.
    pub ffn: FeedForward,
    /// Layer norm after the feed-forward residual.
    pub ln2: LayerNorm,
    /// Dropout on the attention output and inside the feed-forward.
    pub dropout: Dropout,
}

impl TransformerLayer {
    /// Applies the layer.
    pub fn forward(&self, h: Tensor<3>) -> Tensor<3> {
        let h = self
            .ln1
            .forward(h.clone() + self.dropout.forward(self.mha.forward(h)));
        let f = self.dropout.forward(self.ffn.conv1.forward(h.clone()));
        let f = self.dropout.forward(self.ffn.conv2.forward(relu(f)));
        self.ln2.forward(h + f)
    }
}

/// The feed-forward's two 1x1 convolutions (per-position linear maps).
#[derive(Module, Debug)]
pub struct FeedForward {
    /// `width → ffn_width`, followed by ReLU.
    pub conv1: Dense,
    /// `ffn_width → width`.
    pub conv2: Dense,
}

/// Enformer-style multi-head attention with relative positions.
///
/// `content[i,j] = (q_i + r_w)·k_j`, `relative[i,j] = (q_i + r_r)·r[j - i + L - 1]`
/// with `r = posenc · r_kᵀ`; softmax over j of their sum weighs `v`.
///
/// # Shapes
/// - input and output: `[batch, length, width]`
#[derive(Module, Debug)]
pub struct RelativeAttention {
    /// Query projection `[d, d]`.
    pub wq: Dense,
    /// Key projection `[d, d]`.
    pub wk: Dense,
    /// Value projection `[d, d]`.
    pub wv: Dense,
    /// Projection of the position basis `[d, d]`.
    pub r_k: Dense,
    /// Content bias `[heads, head_dim]`.
    pub r_w: Param<Tensor<2>>,
    /// Position bias `[heads, head_dim]`.
    pub r_r: Param<Tensor<2>>,
    /// Output projection `[d, d]` with bias.
    pub out: Dense,
    /// Relative-position basis `[2L-1, d]`: a constant, not a parameter.
    pub posenc: Tensor<2>,
    /// Dropout on the position basis.
    pub dropout: Dropout,
}

impl RelativeAttention {
    /// Attends.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [batch, length, width] = x.dims();
        let [heads, head_dim] = self.r_w.dims();
        let [offsets, _] = self.posenc.dims();
        assert_eq!(
            offsets,
            2 * length - 1,
            "attention was built for {} positions, input has {length}",
            offsets.div_ceil(2)
        );
        // [batch, L, d] -> [batch, heads, L, head_dim]
        let split = |t: Tensor<3>| t.reshape([batch, length, heads, head_dim]).swap_dims(1, 2);
        let bias = |b: &Param<Tensor<2>>| b.val().reshape([1, heads, 1, head_dim]);

        let q = split(self.wq.forward(x.clone())) / (head_dim as f64).sqrt();
        let k = split(self.wk.forward(x.clone()));
        let v = split(self.wv.forward(x));
        let posenc = self
            .dropout
            .forward(self.posenc.clone().to_device(&q.device()));
        // Positions' keys per head: [heads, offsets, head_dim].
        let r = self
            .r_k
            .forward(posenc)
            .reshape([offsets, heads, head_dim])
            .swap_dims(0, 1);

        let content = (q.clone() + bias(&self.r_w)).matmul(k.swap_dims(2, 3));
        // One matmul per head over all queries of the batch: [heads, batch·L, offsets].
        // (An `expand` of r over the batch gave r_k gradients on which flex and wgpu disagreed.)
        let relative_all = (q + bias(&self.r_r))
            .swap_dims(0, 1)
            .reshape([heads, batch * length, head_dim])
            .matmul(r.swap_dims(1, 2))
            .reshape([heads, batch, length, offsets])
            .swap_dims(0, 1);
        // Row i keeps offsets j - i for j = 0..L: columns L-1-i .. 2L-1-i.
        let relative = Tensor::cat(
            (0..length)
                .map(|i| {
                    relative_all.clone().slice(s![
                        ..,
                        ..,
                        i..i + 1,
                        length - 1 - i..2 * length - 1 - i
                    ])
                })
                .collect(),
            2,
        );
        let attention = softmax(content + relative, 3);
        let o = attention
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([batch, length, width]);
        self.out.forward(o)
    }
}
