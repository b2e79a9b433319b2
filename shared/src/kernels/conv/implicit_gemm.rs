//! The convolution as one implicit-GEMM kernel on GPUs: cubek's (burn's kernel
//! library), on cooperative matrices (tensor cores), reading each position's
//! `kernel × in` inputs where they lie instead of copying them into columns
//! (im2col) or summing per-tap products (the tap sum). Built only with the
//! cargo feature `implicit-gemm` and then opt-in ([`set_implicit_gemm`]),
//! until a GPU run shows it pays. burn's own `conv1d`
//! reaches this kernel only under `autotune`; otherwise it runs cubek's
//! direct kernel.
//!
//! It is one operation of burn's graph on every wgpu device (a backend
//! extension, lazy under `fusion`) with its own backward:
//! - `dx` is the same convolution of `dy` by the kernel flipped along its taps
//!   and transposed (`'same'` padding with an odd kernel is symmetric);
//! - `dw` is cubek's implicit-GEMM weight gradient.
//!
//! Where cubek cannot run a shape (no cooperative matrices: WGSL, lavapipe,
//! likely f32 on Vulkan; or no tile fits), the kernel falls back to cubek's
//! direct one (in f32: it accumulates in its tensors' type), with a warning,
//! and [`available`] sends later convolutions of that shape back to the
//! usual path (the tap sum or im2col). Errors cubek does not return but panics
//! on (a driver's compilation failure) are not caught.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::ops::ConvOptions;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, TensorMetadata, backend_extension};
use burn::prelude::*;
use burn::tensor::{DType, Shape};
use burn_cubecl::CubeBackend;
use burn_cubecl::kernel::conv::{ConvStrategy, conv_forward_nhwc, conv_weight_backward};
use burn_cubecl::kernel::{cast, into_contiguous};
use burn_cubecl::ops::{permute_nchw_to_nhwc, permute_nhwc_to_nchw};
use burn_cubecl::tensor::CubeTensor;

use super::ConvShape;

static WANTED: AtomicBool = AtomicBool::new(false);

/// A convolution's shape as far as cubek's kernel choice goes: channels in,
/// channels out, kernel, element type.
type Key = (usize, usize, usize, DType);

/// The shapes whose implicit GEMM failed (forward, data or weight gradient).
static FAILED: Mutex<Vec<Key>> = Mutex::new(Vec::new());

/// Makes every convolution on a wgpu device of this process run as cubek's
/// implicit GEMM (`true`) or not (`false`, the default: the tap sum or im2col,
/// [`super::ConvPath`]). Like [`super::set_half_products`], one switch for a run.
pub fn set_implicit_gemm(on: bool) {
    WANTED.store(on, Ordering::Relaxed);
}

/// The shapes (channels in, out, kernel, type) found unable to take the
/// implicit GEMM so far in this process, for reports.
pub fn fallbacks() -> Vec<String> {
    let failed = FAILED.lock().unwrap_or_else(|e| e.into_inner());
    failed
        .iter()
        .map(|(cin, cout, kernel, dtype)| format!("{cin}→{cout}, kernel {kernel}, {dtype:?}"))
        .collect()
}

fn failed(key: Key) -> bool {
    FAILED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&key)
}

/// Whether a convolution of `shape` in `dtype` may take [`conv`]: asked
/// for, and neither its shape nor its input gradient's (out and in swapped)
/// found unavailable. [`super::ConvPath::choose`] adds the rest (a GPU, not
/// empty).
pub(crate) fn available(shape: &ConvShape, dtype: DType) -> bool {
    let (cin, cout, kernel) = (shape.channels_in, shape.channels_out, shape.kernel);
    WANTED.load(Ordering::Relaxed)
        && !failed((cin, cout, kernel, dtype))
        && !failed((cout, cin, kernel, dtype))
}

