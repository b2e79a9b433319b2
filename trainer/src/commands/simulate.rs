//! `promoscope simulate`.

use std::path::PathBuf;

use anyhow::Result;
use promoscope::simulate;

/// Simulated DREAM-format data from a known motif-based ground truth, and a
/// second file with the noise-free expression of the same sequences.
///
/// Example: promoscope simulate --n 6700000 --seed 1 --out sim.txt.gz
#[derive(clap::Args)]
pub struct Args {
    /// Sequences.
    #[arg(long)]
    n: usize,
    /// Seed: the same seed gives the same files.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output: DREAM lines `SEQUENCE<TAB>MEASURED`; `.gz` compresses.
    #[arg(long)]
    out: PathBuf,
    /// Noise-free expression of the same sequences [default: OUT with `.truth`
    /// before its extension].
    #[arg(long)]
    truth: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let truth = args
        .truth
        .unwrap_or_else(|| simulate::truth_path(&args.out));
    let start = std::time::Instant::now();
    simulate::write(args.n, args.seed, &args.out, &truth)?;
    eprintln!(
        "wrote {} sequences to {} and their noise-free expression to {} in {:.1} s",
        args.n,
        args.out.display(),
        truth.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
