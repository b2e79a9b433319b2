//! The training loop: Adam on MSE, random epoch slices, validation Pearson and
//! Spearman, the best weights kept, stochastic weight averaging, and a
//! checkpoint after every epoch (and on Ctrl-C) from which `--resume`
//! continues (after a crash or `kill -9` too).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use burn::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
pub use promoscope_model::training::Mix;
use promoscope_model::training::{
    Checkpoint, EpochMetrics, Hyperparameters, PendingLosses, Progress, Run, initial_model,
};
use promoscope_model::weights::{self, Precision};
use promoscope_model::{Model, ModelConfig, SelectedDevice, metrics};
use serde::{Deserialize, Serialize};

use crate::data::Dataset;
use crate::evaluate::predictions;
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
    /// Writes the run's checkpoint, then removes the previous one's files.
    fn save(&self, checkpoint: &Checkpoint) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        let old = self.state().ok();
        let progress = &checkpoint.progress;
        let tag = format!("{:09}-{:06}", progress.step, progress.batch);
        let state = State {
            progress: progress.clone(),
            weights: format!("weights-{tag}.safetensors"),
            optimizer: format!("optimizer-{tag}.bin"),
            swa: checkpoint
                .swa
                .as_ref()
                .map(|_| format!("swa-{tag}.safetensors")),
        };
        write_atomic(&self.dir.join(&state.weights), &checkpoint.weights)?;
        if let (Some(bytes), Some(name)) = (&checkpoint.swa, &state.swa) {
            write_atomic(&self.dir.join(name), bytes)?;
        }
        write_atomic(&self.dir.join(&state.optimizer), &checkpoint.optimizer)?;
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

    /// The checkpoint as the files hold it.
    fn load(&self) -> Result<Checkpoint> {
        let state = self.state()?;
        let read = |name: &str| -> Result<Vec<u8>> {
            let path = self.dir.join(name);
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))
        };
        Ok(Checkpoint {
            weights: read(&state.weights)?,
            optimizer: read(&state.optimizer)?,
            swa: state.swa.as_deref().map(read).transpose()?,
            progress: state.progress,
        })
    }
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
    let mut session = Session::start(settings, train, val, selected)?;
    while !session.run.is_done() {
        let epoch = session.run.progress.epoch;
        let epoch_start = Instant::now();
        let batches = session.run.batches(train.len());
        let first = session.run.progress.batch.min(batches.len());
        let bar = epoch_bar(epoch, settings.hyper.epochs, &batches[first..]);
        let mut losses = PendingLosses::default();
        for chunk in &batches[first..] {
            losses.push(session.run.step(train.batch(chunk, &session.device)));
            bar.inc(chunk.len() as u64);
            let progress = &mut session.run.progress;
            if losses.len() >= PendingLosses::READ_EVERY {
                losses.read_into(&mut progress.loss_sum);
                let mean = progress.loss_sum / progress.batch as f64;
                bar.set_message(format!("{mean:.4}"));
            }
            if interrupt.load(Ordering::SeqCst) {
                losses.read_into(&mut progress.loss_sum);
                bar.abandon();
                session.checkpoint()?;
                return Ok(Outcome {
                    history: session.run.progress.history,
                    interrupted: true,
                });
            }
        }
        losses.read_into(&mut session.run.progress.loss_sum);
        bar.finish_and_clear();
        let trained: usize = batches[first..].iter().map(Vec::len).sum();
        let seq_per_s = trained as f64 / epoch_start.elapsed().as_secs_f64();
        let train_loss = session.run.end_epoch();
        if epoch.is_multiple_of(settings.hyper.val_every) || epoch == settings.hyper.epochs {
            let entry = session.validate_and_save(epoch, &batches, train_loss, seq_per_s)?;
            on_epoch(&entry);
        }
        session.checkpoint()?;
    }
    session.save(&session.run.model().valid(), "last.safetensors")?;
    Ok(Outcome {
        history: session.run.progress.history,
        interrupted: false,
    })
}

