//! Kernel-3 convolutions by Winograd's minimal filtering F(4, 3) on the CPU,
//! in inference and (natively) in training: half the multiplications of the
//! tap sum, forward and backward.
//!
//! Each sequence is cut into tiles of four outputs. A tile's six inputs go
//! through a fixed linear transform (`Bᵀ`), the kernel's three taps through
//! another (`G`); six products, one per transformed input, replace the three
//! taps × four outputs; a third transform (`Aᵀ`) turns the six products into
//! the four outputs (Lavin & Gray, "Fast Algorithms for Convolutional Neural
//! Networks", 2016). A dilated convolution is the same on each of its
//! `dilation` interleaved subsequences, and a wider kernel is kernel-3
//! convolutions of its taps three by three, shifted and summed ([`grouped`]).
//!
//! flex multiplies at its matrix products' speed either way, so the products'
//! count is what sets the time; but each burn operation is a pass over memory,
//! and the transforms written as burn operations (some fifty passes, one a
//! term) cost more than the products they save (docs/BENCHMARKS.md). The
//! transforms are loops here, one pass each way, over the values as flex holds
//! them.
//!
//! So burn's autodiff cannot differentiate them: in training the convolution
//! is one operation of its graph (`training`), whose backward runs the same
//! algorithm transposed, its products again half the tap sum's.

use burn::prelude::*;

use super::{ConvShape, Kernel, pad_length};
use std::mem::MaybeUninit;

use crate::kernels::flex_values::{contiguous, product, slice, written};

/// Outputs per tile.
const TILE: usize = 4;
/// Inputs (and products) per tile: a tile's outputs and one neighbour each side.
const POINTS: usize = TILE + 2;

/// `Bᵀ`: a tile's inputs to its transformed inputs (interpolation points 0,
/// ±1, ±2, ∞).
const INPUT: [[f32; POINTS]; POINTS] = [
    [4.0, 0.0, -5.0, 0.0, 1.0, 0.0],
    [0.0, -4.0, -4.0, 1.0, 1.0, 0.0],
    [0.0, 4.0, -4.0, -1.0, 1.0, 0.0],
    [0.0, -2.0, -1.0, 2.0, 1.0, 0.0],
    [0.0, 2.0, -1.0, -2.0, 1.0, 0.0],
    [0.0, 4.0, 0.0, -5.0, 0.0, 1.0],
];

