//! A training run between its steps: which rows an epoch trains on and in
//! what order, the learning rate of each step, the weight average, and a
//! checkpoint as bytes from which the run continues exactly. One loop body
//! for `promoscope train` (which adds files, validation and a progress bar)
//! and the page's full fine-tuning (which adds its workers and the
//! browser's storage).

use std::collections::BTreeMap;

use burn::module::Param;
use burn::prelude::*;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha12Rng;
use serde::{Deserialize, Serialize};

use super::{Hyperparameters, Stepper, adam};
use crate::Model;
use crate::config::ModelConfig;
use crate::swa::{self, WeightAverage};
use crate::weights::{self, Precision, WeightsError};

/// Rows mixed into every epoch besides the training rows: the last `rows`
/// rows of the training set (e.g. random sequences labelled by a teacher),
/// of which `per_epoch` are drawn afresh each epoch. They keep the network
/// near what it was pre-trained on while it learns the measured labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mix {
    /// How many of the training set's rows are mixed-in rows (its last ones).
    pub rows: usize,
    /// How many of them join each epoch.
    pub per_epoch: usize,
}

/// One validation: a line of a run's `metrics.jsonl`.
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

/// A run as bytes: its progress, its model's weights, Adam's state and the
/// weight average's weights. [`Run::resume`] continues from it.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// Where the run stands.
    pub progress: Progress,
    /// The model (a `.safetensors`).
    pub weights: Vec<u8>,
    /// Adam's moments and step counts (burn's record bytes).
    pub optimizer: Vec<u8>,
    /// The weight average (a `.safetensors`), once averaging started.
    pub swa: Option<Vec<u8>>,
}

/// Why a run cannot continue from a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The weights of the model or of the average.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// Adam's state.
    #[error("the optimizer's state: {0}")]
    Optimizer(String),
}

/// Batch losses still on the device. Reading one back waits for the device,
/// so they are read together every [`Self::READ_EVERY`] steps: in between, the
/// host queues the next steps while a GPU runs.
#[derive(Default)]
pub struct PendingLosses(Vec<Tensor<1>>);

impl PendingLosses {
    /// How many steps' losses wait before they are read.
    pub const READ_EVERY: usize = 32;

    /// One step's loss.
    pub fn push(&mut self, loss: Tensor<1>) {
        self.0.push(loss);
    }

    /// How many losses wait.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none wait.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The waiting losses in step order, as one tensor (`None` when none
    /// wait), forgotten here: read it back synchronously or not.
    pub fn take(&mut self) -> Option<Tensor<1>> {
        (!self.0.is_empty()).then(|| Tensor::cat(std::mem::take(&mut self.0), 0))
    }

    /// Reads the waiting losses back, adds them to `sum` in step order (so
    /// the sum does not depend on when they were read) and forgets them.
    pub fn read_into(&mut self, sum: &mut f64) {
        if let Some(losses) = self.take() {
            let values = losses
                .into_data()
                .try_into_vec_as::<f32>()
                .expect("a float tensor reads as f32");
            for value in values {
                *sum += f64::from(value);
            }
        }
    }
}

/// A training run: its model (on an autodiff device), Adam, the weight
/// average and where it stands; the recipe's numbers and the seed.
pub struct Run {
    /// The network's config.
    pub config: ModelConfig,
    /// The recipe's numbers.
    pub hyper: Hyperparameters,
    /// Seed of shuffling and dropout.
    pub seed: u64,
    /// Mixed-in rows, when set.
    pub mix: Option<Mix>,
    /// Where the run stands.
    pub progress: Progress,
    /// The weight average, once started (on the inference device).
    pub average: Option<WeightAverage>,
    /// The model; taken only within [`Run::step`].
    model: Option<Model>,
    stepper: Stepper,
}

impl Run {
    /// A run from `model` (on an autodiff device), at its first epoch.
    pub fn new(
        model: Model,
        config: ModelConfig,
        hyper: Hyperparameters,
        seed: u64,
        mix: Option<Mix>,
        loss_scale: f32,
    ) -> Self {
        Self {
            config,
            hyper,
            seed,
            mix,
            progress: Progress {
                epoch: 1,
                ..Progress::default()
            },
            average: None,
            model: Some(model),
            stepper: Stepper::new(loss_scale, seed),
        }
    }

