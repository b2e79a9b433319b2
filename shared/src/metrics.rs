//! Regression metrics and the DREAM 2022 challenge's official scores.

/// Why a metric cannot be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricError {
    /// Predictions and measurements differ in count.
    #[error("{predicted} predictions but {measured} measurements")]
    LengthMismatch {
        /// Number of predictions.
        predicted: usize,
        /// Number of measurements.
        measured: usize,
    },
    /// Fewer than two points, or one side constant: the correlation is undefined.
    #[error("correlation is undefined for {0} points or a constant series")]
    Undefined(usize),
    /// A subset the official score needs is absent.
    #[error("the DREAM score needs subset {0:?}, which is missing")]
    MissingSubset(&'static str),
}

fn check(predicted: &[f64], measured: &[f64]) -> Result<(), MetricError> {
    if predicted.len() != measured.len() {
        return Err(MetricError::LengthMismatch {
            predicted: predicted.len(),
            measured: measured.len(),
        });
    }
    Ok(())
}

/// The largest `|a − b|` over two lists of the same length, and infinity
/// when any value of either is not finite: the distance every tolerance check
/// compares (golden traces, ISM, backends against each other). `f32::max`
/// drops NaN, so a fold with it would call a network that outputs NaN exact;
/// with this, `diff <= tolerance` fails and `diff > tolerance` holds.
///
/// # Panics
/// If the lengths differ.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "compared lists differ in length");
    a.iter().zip(b).fold(0.0, |worst, (x, y)| {
        if x.is_finite() && y.is_finite() {
            worst.max((x - y).abs())
        } else {
            f32::INFINITY
        }
    })
}

/// Pearson's correlation coefficient.
pub fn pearson(predicted: &[f64], measured: &[f64]) -> Result<f64, MetricError> {
    check(predicted, measured)?;
    let n = predicted.len();
    if n < 2 {
        return Err(MetricError::Undefined(n));
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / n as f64;
    let (mp, mm) = (mean(predicted), mean(measured));
    let (mut cov, mut vp, mut vm) = (0.0, 0.0, 0.0);
    for (p, m) in predicted.iter().zip(measured) {
        cov += (p - mp) * (m - mm);
        vp += (p - mp) * (p - mp);
        vm += (m - mm) * (m - mm);
    }
    if vp == 0.0 || vm == 0.0 {
        return Err(MetricError::Undefined(n));
    }
    Ok(cov / (vp * vm).sqrt())
}

/// Ranks from 1, ties sharing the average of their ranks (as scipy's `rankdata`).
pub fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        let rank = (start + end + 1) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

/// Spearman's rank correlation (Pearson of average ranks).
pub fn spearman(predicted: &[f64], measured: &[f64]) -> Result<f64, MetricError> {
    check(predicted, measured)?;
    pearson(&average_ranks(predicted), &average_ranks(measured))
}

/// Mean squared error.
pub fn mse(predicted: &[f64], measured: &[f64]) -> Result<f64, MetricError> {
    check(predicted, measured)?;
    if predicted.is_empty() {
        return Err(MetricError::Undefined(0));
    }
    let sum: f64 = predicted
        .iter()
        .zip(measured)
        .map(|(p, m)| (p - m) * (p - m))
        .sum();
    Ok(sum / predicted.len() as f64)
}

/// The test subsets of the DREAM 2022 challenge and their weights in the
/// official score, in the organisers' order.
pub const DREAM_SUBSETS: [(&str, f64); 9] = [
    ("all", 1.0),
    ("high", 0.3),
    ("low", 0.3),
    ("yeast", 0.3),
    ("random", 0.3),
    ("challenging", 0.5),
    ("snv", 1.25),
    ("motif_perturbation", 0.3),
    ("motif_tiling", 0.4),
];

/// Subsets scored on pairs: the correlation is over `alt - ref` differences.
pub const DREAM_PAIR_SUBSETS: [&str; 3] = ["snv", "motif_perturbation", "motif_tiling"];

/// Predictions and measurements of one subset; for pair subsets, already the
/// differences `alt - ref` (see [`pair_differences`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SubsetValues {
    /// Predicted values (or differences).
    pub predicted: Vec<f64>,
    /// Measured values (or differences).
    pub measured: Vec<f64>,
}