/// `G`: the kernel's taps to its transformed taps.
const KERNEL: [[f32; 3]; POINTS] = [
    [1.0 / 4.0, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];

/// `Aᵀ`: a tile's six products to its four outputs.
const OUTPUT: [[f32; POINTS]; TILE] = [
    [1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
    [0.0, 1.0, -1.0, 2.0, -2.0, 0.0],
    [0.0, 1.0, 1.0, 4.0, 4.0, 0.0],
    [0.0, 1.0, -1.0, 8.0, -8.0, 1.0],
];

/// Whether a kernel wider than 3 pays in groups of three taps ([`grouped`]):
/// it saves a quarter of the products or more, and the input is wide enough
/// (32 channels) for that to outweigh its transforms (block 2's entry in the
/// seed config, not the stem's four channels).
pub(crate) fn grouped_pays(shape: &ConvShape) -> bool {
    let direct = shape.kernel * shape.length;
    let (groups, pad) = spread(shape.kernel, shape.dilation);
    let tiles = Tiles::new(shape.length + 2 * pad, shape.dilation).per_sequence;
    shape.channels_in >= 32 && 4 * groups * tiles * POINTS <= 3 * direct
}

/// A kernel-3 'same' convolution without bias by Winograd's F(4, 3); on an
/// autodiff device, one operation of its graph whose backward is Winograd's
/// too.
///
/// # Shapes
/// - x: `[batch, length, in]`, kernel: `[3, in, out]` (taps first)
/// - output: `[batch, length, out]`
pub(crate) fn conv3(x: Tensor<3>, kernel: &Kernel) -> Tensor<3> {
    assert_eq!(kernel.weight.dims()[0], 3, "conv3 takes a kernel of 3");
    side_by_side(x, kernel)
}

/// Every group of three taps of `kernel` (zero taps fill the last) as its
/// own kernel-3 convolution of `x`, the groups side by side as output
/// channels: `[batch, length, groups · out]`. Off autodiff the transformed
/// taps are made once per kernel ([`transformed`]) and kept with it.
fn side_by_side(x: Tensor<3>, kernel: &Kernel) -> Tensor<3> {
    let (width, dilation) = (kernel.weight.dims()[0], kernel.dilation);
    #[cfg(any(not(target_family = "wasm"), feature = "train"))]
    if x.device().is_autodiff() {
        return training::conv3(x, kernel.weight.clone(), dilation);
    }
    let taps = kernel
        .winograd
        .get_or_init(|| transformed(kernel.weight.clone()))
        .clone();
    Winograd::forward(x, taps, width, dilation).0
}

/// `G w` of each group of three taps of `weight` `[kernel, in, out]`,
/// transformed straight from the weight as it lies (`G` for each group: see
/// [`taps_matrix`]), so a wider kernel is neither copied nor padded first:
/// `[POINTS, in, groups · out]`.
fn transformed(weight: Tensor<3>) -> Tensor<3> {
    // Per input channel and group, read through `weight`'s strides (a
    // permuted view of the module's `[out, in, kernel]`; a reshape would
    // copy it whole): `[in, POINTS · groups, out]`, a free reshape to `[in,
    // POINTS, groups · out]`, left as a view `[POINTS, in, groups · out]`
    // for the strided products.
    let [kernel, channels_in, channels_out] = weight.dims();
    let groups = kernel.div_ceil(3);
    taps_matrix(kernel, &weight.device())
        .unsqueeze::<3>()
        .matmul(weight.swap_dims(0, 1))
        .reshape([channels_in, POINTS, groups * channels_out])
        .swap_dims(0, 1)
}

/// A wider kernel as kernel-3 convolutions of its taps three by three (zero
/// taps fill the last group), in one Winograd convolution of the input padded
/// by the farthest group's offset, with the groups side by side as output
/// channels (one input transform for all); each group's outputs shifted into
/// place and summed. Burn operations around [`side_by_side`], so autodiff
/// needs nothing more.
pub(crate) fn grouped(x: Tensor<3>, kernel: &Kernel) -> Tensor<3> {
    let [_, length, _] = x.dims();
    let dilation = kernel.dilation;
    let [kernel_width, _, channels_out] = kernel.weight.dims();
    let (groups, pad) = spread(kernel_width, dilation);
    let z = side_by_side(pad_length(x, pad), kernel);
    (0..groups)
        .map(|g| {
            // Group g's centre tap, 3g + 1, lies this far from the kernel's.
            let offset = (3 * g + 1) as isize - (kernel_width / 2) as isize;
            let start = (pad as isize + offset * dilation as isize) as usize;
            z.clone()
                .narrow(1, start, length)
                .narrow(2, g * channels_out, channels_out)
        })
        .reduce(|sum, group| sum + group)
        .expect("a kernel has taps")
}

/// A kernel's groups of three taps, and how far (in positions) the farthest
/// group's centre lies from the kernel's.
fn spread(kernel: usize, dilation: usize) -> (usize, usize) {
    let groups = kernel.div_ceil(3);
    let centre = kernel / 2;
    let farthest = centre.abs_diff(1).max((3 * groups - 2).abs_diff(centre));
    (groups, farthest * dilation)
}

/// What the backward needs of the forward: its transformed inputs and taps
/// (no transform again), and the shapes.
#[derive(Clone, Debug)]
#[cfg_attr(all(target_family = "wasm", not(feature = "train")), allow(dead_code))] // a page that never trains
struct Winograd {
    /// `Bᵀ x`, `[POINTS, rows, in]`.
    inputs: Tensor<3>,
    /// `G w` of each group of taps, `[POINTS, in, groups · out]`.
    taps: Tensor<3>,
    /// The kernel's width.
    kernel: usize,
    batch: usize,
    tiles: Tiles,
}

impl Winograd {
    /// `y = Aᵀ [(Bᵀ x) (G w)]` of a `kernel`-wide kernel's transformed taps
    /// ([`transformed`]), the products one batched matrix product over the
    /// six points.
    fn forward(x: Tensor<3>, taps: Tensor<3>, kernel: usize, dilation: usize) -> (Tensor<3>, Self) {
        let [batch, length, _] = x.dims();
        let tiles = Tiles::new(length, dilation);
        let inputs = to_points(x, &tiles, 0, &INPUT);
        let products = product(inputs.clone(), taps.clone());
        let y = from_points(products, batch, &tiles, 1, &OUTPUT);
        let state = Self {
            inputs,
            taps,
            kernel,
            batch,
            tiles,
        };
        (y, state)
    }
}

/// `G` for each group of three taps of a `kernel`-wide kernel:
/// `[POINTS · groups, kernel]`, row `p · groups + g` taking group `g`'s taps
/// (`3g..3g + 3`, those past the kernel zero) to its transformed tap `p`. For
/// a kernel of 3 it is `G`.
fn taps_matrix(kernel: usize, device: &Device) -> Tensor<2> {
    let groups = kernel.div_ceil(3);
    let mut m = vec![0.0; POINTS * groups * kernel];
    for (p, row) in KERNEL.iter().enumerate() {
        for g in 0..groups {
            for (i, &c) in row.iter().enumerate() {
                let t = 3 * g + i;
                if t < kernel {
                    m[(p * groups + g) * kernel + t] = c;
                }
            }
        }
    }
    Tensor::from_data(TensorData::new(m, [POINTS * groups, kernel]), device)
}

/// How a sequence is cut into tiles: its `dilation` interleaved subsequences,
/// each in tiles of `TILE` outputs. Tile `t` of subsequence `r` is the
/// sequence's tile `t · dilation + r`; its point `j` (`0..POINTS`) lies at
/// position `(t · TILE + j − 1) · dilation + r`, and its output `i` at point
/// `i + 1`'s position.
#[derive(Clone, Debug)]
struct Tiles {
    length: usize,
    dilation: usize,
    /// Tiles per sequence, enough to cover its length.
    per_sequence: usize,
}

impl Tiles {
    fn new(length: usize, dilation: usize) -> Self {
        Self {
            length,
            dilation,
            per_sequence: length.div_ceil(TILE * dilation) * dilation,
        }
    }

    /// Position of point 0 of each of a sequence's tiles, in order.
    fn starts(&self) -> impl Iterator<Item = isize> + '_ {
        let d = self.dilation as isize;
        (0..self.per_sequence as isize).map(move |tile| {
            let (t, r) = (tile / d, tile % d);
            (t * TILE as isize - 1) * d + r
        })
    }

    /// Position of point `j` of the tile that starts at `start`, if inside the
    /// sequence.
    fn point(&self, start: isize, j: usize) -> Option<usize> {
        let p = start + (j * self.dilation) as isize;
        (0..self.length as isize).contains(&p).then_some(p as usize)
    }
}

/// `out = Σ_j coefficients[j] · rows[j]`, every value written: [`add`] to
/// nothing, term for term.
fn set(out: &mut [MaybeUninit<f32>], rows: &[&[f32]], coefficients: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        return unsafe { set_avx2(out, rows, coefficients) };
    }
    set_lanes(out, rows, coefficients);
}

