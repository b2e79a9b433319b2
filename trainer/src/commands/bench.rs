//! `promoscope bench`.

use std::path::PathBuf;

use anyhow::Result;
use promoscope::{bench, io};
use promoscope_model::Backend;
use promoscope_model::device::select_device;
use promoscope_model::kernels::conv::set_half_products;
use promoscope_model::training;

use super::{DeviceArgs, ModelArgs, out};

/// Sequences per second of inference and training steps, and the time of one ISM, as a table.
///
/// Example: promoscope bench --backend flex --infer-batch 256 --train-batch 64
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    device: DeviceArgs,
    /// Inference batch sizes (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "256")]
    infer_batch: Vec<usize>,
    /// Training-step batch sizes (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "64")]
    train_batch: Vec<usize>,
    /// Timed repetitions per figure (the median is reported).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Also append the table to this Markdown file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write the figures as JSON (for `scripts/bench_table.py`).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also time reading this training file once (parse + encode, `.gz` ok).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Also time each stage (stem, blocks, transformer, head) alone: inference
    /// at the first inference batch, forward + backward at the first training batch.
    #[arg(long)]
    stages: bool,
    /// Mixed precision: convolutions multiply in f16 (as `train --mixed-precision`).
    #[arg(long)]
    mixed_precision: bool,
    /// Also run the golden file's input through its weights and report the
    /// output's largest difference from the golden output; on a GPU backend
    /// also the convolutions' outputs and gradients against flex's.
    #[arg(long)]
    golden: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let selected = select_device(args.device.backend)?;
    set_half_products(args.mixed_precision);
    let settings = bench::BenchSettings {
        model: args.model.config.config,
        infer_batches: args.infer_batch,
        train_batches: args.train_batch,
        repeats: args.repeats,
        data: args.data,
        stages: args.stages,
        loss_scale: training::loss_scale(args.mixed_precision),
    };
    let golden = match &args.golden {
        Some(path) => Some(bench::golden_max_diff(path, &selected.device)?),
        None => None,
    };
    // The backward pass's convolutions against flex's, where the backend is not flex.
    let conv_check = (args.golden.is_some() && selected.backend != Backend::Flex)
        .then(|| bench::conv_gradient_diff(&selected.device));
    let figures = bench::run(&settings, &selected)?;
    let mut table = bench::table(&figures, &selected);
    if let Some(diff) = golden {
        table.push_str(&format!(
            "\ngolden output, largest |difference|: {diff:.2e}\n"
        ));
    }
    if let Some([y, dx, dw]) = conv_check {
        table.push_str(&format!(
            "convolutions against flex's (largest difference ÷ largest value): \
             output {y:.2e}, input gradient {dx:.2e}, weight gradient {dw:.2e}\n"
        ));
    }
    out(&table)?;
    if let Some(path) = &args.out {
        let mut text = std::fs::read_to_string(path).unwrap_or_default();
        text.push_str(&table);
        io::write_atomic(path, text.as_bytes())?;
    }
    if let Some(path) = &args.json {
        let mut json = bench::json(&figures, &selected);
        json["mixed_precision"] = args.mixed_precision.into();
        json["golden_max_diff"] = golden.map(f64::from).into();
        json["conv_check"] = conv_check.map(|d| d.to_vec()).into();
        let json = serde_json::to_string_pretty(&json)?;
        io::write_atomic(path, json.as_bytes())?;
    }
    Ok(())
}
