//! The design task: what the page sends and the CLI builds ([`DesignSpec`]),
//! the checks of its settings, its starts read into codes, and why a design
//! cannot start ([`DesignError`]).

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::constraints::Constraints;
use crate::encoding::{CODE_N, EncodeError, Flanks, Placement, encode_for};
use crate::ensemble::Prediction;

/// What the search wants of the model's prediction.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Objective {
    /// As high as possible (`max`).
    Maximise,
    /// As low as possible (`min`).
    Minimise,
    /// As close to a value as possible (the value).
    Target(f32),
}

impl Objective {
    /// How good a prediction is: higher is better.
    pub fn fitness(self, prediction: f32) -> f32 {
        match self {
            Objective::Maximise => prediction,
            Objective::Minimise => -prediction,
            Objective::Target(target) => -(prediction - target).abs(),
        }
    }
}

impl FromStr for Objective {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "max" => Ok(Objective::Maximise),
            "min" => Ok(Objective::Minimise),
            value => match value.parse::<f32>() {
                Ok(target) if target.is_finite() => Ok(Objective::Target(target)),
                _ => Err(format!(
                    "objective {text:?}: expected max, min or a target value"
                )),
            },
        }
    }
}

impl TryFrom<String> for Objective {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl From<Objective> for String {
    fn from(objective: Objective) -> String {
        objective.to_string()
    }
}

impl fmt::Display for Objective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Objective::Maximise => f.write_str("max"),
            Objective::Minimise => f.write_str("min"),
            Objective::Target(target) => write!(f, "{target}"),
        }
    }
}

/// How to search.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "lowercase", deny_unknown_fields)]
pub enum Strategy {
    /// The best single substitution each round, for at most `rounds` rounds.
    Greedy {
        /// Rounds at most (each one substitution).
        rounds: usize,
    },
    /// A genetic algorithm.
    Evolve {
        /// Candidates per generation.
        population: usize,
        /// Generations after the first.
        generations: usize,
    },
}

/// Where the search starts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Starts {
    /// These sequences (a variable region alone is put inside the flanks).
    Given(Vec<String>),
    /// `count` random variable regions of `length` bases in the flanks.
    Random {
        /// How many.
        count: usize,
        /// Bases each (DREAM's: 80).
        length: usize,
    },
}

/// A design task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DesignSpec {
    /// Where to start.
    pub starts: Starts,
    /// What to look for.
    pub objective: Objective,
    /// What every candidate must satisfy.
    #[serde(default)]
    pub constraints: Constraints,
    /// How to search.
    pub strategy: Strategy,
    /// The random seed: the same seed, the same sequences.
    #[serde(default)]
    pub seed: u64,
    /// How many of the best sequences to report.
    #[serde(default = "default_keep")]
    pub keep: usize,
    /// Caution k: a candidate's fitness is the objective's on the members'
    /// mean, less k times their spread, so that a search keeps away from
    /// where an ensemble's members disagree (0: the mean alone; no effect
    /// with one network).
    #[serde(default)]
    pub caution: f32,
}

impl DesignSpec {
    /// How good a prediction is for this task: higher is better.
    pub fn fitness(&self, prediction: Prediction) -> f32 {
        self.objective.fitness(prediction.mean) - self.caution * prediction.sd
    }
}

fn default_keep() -> usize {
    10
}

/// Why a design cannot start, found before any work.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DesignError {
    /// A start sequence is unusable.
    #[error("start sequence {index}: {problem}")]
    Start {
        /// 1-based.
        index: usize,
        /// What is wrong.
        problem: String,
    },
    /// The constraints cannot be met.
    #[error("{0}")]
    Constraint(String),
    /// A setting is out of range.
    #[error("{0}")]
    Setting(String),
    /// Predictions that do not match the batch asked for.
    #[error("{got} predictions for a batch of {expected}")]
    Predictions {
        /// Given.
        got: usize,
        /// Asked for.
        expected: usize,
    },
    /// Predictions that could not be read back from the device.
    #[error("reading predictions back: {0}")]
    Read(String),
    /// A sequence the model cannot read.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// Settings that make no sense, before anything else (the constraints
