//! `promoscope evaluate`: metrics overall, per subset, and the DREAM 2022 scores.

use std::collections::BTreeMap;

use anyhow::Result;
use burn::prelude::*;
use promoscope_model::Model;
use promoscope_model::metrics::{self, DreamScores, SubsetValues, pair_differences};
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
    let (predicted, measured) = values(data, &predictions(&scorer.model, data, batch_size, device));
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
            &predictions(&scorer.model, &pairs.alt, batch_size, device),
        );
        let (ref_p, ref_m) = values(
            &pairs.reference,
            &predictions(&scorer.model, &pairs.reference, batch_size, device),
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
    Ok(Evaluation {
        overall: Scores::of(&predicted, &measured)?,
        subsets,
        dream,
        missing_dream_subsets,
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
    out
}
