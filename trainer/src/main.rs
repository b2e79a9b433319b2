//! `promoscope`: train and evaluate the HSAYN promoter-expression model.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use promoscope::{bench, data, evaluate, io, plot, predict, simulate, train};
use promoscope_model::conv::set_half_products;
use promoscope_model::device::select_device;
use promoscope_model::gemm_conv::{fallbacks, set_implicit_gemm};
use promoscope_model::{Backend, ModelConfig, SelectedDevice};
use signal_hook::consts::{SIGINT, SIGTERM};

#[derive(Parser)]
#[command(
    version,
    about = "Yeast promoter expression with the DREAM 2022 HSAYN model"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model on DREAM-format data.
    ///
    /// Example: promoscope train --data ../shared/data/dream2022_train_sample.txt --config tiny --epochs 3
    Train(TrainArgs),
    /// Pearson, Spearman and MSE of trained weights, overall and per subset; the DREAM 2022 scores with --pairs.
    ///
    /// Example: promoscope evaluate --weights runs/demo/best.safetensors --data test.tsv --pairs pairs.tsv
    Evaluate(EvaluateArgs),
    /// Predict expression for every sequence of a file (FASTA, TSV/CSV, DREAM or plain lines).
    ///
    /// Example: promoscope predict --weights runs/demo/best.safetensors seqs.fa --out predictions.csv
    Predict(PredictArgs),
    /// Score every single-base substitution of a sequence (in-silico mutagenesis) into a TSV table.
    ///
    /// Example: promoscope ism --weights runs/demo/best.safetensors --sequence TGCATTTTTTTCACATC...
    Ism(IsmArgs),
    /// Rewrite weights for the web page, with a model card in the metadata.
    ///
    /// Example: promoscope export --weights runs/demo/best.safetensors --out www/demo.safetensors --f16 --card trained_on="6,369 DREAM sequences"
    Export(ExportArgs),
    /// Sequences per second of inference and training steps, and the time of one ISM, as a table.
    ///
    /// Example: promoscope bench --backend flex --infer-batch 256 --train-batch 64
    Bench(BenchArgs),
    /// Simulated DREAM-format data from a known motif-based ground truth, and a
    /// second file with the noise-free expression of the same sequences.
    ///
    /// Example: promoscope simulate --n 6700000 --seed 1 --out sim.txt.gz
    Simulate(SimulateArgs),
}

