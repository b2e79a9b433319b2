//! The training loop: Adam on MSE, random epoch slices, validation Pearson and
//! Spearman, the best weights kept, stochastic weight averaging, and a
//! checkpoint after every epoch (and on Ctrl-C) from which `--resume`
//! continues (after a crash or `kill -9` too).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use burn::module::Param;
use burn::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use promoscope_model::swa::{self, WeightAverage};
use promoscope_model::training::{Hyperparameters, Stepper, adam};
use promoscope_model::weights::{self, Precision};
use promoscope_model::{Model, ModelConfig, SelectedDevice, metrics};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::data::Dataset;
use crate::evaluate::predictions;
use crate::history::EpochMetrics;
use crate::io::write_atomic;
use crate::plot;

/// Everything a training run is given.
#[derive(Clone, Debug)]
pub struct TrainSettings {
    /// The network.
    pub model: ModelConfig,
    /// A weights file (of `model`) to start from instead of a fresh network.
    pub init: Option<Vec<u8>>,
    /// The recipe's numbers, with the command line's overrides.
    pub hyper: Hyperparameters,
    /// Training-only rows (a teacher set) mixed into every epoch, when set.
    pub mix: Option<Mix>,
    /// Seed of initialisation, shuffling and dropout.
    pub seed: u64,
    /// Where weights, metrics and checkpoints go.
    pub out_dir: PathBuf,
    /// What the loss is multiplied by before `backward`
    /// (`promoscope_model::training::loss_scale`).
    pub loss_scale: f32,
}

/// Rows mixed into every epoch besides the training rows: the last `rows`
/// rows of the training set (e.g. random sequences labelled by a teacher),
/// of which `per_epoch` are drawn afresh each epoch. They keep the network
/// near what it was pre-trained on while it learns the measured labels.
#[derive(Clone, Copy, Debug)]
pub struct Mix {
    /// How many of the training set's rows are mixed-in rows (its last ones).
    pub rows: usize,
    /// How many of them join each epoch.
    pub per_epoch: usize,
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
    /// Models in the weight average (0: not started).
    #[serde(default)]
    pub swa_count: usize,
}

/// Batch losses still on the device. Reading one back waits for the device,
/// so they are read together every [`Self::READ_EVERY`] steps: in between, the
/// host queues the next steps while the GPU runs.
#[derive(Default)]
struct PendingLosses(Vec<Tensor<1>>);

impl PendingLosses {
    const READ_EVERY: usize = 32;

    fn push(&mut self, loss: Tensor<1>) {
        self.0.push(loss);
    }

    /// Adds the pending losses to `sum` in step order (so the sum does not
    /// depend on when they were read) and forgets them.
    fn read_into(&mut self, sum: &mut f64) {
        if self.0.is_empty() {
            return;
        }
        let values = Tensor::cat(std::mem::take(&mut self.0), 0)
            .into_data()
            .try_into_vec_as::<f32>()
            .expect("a float tensor reads as f32");
        for value in values {
            *sum += f64::from(value);
        }
    }
}

/// How a call to [`train`] ended.
pub struct Outcome {
    /// Every validation of the run.
    pub history: Vec<EpochMetrics>,
    /// Stopped by Ctrl-C after saving a checkpoint.
    pub interrupted: bool,
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
    #[serde(default)]
    swa: Option<String>,
}

impl Checkpoints {
    fn save(
        &self,
        model: &Model,
        config: &ModelConfig,
        optimizer: &burn::optim::ModuleOptimizer,
        average: Option<&WeightAverage>,
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
            swa: average.map(|_| format!("swa-{tag}.safetensors")),
        };
        let to_bytes = |model| weights::to_bytes(model, config, &BTreeMap::new(), Precision::F32);
        write_atomic(&self.dir.join(&state.weights), &to_bytes(model)?)?;
        if let (Some(average), Some(name)) = (average, &state.swa) {
            write_atomic(&self.dir.join(name), &to_bytes(&average.model)?)?;
        }
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
            if let Some(swa) = old.swa {
                std::fs::remove_file(self.dir.join(swa)).ok();
            }
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

