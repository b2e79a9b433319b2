//! What a design found ([`DesignResult`]) and its formats: the designs as
//! CSV and FASTA, the search's path as CSV.

use serde::Serialize;

use super::spec::Objective;
use crate::encoding::base_of;
use crate::ism::Substitution;

/// One designed sequence.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Designed {
    /// The sequence, flanks included.
    pub sequence: String,
    /// The model's prediction for it (an ensemble's members' mean).
    pub prediction: f32,
    /// The members' spread (0 for one network).
    pub sd: f32,
    /// Which start it comes from (1-based).
    pub start: usize,
    /// Its substitutions from that start, in position order.
    pub mutations: Vec<Substitution>,
}

/// One step of the search: the best prediction so far after a round (greedy:
/// of one start's path, with the substitution taken) or a generation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Step {
    /// The start (1-based; for evolve, the one the best candidate comes from).
    pub start: usize,
    /// 0 for the start, then each round or generation.
    pub round: usize,
    /// The best prediction (for greedy: of this start's sequence).
    pub prediction: f32,
    /// The substitution greedy took in this round.
    pub mutation: Option<Substitution>,
}

/// What a design found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DesignResult {
    /// The objective.
    pub objective: Objective,
    /// The spreads taken off each prediction's fitness ([`super::DesignSpec::caution`]).
    pub caution: f32,
    /// The starts and their predictions.
    pub starts: Vec<Designed>,
    /// The best sequences, best first (at most `keep`).
    pub designs: Vec<Designed>,
    /// The search's path.
    pub trajectory: Vec<Step>,
    /// Sequences scored.
    pub scored: usize,
}

impl DesignResult {
    /// The designs as CSV: rank, start, prediction, its spread, mutation
    /// count, mutations (`A34G`, 1-based, `;`-separated), sequence.
    pub fn csv(&self) -> String {
        let mut csv = format!(
            "# objective {}; caution {}; sequences scored {}\nrank,start,prediction,sd,n_mutations,mutations,sequence\n",
            self.objective, self.caution, self.scored
        );
        for (rank, d) in self.designs.iter().enumerate() {
            csv += &format!(
                "{},{},{},{},{},{},{}\n",
                rank + 1,
                d.start,
                d.prediction,
                d.sd,
                d.mutations.len(),
                mutation_list(&d.mutations),
                d.sequence
            );
        }
        csv
    }

    /// The designs as FASTA, their prediction and mutations in each header.
    pub fn fasta(&self) -> String {
        self.designs
            .iter()
            .enumerate()
            .map(|(rank, d)| {
                format!(
                    ">design_{} prediction={} sd={} start={} mutations={}\n{}\n",
                    rank + 1,
                    d.prediction,
                    d.sd,
                    d.start,
                    match d.mutations.len() {
                        0 => "none".to_string(),
                        _ => mutation_list(&d.mutations),
                    },
                    d.sequence
                )
            })
            .collect()
    }

    /// The trajectory as CSV: start, round, prediction, mutation.
    pub fn trajectory_csv(&self) -> String {
        let mut csv = "start,round,prediction,mutation\n".to_string();
        for s in &self.trajectory {
            let mutation = s.mutation.map(|m| m.to_string()).unwrap_or_default();
            csv += &format!("{},{},{},{}\n", s.start, s.round, s.prediction, mutation);
        }
        csv
    }
}

fn mutation_list(mutations: &[Substitution]) -> String {
    let names: Vec<String> = mutations.iter().map(|m| m.to_string()).collect();
    names.join(";")
}

/// The substitutions that turn `origin` into `codes` (of one length), in
/// position order.
pub(super) fn differences(origin: &[u8], codes: &[u8]) -> Vec<Substitution> {
    origin
        .iter()
        .zip(codes)
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(position, (&a, &b))| Substitution {
            position,
            reference: base_of(a),
            alternative: base_of(b),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn designs_and_their_path_as_csv_and_fasta() {
        let designed = |sequence: &str, prediction, mutations: Vec<Substitution>| Designed {
            sequence: sequence.into(),
            prediction,
            sd: 0.5,
            start: 1,
            mutations,
        };
        let start = [0, 1, 2, 3];
        let mutations = differences(&start, &[0, 3, 2, 1]);
        let result = DesignResult {
            objective: Objective::Target(1.5),
            caution: 1.0,
            starts: vec![designed("ACGT", 0.25, Vec::new())],
            designs: vec![
                designed("ATGC", 1.25, mutations.clone()),
                designed("ACGT", 0.25, Vec::new()),
            ],
            trajectory: vec![
                Step {
                    start: 1,
                    round: 0,
                    prediction: 0.25,
                    mutation: None,
                },
                Step {
                    start: 1,
                    round: 1,
                    prediction: 1.25,
                    mutation: Some(mutations[0]),
                },
            ],
            scored: 7,
        };
        assert_eq!(
            result.csv(),
            "# objective 1.5; caution 1; sequences scored 7\n\
             rank,start,prediction,sd,n_mutations,mutations,sequence\n\
             1,1,1.25,0.5,2,C2T;T4C,ATGC\n\
             2,1,0.25,0.5,0,,ACGT\n"
        );
        assert_eq!(
            result.fasta(),
            ">design_1 prediction=1.25 sd=0.5 start=1 mutations=C2T;T4C\nATGC\n\
             >design_2 prediction=0.25 sd=0.5 start=1 mutations=none\nACGT\n"
        );
        assert_eq!(
            result.trajectory_csv(),
            "start,round,prediction,mutation\n1,0,0.25,\n1,1,1.25,C2T\n"
        );
    }
}