/// `out += Σ_j coefficients[j] · rows[j]`.
fn add(out: &mut [f32], rows: &[&[f32]], coefficients: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        return unsafe { add_avx2(out, rows, coefficients) };
    }
    add_lanes(out, rows, coefficients);
}

// [`set`] and [`add`] eight lanes at a time where the CPU has AVX2 (the
// crate is built for any x86-64, four lanes): the same sums, term for term.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn set_avx2(out: &mut [MaybeUninit<f32>], rows: &[&[f32]], coefficients: &[f32]) {
    set_lanes(out, rows, coefficients);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn add_avx2(out: &mut [f32], rows: &[&[f32]], coefficients: &[f32]) {
    add_lanes(out, rows, coefficients);
}

#[inline(always)]
fn set_lanes(out: &mut [MaybeUninit<f32>], rows: &[&[f32]], coefficients: &[f32]) {
    let first = coefficients.iter().position(|&c| c != 0.0);
    match first {
        Some(j) => {
            for (o, v) in out.iter_mut().zip(rows[j]) {
                o.write(coefficients[j] * v);
            }
        }
        None => out.fill(MaybeUninit::new(0.0)),
    }
    // SAFETY: every value of `out` was written just now.
    let out = unsafe { assume_init(out) };
    if let Some(j) = first {
        add_lanes(out, &rows[j + 1..], &coefficients[j + 1..]);
    }
}

