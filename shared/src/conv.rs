//! The one convolution every block uses: 1-D, 'same' zero padding, channels last.
//!
//! It is written as one matrix product per kernel tap rather than burn's
//! `conv1d`, whose kernels were ~10× slower on the GPU for these shapes (see
//! the team folder's `../shared/TOOLCHAIN.md`); a faster kernel replaces
//! [`conv1d_same`] here and every block follows.
//!
//! Mixed precision lives here too: [`set_half_products`] makes every
//! convolution multiply in f16 (tensor cores on GPUs) while weights, norms,
//! attention and the loss stay f32.

use std::sync::atomic::{AtomicBool, Ordering};

use burn::module::{Initializer, Param};
use burn::prelude::*;
use burn::tensor::FloatDType;

use crate::dense::rows_product;
use crate::norm::{BatchNorm, per_channel};
use crate::winograd;

static HALF_PRODUCTS: AtomicBool = AtomicBool::new(false);

/// Makes every convolution of this process multiply in f16 (`true`) or f32
/// (`false`, the default): the analogue of PyTorch's
/// `torch.backends.cuda.matmul.allow_tf32`, one switch for a whole run. Inputs
/// and weights are rounded to f16 for the products only; what a convolution
/// returns, and every gradient that reaches a weight, is f32.
pub fn set_half_products(on: bool) {
    HALF_PRODUCTS.store(on, Ordering::Relaxed);
}

/// Whether convolutions multiply in f16; see [`set_half_products`].
pub fn half_products() -> bool {
    HALF_PRODUCTS.load(Ordering::Relaxed)
}

/// Configuration of a [`Conv`].
#[derive(Config, Debug)]
pub struct ConvConfig {
    /// Input channels.
    pub channels_in: usize,
    /// Output channels.
    pub channels_out: usize,
    /// Kernel width; odd, so that 'same' padding is symmetric.
    pub kernel: usize,
    /// Spacing between kernel taps.
    #[config(default = 1)]
    pub dilation: usize,
    /// Whether a bias is added.
    #[config(default = true)]
    pub bias: bool,
}

impl ConvConfig {
    /// A convolution with Keras' Glorot-uniform weights and zero bias.
    pub fn init(&self, device: &Device) -> Conv {
        let fan_in = self.channels_in * self.kernel;
        let fan_out = self.channels_out * self.kernel;
        let weight = Initializer::XavierUniform { gain: 1.0 }.init_with(
            [self.channels_out, self.channels_in, self.kernel],
            Some(fan_in),
            Some(fan_out),
            device,
        );
        let bias = self
            .bias
            .then(|| Initializer::Zeros.init([self.channels_out], device));
        Conv {
            weight,
            bias,
            dilation: self.dilation,
        }
    }
}

/// A 1-D convolution with 'same' zero padding on `[batch, length, channels]`.
///
/// # Shapes
/// - weight: `[out, in, kernel]` (PyTorch's layout, the golden file's)
/// - input: `[batch, length, in]`, output: `[batch, length, out]`
#[derive(Module, Debug)]
pub struct Conv {
    /// Kernel `[out, in, kernel]`.
    pub weight: Param<Tensor<3>>,
    /// Bias `[out]`.
    pub bias: Option<Param<Tensor<1>>>,
    /// Spacing between kernel taps.
    pub dilation: usize,
}

impl Conv {
    /// Applies the convolution.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        conv1d_same(
            x,
            self.weight.val(),
            self.bias.as_ref().map(|b| b.val()),
            self.dilation,
        )
    }

    /// `bn(self.forward(x))`, with the batch norm folded into the kernel in
    /// eval mode ([`BatchNorm::after`]).
    pub fn forward_bn(&self, x: Tensor<3>, bn: &BatchNorm) -> Tensor<3> {
        let bias = self.bias.as_ref().map(|b| b.val());
        bn.after(self.weight.val(), bias, |weight, bias| {
            conv1d_same(x, weight, bias, self.dilation)
        })
    }
}

