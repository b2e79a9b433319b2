//! Batch normalisation with the batch's statistics as one operation of
//! burn's autodiff graph, whose backward is the closed form
//! `dx = γ/σ · (dy − mean(dy) − x̂ · mean(dy · x̂))`, `dγ = Σ dy · x̂`,
//! `dβ = Σ dy`.
//!
//! Written as tensor ops (`x − μ`, `(x − μ)²`, `/σ`, `·γ`, `+β`), autodiff
//! takes every op's backward in turn: each a pass over the activation, and
//! the gradients of the mean and the variance each summed and spread back.
//! The closed form reads the activation's gradient in two reductions and
//! writes `dx` as one elementwise expression (one pass under `fusion`, four
//! without): twenty kernels fewer a batch norm. Each backend runs it as its
//! own ops.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{
    Autodiff, AutodiffBackend, Backend, Dispatch, TensorMetadata, backend_extension,
};
use burn::prelude::*;
use burn::tensor::Shape;

/// `x` normalised per channel (its last axis) with the mean and biased
/// variance over all its other axes, then scaled by `gamma` and shifted by
/// `beta`; with that mean and variance, detached.
///
/// # Shapes
/// - x and output: `[..., channels]`; gamma, beta, mean, variance: `[channels]`
pub(super) fn normalize<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
) -> (Tensor<D>, Tensor<1>, Tensor<1>) {
    let (y, mean, var) = <Dispatch as BatchStats>::batch_norm(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        epsilon,
    );
    (
        Tensor::from_dispatch(y),
        Tensor::from_dispatch(mean),
        Tensor::from_dispatch(var),
    )
}

/// Batch normalisation's operation on a backend.
#[backend_extension(
    Flex,
    Cube: cfg(feature = "wgpu"),
    Fusion: cfg(feature = "fusion"),
    Autodiff
)]
pub(crate) trait BatchStats: Backend {
    /// `(y, mean, variance)`; see [`normalize`].
    #[fusion(default)]
    fn batch_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let forward = Forward::<Self>::new(x, gamma, beta, epsilon);
        (forward.y, forward.mean, forward.var)
    }
}

impl BatchStats for burn::backend::Flex {}

#[cfg(feature = "wgpu")]
impl BatchStats for burn::backend::wgpu::CubeBackend {}

/// The forward pass, and what its backward needs.
struct Forward<B: Backend> {
    y: FloatTensor<B>,
    mean: FloatTensor<B>,
    var: FloatTensor<B>,
    /// `x − mean`.
    centered: FloatTensor<B>,
    /// `1 / sqrt(var + epsilon)`.
    inv_std: FloatTensor<B>,
}

impl<B: Backend> Forward<B> {
    fn new(x: FloatTensor<B>, gamma: FloatTensor<B>, beta: FloatTensor<B>, epsilon: f64) -> Self {
        let shape = x.shape();
        let rows = rows(&shape);
        let mean = B::float_div_scalar(channel_sum::<B>(x.clone()), rows.into());
        let centered = B::float_sub(x, spread::<B>(mean.clone(), &shape));
        let squares = B::float_mul(centered.clone(), centered.clone());
        let var = B::float_div_scalar(channel_sum::<B>(squares), rows.into());
        let inv_std = B::float_recip(B::float_sqrt(B::float_add_scalar(
            var.clone(),
            epsilon.into(),
        )));
        let scale = B::float_mul(gamma, inv_std.clone());
        let y = B::float_add(
            B::float_mul(centered.clone(), spread::<B>(scale, &shape)),
            spread::<B>(beta, &shape),
        );
        Self {
            y,
            mean,
            var,
            centered,
            inv_std,
        }
    }
}

/// How many values each channel's statistics are taken over.
fn rows(shape: &Shape) -> f64 {
    (shape.num_elements() / shape[shape.num_dims() - 1]) as f64
}

/// The sum of each channel of `x` (`[..., channels]` → `[channels]`), over
/// one axis at a time: burn's untuned GPU reductions run a reduction over
/// several axes as one thread per channel (`norm::per_channel`).
fn channel_sum<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    let shape = x.shape();
    let channels = shape[shape.num_dims() - 1];
    let summed = (0..shape.num_dims() - 1)
        .rev()
        .fold(x, |sum, axis| B::float_sum_dim(sum, axis));
    B::float_reshape(summed, Shape::new([channels]))
}

