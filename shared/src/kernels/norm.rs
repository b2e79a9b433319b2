//! Normalisation over the channel axis of channels-last activations.

use burn::module::{Initializer, Param, RunningState};
use burn::prelude::*;

use crate::kernels::memo::Key;

#[cfg(any(not(target_family = "wasm"), feature = "train"))]
mod batch;

/// A wasm build without `train` compiles burn without autodiff: no device
/// there is an autodiff one, so batch norms always take their running statistics.
#[cfg(all(target_family = "wasm", not(feature = "train")))]
mod batch {
    use burn::prelude::*;

    pub(super) fn normalize<const D: usize>(
        _: Tensor<D>,
        _: Tensor<1>,
        _: Tensor<1>,
        _: f64,
    ) -> (Tensor<D>, Tensor<1>, Tensor<1>) {
        unreachable!("batch statistics are taken in training, which needs autodiff")
    }
}

/// Configuration of a [`BatchNorm`].
#[derive(Config, Debug)]
pub struct BatchNormConfig {
    /// Channels (the last axis).
    pub channels: usize,
    /// Keras-convention momentum: `running = momentum·running + (1-momentum)·batch`.
    #[config(default = 0.99)]
    pub momentum: f64,
    /// Added to the variance.
    #[config(default = 1e-3)]
    pub epsilon: f64,
}

impl BatchNormConfig {
    /// Identity statistics: gamma 1, beta 0, mean 0, variance 1.
    pub fn init(&self, device: &Device) -> BatchNorm {
        BatchNorm {
            weight: Initializer::Ones.init([self.channels], device),
            bias: Initializer::Zeros.init([self.channels], device),
            running_mean: RunningState::new(Tensor::zeros([self.channels], device)),
            running_var: RunningState::new(Tensor::ones([self.channels], device)),
            momentum: self.momentum,
            epsilon: self.epsilon,
        }
    }
}

/// Batch normalisation over the last axis; statistics over every other axis.
///
/// On an autodiff device it normalises with the batch's statistics (biased
/// variance, as Keras) and updates the running ones; elsewhere it uses the
/// running statistics.
///
/// **NOTE:** momentum follows Keras (0.99 keeps 99% of the old value); burn's
/// own `BatchNorm` uses the opposite convention (its 0.01 is this 0.99).
///
/// # Shapes
/// - input and output: `[..., channels]`
#[derive(Module, Debug)]
pub struct BatchNorm {
    /// Gamma `[channels]`.
    pub weight: Param<Tensor<1>>,
    /// Beta `[channels]`.
    pub bias: Param<Tensor<1>>,
    /// Running mean `[channels]`.
    pub running_mean: RunningState<Tensor<1>>,
    /// Running (biased) variance `[channels]`.
    pub running_var: RunningState<Tensor<1>>,
    /// Keras-convention momentum.
    pub momentum: f64,
    /// Added to the variance.
    pub epsilon: f64,
}

