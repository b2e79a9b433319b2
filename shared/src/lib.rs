//! # promoscope-model
//!
//! The promoter-expression network of the DREAM 2022 entry "High Schoolers Are
//! All You Need" (HSAYN), written once for the trainer, the browser and ISM.
//!
//! - [`ModelConfig`] → [`Model`]: the architecture, one module per block
//!   ([`stem`], [`residual`], [`attention_pool`], [`conv_block`],
//!   [`transformer`] with [`relative_position`], [`head`]).
//! - [`encoding`]: sequences to one-hot tensors, reverse complements.
//! - [`weights`]: `.safetensors` in the golden file's names and layouts.
//! - [`metrics`]: Pearson, Spearman, MSE and the DREAM official scores.
//! - [`device`]: a backend name to a burn `Device`.
//! - [`swa`]: stochastic weight averaging with refreshed batch-norm statistics.
//!
//! This crate knows nothing of files, command lines or the DOM: it takes bytes
//! and tensors and returns tensors, numbers and typed errors.

pub mod attention_pool;
pub mod config;
pub mod conv;
pub mod conv_block;
pub mod dense;
pub mod device;
pub mod dropout;
pub mod encoding;
#[cfg(all(feature = "wgpu", not(target_family = "wasm")))]
pub mod gemm_conv;
pub mod head;
pub mod ism;
pub mod metrics;
pub mod model;
pub mod norm;
pub mod relative_position;
pub mod residual;
pub mod stem;
pub mod swa;
pub mod transformer;
pub mod weights;
pub mod winograd;

pub use config::ModelConfig;
pub use device::{Backend, SelectedDevice};
pub use model::{Model, Stage};

/// The largest `|a − b|` over two lists of the same length: tests' tolerances.
#[cfg(test)]
pub(crate) fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}