#[inline(always)]
fn add_lanes(out: &mut [f32], rows: &[&[f32]], coefficients: &[f32]) {
    for (row, &c) in rows.iter().zip(coefficients) {
        if c != 0.0 {
            for (o, v) in out.iter_mut().zip(*row) {
                *o += c * v;
            }
        }
    }
}

/// `values` as the values they hold.
///
/// # Safety
/// Every one of them must have been written.
unsafe fn assume_init(values: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    // SAFETY: `MaybeUninit<f32>` has `f32`'s layout; the values are written.
    unsafe { &mut *(std::ptr::from_mut(values) as *mut [f32]) }
}

/// [`gather`] from a tensor `[batch, length, channels]` to `[POINTS, rows,
/// channels]`, held `[rows, POINTS, channels]`: flex's products take strided
/// rows.
fn to_points<const J: usize>(
    x: Tensor<3>,
    tiles: &Tiles,
    first: usize,
    matrix: &[[f32; J]; POINTS],
) -> Tensor<3> {
    let [batch, _, channels] = x.dims();
    let device = x.device();
    let points = gather(slice(&contiguous(x)), channels, tiles, first, matrix);
    let shape = [batch * tiles.per_sequence, POINTS, channels];
    Tensor::<3>::from_data(TensorData::new(points, shape), &device).swap_dims(0, 1)
}

/// [`scatter`] from a tensor `[POINTS, rows, channels]` to `[batch, length,
/// channels]`.
fn from_points<const J: usize>(
    planes: Tensor<3>,
    batch: usize,
    tiles: &Tiles,
    first: usize,
    matrix: &[[f32; POINTS]; J],
) -> Tensor<3> {
    let [_, _, channels] = planes.dims();
    let device = planes.device();
    let y = scatter(
        slice(&contiguous(planes)),
        channels,
        batch,
        tiles,
        first,
        matrix,
    );
    Tensor::from_data(TensorData::new(y, [batch, tiles.length, channels]), &device)
}

/// Into the tiles: `[rows, K, channels]` from `x` `[batch, length,
/// channels]`, each tile's `k`-th row `Σ_j matrix[k][j] · x[point first + j]`,
/// zeros outside the sequence. `Bᵀ` of the inputs from point 0, `A` of the
/// output gradients from point 1.
fn gather<const J: usize, const K: usize>(
    x: &[f32],
    channels: usize,
    tiles: &Tiles,
    first: usize,
    matrix: &[[f32; J]; K],
) -> Vec<f32> {
    let batch = x.len() / (tiles.length * channels);
    let zeros = vec![0.0; channels];
    let len = batch * tiles.per_sequence * K * channels;
    let fill = |b: usize, v: &mut [MaybeUninit<f32>]| {
        let sequence = &x[b * tiles.length * channels..][..tiles.length * channels];
        for (start, tile) in tiles.starts().zip(v.chunks_exact_mut(K * channels)) {
            let points: [&[f32]; J] =
                std::array::from_fn(|j| match tiles.point(start, first + j) {
                    Some(p) => &sequence[p * channels..][..channels],
                    None => &zeros,
                });
            for (out, coefficients) in tile.chunks_exact_mut(channels).zip(matrix) {
                set(out, &points, coefficients);
            }
        }
    };
    // SAFETY: a sequence's chunk is its tiles' `K` rows, each set whole.
    unsafe { written(len, tiles.per_sequence * K * channels, fill) }
}

/// Out of the tiles: `[batch, length, channels]` from planes `[K, rows,
/// channels]`, adding `Σ_k matrix[j][k] · plane k` at each tile's point
/// `first + j` inside the sequence. `Aᵀ` of the products to the outputs at
/// points 1–4 (one tile each), `B` of the transformed inputs' gradients to
/// the inputs' at points 0–5 (neighbouring tiles share two).
fn scatter<const J: usize, const K: usize>(
    planes: &[f32],
    channels: usize,
    batch: usize,
    tiles: &Tiles,
    first: usize,
    matrix: &[[f32; K]; J],
) -> Vec<f32> {
    let plane = batch * tiles.per_sequence * channels;
    // `Aᵀ` puts each output at one tile's point `1 + j`; `B`'s points overlap.
    let once = J == TILE && first == 1;
    let fill = |b: usize, y: &mut [MaybeUninit<f32>]| {
        if !once {
            y.fill(MaybeUninit::new(0.0));
        }
        for (tile, start) in tiles.starts().enumerate() {
            let row = (b * tiles.per_sequence + tile) * channels;
            let points: [&[f32]; K] =
                std::array::from_fn(|k| &planes[k * plane + row..][..channels]);
            for (j, coefficients) in matrix.iter().enumerate() {
                if let Some(p) = tiles.point(start, first + j) {
                    let out = &mut y[p * channels..][..channels];
                    if once {
                        set(out, &points, coefficients);
                    } else {
                        // SAFETY: zeroed above.
                        add(unsafe { assume_init(out) }, &points, coefficients);
                    }
                }
            }
        }
    };
    // SAFETY: every position is set once, or zeroed first.
    unsafe {
        written(
            batch * tiles.length * channels,
            tiles.length * channels,
            fill,
        )
    }
}

