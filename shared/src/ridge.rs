//! Ridge regression with its penalty chosen by leave-one-out cross-validation
//! on the rows it is fitted to (the largest penalty within 1% of the best
//! score): quick fine-tuning's output layer ([`crate::tune`]) and the k-mer
//! baseline fitted beside it ([`KmerRidge`]), the honest floor a model must
//! beat on the same rows.
//!
//! One eigendecomposition of the centred Gram matrix serves every penalty:
//! with `G = Xᵀ X = V E Vᵀ`, `Z = X V` and `c = Zᵀ y`, the fit at penalty α
//! is `β = V c / (E + α)`, its predictions `Z c / (E + α)` and each row's
//! leverage `1/n + Σ Z² / (E + α)`, whence the leave-one-out residuals
//! (residual / (1 − leverage)) without refitting.

use nalgebra::{DMatrix, DVector, SymmetricEigen};

use crate::encoding::code_of;

/// Fewest rows a fit takes.
pub const MIN_ROWS: usize = 3;

/// A fitted ridge: `y ≈ x · weights + intercept`.
#[derive(Clone, Debug, PartialEq)]
pub struct Ridge {
    /// One weight a feature.
    pub weights: Vec<f64>,
    /// The intercept (not penalised).
    pub intercept: f64,
    /// The penalty cross-validation chose.
    pub alpha: f64,
}

/// Why a ridge cannot be fitted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RidgeError {
    /// Too few rows.
    #[error("{rows} rows are too few to fit a ridge (at least {MIN_ROWS})")]
    TooFew {
        /// Rows given.
        rows: usize,
    },
    /// Features that are not whole rows.
    #[error("{values} feature values are not {rows} rows of {features}")]
    Shape {
        /// Values given.
        values: usize,
        /// Rows (labels) given.
        rows: usize,
        /// Features a row.
        features: usize,
    },
    /// A feature or label that is not finite.
    #[error("a feature or measured value is not finite")]
    NotFinite,
}

/// Penalties tried, as powers of ten times the Gram matrix's mean eigenvalue:
/// -6, -5.75, …, 2.
fn alphas(scale: f64) -> impl Iterator<Item = f64> {
    (0..=32).map(move |i| scale * 10f64.powf(-6.0 + 0.25 * f64::from(i)))
}

/// How far above the smallest cross-validation score a larger penalty may
/// score and still be chosen: the largest penalty within 1% of the best.
/// Where the scores are flat (few rows, many nearly collinear units, as a
/// network's hidden layer) the smallest penalty is ill-conditioned: weights
/// that cancel one another pass rounding differences in the features (wasm's
/// sums against native ones) to the predictions a hundredfold.
const CV_SLACK: f64 = 1.01;

