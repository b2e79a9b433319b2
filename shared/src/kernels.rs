//! The operations the blocks are made of, written for speed on flex, wgpu and
//! wasm: the convolution and its paths, dense layers, batch and layer norms,
//! dropout.

pub mod conv;
pub mod dense;
pub mod dropout;
pub mod norm;
