//! An ensemble: K networks of one config trained alike (different seeds),
//! kept in one weights file (`weights`' `members` metadata). A prediction is
//! the members' mean; their standard deviation, the *spread*, says how much
//! they disagree: small where the training data pinned the answer down,
//! large where the members extrapolate each in its own way. It is not an
//! error bar by itself: `docs/TRAINING.md` gives how it relates to the error
//! on held-out sequences.

use burn::prelude::*;
use serde::Serialize;

use crate::blocks::model::Model;

/// K networks of one config, in eval mode or not, on one device.
#[derive(Clone, Debug)]
pub struct Ensemble {
    members: Vec<Model>,
}

impl Ensemble {
    /// An ensemble of `members`.
    ///
    /// # Panics
    /// If `members` is empty.
    pub fn new(members: Vec<Model>) -> Self {
        assert!(!members.is_empty(), "an ensemble has at least one member");
        Ensemble { members }
    }

    /// The members, in the file's order.
    pub fn members(&self) -> &[Model] {
        &self.members
    }

    /// How many members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Never true (an ensemble has a member); for clippy's `len` rule.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Parameters of all members together.
    pub fn num_params(&self) -> usize {
        self.members.iter().map(Model::num_params).sum()
    }

    /// `predict`'s `[rows, 1]` for every member, side by side: `[rows, K]`
    /// (read it back with [`Prediction::rows`]).
    pub fn each<E>(
        &self,
        predict: impl FnMut(&Model) -> Result<Tensor<2>, E>,
    ) -> Result<Tensor<2>, E> {
        let outputs = self.members.iter().map(predict).collect::<Result<_, E>>()?;
        Ok(Tensor::cat(outputs, 1))
    }

    /// Every member's predictions for `x` `[batch, length, 4]`: `[batch, K]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        let outputs = self
            .members
            .iter()
            .map(|model| model.forward(x.clone()))
            .collect();
        Tensor::cat(outputs, 1)
    }
}

/// One sequence's prediction: the members' mean and standard deviation (0
/// for a single network).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Prediction {
    /// The members' mean.
    pub mean: f32,
    /// Their standard deviation (divided by K, not K − 1).
    pub sd: f32,
}

impl Prediction {
    /// Mean and standard deviation of one sequence's member predictions.
    ///
    /// # Panics
    /// If `members` is empty.
    pub fn of(members: &[f32]) -> Self {
        assert!(!members.is_empty(), "a prediction needs a member");
        let k = members.len() as f64;
        let mean = members.iter().map(|&v| f64::from(v)).sum::<f64>() / k;
        let variance = members
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / k;
        Prediction {
            mean: mean as f32,
            sd: variance.sqrt() as f32,
        }
    }

    /// Predictions from [`Ensemble::each`]'s values read back row-major
    /// (`members` values per row).
    ///
    /// # Panics
    /// If `members` is 0 or does not divide `values.len()`.
    pub fn rows(values: &[f32], members: usize) -> Vec<Self> {
        assert!(
            members > 0 && values.len().is_multiple_of(members),
            "{} values are not rows of {members} members",
            values.len()
        );
        values.chunks_exact(members).map(Prediction::of).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ModelConfig;

    #[test]
    fn a_prediction_is_the_members_mean_and_standard_deviation() {
        assert_eq!(
            Prediction::of(&[1.0, 3.0]),
            Prediction { mean: 2.0, sd: 1.0 }
        );
        assert_eq!(Prediction::of(&[5.0]), Prediction { mean: 5.0, sd: 0.0 });
        let rows = Prediction::rows(&[1.0, 3.0, 2.0, 2.0, 0.0, 4.0], 2);
        assert_eq!(
            rows.iter().map(|p| (p.mean, p.sd)).collect::<Vec<_>>(),
            vec![(2.0, 1.0), (2.0, 0.0), (2.0, 2.0)]
        );
    }

    #[test]
    #[should_panic(expected = "not rows of 2 members")]
    fn values_that_are_not_whole_rows_are_refused() {
        Prediction::rows(&[1.0, 2.0, 3.0], 2);
    }

    /// Column k of the ensemble's output is member k's own prediction.
    #[test]
    fn each_column_is_one_members_prediction() {
        let device = Device::flex();
        let config = ModelConfig::tiny();
        let members: Vec<Model> = (0..3).map(|_| config.init(&device)).collect();
        let x = Tensor::<3>::from_data(
            crate::encoding::one_hot(&["ACGTACGTAC", "TTTTGGGGCC"], config.seq_len).unwrap(),
            &device,
        );
        let ensemble = Ensemble::new(members.clone());
        assert_eq!(ensemble.len(), 3);
        let all = ensemble.forward(x.clone());
        assert_eq!(all.dims(), [2, 3]);
        for (k, member) in members.iter().enumerate() {
            let own = member.forward(x.clone());
            let column = all.clone().slice([0..2, k..k + 1]);
            assert!(crate::tensor_max_abs_diff(own, column) < 1e-6);
        }
        let through_each = ensemble
            .each(|m| Ok::<_, ()>(m.forward(x.clone())))
            .unwrap();
        assert!(crate::tensor_max_abs_diff(all, through_each) < 1e-6);
    }
}
