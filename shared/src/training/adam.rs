//! Adam, as the seed's Keras optimizer (β₁ 0.9, β₂ 0.999, ε 1e-7), in one
//! pass over each parameter on the CPU.
//!
//! burn's `Adam` updates a parameter in some fourteen tensor operations
//! (moments, bias corrections, square root, division, step), each a pass over
//! memory with an allocation of its own: on flex, 75–122 ms of a ~900 ms
//! training step at batch 64, against 43–78 ms for this one
//! (docs/BENCHMARKS.md). On flex this one reads the
//! parameter, its gradient and both moments once and writes them back in
//! place; on GPUs it is burn's `Adam`. Both keep burn's `AdamState`, so
//! checkpoints are the same either way, and the same formula: with `t` steps
//! taken,
//!
//! ```text
//! m ← β₁ m + (1 − β₁) g        v ← β₂ v + (1 − β₂) g²
//! p ← p − lr · m · √(1 − β₂ᵗ) / (1 − β₁ᵗ) / (√v + ε √(1 − β₂ᵗ))
//! ```

use burn::backend::Flex;
use burn::optim::{
    AdamConfig, AdamState, AdaptiveMomentumState, ModuleOptimizer, Optimizer, RecordState,
    StateSink, StateSource,
};
use burn::prelude::*;
use burn::tensor::DType;

use crate::device::is_flex;
use crate::kernels::flex_values::{contiguous, owned, slice};

const BETA_1: f32 = 0.9;
const BETA_2: f32 = 0.999;

/// Adam with Keras' epsilon for gradients `loss_scale` times the loss's.
/// Adam's step, `m / (√v + ε)`, does not change when gradients and ε are
/// scaled alike.
pub fn adam(loss_scale: f32) -> ModuleOptimizer {
    ModuleOptimizer::from(Adam::new(1e-7 * loss_scale))
}

/// Adam (no weight decay, no AMSGrad): fused on flex, burn's elsewhere.
#[derive(Clone)]
pub struct Adam {
    epsilon: f32,
    tensors: burn::optim::Adam,
}

impl Adam {
    fn new(epsilon: f32) -> Self {
        let tensors = AdamConfig::new()
            .with_beta_1(BETA_1)
            .with_beta_2(BETA_2)
            .with_epsilon(epsilon)
            .build();
        Self { epsilon, tensors }
    }
}

/// burn's Adam state, read back from a checkpoint onto flex: burn reads
/// optimizer states onto its default device (WebGPU in the page's build,
/// which a page without a WebGPU adapter cannot start), and the first step
/// moves each state to its parameter's device anyway. Stored as burn's.
#[derive(Clone)]
pub struct State<const D: usize>(AdamState<D>);

impl<const D: usize> RecordState for State<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        self.0.state_flatten(prefix, out);
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, _: &Device) -> Option<Self> {
        AdamState::state_unflatten(prefix, src, &Device::flex()).map(State)
    }
}

impl Optimizer for Adam {
    type State<const D: usize> = State<D>;

    fn step<const D: usize>(
        &self,
        lr: f64,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        if !is_flex(&tensor.device()) || [tensor.dtype(), grad.dtype()] != [DType::F32; 2] {
            let (tensor, state) = self.tensors.step(lr, tensor, grad, state.map(|s| s.0));
            return (tensor, state.map(State));
        }
        let (time, m, v) = match state {
            Some(State(state)) => {
                let momentum = state.momentum;
                (momentum.time, momentum.moment_1, momentum.moment_2)
            }
            None => (0, tensor.zeros_like(), tensor.zeros_like()),
        };
        let time = time + 1;
        let [mut p, mut m, mut v] = [tensor, m, v].map(owned);
        let g = contiguous(grad);
        let g = slice(&g);
        let steps = Steps::new(lr, self.epsilon, time);
        let [p_values, m_values, v_values] = [&mut p, &mut m, &mut v].map(|t| {
            t.try_storage_mut::<f32>()
                .expect("owned, contiguous f32 values")
        });
        #[cfg(not(target_family = "wasm"))]
        {
            use rayon::prelude::*;
            const CHUNK: usize = 1 << 14;
            p_values
                .par_chunks_mut(CHUNK)
                .zip(m_values.par_chunks_mut(CHUNK))
                .zip(v_values.par_chunks_mut(CHUNK))
                .zip(g.par_chunks(CHUNK))
                .for_each(|(((p, m), v), g)| steps.apply(p, m, v, g));
        }
        #[cfg(target_family = "wasm")]
        steps.apply(p_values, m_values, v_values, g);
        let [p, m, v] = [p, m, v].map(Tensor::<D>::from_primitive::<Flex>);
        let momentum = AdaptiveMomentumState::new(time, m, v);
        (p, Some(State(AdamState::new(momentum))))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        State(<burn::optim::Adam as Optimizer>::to_device(state.0, device))
    }
}