/// Whether [`conv1d_same`] sums per-tap products (else: im2col); see there.
fn takes_tap_sum(length: usize, channels_in: usize, channels_out: usize, kernel: usize) -> bool {
    // Shortest sequence whose per-sequence products make the tap sum pay.
    const MIN_LENGTH: usize = 64;
    length >= MIN_LENGTH && kernel * channels_in > (kernel - 1) * channels_out
}

/// `y[b, l, o] = bias[o] + Σ_{t, c} x[b, l + (t - (k-1)/2)·dilation, c] · w[o, c, t]`,
/// with zeros outside the sequence.
///
/// # Shapes
/// - x: `[batch, length, in]`, weight: `[out, in, kernel]`, bias: `[out]`
/// - output: `[batch, length, out]`
///
/// # Panics
/// If the kernel is even or the channel counts disagree.
pub fn conv1d_same(
    x: Tensor<3>,
    weight: Tensor<3>,
    bias: Option<Tensor<1>>,
    dilation: usize,
) -> Tensor<3> {
    let y = if half_products() {
        let products = conv1d_products(
            x.cast(FloatDType::F16),
            weight.cast(FloatDType::F16),
            dilation,
        );
        products.cast(FloatDType::F32)
    } else {
        conv1d_products(x, weight, dilation)
    };
    match bias {
        Some(bias) => {
            let shape = y.dims();
            y + per_channel(bias, shape)
        }
        None => y,
    }
}

/// [`conv1d_same`] without the bias, in the inputs' float type.
fn conv1d_products(x: Tensor<3>, weight: Tensor<3>, dilation: usize) -> Tensor<3> {
    let [_, length, channels_in] = x.dims();
    let [channels_out, weight_in, kernel] = weight.dims();
    assert_eq!(
        weight_in, channels_in,
        "conv weight expects {weight_in} input channels, input has {channels_in}"
    );
    assert!(kernel % 2 == 1, "conv kernel must be odd, got {kernel}");
    let weight = weight.permute([2, 1, 0]); // [kernel, in, out]

    // Three ways to one convolution. On the CPU in f32, kernel-3
    // convolutions take Winograd's F(4, 3), half the multiplications of the
    // others, forward and backward (`winograd`), and so do wider kernels
    // where their taps three by three save a quarter (the seed's block-2
    // entry). Elsewhere (GPUs, f16, the stem, short sequences): im2col copies
    // the padded input once per tap (`kernel × in` a position) and multiplies
    // once, `batch × length` rows deep; the tap sum multiplies the input as it
    // is by each tap's slice of the kernel, `kernel` products as deep, and
    // adds the partial outputs shifted into place, keeping no columns for
    // autodiff. So on a GPU block 1 (111 positions, 384 channels) takes the
    // tap sum, the stem (4 channels in) and the short blocks 2 and 3 im2col
    // (on flex, before Winograd, 1.5–2× faster there: docs/BENCHMARKS.md).
    #[cfg(all(feature = "wgpu", not(target_family = "wasm")))]
    if crate::gemm_conv::applies(&x, &weight) {
        return crate::gemm_conv::conv(x, weight, dilation);
    }
    if winograd::applies(&x, &weight, dilation) {
        winograd::conv(x, weight, dilation)
    } else if takes_tap_sum(length, channels_in, channels_out, kernel) {
        tap_sum(x, weight, dilation)
    } else {
        im2col(x, weight, dilation)
    }
}

/// `x` with `pad` zeros before and after its length axis, as
/// `x.pad(…, PadMode::Constant(0.0))` computes it.
///
/// burn's `pad` fills its output with `full`, which an autodiff device builds
/// on the host and uploads whole: 190 MB for each of block 1's convolutions at
/// batch 1024, three quarters of a training step's host time on an H100
/// (docs/BENCHMARKS.md). `zeros` fills on the device, and only the two pads.
pub fn pad_length(x: Tensor<3>, pad: usize) -> Tensor<3> {
    if pad == 0 {
        return x;
    }
    let [batch, _, channels] = x.dims();
    let zeros = Tensor::<3>::zeros([batch, pad, channels], (&x.device(), x.dtype()));
    Tensor::cat(vec![zeros.clone(), x, zeros], 1)
}

