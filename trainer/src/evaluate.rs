//! `promoscope evaluate`: metrics overall, per subset, and the DREAM 2022 scores.

use std::collections::BTreeMap;

use anyhow::Result;
use burn::prelude::*;
use promoscope_model::metrics::{self, Calibration, DreamScores, SubsetValues, pair_differences};
use promoscope_model::{Ensemble, Model, Prediction};
use serde::Serialize;

use crate::data::{Dataset, Pairs};
use crate::predict::Scorer;

/// Agreement of predictions with measurements.
#[derive(Clone, Debug, Serialize)]
pub struct Scores {
    /// Points.
    pub n: usize,
    /// Pearson's r.
    pub pearson: f64,
    /// Spearman's ρ.
    pub spearman: f64,
    /// Mean squared error.
    pub mse: f64,
}

impl Scores {
    fn of(predicted: &[f64], measured: &[f64]) -> Result<Self> {
        Ok(Scores {
            n: predicted.len(),
            pearson: metrics::pearson(predicted, measured)?,
            spearman: metrics::spearman(predicted, measured)?,
            mse: metrics::mse(predicted, measured)?,
        })
    }
}

/// Everything `evaluate` reports.
#[derive(Clone, Debug, Serialize)]
pub struct Evaluation {
    /// All sequences of the data file.
    pub overall: Scores,
    /// Per `subset` of the data file, and per pair subset (on `alt - ref` differences).
    pub subsets: BTreeMap<String, Scores>,
    /// The official scores, when every DREAM subset is present.
    pub dream: Option<DreamScores>,
    /// DREAM subsets that are absent (why `dream` is empty).
    pub missing_dream_subsets: Vec<String>,
    /// An ensemble's members: how its spread tracks its error on all
    /// sequences (absent for one network).
    pub calibration: Option<Calibration>,
    /// Each member alone on all sequences (an ensemble's).
    pub members: Vec<Scores>,
}

/// Metadata key of an ensemble's 95% interval, in spreads: mean ± that many
/// spreads held 95% of the measurements it was fitted on (split-conformal).
pub const INTERVAL_KEY: &str = "interval_95";

/// The ensemble's 95% interval in spreads, from its file (2 when it names none).
pub fn interval_spreads(scorer: &Scorer) -> Result<f64> {
    match scorer.info.metadata.get(INTERVAL_KEY) {
        None => Ok(2.0),
        Some(text) => match text.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
            _ => anyhow::bail!(
                "the weights' `{INTERVAL_KEY}` metadata {text:?} is not a positive number"
            ),
        },
    }
}

/// Predictions of `model` (eval mode) for every row of `data`.
pub fn predictions(model: &Model, data: &Dataset, batch_size: usize, device: &Device) -> Vec<f64> {
    let indices: Vec<usize> = (0..data.len()).collect();
    indices
        .chunks(batch_size)
        .flat_map(|chunk| {
            let (x, _) = data.batch(chunk, device);
            model
                .forward(x)
                .into_data()
                .try_into_vec_as::<f32>()
                .expect("predictions are floats")
        })
        .map(f64::from)
        .collect()
}

/// Every member's predictions for every row of `data`, and each row's mean
/// and spread.
fn ensemble_predictions(
    ensemble: &Ensemble,
    data: &Dataset,
    batch_size: usize,
    device: &Device,
) -> (Vec<Vec<f64>>, Vec<Prediction>) {
    let members: Vec<Vec<f64>> = ensemble
        .members()
        .iter()
        .map(|model| predictions(model, data, batch_size, device))
        .collect();
    let rows = (0..data.len())
        .map(|i| {
            let row: Vec<f32> = members.iter().map(|m| m[i] as f32).collect();
            Prediction::of(&row)
        })
        .collect();
    (members, rows)
}

fn means(rows: &[Prediction]) -> Vec<f64> {
    rows.iter().map(|p| f64::from(p.mean)).collect()
}

fn values(data: &Dataset, predicted: &[f64]) -> (Vec<f64>, Vec<f64>) {
    (
        predicted.to_vec(),
        data.labels.iter().map(|&v| f64::from(v)).collect(),
    )
}

/// Groups `(predicted, measured)` by each row's subset.
fn by_subset(
    subsets: &[String],
    predicted: &[f64],
    measured: &[f64],
    out: &mut BTreeMap<String, SubsetValues>,
) {
    for ((subset, p), m) in subsets.iter().zip(predicted).zip(measured) {
        let entry = out.entry(subset.to_ascii_lowercase()).or_default();
        entry.predicted.push(*p);
        entry.measured.push(*m);
    }
}