impl Ridge {
    /// Fits `y` on `x` (`y.len()` rows of `features` values, row-major).
    pub fn fit(x: &[f32], features: usize, y: &[f32]) -> Result<Self, RidgeError> {
        let rows = y.len();
        if x.len() != rows * features {
            return Err(RidgeError::Shape {
                values: x.len(),
                rows,
                features,
            });
        }
        if rows < MIN_ROWS {
            return Err(RidgeError::TooFew { rows });
        }
        if !x.iter().chain(y).all(|v| v.is_finite()) {
            return Err(RidgeError::NotFinite);
        }
        let mut x = DMatrix::from_row_iterator(rows, features, x.iter().map(|&v| f64::from(v)));
        let means: Vec<f64> = x.column_iter().map(|c| c.mean()).collect();
        for (mut column, mean) in x.column_iter_mut().zip(&means) {
            column.add_scalar_mut(-mean);
        }
        let y_mean = y.iter().map(|&v| f64::from(v)).sum::<f64>() / rows as f64;
        let y = DVector::from_iterator(rows, y.iter().map(|&v| f64::from(v) - y_mean));
        let eigen = SymmetricEigen::new(x.tr_mul(&x));
        let z = &x * &eigen.eigenvectors;
        let c = z.tr_mul(&y);
        let e: Vec<f64> = eigen.eigenvalues.iter().map(|&v| v.max(0.0)).collect();
        let scale = match e.iter().sum::<f64>() / features.max(1) as f64 {
            s if s > 0.0 => s,
            _ => 1.0,
        };
        let n = rows as f64;
        // Mean squared leave-one-out residual at penalty `alpha`.
        let loo = |alpha: f64| {
            let shrink: Vec<f64> = e.iter().map(|&e| 1.0 / (e + alpha)).collect();
            let mut total = 0.0;
            for (i, row) in z.row_iter().enumerate() {
                let (mut fit, mut leverage) = (0.0, 1.0 / n);
                for ((&zij, &cj), &sj) in row.iter().zip(c.iter()).zip(&shrink) {
                    fit += zij * cj * sj;
                    leverage += zij * zij * sj;
                }
                let residual = (y[i] - fit) / (1.0 - leverage).max(1e-12);
                total += residual * residual;
            }
            total / n
        };
        let scores: Vec<(f64, f64)> = alphas(scale).map(|a| (a, loo(a))).collect();
        let best = scores.iter().map(|&(_, g)| g).fold(f64::INFINITY, f64::min);
        let alpha = scores
            .iter()
            .rev()
            .find(|&&(_, g)| g <= best * CV_SLACK)
            .map_or(scale, |&(a, _)| a);
        let shrunk = DVector::from_iterator(
            features,
            e.iter().zip(c.iter()).map(|(&e, &c)| c / (e + alpha)),
        );
        let weights: Vec<f64> = (eigen.eigenvectors * shrunk).iter().copied().collect();
        let intercept = y_mean - weights.iter().zip(&means).map(|(w, m)| w * m).sum::<f64>();
        Ok(Ridge {
            weights,
            intercept,
            alpha,
        })
    }

    /// Predictions for rows of `x` (row-major, as many values a row as weights).
    pub fn predict(&self, x: &[f32]) -> Vec<f32> {
        x.chunks_exact(self.weights.len().max(1))
            .map(|row| {
                let dot: f64 = row
                    .iter()
                    .zip(&self.weights)
                    .map(|(&v, w)| f64::from(v) * w)
                    .sum();
                (dot + self.intercept) as f32
            })
            .collect()
    }
}

/// The k-mer baseline: a [`Ridge`] on the counts of every 1- to `k`-mer in a
/// sequence and its reverse complement, added (windows with an N count for
/// nothing). `scripts/baseline_kmer.py` is the same idea with k up to 6 and
/// scikit-learn's cross-validation.
#[derive(Clone, Debug, PartialEq)]
pub struct KmerRidge {
    /// Longest k-mer.
    pub k: usize,
    /// The fit.
    pub ridge: Ridge,
}

impl KmerRidge {
    /// The k the page fits: 1- to 4-mers, 340 counts.
    pub const PAGE_K: usize = 4;

    /// Fits `values` on the k-mer counts of `sequences` (A/C/G/T/N).
    pub fn fit(sequences: &[String], values: &[f32], k: usize) -> Result<Self, RidgeError> {
        let x = kmer_counts(sequences, k);
        Ok(KmerRidge {
            k,
            ridge: Ridge::fit(&x, kmer_width(k), values)?,
        })
    }

    /// Predictions for `sequences`.
    pub fn predict(&self, sequences: &[String]) -> Vec<f32> {
        self.ridge.predict(&kmer_counts(sequences, self.k))
    }
}

/// How many 1- to `k`-mers there are: 4 + 16 + … + 4^k.
pub fn kmer_width(k: usize) -> usize {
    (1..=k).map(|k| 4usize.pow(k as u32)).sum()
}

