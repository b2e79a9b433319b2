//! `promoscope ism`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use promoscope::data::SequenceReader;
use promoscope::{io, plot, predict};

use super::{WeightsArgs, out};

/// Score every single-base substitution of a sequence (in-silico mutagenesis) into a TSV table.
///
/// Example: promoscope ism --weights runs/demo/best.safetensors --sequence TGCATTTTTTTCACATC...
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: WeightsArgs,
    /// One sequence.
    #[arg(long, conflicts_with = "fasta", required_unless_present = "fasta")]
    sequence: Option<String>,
    /// Sequences (FASTA or any format `predict` reads): one table each.
    #[arg(long)]
    fasta: Option<PathBuf>,
    /// Output: a TSV file for `--sequence` (`-` for stdout), a folder for `--fasta`.
    /// Beside each table file, a PNG heat map of the same name.
    #[arg(long, default_value = "-")]
    out: PathBuf,
    /// Heat map PNG for `--sequence` (default: the `--out` file with `.png`).
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Sequences per forward pass.
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
}

pub fn run(args: Args) -> Result<()> {
    let scorer = args.model.load()?;
    eprintln!("backend: {}", scorer.selected);
    if let Some(sequence) = &args.sequence {
        let (reference, table) = predict::ism_scores(&scorer, sequence, args.batch_size)?;
        let tsv = predict::ism_tsv(reference, &table, scorer.has_spread());
        let to_stdout = args.out.as_os_str() == "-";
        if to_stdout {
            out(tsv)?;
        } else {
            io::write_atomic(&args.out, tsv.as_bytes())?;
        }
        let plot = args
            .plot
            .clone()
            .or_else(|| (!to_stdout).then(|| args.out.with_extension("png")));
        if let Some(plot) = plot {
            plot::ism_heat_map(sequence.len(), reference.mean, &table, &plot)?;
            eprintln!("heat map: {}", plot.display());
        }
        return Ok(());
    }
    let fasta = args
        .fasta
        .as_ref()
        .expect("clap requires --sequence or --fasta");
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    for record in SequenceReader::open(fasta)? {
        let record = record?;
        let (reference, table) = predict::ism_scores(&scorer, &record.sequence, args.batch_size)
            .with_context(|| format!("{}: sequence {}", fasta.display(), record.id))?;
        let path = predict::ism_path(&args.out, &record.id);
        io::write_atomic(
            &path,
            predict::ism_tsv(reference, &table, scorer.has_spread()).as_bytes(),
        )?;
        plot::ism_heat_map(
            record.sequence.len(),
            reference.mean,
            &table,
            &path.with_extension("png"),
        )?;
        eprintln!("{}: {}", record.id, path.display());
    }
    Ok(())
}
