//! `promoscope predict`.

use std::path::PathBuf;

use anyhow::Result;
use promoscope::predict::{self, PredictOptions, Quantiles};

use super::WeightsArgs;

/// Predict expression for every sequence of a file (FASTA, TSV/CSV, DREAM or plain lines).
///
/// Example: promoscope predict --weights runs/demo/best.safetensors seqs.fa --out predictions.csv
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: WeightsArgs,
    /// Sequences; `-` for stdin, `.gz` ok.
    input: PathBuf,
    /// Output CSV (`id,prediction`); `-` for stdout.
    #[arg(long, default_value = "-")]
    out: PathBuf,
    /// Also report the mean of the forward and reverse-complement predictions.
    #[arg(long)]
    rc_average: bool,
    /// Skip (and count) sequences with invalid bases or too long, instead of stopping.
    #[arg(long)]
    skip_bad: bool,
    /// Also report each prediction's quantile (0 to 1) among the values of this
    /// file (last field of each line: DREAM lines, predict output, or numbers),
    /// mapping predictions to the uniform distribution as the seed did.
    #[arg(long, value_name = "REF")]
    quantile_normalize: Option<PathBuf>,
    /// Put sequences that lack the model's constant flanks (its metadata's
    /// `flank_5`/`flank_3`, else the DREAM plasmid's) inside them, e.g. 80-bp
    /// variable regions; without it they are scored as they are, with a warning.
    #[arg(long)]
    add_flanks: bool,
    /// Sequences per forward pass.
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
}

pub fn run(args: Args) -> Result<()> {
    let scorer = args.model.load()?;
    eprintln!("backend: {}", scorer.selected);
    let options = PredictOptions {
        batch_size: args.batch_size.max(1),
        rc_average: args.rc_average,
        skip_bad: args.skip_bad,
        quantiles: args
            .quantile_normalize
            .as_deref()
            .map(Quantiles::read)
            .transpose()?,
        add_flanks: args.add_flanks,
    };
    let report = predict::predict(&scorer, &args.input, &args.out, &options)?;
    eprintln!(
        "scored {} sequences, skipped {}",
        report.scored, report.skipped
    );
    if report.flanks_added > 0 {
        eprintln!(
            "{} sequences were put inside the model's flanks",
            report.flanks_added
        );
    }
    if let Some(line) = report.first_missing_line {
        eprintln!(
            "warning: {} sequences lack the model's flanks (the first at {}:{line}); the model \
             read them without the plasmid around the variable region. `--add-flanks` adds them",
            report.flanks_missing,
            args.input.display()
        );
    }
    Ok(())
}
