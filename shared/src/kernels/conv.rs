//! The one convolution every block uses: 1-D, 'same' zero padding, channels
//! last, and the ways to compute it.
//!
//! [`conv1d_same`] is the convolution; [`ConvPath::choose`] is the one place
//! that decides how it is computed, from the shapes, the device and the
//! precision ([`ConvSite`]):
//! - [`ConvPath::Winograd`]: kernel 3 by Winograd's F(4, 3), half the
//!   multiplications, forward and backward (`conv/winograd.rs`): flex in f32.
//! - [`ConvPath::WinogradGrouped`]: a wider kernel as kernel-3 convolutions
//!   of its taps three by three, where that saves a quarter of the products
//!   (the seed's block-2 entry): flex in f32.
//! - [`ConvPath::TapSum`]: each tap's slice of the kernel times the input as
//!   it lies, the products shifted into place and summed (`conv/tap_sum.rs`):
//!   long sequences where the kernel's taps outweigh its outputs (block 1 on
//!   a GPU).
//! - [`ConvPath::Im2col`]: the padded input copied once per tap and
//!   multiplied once (`conv/im2col.rs`): everything else (the stem, the short
//!   blocks 2 and 3 on a GPU or in f16).
//!
//! All of them are written as matrix products (or loops over flex's values)
//! rather than burn's `conv1d`, whose kernels were ~10× slower on the GPU for
//! these shapes (`../shared/TOOLCHAIN.md`). Mixed precision lives here too:
//! [`set_half_products`] makes every convolution multiply in f16 (tensor
//! cores on GPUs) while weights, norms, attention and the loss stay f32.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use burn::module::{Initializer, Param};
use burn::prelude::*;
use burn::tensor::{DType, FloatDType};

use crate::device::is_flex;
use crate::kernels::memo::{Key, Memo};
use crate::kernels::norm::{BatchNorm, per_channel};

mod im2col;
mod tap_sum;
mod winograd;

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
            kept: Memo::default(),
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
    /// The [`Kernel`] made of the weight and bias (and a batch norm folded
    /// in), kept between calls in eval mode on flex: folding and
    /// transforming the taps at every call was ~40% of a forward pass at
    /// batch 8 (docs/BENCHMARKS.md, Levers).
    #[module(skip)]
    kept: Memo<Option<Arc<Kernel>>>,
}

/// A convolution's weight and bias to the ones it runs with (the stem's
/// reverse-complement tie).
pub(crate) type Derive = fn(Tensor<3>, Option<Tensor<1>>) -> (Tensor<3>, Option<Tensor<1>>);

impl Conv {
    /// Applies the convolution.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.forward_with(x, None, |weight, bias| (weight, bias))
    }

    /// `bn(self.forward(x))`, with the batch norm folded into the kernel in
    /// eval mode ([`BatchNorm::after`]).
    pub fn forward_bn(&self, x: Tensor<3>, bn: &BatchNorm) -> Tensor<3> {
        self.forward_with(x, Some(bn), |weight, bias| (weight, bias))
    }

    /// [`Self::forward_bn`] with the weight and bias that `derive` makes of
    /// this convolution's. A kept kernel is known by the tensors it was made
    /// of, not by `derive`: every call on one convolution passes the same
    /// one (the stem's tie).
    pub(crate) fn forward_derived_bn(
        &self,
        x: Tensor<3>,
        bn: &BatchNorm,
        derive: Derive,
    ) -> Tensor<3> {
        self.forward_with(x, Some(bn), derive)
    }

    /// The one path of the three above: the kept kernel when there is one
    /// (made of `derive`'s weight and bias with `bn` folded in), else the
    /// convolution computed afresh.
    fn forward_with(&self, x: Tensor<3>, bn: Option<&BatchNorm>, derive: Derive) -> Tensor<3> {
        let (weight, bias) = self.parameters();
        let keys = self.keys(&weight, &bias, bn.map(BatchNorm::keys));
        let kept = self.kept.get(&keys, || {
            let (weight, bias) = derive(weight.clone(), bias.clone());
            let (weight, bias) = match bn {
                Some(bn) => bn.fold(weight, bias).map(|(w, b)| (w, Some(b)))?,
                None => (weight, bias),
            };
            Some(Arc::new(Kernel::new(weight, bias, self.dilation)))
        });
        if let Some(kernel) = kept.flatten() {
            return kernel.apply(x);
        }
        let (weight, bias) = derive(weight, bias);
        let conv = |weight, bias| conv1d_same(x, weight, bias, self.dilation);
        match bn {
            Some(bn) => bn.after(weight, bias, conv),
            None => conv(weight, bias),
        }
    }

    fn parameters(&self) -> (Tensor<3>, Option<Tensor<1>>) {
        (self.weight.val(), self.bias.as_ref().map(|b| b.val()))
    }

    /// What a kept kernel was made of: the weight, the bias, and a norm's.
    fn keys(
        &self,
        weight: &Tensor<3>,
        bias: &Option<Tensor<1>>,
        norm: Option<[Key; 4]>,
    ) -> Vec<Key> {
        let mut keys = vec![Key::of(weight)];
        keys.extend(bias.as_ref().map(Key::of));
        keys.extend(norm.into_iter().flatten());
        if half_products() {
            // Kept kernels are f32's; f16 products make their own.
            keys.push(Key::none());
        }
        keys
    }
}