/// A 'same' convolution without bias as one implicit-GEMM kernel.
///
/// # Shapes
/// - x: `[batch, length, in]`, weight: `[kernel, in, out]` (taps first)
/// - output: `[batch, length, out]`
pub(crate) fn conv(x: Tensor<3>, weight: Tensor<3>, dilation: usize) -> Tensor<3> {
    let weight = weight.permute([2, 0, 1]); // [out, kernel, in]: channels last
    let y = <Dispatch as GemmConv>::gemm_conv(x.into_dispatch(), weight.into_dispatch(), dilation);
    Tensor::from_dispatch(y)
}

/// `y`'s shape for an `x` and `weight` of [`GemmConv::gemm_conv`].
#[cfg(feature = "fusion")]
fn output_shape(x: &Shape, weight: &Shape) -> Shape {
    Shape::new([x[0], x[1], weight[0]])
}

/// The weight's shape `[out, kernel, in]` for [`GemmConv::gemm_conv_weight_grad`].
#[cfg(feature = "fusion")]
fn weight_shape(x: &Shape, dy: &Shape, kernel: &usize) -> Shape {
    Shape::new([dy[2], *kernel, x[2]])
}

/// The convolution's operations on a backend, channels last throughout.
#[backend_extension(Cube, Fusion: cfg(feature = "fusion"), Autodiff)]
pub(crate) trait GemmConv: Backend {
    /// `y[b, l, o] = Σ_{t, c} x[b, l + (t − (k−1)/2)·dilation, c] · w[o, t, c]`,
    /// zeros outside the sequence. x `[batch, length, in]`, weight `[out, kernel, in]`.
    #[fusion(dtype = x, shape = output_shape(x, weight))]
    fn gemm_conv(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        dilation: usize,
    ) -> FloatTensor<Self>;

    /// The gradient of [`GemmConv::gemm_conv`]'s weight, `[out, kernel, in]`,
    /// from its input `x` and its output's gradient `dy` `[batch, length, out]`.
    #[fusion(dtype = dy, shape = weight_shape(x, dy, kernel))]
    fn gemm_conv_weight_grad(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        kernel: usize,
        dilation: usize,
    ) -> FloatTensor<Self>;
}

/// Stride 1, 'same' zero padding for an odd kernel.
fn same(kernel: usize, dilation: usize) -> ConvOptions<1> {
    ConvOptions::new([1], [dilation * (kernel - 1) / 2], [dilation], 1)
}

/// `run` with cubek's implicit GEMM, or, where that failed for `key`, with
/// its direct kernel on the inputs in f32 (it accumulates in their type),
/// cast back; the failure is remembered ([`applies`]).
fn implicit_gemm_or_direct<const N: usize, E: std::fmt::Debug>(
    key: Key,
    inputs: [CubeTensor; N],
    run: impl Fn([CubeTensor; N], ConvStrategy) -> Result<CubeTensor, E>,
) -> CubeTensor {
    if !failed(key) {
        match run(inputs.clone(), ConvStrategy::ImplicitGemm) {
            Ok(y) => return y,
            Err(error) => {
                let error = format!("{error:?}");
                eprintln!(
                    "warning: no implicit-GEMM convolution for {key:?} (in, out, kernel, type) \
                     on this device ({}); cubek's direct kernel, then the usual path",
                    error.trim()
                );
                let mut failed = FAILED.lock().unwrap_or_else(|e| e.into_inner());
                if !failed.contains(&key) {
                    failed.push(key);
                }
            }
        }
    }
    let dtype = inputs[0].dtype;
    let inputs = inputs.map(|t| cast(t, DType::F32));
    let y = run(inputs, ConvStrategy::Direct)
        .unwrap_or_else(|error| panic!("cubek's direct convolution failed: {error:?}"));
    cast(y, dtype)
}

impl GemmConv for CubeBackend {
    fn gemm_conv(x: CubeTensor, weight: CubeTensor, dilation: usize) -> CubeTensor {
        let [cout, kernel, cin] = [0, 1, 2].map(|i| weight.shape()[i]);
        let options = same(kernel, dilation);
        let inputs = [x, weight].map(into_contiguous);
        implicit_gemm_or_direct(
            (cin, cout, kernel, inputs[0].dtype),
            inputs,
            |[x, w], strategy| conv_forward_nhwc::<1>(x, w, None, options.clone(), strategy),
        )
    }

