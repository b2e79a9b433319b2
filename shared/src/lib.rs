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
//! - [`records`]: sequences to score from text (FASTA, tables, one a line);
//!   [`measurements`]: sequences with measured values, and the `--holdout` split.
//! - [`weights`]: `.safetensors` in the golden file's names and layouts.
//! - [`metrics`]: Pearson, Spearman, MSE and the DREAM official scores.
//! - [`device`]: a backend name to a burn `Device`.
//! - [`ism`] and [`design`]: every single substitution of a sequence, and
//!   the search for sequences the model predicts high, low or near a target.
//! - [`swa`]: stochastic weight averaging with refreshed batch-norm statistics.
//! - [`tune`]: fine-tuning on a user's measurements (quick: the output layer
//!   re-fitted by [`ridge`] regression), for the page and `promoscope tune`.
//! - `training` (cargo feature `train`): one training step, the loss and Adam.
//!
//! This crate knows nothing of files, command lines or the DOM: it takes bytes
//! and tensors and returns tensors, numbers and typed errors.

pub mod blocks;
pub mod config;
pub mod design;
pub mod device;
pub mod encoding;
pub mod ensemble;
pub mod ism;
pub mod kernels;
pub mod measurements;
pub mod metrics;
pub mod records;
pub mod ridge;
pub mod swa;
#[cfg(feature = "train")]
pub mod training;
pub mod tune;
pub mod weights;

pub use blocks::model::{Model, Stage};
pub use config::ModelConfig;
pub use device::{Backend, SelectedDevice};
pub use ensemble::{Ensemble, Prediction};

/// Tests' tolerance checks on tensors: [`metrics::max_abs_diff`] of their
/// values (infinite on any non-finite one). A tensor's own `abs().max()`
/// would be as blind to NaN as `f32::max`.
#[cfg(test)]
pub(crate) fn tensor_max_abs_diff<const D: usize>(
    a: burn::prelude::Tensor<D>,
    b: burn::prelude::Tensor<D>,
) -> f32 {
    let values = |t: burn::prelude::Tensor<D>| {
        let data = t.into_data().convert::<f32>();
        data.try_to_vec::<f32>().expect("f32 after convert")
    };
    metrics::max_abs_diff(&values(a), &values(b))
}