/// Rows of k-mer counts (both strands) for `sequences`, row-major.
pub fn kmer_counts(sequences: &[String], k: usize) -> Vec<f32> {
    let width = kmer_width(k);
    let mut x = vec![0.0f32; sequences.len() * width];
    for (sequence, row) in sequences.iter().zip(x.chunks_exact_mut(width)) {
        let codes: Vec<u8> = sequence.chars().map(|b| code_of(b).unwrap_or(4)).collect();
        let reverse: Vec<u8> = codes
            .iter()
            .rev()
            .map(|&c| if c < 4 { 3 - c } else { c })
            .collect();
        for strand in [&codes, &reverse] {
            let mut offset = 0;
            for k in 1..=k {
                for window in strand.windows(k) {
                    if let Some(index) = window
                        .iter()
                        .try_fold(0usize, |i, &c| (c < 4).then(|| i * 4 + usize::from(c)))
                    {
                        row[offset + index] += 1.0;
                    }
                }
                offset += 4usize.pow(k as u32);
            }
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_linear_rule_with_little_penalty() {
        // y = 2·a − b + 3 exactly: a small penalty and the weights.
        let x: Vec<f32> = (0..40)
            .flat_map(|i| [i as f32 * 0.1, ((i * 7) % 11) as f32])
            .collect();
        let y: Vec<f32> = x.chunks(2).map(|r| 2.0 * r[0] - r[1] + 3.0).collect();
        let ridge = Ridge::fit(&x, 2, &y).unwrap();
        assert!((ridge.weights[0] - 2.0).abs() < 1e-3, "{ridge:?}");
        assert!((ridge.weights[1] + 1.0).abs() < 1e-3, "{ridge:?}");
        assert!((ridge.intercept - 3.0).abs() < 1e-2, "{ridge:?}");
        let predicted = ridge.predict(&x);
        assert!(crate::metrics::max_abs_diff(&predicted, &y) < 1e-2);
    }

    #[test]
    fn noise_alone_is_penalised_towards_the_mean() {
        // Labels unrelated to the features: the penalty shrinks the weights hard.
        let x: Vec<f32> = (0..200).map(|i| ((i * 37) % 17) as f32).collect();
        let y: Vec<f32> = (0..100).map(|i| ((i * 53) % 13) as f32).collect();
        let ridge = Ridge::fit(&x, 2, &y).unwrap();
        let mean = y.iter().sum::<f32>() / 100.0;
        let spread = ridge
            .predict(&x)
            .iter()
            .fold(0.0f32, |m, p| m.max((p - mean).abs()));
        assert!(
            spread < 1.0,
            "{ridge:?}, predictions within {spread} of the mean"
        );
    }

    #[test]
    fn bad_inputs_are_refused() {
        assert_eq!(
            Ridge::fit(&[1.0, 2.0], 1, &[1.0, 2.0]),
            Err(RidgeError::TooFew { rows: 2 })
        );
        assert!(matches!(
            Ridge::fit(&[1.0; 5], 2, &[1.0; 3]),
            Err(RidgeError::Shape { .. })
        ));
        assert_eq!(
            Ridge::fit(&[1.0, f32::NAN, 3.0], 1, &[1.0; 3]),
            Err(RidgeError::NotFinite)
        );
    }

    #[test]
    fn kmers_are_counted_on_both_strands() {
        // ACGN: A C G (k=1) and AC CG (k=2) on the forward strand; its reverse
        // complement NCGT gives C G T and CG GT; N counts for nothing.
        let x = kmer_counts(&["ACGN".to_string()], 2);
        assert_eq!(x.len(), kmer_width(2));
        assert_eq!(&x[..4], [1.0, 2.0, 2.0, 1.0]);
        let pair = |a: usize, b: usize| x[4 + a * 4 + b];
        assert_eq!([pair(0, 1), pair(1, 2), pair(2, 3)], [1.0, 2.0, 1.0]);
        assert_eq!(x.iter().sum::<f32>(), 10.0);
    }

    #[test]
    fn a_kmer_ridge_learns_a_motif_count() {
        // The value is the number of TATA boxes (either strand).
        let sequences: Vec<String> = (0..60)
            .map(|i| {
                let motifs = i % 4;
                let filler = ["GCGC", "CGCG", "GGCC"][i % 3];
                format!("{}{}", "TATA".repeat(motifs), filler.repeat(5 - motifs))
            })
            .collect();
        let values: Vec<f32> = (0..60).map(|i| (i % 4) as f32).collect();
        let fit = KmerRidge::fit(&sequences, &values, 4).unwrap();
        let predicted = fit.predict(&sequences);
        let r = crate::metrics::pearson(
            &predicted.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(),
            &values.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(),
        )
        .unwrap();
        assert!(r > 0.99, "Pearson {r}");
    }
}
