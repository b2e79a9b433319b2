//! The run's history: one [`EpochMetrics`] per validation, the lines of a
//! run's `metrics.jsonl`, which the trainer writes and the learning curve
//! draws.

use serde::{Deserialize, Serialize};

/// One validation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch.
    pub epoch: usize,
    /// Optimizer steps so far.
    pub step: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Mean training loss of the epoch.
    pub train_loss: f64,
    /// Validation Pearson r.
    pub val_pearson: f64,
    /// Validation Spearman ρ.
    pub val_spearman: f64,
    /// Validation Pearson r of the weight average (once averaging started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swa_pearson: Option<f64>,
    /// Validation Spearman ρ of the weight average.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swa_spearman: Option<f64>,
    /// Training throughput of the epoch.
    pub seq_per_s: f64,
    /// Training seconds so far (across resumes).
    pub wall_s: f64,
}
