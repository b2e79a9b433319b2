//! Fine-tuning a model on a user's own measurements, in the page (Train tab)
//! and from `promoscope tune`: the same functions for both.
//!
//! **Quick** mode keeps every network's trunk and hidden layers as they are
//! and re-fits each one's output layer (256 weights and a bias) by ridge
//! regression on its last hidden layer ([`Model::hidden_and_output`]), the
//! penalty chosen by leave-one-out cross-validation on the training rows
//! ([`Ridge`]). The caller computes the hidden layers once, on whatever
//! device it has (the page spreads the rows over its workers); the fit
//! itself takes a second or two. An ensemble's members are re-fitted one
//! by one on their own hidden layers, so each stays a network of its own.
//!
//! **Full** mode ([`FullRun`], [`full`]; cargo feature `train`) trains every
//! weight of each network further by the small-data recipe, through the
//! trainer's loop body ([`crate::training::Run`]).
//!
//! The rows are split by the `--holdout` rule ([`held_out`]): the report
//! scores the starting model, the tuned one and a k-mer ridge fitted to the
//! same training rows ([`KmerRidge`], the honest floor) on the held-out rows.
//!
//! [`Model::hidden_and_output`]: crate::Model::hidden_and_output
//! [`held_out`]: crate::measurements::held_out

use std::collections::BTreeMap;

use serde::Serialize;

use crate::ensemble::Prediction;
use crate::measurements::MeasurementTable;
use crate::metrics::{pearson, spearman};
use crate::ridge::{KmerRidge, Ridge, RidgeError};
use crate::weights::{self, WeightsError, WeightsInfo};

#[cfg(feature = "train")]
mod full;
#[cfg(feature = "train")]
pub use full::{FullInput, FullRun, TunedMember, full};

/// Fewest training rows a fine-tuning takes.
pub const MIN_TRAINING_ROWS: usize = 20;
/// Fewest held-out rows its report takes.
pub const MIN_HELD_OUT_ROWS: usize = 10;

/// Why a fine-tuning cannot run.
#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    /// Too few rows on one side of the split.
    #[error(
        "too few rows for the split: {training} to train on and {held_out} held out by the \
         {percent}% rule (at least {MIN_TRAINING_ROWS} and {MIN_HELD_OUT_ROWS}); load more \
         sequences or change the held-out share"
    )]
    TooFew {
        /// Training rows.
        training: usize,
        /// Held-out rows.
        held_out: usize,
        /// The held-out share.
        percent: u32,
    },
    /// Hidden layers that do not match the rows and the model.
    #[error("{values} hidden values are not {rows} rows of {members} members × {width}")]
    Shape {
        /// Values given.
        values: usize,
        /// Rows of the table.
        rows: usize,
        /// Networks of the model.
        members: usize,
        /// Hidden width + 1 (the output).
        width: usize,
    },
    /// A member the model does not have, or members that are not the model's.
    #[error("member {member} of a model of {members} network(s)")]
    Member {
        /// The member asked for (or the number given).
        member: usize,
        /// The model's networks.
        members: usize,
    },
    /// The measured values do not vary on one side: nothing to fit or score.
    #[error("the measured values are all the same on the {0} rows")]
    Constant(&'static str),
    /// A fit failed.
    #[error(transparent)]
    Ridge(#[from] RidgeError),
    /// A training run's checkpoint.
    #[cfg(feature = "train")]
    #[error(transparent)]
    Run(#[from] crate::training::RunError),
    /// The model's file.
    #[error(transparent)]
    Weights(#[from] WeightsError),
}

/// Pearson and Spearman on the held-out rows.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Scores {
    /// Pearson's r.
    pub pearson: f64,
    /// Spearman's ρ.
    pub spearman: f64,
}

/// What a fine-tuning did, on the held-out rows: the figures and the values
/// behind them (for the page's scatter plot).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// `quick`.
    pub mode: &'static str,
    /// Where the rows came from (a file name).
    pub source: String,
    /// The held-out share (`--holdout` percent).
    pub holdout: u32,
    /// Rows fitted on.
    pub training_rows: usize,
    /// Rows scored.
    pub held_out_rows: usize,
    /// The model as loaded.
    pub start: Scores,
    /// The fine-tuned model.
    pub tuned: Scores,
    /// The k-mer ridge fitted to the training rows.
    pub ridge: Scores,
    /// The longest k-mer of that ridge.
    pub ridge_k: usize,
    /// Each member's ridge penalty.
    pub alphas: Vec<f64>,
    /// Held-out rows: measured values.
    pub measured: Vec<f32>,
    /// Held-out rows: the starting model's predictions (members' mean).
    pub start_predictions: Vec<f32>,
    /// Held-out rows: the fine-tuned model's predictions (members' mean).
    pub tuned_predictions: Vec<f32>,
    /// Held-out rows: the fine-tuned model's spread (0 for one network).
    pub tuned_sd: Vec<f32>,
    /// Held-out rows: the k-mer ridge's predictions.
    pub ridge_predictions: Vec<f32>,
}

/// A fine-tuned model's file and its report.
#[derive(Debug)]
pub struct Tuned {
    /// The `.safetensors`, its card saying how it was made.
    pub bytes: Vec<u8>,
    /// The report.
    pub report: Report,
}

/// What the caller brings to a quick fine-tuning.
#[derive(Debug)]
pub struct QuickInput<'a> {
    /// The model's file, as loaded.
    pub bytes: &'a [u8],
    /// Every row's hidden layer and output for each member: `rows × members ×
    /// (head_width + 1)` values, [`crate::Ensemble::each`] over
    /// [`crate::Model::hidden_and_output`] read back.
    pub hidden: &'a [f32],
    /// The rows.
    pub table: &'a MeasurementTable,
    /// The held-out share, percent.
    pub holdout: u32,
    /// Where the rows came from, for the card (a file name).
    pub source: &'a str,
    /// Today, for the card.
    pub date: &'a str,
}