    fn gemm_conv_weight_grad(
        x: CubeTensor,
        dy: CubeTensor,
        kernel: usize,
        dilation: usize,
    ) -> CubeTensor {
        let [cin, cout] = [x.shape()[2], dy.shape()[2]];
        let options = same(kernel, dilation);
        let shape = Shape::new([cout, cin, kernel]);
        // burn's entry point takes channels-first views and permutes them
        // back: no copies.
        let inputs = [x, dy].map(|t| permute_nhwc_to_nchw(into_contiguous(t)));
        let dw = implicit_gemm_or_direct(
            (cin, cout, kernel, inputs[0].dtype),
            inputs,
            |[x, dy], strategy| {
                conv_weight_backward::<1>(x, dy, shape.clone(), options.clone(), strategy)
            },
        );
        permute_nchw_to_nhwc(dw)
    }
}

/// The backward of [`GemmConv::gemm_conv`]: its state is the input, the
/// weight and the dilation.
#[derive(Debug)]
struct GemmConvBackward;

impl<B: GemmConv> Backward<B, 2> for GemmConvBackward {
    type State = (FloatTensor<B>, FloatTensor<B>, usize);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_weight] = ops.parents;
        let dy = grads.consume::<B>(&ops.node);
        let (x, weight, dilation) = ops.state;
        let kernel = weight.shape()[1];
        if let Some(node) = node_weight {
            let dw = B::gemm_conv_weight_grad(x, dy.clone(), kernel, dilation);
            grads.register::<B>(node.id, dw);
        }
        if let Some(node) = node_x {
            // [out, kernel, in] → [in, kernel, out], taps reversed.
            let flipped = B::float_swap_dims(B::float_flip(weight, &[1]), 0, 2);
            grads.register::<B>(node.id, B::gemm_conv(dy, flipped, dilation));
        }
    }
}

