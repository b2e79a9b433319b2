//! Kernel-3 convolutions by Winograd's minimal filtering F(4, 3), for inference
//! on the CPU: half the multiplications of the tap sum.
//!
//! Each sequence is cut into tiles of four outputs. A tile's six inputs go
//! through a fixed linear transform (`Bᵀ`), the kernel's three taps through
//! another (`G`); six products, one per transformed input, replace the three
//! taps × four outputs; a third transform (`Aᵀ`) turns the six products into
//! the four outputs (Lavin & Gray, "Fast Algorithms for Convolutional Neural
//! Networks", 2016). A dilated convolution is the same on each of its
//! `dilation` interleaved subsequences.
//!
//! flex multiplies at its matrix products' speed either way, so the products'
//! count is what sets the time; but each burn operation is a pass over memory,
//! and the transforms written as burn operations (some fifty passes, one a
//! term) cost more than the products they save (docs/BENCHMARKS.md). The
//! transforms are loops here, one pass each way, over the values as flex holds
//! them.

use burn::prelude::*;

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

/// Whether [`conv3`] takes a convolution: kernel 3 in f32 on flex without
/// autodiff (inference), where its loops can read the values.
pub(crate) fn applies(x: &Tensor<3>, kernel: usize) -> bool {
    let device = x.device();
    kernel == 3
        && x.shape().num_elements() > 0
        && x.dtype() == burn::tensor::DType::F32
        && !device.is_autodiff()
        && device.inner() == Device::flex()
}

/// A 'same' kernel-3 convolution without bias.
///
/// # Shapes
/// - x: `[batch, length, in]`, weight: `[3, in, out]` (taps first)
/// - output: `[batch, length, out]`
pub(crate) fn conv3(x: Tensor<3>, weight: Tensor<3>, dilation: usize) -> Tensor<3> {
    let [batch, length, channels_in] = x.dims();
    let [_, _, channels_out] = weight.dims();
    let device = x.device();
    let tiles = Tiles {
        length,
        dilation,
        per_sequence: length.div_ceil(TILE * dilation) * dilation,
    };
    let rows = batch * tiles.per_sequence;

    let x = x.into_data();
    let inputs = transform_input(slice(&x), channels_in, &tiles);
    // Held `[rows, POINTS, in]`, multiplied as `[POINTS, rows, in]`: flex's
    // products take strided rows.
    let inputs = Tensor::<3>::from_data(
        TensorData::new(inputs, [rows, POINTS, channels_in]),
        &device,
    )
    .swap_dims(0, 1);
    let g = Tensor::<2>::from_data(TensorData::new(KERNEL.concat(), [POINTS, 3]), &device);
    let taps = g
        .matmul(weight.reshape([3, channels_in * channels_out]))
        .reshape([POINTS, channels_in, channels_out]);
    let products = inputs.matmul(taps).into_data(); // [POINTS, rows, out]
    let y = transform_output(slice(&products), channels_out, batch, &tiles);
    Tensor::from_data(TensorData::new(y, [batch, length, channels_out]), &device)
}

fn slice(data: &TensorData) -> &[f32] {
    data.as_slice().expect("f32 values")
}

/// How a sequence is cut into tiles: its `dilation` interleaved subsequences,
/// each in tiles of `TILE` outputs. Tile `t` of subsequence `r` is the
/// sequence's tile `t · dilation + r`; its point `j` (`0..POINTS`) lies at
/// position `(t · TILE + j − 1) · dilation + r`, and its output `i` at point
/// `i + 1`'s position.
struct Tiles {
    length: usize,
    dilation: usize,
    /// Tiles per sequence, enough to cover its length.
    per_sequence: usize,
}

impl Tiles {
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

/// `out = Σ_j coefficients[j] · rows[j]`.
fn combine(out: &mut [f32], rows: &[&[f32]], coefficients: &[f32]) {
    out.fill(0.0);
    for (row, &c) in rows.iter().zip(coefficients) {
        if c != 0.0 {
            for (o, v) in out.iter_mut().zip(*row) {
                *o += c * v;
            }
        }
    }
}

/// Runs `f(b, chunk)` on each `per_sequence`-long chunk of `out`: on every
/// core natively, one after the other in the browser.
fn each_sequence(out: &mut [f32], per_sequence: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    #[cfg(not(target_family = "wasm"))]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(per_sequence)
            .enumerate()
            .for_each(|(b, chunk)| f(b, chunk));
    }
    #[cfg(target_family = "wasm")]
    out.chunks_mut(per_sequence)
        .enumerate()
        .for_each(|(b, chunk)| f(b, chunk));
}

/// `Bᵀ` on every tile: `[rows, POINTS, channels]` from `x` `[batch, length,
/// channels]`, zeros outside the sequence.
fn transform_input(x: &[f32], channels: usize, tiles: &Tiles) -> Vec<f32> {
    let batch = x.len() / (tiles.length * channels);
    let zeros = vec![0.0; channels];
    let mut v = vec![0.0; batch * tiles.per_sequence * POINTS * channels];
    each_sequence(&mut v, tiles.per_sequence * POINTS * channels, |b, v| {
        let sequence = &x[b * tiles.length * channels..][..tiles.length * channels];
        for (start, tile) in tiles.starts().zip(v.chunks_exact_mut(POINTS * channels)) {
            let points: [&[f32]; POINTS] = std::array::from_fn(|j| match tiles.point(start, j) {
                Some(p) => &sequence[p * channels..][..channels],
                None => &zeros,
            });
            for (out, coefficients) in tile.chunks_exact_mut(channels).zip(&INPUT) {
                combine(out, &points, coefficients);
            }
        }
    });
    v
}

/// `Aᵀ` on every tile: `[batch, length, channels]` from the products
/// `[POINTS, rows, channels]`, dropping outputs past the sequence's end.
fn transform_output(products: &[f32], channels: usize, batch: usize, tiles: &Tiles) -> Vec<f32> {
    let plane = batch * tiles.per_sequence * channels;
    let mut y = vec![0.0; batch * tiles.length * channels];
    each_sequence(&mut y, tiles.length * channels, |b, y| {
        for (tile, start) in tiles.starts().enumerate() {
            let row = (b * tiles.per_sequence + tile) * channels;
            let points: [&[f32]; POINTS] =
                std::array::from_fn(|j| &products[j * plane + row..][..channels]);
            for (i, coefficients) in OUTPUT.iter().enumerate() {
                if let Some(p) = tiles.point(start, i + 1) {
                    combine(&mut y[p * channels..][..channels], &points, coefficients);
                }
            }
        }
    });
    y
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
            assert!(applies(&x, 3));
            let want = direct(&x, &w, dilation);
            let got = conv3(x, w, dilation)
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            assert_eq!(got.len(), want.len());
            let diff = crate::max_abs_diff(&got, &want);
            // Sums of 18 products of unit normals; f32 rounding through the
            // transforms stays near 1e-6, a misplaced tap is off by ~1.
            assert!(diff < 1e-4, "dilation {dilation}, length {length}: {diff}");
        }
    }

    #[test]
    fn leaves_autodiff_f16_empty_and_other_kernels_to_the_tap_sum() {
        let x = Tensor::<3>::zeros([1, 8, 2], &Device::flex());
        assert!(applies(&x, 3) && !applies(&x, 5));
        assert!(!applies(&x.clone().cast(burn::tensor::FloatDType::F16), 3));
        assert!(!applies(&Tensor::<3>::zeros([1, 0, 2], &Device::flex()), 3));
        let x = Tensor::<3>::zeros([1, 8, 2], &Device::flex().autodiff());
        assert!(!applies(&x, 3));
    }
}
