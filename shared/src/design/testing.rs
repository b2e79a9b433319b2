//! What the tests of the search and of its constraints share: a stand-in
//! for the model, a loop that drives a design on it, a task and a start.

use super::{Batch, Constraints, Design, DesignResult, DesignSpec, Objective, Starts, Strategy};
use crate::ensemble::Prediction;

/// A stand-in for the model: G and C weigh by position, runs of A cost.
pub(super) fn toy(sequence: &str) -> f32 {
    let b = sequence.as_bytes();
    let mut y = 0.0;
    for (i, &c) in b.iter().enumerate() {
        y += match c {
            b'G' => 0.02 * (i % 7) as f32,
            b'C' => 0.01 * (i % 5) as f32,
            _ => 0.0,
        };
        if i > 0 && c == b'A' && b[i - 1] == b'A' {
            y -= 0.05;
        }
    }
    y
}

/// A stand-in for an ensemble's spread: members disagree on G-rich sequences.
pub(super) fn toy_spread(sequence: &str) -> f32 {
    0.004 * sequence.bytes().filter(|&c| c == b'G').count() as f32
}

/// Runs a design on [`toy`] and [`toy_spread`], handing every proposed sequence to `proposed`.
pub(super) fn drive(design: &mut Design, mut proposed: impl FnMut(&str)) -> DesignResult {
    while let Some(batch) = design.ask() {
        let sequences: Vec<String> = match batch {
            Batch::Sequences(s) => s.clone(),
            Batch::Substitutions {
                sequence,
                substitutions,
            } => substitutions
                .iter()
                .map(|s| {
                    let mut b = sequence.clone().into_bytes();
                    assert_eq!(b[s.position] as char, s.reference);
                    b[s.position] = s.alternative as u8;
                    String::from_utf8(b).unwrap()
                })
                .collect(),
        };
        sequences.iter().for_each(|s| proposed(s));
        let predictions: Vec<Prediction> = sequences
            .iter()
            .map(|s| Prediction {
                mean: toy(s),
                sd: toy_spread(s),
            })
            .collect();
        design.tell(&predictions).unwrap();
    }
    design.result()
}

pub(super) fn spec(
    starts: Starts,
    strategy: Strategy,
    constraints: Constraints,
    seed: u64,
) -> DesignSpec {
    DesignSpec {
        starts,
        objective: Objective::Maximise,
        constraints,
        strategy,
        seed,
        keep: 5,
        caution: 0.0,
    }
}

pub(super) const START: &str = "TGCATTTTTTTCACATCCTTCAACCAAAATATAATATTCAATATCTTGTAGGGACGATCAATATAAGTCGCCCGGACCATATAAGGCTAAGGTGTGGGGTTACGGCTGTT";