/// `alt - ref` element by element.
pub fn pair_differences(alt: &[f64], reference: &[f64]) -> Vec<f64> {
    alt.iter().zip(reference).map(|(a, r)| a - r).collect()
}

/// One subset's correlations.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SubsetScore {
    /// Subset name.
    pub subset: &'static str,
    /// Points (or pairs).
    pub n: usize,
    /// Pearson's r.
    pub pearson: f64,
    /// Spearman's ρ.
    pub spearman: f64,
}

/// The official DREAM 2022 scores.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct DreamScores {
    /// Σ wᵢ·rᵢ² / Σ wᵢ (weights sum to 4.65).
    pub pearson_score: f64,
    /// Σ wᵢ·ρᵢ / Σ wᵢ.
    pub spearman_score: f64,
    /// The correlations behind them, in [`DREAM_SUBSETS`] order.
    pub subsets: Vec<SubsetScore>,
}

/// Scores every subset of [`DREAM_SUBSETS`], looked up by name in `subsets`.
pub fn dream_scores(
    subsets: &std::collections::BTreeMap<String, SubsetValues>,
) -> Result<DreamScores, MetricError> {
    let total: f64 = DREAM_SUBSETS.iter().map(|(_, w)| w).sum();
    let (mut pearson_score, mut spearman_score) = (0.0, 0.0);
    let mut scores = Vec::with_capacity(DREAM_SUBSETS.len());
    for (name, weight) in DREAM_SUBSETS {
        let values = subsets.get(name).ok_or(MetricError::MissingSubset(name))?;
        let r = pearson(&values.predicted, &values.measured)?;
        let rho = spearman(&values.predicted, &values.measured)?;
        pearson_score += weight * r * r;
        spearman_score += weight * rho;
        scores.push(SubsetScore {
            subset: name,
            n: values.predicted.len(),
            pearson: r,
            spearman: rho,
        });
    }
    Ok(DreamScores {
        pearson_score: pearson_score / total,
        spearman_score: spearman_score / total,
        subsets: scores,
    })
}

/// How well an ensemble's spread tracks its error on measured sequences.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Calibration {
    /// Sequences.
    pub n: usize,
    /// Spearman's ρ between |error| and spread: above 0 when larger spreads
    /// go with larger errors.
    pub spearman_error_spread: f64,
    /// Its 95% interval: the 2.5th and 97.5th percentiles over
    /// [`BOOTSTRAP_RESAMPLES`] bootstrap resamples of the sequences (seeded).
    pub spearman_interval: [f64; 2],
    /// Mean |error| of the fifth of sequences with the largest spread...
    pub error_top_quintile: f64,
    /// ...and of the fifth with the smallest.
    pub error_bottom_quintile: f64,
    /// The mean spread.
    pub mean_spread: f64,
    /// The share of measurements inside mean ± 2·spread.
    pub coverage_2sd: f64,
    /// The share inside the file's 95% interval, mean ± `interval`·spread
    /// (2 spreads when it names none).
    pub coverage_interval: f64,
    /// The scale `s` that puts 95% of these measurements inside
    /// mean ± `s`·spread (a split-conformal fit: fit it on one part, check
    /// `coverage_interval` on another).
    pub scale_95: f64,
}

/// Bootstrap resamples behind [`Calibration::spearman_interval`].
pub const BOOTSTRAP_RESAMPLES: usize = 1000;