impl BatchNorm {
    /// Normalises `x`.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let shape = x.dims();
        let channels = shape[D - 1];
        let [expected] = self.weight.dims();
        assert_eq!(
            channels, expected,
            "batch norm has {expected} channels, input has {channels}"
        );
        match self.eval_affine() {
            Some((scale, shift)) => x * scale.unsqueeze() + shift.unsqueeze(),
            None => self.batch_normalize(x, None),
        }
    }

    /// Normalises `x` with its batch's statistics and blends them into the
    /// running ones. `offset` is a per-channel shift that `x` was computed
    /// without: it would move the batch mean by itself and cancel in the
    /// output, so it only moves the running mean.
    fn batch_normalize<const D: usize>(
        &self,
        x: Tensor<D>,
        offset: Option<Tensor<1>>,
    ) -> Tensor<D> {
        let (y, mean, var) = batch::normalize(x, self.weight.val(), self.bias.val(), self.epsilon);
        let batch_mean = match offset {
            Some(offset) => mean + offset.detach(),
            None => mean,
        };
        self.update_running(batch_mean, var);
        y
    }

    /// `self.forward(layer(weight, bias))` for a layer that is linear in its
    /// weight and bias and whose output channels are the weight's first axis
    /// (a convolution, a dense layer).
    ///
    /// In eval mode the per-channel map is folded into the weight and bias
    /// instead (`W·scale`, `b·scale + shift`): the layer's output is then final
    /// and never passed over again, where normalising it would read and write
    /// the whole activation twice more. In training the layer runs without its
    /// bias, which the batch's statistics cancel (it moves only the running
    /// mean, and has no gradient): one pass over the activation fewer, and one
    /// reduction fewer in the backward pass.
    pub fn after<const K: usize, const D: usize>(
        &self,
        weight: Tensor<K>,
        bias: Option<Tensor<1>>,
        layer: impl FnOnce(Tensor<K>, Option<Tensor<1>>) -> Tensor<D>,
    ) -> Tensor<D> {
        match self.fold(weight.clone(), bias.clone()) {
            Some((weight, bias)) => layer(weight, Some(bias)),
            None => self.batch_normalize(layer(weight, None), bias),
        }
    }

    /// In eval mode, the weight and bias of a layer as [`Self::after`] folds
    /// this norm into them (`W·scale`, `b·scale + shift`); `None` on an
    /// autodiff device.
    pub fn fold<const K: usize>(
        &self,
        weight: Tensor<K>,
        bias: Option<Tensor<1>>,
    ) -> Option<(Tensor<K>, Tensor<1>)> {
        let (scale, shift) = self.eval_affine()?;
        let mut per_channel = [1; K];
        per_channel[0] = scale.dims()[0];
        let weight = weight * scale.clone().reshape(per_channel);
        let bias = match bias {
            Some(bias) => bias * scale + shift,
            None => shift,
        };
        Some((weight, bias))
    }

    /// What [`Self::fold`] reads of this norm, as a memo's keys.
    pub fn keys(&self) -> [Key; 4] {
        [
            Key::of(&self.weight.val()),
            Key::of(&self.bias.val()),
            Key::of(&self.running_mean.value_sync()),
            Key::of(&self.running_var.value_sync()),
        ]
    }

    /// The eval-mode map `x·scale + shift` per channel, from the running
    /// statistics; `None` on an autodiff device, where the batch's own
    /// statistics normalise it.
    fn eval_affine(&self) -> Option<(Tensor<1>, Tensor<1>)> {
        let device = self.weight.val().device();
        if device.is_autodiff() {
            return None;
        }
        let mean = self.running_mean.value_sync().to_device(&device);
        let var = self.running_var.value_sync().to_device(&device);
        let scale = self.weight.val() / (var + self.epsilon).sqrt();
        let shift = self.bias.val() - mean * scale.clone();
        Some((scale, shift))
    }

    fn update_running(&self, mean: Tensor<1>, var: Tensor<1>) {
        let blend = |old: Tensor<1>, new: Tensor<1>| {
            old.to_device(&new.device()) * self.momentum + new * (1.0 - self.momentum)
        };
        let running_mean = blend(self.running_mean.value_sync(), mean);
        let running_var = blend(self.running_var.value_sync(), var);
        self.running_mean.update(running_mean.detach());
        self.running_var.update(running_var.detach());
    }
}

/// `t`, one value per channel, expanded to `shape` (`[..., channels]`) for an
/// elementwise op with an activation of that shape.
///
/// Broadcasting `t` instead has autodiff sum its gradient over all the other
/// axes in one reduction, which burn's untuned GPU reductions run as one thread
/// per channel over batch × length values: most of the training step's time on
/// an H200 (docs/BENCHMARKS.md). The gradient of `expand` is summed one axis at
/// a time.
pub fn per_channel<const D: usize>(t: Tensor<1>, shape: [usize; D]) -> Tensor<D> {
    let mut one_row = [1; D];
    one_row[D - 1] = shape[D - 1];
    t.reshape(one_row).expand(shape)
}

