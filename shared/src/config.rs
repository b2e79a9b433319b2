//! The model's hyper-parameters. Every default is the seed model of the paper
//! ("High Schoolers Are All You Need", DREAM 2022); sizes that follow from them
//! (pooled lengths, flattened width) are methods, never stored.

use burn::prelude::*;

/// Hyper-parameters of the HSAYN network.
#[derive(Config, Debug, PartialEq)]
pub struct ModelConfig {
    /// Input length in bases; shorter sequences are right-padded with zeros.
    /// Default: 111 (the seed's window: 110-bp reads plus one).
    #[config(default = 111)]
    pub seq_len: usize,
    /// Filters of the stem convolution per strand (the stem emits twice this).
    /// Default: 192 (seed).
    #[config(default = 192)]
    pub stem_filters: usize,
    /// Kernel of the stem convolution. Default: 19 (seed).
    #[config(default = 19)]
    pub stem_kernel: usize,
    /// Kernel of every dilated residual convolution. Default: 3 (seed).
    #[config(default = 3)]
    pub res_kernel: usize,
    /// Residual layers in block 1 (dilations 1, 2, 4, ...). Default: 4 (seed).
    #[config(default = 4)]
    pub block1_res_layers: usize,
    /// Attention-pool window of block 1. Default: 4 (seed).
    #[config(default = 4)]
    pub block1_pool: usize,
    /// Channels of block 2. Default: 256 (seed).
    #[config(default = 256)]
    pub block2_channels: usize,
    /// Kernel of block 2's entry convolution. Default: 9 (seed).
    #[config(default = 9)]
    pub block2_kernel: usize,
    /// Residual layers in block 2. Default: 2 (seed).
    #[config(default = 2)]
    pub block2_res_layers: usize,
    /// Attention-pool window of block 2. Default: 4 (seed).
    #[config(default = 4)]
    pub block2_pool: usize,
    /// Channels of block 3, which is also the transformer's width. Default: 192 (seed).
    #[config(default = 192)]
    pub block3_channels: usize,
    /// Kernel of block 3's entry convolution. Default: 7 (seed).
    #[config(default = 7)]
    pub block3_kernel: usize,
    /// Residual layers in block 3. Default: 2 (seed).
    #[config(default = 2)]
    pub block3_res_layers: usize,
    /// Attention-pool window of block 3. Default: 2 (seed).
    #[config(default = 2)]
    pub block3_pool: usize,
    /// Attention heads of the transformer layer. Default: 8 (seed: 8 heads of 24).
    #[config(default = 8)]
    pub heads: usize,
    /// Hidden width of the transformer's 1x1-conv feed-forward. Default: 1024 (seed).
    #[config(default = 1024)]
    pub ffn_width: usize,
    /// Width of the two dense layers of the head. Default: 256 (seed).
    #[config(default = 256)]
    pub head_width: usize,
    /// Dropout after block 1's residual stack, before its pool. Default: 0.2 (seed).
    #[config(default = 0.2)]
    pub dropout_block1: f64,
    /// Dropout after block 2. Default: 0.3 (seed).
    #[config(default = 0.3)]
    pub dropout_block2: f64,
    /// Dropout after block 3. Default: 0.1 (seed).
    #[config(default = 0.1)]
    pub dropout_block3: f64,
    /// Dropout before each dilated convolution inside a residual stack. Default: 0.1 (seed).
    #[config(default = 0.1)]
    pub dropout_residual: f64,
    /// Dropout on the attention output, the feed-forward and the position basis. Default: 0.1 (seed).
    #[config(default = 0.1)]
    pub dropout_transformer: f64,
    /// Dropout after each ReLU of the head. Default: 0.4 (seed).
    #[config(default = 0.4)]
    pub dropout_head: f64,
    /// Batch-norm momentum in Keras' convention (`running = m·running + (1-m)·batch`).
    /// Default: 0.99 (Keras default, used by the seed).
    #[config(default = 0.99)]
    pub bn_momentum: f64,
    /// Batch-norm epsilon. Default: 1e-3 (Keras default).
    #[config(default = 1e-3)]
    pub bn_epsilon: f64,
    /// Layer-norm epsilon. Default: 1e-3 (Keras default).
    #[config(default = 1e-3)]
    pub ln_epsilon: f64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl ModelConfig {
    /// A small network of the same shape, for fast tests: 4,000 times less arithmetic.
    pub fn tiny() -> Self {
        Self::new()
            .with_stem_filters(8)
            .with_stem_kernel(7)
            .with_block1_res_layers(2)
            .with_block2_channels(16)
            .with_block2_kernel(5)
            .with_block3_channels(12)
            .with_block3_kernel(3)
            .with_heads(2)
            .with_ffn_width(16)
            .with_head_width(8)
    }

    /// The same network with every dropout off: a training-mode forward pass
    /// that is a function of its input, for comparing backends.
    pub fn without_dropout(self) -> Self {
        self.with_dropout_block1(0.0)
            .with_dropout_block2(0.0)
            .with_dropout_block3(0.0)
            .with_dropout_residual(0.0)
            .with_dropout_transformer(0.0)
            .with_dropout_head(0.0)
    }

    /// Channels of the stem output and of block 1: both strands.
    pub fn block1_channels(&self) -> usize {
        2 * self.stem_filters
    }

    /// Length after block 1's pool.
    pub fn block1_len(&self) -> usize {
        self.seq_len / self.block1_pool
    }

    /// Length after block 2's pool.
    pub fn block2_len(&self) -> usize {
        self.block1_len() / self.block2_pool
    }

    /// Length after block 3's pool: the transformer's sequence length.
    pub fn block3_len(&self) -> usize {
        self.block2_len() / self.block3_pool
    }

    /// Width of each attention head.
    pub fn head_dim(&self) -> usize {
        self.block3_channels / self.heads
    }

    /// Width of the transformer output flattened position-major, the head's input.
    pub fn flat_width(&self) -> usize {
        self.block3_len() * self.block3_channels
    }

    /// Checks that the sizes fit together; `init` calls it.
    pub fn validate(&self) -> Result<(), String> {
        let odd = [
            ("stem_kernel", self.stem_kernel),
            ("res_kernel", self.res_kernel),
            ("block2_kernel", self.block2_kernel),
            ("block3_kernel", self.block3_kernel),
        ];
        if let Some((name, k)) = odd.iter().find(|(_, k)| k.is_multiple_of(2)) {
            return Err(format!("{name} must be odd for 'same' padding, got {k}"));
        }
        // With one position the relative-position basis is 0/0 (its gamma
        // features are divided by their maximum, which is 0 at offset 0).
        if self.block3_len() < 2 {
            return Err(format!(
                "seq_len {} is too short: the pools ({}, {}, {}) leave {} position(s) for the transformer, which needs 2",
                self.seq_len,
                self.block1_pool,
                self.block2_pool,
                self.block3_pool,
                self.block3_len()
            ));
        }
        if self.heads == 0 || !self.block3_channels.is_multiple_of(self.heads) {
            return Err(format!(
                "block3_channels {} must be a multiple of heads {}",
                self.block3_channels, self.heads
            ));
        }
        if !self.block3_channels.is_multiple_of(6) {
            return Err(format!(
                "block3_channels {} must be a multiple of 6 (six relative-position feature groups)",
                self.block3_channels
            ));
        }
        let layers = [
            self.block1_res_layers,
            self.block2_res_layers,
            self.block3_res_layers,
        ];
        if layers.contains(&0) {
            return Err("every residual stack needs at least one layer".into());
        }
        Ok(())
    }
}
