//! `promoscope export`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::prelude::Device;
use promoscope::io;
use promoscope_model::weights::{self, Precision};

/// Rewrite weights for the web page, with a model card in the metadata; join
/// networks into an ensemble, or take one member out of it.
///
/// Example: promoscope export --weights runs/demo/best.safetensors --out www/demo.safetensors --f16 --card trained_on="6,369 DREAM sequences"
///
/// Example: promoscope export --weights seed0/swa.safetensors --weights seed1/swa.safetensors --out ensemble.safetensors
#[derive(clap::Args)]
pub struct Args {
    /// Weights to export; repeat to join networks of one config (or
    /// ensembles) into one ensemble, in the order given. The first file's
    /// metadata is kept.
    #[arg(long, required = true)]
    weights: Vec<PathBuf>,
    /// Keep only this member (0-based) of the joined networks.
    #[arg(long)]
    member: Option<usize>,
    /// Output `.safetensors`.
    #[arg(long)]
    out: PathBuf,
    /// Store 16-bit floats (half the size).
    #[arg(long, conflicts_with = "int8")]
    f16: bool,
    /// Store 8-bit integers with a scale per output row (a quarter of the
    /// size; one-axis tensors in 16-bit floats).
    #[arg(long)]
    int8: bool,
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
    let mut members = Vec::new();
    let mut first = None;
    for path in &args.weights {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let (ensemble, info) = weights::load_ensemble(&bytes, &Device::flex())
            .with_context(|| path.display().to_string())?;
        let first = first.get_or_insert(info.clone());
        if info.config != first.config {
            bail!(
                "{}: its model config differs from {}'s; an ensemble's members share one",
                path.display(),
                args.weights[0].display()
            );
        }
        members.extend(ensemble.members().iter().cloned());
    }
    let info = first.expect("clap requires --weights");
    if let Some(k) = args.member {
        if k >= members.len() {
            bail!(
                "--member {k}: the weights hold {} networks (0 to {})",
                members.len(),
                members.len() - 1
            );
        }
        members = vec![members.swap_remove(k)];
    }
    let mut card = info.metadata.clone();
    card.extend(args.card);
    let precision = match (args.f16, args.int8) {
        (true, _) => Precision::F16,
        (_, true) => Precision::I8,
        _ => Precision::F32,
    };
    let out = weights::members_to_bytes(&members, &info.config, &card, precision)?;
    io::write_atomic(&args.out, &out)?;
    eprintln!(
        "wrote {} ({} network(s), {} bytes)",
        args.out.display(),
        members.len(),
        out.len()
    );
    Ok(())
}
