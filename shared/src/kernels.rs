//! The operations the blocks are made of, written for speed on flex, wgpu and
//! wasm: the convolution and its paths, dense layers, batch and layer norms,
//! dropout, the stem's exp and the attention pool's softmax.

pub mod activation;
pub mod conv;
pub mod dense;
pub mod dropout;
pub mod flex_values;
pub mod memo;
pub mod norm;
