//! Train-mode sanity on the tiny config (flex): dropout is live, gradients reach
//! every parameter, and one step of `training::Stepper` (the trainer's) lowers
//! the loss, on flex and on wgpu alike.

use burn::module::{ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::Distribution;
use promoscope_model::device::select_device;
use promoscope_model::metrics::max_abs_diff;
use promoscope_model::training::{Stepper, mse};
use promoscope_model::weights::{self, Precision};
use promoscope_model::{Backend, ModelConfig};

fn batch(device: &Device, seed: u64) -> (Tensor<3>, Tensor<2>) {
    device.seed(seed);
    let config = ModelConfig::tiny();
    // Random one-hot: argmax of noise over the base axis.
    let noise = Tensor::<3>::random([16, config.seq_len, 4], Distribution::Default, device);
    let x = noise.clone().equal(noise.max_dim(2)).float();
    let y = Tensor::<2>::random([16, 1], Distribution::Uniform(0.0, 17.0), device);
    (x, y)
}

#[test]
fn dropout_makes_training_outputs_differ_run_to_run() {
    let device = Device::flex().autodiff();
    let model = ModelConfig::tiny().init(&device);
    let (x, _) = batch(&device, 1);
    let a = model
        .forward(x.clone())
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let b = model
        .forward(x.clone())
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert_ne!(a, b, "train-mode outputs should differ with dropout on");

    // In eval mode (no autodiff) the same input gives the same output.
    let eval = model.valid();
    let x = x.inner();
    let c = eval.forward(x.clone()).into_data();
    let d = eval.forward(x).into_data();
    assert_eq!(c, d);
}

/// Counts trainable parameters, and lists those whose gradient is missing or zero.
#[derive(Default)]
struct GradientCheck {
    grads: GradientsParams,
    path: Vec<String>,
    trainable: usize,
    unreached: Vec<String>,
}

impl ModuleVisitor for GradientCheck {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if !param.val().is_require_grad() {
            return; // batch-norm running statistics are buffers
        }
        self.trainable += 1;
        let reached = self
            .grads
            .get::<D>(param.id)
            .is_some_and(|grad| grad.abs().sum().into_scalar::<f32>() > 0.0);
        if !reached {
            self.unreached.push(self.path.join("."));
        }
    }
}

/// The biases of the convolutions a batch norm follows directly: the batch's
/// statistics cancel them, so training leaves them out (`BatchNorm::after`).
/// Every other parameter learns.
const BEFORE_BATCH_NORM: [&str; 5] = [
    "stem.conv.bias",
    "block1.res.convs.1.bias",
    "block2.res.convs.1.bias",
    "block3.conv.bias",
    "block3.res.convs.1.bias",
];

#[test]
fn gradients_reach_every_parameter() {
    let device = Device::flex().autodiff();
    let model = ModelConfig::tiny().init(&device);
    let (x, y) = batch(&device, 2);
    let mut check = GradientCheck {
        grads: GradientsParams::from_grads(mse(&model, x, y).backward(), &model),
        ..Default::default()
    };
    model.visit(&mut check);
    // Every tensor of the weights file but the batch-norm running statistics.
    let bytes = weights::to_bytes(
        &model.valid(),
        &ModelConfig::tiny(),
        &Default::default(),
        Precision::F32,
    )
    .unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let expected = file
        .names()
        .iter()
        .filter(|n| !n.contains(".running_"))
        .count();
    assert_eq!(check.trainable, expected);
    assert_eq!(
        check.unreached, BEFORE_BATCH_NORM,
        "parameters without a gradient"
    );
}

fn tiny_without_dropout() -> ModelConfig {
    ModelConfig::tiny().without_dropout()
}

#[test]
fn one_adam_step_lowers_the_loss_on_a_fixed_batch() {
    let device = Device::flex().autodiff();
    let model = tiny_without_dropout().init(&device);
    let (x, y) = batch(&device, 3);
    let mut stepper = Stepper::new(1.0, 0);
    let (model, before) = stepper.step(model, (x.clone(), y.clone()), 1e-3, 0);
    let before = before.into_scalar::<f32>();
    let after = mse(&model, x, y).into_scalar::<f32>();
    assert!(after < before, "loss went from {before} to {after}");
}

/// Collects every gradient, in visiting order.
struct GradientDump<'a> {
    grads: &'a GradientsParams,
    values: Vec<Vec<f32>>,
}

impl ModuleVisitor for GradientDump<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.get::<D>(param.id) {
            self.values
                .push(grad.into_data().try_into_vec_as::<f32>().unwrap());
        }
    }
}

/// What one training step did.
struct StepResult {
    loss: f32,
    gradients: Vec<Vec<f32>>,
    after: f32,
}

