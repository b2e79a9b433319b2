//! The paper's network, one module per block of its figure: the stem,
//! convolution blocks (a residual stack of dilated convolutions, then an
//! attention pool), the transformer with relative positions, and the head;
//! [`model`] puts them together.

pub mod attention_pool;
pub mod conv_block;
pub mod head;
pub mod model;
pub mod relative_position;
pub mod residual;
pub mod stem;
pub mod transformer;