/// A convolution's kernel as its paths take it: its taps first `[kernel, in,
/// out]`, its bias, and (made the first time a Winograd path takes them)
/// Winograd's transformed taps.
#[derive(Debug)]
pub struct Kernel {
    /// `[kernel, in, out]`, a view of the module's `[out, in, kernel]`.
    weight: Tensor<3>,
    bias: Option<Tensor<1>>,
    dilation: usize,
    winograd: OnceLock<Tensor<3>>,
}

impl Kernel {
    /// The kernel of `weight` `[out, in, kernel]` and `bias` `[out]`.
    ///
    /// # Panics
    /// If the kernel is even.
    pub fn new(weight: Tensor<3>, bias: Option<Tensor<1>>, dilation: usize) -> Self {
        let [_, _, kernel] = weight.dims();
        assert!(kernel % 2 == 1, "conv kernel must be odd, got {kernel}");
        Kernel {
            weight: weight.permute([2, 1, 0]),
            bias,
            dilation,
            winograd: OnceLock::new(),
        }
    }

    /// The convolution of `x` `[batch, length, in]`: `[batch, length, out]`.
    ///
    /// # Panics
    /// If the channel counts disagree.
    pub fn apply(&self, x: Tensor<3>) -> Tensor<3> {
        let y = if half_products() {
            let half = Kernel {
                weight: self.weight.clone().cast(FloatDType::F16),
                bias: None,
                dilation: self.dilation,
                winograd: OnceLock::new(),
            };
            half.products(x.cast(FloatDType::F16)).cast(FloatDType::F32)
        } else {
            self.products(x)
        };
        match &self.bias {
            Some(bias) => {
                let shape = y.dims();
                y + per_channel(bias.clone(), shape)
            }
            None => y,
        }
    }

    /// [`Self::apply`] without the bias, in the kernel's float type.
    fn products(&self, x: Tensor<3>) -> Tensor<3> {
        let [_, _, channels_in] = x.dims();
        let [_, weight_in, _] = self.weight.dims();
        assert_eq!(
            weight_in, channels_in,
            "conv weight expects {weight_in} input channels, input has {channels_in}"
        );
        ConvPath::choose(&ConvSite::of(&x, &self.weight, self.dilation)).run(x, self)
    }
}

/// A convolution as far as its path goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    /// Sequences.
    pub batch: usize,
    /// Positions.
    pub length: usize,
    /// Input channels.
    pub channels_in: usize,
    /// Output channels.
    pub channels_out: usize,
    /// Kernel width (odd).
    pub kernel: usize,
    /// Spacing between kernel taps.
    pub dilation: usize,
}