/// The constants of step `time` (1 for the first).
struct Steps {
    lr: f32,
    /// `√(1 − β₂ᵗ) / (1 − β₁ᵗ)`.
    factor: f32,
    /// `ε √(1 − β₂ᵗ)`.
    epsilon: f32,
}

impl Steps {
    fn new(lr: f64, epsilon: f32, time: usize) -> Self {
        let time = time as i32;
        let correction_2 = (1.0 - BETA_2.powi(time)).sqrt();
        Self {
            lr: lr as f32,
            factor: correction_2 / (1.0 - BETA_1.powi(time)),
            epsilon: epsilon * correction_2,
        }
    }

    /// One step over matching slices of parameter, moments and gradient, in
    /// the order burn's tensor operations round them.
    fn apply(&self, p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
        for (((p, m), v), &g) in p.iter_mut().zip(m).zip(v).zip(g) {
            *m = *m * BETA_1 + g * (1.0 - BETA_1);
            *v = *v * BETA_2 + g * g * (1.0 - BETA_2);
            let update = (*m * self.factor) / (v.sqrt() + self.epsilon);
            *p -= update * self.lr;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    fn assert_close(a: Vec<f32>, b: Vec<f32>) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 1e-6 * (1.0 + y.abs()), "{x} vs {y}");
        }
    }

    /// Five steps of the fused loop and of burn's tensor operations from the
    /// same values on the same gradients, a learning rate that changes.
    #[test]
    fn takes_the_steps_of_burns_adam() {
        let device = Device::flex();
        device.seed(3);
        let adam = Adam::new(1e-7);
        let start = Tensor::<2>::random([70, 300], Distribution::Default, &device);
        let (mut fused, mut fused_state) = (start.clone(), None);
        let (mut reference, mut reference_state) = (start.clone(), None);
        for step in 1..=5 {
            let grad = Tensor::<2>::random([70, 300], Distribution::Normal(0.0, 1.0), &device);
            let lr = 1e-2 / step as f64;
            (fused, fused_state) = adam.step(lr, fused, grad.clone(), fused_state);
            (reference, reference_state) = adam.tensors.step(lr, reference, grad, reference_state);
        }
        assert!(
            values(fused.clone()) != values(start),
            "the steps moved the values"
        );
        assert_close(values(fused), values(reference));
        let (fused, reference) = (
            fused_state.unwrap().0.momentum,
            reference_state.unwrap().momentum,
        );
        assert_eq!((fused.time, reference.time), (5, 5));
        assert_close(values(fused.moment_1), values(reference.moment_1));
        assert_close(values(fused.moment_2), values(reference.moment_2));
    }

    /// A parameter that another tensor shares is copied, not changed under it.
    #[test]
    fn leaves_a_shared_parameter_alone() {
        let device = Device::flex();
        let p = Tensor::<1>::from_floats([1.0, 2.0, 3.0], &device);
        let kept = p.clone();
        let g = Tensor::<1>::from_floats([1.0, -1.0, 0.5], &device);
        let (stepped, state) = Adam::new(1e-7).step(0.1, p, g, None);
        assert_eq!(values(kept), [1.0, 2.0, 3.0]);
        // Adam's first step moves each value by lr against its gradient's sign.
        assert_close(values(stepped), vec![0.9, 2.1, 2.9]);
        assert_eq!(state.unwrap().0.momentum.time, 1);
    }
}