/// Quick fine-tuning (see the module doc).
pub fn quick(input: QuickInput<'_>) -> Result<Tuned, TuneError> {
    let info = weights::read_info(input.bytes)?;
    let (members, table) = (info.members, input.table);
    let width = info.config.head_width + 1;
    if input.hidden.len() != table.len() * members * width {
        return Err(TuneError::Shape {
            values: input.hidden.len(),
            rows: table.len(),
            members,
            width,
        });
    }
    let (train, test) = split(table, input.holdout)?;
    let train_values: Vec<f32> = train.iter().map(|&i| table.values[i]).collect();
    // Member k's hidden layer (without the output) of the rows `rows`.
    let features = |rows: &[usize], k: usize| -> Vec<f32> {
        rows.iter()
            .flat_map(|&i| {
                let start = (i * members + k) * width;
                input.hidden[start..start + width - 1].iter().copied()
            })
            .collect()
    };
    let mut replace = BTreeMap::new();
    let mut alphas = Vec::with_capacity(members);
    let (mut start, mut tuned) = (Vec::new(), Vec::new());
    for k in 0..members {
        let ridge = Ridge::fit(&features(&train, k), width - 1, &train_values)?;
        tuned.extend(ridge.predict(&features(&test, k)));
        start.extend(
            test.iter()
                .map(|&i| input.hidden[(i * members + k) * width + width - 1]),
        );
        let prefix = if members == 1 {
            String::new()
        } else {
            format!("member{k}.")
        };
        let weights = ridge.weights.iter().map(|&w| w as f32).collect();
        replace.insert(format!("{prefix}head.out.weight"), weights);
        replace.insert(
            format!("{prefix}head.out.bias"),
            vec![ridge.intercept as f32],
        );
        alphas.push(ridge.alpha);
    }
    let (start, tuned) = (by_row(&start, members), by_row(&tuned, members));
    let report = report(
        "quick",
        table,
        (&train, &test),
        (start, tuned),
        alphas,
        (input.source, input.holdout),
    )?;
    let card = card(&info, &report, input.date);
    let bytes = weights::with_tensors(input.bytes, &replace, &card)?;
    Ok(Tuned { bytes, report })
}

/// Each member's values for `n` rows one after the other (member-major) as
/// each row's members' mean and spread.
fn by_row(values: &[f32], members: usize) -> Vec<Prediction> {
    let n = values.len() / members.max(1);
    let rows: Vec<f32> = (0..n * members)
        .map(|j| values[(j % members) * n + j / members])
        .collect();
    Prediction::rows(&rows, members)
}

