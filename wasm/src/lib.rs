//! Browser API over the promoscope model (the web-page issue fills it in).
//!
//! The page will load weights, score batches and run ISM through
//! `promoscope_model`; nothing of the model is copied here.

pub use promoscope_model::ModelConfig;
