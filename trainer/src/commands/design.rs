//! `promoscope design`.

use std::path::PathBuf;

use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use promoscope::data::SequenceReader;
use promoscope::io;
use promoscope_model::design::{
    self, Constraints, Design, DesignSpec, Objective, Starts, Strategy, TYPE_IIS,
};
use promoscope_model::encoding::Flanks;

use super::{WeightsArgs, out};

/// Design sequences toward an objective under cloning constraints: greedy
/// single substitutions or a genetic algorithm, the flanks fixed (the page's
/// Design tab runs the same search: same seed and model, same sequences).
///
/// Example: promoscope design --weights www/demo.safetensors --start TGCATTTTTTTCACATC... --objective max --type-iis --out designs.csv
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: WeightsArgs,
    /// A start sequence (an 80-bp variable region alone gets the model's
    /// flanks); repeat for several.
    #[arg(long, conflicts_with_all = ["starts", "random"])]
    start: Vec<String>,
    /// Start sequences from a file (any format `predict` reads).
    #[arg(long, conflicts_with = "random")]
    starts: Option<PathBuf>,
    /// Start from this many random variable regions in the model's flanks.
    #[arg(long)]
    random: Option<usize>,
    /// Length of the random variable regions.
    #[arg(long, default_value_t = 80)]
    random_length: usize,
    /// `max`, `min`, or a target value to get close to.
    #[arg(long, default_value = "max")]
    objective: Objective,
    /// `greedy` (the best single substitution each round) or `evolve` (a genetic algorithm).
    #[arg(long, value_enum, default_value = "greedy")]
    strategy: StrategyName,
    /// Greedy: rounds at most (one substitution each).
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Evolve: candidates per generation.
    #[arg(long, default_value_t = 64)]
    population: usize,
    /// Evolve: generations after the first.
    #[arg(long, default_value_t = 10)]
    generations: usize,
    /// At most this many substitutions from the start.
    #[arg(long)]
    max_mutations: Option<usize>,
    /// Lowest GC share of the variable region, in percent.
    #[arg(long, requires = "gc_max")]
    gc_min: Option<f32>,
    /// Highest GC share of the variable region, in percent.
    #[arg(long, requires = "gc_min")]
    gc_max: Option<f32>,
    /// A sequence that may not occur on either strand; repeat for several.
    #[arg(long)]
    forbid: Vec<String>,
    /// Forbid the Golden Gate type IIS sites BsaI (GGTCTC) and BsmBI (CGTCTC).
    #[arg(long)]
    type_iis: bool,
    /// The longest run of one base allowed (runs inside the flanks alone do not count).
    #[arg(long)]
    max_homopolymer: Option<usize>,
    /// Random seed: the same seed and model give the same sequences.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// With an ensemble: rank candidates by their prediction less this many
    /// spreads of its members (`--objective max`: mean − k·sd), so that the
    /// search keeps to where the members agree. 0: the mean alone.
    #[arg(long, default_value_t = 0.0)]
    caution: f32,
    /// How many of the best designs to write.
    #[arg(long, default_value_t = 10)]
    keep: usize,
    /// Designs: CSV, or FASTA when the name ends in `.fa`/`.fasta`; `-` for stdout (CSV).
    #[arg(long, default_value = "-")]
    out: PathBuf,
    /// The search's trajectory (best prediction per round), as CSV.
    #[arg(long)]
    trajectory: Option<PathBuf>,
    /// Sequences per forward pass.
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
}

/// `--strategy`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum StrategyName {
    Greedy,
    Evolve,
}

pub fn run(args: Args) -> Result<()> {
    let spec = spec(&args)?;
    let scorer = args.model.load()?;
    eprintln!("backend: {}", scorer.selected);
    let seq_len = scorer.info.config.seq_len;
    let mut design = Design::new(spec, &Flanks::of(&scorer.info.metadata), seq_len)?;
    let bar = ProgressBar::new(design.progress().1 as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} rounds, {msg} [{elapsed}]")
            .expect("a valid template"),
    );
    let result = design::run(
        &mut design,
        &scorer.ensemble,
        seq_len,
        args.batch_size,
        |d| {
            let (done, total) = d.progress();
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    )?;
    bar.finish_and_clear();
    if let Some(best) = result.designs.first() {
        let start = &result.starts[best.start - 1];
        eprintln!(
            "scored {} sequences; best {:.4} ({} mutations) from start {} at {:.4}",
            result.scored,
            best.prediction,
            best.mutations.len(),
            best.start,
            start.prediction
        );
    }
    let fasta = matches!(
        args.out.extension().and_then(|e| e.to_str()),
        Some("fa" | "fasta")
    );
    let text = if fasta { result.fasta() } else { result.csv() };
    if args.out.as_os_str() == "-" {
        out(text)?;
    } else {
        io::write_atomic(&args.out, text.as_bytes())?;
    }
    if let Some(path) = &args.trajectory {
        io::write_atomic(path, result.trajectory_csv().as_bytes())?;
    }
    Ok(())
}

fn spec(args: &Args) -> Result<DesignSpec> {
    let starts = if let Some(count) = args.random {
        Starts::Random {
            count,
            length: args.random_length,
        }
    } else if let Some(path) = &args.starts {
        let mut sequences = Vec::new();
        for record in SequenceReader::open(path)? {
            sequences.push(record?.sequence);
        }
        if sequences.is_empty() {
            bail!("{}: no sequences", path.display());
        }
        Starts::Given(sequences)
    } else if !args.start.is_empty() {
        Starts::Given(args.start.clone())
    } else {
        bail!("give --start, --starts FILE or --random N");
    };
    let mut forbidden = args.forbid.clone();
    if args.type_iis {
        forbidden.extend(TYPE_IIS.iter().map(|(_, site)| site.to_string()));
    }
    let gc = args
        .gc_min
        .zip(args.gc_max)
        .map(|(min, max)| (min / 100.0, max / 100.0));
    Ok(DesignSpec {
        starts,
        objective: args.objective,
        caution: args.caution,
        constraints: Constraints {
            max_mutations: args.max_mutations,
            gc,
            forbidden,
            max_homopolymer: args.max_homopolymer,
        },
        strategy: match args.strategy {
            StrategyName::Greedy => Strategy::Greedy {
                rounds: args.rounds,
            },
            StrategyName::Evolve => Strategy::Evolve {
                population: args.population,
                generations: args.generations,
            },
        },
        seed: args.seed,
        keep: args.keep,
    })
}