/// The report of a fine-tuning in `mode` on the table's `(training, held
/// out)` rows, from the held-out rows' predictions before and after, with
/// the k-mer ridge fitted to the same training rows.
fn report(
    mode: &'static str,
    table: &MeasurementTable,
    (train, test): (&[usize], &[usize]),
    (start, tuned): (Vec<Prediction>, Vec<Prediction>),
    alphas: Vec<f64>,
    (source, holdout): (&str, u32),
) -> Result<Report, TuneError> {
    let values = |rows: &[usize]| -> Vec<f32> { rows.iter().map(|&i| table.values[i]).collect() };
    let sequences = |rows: &[usize]| -> Vec<String> {
        rows.iter().map(|&i| table.sequences[i].clone()).collect()
    };
    let measured = values(test);
    let kmers = KmerRidge::fit(&sequences(train), &values(train), KmerRidge::PAGE_K)?;
    let ridge_predictions = kmers.predict(&sequences(test));
    let means = |p: &[Prediction]| -> Vec<f32> { p.iter().map(|p| p.mean).collect() };
    Ok(Report {
        mode,
        source: source.to_string(),
        holdout,
        training_rows: train.len(),
        held_out_rows: test.len(),
        start: scores(&means(&start), &measured),
        tuned: scores(&means(&tuned), &measured),
        ridge: scores(&ridge_predictions, &measured),
        ridge_k: kmers.k,
        alphas,
        start_predictions: means(&start),
        tuned_predictions: means(&tuned),
        tuned_sd: tuned.iter().map(|p| p.sd).collect(),
        ridge_predictions,
        measured,
    })
}

/// The rows a fine-tuning fits on and those it scores on, by the
/// `--holdout percent` rule: `(training, held out)` row indices, or why the
/// table cannot be split usefully (too few rows, values that do not vary).
pub fn split(
    table: &MeasurementTable,
    percent: u32,
) -> Result<(Vec<usize>, Vec<usize>), TuneError> {
    let held = table.held_out(percent);
    let side = |out: bool| -> Vec<usize> { (0..table.len()).filter(|&i| held[i] == out).collect() };
    let (train, test) = (side(false), side(true));
    if train.len() < MIN_TRAINING_ROWS || test.len() < MIN_HELD_OUT_ROWS {
        return Err(TuneError::TooFew {
            training: train.len(),
            held_out: test.len(),
            percent,
        });
    }
    for (name, rows) in [("training", &train), ("held-out", &test)] {
        let first = table.values[rows[0]];
        if rows.iter().all(|&i| table.values[i] == first) {
            return Err(TuneError::Constant(name));
        }
    }
    Ok((train, test))
}

/// Pearson and Spearman of `predicted` against `measured` (NaN where one of
/// them does not vary).
fn scores(predicted: &[f32], measured: &[f32]) -> Scores {
    let wide = |v: &[f32]| -> Vec<f64> { v.iter().map(|&x| f64::from(x)).collect() };
    let (p, m) = (wide(predicted), wide(measured));
    Scores {
        pearson: pearson(&p, &m).unwrap_or(f64::NAN),
        spearman: spearman(&p, &m).unwrap_or(f64::NAN),
    }
}

/// The tuned model's card: the starting model's, less the figures that no
/// longer hold, plus how it was tuned and what it scores.
fn card(info: &WeightsInfo, report: &Report, date: &str) -> BTreeMap<String, String> {
    let mut card = info.metadata.clone();
    for stale in ["interval_95", "validation", "command", "date"] {
        card.remove(stale);
    }
    let figures = |s: &Scores| format!("Pearson {:.3}, Spearman {:.3}", s.pearson, s.spearman);
    let networks = if info.members == 1 {
        "the network".to_string()
    } else {
        format!("each of the {} networks", info.members)
    };
    let how = match report.mode {
        "quick" => format!(
            "quick mode on {date}: the output layer of {networks} re-fitted by ridge regression \
             (penalty by leave-one-out cross-validation) on the last hidden layer, everything \
             else as trained"
        ),
        _ => format!(
            "full mode on {date}: every weight of {networks} trained further by the small-data \
             recipe (Adam on MSE, 4 passes in batches of 64, the last at a lower rate, the weights \
             of passes 3 and 4 averaged)"
        ),
    };
    card.insert(
        "fine_tuned".into(),
        format!(
            "{how}, on {} sequences of {} ({} held out by the --holdout {} rule)",
            report.training_rows, report.source, report.held_out_rows, report.holdout,
        ),
    );
    card.insert(
        "validation".into(),
        format!(
            "On the {} held-out sequences of {}: {} (before fine-tuning {}; a ridge on 1- to \
             {}-mers fitted to the same training rows {})",
            report.held_out_rows,
            report.source,
            figures(&report.tuned),
            figures(&report.start),
            report.ridge_k,
            figures(&report.ridge),
        ),
    );
    if info.members > 1 {
        card.insert(
            "spread".into(),
            "The networks' standard deviation; each network was fine-tuned on its own, and how \
             the spread relates to the error was not measured on these data."
                .into(),
        );
    }
    card.insert("date".into(), date.to_string());
    card
}