impl<B: GemmConv, C: CheckpointStrategy> GemmConv for Autodiff<B, C> {
    fn gemm_conv(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        dilation: usize,
    ) -> FloatTensor<Self> {
        match GemmConvBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let [x, weight] = [x.primitive(), weight.primitive()].map(Clone::clone);
                let y = B::gemm_conv(x.clone(), weight.clone(), dilation);
                prep.finish((x, weight, dilation), y)
            }
            OpsKind::UnTracked(prep) => {
                let [x, weight] = [x.primitive(), weight.primitive()].map(Clone::clone);
                prep.finish(B::gemm_conv(x, weight, dilation))
            }
        }
    }

    fn gemm_conv_weight_grad(
        _: FloatTensor<Self>,
        _: FloatTensor<Self>,
        _: usize,
        _: usize,
    ) -> FloatTensor<Self> {
        unreachable!("weight gradients are taken on the inner backend, in the backward pass")
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::FloatDType;

    use super::super::{ConvPath, ConvSite};
    use super::*;
    use crate::device::{Backend as Named, select_device};

    /// In f16 too, the type mixed precision multiplies in (on lavapipe, the
    /// direct fallback runs in f32 and casts back: accumulating 384 × 3
    /// products in f16 put the golden output 4.1e-3 off).
    #[test]
    fn keeps_f16_within_its_rounding_of_the_tap_sum() {
        let gpu = select_device(Named::Wgpu).expect("wgpu needs an adapter (lavapipe in CI)");
        let flex = Device::flex();
        let normal = burn::tensor::Distribution::Normal(0.0, 1.0);
        let x = Tensor::<3>::random([2, 70, 64], normal, &flex);
        let w = Tensor::<3>::random([3, 64, 32], normal, &flex) / 8.0;
        let want = ConvPath::TapSum.run(x.clone(), w.clone(), 2);
        let [x, w] = [x, w].map(|t| t.to_device(&gpu.device).cast(FloatDType::F16));
        let got = conv(x, w, 2);
        assert_eq!(got.dtype(), DType::F16);
        let got = got.cast(FloatDType::F32).to_device(&flex);
        let scale: f32 = want.clone().abs().max().into_scalar();
        let diff: f32 = (want - got).abs().max().into_scalar();
        // Inputs and output rounded to 11 bits: 4.5e-4 of the largest value
        // here; accumulated in f16 it was 4.0e-3.
        assert!(diff < 1.5e-3 * scale, "{diff} of {scale}");
    }

    /// The switch routes wgpu convolutions only, and a shape whose implicit
    /// GEMM failed goes back to the tap sum. (No other unit test goes through
    /// the router on wgpu, so flipping the process-wide switch is safe here.)
    #[test]
    fn routes_wgpu_convolutions_until_their_shape_fails() {
        let gpu = select_device(Named::Wgpu).expect("wgpu needs an adapter (lavapipe in CI)");
        let on = |device: &Device, channels_in: usize| {
            let x = Tensor::<3>::zeros([2, 9, channels_in], device);
            let w = Tensor::<3>::zeros([3, channels_in, 5], device); // taps first
            ConvPath::choose(&ConvSite::of(&x, &w, 1)) == ConvPath::ImplicitGemm
        };
        assert!(!on(&gpu.device, 7), "off unless asked for");
        set_implicit_gemm(true);
        let routed = [on(&gpu.device, 7), on(&Device::flex(), 7)];
        FAILED.lock().unwrap().push((7, 5, 3, DType::F32));
        let after_failure = on(&gpu.device, 7);
        set_implicit_gemm(false);
        assert_eq!(routed, [true, false], "wgpu yes, flex no");
        assert!(!after_failure, "a failed shape takes the tap sum");
        assert!(fallbacks().contains(&"7→5, kernel 3, F32".to_string()));
    }

    /// CI's wgpu is lavapipe, which has no cooperative matrices: there the
    /// kernels are cubek's direct ones, and this checks the operation around
    /// them (layouts, the dispatch, the backward's flipped kernel and weight
    /// gradient) against the tap sum on flex. cubek's cooperative-matrix
    /// kernels are checked where they run, on a GPU, by `bench --golden`
    /// (the output, and its convolution check of both gradients).
    #[test]
    fn matches_the_tap_sum_in_value_and_gradients() {
        let gpu = select_device(Named::Wgpu).expect("wgpu needs an adapter (lavapipe in CI)");
        let flex = Device::flex().autodiff();
        let normal = burn::tensor::Distribution::Normal(0.0, 1.0);
        // Kernels 3 and 9, dilations up to past the sequence, batch 1.
        for (kernel, dilation, length, batch) in
            [(3, 1, 13, 2), (3, 4, 11, 2), (9, 2, 13, 1), (3, 8, 5, 2)]
        {
            let x = Tensor::<3>::random([batch, length, 5], normal, &flex);
            let w = Tensor::<3>::random([kernel, 5, 4], normal, &flex); // taps first
            // A weighting per position and channel: a misrouted gradient shows.
            let r = Tensor::<3>::random([batch, length, 4], normal, &flex);
            let run = |device: &Device, path: ConvPath| {
                let [x, w, r] = [&x, &w, &r].map(|t| t.clone().to_device(device));
                let [x, w] = [x, w].map(Tensor::require_grad);
                let y = path.run(x.clone(), w.clone(), dilation);
                let g = (y.clone() * r).sum().backward();
                [y, x.grad(&g).unwrap(), w.grad(&g).unwrap()].map(|t| {
                    let dims = t.dims();
                    (
                        t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap(),
                        dims,
                    )
                })
            };
            let want = run(&flex, ConvPath::TapSum);
            let got = run(&gpu.device.clone().autodiff(), ConvPath::ImplicitGemm);
            for (name, (want, got)) in ["y", "dx", "dw"].into_iter().zip(want.iter().zip(&got)) {
                assert_eq!(want.1, got.1, "{name}: shapes");
                let scale = want.0.iter().fold(1f32, |m, v| m.max(v.abs()));
                let diff = crate::max_abs_diff(&want.0, &got.0);
                assert!(
                    diff <= 1e-5 * scale,
                    "kernel {kernel}, dilation {dilation}, {name}: {diff} of {scale}"
                );
            }
        }
    }
}
