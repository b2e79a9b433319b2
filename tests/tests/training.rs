//! Train-mode sanity on the tiny config (flex): dropout is live, gradients reach
//! every parameter, and one Adam step lowers the loss.

use burn::module::{ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::Distribution;
use promoscope_model::device::select_device;
use promoscope_model::weights::{self, Precision};
use promoscope_model::{Backend, Model, ModelConfig};

fn batch(device: &Device, seed: u64) -> (Tensor<3>, Tensor<2>) {
    device.seed(seed);
    let config = ModelConfig::tiny();
    // Random one-hot: argmax of noise over the base axis.
    let noise = Tensor::<3>::random([16, config.seq_len, 4], Distribution::Default, device);
    let x = noise.clone().equal(noise.max_dim(2)).float();
    let y = Tensor::<2>::random([16, 1], Distribution::Uniform(0.0, 17.0), device);
    (x, y)
}

fn mse(model: &Model, x: Tensor<3>, y: Tensor<2>) -> Tensor<1> {
    (model.forward(x) - y).powi_scalar(2).mean()
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
    // The biases of the convolutions a batch norm follows directly: the
    // batch's statistics cancel them, so training leaves them out
    // (`BatchNorm::after`). Every other parameter learns.
    let before_batch_norm = [
        "stem.conv.bias",
        "block1.res.convs.1.bias",
        "block2.res.convs.1.bias",
        "block3.conv.bias",
        "block3.res.convs.1.bias",
    ];
    assert_eq!(
        check.unreached, before_batch_norm,
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
    let mut optimizer = AdamConfig::new().with_epsilon(1e-7).init();

    let before = mse(&model, x.clone(), y.clone());
    let grads = GradientsParams::from_grads(before.backward(), &model);
    let before = before.into_scalar::<f32>();
    let model = optimizer.step(1e-3, model, grads);
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

/// Loss, gradients, and the loss after one Adam step, from the same weights and batch.
fn one_step(
    weights: &[u8],
    (x, y): (TensorData, TensorData),
    device: &Device,
) -> (f32, Vec<Vec<f32>>, f32) {
    let (model, _) = weights::load(weights, device).unwrap();
    let x = Tensor::<3>::from_data(x, device);
    let y = Tensor::<2>::from_data(y, device);
    let loss = mse(&model, x.clone(), y.clone());
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let mut dump = GradientDump {
        grads: &grads,
        values: Vec::new(),
    };
    model.visit(&mut dump);
    let gradients = dump.values;
    let model = AdamConfig::new()
        .with_epsilon(1e-7)
        .init()
        .step(1e-3, model, grads);
    let after = mse(&model, x, y).into_scalar::<f32>();
    (loss.into_scalar::<f32>(), gradients, after)
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
    let (flex_loss, flex_grads, _) = one_step(&start, data.clone(), &Device::flex().autodiff());
    let (wgpu_loss, wgpu_grads, wgpu_after) =
        one_step(&start, data, &wgpu.device.clone().autodiff());
    assert!(
        (flex_loss - wgpu_loss).abs() < 1e-4 * flex_loss.abs().max(1.0),
        "{flex_loss} vs {wgpu_loss}"
    );
    assert_eq!(flex_grads.len(), wgpu_grads.len());
    let scale = flex_grads
        .iter()
        .flatten()
        .fold(1.0f32, |m, g| m.max(g.abs()));
    let worst = flex_grads
        .iter()
        .zip(&wgpu_grads)
        .map(|(a, b)| promoscope_tests::max_abs_diff(a, b))
        .fold(0.0, f32::max);
    println!(
        "wgpu vs flex: loss {flex_loss} / {wgpu_loss}, largest gradient difference {worst:.2e} (largest gradient {scale:.2e})"
    );
    assert!(worst <= 1e-4 * scale, "gradients differ by {worst}");
    assert!(
        wgpu_after < wgpu_loss,
        "wgpu step: loss {wgpu_loss} -> {wgpu_after}"
    );
}