/// `t` (`[channels]`) expanded to `shape` (`[..., channels]`).
fn spread<B: Backend>(t: FloatTensor<B>, shape: &Shape) -> FloatTensor<B> {
    let mut row = vec![1; shape.num_dims()];
    row[shape.num_dims() - 1] = shape[shape.num_dims() - 1];
    B::float_expand(B::float_reshape(t, Shape::from(row)), shape.clone())
}

/// The backward of [`BatchStats::batch_norm`]; its state is `x − mean`,
/// `1/σ` and `γ`.
#[derive(Debug)]
struct BatchNormBackward;

impl<B: Backend> Backward<B, 3> for BatchNormBackward {
    type State = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let dy = grads.consume::<B>(&ops.node);
        let (centered, inv_std, gamma) = ops.state;
        let shape = dy.shape();
        let rows = rows(&shape);
        let sum_dy = channel_sum::<B>(dy.clone());
        // Σ dy · x̂ = σ⁻¹ Σ dy · (x − μ)
        let sum_dy_xhat = B::float_mul(
            channel_sum::<B>(B::float_mul(dy.clone(), centered.clone())),
            inv_std.clone(),
        );
        if let Some(node) = node_x {
            // dx = a·dy + b + c·(x − μ), with a = γ/σ, b = −a·mean(dy),
            // c = −a/σ · mean(dy · x̂).
            let a = B::float_mul(gamma, inv_std.clone());
            let b = B::float_div_scalar(B::float_mul(a.clone(), sum_dy.clone()), (-rows).into());
            let c = B::float_div_scalar(
                B::float_mul(B::float_mul(a.clone(), inv_std), sum_dy_xhat.clone()),
                (-rows).into(),
            );
            let dx = B::float_add(
                B::float_add(
                    B::float_mul(dy, spread::<B>(a, &shape)),
                    spread::<B>(b, &shape),
                ),
                B::float_mul(centered, spread::<B>(c, &shape)),
            );
            grads.register::<B>(node.id, dx);
        }
        if let Some(node) = node_gamma {
            grads.register::<B>(node.id, sum_dy_xhat);
        }
        if let Some(node) = node_beta {
            grads.register::<B>(node.id, sum_dy);
        }
    }
}

