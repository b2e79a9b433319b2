//! `promoscope train`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use promoscope::train;
use promoscope::{data, io};
use promoscope_model::device::select_device;
use promoscope_model::kernels::conv::set_half_products;
use promoscope_model::training::{self, Hyperparameters, Recipe};
use signal_hook::consts::{SIGINT, SIGTERM};

use super::{DeviceArgs, ModelArgs, out};

/// Train a model on DREAM-format data.
///
/// Example: promoscope train --data ../shared/data/dream2022_train_sample.txt --config tiny --epochs 3
#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct Args {
    /// Training data: `SEQUENCE<TAB>EXPRESSION` lines or a TSV/CSV with a header; `.gz` ok.
    #[arg(long, required_unless_present = "resume")]
    data: Option<PathBuf>,
    #[command(flatten)]
    #[serde(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    #[serde(flatten)]
    device: DeviceArgs,
    /// Hyperparameter preset: `seed` (the paper's, for the 6.7 million DREAM
    /// sequences) or `small-data` (for 5,000–100,000 sequences, chosen on the
    /// `--holdout 15` split of the DREAM sample: docs/TRAINING.md). The options
    /// below override single values of it.
    #[arg(long, default_value_t = Recipe::Seed)]
    #[serde(default)]
    recipe: Recipe,
    /// Start from these weights (e.g. a model pre-trained on sequences
    /// labelled by a teacher) instead of a fresh network; the optimizer starts afresh.
    #[arg(long, value_name = "SAFETENSORS", conflicts_with = "resume")]
    #[serde(default)]
    init: Option<PathBuf>,
    /// Training-only rows mixed into every epoch, read like `--data` and
    /// never validated on: e.g. the teacher set a model was pre-trained on,
    /// which keeps it near the teacher while it learns the measured labels
    /// (docs/TRAINING.md).
    #[arg(long, value_name = "FILE")]
    #[serde(default)]
    mix_data: Option<PathBuf>,
    /// How many `--mix-data` rows join each epoch, drawn afresh each epoch
    /// [half the training rows].
    #[arg(long, value_name = "N", requires = "mix_data")]
    #[serde(default)]
    mix_per_epoch: Option<usize>,
    /// Epochs [seed: 850, the seed's 750 + 100; small-data: 4].
    #[arg(long)]
    epochs: Option<usize>,
    /// Sequences per epoch, a random slice [seed: 307,200; small-data: all].
    #[arg(long)]
    epoch_size: Option<usize>,
    /// Batch size [seed: 1,024; small-data: 64].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Adam learning rate [seed: 1e-4; small-data: 5e-4].
    #[arg(long)]
    lr: Option<f64>,
    /// The last this many epochs are the fine-tuning stage [seed: 100; small-data: 1]...
    #[arg(long)]
    fine_tune_epochs: Option<usize>,
    /// ...at this learning rate [seed: 3e-5; small-data: 1e-4].
    #[arg(long)]
    fine_tune_lr: Option<f64>,
    /// First optimizer step of stochastic weight averaging (the seed's
    /// `tfa.optimizers.SWA` counts steps) [seed: 150; small-data: 2 epochs].
    #[arg(long)]
    swa_start: Option<usize>,
    /// Steps between averaged weights [seed: 30; small-data: a fifth of an epoch].
    #[arg(long)]
    swa_every: Option<usize>,
    /// Training batches run to recompute the averaged model's batch-norm
    /// statistics [16].
    #[arg(long)]
    swa_bn_batches: Option<usize>,
    /// Train without weight averaging.
    #[arg(long)]
    no_swa: bool,
    /// Validation set: the last N sequences of the file (the seed used 104,448).
    #[arg(long, default_value_t = 104_448)]
    val_size: usize,
    /// Validation set instead: the sequences whose CRC-32 mod 100 is below
    /// PERCENT, a split fixed by the sequences alone (docs/TRAINING.md);
    /// `scripts/baseline_kmer.py` holds out the same ones.
    #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u32).range(1..100))]
    #[serde(default)]
    holdout: Option<u32>,
    /// Validate every this many epochs [seed: 3; small-data: 1].
    #[arg(long)]
    val_every: Option<usize>,
    /// Seed for initialisation, shuffling and dropout.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Skip malformed lines (and report them) instead of stopping.
    #[arg(long)]
    skip_bad_lines: bool,
    /// Mixed precision: convolutions multiply in f16 (tensor cores on GPUs);
    /// weights, norms, attention and the loss stay f32, and the loss is scaled
    /// by 128 against f16 underflow. Saved weights are f32.
    #[arg(long)]
    #[serde(default)]
    mixed_precision: bool,
    /// Output folder.
    #[arg(long, default_value = "runs/latest")]
    out: PathBuf,
    /// Continue the run in this folder from its last checkpoint, with its saved
    /// options (`--epochs` may raise the total).
    #[arg(long)]
    #[serde(skip)]
    resume: Option<PathBuf>,
}