/// One product of the columns (every position's `kernel × in` inputs) with the
/// kernel, `batch × length` rows deep.
///
/// # Shapes
/// - x: `[batch, length, in]`, weight: `[kernel, in, out]`
/// - output: `[batch, length, out]`
fn im2col(x: Tensor<3>, weight: Tensor<3>, dilation: usize) -> Tensor<3> {
    let [batch, length, channels_in] = x.dims();
    let [kernel, _, channels_out] = weight.dims();
    let x = pad_length(x, dilation * (kernel - 1) / 2);
    // The columns as one copy of a view: the kernel's window at every position
    // (`unfold`, no copy), its taps in order, then the reshape, which copies
    // each position's `kernel × in` values in runs of `in` (one run when
    // undilated). Concatenating the taps instead copied twice, 3× slower on flex.
    let span = dilation * (kernel - 1) + 1;
    let windows: Tensor<4> = x.unfold(1, span, 1); // [batch, length, in, span]
    let columns = windows
        .slice(s![.., .., .., 0..;dilation as isize])
        .permute([0, 1, 3, 2]) // [batch, length, kernel, in]
        .reshape([batch * length, kernel * channels_in]);
    let weight = weight.reshape([kernel * channels_in, channels_out]);
    rows_product(columns, weight).reshape([batch, length, channels_out])
}

/// Each tap's slice of the kernel times the whole input, the product shifted
/// by the tap's offset, summed. Shapes as [`im2col`].
///
/// Shifting the products keeps every product on the input as it lies in
/// memory, one product `batch × length` rows deep ([`rows_product`]): no copy
/// of each shifted tap on a GPU, and one weight gradient per tap rather than
/// one per sequence summed afterwards (flex's training step 5–7% faster).
pub(crate) fn tap_sum(x: Tensor<3>, weight: Tensor<3>, dilation: usize) -> Tensor<3> {
    let [batch, length, channels_in] = x.dims();
    let [kernel, _, channels_out] = weight.dims();
    let rows = x.reshape([batch * length, channels_in]);
    (0..kernel)
        .filter_map(|t| {
            let offset = (t as isize - (kernel / 2) as isize) * dilation as isize;
            // A tap that reaches past the sequence sees only zeros.
            (offset.unsigned_abs() < length).then(|| {
                let w = weight
                    .clone()
                    .narrow(0, t, 1)
                    .reshape([channels_in, channels_out]);
                let product = rows_product(rows.clone(), w);
                shift(product.reshape([batch, length, channels_out]), offset)
            })
        })
        .reduce(|sum, tap| sum + tap)
        .unwrap_or_else(|| {
            Tensor::zeros(
                [batch, length, channels_out],
                (&rows.device(), rows.dtype()),
            )
        })
}