#[derive(clap::Args)]
struct SimulateArgs {
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

#[derive(clap::Args)]
struct BenchArgs {
    /// Model config: `seed` (the paper's), `tiny`, or a JSON file.
    #[arg(long, default_value = "seed")]
    config: String,
    /// Backend: auto, flex, wgpu or vulkan.
    #[arg(long, default_value = "auto")]
    backend: String,
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
    /// Convolutions on a GPU as cubek's implicit GEMM (as `train --implicit-gemm`).
    #[arg(long)]
    implicit_gemm: bool,
    /// Also run the golden file's input through its weights and report the
    /// output's largest difference from the golden output; on a GPU backend
    /// also the convolutions' outputs and gradients against flex's.
    #[arg(long)]
    golden: Option<PathBuf>,
}

#[derive(clap::Args)]
struct EvaluateArgs {
    /// Weights.
    #[arg(long)]
    weights: PathBuf,
    /// Measured sequences: DREAM lines, or a TSV/CSV with `sequence,expression[,subset]`
    /// (subsets high, low, yeast, random, challenging for the DREAM score).
    #[arg(long)]
    data: PathBuf,
    /// Pairs: `alt_sequence, ref_sequence, alt_expression, ref_expression, subset`
    /// (subsets snv, motif_perturbation, motif_tiling).
    #[arg(long)]
    pairs: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Sequences per forward pass.
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// Backend: auto, flex, wgpu or vulkan.
    #[arg(long, default_value = "auto")]
    backend: String,
    /// Convolutions multiply in f16 (as `bench --mixed-precision`): what the
    /// fast GPU path costs in accuracy, measured on the same weights.
    #[arg(long)]
    mixed_precision: bool,
}

#[derive(clap::Args)]
struct PredictArgs {
    /// Weights (`.safetensors` written by promoscope, or the golden file).
    #[arg(long)]
    weights: PathBuf,
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
    /// Sequences per forward pass.
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// Backend: auto, flex, wgpu or vulkan.
    #[arg(long, default_value = "auto")]
    backend: String,
}

#[derive(clap::Args)]
struct IsmArgs {
    /// Weights.
    #[arg(long)]
    weights: PathBuf,
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
    /// Backend: auto, flex, wgpu or vulkan.
    #[arg(long, default_value = "auto")]
    backend: String,
}

#[derive(clap::Args)]
struct ExportArgs {
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

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
struct TrainArgs {
    /// Training data: `SEQUENCE<TAB>EXPRESSION` lines or a TSV/CSV with a header; `.gz` ok.
    #[arg(long, required_unless_present = "resume")]
    data: Option<PathBuf>,
    /// Model config: `seed` (the paper's), `tiny`, or a JSON file.
    #[arg(long, default_value = "seed")]
    config: String,
    /// Backend: auto, flex, wgpu or vulkan.
    #[arg(long, default_value = "auto")]
    backend: String,
    /// Epochs [default: 850, the seed's 750 + 100].
    #[arg(long)]
    epochs: Option<usize>,
    /// Sequences per epoch (a random slice; the seed used 307,200).
    #[arg(long, default_value_t = 307_200)]
    epoch_size: usize,
    /// Batch size.
    #[arg(long, default_value_t = 1024)]
    batch_size: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-4)]
    lr: f64,
    /// The last this many epochs are the fine-tuning stage (the seed: 100)...
    #[arg(long, default_value_t = 100)]
    fine_tune_epochs: usize,
    /// ...at this learning rate.
    #[arg(long, default_value_t = 3e-5)]
    fine_tune_lr: f64,
    /// First optimizer step of stochastic weight averaging (the seed's
    /// `tfa.optimizers.SWA` counts steps).
    #[arg(long, default_value_t = 150)]
    swa_start: usize,
    /// Steps between averaged weights.
    #[arg(long, default_value_t = 30)]
    swa_every: usize,
    /// Training batches run to recompute the averaged model's batch-norm statistics.
    #[arg(long, default_value_t = 16)]
    swa_bn_batches: usize,
    /// Train without weight averaging.
    #[arg(long)]
    no_swa: bool,
    /// Validation set: the last N sequences of the file (the seed used 104,448).
    #[arg(long, default_value_t = 104_448)]
    val_size: usize,
    /// Validate every this many epochs.
    #[arg(long, default_value_t = 3)]
    val_every: usize,
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
    /// Convolutions on a GPU as one implicit-GEMM kernel each (cubek's, on
    /// tensor cores: with `--mixed-precision`) instead of a product per tap.
    /// An experiment: shapes the kernel cannot run take the usual path.
    #[arg(long)]
    #[serde(default)]
    implicit_gemm: bool,
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

fn model_config(name: &str) -> Result<ModelConfig> {
    let config = match name {
        "seed" => ModelConfig::new(),
        "tiny" => ModelConfig::tiny(),
        path => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config {path}"))?;
            serde_json::from_str(&text).with_context(|| format!("{path}: not a model config"))?
        }
    };
    config
        .validate()
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("config {name}"))?;
    Ok(config)
}

