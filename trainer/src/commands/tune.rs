//! `promoscope tune`.

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use promoscope::{data, io};
use promoscope_model::encoding::one_hot;
use promoscope_model::measurements::{MeasurementTable, VALUE_COLUMN};
use promoscope_model::tune::{self, FullInput, FullRun, QuickInput, Report, Scores, Tuned};
use promoscope_model::weights;

use super::{WeightsArgs, out};

/// Fine-tune a model on your own measurements, as the page's Train tab: quick
/// mode re-fits each network's output layer by ridge regression on its last
/// hidden layer, everything else as trained; `--full` trains every weight of
/// each network further by the small-data recipe. The report scores the
/// starting model, the tuned one and a k-mer ridge fitted to the same
/// training rows on the held-out rows.
///
/// Example: promoscope tune --weights www/demo.safetensors --data my_library.tsv --value-column yfp --out tuned.safetensors
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: WeightsArgs,
    /// Measured sequences: DREAM lines, or a TSV/CSV whose header names
    /// `sequence` and the value column (plain or .gz).
    #[arg(long)]
    data: PathBuf,
    /// The header's column of values.
    #[arg(long, default_value = VALUE_COLUMN)]
    value_column: String,
    /// Held-out share, percent, by the rule of `train --holdout` (the page's too).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..100))]
    holdout: u32,
    /// The fine-tuned model's `.safetensors`.
    #[arg(long)]
    out: PathBuf,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Sequences per forward pass (quick mode).
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// Full mode: every weight trained further by the small-data recipe
    /// (the page's full mode; `train --recipe small-data --init` with files
    /// and validation around the same loop).
    #[arg(long)]
    full: bool,
    /// Full mode's seed of shuffling and dropout (the page's is 1).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub fn run(args: Args) -> Result<()> {
    let scorer = args.model.load()?;
    let bytes = std::fs::read(&args.model.weights)
        .with_context(|| format!("cannot read {}", args.model.weights.display()))?;
    let mut text = String::new();
    data::open(&args.data)?
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read {}", args.data.display()))?;
    let seq_len = scorer.info.config.seq_len;
    let table = MeasurementTable::parse(&text, &args.value_column, seq_len)
        .with_context(|| format!("{}:1", args.data.display()))?;
    for problem in &table.problems {
        let (line, problem) = (problem.line, &problem.problem);
        eprintln!("{}:{line}: {problem} (left out)", args.data.display());
    }
    let source = args.data.file_name().unwrap_or_default().to_string_lossy();
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let tuned = if args.full {
        full(
            &args,
            &bytes,
            &scorer.selected.device,
            &table,
            (&source, &date),
        )?
    } else {
        quick(&args, &bytes, &scorer, &table, (&source, &date))?
    };
    io::write_atomic(&args.out, &tuned.bytes)?;
    if args.json {
        out(format_args!(
            "{}\n",
            serde_json::to_string_pretty(&tuned.report)?
        ))?;
    } else {
        out(summary(&tuned.report))?;
    }
    eprintln!("wrote {}", args.out.display());
    Ok(())
}

/// Quick mode: every row's hidden layers, then [`tune::quick`].
fn quick(
    args: &Args,
    bytes: &[u8],
    scorer: &promoscope::predict::Scorer,
    table: &MeasurementTable,
    (source, date): (&str, &str),
) -> Result<Tuned> {
    let seq_len = scorer.info.config.seq_len;
    let mut hidden = Vec::new();
    for chunk in table.sequences.chunks(args.batch_size.max(1)) {
        let x = Tensor::<3>::from_data(one_hot(chunk, seq_len)?, &scorer.selected.device);
        let rows = scorer
            .ensemble
            .each(|m| Ok::<_, anyhow::Error>(m.hidden_and_output(x.clone())))?;
        hidden.extend(rows.into_data().try_into_vec_as::<f32>()?);
    }
    Ok(tune::quick(QuickInput {
        bytes,
        hidden: &hidden,
        table,
        holdout: args.holdout,
        source,
        date,
    })?)
}

/// Full mode: each network through [`FullRun`] (on `device`, with
/// autodiff) to its end, a bar over the steps, then [`tune::full`].
fn full(
    args: &Args,
    bytes: &[u8],
    device: &Device,
    table: &MeasurementTable,
    (source, date): (&str, &str),
) -> Result<Tuned> {
    let members = weights::read_info(bytes)?.members;
    let autodiff = device.clone().autodiff();
    let mut tuned = Vec::with_capacity(members);
    for member in 0..members {
        let mut run = FullRun::new(bytes, member, table, args.holdout, args.seed, &autodiff)?;
        let bar = ProgressBar::new(run.total_steps() as u64).with_style(
            ProgressStyle::with_template(&format!(
                "network {}/{members} [{{bar:30}}] {{pos}}/{{len}} steps  loss {{msg}}  eta {{eta}}",
                member + 1
            ))?
            .progress_chars("=> "),
        );
        while !run.run().is_done() {
            let losses = run.steps(1);
            bar.inc(losses.len() as u64);
            bar.set_message(format!("{:.4}", losses.last().copied().unwrap_or(f32::NAN)));
        }
        bar.finish_and_clear();
        tuned.push(run.finish()?);
    }
    Ok(tune::full(FullInput {
        bytes,
        members: &tuned,
        table,
        holdout: args.holdout,
        source,
        date,
    })?)
}

/// The report as a table.
fn summary(report: &Report) -> String {
    let row =
        |name: &str, s: &Scores| format!("{name:<24} {:>8.4} {:>9.4}\n", s.pearson, s.spearman);
    format!(
        "{} training rows, {} held out ({}% rule)\n{:<24} {:>8} {:>9}\n{}{}{}",
        report.training_rows,
        report.held_out_rows,
        report.holdout,
        "held out",
        "pearson",
        "spearman",
        row("start", &report.start),
        row(&format!("fine-tuned ({})", report.mode), &report.tuned),
        row(
            &format!("k-mer ridge (1-{})", report.ridge_k),
            &report.ridge
        ),
    )
}