/// Configuration of a [`LayerNorm`].
#[derive(Config, Debug)]
pub struct LayerNormConfig {
    /// Features (the last axis).
    pub features: usize,
    /// Added to the variance.
    #[config(default = 1e-3)]
    pub epsilon: f64,
}

impl LayerNormConfig {
    /// Gamma 1, beta 0.
    pub fn init(&self, device: &Device) -> LayerNorm {
        LayerNorm {
            weight: Initializer::Ones.init([self.features], device),
            bias: Initializer::Zeros.init([self.features], device),
            epsilon: self.epsilon,
        }
    }
}

/// Layer normalisation over the last axis (biased variance, as Keras and PyTorch).
///
/// **NOTE:** burn's `LayerNorm` names its parameters `gamma`/`beta`; this one uses
/// the golden names `weight`/`bias`.
///
/// # Shapes
/// - input and output: `[..., features]`
#[derive(Module, Debug)]
pub struct LayerNorm {
    /// Gamma `[features]`.
    pub weight: Param<Tensor<1>>,
    /// Beta `[features]`.
    pub bias: Param<Tensor<1>>,
    /// Added to the variance.
    pub epsilon: f64,
}

impl LayerNorm {
    /// Normalises each position of `x`.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let shape = x.dims();
        let mean = x.clone().mean_dim(D - 1);
        let var = x.clone().var_bias(D - 1);
        let gamma = per_channel(self.weight.val(), shape);
        let beta = per_channel(self.bias.val(), shape);
        (x - mean) / (var + self.epsilon).sqrt() * gamma + beta
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_uses_running_statistics() {
        let device = Device::flex();
        let bn = BatchNormConfig::new(2).init(&device);
        bn.running_mean
            .update(Tensor::from_floats([1.0, -1.0], &device));
        bn.running_var
            .update(Tensor::from_floats([4.0, 0.25], &device));
        let y = bn.forward(Tensor::<3>::from_floats([[[3.0, 0.0]]], &device));
        let got = y.into_data().try_to_vec::<f32>().unwrap();
        let expected = [2.0 / (4.001f32).sqrt(), 1.0 / (0.251f32).sqrt()];
        for (g, e) in got.iter().zip(expected) {
            assert!((g - e).abs() < 1e-6, "{got:?} vs {expected:?}");
        }
    }

    #[test]
    fn training_updates_running_statistics_with_keras_momentum() {
        let device = Device::flex().autodiff();
        let bn = BatchNormConfig::new(1).init(&device);
        // Batch mean 2, biased variance 1.
        let y = bn.forward(Tensor::<2>::from_floats([[1.0], [3.0]], &device));
        let y = y.into_data().try_to_vec::<f32>().unwrap();
        assert!(
            (y[0] + 1.0).abs() < 1e-3 && (y[1] - 1.0).abs() < 1e-3,
            "{y:?}"
        );
        let mean = bn
            .running_mean
            .value_sync()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let var = bn
            .running_var
            .value_sync()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!((mean[0] - 0.02).abs() < 1e-6, "{mean:?}");
        assert!((var[0] - 1.0).abs() < 1e-6, "{var:?}");
    }

    #[test]
    fn training_statistics_span_batch_and_positions() {
        let device = Device::flex().autodiff();
        let bn = BatchNormConfig::new(1).init(&device);
        // Two sequences of three positions: mean 3.5, biased variance 35/12.
        let x = Tensor::<3>::from_floats([[[1.0], [2.0], [3.0]], [[4.0], [5.0], [6.0]]], &device);
        let got = bn.forward(x).into_data().try_to_vec::<f32>().unwrap();
        let sd = (35.0f32 / 12.0 + 1e-3).sqrt();
        for (i, g) in got.iter().enumerate() {
            let expected = (i as f32 + 1.0 - 3.5) / sd;
            assert!((g - expected).abs() < 1e-5, "{got:?}");
        }
    }