/// `y[:, l] = p[:, l + offset]`, zero where `l + offset` is outside `p`;
/// `|offset|` below the length.
fn shift(p: Tensor<3>, offset: isize) -> Tensor<3> {
    let [batch, length, channels] = p.dims();
    let n = offset.unsigned_abs();
    if n == 0 {
        return p;
    }
    let zeros = Tensor::<3>::zeros([batch, n, channels], (&p.device(), p.dtype()));
    if offset > 0 {
        Tensor::cat(vec![p.narrow(1, n, length - n), zeros], 1)
    } else {
        Tensor::cat(vec![zeros, p.narrow(1, 0, length - n)], 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_hand_computed_dilated_case() {
        let device = Device::flex();
        // One channel in and out, kernel [1, 2, 3], dilation 2, bias 0.5.
        let x = Tensor::<3>::from_floats([[[1.0], [2.0], [3.0], [4.0], [5.0]]], &device);
        let w = Tensor::<3>::from_floats([[[1.0, 2.0, 3.0]]], &device);
        let b = Tensor::<1>::from_floats([0.5], &device);
        let y = conv1d_same(x, w, Some(b), 2);
        // y[l] = 1·x[l-2] + 2·x[l] + 3·x[l+2] + 0.5, zeros outside.
        let expected = [
            2.0 + 9.0 + 0.5,
            4.0 + 12.0 + 0.5,
            1.0 + 6.0 + 15.0 + 0.5,
            2.0 + 8.0 + 0.5,
            3.0 + 10.0 + 0.5,
        ];
        let got = y.into_data().try_to_vec::<f32>().unwrap();
        // Winograd's fractions (kernel 3 on flex) round in the last bits.
        for (g, e) in got.iter().zip(expected) {
            assert!((g - e).abs() < 1e-5, "{got:?} vs {expected:?}");
        }
    }

    /// The definition, written out: the reference for both product paths.
    fn naive(x: &[f32], w: &[f32], dims: [usize; 5], dilation: usize) -> Vec<f32> {
        let [batch, length, cin, cout, kernel] = dims;
        let mut y = vec![0.0; batch * length * cout];
        for b in 0..batch {
            for l in 0..length {
                for o in 0..cout {
                    for t in 0..kernel {
                        let p =
                            l as isize + (t as isize - (kernel / 2) as isize) * dilation as isize;
                        if p < 0 || p >= length as isize {
                            continue;
                        }
                        for c in 0..cin {
                            y[(b * length + l) * cout + o] += x
                                [(b * length + p as usize) * cin + c]
                                * w[(o * cin + c) * kernel + t];
                        }
                    }
                }
            }
        }
        y
    }

    type Product = fn(Tensor<3>, Tensor<3>, usize) -> Tensor<3>;

    /// The three ways to a convolution (Winograd's in groups of three taps
    /// for wider kernels).
    const PATHS: [(&str, Product); 3] = [
        ("im2col", im2col),
        ("tap sum", tap_sum),
        ("Winograd", winograd::conv),
    ];

    #[test]
    fn every_path_matches_the_definition() {
        // Every kernel-3 f32 convolution on flex, trained or not, takes
        // Winograd's F(4, 3), and so does a kernel 9 on 64 channels in groups
        // of three taps; elsewhere (GPUs, f16) 4 → 16 channels take im2col
        // (12 ≤ 32), 16 → 4 the tap sum (48 > 8) on long sequences and im2col
        // on short ones.
        for (cin, cout, length, kernel, tap_sum) in [
            (4, 16, 70, 3, false),
            (16, 4, 70, 3, true),
            (16, 4, 13, 3, false),
            (64, 4, 27, 9, false),
        ] {
            assert_eq!(takes_tap_sum(length, cin, cout, kernel), tap_sum);
            let dims = [2, length, cin, cout, kernel];
            let x: Vec<f32> = (0..2 * length * cin)
                .map(|i| ((i * 37) % 11) as f32 - 5.0)
                .collect();
            let w: Vec<f32> = (0..cout * cin * kernel)
                .map(|i| ((i * 17) % 7) as f32 - 3.0)
                .collect();
            let want = naive(&x, &w, dims, 2);
            for device in [Device::flex().autodiff(), Device::flex()] {
                let x = Tensor::from_data(TensorData::new(x.clone(), [2, length, cin]), &device);
                let w = Tensor::from_data(TensorData::new(w.clone(), [cout, cin, kernel]), &device);
                let taps_first = w.clone().permute([2, 1, 0]);
                assert!(winograd::applies(&x, &taps_first, 2));
                let routed = ("conv1d_same", conv1d_same(x.clone(), w, None, 2));
                let direct =
                    PATHS.map(|(name, product)| (name, product(x.clone(), taps_first.clone(), 2)));
                for (name, y) in direct.into_iter().chain([routed]) {
                    let got = y.into_data().try_to_vec::<f32>().unwrap();
                    let diff = crate::max_abs_diff(&got, &want);
                    // Integers: im2col and the tap sum are exact; Winograd's
                    // fractions round, within f32 rounding of sums in the
                    // hundreds (thousands for kernel 9 on 64 channels).
                    let exact = name == "im2col" || name == "tap sum";
                    let tolerance = if exact { 0.0 } else { 1e-2 };
                    assert!(
                        diff <= tolerance,
                        "{cin} → {cout}, {length}, kernel {kernel}, {name}: {diff}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_path_agrees_in_value_and_gradients() {
        let device = Device::flex().autodiff();
        let normal = burn::tensor::Distribution::Normal(0.0, 1.0);
        // Dilation 3 on 5 positions: the outer taps (±6 for kernel 5) reach
        // past the sequence; dilation 4 on 6 positions leaves one tile's
        // subsequences one or two long. Kernels 5, 7 and 9 take Winograd in
        // groups of three taps (7 with two zero taps).
        for (kernel, dilation, length) in [
            (5, 1, 13),
            (5, 2, 13),
            (5, 3, 5),
            (7, 2, 13),
            (9, 1, 27),
            (3, 1, 13),
            (3, 2, 111),
            (3, 4, 6),
            (3, 8, 5),
        ] {
            // One sequence on the longest, so a batch of 1 is covered.
            let batch = if length > 100 { 1 } else { 2 };
            let x = Tensor::<3>::random([batch, length, 5], normal, &device).require_grad();
            // 5 channels in, 4 out.
            let w = Tensor::<3>::random([kernel, 5, 4], normal, &device).require_grad();
            let mut outputs = Vec::new();
            let mut grads = Vec::new();
            for (_, product) in PATHS {
                let y = product(x.clone(), w.clone(), dilation);
                // A weighting that differs per position and channel, so a
                // gradient routed to the wrong tap or position shows.
                let dims = y.dims();
                let count = dims.iter().product::<usize>() as i64;
                let r = Tensor::<1, Int>::arange(0..count, &device)
                    .float()
                    .reshape(dims);
                let g = (y.clone() * r).sum().backward();
                grads.push((x.grad(&g).unwrap(), w.grad(&g).unwrap()));
                outputs.push(y);
            }
            let what = format!("kernel {kernel}, dilation {dilation}");
            for (output, (x_grad, w_grad)) in outputs.iter().zip(&grads).skip(1) {
                close(outputs[0].clone(), output.clone(), &what);
                close(grads[0].0.clone(), x_grad.clone(), &what);
                close(grads[0].1.clone(), w_grad.clone(), &what);
            }
        }
    }

    /// Relative to the largest value: the weighted sums reach the hundreds,
    /// where f32 rounding alone is ~1e-5; a misrouted tap or position is off
    /// by the values themselves.
    fn close(a: Tensor<3>, b: Tensor<3>, what: &str) {
        let scale: f32 = a.clone().abs().max().into_scalar();
        let d: f32 = (a - b).abs().max().into_scalar();
        assert!(
            d <= 1e-5 * scale.max(1.0),
            "{what}: differ by {d} of {scale}"
        );
    }

    #[test]
    fn winograd_gradients_with_one_side_constant_or_checkpointed() {
        use burn::backend::GradientCheckpointingStrategy::{Balanced, Disabled};
        let device = Device::flex().autodiff();
        let normal = burn::tensor::Distribution::Normal(0.0, 1.0);
        let x = Tensor::<3>::random([2, 13, 5], normal, &device);
        let w = Tensor::<3>::random([3, 5, 4], normal, &device);
        for (track_x, track_w, strategy) in [
            (true, false, Disabled),
            (false, true, Disabled),
            (true, true, Balanced),
        ] {
            let grads = |product: Product| {
                let x = x.clone().with_gradient_checkpointing_strategy(strategy);
                let w = w.clone().with_gradient_checkpointing_strategy(strategy);
                let x = if track_x { x.require_grad() } else { x };
                let w = if track_w { w.require_grad() } else { w };
                // gelu keeps its input for the backward: under Balanced, a
                // memory-bound child that checkpoints the convolution's output.
                let y = burn::tensor::activation::gelu(product(x.clone(), w.clone(), 2));
                let g = y.sum().backward();
                (x.grad(&g), w.grad(&g))
            };
            let what = format!("x {track_x}, w {track_w}, {strategy:?}");
            let (want, got) = (grads(tap_sum), grads(winograd::conv));
            assert_eq!(got.0.is_some(), track_x, "{what}");
            assert_eq!(got.1.is_some(), track_w, "{what}");
            for (want, got) in [(want.0, got.0), (want.1, got.1)] {
                if let (Some(want), Some(got)) = (want, got) {
                    close(want, got, &what);
                }
            }
        }
    }

    #[test]
    fn pad_length_is_burns_zero_pad_in_value_gradient_and_dtype() {
        use burn::tensor::ops::PadMode;
        let device = Device::flex().autodiff();
        let normal = burn::tensor::Distribution::Normal(0.0, 1.0);
        let x = Tensor::<3>::random([2, 5, 3], normal, &device).require_grad();
        let ours = pad_length(x.clone(), 2);
        let burns = x
            .clone()
            .pad([(0, 0), (2, 2), (0, 0)], PadMode::Constant(0.0));
        assert_eq!(ours.dims(), [2, 9, 3]);
        ours.to_data().assert_eq(&burns.to_data(), true);
        // A weighting per position, so a gradient from the wrong place shows.
        let r = Tensor::<1, Int>::arange(0..54, &device)
            .float()
            .reshape([2, 9, 3]);
        let grad = |y: Tensor<3>| x.grad(&(y * r.clone()).sum().backward()).unwrap();
        grad(ours).to_data().assert_eq(&grad(burns).to_data(), true);
        assert_eq!(pad_length(x.clone(), 0).dims(), [2, 5, 3]);
        let half = pad_length(x.cast(FloatDType::F16), 1);
        assert_eq!(half.dtype(), burn::tensor::DType::F16);
    }

    #[test]
    fn half_products_stay_within_f16_rounding_of_f32() {
        let device = Device::flex();
        let x = Tensor::<3>::random([2, 70, 16], burn::tensor::Distribution::Default, &device);
        let w = Tensor::<3>::random([8, 16, 3], burn::tensor::Distribution::Default, &device);
        // Not through the process-wide switch: other tests run beside this one.
        let full = conv1d_products(x.clone(), w.clone(), 2);
        let half = conv1d_products(x.cast(FloatDType::F16), w.cast(FloatDType::F16), 2);
        assert_eq!(half.dtype(), burn::tensor::DType::F16);
        let half = half.cast(FloatDType::F32);
        let diff: f32 = (full.clone() - half).abs().max().into_scalar();
        let scale: f32 = full.abs().max().into_scalar();
        // 48 products of values in [0, 1), each input rounded to 11 bits.
        assert!(
            diff > 0.0 && diff < 1e-2 * scale,
            "diff {diff}, scale {scale}"
        );
    }

    #[test]
    fn keeps_length_and_maps_channels() {
        let device = Device::flex();
        let conv = ConvConfig::new(5, 7, 9).with_dilation(3).init(&device);
        let y = conv.forward(Tensor::ones([2, 11, 5], &device));
        assert_eq!(y.dims(), [2, 11, 7]);
    }

    #[test]
    #[should_panic(expected = "conv weight expects 4 input channels, input has 3")]
    fn rejects_wrong_channels() {
        let device = Device::flex();
        let conv = ConvConfig::new(4, 2, 3).init(&device);
        conv.forward(Tensor::ones([1, 5, 3], &device));
    }
}
