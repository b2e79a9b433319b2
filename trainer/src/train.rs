//! The training loop: Adam on MSE, random epoch slices, validation Pearson and
//! Spearman, the best weights kept, and a checkpoint after every epoch from
//! which `--resume` continues (after a crash or `kill -9` too).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use promoscope_model::weights::{self, Precision};
use promoscope_model::{Model, ModelConfig, SelectedDevice, metrics};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::data::Dataset;
use crate::io::write_atomic;

/// Everything a training run is given.
#[derive(Clone, Debug)]
pub struct TrainSettings {
    /// The network.
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
    /// Where weights, metrics and checkpoints go.
    pub out_dir: PathBuf,
}

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
    /// Training throughput of the epoch.
    pub seq_per_s: f64,
    /// Training seconds so far (across resumes).
    pub wall_s: f64,
}

/// Where a run stands: what a checkpoint records besides weights and optimizer.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Progress {
    /// The epoch in progress (1-based).
    pub epoch: usize,
    /// Batches of that epoch already trained.
    pub batch: usize,
    /// Optimizer steps so far.
    pub step: usize,
    /// Sum of this epoch's batch losses so far.
    pub loss_sum: f64,
    /// Best validation Pearson so far.
    pub best_pearson: Option<f64>,
    /// Training seconds so far.
    pub wall_s: f64,
    /// Every validation so far.
    pub history: Vec<EpochMetrics>,
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
                .expect("predictions are floats")
        })
        .map(f64::from)
        .collect()
}

/// The checkpoint folder: `state.json` names the weights and optimizer files
/// of the same step, so a crash while writing them leaves the previous one whole.
struct Checkpoints {
    dir: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct State {
    progress: Progress,
    weights: String,
    optimizer: String,
}

impl Checkpoints {
    fn save(
        &self,
        model: &Model,
        config: &ModelConfig,
        optimizer: &burn::optim::ModuleOptimizer,
        progress: &Progress,
    ) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        let old = self.state().ok();
        let tag = format!("{:09}-{:06}", progress.step, progress.batch);
        let state = State {
            progress: progress.clone(),
            weights: format!("weights-{tag}.safetensors"),
            optimizer: format!("optimizer-{tag}.bin"),
        };
        let model_bytes = weights::to_bytes(model, config, &BTreeMap::new(), Precision::F32)?;
        write_atomic(&self.dir.join(&state.weights), &model_bytes)?;
        let optimizer_bytes = optimizer
            .into_bytes()
            .map_err(|e| anyhow::anyhow!("optimizer state: {e:?}"))?;
        write_atomic(&self.dir.join(&state.optimizer), &optimizer_bytes)?;
        write_atomic(
            &self.dir.join("state.json"),
            serde_json::to_string(&state)?.as_bytes(),
        )?;
        if let Some(old) = old.filter(|old| old.weights != state.weights) {
            std::fs::remove_file(self.dir.join(old.weights)).ok();
            std::fs::remove_file(self.dir.join(old.optimizer)).ok();
        }
        Ok(())
    }

    fn state(&self) -> Result<State> {
        let path = self.dir.join("state.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{}: not a checkpoint state", path.display()))
    }

    /// The checkpointed model (on `device`), optimizer and progress.
    fn load(&self, device: &Device) -> Result<(Model, burn::optim::ModuleOptimizer, Progress)> {
        let state = self.state()?;
        let path = self.dir.join(&state.weights);
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let (model, _) =
            weights::load(&bytes, device).with_context(|| path.display().to_string())?;
        let path = self.dir.join(&state.optimizer);
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let optimizer = adam()
            .from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
            .map_err(|e| anyhow::anyhow!("{}: {e:?}", path.display()))?;
        Ok((model, optimizer, state.progress))
    }
}

fn adam() -> burn::optim::ModuleOptimizer {
    // Keras' epsilon, as the seed's optimizer.
    AdamConfig::new().with_epsilon(1e-7).init()
}

/// Whether `dir` holds a checkpoint to resume from.
pub fn has_checkpoint(dir: &Path) -> bool {
    dir.join("checkpoint/state.json").exists()
}