    /// The run saved in `checkpoint`, its model on `device` (autodiff) and
    /// its weight average on `inference`.
    #[allow(clippy::too_many_arguments)]
    pub fn resume(
        checkpoint: &Checkpoint,
        config: ModelConfig,
        hyper: Hyperparameters,
        seed: u64,
        mix: Option<Mix>,
        loss_scale: f32,
        device: &Device,
        inference: &Device,
    ) -> Result<Self, RunError> {
        let model = weights::load_into(config.init(device), &checkpoint.weights)?;
        let average = match &checkpoint.swa {
            Some(bytes) => Some(WeightAverage::resume(
                weights::load_into(config.init(inference), bytes)?,
                checkpoint.progress.swa_count,
            )),
            None => None,
        };
        let optimizer = adam(loss_scale)
            .from_bytes(burn::tensor::Bytes::from_bytes_vec(
                checkpoint.optimizer.clone(),
            ))
            .map_err(|e| RunError::Optimizer(format!("{e:?}")))?;
        Ok(Self {
            config,
            hyper,
            seed,
            mix,
            progress: checkpoint.progress.clone(),
            average,
            model: Some(model),
            stepper: Stepper::resume(optimizer, loss_scale, seed),
        })
    }

    /// The model as trained so far (on the autodiff device).
    pub fn model(&self) -> &Model {
        self.model
            .as_ref()
            .expect("the model is back after every step")
    }

    /// Whether every epoch has run.
    pub fn is_done(&self) -> bool {
        self.progress.epoch > self.hyper.epochs
    }

    /// The batches of the epoch in progress over a training set of `rows`
    /// rows ([`Run::epoch_batches`]).
    pub fn batches(&self, rows: usize) -> Vec<Vec<usize>> {
        self.epoch_batches(self.progress.epoch, rows)
    }

    /// The batches of (1-based) `epoch` over a training set of `rows` rows:
    /// [`epoch_order`] in batches of the recipe's size, each of at least two
    /// rows (batch norm needs two).
    pub fn epoch_batches(&self, epoch: usize, rows: usize) -> Vec<Vec<usize>> {
        let order = epoch_order(self.seed, rows, self.mix, self.hyper.epoch_size, epoch);
        order
            .chunks(self.hyper.batch_size)
            .filter(|c| c.len() >= 2)
            .map(<[usize]>::to_vec)
            .collect()
    }

    /// One optimizer step on the batch `x`, `y` (the next of
    /// [`Run::batches`]) at the epoch's learning rate, and the weight
    /// average's share of it: the batch's loss, left on the device.
    pub fn step(&mut self, batch: (Tensor<3>, Tensor<2>)) -> Tensor<1> {
        let lr = self.hyper.lr_at(self.progress.epoch);
        let model = self
            .model
            .take()
            .expect("the model is back after every step");
        let (model, loss) = self.stepper.step(model, batch, lr, self.progress.step);
        self.progress.step += 1;
        self.progress.batch += 1;
        if let Some(swa) = &self.hyper.swa
            && self.progress.step >= swa.start
            && (self.progress.step - swa.start).is_multiple_of(swa.every.max(1))
        {
            match &mut self.average {
                Some(average) => average.add(&model),
                None => self.average = Some(WeightAverage::new(&model)),
            }
            self.progress.swa_count = self.average.as_ref().map_or(0, |a| a.count);
        }
        self.model = Some(model);
        loss
    }

    /// Ends the epoch in progress: its mean batch loss (of the losses added
    /// to `progress.loss_sum`); the next epoch starts at its first batch.
    pub fn end_epoch(&mut self) -> f64 {
        let loss = self.progress.loss_sum / self.progress.batch.max(1) as f64;
        self.progress.epoch += 1;
        self.progress.batch = 0;
        self.progress.loss_sum = 0.0;
        loss
    }

    /// The weight average with its batch-norm statistics recomputed from
    /// `batches` (training-mode passes on `autodiff`); `None` before
    /// averaging starts.
    pub fn refreshed_average(
        &self,
        batches: impl IntoIterator<Item = Tensor<3>>,
        autodiff: &Device,
    ) -> Result<Option<Model>, WeightsError> {
        self.average
            .as_ref()
            .map(|average| {
                swa::refresh_batch_norm(average.model.clone(), &self.config, batches, autodiff)
            })
            .transpose()
    }

