//! `promoscope predict` and `promoscope ism`: scores with trained weights.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use promoscope_model::encoding::{one_hot, reverse_complement};
use promoscope_model::ism::Mutagenesis;
use promoscope_model::weights::{self, WeightsInfo};
use promoscope_model::{Backend, Model, SelectedDevice, device::select_device};

use crate::data::{Named, SequenceReader};
use crate::io::write_atomic;

/// A model ready to score, and where it runs.
pub struct Scorer {
    /// The network in eval mode.
    pub model: Model,
    /// Its weights file's config and metadata.
    pub info: WeightsInfo,
    /// The device.
    pub selected: SelectedDevice,
}

impl Scorer {
    /// Loads `weights` onto `backend`.
    pub fn load(weights_path: &Path, backend: &str) -> Result<Self> {
        let backend: Backend = backend.parse()?;
        let selected = select_device(backend)?;
        let bytes = std::fs::read(weights_path)
            .with_context(|| format!("cannot read weights {}", weights_path.display()))?;
        let (model, info) = weights::load(&bytes, &selected.device)
            .with_context(|| format!("{}", weights_path.display()))?;
        Ok(Scorer {
            model,
            info,
            selected,
        })
    }

    /// Predictions for a batch of sequences (each at most `seq_len` long).
    pub fn score<S: AsRef<str>>(&self, sequences: &[S]) -> Result<Vec<f32>> {
        let x = one_hot(sequences, self.info.config.seq_len)?;
        let x = Tensor::<3>::from_data(x, &self.selected.device);
        Ok(self.model.forward(x).into_data().try_into_vec_as::<f32>()?)
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
}

/// Scores every sequence of `input` into a CSV at `out` (stdout for `-`);
/// returns (scored, skipped).
pub fn predict(
    scorer: &Scorer,
    input: &Path,
    out: &Path,
    options: &PredictOptions,
) -> Result<(usize, usize)> {
    let to_stdout = out.as_os_str() == "-";
    let mut csv: Vec<u8> = Vec::new();
    let header = if options.rc_average {
        "id,prediction,prediction_rc_average\n"
    } else {
        "id,prediction\n"
    };
    csv.extend_from_slice(header.as_bytes());
    let (mut scored, mut skipped) = (0, 0);
    let mut batch: Vec<Named> = Vec::with_capacity(options.batch_size);
    let mut flush = |batch: &mut Vec<Named>, csv: &mut Vec<u8>| -> Result<()> {
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
            write!(csv, "{},{}", named.id, forward[i])?;
            if options.rc_average {
                write!(csv, ",{}", (forward[i] + reverse[i]) / 2.0)?;
            }
            csv.push(b'\n');
        }
        scored += batch.len();
        batch.clear();
        if to_stdout {
            std::io::stdout().write_all(csv)?;
            csv.clear();
        }
        Ok(())
    };
    let seq_len = scorer.info.config.seq_len;
    for record in SequenceReader::open(input)? {
        let record = record?;
        let problem = match promoscope_model::encoding::encode(&record.sequence) {
            Err(e) => Some(e.to_string()),
            Ok(codes) if codes.len() > seq_len => Some(format!(
                "{} bases, longer than the model's {seq_len}",
                codes.len()
            )),
            Ok(_) => None,
        };
        if let Some(problem) = problem {
            if options.skip_bad {
                skipped += 1;
                continue;
            }
            bail!("{}: sequence {}: {problem}", input.display(), record.id);
        }
        batch.push(record);
        if batch.len() == options.batch_size {
            flush(&mut batch, &mut csv)?;
        }
    }
    flush(&mut batch, &mut csv)?;
    if !to_stdout {
        write_atomic(out, &csv)?;
    }
    Ok((scored, skipped))
}

/// Every single-base substitution of `sequence`, scored, as a TSV table
/// (position is 1-based).
pub fn ism_table(scorer: &Scorer, sequence: &str, batch_size: usize) -> Result<String> {
    let seq_len = scorer.info.config.seq_len;
    let mutagenesis = Mutagenesis::new(sequence)?;
    if mutagenesis.len() > seq_len {
        bail!(
            "sequence of {} bases is longer than the model's {seq_len}",
            mutagenesis.len()
        );
    }
    let x = Tensor::<3>::from_data(mutagenesis.one_hot(seq_len)?, &scorer.selected.device);
    let [rows, _, _] = x.dims();
    let mut predictions = Vec::with_capacity(rows);
    for start in (0..rows).step_by(batch_size.max(1)) {
        let chunk = x.clone().narrow(0, start, batch_size.min(rows - start));
        predictions.extend(
            scorer
                .model
                .forward(chunk)
                .into_data()
                .try_into_vec_as::<f32>()?,
        );
    }
    let (reference, table) = mutagenesis.score(&predictions);
    let mut tsv =
        format!("# reference prediction {reference}\nposition\tref\talt\tprediction\tdelta\n");
    for row in table {
        let s = row.substitution;
        tsv.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            s.position + 1,
            s.reference,
            s.alternative,
            row.prediction,
            row.delta
        ));
    }
    Ok(tsv)
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