/// Trains on `train`, validating on `val`, continuing from the output folder's
/// checkpoint when there is one. Writes `best.safetensors`, `last.safetensors`,
/// `metrics.jsonl` and `checkpoint/`; returns every validation.
pub fn train(
    settings: &TrainSettings,
    train: &Dataset,
    val: &Dataset,
    selected: &SelectedDevice,
    mut on_epoch: impl FnMut(&EpochMetrics),
) -> Result<Vec<EpochMetrics>> {
    let out = &settings.out_dir;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let device = selected.device.clone().autodiff();
    let checkpoints = Checkpoints {
        dir: out.join("checkpoint"),
    };
    let (mut model, mut optimizer, mut progress) = if has_checkpoint(out) {
        checkpoints.load(&device)?
    } else {
        device.seed(settings.seed);
        let model = weights::with_stable_ids(settings.model.init(&device));
        (
            model,
            adam(),
            Progress {
                epoch: 1,
                ..Progress::default()
            },
        )
    };
    let card = BTreeMap::from([(
        "trained_on".to_string(),
        format!("{} sequences", train.len()),
    )]);
    let save = |model: &Model, name: &str| -> Result<()> {
        let bytes = weights::to_bytes(model, &settings.model, &card, Precision::F32)?;
        write_atomic(&out.join(name), &bytes)
    };

    let start = Instant::now()
        .checked_sub(std::time::Duration::from_secs_f64(progress.wall_s))
        .unwrap_or_else(Instant::now);
    while progress.epoch <= settings.epochs {
        let epoch = progress.epoch;
        let epoch_start = Instant::now();
        // The epoch's order and dropout depend only on (seed, epoch, step): a
        // resumed run repeats exactly what the interrupted one would have done.
        let mut order: Vec<usize> = (0..train.len()).collect();
        order.shuffle(&mut StdRng::seed_from_u64(
            settings.seed.wrapping_add(epoch as u64),
        ));
        order.truncate(settings.epoch_size.min(order.len()));
        let batches: Vec<&[usize]> = order
            .chunks(settings.batch_size)
            .filter(|c| c.len() >= 2)
            .collect();
        let first = progress.batch;
        for chunk in &batches[first.min(batches.len())..] {
            device.seed(settings.seed ^ (progress.step as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let (x, y) = train.batch(chunk, &device);
            let loss = (model.forward(x) - y).powi_scalar(2).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            progress.loss_sum += f64::from(loss.into_scalar::<f32>());
            model = optimizer.step(settings.learning_rate, model, grads);
            progress.step += 1;
            progress.batch += 1;
        }
        let trained: usize = batches[first.min(batches.len())..]
            .iter()
            .map(|c| c.len())
            .sum();
        let seq_per_s = trained as f64 / epoch_start.elapsed().as_secs_f64();
        let train_loss = progress.loss_sum / progress.batch.max(1) as f64;
        progress.epoch += 1;
        progress.batch = 0;
        progress.loss_sum = 0.0;
        if epoch.is_multiple_of(settings.val_every) || epoch == settings.epochs {
            let eval = model.valid();
            let predicted = predict(&eval, val, settings.batch_size, &selected.device);
            let measured: Vec<f64> = val.labels.iter().map(|&v| f64::from(v)).collect();
            let entry = EpochMetrics {
                epoch,
                step: progress.step,
                lr: settings.learning_rate,
                train_loss,
                val_pearson: metrics::pearson(&predicted, &measured).unwrap_or(f64::NAN),
                val_spearman: metrics::spearman(&predicted, &measured).unwrap_or(f64::NAN),
                seq_per_s,
                wall_s: start.elapsed().as_secs_f64(),
            };
            on_epoch(&entry);
            if progress
                .best_pearson
                .is_none_or(|best| entry.val_pearson > best)
            {
                progress.best_pearson = Some(entry.val_pearson);
                save(&eval, "best.safetensors")?;
            }
            progress.history.push(entry);
            let log: String = progress
                .history
                .iter()
                .map(|m| serde_json::to_string(m).map(|line| line + "\n"))
                .collect::<Result<_, _>>()?;
            write_atomic(&out.join("metrics.jsonl"), log.as_bytes())?;
        }
        progress.wall_s = start.elapsed().as_secs_f64();
        checkpoints.save(&model.valid(), &settings.model, &optimizer, &progress)?;
    }
    save(&model.valid(), "last.safetensors")?;
    Ok(progress.history)
}