#[cfg(test)]
mod tests {
    use burn::prelude::*;

    use super::*;
    use crate::encoding::one_hot;
    use crate::weights::{Precision, load_ensemble, members_to_bytes};
    use crate::{Ensemble, ModelConfig};

    /// A table whose values are a linear function of a tiny ensemble's
    /// hidden layers: quick mode must find it, and the file it writes must
    /// predict what its report says.
    #[test]
    fn quick_refits_each_members_output_and_the_file_predicts_the_report() {
        let device = Device::flex();
        let config = ModelConfig::tiny().with_seq_len(64);
        let members: Vec<_> = (0..2).map(|_| config.init(&device)).collect();
        let bytes = members_to_bytes(&members, &config, &BTreeMap::new(), Precision::I8).unwrap();
        let (ensemble, _) = load_ensemble(&bytes, &device).unwrap();
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(7);
        let sequences: Vec<String> = (0..120)
            .map(|_| {
                (0..64)
                    .map(|_| b"ACGT"[rand::Rng::random_range(&mut rng, 0..4)] as char)
                    .collect()
            })
            .collect();
        let x = Tensor::<3>::from_data(one_hot(&sequences, 64).unwrap(), &device);
        let hidden: Vec<f32> = ensemble
            .each(|m| Ok::<_, ()>(m.hidden_and_output(x.clone())))
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let width = config.head_width + 1;
        // The value: a fixed mix of member 0's hidden units, plus 1.
        let values: Vec<f32> = (0..sequences.len())
            .map(|i| {
                let units = &hidden[i * 2 * width..i * 2 * width + width - 1];
                let mix: f32 = units
                    .iter()
                    .enumerate()
                    .map(|(j, h)| ((j * 7) % 5) as f32 * h - 2.0 * h)
                    .sum();
                mix + 1.0
            })
            .collect();
        let table = MeasurementTable {
            sequences: sequences.clone(),
            values,
            ..MeasurementTable::default()
        };
        let run = |hidden: &[f32], table: &MeasurementTable| {
            quick(QuickInput {
                bytes: &bytes,
                hidden,
                table,
                holdout: 25,
                source: "t.tsv",
                date: "2026-12-05",
            })
        };
        let tuned = run(&hidden, &table).unwrap();
        let report = &tuned.report;
        assert_eq!(report.training_rows + report.held_out_rows, 120);
        assert!(report.tuned.pearson > 0.9, "{:?}", report.tuned);
        assert!(report.tuned.pearson > report.start.pearson);
        // The written file predicts the report's held-out values.
        let (tuned_model, info) = load_ensemble(&tuned.bytes, &device).unwrap();
        assert_eq!(info.members, 2);
        assert!(info.metadata["fine_tuned"].contains("each of the 2 networks"));
        let held = table.held_out(25);
        let test: Vec<String> = (0..120)
            .filter(|&i| held[i])
            .map(|i| sequences[i].clone())
            .collect();
        let x = Tensor::<3>::from_data(one_hot(&test, 64).unwrap(), &device);
        let rows: Vec<f32> = Ensemble::forward(&tuned_model, x)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let means: Vec<f32> = Prediction::rows(&rows, 2).iter().map(|p| p.mean).collect();
        assert!(crate::metrics::max_abs_diff(&means, &report.tuned_predictions) < 1e-4);
        // Too few rows on a side, and hidden values of the wrong shape.
        let short = MeasurementTable {
            sequences: sequences[..20].to_vec(),
            values: table.values[..20].to_vec(),
            ..MeasurementTable::default()
        };
        let err = run(&hidden[..20 * 2 * width], &short).unwrap_err();
        assert!(
            err.to_string().starts_with("too few rows for the split"),
            "{err}"
        );
        let err = run(&hidden[1..], &table).unwrap_err();
        assert!(matches!(err, TuneError::Shape { .. }), "{err}");
    }
}