    /// The checkpointed model (on `device`), optimizer, weight average (on
    /// `inference`) and progress.
    fn load(
        &self,
        device: &Device,
        inference: &Device,
        settings: &TrainSettings,
    ) -> Result<Resumed> {
        let state = self.state()?;
        let read_model = |name: &str, device: &Device| -> Result<Model> {
            let path = self.dir.join(name);
            let bytes =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let (model, _) =
                weights::load(&bytes, device).with_context(|| path.display().to_string())?;
            Ok(model)
        };
        let model = read_model(&state.weights, device)?;
        let average = match &state.swa {
            Some(name) => Some(WeightAverage::resume(
                read_model(name, inference)?,
                state.progress.swa_count,
            )),
            None => None,
        };
        let path = self.dir.join(&state.optimizer);
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let optimizer = adam(settings.loss_scale)
            .from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
            .map_err(|e| anyhow::anyhow!("{}: {e:?}", path.display()))?;
        let stepper = Stepper::resume(optimizer, settings.loss_scale, settings.seed);
        Ok((model, stepper, average, state.progress))
    }
}

type Resumed = (Model, Stepper, Option<WeightAverage>, Progress);

/// A fresh network whose output bias is the labels' mean, so that it starts
/// by predicting the mean: from a zero bias, the first epoch on raw DREAM
/// labels (about 0–17) was spent moving the bias alone.
fn initial_model(config: &ModelConfig, labels: &[f32], device: &Device) -> Model {
    let mut model = config.init(device);
    let mean = labels.iter().map(|&v| f64::from(v)).sum::<f64>() / labels.len().max(1) as f64;
    model.head.out.bias = Some(Param::from_tensor(Tensor::from_floats(
        [mean as f32],
        device,
    )));
    weights::with_stable_ids(model)
}

/// Whether `dir` holds a checkpoint to resume from.
pub fn has_checkpoint(dir: &Path) -> bool {
    dir.join("checkpoint/state.json").exists()
}

/// Trains on `train`, validating on `val`, continuing from the output folder's
/// checkpoint when there is one. Writes `best.safetensors`, `last.safetensors`
/// (and `swa.safetensors` with averaging), `metrics.jsonl`,
/// `learning_curve.png` and `checkpoint/`. When `interrupt` becomes true it
/// saves a checkpoint after the current step and returns.
pub fn train(
    settings: &TrainSettings,
    train: &Dataset,
    val: &Dataset,
    selected: &SelectedDevice,
    interrupt: &AtomicBool,
    mut on_epoch: impl FnMut(&EpochMetrics),
) -> Result<Outcome> {
    let out = &settings.out_dir;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut run = Run::start(settings, train, val, selected)?;
    let hyper = &settings.hyper;
    let mut model = run.model.take().expect("a started run has a model");
    while run.progress.epoch <= hyper.epochs {
        let epoch = run.progress.epoch;
        let epoch_start = Instant::now();
        let order = run.order(epoch);
        // Batches of at least two (batch norm needs two rows).
        let batches: Vec<&[usize]> = order
            .chunks(hyper.batch_size)
            .filter(|c| c.len() >= 2)
            .collect();
        let first = run.progress.batch.min(batches.len());
        let bar = epoch_bar(epoch, hyper.epochs, &batches[first..]);
        let mut losses = PendingLosses::default();
        for chunk in &batches[first..] {
            model = run.step(model, chunk, hyper.lr_at(epoch), &mut losses);
            bar.inc(chunk.len() as u64);
            if losses.0.len() >= PendingLosses::READ_EVERY {
                losses.read_into(&mut run.progress.loss_sum);
                let mean = run.progress.loss_sum / run.progress.batch as f64;
                bar.set_message(format!("{mean:.4}"));
            }
            if interrupt.load(Ordering::SeqCst) {
                losses.read_into(&mut run.progress.loss_sum);
                bar.abandon();
                run.checkpoint(&model)?;
                return Ok(Outcome {
                    history: run.progress.history,
                    interrupted: true,
                });
            }
        }
        losses.read_into(&mut run.progress.loss_sum);
        bar.finish_and_clear();
        let trained: usize = batches[first..].iter().map(|c| c.len()).sum();
        let seq_per_s = trained as f64 / epoch_start.elapsed().as_secs_f64();
        let train_loss = run.progress.loss_sum / run.progress.batch.max(1) as f64;
        run.progress.epoch += 1;
        run.progress.batch = 0;
        run.progress.loss_sum = 0.0;
        if epoch.is_multiple_of(hyper.val_every) || epoch == hyper.epochs {
            let entry = run.validate_and_save(&model, epoch, &batches, train_loss, seq_per_s)?;
            on_epoch(&entry);
        }
        run.checkpoint(&model)?;
    }
    run.save(&model.valid(), "last.safetensors")?;
    Ok(Outcome {
        history: run.progress.history,
        interrupted: false,
    })
}