    /// A dense layer `x·Wᵀ + b` before the batch norm, as `after` runs it.
    fn dense(x: Tensor<2>) -> impl FnOnce(Tensor<2>, Option<Tensor<1>>) -> Tensor<2> {
        move |w: Tensor<2>, b: Option<Tensor<1>>| {
            let y = x.matmul(w.transpose());
            match b {
                Some(b) => y + b.unsqueeze(),
                None => y,
            }
        }
    }

    #[test]
    fn training_after_a_layer_leaves_out_its_bias_but_keeps_its_running_mean() {
        let device = Device::flex().autodiff();
        let x = Tensor::<2>::from_floats([[1.0, 2.0], [3.0, -1.0], [0.5, 4.0]], &device);
        let w = Tensor::<2>::from_floats([[1.0, -2.0], [0.5, 3.0]], &device).require_grad();
        let b = Tensor::<1>::from_floats([10.0, -7.0], &device).require_grad();
        let values = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
        let running = |bn: &BatchNorm| {
            let mean = bn.running_mean.value_sync().into_data();
            let var = bn.running_var.value_sync().into_data();
            [mean, var].map(|t| t.try_to_vec::<f32>().unwrap())
        };

        let with_bias = BatchNormConfig::new(2).init(&device);
        let expected = with_bias.forward(dense(x.clone())(w.clone(), Some(b.clone())));
        let folded = BatchNormConfig::new(2).init(&device);
        let got = folded.after(w.clone(), Some(b.clone()), dense(x));

        let (got_values, expected) = (values(got.clone()), values(expected));
        for (g, e) in got_values.iter().zip(&expected) {
            assert!((g - e).abs() < 1e-5, "{got_values:?} vs {expected:?}");
        }
        let (got_running, expected_running) = (running(&folded), running(&with_bias));
        for (g, e) in got_running
            .iter()
            .flatten()
            .zip(expected_running.iter().flatten())
        {
            assert!(
                (g - e).abs() < 1e-5,
                "{got_running:?} vs {expected_running:?}"
            );
        }
        // 1% of the batch mean with the bias (Keras momentum 0.99): x·w₀ is
        // [-3, 5, -7.5], b₀ 10.
        let [mean, _] = got_running;
        assert!(
            (mean[0] - 0.01 * (-5.5 / 3.0 + 10.0)).abs() < 1e-5,
            "{mean:?}"
        );
        let weighted =
            got * Tensor::<2>::from_floats([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], &device);
        let grads = weighted.sum().backward();
        assert!(w.grad(&grads).is_some());
        assert!(b.grad(&grads).is_none(), "the bias has a gradient");
    }

    #[test]
    fn per_channel_gradients_sum_over_batch_and_positions() {
        let device = Device::flex().autodiff();
        let t = Tensor::<1>::from_floats([1.0, 2.0], &device).require_grad();
        let x = Tensor::<3>::from_floats(
            [[[1.0, 10.0], [2.0, 20.0]], [[3.0, 30.0], [4.0, 40.0]]],
            &device,
        );
        let y = (per_channel(t.clone(), [2, 2, 2]) * x).sum();
        let grads = y.backward();
        let grad = t.grad(&grads).unwrap().into_data().try_to_vec::<f32>();
        assert_eq!(grad.unwrap(), [10.0, 100.0]);
    }

    #[test]
    fn layer_norm_centres_and_scales_each_position() {
        let device = Device::flex();
        let ln = LayerNormConfig::new(2).init(&device);
        let y = ln.forward(Tensor::<2>::from_floats([[1.0, 3.0]], &device));
        let got = y.into_data().try_to_vec::<f32>().unwrap();
        let s = 1.0 / (1.001f32).sqrt();
        assert!(
            (got[0] + s).abs() < 1e-6 && (got[1] - s).abs() < 1e-6,
            "{got:?}"
        );
    }
}