/// Scores `data` (and `pairs`) with `scorer`.
pub fn evaluate(
    scorer: &Scorer,
    data: &Dataset,
    pairs: Option<&Pairs>,
    batch_size: usize,
) -> Result<Evaluation> {
    let device = &scorer.selected.device;
    let ensemble = &scorer.ensemble;
    let (members, rows) = ensemble_predictions(ensemble, data, batch_size, device);
    let (predicted, measured) = values(data, &means(&rows));
    let mut groups = BTreeMap::new();
    groups.insert(
        "all".to_string(),
        SubsetValues {
            predicted: predicted.clone(),
            measured: measured.clone(),
        },
    );
    by_subset(&data.subsets, &predicted, &measured, &mut groups);
    if let Some(pairs) = pairs {
        let (alt_p, alt_m) = values(
            &pairs.alt,
            &means(&ensemble_predictions(ensemble, &pairs.alt, batch_size, device).1),
        );
        let (ref_p, ref_m) = values(
            &pairs.reference,
            &means(&ensemble_predictions(ensemble, &pairs.reference, batch_size, device).1),
        );
        let (dp, dm) = (
            pair_differences(&alt_p, &ref_p),
            pair_differences(&alt_m, &ref_m),
        );
        by_subset(&pairs.alt.subsets, &dp, &dm, &mut groups);
    }
    let subsets = groups
        .iter()
        .filter(|(name, _)| name.as_str() != "all")
        .map(|(name, v)| Ok((name.clone(), Scores::of(&v.predicted, &v.measured)?)))
        .collect::<Result<BTreeMap<_, _>>>()?;
    let missing_dream_subsets: Vec<String> = metrics::DREAM_SUBSETS
        .iter()
        .filter(|(name, _)| !groups.contains_key(*name))
        .map(|(name, _)| name.to_string())
        .collect();
    let dream = if missing_dream_subsets.is_empty() {
        Some(metrics::dream_scores(&groups)?)
    } else {
        None
    };
    let (calibration, members) = if scorer.has_spread() {
        let spread: Vec<f64> = rows.iter().map(|p| f64::from(p.sd)).collect();
        let calibration =
            metrics::calibration(&predicted, &spread, &measured, interval_spreads(scorer)?)?;
        let members = members
            .iter()
            .map(|m| Scores::of(m, &measured))
            .collect::<Result<_>>()?;
        (Some(calibration), members)
    } else {
        (None, Vec::new())
    };
    Ok(Evaluation {
        overall: Scores::of(&predicted, &measured)?,
        subsets,
        dream,
        missing_dream_subsets,
        calibration,
        members,
    })
}

/// The evaluation as a terminal table.
pub fn table(evaluation: &Evaluation) -> String {
    let mut out = format!(
        "{:<20} {:>8} {:>9} {:>9} {:>9}\n",
        "subset", "n", "pearson", "spearman", "mse"
    );
    let row = |name: &str, s: &Scores| {
        format!(
            "{name:<20} {:>8} {:>9.4} {:>9.4} {:>9.4}\n",
            s.n, s.pearson, s.spearman, s.mse
        )
    };
    out.push_str(&row("all", &evaluation.overall));
    for (name, scores) in &evaluation.subsets {
        out.push_str(&row(name, scores));
    }
    match &evaluation.dream {
        Some(d) => out.push_str(&format!(
            "DREAM 2022 score: Pearson {:.4}, Spearman {:.4}\n",
            d.pearson_score, d.spearman_score
        )),
        None => out.push_str(&format!(
            "DREAM 2022 score: needs subsets {}\n",
            evaluation.missing_dream_subsets.join(", ")
        )),
    }
    for (k, scores) in evaluation.members.iter().enumerate() {
        out.push_str(&row(&format!("member {k}"), scores));
    }
    if let Some(c) = &evaluation.calibration {
        out.push_str(&format!(
            "spread: mean {:.3}; Spearman(|error|, spread) {:.3} (95% interval {:.3} to {:.3}); \
             mean |error| {:.3} in the top fifth of spread, {:.3} in the bottom fifth; \
             inside mean ± 2 sd {:.1}%, inside the file's 95% interval {:.1}%; \
             95% inside mean ± {:.2} sd\n",
            c.mean_spread,
            c.spearman_error_spread,
            c.spearman_interval[0],
            c.spearman_interval[1],
            c.error_top_quintile,
            c.error_bottom_quintile,
            100.0 * c.coverage_2sd,
            100.0 * c.coverage_interval,
            c.scale_95
        ));
    }
    out
}
