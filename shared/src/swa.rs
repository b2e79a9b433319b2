//! Stochastic weight averaging (Izmailov et al., 2018): the mean of the weights
//! a run passes through late in training, which generalises better than the
//! last point. The seed configured it (`tfa.optimizers.SWA`) but never applied
//! the average; promoscope does, and refreshes the batch-norm statistics, which
//! the average of weights leaves stale.

use std::collections::BTreeMap;

use burn::prelude::*;

use crate::blocks::model::Model;
use crate::config::ModelConfig;
use crate::weights::{self, Precision, WeightsError, is_running_statistic};

/// The running mean of the trained parameters of the models [`add`]ed so far.
///
/// [`add`]: WeightAverage::add
#[derive(Clone, Debug)]
pub struct WeightAverage {
    /// The averaged model (inference device); its batch-norm statistics are
    /// those of the first model added until [`refresh_batch_norm`] runs.
    pub model: Model,
    /// How many models the average holds.
    pub count: usize,
}

impl WeightAverage {
    /// An average of one model.
    pub fn new(model: &Model) -> Self {
        Self {
            model: model.valid(),
            count: 1,
        }
    }

    /// Continues an average of `count` models.
    pub fn resume(model: Model, count: usize) -> Self {
        Self { model, count }
    }

    /// Folds `model` into the average: `avg += (w - avg) / (count + 1)`.
    pub fn add(&mut self, model: &Model) {
        let current = weights::named_tensors(&model.valid());
        let n = (self.count + 1) as f64;
        let average = self.model.clone();
        let averaged = weights::named_tensors(&average);
        self.model = weights::replace_tensors(average, |name| {
            if is_running_statistic(name) {
                return None;
            }
            let (avg, w) = (averaged.get(name)?, current.get(name)?);
            Some(avg.clone() + (w.clone() - avg.clone()) / n)
        });
        self.count += 1;
    }
}

/// `model` with each batch norm's running mean and variance replaced by the
/// mean of its batch statistics over `batches` (training-mode forward passes
/// on `autodiff`, dropout included, as PyTorch's `update_bn`).
pub fn refresh_batch_norm(
    model: Model,
    config: &ModelConfig,
    batches: impl IntoIterator<Item = Tensor<3>>,
    autodiff: &Device,
) -> Result<Model, WeightsError> {
    // With momentum 0 a forward pass leaves exactly that batch's statistics
    // in the running ones.
    let probe_config = ModelConfig {
        bn_momentum: 0.0,
        ..config.clone()
    };
    let bytes = weights::to_bytes(&model, config, &BTreeMap::new(), Precision::F32)?;
    // No parameter asks for gradients, so autodiff records no graph: an
    // unrecorded graph of a forward pass that no backward frees stays in
    // burn's autodiff memory (~350 MB a batch of 64 of the paper's network).
    let probe = weights::load_into(probe_config.init(autodiff), &bytes)?.no_grad();
    let mut sums: BTreeMap<String, Tensor<1>> = BTreeMap::new();
    let mut n = 0usize;
    for x in batches {
        drop(probe.forward(x.to_device(autodiff)));
        for (name, value) in weights::named_tensors(&probe.valid()) {
            if is_running_statistic(&name) {
                let sum = match sums.remove(&name) {
                    Some(sum) => sum + value,
                    None => value,
                };
                sums.insert(name, sum);
            }
        }
        n += 1;
    }
    if n == 0 {
        return Ok(model);
    }
    // `valid` gives the result statistics of its own: burn's running states
    // are shared between clones and mapping them writes in place.
    Ok(weights::replace_tensors(model.valid(), |name| {
        sums.get(name).map(|sum| sum.clone() / n as f64)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    fn values(t: &Tensor<1>) -> Vec<f32> {
        t.clone().into_data().try_into_vec_as::<f32>().unwrap()
    }

    #[test]
    fn average_is_the_mean_of_the_added_weights() {
        let device = Device::flex();
        let config = ModelConfig::tiny();
        let models: Vec<Model> = (0..3)
            .map(|seed| {
                device.seed(seed);
                config.init(&device)
            })
            .collect();
        let mut average = WeightAverage::new(&models[0]);
        average.add(&models[1]);
        average.add(&models[2]);
        assert_eq!(average.count, 3);
        let name = "block1.res.conv0.weight";
        let got = values(&weights::named_tensors(&average.model)[name]);
        let each: Vec<Vec<f32>> = models
            .iter()
            .map(|m| values(&weights::named_tensors(m)[name]))
            .collect();
        for (i, g) in got.iter().enumerate() {
            let mean = (each[0][i] + each[1][i] + each[2][i]) / 3.0;
            assert!((g - mean).abs() < 1e-6, "{g} vs {mean}");
        }
        assert_ne!(got, each[0]);
    }

    /// Over several batches the statistics are the mean of each batch's own
    /// (which momentum 0 stores exactly), and only statistics change.
    #[test]
    fn refreshed_statistics_average_the_batches() {
        let device = Device::flex();
        let autodiff = device.clone().autodiff();
        // No dropout: each refresh must see the same activations.
        let config = ModelConfig::tiny().without_dropout();
        device.seed(7);
        let model = config.init(&device);
        let batch = |seed| {
            device.seed(seed);
            Tensor::<3>::random(
                [6, config.seq_len, 4],
                Distribution::Uniform(0.0, 1.0),
                &device,
            )
        };
        let (x1, x2) = (batch(1), batch(2));
        let refresh = |xs: Vec<Tensor<3>>| {
            weights::named_tensors(
                &refresh_batch_norm(model.clone(), &config, xs, &autodiff).unwrap(),
            )
        };
        let one = refresh(vec![x1.clone()]);
        let two = refresh(vec![x2.clone()]);
        let both = refresh(vec![x1, x2]);
        let before = weights::named_tensors(&model);
        let mut statistics = 0;
        for (name, value) in &both {
            if is_running_statistic(name) {
                statistics += 1;
                let mean = (one[name].clone() + two[name].clone()) / 2.0;
                let diff = crate::tensor_max_abs_diff(value.clone(), mean);
                assert!(diff < 1e-4, "{name}: {diff}");
                assert_ne!(values(value), values(&before[name]), "{name} unchanged");
            } else {
                assert_eq!(values(value), values(&before[name]), "{name} changed");
            }
        }
        assert!(statistics >= 8, "only {statistics} statistics");
    }
}
