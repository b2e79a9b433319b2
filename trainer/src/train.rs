//! The training loop: Adam on MSE, random epoch slices, validation Pearson and
//! Spearman, the best weights kept.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use promoscope_model::weights::{self, Precision};
use promoscope_model::{Model, ModelConfig, SelectedDevice, metrics};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::data::Dataset;
use crate::io::write_atomic;

/// Everything a training run is given.
#[derive(Clone, Debug, Serialize)]
pub struct TrainSettings {
    /// The network.
    #[serde(skip)]
    pub model: ModelConfig,
    /// Epochs.
    pub epochs: usize,
    /// Sequences per epoch (a random slice of the training set, or all of it).
    pub epoch_size: usize,
    /// Sequences per step.
    pub batch_size: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Validate every this many epochs (and after the last).
    pub val_every: usize,
    /// Seed of initialisation, shuffling and dropout.
    pub seed: u64,
    /// Where weights and metrics go.
    pub out_dir: PathBuf,
}

/// One validation.
#[derive(Clone, Debug, Serialize)]
pub struct EpochMetrics {
    /// 1-based epoch.
    pub epoch: usize,
    /// Optimizer steps so far.
    pub step: usize,
    /// Mean training loss of the epoch.
    pub train_loss: f64,
    /// Validation Pearson r.
    pub val_pearson: f64,
    /// Validation Spearman ρ.
    pub val_spearman: f64,
    /// Training throughput.
    pub seq_per_s: f64,
    /// Seconds since the start.
    pub wall_s: f64,
}

/// Predictions of `model` (eval mode) for every row of `data`.
pub fn predict(model: &Model, data: &Dataset, batch_size: usize, device: &Device) -> Vec<f64> {
    let indices: Vec<usize> = (0..data.len()).collect();
    indices
        .chunks(batch_size)
        .flat_map(|chunk| {
            let (x, _) = data.batch(chunk, device);
            model
                .forward(x)
                .into_data()
                .try_into_vec_as::<f32>()
                .unwrap()
        })
        .map(f64::from)
        .collect()
}

/// Trains on `train`, validating on `val`; writes `best.safetensors`,
/// `last.safetensors` and `metrics.jsonl` into the output folder and returns
/// every validation.
pub fn train(
    settings: &TrainSettings,
    train: &Dataset,
    val: &Dataset,
    selected: &SelectedDevice,
    mut on_epoch: impl FnMut(&EpochMetrics),
) -> Result<Vec<EpochMetrics>> {
    std::fs::create_dir_all(&settings.out_dir)
        .with_context(|| format!("cannot create {}", settings.out_dir.display()))?;
    let device = selected.device.clone().autodiff();
    device.seed(settings.seed);
    let mut rng = StdRng::seed_from_u64(settings.seed);
    let mut model = settings.model.init(&device);
    let mut optimizer = AdamConfig::new().with_epsilon(1e-7).init();
    let card = BTreeMap::from([(
        "trained_on".to_string(),
        format!("{} sequences", train.len()),
    )]);
    let save = |model: &Model, name: &str| -> Result<()> {
        let bytes = weights::to_bytes(&model.valid(), &settings.model, &card, Precision::F32)?;
        write_atomic(&settings.out_dir.join(name), &bytes)
    };

    let start = Instant::now();
    let mut history = Vec::new();
    let mut metrics_log = String::new();
    let mut best = f64::NEG_INFINITY;
    let mut step = 0;
    let mut order: Vec<usize> = (0..train.len()).collect();
    for epoch in 1..=settings.epochs {
        let epoch_start = Instant::now();
        order.shuffle(&mut rng);
        let slice = &order[..settings.epoch_size.min(order.len())];
        let mut loss_sum = 0.0;
        let mut batches = 0;
        for chunk in slice.chunks(settings.batch_size) {
            if chunk.len() < 2 {
                continue; // batch norm needs two rows
            }
            device.seed(rng.random());
            let (x, y) = train.batch(chunk, &device);
            let loss = (model.forward(x) - y).powi_scalar(2).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            loss_sum += f64::from(loss.into_scalar::<f32>());
            batches += 1;
            model = optimizer.step(settings.learning_rate, model, grads);
            step += 1;
        }
        let seq_per_s = slice.len() as f64 / epoch_start.elapsed().as_secs_f64();
        if !epoch.is_multiple_of(settings.val_every) && epoch != settings.epochs {
            continue;
        }
        let eval = model.valid();
        let predicted = predict(&eval, val, settings.batch_size, &selected.device);
        let measured: Vec<f64> = val.labels.iter().map(|&v| f64::from(v)).collect();
        let entry = EpochMetrics {
            epoch,
            step,
            train_loss: loss_sum / batches.max(1) as f64,
            val_pearson: metrics::pearson(&predicted, &measured).unwrap_or(f64::NAN),
            val_spearman: metrics::spearman(&predicted, &measured).unwrap_or(f64::NAN),
            seq_per_s,
            wall_s: start.elapsed().as_secs_f64(),
        };
        on_epoch(&entry);
        metrics_log.push_str(&serde_json::to_string(&entry)?);
        metrics_log.push('\n');
        write_atomic(
            &settings.out_dir.join("metrics.jsonl"),
            metrics_log.as_bytes(),
        )?;
        if entry.val_pearson > best {
            best = entry.val_pearson;
            save(&model, "best.safetensors")?;
        }
        history.push(entry);
    }
    save(&model, "last.safetensors")?;
    Ok(history)
}