/// are [`check_constraints`](super::constraints::check_constraints)'s).
pub(super) fn check_settings(spec: &DesignSpec) -> Result<(), DesignError> {
    let bad = |text: String| Err(DesignError::Setting(text));
    match spec.strategy {
        Strategy::Greedy { rounds: 0 } => return bad("greedy needs at least 1 round".into()),
        Strategy::Evolve { population, .. } if population < 2 => {
            return bad(format!(
                "a population of {population}: evolve needs at least 2"
            ));
        }
        _ => {}
    }
    if spec.keep == 0 {
        return bad("keep at least 1 design".into());
    }
    let cautious = spec.caution.is_finite() && spec.caution >= 0.0;
    if !cautious {
        return bad(format!(
            "caution {}: expected a number of spreads, 0 or more",
            spec.caution
        ));
    }
    match &spec.starts {
        Starts::Given(s) if s.is_empty() => return bad("no start sequence".into()),
        Starts::Random { count: 0, .. } => return bad("0 random starts".into()),
        _ => {}
    }
    Ok(())
}

/// The given starts as codes, inside the flanks, and the variable region
/// they share.
pub(super) fn given_starts(
    sequences: &[String],
    flanks: &Flanks,
    seq_len: usize,
) -> Result<(Vec<Vec<u8>>, Range<usize>), DesignError> {
    let mut starts = Vec::with_capacity(sequences.len());
    let mut editable: Option<Range<usize>> = None;
    for (i, sequence) in sequences.iter().enumerate() {
        let problem = |problem: String| DesignError::Start {
            index: i + 1,
            problem,
        };
        let mut sequence = sequence.trim().to_string();
        encode_for(&sequence, seq_len).map_err(|e| problem(e.to_string()))?;
        if flanks.place(&mut sequence, seq_len, true) == Placement::Missing {
            return Err(problem(format!(
                "it lacks the model's flanks ({}…{}) and is too long to take them; design changes only the region between them",
                flanks.five, flanks.three
            )));
        }
        let codes = encode_for(&sequence, seq_len).map_err(|e| problem(e.to_string()))?;
        if let Some(at) = codes.iter().position(|&b| b == CODE_N) {
            return Err(problem(format!(
                "an N at {}: design needs A, C, G and T",
                at + 1
            )));
        }
        let region = flanks.five.len()..codes.len() - flanks.three.len();
        if region.is_empty() {
            return Err(problem("no variable region between the flanks".into()));
        }
        if let Some(first) = editable.as_ref().filter(|r| **r != region) {
            return Err(problem(format!(
                "a variable region of {} bases, the first start's has {}: give starts of one length",
                region.len(),
                first.len()
            )));
        }
        editable = Some(region);
        starts.push(codes);
    }
    Ok((starts, editable.expect("at least one start")))
}

/// The template of random starts, `length` A's inside the flanks, and the
/// variable region they fill.
pub(super) fn random_template(
    length: usize,
    flanks: &Flanks,
    seq_len: usize,
) -> Result<(Vec<u8>, Range<usize>), DesignError> {
    let fixed = flanks.five.len() + flanks.three.len();
    if length == 0 || length + fixed > seq_len {
        return Err(DesignError::Setting(format!(
            "random regions of {length} bases: the model reads {seq_len} with {fixed} of flanks"
        )));
    }
    let editable = flanks.five.len()..flanks.five.len() + length;
    let template = format!("{}{}{}", flanks.five, "A".repeat(length), flanks.three);
    Ok((encode_for(&template, seq_len)?, editable))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objectives_read_and_write_as_max_min_or_a_value() {
        for (text, objective) in [
            ("max", Objective::Maximise),
            (" min ", Objective::Minimise),
            ("1.5", Objective::Target(1.5)),
        ] {
            assert_eq!(text.parse::<Objective>(), Ok(objective));
            assert_eq!(objective.to_string().parse::<Objective>(), Ok(objective));
        }
        for bad in ["most", "inf", "NaN", ""] {
            let err = bad.parse::<Objective>().unwrap_err();
            assert!(err.contains("expected max, min or a target value"), "{err}");
        }
        assert_eq!(Objective::Target(1.0).fitness(0.5), -0.5);
        assert_eq!(Objective::Minimise.fitness(0.5), -0.5);
    }

    #[test]
    fn random_regions_must_fit_between_the_flanks() {
        let flanks = Flanks::dream();
        let (template, editable) = random_template(80, &flanks, 111).unwrap();
        assert_eq!((template.len(), editable.clone()), (110, 17..97));
        assert!(template[editable].iter().all(|&c| c == 0));
        for length in [0, 82] {
            let err = random_template(length, &flanks, 111).unwrap_err();
            assert!(matches!(err, DesignError::Setting(_)), "{err}");
        }
    }
}
