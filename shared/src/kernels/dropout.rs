//! Dropout: in training, each value is zeroed with probability `prob` and the
//! rest scaled by `1 / (1 - prob)`; elsewhere the identity.
//!
//! burn's own `Dropout` draws its mask with `random_like`, which the CPU
//! backend (flex) fills one value at a time from a ChaCha12 generator: ~15 ns
//! a value, 40–50 ms for each of block 1's activations at batch 64, a tenth of
//! a training step (docs/BENCHMARKS.md). On the CPU this one draws the mask in
//! bulk from ChaCha8 instead, seeded from the device's generator, so a run is
//! still a function of its seed. On a GPU the mask is drawn on the device as
//! before: a mask built on the host would be uploaded whole every call (see
//! `conv::pad_length`). Either way the scale is folded into the mask, so the
//! forward and backward passes are one product each.

use burn::prelude::*;
use burn::tensor::Distribution;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use crate::device::is_flex;

/// Inverted dropout, live only on an autodiff device (training mode).
#[derive(Module, Debug)]
pub struct Dropout {
    /// Probability of zeroing each value.
    pub prob: f64,
}

impl Dropout {
    /// Dropout with probability `prob`.
    ///
    /// # Panics
    /// If `prob` is not in `[0, 1)`.
    pub fn new(prob: f64) -> Self {
        assert!(
            (0.0..1.0).contains(&prob),
            "dropout probability must be in [0, 1), got {prob}"
        );
        Self { prob }
    }

    /// `x · mask`, the mask `1 / (1 - prob)` with probability `1 - prob` and 0
    /// otherwise, on an autodiff device; `x` elsewhere.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let device = x.device();
        if self.prob == 0.0 || !device.is_autodiff() {
            return x;
        }
        let keep = 1.0 - self.prob;
        let mask = if is_flex(&device) {
            host_mask(x.dims(), keep, &device)
        } else {
            device_mask(x.dims(), keep, &device)
        };
        x * mask
    }
}

/// The mask drawn by the device's own random kernel.
fn device_mask<const D: usize>(shape: [usize; D], keep: f64, device: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Bernoulli(keep), device).mul_scalar(1.0 / keep)
}

/// The mask drawn on the host, in bulk, from a generator seeded by one draw
/// from the device's (so `Device::seed` still decides it).
fn host_mask<const D: usize>(shape: [usize; D], keep: f64, device: &Device) -> Tensor<D> {
    // Two 31-bit draws: the device's default integers may be 32-bit.
    let seed =
        Tensor::<1, Int>::random([2], Distribution::Uniform(0.0, f64::from(i32::MAX)), device)
            .into_data()
            .iter::<i64>()
            .fold(0u64, |seed, half| (seed << 31) | half as u64);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Kept when a uniform u32 falls below keep · 2³².
    let threshold = (keep * 4_294_967_296.0) as u64;
    let scale = (1.0 / keep) as f32;
    let mut mask = vec![0.0f32; shape.iter().product()];
    let mut bytes = [0u8; 4096];
    for chunk in mask.chunks_mut(bytes.len() / 4) {
        rng.fill_bytes(&mut bytes);
        for (m, b) in chunk.iter_mut().zip(bytes.chunks_exact(4)) {
            let word = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            *m = if u64::from(word) < threshold {
                scale
            } else {
                0.0
            };
        }
    }
    Tensor::from_data(TensorData::new(mask, shape), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn is_the_identity_outside_training() {
        let device = Device::flex();
        let x = Tensor::<2>::random([8, 16], Distribution::Default, &device);
        assert_eq!(values(Dropout::new(0.5).forward(x.clone())), values(x));
    }

    #[test]
    fn both_masks_keep_one_minus_prob_of_the_values_scaled() {
        let device = Device::flex().autodiff();
        device.seed(1);
        let n = 200_000;
        let keep = 0.8;
        for (name, mask) in [
            ("host", host_mask([n], keep, &device)),
            ("device", device_mask([n], keep, &device)),
        ] {
            let mask = values(mask);
            let kept = mask.iter().filter(|&&m| m != 0.0).count();
            // 4.5 standard deviations of a binomial(n, keep) fraction.
            let tolerance = 4.5 * (keep * (1.0 - keep) / n as f64).sqrt();
            let fraction = kept as f64 / n as f64;
            assert!(
                (fraction - keep).abs() < tolerance,
                "{name}: kept {fraction}, expected {keep} ± {tolerance}"
            );
            assert!(
                mask.iter().all(|&m| m == 0.0 || m == 1.25),
                "{name}: kept values are scaled by 1/keep"
            );
        }
    }

    #[test]
    fn the_device_seed_decides_the_mask() {
        let device = Device::flex().autodiff();
        let draw = |seed| {
            device.seed(seed);
            values(host_mask([4096], 0.9, &device))
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        // Calls in one run differ.
        device.seed(7);
        let first = values(host_mask([4096], 0.9, &device));
        assert_ne!(first, values(host_mask([4096], 0.9, &device)));
    }

    #[test]
    fn its_gradient_is_the_mask() {
        let device = Device::flex().autodiff();
        device.seed(2);
        let x = Tensor::<3>::random([2, 50, 8], Distribution::Uniform(0.5, 1.5), &device)
            .require_grad();
        let y = Dropout::new(0.3).forward(x.clone());
        let grads = y.clone().sum().backward();
        let mask = values(y / x.clone());
        let gradient = values(x.grad(&grads).unwrap());
        assert!(mask.contains(&0.0) && mask.iter().any(|&m| m > 1.0));
        for (g, m) in gradient.iter().zip(&mask) {
            assert!((g - m).abs() < 1e-5, "gradient {g}, mask {m}");
        }
    }
}
