//! `promoscope evaluate`.

use std::path::PathBuf;

use anyhow::Result;
use promoscope::{data, evaluate};
use promoscope_model::kernels::conv::set_half_products;

use super::{WeightsArgs, out};

/// Pearson, Spearman and MSE of trained weights, overall and per subset; the DREAM 2022 scores with --pairs.
///
/// Example: promoscope evaluate --weights runs/demo/best.safetensors --data test.tsv --pairs pairs.tsv
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: WeightsArgs,
    /// Measured sequences: DREAM lines, or a TSV/CSV with `sequence,expression[,subset]`
    /// (subsets high, low, yeast, random, challenging for the DREAM score).
    #[arg(long)]
    data: PathBuf,
    /// Pairs: `alt_sequence, ref_sequence, alt_expression, ref_expression, subset`
    /// (subsets snv, motif_perturbation, motif_tiling).
    #[arg(long)]
    pairs: Option<PathBuf>,
    /// Score only the sequences `train --holdout PERCENT` validates on.
    #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u32).range(1..100))]
    holdout: Option<u32>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Sequences per forward pass.
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// Convolutions multiply in f16 (as `bench --mixed-precision`): what the
    /// fast GPU path costs in accuracy, measured on the same weights.
    #[arg(long)]
    mixed_precision: bool,
}

pub fn run(args: Args) -> Result<()> {
    let scorer = args.model.load()?;
    set_half_products(args.mixed_precision);
    let products = if args.mixed_precision { "f16" } else { "f32" };
    eprintln!(
        "backend: {}, convolution products in {products}",
        scorer.selected
    );
    let seq_len = scorer.info.config.seq_len;
    let (data, report) = data::read(&args.data, seq_len, false)?;
    if report.too_long > 0 {
        eprintln!(
            "{} sequences longer than {seq_len} left out",
            report.too_long
        );
    }
    let data = match args.holdout {
        Some(percent) => {
            let (_, held_out) = data.split_holdout(percent);
            eprintln!(
                "{} sequences held out by --holdout {percent}",
                held_out.len()
            );
            held_out
        }
        None => data,
    };
    let pairs = args
        .pairs
        .as_deref()
        .map(|p| data::read_pairs(p, seq_len))
        .transpose()?;
    let evaluation = evaluate::evaluate(&scorer, &data, pairs.as_ref(), args.batch_size.max(1))?;
    if args.json {
        out(format_args!(
            "{}\n",
            serde_json::to_string_pretty(&evaluation)?
        ))?;
    } else {
        out(evaluate::table(&evaluation))?;
    }
    Ok(())
}