/// A run in progress: everything but the loop.
struct Run<'a> {
    settings: &'a TrainSettings,
    train: &'a Dataset,
    val: &'a Dataset,
    selected: &'a SelectedDevice,
    /// The training device: `selected`'s, with autodiff.
    device: Device,
    /// The model until the loop takes it (optimizer steps consume it).
    model: Option<Model>,
    /// The optimizer, loss scale and seed of every step.
    stepper: Stepper,
    average: Option<WeightAverage>,
    progress: Progress,
    checkpoints: Checkpoints,
    /// When training began, counting the time of earlier sessions of the run.
    start: Instant,
    /// The model card of every weights file the run writes.
    card: BTreeMap<String, String>,
}

impl<'a> Run<'a> {
    /// From the output folder's checkpoint, or a fresh model.
    fn start(
        settings: &'a TrainSettings,
        train: &'a Dataset,
        val: &'a Dataset,
        selected: &'a SelectedDevice,
    ) -> Result<Self> {
        let device = selected.device.clone().autodiff();
        let checkpoints = Checkpoints {
            dir: settings.out_dir.join("checkpoint"),
        };
        let (model, stepper, average, progress) = if has_checkpoint(&settings.out_dir) {
            checkpoints.load(&device, &selected.device, settings)?
        } else {
            device.seed(settings.seed);
            let model = match &settings.init {
                Some(bytes) => weights::load_into(settings.model.init(&device), bytes)?,
                None => initial_model(&settings.model, &train.labels, &device),
            };
            let progress = Progress {
                epoch: 1,
                ..Progress::default()
            };
            let stepper = Stepper::new(settings.loss_scale, settings.seed);
            (model, stepper, None, progress)
        };
        let start = Instant::now()
            .checked_sub(std::time::Duration::from_secs_f64(progress.wall_s))
            .unwrap_or_else(Instant::now);
        let trained_on = match settings.mix {
            Some(mix) => format!(
                "{} sequences, and {} of {} mixed-in rows an epoch",
                train.len() - mix.rows,
                mix.per_epoch,
                mix.rows
            ),
            None => format!("{} sequences", train.len()),
        };
        let card = BTreeMap::from([("trained_on".to_string(), trained_on)]);
        Ok(Run {
            settings,
            train,
            val,
            selected,
            device,
            model: Some(model),
            stepper,
            average,
            progress,
            checkpoints,
            start,
            card,
        })
    }

    /// The epoch's sequences in training order (a random slice of
    /// `epoch_size`). The order and dropout depend only on (seed, epoch,
    /// step): a resumed run repeats exactly what the interrupted one would
    /// have done.
    fn order(&self, epoch: usize) -> Vec<usize> {
        epoch_order(self.settings, self.train.len(), epoch)
    }

    /// One optimizer step on a batch, and the weight average's share of it.
    fn step(
        &mut self,
        model: Model,
        chunk: &[usize],
        lr: f64,
        losses: &mut PendingLosses,
    ) -> Model {
        let settings = self.settings;
        let batch = self.train.batch(chunk, &self.device);
        let (model, loss) = self.stepper.step(model, batch, lr, self.progress.step);
        losses.push(loss);
        self.progress.step += 1;
        self.progress.batch += 1;
        if let Some(swa) = &settings.hyper.swa
            && self.progress.step >= swa.start
            && (self.progress.step - swa.start).is_multiple_of(swa.every.max(1))
        {
            match &mut self.average {
                Some(average) => average.add(&model),
                None => self.average = Some(WeightAverage::new(&model)),
            }
            self.progress.swa_count = self.average.as_ref().map_or(0, |a| a.count);
        }
        model
    }

