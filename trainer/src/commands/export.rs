//! `promoscope export`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::prelude::Device;
use promoscope::io;
use promoscope_model::weights::{self, Precision};

/// Rewrite weights for the web page, with a model card in the metadata.
///
/// Example: promoscope export --weights runs/demo/best.safetensors --out www/demo.safetensors --f16 --card trained_on="6,369 DREAM sequences"
#[derive(clap::Args)]
pub struct Args {
    /// Weights to export.
    #[arg(long)]
    weights: PathBuf,
    /// Output `.safetensors`.
    #[arg(long)]
    out: PathBuf,
    /// Store 16-bit floats (half the size).
    #[arg(long)]
    f16: bool,
    /// Model-card entries, `key=value`, added to the metadata.
    #[arg(long, value_parser = parse_card)]
    card: Vec<(String, String)>,
}

fn parse_card(entry: &str) -> Result<(String, String), String> {
    entry
        .split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("{entry:?} is not key=value"))
}

pub fn run(args: Args) -> Result<()> {
    let bytes = std::fs::read(&args.weights)
        .with_context(|| format!("cannot read {}", args.weights.display()))?;
    let (model, info) = weights::load(&bytes, &Device::flex())
        .with_context(|| args.weights.display().to_string())?;
    let mut card = info.metadata.clone();
    card.extend(args.card);
    let precision = if args.f16 {
        Precision::F16
    } else {
        Precision::F32
    };
    let out = weights::to_bytes(&model, &info.config, &card, precision)?;
    io::write_atomic(&args.out, &out)?;
    eprintln!("wrote {} ({} bytes)", args.out.display(), out.len());
    Ok(())
}
