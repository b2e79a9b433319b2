//! `promoscope predict` and `promoscope ism`: scores with trained weights.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use promoscope_model::encoding::{Flanks, Placement, encode_for, one_hot, reverse_complement};
use promoscope_model::ism::{Mutagenesis, ScoredSubstitution};
use promoscope_model::weights::{self, WeightsInfo};
use promoscope_model::{Backend, Ensemble, Prediction, SelectedDevice, device::select_device};

use promoscope_model::records::Record;

use crate::data::SequenceReader;
use crate::io::AtomicFile;

/// A model ready to score (one network or an ensemble's members), and where
/// it runs.
pub struct Scorer {
    /// The networks in eval mode.
    pub ensemble: Ensemble,
    /// Its weights file's config and metadata.
    pub info: WeightsInfo,
    /// The device.
    pub selected: SelectedDevice,
}

impl Scorer {
    /// Loads `weights` onto `backend`.
    pub fn load(weights_path: &Path, backend: Backend) -> Result<Self> {
        let selected = select_device(backend)?;
        let bytes = std::fs::read(weights_path)
            .with_context(|| format!("cannot read weights {}", weights_path.display()))?;
        let (ensemble, info) = weights::load_ensemble(&bytes, &selected.device)
            .with_context(|| format!("{}", weights_path.display()))?;
        Ok(Scorer {
            ensemble,
            info,
            selected,
        })
    }

    /// Whether it is an ensemble, whose predictions have a spread.
    pub fn has_spread(&self) -> bool {
        self.ensemble.len() > 1
    }

    /// Predictions for a batch of sequences (each at most `seq_len` long).
    pub fn score<S: AsRef<str>>(&self, sequences: &[S]) -> Result<Vec<Prediction>> {
        let x = one_hot(sequences, self.info.config.seq_len)?;
        let x = Tensor::<3>::from_data(x, &self.selected.device);
        let values = self
            .ensemble
            .forward(x)
            .into_data()
            .try_into_vec_as::<f32>()?;
        Ok(Prediction::rows(&values, self.ensemble.len()))
    }
}

/// Options of `predict`.
pub struct PredictOptions {
    /// Sequences per forward pass.
    pub batch_size: usize,
    /// Also report the mean of the forward and reverse-complement predictions.
    pub rc_average: bool,
    /// Skip (and count) unusable sequences instead of stopping.
    pub skip_bad: bool,
    /// Also report each prediction's quantile in this reference distribution.
    pub quantiles: Option<Quantiles>,
    /// Put sequences without the model's flanks inside them (where they fit).
    pub add_flanks: bool,
}

/// What `predict` did.
#[derive(Debug, Default, PartialEq)]
pub struct PredictReport {
    /// Sequences scored.
    pub scored: usize,
    /// Sequences skipped (`skip_bad`).
    pub skipped: usize,
    /// Sequences given the model's flanks (`add_flanks`).
    pub flanks_added: usize,
    /// Sequences scored without the model's flanks, and the line of the first.
    pub flanks_missing: usize,
    /// The input line of the first sequence without flanks.
    pub first_missing_line: Option<usize>,
}

/// A reference distribution, to map values to quantiles in [0, 1]: the seed
/// normalised its test predictions to the uniform distribution this way.
pub struct Quantiles {
    sorted: Vec<f64>,
}

impl Quantiles {
    /// From values (at least one, all finite).
    pub fn new(mut values: Vec<f64>) -> Result<Self> {
        if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
            bail!("a quantile reference needs at least one value, all finite");
        }
        values.sort_by(f64::total_cmp);
        Ok(Quantiles { sorted: values })
    }

    /// Reads the last field (tab, comma or space separated) of every line of
    /// `path`: DREAM lines, `promoscope predict` output or one number per
    /// line. A first line that is not a number is a header.
    pub fn read(path: &Path) -> Result<Self> {
        let mut values = Vec::new();
        for (i, line) in crate::data::open(path)?.lines().enumerate() {
            let line =
                line.with_context(|| format!("{}:{}: cannot read", path.display(), i + 1))?;
            let field = line
                .trim_end()
                .rsplit(['\t', ',', ' '])
                .next()
                .unwrap_or("");
            if field.is_empty() {
                continue;
            }
            // Parsed as f32, the precision of predictions, so that a
            // prediction equals its own printed value.
            match field.parse::<f32>() {
                Ok(v) if v.is_finite() => values.push(f64::from(v)),
                Err(_) if i == 0 => {}
                _ => bail!(
                    "{}:{}: {field:?} is not a finite number",
                    path.display(),
                    i + 1
                ),
            }
        }
        Self::new(values).with_context(|| path.display().to_string())
    }

    /// The fraction of reference values below `x`, ties counting half.
    pub fn quantile(&self, x: f64) -> f64 {
        let below = self.sorted.partition_point(|&v| v < x);
        let not_above = self.sorted.partition_point(|&v| v <= x);
        (below as f64 + (not_above - below) as f64 / 2.0) / self.sorted.len() as f64
    }
}

/// Scores every sequence of `input` into a CSV at `out` (stdout for `-`).
pub fn predict(
    scorer: &Scorer,
    input: &Path,
    out: &Path,
    options: &PredictOptions,
) -> Result<PredictReport> {
    if out.as_os_str() == "-" {
        let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
        let counts = predict_into(scorer, input, &mut stdout, options)?;
        stdout.flush()?;
        return Ok(counts);
    }
    // Streamed to a temporary file: bounded memory, and no half-written CSV.
    let mut file = AtomicFile::create(out)?;
    let counts = predict_into(scorer, input, &mut file, options)?;
    file.commit()?;
    Ok(counts)
}