/// The options file a run keeps beside its weights, for `--resume`.
const TRAIN_ARGS: &str = "train_args.json";

/// The recipe's numbers for epochs of `epoch_rows` rows, then the options
/// that override single values of it.
fn hyperparameters(args: &Args, epoch_rows: usize) -> Hyperparameters {
    let mut hyper = args
        .recipe
        .hyperparameters(epoch_rows, args.batch_size, args.epoch_size);
    let set = |value: Option<usize>, field: &mut usize| {
        if let Some(value) = value {
            *field = value;
        }
    };
    set(args.epochs, &mut hyper.epochs);
    set(args.fine_tune_epochs, &mut hyper.fine_tune_epochs);
    set(args.val_every, &mut hyper.val_every);
    hyper.learning_rate = args.lr.unwrap_or(hyper.learning_rate);
    hyper.fine_tune_lr = args.fine_tune_lr.unwrap_or(hyper.fine_tune_lr);
    if args.no_swa {
        hyper.swa = None;
    }
    if let Some(swa) = &mut hyper.swa {
        set(args.swa_start, &mut swa.start);
        set(args.swa_every, &mut swa.every);
        set(args.swa_bn_batches, &mut swa.bn_batches);
    }
    hyper
}

pub fn run(args: Args) -> Result<ExitCode> {
    let args = resolve(args)?;
    let selected = select_device(args.device.backend)?;
    eprintln!("backend: {selected}");
    let (mut train_set, val_set) = read_split(&args)?;
    let mix = read_mix(&args, &mut train_set)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    io::write_atomic(
        &args.out.join(TRAIN_ARGS),
        serde_json::to_string_pretty(&args)?.as_bytes(),
    )?;
    // An epoch is the measured rows and the mixed-in ones drawn for it.
    let epoch_rows = match mix {
        Some(mix) => train_set.len() - mix.rows + mix.per_epoch,
        None => train_set.len(),
    };
    let hyper = hyperparameters(&args, epoch_rows);
    if hyper.batch_size < 2 || hyper.val_every == 0 {
        bail!("need --batch-size ≥ 2 and --val-every ≥ 1");
    }
    if train_set.len() < 670_000 && args.recipe == Recipe::Seed && args.batch_size.is_none() {
        eprintln!(
            "note: {} training sequences; the seed recipe (batch 1,024, epochs of 307,200) is \
             made for 6.7 million: `--recipe small-data` is made for this size (docs/TRAINING.md)",
            train_set.len()
        );
    }
    let settings = settings(&args, hyper, mix)?;
    set_half_products(args.mixed_precision);
    train_and_report(&settings, (&train_set, &val_set), &selected)
}

/// Trains with a line a validation on stdout, and the best epoch at the end;
/// exit code 130 after an interrupt, with the checkpoint saved.
fn train_and_report(
    settings: &train::TrainSettings,
    (train_set, val_set): (&data::Dataset, &data::Dataset),
    selected: &promoscope_model::SelectedDevice,
) -> Result<ExitCode> {
    // Ctrl-C (or SIGTERM) asks for a checkpoint after the current step; a
    // second one exits at once.
    let interrupt = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 130, interrupt.clone())?;
        signal_hook::flag::register(signal, interrupt.clone())?;
    }
    // Progress lines only: if stdout fails, training goes on; metrics.jsonl
    // and the checkpoints keep every number.
    let progress = |line: String| {
        let _ = out(format_args!("{line}\n"));
    };
    progress(
        "epoch  step       lr  train_loss  val_pearson  val_spearman  swa_pearson  seq/s".into(),
    );
    let outcome = train::train(settings, train_set, val_set, selected, &interrupt, |m| {
        let swa = m.swa_pearson.map_or("-".to_string(), |p| format!("{p:.4}"));
        progress(format!(
            "{:>5} {:>5} {:>8.1e} {:>11.4} {:>12.4} {:>13.4} {:>12} {:>6.0}",
            m.epoch, m.step, m.lr, m.train_loss, m.val_pearson, m.val_spearman, swa, m.seq_per_s
        ));
    })?;
    if outcome.interrupted {
        eprintln!(
            "interrupted: checkpoint saved; continue with `promoscope train --resume {}`",
            settings.out_dir.display()
        );
        return Ok(ExitCode::from(130));
    }
    if let Some(best) = outcome
        .history
        .iter()
        .filter(|m| !m.val_pearson.is_nan())
        .max_by(|a, b| a.val_pearson.total_cmp(&b.val_pearson))
    {
        progress(format!(
            "best: epoch {}, val Pearson {:.4}, Spearman {:.4}",
            best.epoch, best.val_pearson, best.val_spearman
        ));
    }
    progress(format!(
        "weights: {}",
        settings.out_dir.join("best.safetensors").display()
    ));
    Ok(ExitCode::SUCCESS)
}