    /// The run as bytes.
    pub fn checkpoint(&self) -> Result<Checkpoint, RunError> {
        let to_bytes = |model: &Model| {
            weights::to_bytes(model, &self.config, &BTreeMap::new(), Precision::F32)
        };
        let optimizer = self
            .stepper
            .optimizer
            .into_bytes()
            .map_err(|e| RunError::Optimizer(format!("{e:?}")))?
            .to_vec();
        Ok(Checkpoint {
            progress: self.progress.clone(),
            weights: to_bytes(&self.model().valid())?,
            optimizer,
            swa: self
                .average
                .as_ref()
                .map(|a| to_bytes(&a.model))
                .transpose()?,
        })
    }
}

/// A fresh network whose output bias is the labels' mean, so that it starts
/// by predicting the mean: from a zero bias, the first epoch on raw DREAM
/// labels (about 0–17) was spent moving the bias alone.
pub fn initial_model(config: &ModelConfig, labels: &[f32], device: &Device) -> Model {
    let mut model = config.init(device);
    let mean = labels.iter().map(|&v| f64::from(v)).sum::<f64>() / labels.len().max(1) as f64;
    model.head.out.bias = Some(Param::from_tensor(Tensor::from_floats(
        [mean as f32],
        device,
    )));
    weights::with_stable_ids(model)
}