/// [`Calibration`] of `predicted` means with spreads `spread` against
/// `measured`, with the file's 95% interval of `interval` spreads.
pub fn calibration(
    predicted: &[f64],
    spread: &[f64],
    measured: &[f64],
    interval: f64,
) -> Result<Calibration, MetricError> {
    use rand::{Rng, SeedableRng};
    check(predicted, measured)?;
    check(spread, measured)?;
    let n = measured.len();
    if n < 5 {
        return Err(MetricError::Undefined(n));
    }
    let error: Vec<f64> = predicted
        .iter()
        .zip(measured)
        .map(|(p, m)| (p - m).abs())
        .collect();
    let rho = spearman(&error, spread)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut resampled: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .filter_map(|_| {
            let pick: Vec<usize> = (0..n).map(|_| rng.random_range(0..n)).collect();
            let e: Vec<f64> = pick.iter().map(|&i| error[i]).collect();
            let s: Vec<f64> = pick.iter().map(|&i| spread[i]).collect();
            spearman(&e, &s).ok()
        })
        .collect();
    resampled.sort_by(f64::total_cmp);
    let at = |q: f64| resampled[((resampled.len() - 1) as f64 * q).round() as usize];
    if resampled.is_empty() {
        return Err(MetricError::Undefined(n));
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| spread[a].total_cmp(&spread[b]));
    let fifth = n / 5;
    let mean_error =
        |rows: &[usize]| rows.iter().map(|&i| error[i]).sum::<f64>() / rows.len() as f64;
    let inside = |k: f64| (0..n).filter(|&i| error[i] <= k * spread[i]).count() as f64 / n as f64;
    let mut ratios: Vec<f64> = (0..n)
        .map(|i| {
            if spread[i] > 0.0 {
                error[i] / spread[i]
            } else {
                f64::INFINITY
            }
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    Ok(Calibration {
        n,
        spearman_error_spread: rho,
        spearman_interval: [at(0.025), at(0.975)],
        error_top_quintile: mean_error(&order[n - fifth..]),
        error_bottom_quintile: mean_error(&order[..fifth]),
        mean_spread: spread.iter().sum::<f64>() / n as f64,
        coverage_2sd: inside(2.0),
        coverage_interval: inside(interval),
        scale_95: ratios[((n as f64 * 0.95).ceil() as usize).clamp(1, n) - 1],
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn max_abs_diff_is_infinite_on_any_non_finite_value() {
        assert_eq!(max_abs_diff(&[1.0, 2.0], &[1.5, 1.0]), 1.0);
        assert_eq!(max_abs_diff(&[], &[]), 0.0);
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            for (a, b) in [
                ([1.0, bad], [1.0, 2.0]),
                ([1.0, 2.0], [1.0, bad]),
                ([bad; 2], [bad; 2]),
            ] {
                let diff = max_abs_diff(&a, &b);
                assert_eq!(diff, f32::INFINITY, "{a:?} vs {b:?}");
                assert!(diff > 1e-4, "a tolerance check passes {a:?} vs {b:?}");
            }
        }
    }

    const X: [f64; 6] = [1.0, 2.0, 2.0, 4.0, 7.0, 3.0];
    const Y: [f64; 6] = [2.0, 1.0, 4.0, 4.0, 9.0, 0.5];

    // Values from scipy 1.17.1: pearsonr(X, Y), spearmanr(X, Y), rankdata(X).
    /// Spreads that grow with the error calibrate; spreads unrelated to it
    /// do not; the scale puts 95% inside.
    #[test]
    fn calibration_tells_a_spread_that_tracks_the_error_from_noise() {
        let n = 200;
        let measured: Vec<f64> = (0..n).map(|i| (i % 7) as f64).collect();
        // Errors of ±(i mod 10)/10, spreads equal to them plus a little.
        let error: Vec<f64> = (0..n).map(|i| (i % 10) as f64 / 10.0).collect();
        let predicted: Vec<f64> = (0..n)
            .map(|i| measured[i] + if i % 2 == 0 { error[i] } else { -error[i] })
            .collect();
        let tracking: Vec<f64> = error.iter().map(|e| e + 0.05).collect();
        let c = calibration(&predicted, &tracking, &measured, 1.0).unwrap();
        assert!(c.spearman_error_spread > 0.99, "{c:?}");
        assert!(c.spearman_interval[0] > 0.9 && c.spearman_interval[1] <= 1.0);
        assert!(c.error_top_quintile > 5.0 * c.error_bottom_quintile);
        assert_eq!((c.coverage_2sd, c.coverage_interval), (1.0, 1.0));
        // 95% of errors within s spreads: 9/10 < s·(9/10 + 1/20)...
        assert!(c.scale_95 > 0.9 && c.scale_95 < 1.0, "{}", c.scale_95);
        let half = calibration(&predicted, &tracking, &measured, 0.25).unwrap();
        assert!(half.coverage_interval < 1.0);

        // Spreads in a cycle of their own: no relation to the error.
        let noise: Vec<f64> = (0..n).map(|i| 0.1 + (i % 3) as f64 / 10.0).collect();
        let c = calibration(&predicted, &noise, &measured, 1.0).unwrap();
        assert!(c.spearman_error_spread.abs() < 0.1, "{c:?}");
        assert!(c.spearman_interval[0] < 0.0 && c.spearman_interval[1] > 0.0);
        assert!(calibration(&predicted[..4], &noise[..4], &measured[..4], 1.0).is_err());
        assert!(calibration(&predicted, &noise[..10], &measured, 1.0).is_err());
    }

    #[test]
    fn pearson_matches_scipy() {
        assert!((pearson(&X, &Y).unwrap() - 0.8313827910542487).abs() < 1e-12);
    }

    #[test]
    fn spearman_averages_tied_ranks_like_scipy() {
        assert_eq!(average_ranks(&X), [1.0, 2.5, 2.5, 5.0, 6.0, 4.0]);
        assert!((spearman(&X, &Y).unwrap() - 0.4852941176470589).abs() < 1e-12);
    }

    #[test]
    fn mse_by_hand() {
        // (1 + 1 + 4 + 0 + 4 + 6.25) / 6
        assert!((mse(&X, &Y).unwrap() - 16.25 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn undefined_and_mismatched_inputs_are_errors() {
        assert_eq!(pearson(&[1.0], &[2.0]), Err(MetricError::Undefined(1)));
        assert_eq!(
            pearson(&[1.0, 1.0], &[2.0, 3.0]),
            Err(MetricError::Undefined(2))
        );
        assert_eq!(
            spearman(&[1.0, 2.0], &[2.0]),
            Err(MetricError::LengthMismatch {
                predicted: 2,
                measured: 1
            })
        );
    }

    /// Every subset perfectly correlated except one: the score is worked by hand.
    #[test]
    fn dream_scores_weigh_subsets_officially() {
        let perfect = SubsetValues {
            predicted: vec![1.0, 2.0, 3.0],
            measured: vec![2.0, 4.0, 7.0],
        };
        let mut subsets: BTreeMap<String, SubsetValues> = DREAM_SUBSETS
            .iter()
            .map(|(name, _)| (name.to_string(), perfect.clone()))
            .collect();
        // SNV pairs: differences alt - ref anti-correlated with the measured ones.
        let predicted = pair_differences(&[3.0, 5.0, 6.0], &[1.0, 2.0, 2.0]); // 2, 3, 4
        let measured = pair_differences(&[1.0, 1.0, 0.0], &[0.0, 1.0, 1.0]); // 1, 0, -1
        subsets.insert(
            "snv".into(),
            SubsetValues {
                predicted,
                measured,
            },
        );
        let scores = dream_scores(&subsets).unwrap();
        let r_perfect = pearson(&perfect.predicted, &perfect.measured).unwrap();
        let expected_pearson = ((4.65 - 1.25) * r_perfect * r_perfect + 1.25) / 4.65;
        // ρ = 1 on every subset but SNV, where ρ = -1.
        let expected_spearman = ((4.65 - 1.25) - 1.25) / 4.65;
        assert!((scores.pearson_score - expected_pearson).abs() < 1e-12);
        assert!((scores.spearman_score - expected_spearman).abs() < 1e-12);
        assert_eq!(scores.subsets[6].subset, "snv");
        assert!((scores.subsets[6].pearson + 1.0).abs() < 1e-12);

        subsets.remove("motif_tiling");
        assert_eq!(
            dream_scores(&subsets),
            Err(MetricError::MissingSubset("motif_tiling"))
        );
    }
}
