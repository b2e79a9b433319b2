//! In-silico mutagenesis: every single-base substitution of a sequence.

use std::ops::Range;

use burn::prelude::*;
use serde::Serialize;

use crate::encoding::{EncodeError, encode, write_one_hot};

/// The bases a substitution can bring in, in channel order.
pub const BASES: [char; 4] = ['A', 'C', 'G', 'T'];

/// One substitution: `reference` at `position` (0-based) becomes `alternative`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Substitution {
    /// 0-based position.
    pub position: usize,
    /// The base there (upper case; `N` for an unknown base).
    pub reference: char,
    /// The base put in its place.
    pub alternative: char,
}

/// A sequence and all its single-base substitutions: three per known base,
/// four per `N`, position-major, alternatives in A, C, G, T order.
#[derive(Clone, Debug)]
pub struct Mutagenesis {
    codes: Vec<u8>,
    /// The substitutions, in the order of [`Mutagenesis::one_hot`]'s rows 1...
    pub substitutions: Vec<Substitution>,
}

/// A scored substitution.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ScoredSubstitution {
    /// The substitution.
    pub substitution: Substitution,
    /// The model's prediction for the mutated sequence.
    pub prediction: f32,
    /// `prediction` minus the reference sequence's prediction.
    pub delta: f32,
}

impl Mutagenesis {
    /// All substitutions of `sequence`.
    pub fn new(sequence: &str) -> Result<Self, EncodeError> {
        let codes = encode(sequence)?;
        let substitutions = codes
            .iter()
            .enumerate()
            .flat_map(|(position, &code)| {
                let reference = BASES.get(code as usize).copied().unwrap_or('N');
                BASES
                    .iter()
                    .filter(move |&&b| b != reference)
                    .map(move |&alternative| Substitution {
                        position,
                        reference,
                        alternative,
                    })
            })
            .collect();
        Ok(Mutagenesis {
            codes,
            substitutions,
        })
    }

    /// Sequence length.
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    /// Whether the sequence is empty.
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// Rows of the batch: the reference and each substitution.
    pub fn rows(&self) -> usize {
        1 + self.substitutions.len()
    }

    /// One-hot batch `[1 + substitutions, length, 4]`: the reference first,
    /// then each mutated sequence.
    pub fn one_hot(&self, length: usize) -> Result<TensorData, EncodeError> {
        self.one_hot_rows(length, 0..self.rows())
    }

    /// Rows `range` of [`Mutagenesis::one_hot`]'s batch (to score it in parts).
    ///
    /// # Panics
    /// If `range` reaches past [`Mutagenesis::rows`].
    pub fn one_hot_rows(
        &self,
        length: usize,
        range: Range<usize>,
    ) -> Result<TensorData, EncodeError> {
        assert!(
            range.end <= self.rows(),
            "rows {range:?} of {}",
            self.rows()
        );
        let mut values = vec![0.0f32; range.len() * length * 4];
        let mut codes = self.codes.clone();
        for (row, out) in range.clone().zip(values.chunks_exact_mut(length * 4)) {
            // Row 0 is the reference; row i mutates substitution i - 1.
            let Some(s) = row.checked_sub(1).map(|i| self.substitutions[i]) else {
                write_one_hot(&codes, length, out)?;
                continue;
            };
            let original = codes[s.position];
            codes[s.position] = BASES.iter().position(|&b| b == s.alternative).unwrap() as u8;
            write_one_hot(&codes, length, out)?;
            codes[s.position] = original;
        }
        Ok(TensorData::new(values, [range.len(), length, 4]))
    }

    /// Pairs predictions (in [`Mutagenesis::one_hot`]'s row order) with the
    /// substitutions; returns the reference prediction and the scored table.
    ///
    /// # Panics
    /// If `predictions` has not one value per row.
    pub fn score(&self, predictions: &[f32]) -> (f32, Vec<ScoredSubstitution>) {
        assert_eq!(
            predictions.len(),
            1 + self.substitutions.len(),
            "one prediction per row: the reference then each substitution"
        );
        let reference = predictions[0];
        let table = self
            .substitutions
            .iter()
            .zip(&predictions[1..])
            .map(|(&substitution, &prediction)| ScoredSubstitution {
                substitution,
                prediction,
                delta: prediction - reference,
            })
            .collect();
        (reference, table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_substitutions_per_base_four_for_n() {
        let m = Mutagenesis::new("AcN").unwrap();
        assert_eq!(m.substitutions.len(), 3 + 3 + 4);
        let first: Vec<char> = m.substitutions[..3].iter().map(|s| s.alternative).collect();
        assert_eq!(first, ['C', 'G', 'T']);
        assert_eq!(m.substitutions[3].reference, 'C');
        assert_eq!(m.substitutions[6].reference, 'N');
    }

    #[test]
    fn rows_are_reference_then_each_mutant() {
        let m = Mutagenesis::new("AC").unwrap();
        let data = m.one_hot(3).unwrap().try_to_vec::<f32>().unwrap();
        let row = |i: usize| &data[i * 12..(i + 1) * 12];
        assert_eq!(row(0)[..8], [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
        // Row 1: A→C at position 0.
        assert_eq!(row(1)[..8], [0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
        // Row 6: C→T at position 1.
        assert_eq!(row(6)[..8], [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
        let (reference, table) = m.score(&[1.0, 2.0, 0.0, 1.0, 1.5, 3.0, -1.0]);
        assert_eq!(reference, 1.0);
        assert_eq!(table[0].delta, 1.0);
        assert_eq!(table[5].delta, -2.0);
        let part = m
            .one_hot_rows(3, 5..7)
            .unwrap()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(part, data[5 * 12..7 * 12]);
    }
}
