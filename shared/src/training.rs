//! One training step (the loss, its gradients and Adam's update) and the
//! recipes' numbers: the loop body that `promoscope train` runs,
//! `promoscope bench` times and the tests check (cargo feature `train`).

use std::fmt;
use std::str::FromStr;

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;

use crate::Model;

mod adam;
mod run;

pub use adam::{Adam, adam};
pub use run::{
    Checkpoint, EpochMetrics, Mix, PendingLosses, Progress, Run, RunError, epoch_order,
    initial_model,
};

/// The loss scale of mixed-precision training: lifts small gradients out of
/// f16's underflow range (below 6e-8); a static scale common for
/// convolutional networks, not tuned here. Adam's epsilon is scaled with it,
/// so the update is the f32 one.
pub const MIXED_LOSS_SCALE: f32 = 128.0;

/// The loss scale of a run: [`MIXED_LOSS_SCALE`] with f16 convolution
/// products (`conv::set_half_products`), 1 in f32.
pub fn loss_scale(mixed_precision: bool) -> f32 {
    if mixed_precision {
        MIXED_LOSS_SCALE
    } else {
        1.0
    }
}

/// The mean squared error of `model`'s predictions for `x` against `y`.
pub fn mse(model: &Model, x: Tensor<3>, y: Tensor<2>) -> Tensor<1> {
    (model.forward(x) - y).powi_scalar(2).mean()
}

/// What the steps of a run share: the optimizer (and its state), the loss
/// scale and the seed. Models live on an autodiff device.
pub struct Stepper {
    /// Adam and its moments: what a checkpoint saves.
    pub optimizer: ModuleOptimizer,
    /// What the loss is multiplied by before `backward` ([`loss_scale`]).
    pub loss_scale: f32,
    /// The run's seed: with the step's number, dropout's randomness.
    pub seed: u64,
}

impl Stepper {
    /// A fresh Adam for gradients `loss_scale` times the loss's.
    pub fn new(loss_scale: f32, seed: u64) -> Self {
        Self::resume(adam(loss_scale), loss_scale, seed)
    }

    /// Continues with an optimizer read back from a checkpoint.
    pub fn resume(optimizer: ModuleOptimizer, loss_scale: f32, seed: u64) -> Self {
        Self {
            optimizer,
            loss_scale,
            seed,
        }
    }