    /// Pearson and Spearman of a model (eval mode) on the validation set.
    fn validate(&self, model: &Model) -> (f64, f64) {
        let val = self.val;
        let predicted = predictions(
            model,
            val,
            self.settings.hyper.batch_size,
            &self.selected.device,
        );
        let measured: Vec<f64> = val.labels.iter().map(|&v| f64::from(v)).collect();
        (
            metrics::pearson(&predicted, &measured).unwrap_or(f64::NAN),
            metrics::spearman(&predicted, &measured).unwrap_or(f64::NAN),
        )
    }

    /// Validates the model and the weight average (its batch-norm statistics
    /// first recomputed from the epoch's first batches), keeps the best and
    /// the average's weights, and writes `metrics.jsonl` and the curve.
    fn validate_and_save(
        &mut self,
        model: &Model,
        epoch: usize,
        batches: &[&[usize]],
        train_loss: f64,
        seq_per_s: f64,
    ) -> Result<EpochMetrics> {
        let settings = self.settings;
        let eval = model.valid();
        let (val_pearson, val_spearman) = self.validate(&eval);
        let (mut swa_pearson, mut swa_spearman) = (None, None);
        if let (Some(mut average), Some(swa)) = (self.average.take(), &settings.hyper.swa) {
            let refresh = batches
                .iter()
                .take(swa.bn_batches)
                .map(|chunk| self.train.batch(chunk, &self.selected.device).0);
            average.model = swa::refresh_batch_norm(
                average.model.clone(),
                &settings.model,
                refresh,
                &self.device,
            )?;
            let (p, s) = self.validate(&average.model);
            (swa_pearson, swa_spearman) = (Some(p), Some(s));
            self.save(&average.model, "swa.safetensors")?;
            self.average = Some(average);
        }
        let entry = EpochMetrics {
            epoch,
            step: self.progress.step,
            lr: settings.hyper.lr_at(epoch),
            train_loss,
            val_pearson,
            val_spearman,
            swa_pearson,
            swa_spearman,
            seq_per_s,
            wall_s: self.start.elapsed().as_secs_f64(),
        };
        // A NaN (a constant prediction) is never best, and any number beats it.
        if self
            .progress
            .best_pearson
            .is_none_or(|best| val_pearson > best || best.is_nan())
        {
            self.progress.best_pearson = Some(val_pearson);
            self.save(&eval, "best.safetensors")?;
        }
        self.progress.history.push(entry.clone());
        let log: String = self
            .progress
            .history
            .iter()
            .map(|m| serde_json::to_string(m).map(|line| line + "\n"))
            .collect::<Result<_, _>>()?;
        let out = &settings.out_dir;
        write_atomic(&out.join("metrics.jsonl"), log.as_bytes())?;
        plot::learning_curve(&self.progress.history, &out.join("learning_curve.png"))?;
        Ok(entry)
    }

    /// Writes `model` (eval mode) as `name` in the output folder, with the card.
    fn save(&self, model: &Model, name: &str) -> Result<()> {
        let bytes = weights::to_bytes(model, &self.settings.model, &self.card, Precision::F32)?;
        write_atomic(&self.settings.out_dir.join(name), &bytes)
    }

    /// Saves the checkpoint: weights, optimizer, weight average, progress.
    fn checkpoint(&mut self, model: &Model) -> Result<()> {
        self.progress.wall_s = self.start.elapsed().as_secs_f64();
        self.checkpoints.save(
            &model.valid(),
            &self.settings.model,
            &self.stepper.optimizer,
            self.average.as_ref(),
            &self.progress,
        )
    }
}

/// An epoch's rows of a training set of `rows` in training order: every
/// measured row and the epoch's draw of mixed-in rows, shuffled, cut to
/// `epoch_size`; a function of (seed, epoch) alone.
fn epoch_order(settings: &TrainSettings, rows: usize, epoch: usize) -> Vec<usize> {
    let mut rng = StdRng::seed_from_u64(settings.seed.wrapping_add(epoch as u64));
    let mix = settings.mix.unwrap_or(Mix {
        rows: 0,
        per_epoch: 0,
    });
    let measured = rows - mix.rows;
    let mut order: Vec<usize> = (0..measured).collect();
    if mix.per_epoch > 0 {
        let mut mixed: Vec<usize> = (measured..rows).collect();
        let (drawn, _) = mixed.partial_shuffle(&mut rng, mix.per_epoch);
        order.extend_from_slice(drawn);
    }
    order.shuffle(&mut rng);
    order.truncate(settings.hyper.epoch_size.min(order.len()));
    order
}