fn predict_into(
    scorer: &Scorer,
    input: &Path,
    csv: &mut dyn Write,
    options: &PredictOptions,
) -> Result<PredictReport> {
    let mut header = String::from("id,prediction");
    if scorer.has_spread() {
        header.push_str(",sd");
    }
    if options.rc_average {
        header.push_str(",prediction_rc_average");
    }
    if options.quantiles.is_some() {
        header.push_str(",quantile");
    }
    writeln!(csv, "{header}")?;
    let mut report = PredictReport::default();
    let mut scored = 0;
    let mut batch: Vec<Record> = Vec::with_capacity(options.batch_size);
    let mut flush = |batch: &mut Vec<Record>, csv: &mut dyn Write| -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let sequences: Vec<&str> = batch.iter().map(|n| n.sequence.as_str()).collect();
        let forward = scorer.score(&sequences)?;
        let reverse = if options.rc_average {
            let rc = sequences
                .iter()
                .map(|s| reverse_complement(s))
                .collect::<Result<Vec<_>, _>>()?;
            scorer.score(&rc)?
        } else {
            Vec::new()
        };
        for (i, named) in batch.iter().enumerate() {
            write!(csv, "{},{}", named.id, forward[i].mean)?;
            if scorer.has_spread() {
                write!(csv, ",{}", forward[i].sd)?;
            }
            // The quantile is of the reported score: RC-averaged when asked.
            let mut score = forward[i].mean;
            if options.rc_average {
                score = (forward[i].mean + reverse[i].mean) / 2.0;
                write!(csv, ",{score}")?;
            }
            if let Some(quantiles) = &options.quantiles {
                write!(csv, ",{}", quantiles.quantile(f64::from(score)))?;
            }
            writeln!(csv)?;
        }
        scored += batch.len();
        batch.clear();
        Ok(())
    };
    let seq_len = scorer.info.config.seq_len;
    let flanks = Flanks::of(&scorer.info.metadata);
    for record in SequenceReader::open(input)? {
        let mut record = record?;
        if let Err(problem) = encode_for(&record.sequence, seq_len) {
            if options.skip_bad {
                report.skipped += 1;
                continue;
            }
            bail!("{}: sequence {}: {problem}", input.display(), record.id);
        }
        match flanks.place(&mut record.sequence, seq_len, options.add_flanks) {
            Placement::Added => report.flanks_added += 1,
            Placement::Missing => {
                report.flanks_missing += 1;
                report.first_missing_line.get_or_insert(record.line);
            }
            Placement::Present => {}
        }
        batch.push(record);
        if batch.len() == options.batch_size {
            flush(&mut batch, csv)?;
        }
    }
    flush(&mut batch, csv)?;
    report.scored = scored;
    Ok(report)
}

/// Every single-base substitution of `sequence`, scored: the reference
/// prediction and one row per substitution.
pub fn ism_scores(
    scorer: &Scorer,
    sequence: &str,
    batch_size: usize,
) -> Result<(Prediction, Vec<ScoredSubstitution>)> {
    let seq_len = scorer.info.config.seq_len;
    let mutagenesis = Mutagenesis::new(sequence, seq_len)?;
    let rows = mutagenesis.rows();
    let mut predictions = Vec::with_capacity(rows);
    for start in (0..rows).step_by(batch_size.max(1)) {
        let chunk = start..(start + batch_size).min(rows);
        let rows = scorer
            .ensemble
            .each(|model| mutagenesis.predict_rows(model, seq_len, chunk.clone()))?;
        predictions.extend(rows.into_data().try_into_vec_as::<f32>()?);
    }
    Ok(mutagenesis.score(&predictions, scorer.ensemble.len()))
}

/// An ISM as a tidy TSV table (position is 1-based); with `spread` (an
/// ensemble's), each prediction's and each delta's spread too.
pub fn ism_tsv(reference: Prediction, table: &[ScoredSubstitution], spread: bool) -> String {
    let mut tsv = format!("# reference prediction {}", reference.mean);
    if spread {
        tsv.push_str(&format!(" sd {}", reference.sd));
    }
    tsv.push_str("\nposition\tref\talt\tprediction\tdelta");
    tsv.push_str(if spread { "\tsd\tdelta_sd\n" } else { "\n" });
    for row in table {
        let s = row.substitution;
        tsv.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}",
            s.position + 1,
            s.reference,
            s.alternative,
            row.prediction,
            row.delta
        ));
        if spread {
            tsv.push_str(&format!("\t{}\t{}", row.sd, row.delta_sd));
        }
        tsv.push('\n');
    }
    tsv
}

/// Where `ism` writes the table of one named sequence.
pub fn ism_path(out_dir: &Path, id: &str) -> PathBuf {
    let safe: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    out_dir.join(format!("{safe}.ism.tsv"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_the_reference_cdf_with_ties_halved() {
        let q = Quantiles::new(vec![3.0, 1.0, 2.0, 2.0]).unwrap();
        assert_eq!(q.quantile(0.0), 0.0);
        assert_eq!(q.quantile(1.5), 0.25);
        assert_eq!(q.quantile(2.0), 0.5);
        assert_eq!(q.quantile(9.0), 1.0);
        assert!(Quantiles::new(vec![]).is_err());
        assert!(Quantiles::new(vec![f64::NAN]).is_err());
    }

    #[test]
    fn quantile_reference_files_name_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ref.csv");
        std::fs::write(&path, "id,prediction\na,1.5\nb,2.5\n").unwrap();
        assert_eq!(Quantiles::read(&path).unwrap().quantile(2.0), 0.5);
        std::fs::write(&path, "ACGT\t1\nACGT\tx\n").unwrap();
        let err = format!("{:#}", Quantiles::read(&path).err().unwrap());
        assert!(
            err.contains("ref.csv:2: \"x\" is not a finite number"),
            "{err}"
        );
    }
}
