//! The run's history: one [`EpochMetrics`] per validation, the lines of a
//! run's `metrics.jsonl`, which the trainer writes and the learning curve
//! draws (the model crate's type, shared with the page's fine-tuning).

pub use promoscope_model::training::EpochMetrics;