/// A progress bar over an epoch's sequences (hidden when stderr is not a terminal).
fn epoch_bar(epoch: usize, epochs: usize, batches: &[&[usize]]) -> ProgressBar {
    let total: usize = batches.iter().map(|c| c.len()).sum();
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "epoch {prefix} [{bar:30}] {pos}/{len} seq  {per_sec}  loss {msg}  eta {eta}",
        )
        .expect("template is valid")
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("{epoch}/{epochs}"));
    bar
}

#[cfg(test)]
mod tests {
    use promoscope_model::training::Recipe;

    use super::*;

    #[test]
    fn pending_losses_add_in_step_order_once() {
        let device = Device::flex();
        let values = [0.1f32, 1e8, -1e8, 0.3];
        let mut pending = PendingLosses::default();
        for v in values {
            pending.push(Tensor::<1>::from_floats([v], &device));
        }
        let mut sum = 0.5;
        pending.read_into(&mut sum);
        let expected = values.iter().fold(0.5, |s, &v| s + f64::from(v));
        assert_eq!(sum, expected);
        assert!(pending.0.is_empty());
        pending.read_into(&mut sum);
        assert_eq!(sum, expected, "read losses are not added twice");
    }

    /// The seed recipe over `epochs` epochs of `epoch_size` rows.
    fn settings(epochs: usize, epoch_size: usize) -> TrainSettings {
        let hyper = Hyperparameters {
            epochs,
            ..Recipe::Seed.hyperparameters(epoch_size, None, Some(epoch_size))
        };
        TrainSettings {
            model: ModelConfig::tiny(),
            init: None,
            hyper,
            mix: None,
            seed: 0,
            out_dir: PathBuf::new(),
            loss_scale: 1.0,
        }
    }

    #[test]
    fn an_epoch_holds_every_measured_row_and_a_fresh_draw_of_mixed_rows() {
        let mixing = TrainSettings {
            mix: Some(Mix {
                rows: 50,
                per_epoch: 10,
            }),
            ..settings(4, usize::MAX)
        };
        let (measured, rows) = (30, 80);
        let draw = |epoch| {
            let mut order = epoch_order(&mixing, rows, epoch);
            assert_eq!(
                order,
                epoch_order(&mixing, rows, epoch),
                "same epoch, same order"
            );
            assert_eq!(order.len(), measured + 10);
            order.sort_unstable();
            assert_eq!(order[..measured], (0..measured).collect::<Vec<_>>());
            order.dedup();
            assert_eq!(order.len(), measured + 10, "no row twice");
            assert!(
                order[measured..]
                    .iter()
                    .all(|&i| (measured..rows).contains(&i))
            );
            order[measured..].to_vec()
        };
        assert_ne!(draw(1), draw(2), "each epoch draws its own mixed rows");
        let plain = settings(4, usize::MAX);
        let mut order = epoch_order(&plain, rows, 1);
        order.sort_unstable();
        assert_eq!(
            order,
            (0..rows).collect::<Vec<_>>(),
            "without a mix: every row"
        );
    }

    #[test]
    fn fine_tuning_is_the_last_stage_of_long_enough_runs() {
        let seed = settings(850, 1).hyper;
        assert_eq!(seed.lr_at(1), 1e-4);
        assert_eq!(seed.lr_at(750), 1e-4);
        assert_eq!(seed.lr_at(751), 3e-5);
        assert_eq!(seed.lr_at(850), 3e-5);
        assert_eq!(settings(12, 1).hyper.lr_at(12), 1e-4);
    }

    #[test]
    fn a_fresh_model_starts_at_the_label_mean() {
        let device = Device::flex().autodiff();
        let model = initial_model(&ModelConfig::tiny(), &[1.0, 3.0, 8.0], &device);
        let bias = model.head.out.bias.as_ref().unwrap().val();
        assert_eq!(bias.into_data().try_to_vec::<f32>().unwrap(), [4.0]);
    }
}
