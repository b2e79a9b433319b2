//! The parts of the `promoscope` command line, as a library for its
//! benchmarks (`benches/`) and tests.

pub mod bench;
pub mod data;
pub mod evaluate;
pub mod io;
pub mod plot;
pub mod predict;
pub mod simulate;
pub mod train;