/// The convolution as an operation of burn's autodiff graph on flex: the
/// forward keeps its transformed inputs and taps, the backward is
/// [`Winograd::backward`].
#[cfg(any(not(target_family = "wasm"), feature = "train"))]
mod training {
    use super::Winograd;
    use crate::kernels::flex_values::product;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::{
        BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
    };
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::{
        Autodiff, DispatchKindConversion, DispatchTensor, Flex, GradientCheckpointingStrategy,
    };
    use burn::prelude::*;

    use burn::backend::flex::FlexTensor;

    use super::{INPUT, OUTPUT, POINTS, TILE, from_points, taps_matrix, to_points, transformed};

    /// `Aᵀ` transposed: a tile's four output gradients to its six products'.
    const OUTPUT_T: [[f32; TILE]; POINTS] = transpose(OUTPUT);
    /// `B`: a tile's transformed-input gradients to its inputs'.
    const INPUT_T: [[f32; POINTS]; POINTS] = transpose(INPUT);

    const fn transpose<const R: usize, const C: usize>(m: [[f32; C]; R]) -> [[f32; R]; C] {
        let mut t = [[0.0; R]; C];
        let mut i = 0;
        while i < R {
            let mut j = 0;
            while j < C {
                t[j][i] = m[i][j];
                j += 1;
            }
            i += 1;
        }
        t
    }

    impl Winograd {
        /// The gradients of `x` and `w` from `y`'s (each if asked for), each
        /// half the products of the tap sum's, by the same transforms
        /// transposed: the products' gradient is `A dy`, the transformed
        /// inputs' `(A dy) (G w)ᵀ`, the transformed taps' `(Bᵀ x)ᵀ (A dy)`;
        /// `x`'s is `B` of its transformed inputs', added where tiles
        /// overlap, `w`'s `Gᵀ` of its transformed taps'.
        fn backward(
            self,
            dy: Tensor<3>,
            [x, w]: [bool; 2],
        ) -> (Option<Tensor<3>>, Option<Tensor<3>>) {
            let Self {
                inputs,
                taps,
                kernel,
                batch,
                tiles,
            } = self;
            let [_, _, channels_in] = inputs.dims();
            let [_, _, channels_out] = taps.dims();
            let groups = kernel.div_ceil(3);
            let device = dy.device();

            let d_products = to_points(dy, &tiles, 1, &OUTPUT_T);
            let dx = x.then(|| {
                let d_inputs = product(d_products.clone(), taps.swap_dims(1, 2));
                from_points(d_inputs, batch, &tiles, 0, &INPUT_T)
            });
            let dw = w.then(|| {
                // [POINTS, in, groups · out] → [in, POINTS · groups, out]
                let d_taps = product(inputs.swap_dims(1, 2), d_products)
                    .swap_dims(0, 1)
                    .reshape([channels_in, POINTS * groups, channels_out / groups]);
                taps_matrix(kernel, &device)
                    .transpose()
                    .unsqueeze::<3>()
                    .matmul(d_taps)
                    .swap_dims(0, 1)
            });
            (dx, dw)
        }
    }

    #[derive(Debug)]
    struct Conv3;

    impl Backward<Flex, 2> for Conv3 {
        type State = Winograd;

        fn backward(self, ops: Ops<Winograd, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
            let [node_x, node_weight] = ops.parents;
            let dy = Tensor::<3>::from_primitive::<Flex>(grads.consume::<Flex>(&ops.node));
            let wanted = [node_x.is_some(), node_weight.is_some()];
            let (dx, dw) = ops.state.backward(dy, wanted);
            for (node, grad) in [(node_x, dx), (node_weight, dw)] {
                if let (Some(node), Some(grad)) = (node, grad) {
                    grads.register::<Flex>(node.id, flex(grad));
                }
            }
        }
    }

