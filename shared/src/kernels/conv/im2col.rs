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
    let weight = weight.reshape([kernel * channels_in, channels_out]);
    rows_product(columns, weight).reshape([batch, length, channels_out])
}