/// A run in progress with its files: everything but the loop.
struct Session<'a> {
    settings: &'a TrainSettings,
    train: &'a Dataset,
    val: &'a Dataset,
    selected: &'a SelectedDevice,
    /// The training device: `selected`'s, with autodiff.
    device: Device,
    /// The model, optimizer, weight average and progress.
    run: Run,
    checkpoints: Checkpoints,
    /// When training began, counting the time of earlier sessions of the run.
    start: Instant,
    /// The model card of every weights file the run writes.
    card: BTreeMap<String, String>,
}

impl<'a> Session<'a> {
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
        let (config, hyper) = (settings.model.clone(), settings.hyper.clone());
        let run = if has_checkpoint(&settings.out_dir) {
            let checkpoint = checkpoints.load()?;
            Run::resume(
                &checkpoint,
                config,
                hyper,
                settings.seed,
                settings.mix,
                settings.loss_scale,
                &device,
                &selected.device,
            )
            .with_context(|| format!("{}", checkpoints.dir.display()))?
        } else {
            device.seed(settings.seed);
            let model = match &settings.init {
                Some(bytes) => weights::load_into(settings.model.init(&device), bytes)?,
                None => initial_model(&settings.model, &train.labels, &device),
            };
            Run::new(
                model,
                config,
                hyper,
                settings.seed,
                settings.mix,
                settings.loss_scale,
            )
        };
        let start = Instant::now()
            .checked_sub(std::time::Duration::from_secs_f64(run.progress.wall_s))
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
        Ok(Session {
            settings,
            train,
            val,
            selected,
            device,
            run,
            checkpoints,
            start,
            card,
        })
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
        epoch: usize,
        batches: &[Vec<usize>],
        train_loss: f64,
        seq_per_s: f64,
    ) -> Result<EpochMetrics> {
        let settings = self.settings;
        let eval = self.run.model().valid();
        let (val_pearson, val_spearman) = self.validate(&eval);
        let (mut swa_pearson, mut swa_spearman) = (None, None);
        let refresh_batches = settings.hyper.swa.as_ref().map_or(0, |swa| swa.bn_batches);
        let refresh = batches
            .iter()
            .take(refresh_batches)
            .map(|chunk| self.train.batch(chunk, &self.selected.device).0);
        if let Some(averaged) = self.run.refreshed_average(refresh, &self.device)? {
            let (p, s) = self.validate(&averaged);
            (swa_pearson, swa_spearman) = (Some(p), Some(s));
            self.save(&averaged, "swa.safetensors")?;
            if let Some(average) = &mut self.run.average {
                average.model = averaged;
            }
        }
        let progress = &self.run.progress;
        let entry = EpochMetrics {
            epoch,
            step: progress.step,
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
        if progress
            .best_pearson
            .is_none_or(|best| val_pearson > best || best.is_nan())
        {
            self.run.progress.best_pearson = Some(val_pearson);
            self.save(&eval, "best.safetensors")?;
        }
        self.run.progress.history.push(entry.clone());
        let history = &self.run.progress.history;
        let log: String = history
            .iter()
            .map(|m| serde_json::to_string(m).map(|line| line + "\n"))
            .collect::<Result<_, _>>()?;
        let out = &settings.out_dir;
        write_atomic(&out.join("metrics.jsonl"), log.as_bytes())?;
        plot::learning_curve(history, &out.join("learning_curve.png"))?;
        Ok(entry)
    }

    /// Writes `model` (eval mode) as `name` in the output folder, with the card.
    fn save(&self, model: &Model, name: &str) -> Result<()> {
        let bytes = weights::to_bytes(model, &self.settings.model, &self.card, Precision::F32)?;
        write_atomic(&self.settings.out_dir.join(name), &bytes)
    }

    /// Saves the checkpoint: weights, optimizer, weight average, progress.
    fn checkpoint(&mut self) -> Result<()> {
        self.run.progress.wall_s = self.start.elapsed().as_secs_f64();
        self.checkpoints.save(&self.run.checkpoint()?)
    }
}

/// A progress bar over an epoch's sequences (hidden when stderr is not a terminal).
fn epoch_bar(epoch: usize, epochs: usize, batches: &[Vec<usize>]) -> ProgressBar {
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