    fn flex(x: Tensor<3>) -> FlexTensor {
        x.try_into_primitive::<Flex>()
            .expect("Winograd's tensors live on flex")
    }

    pub(super) fn conv3(x: Tensor<3>, weight: Tensor<3>, dilation: usize) -> Tensor<3> {
        match x.device().gradient_checkpointing_strategy() {
            Some(GradientCheckpointingStrategy::Balanced) => {
                tracked::<BalancedCheckpointing>(x, weight, dilation)
            }
            _ => tracked::<NoCheckpointing>(x, weight, dilation),
        }
    }

    fn tracked<C: CheckpointStrategy>(x: Tensor<3>, weight: Tensor<3>, dilation: usize) -> Tensor<3>
    where
        DispatchTensor: DispatchKindConversion<Autodiff<Flex, C>>,
    {
        let [x, weight] = [x, weight].map(|t| {
            t.try_into_primitive::<Autodiff<Flex, C>>()
                .expect("an autodiff tensor on flex")
        });
        let inner = Tensor::<3>::from_primitive::<Flex>(weight.primitive().clone());
        let width = inner.dims()[0];
        let (y, state) = Winograd::forward(
            Tensor::from_primitive::<Flex>(x.primitive().clone()),
            transformed(inner),
            width,
            dilation,
        );
        let y = match Conv3
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(state, flex(y)),
            OpsKind::UnTracked(prep) => prep.finish(flex(y)),
        };
        Tensor::from_primitive::<Autodiff<Flex, C>>(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition: `y[l] = Σ_t w[t] · x[l + (t − 1) · dilation]`.
    fn direct(x: &Tensor<3>, w: &Tensor<3>, dilation: usize) -> Vec<f32> {
        let [batch, length, cin] = x.dims();
        let [_, _, cout] = w.dims();
        let x = x.to_data().try_to_vec::<f32>().unwrap();
        let w = w.to_data().try_to_vec::<f32>().unwrap();
        let mut y = vec![0.0f32; batch * length * cout];
        for b in 0..batch {
            for l in 0..length {
                for t in 0..3 {
                    let p = l as isize + (t as isize - 1) * dilation as isize;
                    if !(0..length as isize).contains(&p) {
                        continue;
                    }
                    for c in 0..cin {
                        let v = x[(b * length + p as usize) * cin + c];
                        for o in 0..cout {
                            y[(b * length + l) * cout + o] += v * w[(t * cin + c) * cout + o];
                        }
                    }
                }
            }
        }
        y
    }

    #[test]
    fn matches_the_definition_at_every_dilation_and_length() {
        let device = Device::flex();
        let normal = burn::tensor::Distribution::Normal(0.0, 1.0);
        // Lengths that fill the last tile, leave it partly empty, and are
        // shorter than one tile; dilation 8 on 5 positions sees only its centre.
        for (dilation, length) in [(1, 12), (1, 13), (2, 13), (3, 5), (8, 111), (8, 5), (4, 1)] {
            let x = Tensor::<3>::random([2, length, 6], normal, &device);
            let w = Tensor::<3>::random([3, 6, 5], normal, &device);
            let want = direct(&x, &w, dilation);
            let kernel = Kernel::new(w.clone().permute([2, 1, 0]), None, dilation);
            let got = conv3(x, &kernel).into_data().try_to_vec::<f32>().unwrap();
            assert_eq!(got.len(), want.len());
            let diff = crate::metrics::max_abs_diff(&got, &want);
            // Sums of 18 products of unit normals; f32 rounding through the
            // transforms stays near 1e-6, a misplaced tap is off by ~1.
            assert!(diff < 1e-4, "dilation {dilation}, length {length}: {diff}");
        }
    }

    #[test]
    fn spreads_a_kernel_into_groups_of_three() {
        // (kernel, dilation) → (groups, the farthest group centre's distance)
        for (kernel, dilation, want) in [
            (3, 1, (1, 0)),
            (5, 1, (2, 2)),
            (7, 1, (3, 4)),
            (9, 2, (3, 6)),
            (19, 1, (7, 10)),
        ] {
            assert_eq!(spread(kernel, dilation), want, "kernel {kernel}");
        }
    }
}