/// The options to run with: as given, or a resumed run's saved ones
/// (`--epochs` may raise the total).
fn resolve(args: Args) -> Result<Args> {
    Ok(match &args.resume {
        Some(dir) => {
            let path = dir.join(TRAIN_ARGS);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot resume: cannot read {}", path.display()))?;
            let saved: Args = serde_json::from_str(&text)
                .with_context(|| format!("{}: not a promoscope run", path.display()))?;
            if !train::has_checkpoint(dir) {
                bail!("cannot resume: {} has no checkpoint", dir.display());
            }
            Args {
                epochs: args.epochs.or(saved.epochs),
                out: dir.clone(),
                ..saved
            }
        }
        None => args,
    })
}

/// The training file, read and split into training and validation sets.
fn read_split(args: &Args) -> Result<(data::Dataset, data::Dataset)> {
    let data_path = args
        .data
        .clone()
        .expect("clap requires --data unless --resume");
    let data = read_file(args, &data_path)?;
    let (train_set, val_set) = match args.holdout {
        Some(percent) => data.split_holdout(percent),
        None => {
            if args.val_size >= data.len() {
                bail!(
                    "--val-size {} leaves no training data ({} sequences read)",
                    args.val_size,
                    data.len()
                );
            }
            data.split_tail(args.val_size)
        }
    };
    eprintln!(
        "{} sequences to train on, {} to validate on ({})",
        train_set.len(),
        val_set.len(),
        match args.holdout {
            Some(percent) => format!("--holdout {percent}: by each sequence's CRC-32"),
            None => format!("--val-size {}: the file's last rows", args.val_size),
        }
    );
    if train_set.is_empty() || val_set.len() < 2 {
        bail!(
            "the split leaves {} training and {} validation sequences: need at least 1 and 2",
            train_set.len(),
            val_set.len()
        );
    }
    Ok((train_set, val_set))
}

/// A training file (`--data`, `--mix-data`) for the model's input length,
/// what reading dropped and skipped said; an error if it holds no sequences.
fn read_file(args: &Args, path: &Path) -> Result<data::Dataset> {
    let seq_len = args.model.config.config.seq_len;
    let (data, report) = data::read(path, seq_len, args.skip_bad_lines)?;
    eprintln!(
        "read {} sequences from {} ({} longer than {seq_len} dropped, {} bad lines skipped)",
        data.len(),
        path.display(),
        report.too_long,
        report.bad_lines.len()
    );
    for (line, problem) in report.bad_lines.iter().take(5) {
        eprintln!("  {}:{line}: {problem}", path.display());
    }
    if data.is_empty() {
        bail!("{} holds no sequences", path.display());
    }
    Ok(data)
}

/// `--mix-data`'s rows, appended to the training set.
fn read_mix(args: &Args, train_set: &mut data::Dataset) -> Result<Option<train::Mix>> {
    let Some(path) = &args.mix_data else {
        return Ok(None);
    };
    let mixed = read_file(args, path)?;
    let rows = mixed.len();
    let per_epoch = args.mix_per_epoch.unwrap_or(train_set.len() / 2);
    if per_epoch > rows {
        bail!(
            "--mix-per-epoch {per_epoch}: {} holds only {rows} sequences",
            path.display()
        );
    }
    eprintln!(
        "mixing {per_epoch} of {rows} sequences from {} into each epoch (training only)",
        path.display()
    );
    train_set.append(mixed);
    Ok(Some(train::Mix { rows, per_epoch }))
}

/// The loop's settings from the options.
fn settings(
    args: &Args,
    hyper: Hyperparameters,
    mix: Option<train::Mix>,
) -> Result<train::TrainSettings> {
    // A resumed run continues from its checkpoint, not from `--init`.
    let init = match args
        .init
        .as_ref()
        .filter(|_| !train::has_checkpoint(&args.out))
    {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let info = promoscope_model::weights::read_info(&bytes)
                .with_context(|| path.display().to_string())?;
            if info.config != args.model.config.config {
                bail!(
                    "{}: its model config differs from --config {}",
                    path.display(),
                    args.model.config
                );
            }
            Some(bytes)
        }
        None => None,
    };
    Ok(train::TrainSettings {
        model: args.model.config.config.clone(),
        init,
        hyper,
        mix,
        seed: args.seed,
        out_dir: args.out.clone(),
        loss_scale: training::loss_scale(args.mixed_precision),
    })
}
