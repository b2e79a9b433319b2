//! # promoscope-model
//!
//! The promoter-expression network of the DREAM 2022 entry "High Schoolers Are
//! All You Need" (HSAYN), written once for the trainer, the browser and ISM.
//!
//! - [`ModelConfig`] → [`Model`]: the architecture, one module per block of
//!   the paper's figure in [`blocks`] (stem, residual, attention pool, conv
//!   block, transformer with relative positions, head).
//! - [`kernels`]: what the blocks are made of (the convolution and the one
//!   place that picks its path, dense layers, norms, dropout).
//! - [`encoding`]: sequences to one-hot tensors, reverse complements.
//! - [`records`]: sequences to score from text (FASTA, tables, one a line).
//! - [`weights`]: `.safetensors` in the golden file's names and layouts.
//! - [`metrics`]: Pearson, Spearman, MSE and the DREAM official scores.
//! - [`device`]: a backend name to a burn `Device`.
//! - [`ism`] and [`design`]: every single substitution of a sequence, and
//!   the search for sequences the model predicts high, low or near a target.
//! - [`swa`]: stochastic weight averaging with refreshed batch-norm statistics.
//!
//! This crate knows nothing of files, command lines or the DOM: it takes bytes
//! and tensors and returns tensors, numbers and typed errors.

pub mod blocks;
pub mod config;
pub mod design;
pub mod device;
pub mod encoding;
pub mod ism;
pub mod kernels;
pub mod metrics;
pub mod records;
pub mod swa;
pub mod weights;

pub use blocks::model::{Model, Stage};
pub use config::ModelConfig;
pub use device::{Backend, SelectedDevice};

/// The largest `|a − b|` over two lists of the same length: tests' tolerances.
#[cfg(test)]
pub(crate) fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}
