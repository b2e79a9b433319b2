//! [`super::ConvPath::Im2col`]: the padded input copied once per tap into
//! columns, one product.

use burn::prelude::*;

use super::pad_length;
use crate::kernels::dense::rows_product;

/// One product of the columns (every position's `kernel × in` inputs) with the
/// kernel, `batch × length` rows deep.
///
/// # Shapes
/// - x: `[batch, length, in]`, weight: `[kernel, in, out]`
/// - output: `[batch, length, out]`
pub(super) fn im2col(x: Tensor<3>, weight: Tensor<3>, dilation: usize) -> Tensor<3> {
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
    rows_product(columns, taps_first(weight)).reshape([batch, length, channels_out])
}

/// The kernel `[kernel, in, out]` (a view of the module's `[out, in,
/// kernel]`) as the columns' matrix `[kernel · in, out]`, in two copies that
/// flex makes at memory speed: the module's weight transposed as one matrix
/// `[out, in · kernel]`, then its rows regrouped tap by tap. A reshape of the
/// view reversed all three axes in one copy, which flex walks value by value:
/// two thirds of block 3 at batch 8.
fn taps_first(weight: Tensor<3>) -> Tensor<2> {
    let [kernel, channels_in, channels_out] = weight.dims();
    weight
        .permute([2, 1, 0])
        .reshape([channels_out, channels_in * kernel])
        .transpose()
        .reshape([channels_in, kernel, channels_out])
        .swap_dims(0, 1)
        .reshape([kernel * channels_in, channels_out])
}