/// A convolution and where it runs: what [`ConvPath::choose`] decides from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvSite {
    /// The shapes.
    pub shape: ConvShape,
    /// On burn's CPU backend (else a GPU through wgpu).
    pub flex: bool,
    /// Input and weight are f32 (else f16 products: mixed precision).
    pub f32: bool,
    /// Input and weight both on one autodiff graph, or both off one: what
    /// Winograd's own backward needs (a constant weight in training is not).
    pub tracked_alike: bool,
}

/// The ways to one convolution; see the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvPath {
    /// Winograd's F(4, 3) on a kernel of 3.
    Winograd,
    /// Winograd's F(4, 3) on a wider kernel's taps, three at a time.
    WinogradGrouped,
    /// One product per tap on the unshifted input, shifted and summed.
    TapSum,
    /// The columns of every position's taps, one product.
    Im2col,
}

impl ConvPath {
    /// The path of a convolution: the one place that decides.
    pub fn choose(site: &ConvSite) -> ConvPath {
        let s = &site.shape;
        let empty = [s.batch, s.length, s.channels_in, s.channels_out].contains(&0);
        if empty {
            // Every path gives zeros; the tap sum asks the least of them.
            return ConvPath::TapSum;
        }
        if site.flex && site.f32 && site.tracked_alike {
            if s.kernel == 3 {
                return ConvPath::Winograd;
            }
            if winograd::grouped_pays(s) {
                return ConvPath::WinogradGrouped;
            }
        }
        // The tap sum runs `kernel` products `batch × length` deep and keeps
        // no columns; im2col copies `kernel × in` values a position first.
        // The tap sum pays on long sequences whose kernel's inputs outweigh
        // its outputs (shortest that paid: 64 positions).
        const MIN_LENGTH: usize = 64;
        if s.length >= MIN_LENGTH && s.kernel * s.channels_in > (s.kernel - 1) * s.channels_out {
            ConvPath::TapSum
        } else {
            ConvPath::Im2col
        }
    }

    /// The path's name in reports and tests.
    pub fn name(self) -> &'static str {
        match self {
            ConvPath::Winograd => "Winograd",
            ConvPath::WinogradGrouped => "Winograd, grouped",
            ConvPath::TapSum => "tap sum",
            ConvPath::Im2col => "im2col",
        }
    }

    /// Runs this path on `x` `[batch, length, in]`: `[batch, length, out]`,
    /// without the kernel's bias.
    pub fn run(self, x: Tensor<3>, kernel: &Kernel) -> Tensor<3> {
        let (weight, dilation) = (kernel.weight.clone(), kernel.dilation);
        match self {
            ConvPath::Winograd => winograd::conv3(x, kernel),
            ConvPath::WinogradGrouped => winograd::grouped(x, kernel),
            ConvPath::TapSum => tap_sum::tap_sum(x, weight, dilation),
            ConvPath::Im2col => im2col::im2col(x, weight, dilation),
        }
    }
}

impl ConvSite {
    /// The site of a convolution of `x` `[batch, length, in]` by `weight`
    /// `[kernel, in, out]` (taps first).
    pub fn of(x: &Tensor<3>, weight: &Tensor<3>, dilation: usize) -> Self {
        let [batch, length, channels_in] = x.dims();
        let [kernel, _, channels_out] = weight.dims();
        let shape = ConvShape {
            batch,
            length,
            channels_in,
            channels_out,
            kernel,
            dilation,
        };
        let device = x.device();
        ConvSite {
            shape,
            flex: is_flex(&device),
            f32: x.dtype() == DType::F32 && weight.dtype() == DType::F32,
            tracked_alike: same_graph(&device, &weight.device()),
        }
    }
}

/// Both off autodiff, or (where burn has autodiff) both on it with one
/// checkpointing strategy.
#[cfg(any(not(target_family = "wasm"), feature = "train"))]
fn same_graph(a: &Device, b: &Device) -> bool {
    a.gradient_checkpointing_strategy() == b.gradient_checkpointing_strategy()
}

