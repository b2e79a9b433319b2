//! The parts of the `promoscope` command line, as a library for its
//! benchmarks (`benches/`) and tests.

pub mod bench;
pub mod data;
pub mod evaluate;
pub mod history;
pub mod io;
pub mod plot;
pub mod predict;
pub mod simulate;
pub mod train;

/// Makes the C allocator keep freed memory for reuse; call first thing.
///
/// flex allocates every activation afresh. glibc serves blocks over its mmap
/// threshold (at most 32 MB; one block-1 activation at batch 256 is 44 MB)
/// straight from the kernel and gives them back on free, so every operation
/// page-faults its whole output in again: elementwise passes ran 6× and
/// matrix products 1.4× slower (docs/BENCHMARKS.md). With both thresholds
/// raised, freed blocks stay in the heap and the next activation reuses them.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any
    // thread is spawned.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}
