//! One training step: the loss, its gradients and Adam's update. The one
//! loop body that `promoscope train` runs, `promoscope bench` times and the
//! tests check (cargo feature `train`).

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;

use crate::Model;

mod adam;

pub use adam::{Adam, adam};

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