impl<B: BatchStats, C: CheckpointStrategy> BatchStats for Autodiff<B, C> {
    fn batch_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let prep = BatchNormBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful();
        let [x, gamma, beta] = [x, gamma, beta].map(Self::inner);
        let forward = Forward::<B>::new(x, gamma.clone(), beta, epsilon);
        let y = match prep {
            OpsKind::Tracked(prep) => {
                prep.finish((forward.centered, forward.inv_std, gamma), forward.y)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward.y),
        };
        (
            y,
            Self::from_inner(forward.mean),
            Self::from_inner(forward.var),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::norm::per_channel;

    type Values = Vec<(Vec<f32>, Vec<usize>)>;

    /// The definition as tensor ops, differentiated by autodiff.
    fn by_definition<const D: usize>(
        x: Tensor<D>,
        gamma: Tensor<1>,
        beta: Tensor<1>,
        epsilon: f64,
    ) -> (Tensor<D>, Tensor<1>, Tensor<1>) {
        let shape = x.dims();
        let mean_of = |t: Tensor<D>| {
            (0..D - 1)
                .rev()
                .fold(t, |m, axis| m.mean_dim(axis))
                .reshape([shape[D - 1]])
        };
        let mean = mean_of(x.clone());
        let centered = x - per_channel(mean.clone(), shape);
        let var = mean_of(centered.clone().powi_scalar(2));
        let scale = gamma / (var.clone() + epsilon).sqrt();
        let y = centered * per_channel(scale, shape) + per_channel(beta, shape);
        (y, mean.detach(), var.detach())
    }

    /// Random inputs `x`, `gamma`, `beta` and a weighting `r` of the output
    /// (a gradient sent to the wrong place shows) on flex with autodiff.
    fn inputs<const D: usize>(shape: [usize; D]) -> (Tensor<D>, [Tensor<1>; 2], Tensor<D>) {
        let flex = Device::flex().autodiff();
        flex.seed(11);
        let normal = burn::tensor::Distribution::Normal(0.0, 1.0);
        // Offset and spread per channel, as a convolution's output has.
        let x = Tensor::<D>::random(shape, normal, &flex) * 3.0 + 1.5;
        let [gamma, beta] = [0; 2].map(|_| Tensor::<1>::random([shape[D - 1]], normal, &flex));
        (x, [gamma, beta], Tensor::<D>::random(shape, normal, &flex))
    }

    /// `y`, the mean, the variance and the gradients for `Σ y·r` of those
    /// of `x`, `gamma` and `beta` that `with_grad` asks for, on `device`.
    fn run<const D: usize>(
        device: &Device,
        norm: fn(Tensor<D>, Tensor<1>, Tensor<1>, f64) -> (Tensor<D>, Tensor<1>, Tensor<1>),
        (x, [gamma, beta], r): &(Tensor<D>, [Tensor<1>; 2], Tensor<D>),
        with_grad: [bool; 3],
    ) -> Values {
        fn on<const K: usize>(t: &Tensor<K>, device: &Device, grad: bool) -> Tensor<K> {
            let t = t.clone().to_device(device);
            match (device.is_autodiff(), grad) {
                (false, _) => t.inner(),
                (true, false) => t,
                (true, true) => t.require_grad(),
            }
        }
        let x = on(x, device, with_grad[0]);
        assert_eq!(x.is_autodiff(), device.is_autodiff());
        let gamma = on(gamma, device, with_grad[1]);
        let beta = on(beta, device, with_grad[2]);
        let (y, mean, var) = norm(x.clone(), gamma.clone(), beta.clone(), 1e-3);
        fn flat<const K: usize>(t: Tensor<K>) -> (Vec<f32>, Vec<usize>) {
            let dims = t.dims().to_vec();
            (t.into_data().try_to_vec::<f32>().unwrap(), dims)
        }
        let mut out = vec![flat(y.clone()), flat(mean), flat(var)];
        if !with_grad.contains(&true) {
            return out;
        }
        let grads = (y * on(r, device, false)).sum().backward();
        out.extend(x.grad(&grads).map(flat));
        out.extend(gamma.grad(&grads).map(flat));
        out.extend(beta.grad(&grads).map(flat));
        out
    }

    fn assert_close(want: &Values, got: &Values, tolerance: f32, case: &str) {
        assert_eq!(want.len(), got.len(), "{case}: how many gradients");
        let names = ["y", "mean", "var", "first gradient", "second", "third"];
        for (name, (want, got)) in names.iter().zip(want.iter().zip(got)) {
            assert_eq!(want.1, got.1, "{case}, {name}: shapes");
            let scale = want.0.iter().fold(1f32, |m, v| m.max(v.abs()));
            let diff = crate::metrics::max_abs_diff(&want.0, &got.0);
            assert!(
                diff <= tolerance * scale,
                "{case}, {name}: {diff} of {scale}"
            );
        }
    }

    #[test]
    fn matches_autodiff_of_its_definition() {
        let device = Device::flex().autodiff();
        let rank3 = inputs([3, 7, 5]);
        // The last: nothing tracked (the operation records no backward).
        let cases = [
            [true; 3],
            [true, false, false],
            [false, true, true],
            [false; 3],
        ];
        for with_grad in cases {
            let case = format!("rank 3, gradients {with_grad:?}");
            let want = run(&device, by_definition::<3>, &rank3, with_grad);
            let got = run(&device, normalize::<3>, &rank3, with_grad);
            assert_close(&want, &got, 1e-5, &case);
        }
        // The head's dense layers: [batch, features].
        let rank2 = inputs([9, 4]);
        let want = run(&device, by_definition::<2>, &rank2, [true; 3]);
        let got = run(&device, normalize::<2>, &rank2, [true; 3]);
        assert_close(&want, &got, 1e-5, "rank 2");
    }

    /// Without autodiff the backends' own form runs (flex's here).
    #[test]
    fn runs_without_autodiff_as_with() {
        let x = inputs([3, 7, 5]);
        let want = run(&Device::flex().autodiff(), normalize::<3>, &x, [false; 3]);
        let got = run(&Device::flex(), normalize::<3>, &x, [false; 3]);
        assert_close(&want, &got, 0.0, "flex without autodiff");
    }

    #[test]
    fn runs_on_wgpu_as_on_flex() {
        let gpu = crate::device::select_device(crate::device::Backend::Wgpu)
            .expect("wgpu needs an adapter (lavapipe in CI)");
        let x = inputs([4, 33, 6]);
        let want = run(&Device::flex().autodiff(), normalize::<3>, &x, [true; 3]);
        let got = run(&gpu.device.autodiff(), normalize::<3>, &x, [true; 3]);
        assert_close(&want, &got, 1e-5, "wgpu against flex");
    }
}