fn run_train(args: TrainArgs) -> Result<ExitCode> {
    let args = match &args.resume {
        Some(dir) => {
            let path = dir.join(TRAIN_ARGS);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot resume: cannot read {}", path.display()))?;
            let saved: TrainArgs = serde_json::from_str(&text)
                .with_context(|| format!("{}: not a promoscope run", path.display()))?;
            if !train::has_checkpoint(dir) {
                bail!("cannot resume: {} has no checkpoint", dir.display());
            }
            TrainArgs {
                epochs: args.epochs.or(saved.epochs),
                out: dir.clone(),
                ..saved
            }
        }
        None => args,
    };
    let data_path = args
        .data
        .clone()
        .expect("clap requires --data unless --resume");
    let model = model_config(&args.config)?;
    let backend: Backend = args.backend.parse()?;
    let selected = select_device(backend)?;
    eprintln!("backend: {selected}");
    let (data, report) = data::read(&data_path, model.seq_len, args.skip_bad_lines)?;
    eprintln!(
        "read {} sequences from {} ({} longer than {} dropped, {} bad lines skipped)",
        data.len(),
        data_path.display(),
        report.too_long,
        model.seq_len,
        report.bad_lines.len()
    );
    for (line, problem) in report.bad_lines.iter().take(5) {
        eprintln!("  {}:{line}: {problem}", data_path.display());
    }
    if args.val_size >= data.len() {
        bail!(
            "--val-size {} leaves no training data ({} sequences read)",
            args.val_size,
            data.len()
        );
    }
    if args.val_size < 2 || args.batch_size < 2 || args.val_every == 0 {
        bail!("need --val-size ≥ 2, --batch-size ≥ 2 and --val-every ≥ 1");
    }
    let (train_set, val_set) = data.split_tail(args.val_size);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    io::write_atomic(
        &args.out.join(TRAIN_ARGS),
        serde_json::to_string_pretty(&args)?.as_bytes(),
    )?;
    let settings = train::TrainSettings {
        model,
        epochs: args.epochs.unwrap_or(850),
        epoch_size: args.epoch_size,
        batch_size: args.batch_size,
        learning_rate: args.lr,
        fine_tune_epochs: args.fine_tune_epochs,
        fine_tune_lr: args.fine_tune_lr,
        swa: (!args.no_swa).then_some(train::SwaSettings {
            start: args.swa_start,
            every: args.swa_every,
            bn_batches: args.swa_bn_batches,
        }),
        val_every: args.val_every,
        seed: args.seed,
        out_dir: args.out.clone(),
        loss_scale: if args.mixed_precision {
            train::MIXED_LOSS_SCALE
        } else {
            1.0
        },
    };
    set_half_products(args.mixed_precision);
    implicit_gemm(args.implicit_gemm, &selected);
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
    let outcome = train::train(
        &settings,
        &train_set,
        &val_set,
        &selected,
        &interrupt,
        |m| {
            let swa = m.swa_pearson.map_or("-".to_string(), |p| format!("{p:.4}"));
            progress(format!(
                "{:>5} {:>5} {:>8.1e} {:>11.4} {:>12.4} {:>13.4} {:>12} {:>6.0}",
                m.epoch,
                m.step,
                m.lr,
                m.train_loss,
                m.val_pearson,
                m.val_spearman,
                swa,
                m.seq_per_s
            ));
        },
    )?;
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

fn run_evaluate(args: EvaluateArgs) -> Result<()> {
    let scorer = predict::Scorer::load(&args.weights, &args.backend)?;
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

fn run_predict(args: PredictArgs) -> Result<()> {
    let scorer = predict::Scorer::load(&args.weights, &args.backend)?;
    eprintln!("backend: {}", scorer.selected);
    let options = predict::PredictOptions {
        batch_size: args.batch_size.max(1),
        rc_average: args.rc_average,
        skip_bad: args.skip_bad,
        quantiles: args
            .quantile_normalize
            .as_deref()
            .map(predict::Quantiles::read)
            .transpose()?,
    };
    let (scored, skipped) = predict::predict(&scorer, &args.input, &args.out, &options)?;
    eprintln!("scored {scored} sequences, skipped {skipped}");
    Ok(())
}

fn run_ism(args: IsmArgs) -> Result<()> {
    let scorer = predict::Scorer::load(&args.weights, &args.backend)?;
    eprintln!("backend: {}", scorer.selected);
    if let Some(sequence) = &args.sequence {
        let (reference, table) = predict::ism_scores(&scorer, sequence, args.batch_size)?;
        let tsv = predict::ism_tsv(reference, &table);
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
            plot::ism_heat_map(sequence.len(), reference, &table, &plot)?;
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
    for record in data::SequenceReader::open(fasta)? {
        let record = record?;
        let (reference, table) = predict::ism_scores(&scorer, &record.sequence, args.batch_size)
            .with_context(|| format!("{}: sequence {}", fasta.display(), record.id))?;
        let path = predict::ism_path(&args.out, &record.id);
        io::write_atomic(&path, predict::ism_tsv(reference, &table).as_bytes())?;
        plot::ism_heat_map(
            record.sequence.len(),
            reference,
            &table,
            &path.with_extension("png"),
        )?;
        eprintln!("{}: {}", record.id, path.display());
    }
    Ok(())
}

fn run_export(args: ExportArgs) -> Result<()> {
    let bytes = std::fs::read(&args.weights)
        .with_context(|| format!("cannot read {}", args.weights.display()))?;
    let device = burn::prelude::Device::flex();
    let (model, info) = promoscope_model::weights::load(&bytes, &device)
        .with_context(|| args.weights.display().to_string())?;
    let mut card = info.metadata.clone();
    card.extend(args.card);
    let precision = if args.f16 {
        promoscope_model::weights::Precision::F16
    } else {
        promoscope_model::weights::Precision::F32
    };
    let out = promoscope_model::weights::to_bytes(&model, &info.config, &card, precision)?;
    io::write_atomic(&args.out, &out)?;
    eprintln!("wrote {} ({} bytes)", args.out.display(), out.len());
    Ok(())
}

/// Sets the implicit-GEMM switch, saying so where it has nothing to act on.
fn implicit_gemm(on: bool, selected: &SelectedDevice) {
    if on && selected.backend == Backend::Flex {
        eprintln!(
            "note: --implicit-gemm acts on GPU backends only; flex keeps its own convolutions"
        );
    }
    set_implicit_gemm(on);
}

fn run_bench(args: BenchArgs) -> Result<()> {
    let selected = select_device(args.backend.parse()?)?;
    set_half_products(args.mixed_precision);
    implicit_gemm(args.implicit_gemm, &selected);
    let settings = bench::BenchSettings {
        model: model_config(&args.config)?,
        infer_batches: args.infer_batch,
        train_batches: args.train_batch,
        repeats: args.repeats,
        data: args.data,
        stages: args.stages,
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
    if args.implicit_gemm {
        let fallbacks = fallbacks();
        table.push_str(&if selected.backend == Backend::Flex {
            "\nconvolutions: flex's own (--implicit-gemm acts on GPU backends only)\n".to_string()
        } else if fallbacks.is_empty() {
            "\nconvolutions: cubek's implicit GEMM\n".to_string()
        } else {
            format!(
                "\nconvolutions: cubek's implicit GEMM, except (usual path) {}\n",
                fallbacks.join("; ")
            )
        });
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
        json["implicit_gemm"] = args.implicit_gemm.into();
        json["implicit_gemm_fallbacks"] = fallbacks().into();
        json["golden_max_diff"] = golden.map(f64::from).into();
        json["conv_check"] = conv_check.map(|d| d.to_vec()).into();
        let json = serde_json::to_string_pretty(&json)?;
        io::write_atomic(path, json.as_bytes())?;
    }
    Ok(())
}

fn run_simulate(args: SimulateArgs) -> Result<()> {
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

fn run() -> Result<ExitCode> {
    match Cli::parse().command {
        Command::Train(args) => return run_train(args),
        Command::Bench(args) => run_bench(args)?,
        Command::Evaluate(args) => run_evaluate(args)?,
        Command::Predict(args) => run_predict(args)?,
        Command::Ism(args) => run_ism(args)?,
        Command::Export(args) => run_export(args)?,
        Command::Simulate(args) => run_simulate(args)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `text` to stdout. A reader that has gone (`promoscope … | head`)
/// took what it wanted: not an error (`print!` would panic), and the command
/// goes on to write its files. Every other write error is returned.
fn out(text: impl std::fmt::Display) -> std::io::Result<()> {
    match write!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => result,
    }
}

fn main() -> ExitCode {
    promoscope::keep_freed_memory();
    match run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