/// An epoch's rows of a training set of `rows` in training order: every
/// measured row and the epoch's draw of mixed-in rows, shuffled, cut to
/// `epoch_size`; a function of (seed, epoch) alone, so a resumed run repeats
/// what the interrupted one would have done.
pub fn epoch_order(
    seed: u64,
    rows: usize,
    mix: Option<Mix>,
    epoch_size: usize,
    epoch: usize,
) -> Vec<usize> {
    // rand's StdRng, whose draws the trainer's runs were shuffled with.
    let mut rng = ChaCha12Rng::seed_from_u64(seed.wrapping_add(epoch as u64));
    let mix = mix.unwrap_or(Mix {
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
    order.truncate(epoch_size.min(order.len()));
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::training::Recipe;

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
        assert!(pending.is_empty());
        pending.read_into(&mut sum);
        assert_eq!(sum, expected, "read losses are not added twice");
    }

    #[test]
    fn an_epoch_holds_every_measured_row_and_a_fresh_draw_of_mixed_rows() {
        let mix = Some(Mix {
            rows: 50,
            per_epoch: 10,
        });
        let (measured, rows) = (30, 80);
        let draw = |epoch| {
            let mut order = epoch_order(0, rows, mix, usize::MAX, epoch);
            assert_eq!(
                order,
                epoch_order(0, rows, mix, usize::MAX, epoch),
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
        let mut order = epoch_order(0, rows, None, usize::MAX, 1);
        order.sort_unstable();
        assert_eq!(
            order,
            (0..rows).collect::<Vec<_>>(),
            "without a mix: every row"
        );
        assert_eq!(
            epoch_order(0, rows, None, 25, 1).len(),
            25,
            "cut to the epoch size"
        );
    }

    #[test]
    fn fine_tuning_is_the_last_stage_of_long_enough_runs() {
        let seed = |epochs| Hyperparameters {
            epochs,
            ..Recipe::Seed.hyperparameters(1, None, Some(1))
        };
        assert_eq!(seed(850).lr_at(1), 1e-4);
        assert_eq!(seed(850).lr_at(750), 1e-4);
        assert_eq!(seed(850).lr_at(751), 3e-5);
        assert_eq!(seed(850).lr_at(850), 3e-5);
        assert_eq!(seed(12).lr_at(12), 1e-4);
    }

    #[test]
    fn a_fresh_model_starts_at_the_label_mean() {
        let device = Device::flex().autodiff();
        let model = initial_model(&ModelConfig::tiny(), &[1.0, 3.0, 8.0], &device);
        let bias = model.head.out.bias.as_ref().unwrap().val();
        assert_eq!(bias.into_data().try_to_vec::<f32>().unwrap(), [4.0]);
    }

    /// Rows `rows` of a tiny model's random data set, on `device`.
    fn batch(rows: &[usize], device: &Device) -> (Tensor<3>, Tensor<2>) {
        let config = ModelConfig::tiny();
        let x: Vec<f32> = rows
            .iter()
            .flat_map(|&r| {
                (0..config.seq_len * 4).map(move |i| f32::from(u8::from((i / 4 + r) % 4 == i % 4)))
            })
            .collect();
        let y: Vec<f32> = rows.iter().map(|&r| (r % 7) as f32).collect();
        (
            Tensor::from_data(TensorData::new(x, [rows.len(), config.seq_len, 4]), device),
            Tensor::from_data(TensorData::new(y, [rows.len(), 1]), device),
        )
    }

    /// Trains `run` on 40 rows until `stop` steps have run (or it is done).
    fn train_until(run: &mut Run, stop: usize, device: &Device) {
        while !run.is_done() && run.progress.step < stop {
            let batches = run.batches(40);
            for chunk in &batches[run.progress.batch..] {
                let mut losses = PendingLosses::default();
                losses.push(run.step(batch(chunk, device)));
                losses.read_into(&mut run.progress.loss_sum);
                if run.progress.step == stop {
                    return;
                }
            }
            run.end_epoch();
        }
    }

    /// (Without dropout: its masks come from the device's generator, which
    /// the tests running beside this one seed and draw from too; a resumed
    /// run's masks are `promoscope train`'s tests', each run a process.)
    #[test]
    fn a_run_resumed_from_its_checkpoint_repeats_the_uninterrupted_one() {
        let device = Device::flex().autodiff();
        let config = ModelConfig::tiny().without_dropout();
        let hyper = Recipe::SmallData.hyperparameters(40, Some(8), None);
        // Both runs from one network (the generator is shared, see above).
        let model = initial_model(&config, &[1.0, 2.0], &device);
        let bytes = weights::to_bytes(&model.valid(), &config, &BTreeMap::new(), Precision::F32);
        let bytes = bytes.unwrap();
        let start = || {
            let model = weights::load_into(config.init(&device), &bytes).unwrap();
            Run::new(model, config.clone(), hyper.clone(), 3, None, 1.0)
        };
        let mut whole = start();
        train_until(&mut whole, usize::MAX, &device);
        assert!(whole.is_done());
        assert_eq!(whole.progress.step, 4 * 5);
        assert!(
            whole.average.is_some(),
            "averaging starts in the third epoch"
        );
        let mut first = start();
        train_until(&mut first, 13, &device);
        let saved = first.checkpoint().unwrap();
        assert_eq!((saved.progress.epoch, saved.progress.batch), (3, 3));
        let mut resumed = Run::resume(
            &saved,
            config,
            hyper,
            3,
            None,
            1.0,
            &device,
            &Device::flex(),
        )
        .unwrap();
        train_until(&mut resumed, usize::MAX, &device);
        // Every parameter of the model and of the average, end to end.
        let values = |run: &Run| -> Vec<f32> {
            let average = &run.average.as_ref().unwrap().model;
            [run.model().valid(), average.clone()]
                .iter()
                .flat_map(|m| weights::named_tensors(m).into_values())
                .flat_map(|t| t.into_data().try_to_vec::<f32>().unwrap())
                .collect()
        };
        let distance = crate::metrics::max_abs_diff(&values(&whole), &values(&resumed));
        assert!(
            distance <= 1e-5,
            "the resumed run's weights differ by {distance}"
        );
        assert_eq!(whole.progress.swa_count, resumed.progress.swa_count);
        assert_eq!(whole.progress.step, resumed.progress.step);
    }

    #[test]
    fn a_damaged_checkpoint_is_an_error() {
        let device = Device::flex().autodiff();
        let config = ModelConfig::tiny();
        let hyper = Recipe::SmallData.hyperparameters(40, Some(8), None);
        let run = Run::new(
            config.init(&device),
            config.clone(),
            hyper.clone(),
            0,
            None,
            1.0,
        );
        let mut saved = run.checkpoint().unwrap();
        saved.optimizer.truncate(3);
        let err = Run::resume(
            &saved,
            config,
            hyper,
            0,
            None,
            1.0,
            &device,
            &Device::flex(),
        )
        .err()
        .expect("a cut optimizer state is refused");
        assert!(
            err.to_string().starts_with("the optimizer's state"),
            "{err}"
        );
    }
}