#[cfg(all(target_family = "wasm", not(feature = "train")))]
fn same_graph(a: &Device, b: &Device) -> bool {
    !a.is_autodiff() && !b.is_autodiff()
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
    Kernel::new(weight, bias, dilation).apply(x)
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

    /// `path` on `x` and a taps-first `[kernel, in, out]` weight.
    fn run(path: ConvPath, x: Tensor<3>, weight: Tensor<3>, dilation: usize) -> Tensor<3> {
        let kernel = Kernel {
            weight,
            bias: None,
            dilation,
            winograd: OnceLock::new(),
        };
        path.run(x, &kernel)
    }

    /// Every path that runs on flex, and a kernel's Winograd path.
    fn paths(kernel: usize) -> [ConvPath; 3] {
        let winograd = match kernel {
            3 => ConvPath::Winograd,
            _ => ConvPath::WinogradGrouped,
        };
        [ConvPath::Im2col, ConvPath::TapSum, winograd]
    }

    #[test]
    fn every_path_matches_the_definition() {
        // Every kernel-3 f32 convolution on flex, trained or not, takes
        // Winograd's F(4, 3), and so does a kernel 9 on 64 channels in groups
        // of three taps; elsewhere (GPUs, f16) 4 → 16 channels take im2col
        // (12 ≤ 32), 16 → 4 the tap sum (48 > 8) on long sequences and im2col
        // on short ones.
        for (cin, cout, length, kernel, elsewhere) in [
            (4, 16, 70, 3, ConvPath::Im2col),
            (16, 4, 70, 3, ConvPath::TapSum),
            (16, 4, 13, 3, ConvPath::Im2col),
            (64, 4, 27, 9, ConvPath::Im2col),
        ] {
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
                let site = ConvSite::of(&x, &taps_first, 2);
                assert_eq!(ConvPath::choose(&site), paths(kernel)[2]);
                let gpu = ConvSite {
                    flex: false,
                    ..site
                };
                assert_eq!(ConvPath::choose(&gpu), elsewhere);
                let routed = ("conv1d_same", conv1d_same(x.clone(), w, None, 2));
                let direct = paths(kernel)
                    .map(|path| (path.name(), run(path, x.clone(), taps_first.clone(), 2)));
                for (name, y) in direct.into_iter().chain([routed]) {
                    let got = y.into_data().try_to_vec::<f32>().unwrap();
                    let diff = crate::metrics::max_abs_diff(&got, &want);
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

    /// The seed model's convolutions, by name, at batch 64.
    fn seed_convolutions() -> Vec<(&'static str, ConvShape)> {
        let c = crate::ModelConfig::new();
        let shape = |length, channels_in, channels_out, kernel, dilation| ConvShape {
            batch: 64,
            length,
            channels_in,
            channels_out,
            kernel,
            dilation,
        };
        let (c1, c2, c3, k) = (
            c.block1_channels(),
            c.block2_channels,
            c.block3_channels,
            c.res_kernel,
        );
        let (l1, l2) = (c.block1_len(), c.block2_len());
        vec![
            ("stem", shape(c.seq_len, 4, c1, c.stem_kernel, 1)),
            ("block 1, dilation 1", shape(c.seq_len, c1, c1, k, 1)),
            ("block 1, dilation 8", shape(c.seq_len, c1, c1, k, 8)),
            ("block 2 entry", shape(l1, c1, c2, c.block2_kernel, 1)),
            ("block 2, dilation 2", shape(l1, c2, c2, k, 2)),
            ("block 3 entry", shape(l2, c2, c3, c.block3_kernel, 1)),
            ("block 3, dilation 2", shape(l2, c3, c3, k, 2)),
        ]
    }

    /// A site on flex from real tensors of `shape` (batch 1: only emptiness
    /// depends on it): with autodiff and both tracked (training) or without.
    fn flex_site(shape: ConvShape, training: bool, dtype: FloatDType) -> ConvSite {
        let device = match training {
            true => Device::flex().autodiff(),
            false => Device::flex(),
        };
        let x = Tensor::<3>::zeros([1, shape.length, shape.channels_in], &device);
        let w = Tensor::<3>::zeros(
            [shape.kernel, shape.channels_in, shape.channels_out],
            &device,
        );
        let (x, w) = match training {
            true => (x.require_grad(), w.require_grad()),
            false => (x, w),
        };
        let site = ConvSite::of(&x.cast(dtype), &w.cast(dtype), shape.dilation);
        ConvSite { shape, ..site }
    }

    #[test]
    fn the_seed_models_convolutions_take_these_paths() {
        use ConvPath::{Im2col, TapSum, Winograd, WinogradGrouped};
        // Columns: flex inference, flex training, flex in f16, a GPU in f32,
        // a GPU in f16 (mixed precision).
        let table = [
            ("stem", [Im2col, Im2col, Im2col, Im2col, Im2col]),
            (
                "block 1, dilation 1",
                [Winograd, Winograd, TapSum, TapSum, TapSum],
            ),
            (
                "block 1, dilation 8",
                [Winograd, Winograd, TapSum, TapSum, TapSum],
            ),
            (
                "block 2 entry",
                [WinogradGrouped, WinogradGrouped, Im2col, Im2col, Im2col],
            ),
            (
                "block 2, dilation 2",
                [Winograd, Winograd, Im2col, Im2col, Im2col],
            ),
            ("block 3 entry", [Im2col, Im2col, Im2col, Im2col, Im2col]),
            (
                "block 3, dilation 2",
                [Winograd, Winograd, Im2col, Im2col, Im2col],
            ),
        ];
        let convolutions = seed_convolutions();
        assert_eq!(convolutions.len(), table.len());
        for ((name, shape), (row, want)) in convolutions.into_iter().zip(table) {
            assert_eq!(name, row);
            let inference = flex_site(shape, false, FloatDType::F32);
            let gpu = |f32| ConvSite {
                flex: false,
                f32,
                ..inference
            };
            let sites = [
                inference,
                flex_site(shape, true, FloatDType::F32),
                flex_site(shape, false, FloatDType::F16),
                gpu(true),
                gpu(false),
            ];
            let got = sites.map(|site| ConvPath::choose(&site));
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn winograd_is_left_for_empty_inputs_and_one_sided_graphs() {
        let flex = Device::flex();
        let trained = flex.clone().autodiff();
        let path = |x: Tensor<3>, w: Tensor<3>| ConvPath::choose(&ConvSite::of(&x, &w, 1));
        let x = Tensor::<3>::zeros([1, 8, 2], &flex);
        let w = Tensor::<3>::zeros([3, 2, 4], &flex);
        assert_eq!(path(x.clone(), w.clone()), ConvPath::Winograd);
        let empty_x = Tensor::<3>::zeros([1, 0, 2], &flex);
        assert_eq!(path(empty_x, w.clone()), ConvPath::TapSum);
        let empty_w = Tensor::<3>::zeros([3, 2, 0], &flex);
        assert_eq!(path(x.clone(), empty_w), ConvPath::TapSum);
        // Training: both on the graph, or one side constant.
        let xt = Tensor::<3>::zeros([1, 8, 2], &trained);
        let wt = Tensor::<3>::zeros([3, 2, 4], &trained);
        assert_eq!(path(xt.clone(), wt.clone()), ConvPath::Winograd);
        assert_eq!(path(xt, w), ConvPath::Im2col);
        assert_eq!(path(x, wt), ConvPath::Im2col);
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
            for path in paths(kernel) {
                let y = run(path, x.clone(), w.clone(), dilation);
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
        let d = crate::tensor_max_abs_diff(a, b);
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
            let grads = |path: ConvPath| {
                let x = x.clone().with_gradient_checkpointing_strategy(strategy);
                let w = w.clone().with_gradient_checkpointing_strategy(strategy);
                let x = if track_x { x.require_grad() } else { x };
                let w = if track_w { w.require_grad() } else { w };
                // gelu keeps its input for the backward: under Balanced, a
                // memory-bound child that checkpoints the convolution's output.
                let y = burn::tensor::activation::gelu(run(path, x.clone(), w.clone(), 2));
                let g = y.sum().backward();
                (x.grad(&g), w.grad(&g))
            };
            let what = format!("x {track_x}, w {track_w}, {strategy:?}");
            let (want, got) = (grads(ConvPath::TapSum), grads(ConvPath::Winograd));
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
        let full = Kernel::new(w.clone(), None, 2).products(x.clone());
        let half = Kernel::new(w.cast(FloatDType::F16), None, 2).products(x.cast(FloatDType::F16));
        assert_eq!(half.dtype(), burn::tensor::DType::F16);
        let half = half.cast(FloatDType::F32);
        let diff = crate::tensor_max_abs_diff(full.clone(), half);
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

    /// In eval mode a convolution keeps its kernel, folded batch norm and
    /// Winograd's taps, between calls: what it gives is what a fresh
    /// computation gives, also once the weights or the norm change (an
    /// optimizer's step maps a parameter to a new tensor, as here).
    #[test]
    fn a_kept_kernel_follows_the_weights_and_the_norm() {
        use crate::kernels::norm::BatchNormConfig;
        use burn::module::RunningState;
        let device = Device::flex();
        let normal = burn::tensor::Distribution::Normal(0.0, 1.0);
        let random = |shape: usize| Tensor::<1>::random([shape], normal, &device);
        let mut conv = ConvConfig::new(6, 5, 3).with_dilation(2).init(&device);
        conv.bias = Some(Param::from_tensor(random(5)));
        let bn = BatchNorm {
            weight: Param::from_tensor(random(5)),
            bias: Param::from_tensor(random(5)),
            running_mean: RunningState::new(random(5)),
            running_var: RunningState::new(random(5).abs()),
            ..BatchNormConfig::new(5).init(&device)
        };
        let x = Tensor::<3>::random([2, 13, 6], normal, &device);
        let fresh = |conv: &Conv, bn: &BatchNorm| {
            let bias = conv.bias.as_ref().map(|b| b.val());
            bn.after(conv.weight.val(), bias, |w, b| {
                conv1d_same(x.clone(), w, b, 2)
            })
        };
        let same = |a: Tensor<3>, b: Tensor<3>| a.into_data().assert_eq(&b.into_data(), true);

        assert_eq!(conv.kept.kept(), 0);
        let first = conv.forward_bn(x.clone(), &bn);
        assert_eq!(conv.kept.kept(), 1);
        same(first.clone(), fresh(&conv, &bn));
        same(conv.forward_bn(x.clone(), &bn), first.clone());

        conv.weight = conv.weight.map(|w| w * 2.0);
        let doubled = conv.forward_bn(x.clone(), &bn);
        same(doubled.clone(), fresh(&conv, &bn));
        assert!(crate::tensor_max_abs_diff(doubled.clone(), first) > 0.1);

        let shifted = BatchNorm {
            running_mean: RunningState::new(random(5)),
            ..bn.clone()
        };
        let moved = conv.forward_bn(x.clone(), &shifted);
        same(moved.clone(), fresh(&conv, &shifted));
        assert!(crate::tensor_max_abs_diff(moved, doubled) > 0.1);

        // Without the norm, the kept kernel is the plain one.
        let plain = conv.forward(x.clone());
        let bias = conv.bias.as_ref().map(|b| b.val());
        same(plain, conv1d_same(x.clone(), conv.weight.val(), bias, 2));
    }

    #[test]
    #[should_panic(expected = "conv weight expects 4 input channels, input has 3")]
    fn rejects_wrong_channels() {
        let device = Device::flex();
        let conv = ConvConfig::new(4, 2, 3).init(&device);
        conv.forward(Tensor::ones([1, 5, 3], &device));
    }
}