    /// Step `step` of the run (counted from 0 over the whole run) on the
    /// batch `x`, `y` at learning rate `lr`: the model after the step, and
    /// the batch's loss (unscaled, left on the device). Dropout's masks are
    /// a function of (seed, step), so a resumed run repeats the interrupted one.
    pub fn step(
        &mut self,
        model: Model,
        (x, y): (Tensor<3>, Tensor<2>),
        lr: f64,
        step: usize,
    ) -> (Model, Tensor<1>) {
        x.device()
            .seed(self.seed ^ (step as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let (loss, grads) = self.gradients(&model, x, y);
        (self.apply(model, grads, lr), loss)
    }

    /// The batch's loss (unscaled, as a plain tensor off the graph) and the
    /// gradients of the scaled loss.
    pub fn gradients(
        &self,
        model: &Model,
        x: Tensor<3>,
        y: Tensor<2>,
    ) -> (Tensor<1>, GradientsParams) {
        let loss = mse(model, x, y);
        let scaled = loss.clone().mul_scalar(self.loss_scale);
        let grads = GradientsParams::from_grads(scaled.backward(), model);
        (loss.inner(), grads)
    }

    /// Adam's update of `model` by `grads` at learning rate `lr`.
    pub fn apply(&mut self, model: Model, grads: GradientsParams, lr: f64) -> Model {
        self.optimizer.step(lr, model, grads)
    }
}

/// `--recipe`: a named set of hyperparameters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Recipe {
    /// The paper's, for the 6.7 million DREAM sequences.
    #[default]
    Seed,
    /// For 5,000–100,000 sequences: every epoch one pass in batches of 64,
    /// four passes, weight averaging from the third.
    SmallData,
}

/// The numbers of a training run: a recipe's, then single values overridden.
#[derive(Clone, Debug, PartialEq)]
pub struct Hyperparameters {
    /// Epochs.
    pub epochs: usize,
    /// Sequences per epoch (a random slice of the training set, or all of it).
    pub epoch_size: usize,
    /// Sequences per step.
    pub batch_size: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// The last this many epochs are the fine-tuning stage...
    pub fine_tune_epochs: usize,
    /// ...at this learning rate.
    pub fine_tune_lr: f64,
    /// Stochastic weight averaging, when set.
    pub swa: Option<SwaSettings>,
    /// Validate every this many epochs (and after the last).
    pub val_every: usize,
}

impl Recipe {
    /// The recipe's numbers for epochs of `epoch_rows` rows, with the batch
    /// and epoch sizes given (`None`: the recipe's), which the small-data
    /// recipe's step counts follow.
    pub fn hyperparameters(
        self,
        epoch_rows: usize,
        batch_size: Option<usize>,
        epoch_size: Option<usize>,
    ) -> Hyperparameters {
        match self {
            Recipe::Seed => Hyperparameters {
                epochs: 850,
                epoch_size: epoch_size.unwrap_or(307_200),
                batch_size: batch_size.unwrap_or(1024),
                learning_rate: 1e-4,
                fine_tune_epochs: 100,
                fine_tune_lr: 3e-5,
                swa: Some(SwaSettings {
                    start: 150,
                    every: 30,
                    bn_batches: 16,
                }),
                val_every: 3,
            },
            Recipe::SmallData => {
                let batch_size = batch_size.unwrap_or(64);
                let epoch_size = epoch_size.unwrap_or(epoch_rows);
                let steps_per_epoch = epoch_size.min(epoch_rows).div_ceil(batch_size.max(1));
                Hyperparameters {
                    epochs: 4,
                    epoch_size,
                    batch_size,
                    learning_rate: 5e-4,
                    fine_tune_epochs: 1,
                    fine_tune_lr: 1e-4,
                    swa: Some(SwaSettings {
                        start: 2 * steps_per_epoch,
                        every: (steps_per_epoch / 5).max(1),
                        bn_batches: 16,
                    }),
                    val_every: 1,
                }
            }
        }
    }
}

impl Hyperparameters {
    /// The learning rate of a (1-based) epoch: the fine-tuning rate in the
    /// last `fine_tune_epochs`, when the run is longer than that stage.
    pub fn lr_at(&self, epoch: usize) -> f64 {
        if self.epochs > self.fine_tune_epochs && epoch + self.fine_tune_epochs > self.epochs {
            self.fine_tune_lr
        } else {
            self.learning_rate
        }
    }
}

impl Recipe {
    /// The names [`FromStr`] accepts.
    pub const NAMES: [&'static str; 2] = ["seed", "small-data"];
}

impl FromStr for Recipe {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "seed" => Ok(Recipe::Seed),
            "small-data" => Ok(Recipe::SmallData),
            other => Err(format!(
                "unknown recipe {other:?} (expected one of {})",
                Recipe::NAMES.join(", ")
            )),
        }
    }
}

impl fmt::Display for Recipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Recipe::Seed => "seed",
            Recipe::SmallData => "small-data",
        })
    }
}

/// When weights are averaged, in optimizer steps: the seed's
/// `tfa.optimizers.SWA(start_averaging=150, average_period=30)` counts
/// optimizer iterations.
#[derive(Clone, Debug, PartialEq)]
pub struct SwaSettings {
    /// First step averaged.
    pub start: usize,
    /// Steps between averaged points.
    pub every: usize,
    /// Training batches run to refresh the averaged model's batch-norm statistics.
    pub bn_batches: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipe_names_round_trip_and_unknown_names_are_errors() {
        for name in Recipe::NAMES {
            assert_eq!(name.parse::<Recipe>().unwrap().to_string(), name);
        }
        let err = "fast".parse::<Recipe>().unwrap_err();
        assert_eq!(
            err,
            "unknown recipe \"fast\" (expected one of seed, small-data)"
        );
    }

    #[test]
    fn small_data_steps_follow_the_batch_and_epoch_sizes() {
        let swa = |hyper: Hyperparameters| hyper.swa.map(|s| (s.start, s.every));
        // 1,000 rows in batches of 64: 16 steps a pass.
        let plain = Recipe::SmallData.hyperparameters(1000, None, None);
        assert_eq!((plain.batch_size, plain.epoch_size), (64, 1000));
        assert_eq!(swa(plain), Some((32, 3)));
        let given = Recipe::SmallData.hyperparameters(1000, Some(100), Some(500));
        assert_eq!((given.batch_size, given.epoch_size), (100, 500));
        assert_eq!(swa(given), Some((10, 1)));
    }
}