/// Loss, gradients, and the loss after one step of the trainer's `Stepper`,
/// from the same weights and batch.
fn one_step(weights: &[u8], (x, y): (TensorData, TensorData), device: &Device) -> StepResult {
    let (model, _) = weights::load(weights, device).unwrap();
    let x = Tensor::<3>::from_data(x, device);
    let y = Tensor::<2>::from_data(y, device);
    let mut stepper = Stepper::new(1.0, 0);
    let (loss, grads) = stepper.gradients(&model, x.clone(), y.clone());
    let mut dump = GradientDump {
        grads: &grads,
        values: Vec::new(),
    };
    model.visit(&mut dump);
    let gradients = dump.values;
    let model = stepper.apply(model, grads, 1e-3);
    StepResult {
        loss: loss.into_scalar::<f32>(),
        gradients,
        after: mse(&model, x, y).into_scalar::<f32>(),
    }
}

/// How `got`'s step differs from `want`'s beyond rounding, if it does: the
/// loss within 1e-4 of its size, every one of `parameters` gradients within
/// 1e-4 of the largest, and the step lowering the loss. A NaN anywhere differs.
fn step_difference(want: &StepResult, got: &StepResult, parameters: usize) -> Option<String> {
    let loss_close = (want.loss - got.loss).abs() < 1e-4 * want.loss.abs().max(1.0);
    if !loss_close {
        return Some(format!("loss {} vs {}", want.loss, got.loss));
    }
    let counts = (want.gradients.len(), got.gradients.len());
    if counts != (parameters, parameters) {
        return Some(format!("{counts:?} gradients of {parameters} parameters"));
    }
    let scale = want
        .gradients
        .iter()
        .flatten()
        .fold(1.0f32, |m, g| m.max(g.abs()));
    let worst = want
        .gradients
        .iter()
        .zip(&got.gradients)
        .map(|(a, b)| max_abs_diff(a, b))
        .fold(0.0, f32::max);
    println!("largest gradient difference {worst:.2e} (largest gradient {scale:.2e})");
    if worst > 1e-4 * scale {
        return Some(format!("gradients differ by {worst}"));
    }
    let lowered = got.after < got.loss;
    if !lowered {
        return Some(format!(
            "the step took the loss from {} to {}",
            got.loss, got.after
        ));
    }
    None
}

/// The tiny model's parameters that get a gradient: the trainable ones but
/// [`BEFORE_BATCH_NORM`].
fn learning_parameters() -> usize {
    let mut check = GradientCheck::default();
    ModelConfig::tiny()
        .init(&Device::flex().autodiff())
        .visit(&mut check);
    check.trainable - BEFORE_BATCH_NORM.len()
}

/// A training step on wgpu (lavapipe in CI, WGSL shaders): flex's loss and
/// gradients, and the step lowers the loss.
#[test]
fn a_training_step_on_wgpu_matches_flex() {
    let wgpu = select_device(Backend::Wgpu).expect("wgpu needs an adapter (lavapipe in CI)");
    let config = tiny_without_dropout();
    let start = weights::to_bytes(
        &config.init(&Device::flex()),
        &config,
        &Default::default(),
        Precision::F32,
    )
    .unwrap();
    // One batch for both: drawn twice, other tests' draws from flex's one
    // generator could fall between the seed and the draw.
    let (x, y) = batch(&Device::flex(), 4);
    let data = (x.into_data(), y.into_data());
    let flex = one_step(&start, data.clone(), &Device::flex().autodiff());
    let wgpu = one_step(&start, data, &wgpu.device.clone().autodiff());
    println!("wgpu vs flex: loss {} / {}", flex.loss, wgpu.loss);
    let parameters = learning_parameters();
    assert!(parameters > 0);
    let difference = step_difference(&flex, &wgpu, parameters);
    assert!(
        difference.is_none(),
        "wgpu vs flex: {}",
        difference.unwrap()
    );
}

/// The comparison above fails on a NaN in the loss or any gradient, on a
/// missing gradient, and on a step that does not lower the loss.
#[test]
fn the_step_comparison_fails_on_nan_and_on_missing_gradients() {
    let good = StepResult {
        loss: 2.0,
        gradients: vec![vec![0.5, -1.0], vec![0.25]],
        after: 1.5,
    };
    let same = || StepResult {
        gradients: good.gradients.clone(),
        ..good
    };
    assert_eq!(step_difference(&good, &same(), 2), None);
    let mut nan_gradient = same();
    nan_gradient.gradients[1][0] = f32::NAN;
    let broken = [
        StepResult {
            loss: f32::NAN,
            ..same()
        },
        nan_gradient,
        StepResult {
            after: f32::NAN,
            ..same()
        },
        StepResult {
            gradients: Vec::new(),
            ..same()
        },
    ];
    for got in &broken {
        assert!(
            step_difference(&good, got, 2).is_some(),
            "{:?}",
            got.gradients
        );
    }
    let nothing = StepResult {
        gradients: Vec::new(),
        ..same()
    };
    assert!(
        step_difference(&nothing, &nothing, 2).is_some(),
        "neither side collected a gradient"
    );
}
