//! Sequence design: a search for sequences the model predicts higher, lower
//! or near a target value, under the constraints of cloning, as Vaishnav et
//! al. (Nature 2022) designed promoters with their model.
//!
//! The flanks stay fixed; only the variable region between them changes.
//! Two strategies:
//! - **greedy**: each round scores every allowed single substitution of the
//!   current sequence (incrementally, as ISM does) and takes the best, while it
//!   improves the objective;
//! - **evolve**: a genetic algorithm. A population of candidates; each
//!   generation keeps the best eighth (elitism) and breeds the rest from
//!   parents picked by tournaments of three, by uniform crossover (half of the
//!   children) and one or two random substitutions.
//!
//! A candidate that breaks a [`Constraints`] is never proposed. [`Design`]
//! asks for batches of predictions and is told them ([`Design::ask`],
//! [`Design::tell`]), so that the page can spread a batch over its workers
//! and the CLI can score it in one loop ([`run`]); with the same seed it
//! proposes the same sequences on every backend, unless two candidates tie
//! within the backends' rounding.

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use burn::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::blocks::model::Model;
use crate::encoding::{
    CODE_N, EncodeError, Flanks, Placement, base_of, complement, decode, encode, encode_for,
    one_hot,
};
use crate::ism::{Mutagenesis, Substitution};

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

/// The type IIS sites of Golden Gate cloning, a ready list of forbidden
/// sequences: BsaI and BsmBI.
pub const TYPE_IIS: [(&str, &str); 2] = [("BsaI", "GGTCTC"), ("BsmBI", "CGTCTC")];

/// What every proposed sequence must satisfy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Constraints {
    /// At most this many substitutions from the start (none: unlimited).
    pub max_mutations: Option<usize>,
    /// The share of G and C in the variable region, `[min, max]` (0..=1).
    pub gc: Option<(f32, f32)>,
    /// Sequences that may not occur on either strand (A/C/G/T).
    pub forbidden: Vec<String>,
    /// The longest run of one base that touches the variable region.
    pub max_homopolymer: Option<usize>,
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

/// A batch of sequences to predict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Batch {
    /// Single substitutions of one sequence, scored incrementally as ISM is.
    Substitutions {
        /// The sequence they change.
        sequence: String,
        /// The substitutions, one prediction each.
        substitutions: Vec<Substitution>,
    },
    /// Whole sequences.
    Sequences(Vec<String>),
}

impl Batch {
    /// How many predictions it needs.
    pub fn len(&self) -> usize {
        match self {
            Batch::Substitutions { substitutions, .. } => substitutions.len(),
            Batch::Sequences(sequences) => sequences.len(),
        }
    }

    /// Whether it needs none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Predictions `[range.len(), 1]` for items `range` of the batch, by a
    /// model in eval mode reading `seq_len` bases.
    ///
    /// # Panics
    /// If `range` reaches past [`Batch::len`].
    pub fn predict(
        &self,
        model: &Model,
        seq_len: usize,
        range: Range<usize>,
    ) -> Result<Tensor<2>, EncodeError> {
        match self {
            Batch::Substitutions {
                sequence,
                substitutions,
            } => {
                let mutagenesis =
                    Mutagenesis::of(sequence, seq_len, substitutions[range].to_vec())?;
                mutagenesis.predict_rows(model, seq_len, 1..mutagenesis.rows())
            }
            Batch::Sequences(sequences) => {
                let device = model.stem.conv.weight.val().device();
                let x = Tensor::<3>::from_data(one_hot(&sequences[range], seq_len)?, &device);
                Ok(model.forward(x))
            }
        }
    }
}

/// One designed sequence.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Designed {
    /// The sequence, flanks included.
    pub sequence: String,
    /// The model's prediction for it.
    pub prediction: f32,
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
    /// The designs as CSV: rank, start, prediction, mutation count, mutations
    /// (`A34G`, 1-based, `;`-separated), sequence.
    pub fn csv(&self) -> String {
        let mut csv = format!(
            "# objective {}; sequences scored {}\nrank,start,prediction,n_mutations,mutations,sequence\n",
            self.objective, self.scored
        );
        for (rank, d) in self.designs.iter().enumerate() {
            csv += &format!(
                "{},{},{},{},{},{}\n",
                rank + 1,
                d.start,
                d.prediction,
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
                    ">design_{} prediction={} start={} mutations={}\n{}\n",
                    rank + 1,
                    d.prediction,
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

/// A scored or proposed sequence (codes 0..4 for A, C, G, T).
#[derive(Clone, Debug)]
struct Candidate {
    codes: Vec<u8>,
    /// Index into the starts.
    origin: usize,
    prediction: f32,
}

/// What the batch being scored was for.
#[derive(Clone, Debug)]
enum Pending {
    /// Whole sequences: greedy's starts, evolve's first population or children.
    Sequences(Vec<(Vec<u8>, usize)>),
    /// Greedy: the allowed substitutions of start `start`'s current sequence.
    Neighbours(Vec<Substitution>),
}

/// A design in progress: ask for a batch, tell its predictions, until
/// [`Design::ask`] gives `None`; then [`Design::result`].
pub struct Design {
    spec: DesignSpec,
    /// The positions that may change.
    editable: Range<usize>,
    forbidden: Vec<Vec<u8>>,
    starts: Vec<Vec<u8>>,
    rng: ChaCha8Rng,
    /// Greedy: each start's current sequence; evolve: the population.
    current: Vec<Candidate>,
    /// Greedy: the start being improved, and its round.
    start: usize,
    round: usize,
    /// Every sequence proposed (evolve proposes each once).
    seen: HashSet<Vec<u8>>,
    /// Evolve: the best candidates ever scored, best first.
    best: Vec<Candidate>,
    start_predictions: Vec<f32>,
    trajectory: Vec<Step>,
    pending: Option<(Pending, Batch)>,
    scored: usize,
    finished: bool,
}

/// Tries to draw a random start or a child before giving up.
const TRIES: usize = 10_000;

impl Design {
    /// Checks the task and draws any random starts; the start sequences are
    /// put inside `flanks` when they have neither (a variable region alone).
    pub fn new(spec: DesignSpec, flanks: &Flanks, seq_len: usize) -> Result<Self, DesignError> {
        check_settings(&spec)?;
        let forbidden = motifs(&spec.constraints.forbidden)?;
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
        let fixed = flanks.five.len() + flanks.three.len();
        let (starts, editable) = match &spec.starts {
            Starts::Given(sequences) => given_starts(sequences, flanks, seq_len)?,
            Starts::Random { count, length } => {
                if *length == 0 || length + fixed > seq_len {
                    return Err(DesignError::Setting(format!(
                        "random regions of {length} bases: the model reads {seq_len} with {fixed} of flanks"
                    )));
                }
                let editable = flanks.five.len()..flanks.five.len() + length;
                let template = format!("{}{}{}", flanks.five, "A".repeat(*length), flanks.three);
                let template = encode_for(&template, seq_len)?;
                check_fixed(&template, &editable, &forbidden, &spec.constraints)?;
                let rules = Rules {
                    constraints: &spec.constraints,
                    forbidden: &forbidden,
                    editable: &editable,
                };
                let starts = (0..*count)
                    .map(|_| rules.random(&template, &mut rng))
                    .collect::<Result<Vec<_>, _>>()?;
                (starts, editable)
            }
        };
        let rules = Rules {
            constraints: &spec.constraints,
            forbidden: &forbidden,
            editable: &editable,
        };
        for (i, codes) in starts.iter().enumerate() {
            check_fixed(codes, &editable, &forbidden, &spec.constraints)?;
            rules.violation(codes, codes).map_or(Ok(()), |problem| {
                Err(DesignError::Start {
                    index: i + 1,
                    problem: format!("{problem}; change it or the constraint"),
                })
            })?;
        }
        let mut design = Design {
            spec,
            editable,
            forbidden,
            starts,
            rng,
            current: Vec::new(),
            start: 0,
            round: 0,
            seen: HashSet::new(),
            best: Vec::new(),
            start_predictions: Vec::new(),
            trajectory: Vec::new(),
            pending: None,
            scored: 0,
            finished: false,
        };
        let first = design.first_sequences();
        design.set_pending(Pending::Sequences(first));
        Ok(design)
    }

    /// The positions that may change (the variable region).
    pub fn editable(&self) -> Range<usize> {
        self.editable.clone()
    }

    /// The batch to predict next, or `None` when the design is done. Asked
    /// again before [`Design::tell`], it is the same batch.
    pub fn ask(&mut self) -> Option<&Batch> {
        if self.pending.is_none() && !self.finished {
            self.next_batch();
        }
        self.pending.as_ref().map(|(_, batch)| batch)
    }

    /// The predictions for the batch [`Design::ask`] gave, in its order.
    pub fn tell(&mut self, predictions: &[f32]) -> Result<(), DesignError> {
        let Some((pending, batch)) = self.pending.take() else {
            return Err(DesignError::Predictions {
                got: predictions.len(),
                expected: 0,
            });
        };
        if predictions.len() != batch.len() {
            let expected = batch.len();
            self.pending = Some((pending, batch));
            return Err(DesignError::Predictions {
                got: predictions.len(),
                expected,
            });
        }
        self.scored += predictions.len();
        match pending {
            Pending::Sequences(proposed) => {
                let scored =
                    proposed
                        .into_iter()
                        .zip(predictions)
                        .map(|((codes, origin), &prediction)| Candidate {
                            codes,
                            origin,
                            prediction,
                        });
                self.take_sequences(scored.collect());
            }
            Pending::Neighbours(substitutions) => {
                self.take_neighbour(&substitutions, predictions)?;
            }
        }
        Ok(())
    }

    /// Work done and the most there can be, in rounds or generations (for a
    /// progress bar; greedy may finish early).
    pub fn progress(&self) -> (usize, usize) {
        match self.spec.strategy {
            Strategy::Greedy { rounds } => {
                let total = self.starts.len() * (rounds + 1);
                let done = if self.finished {
                    total
                } else if self.current.is_empty() {
                    0
                } else {
                    self.starts.len() + self.start * rounds + self.round
                };
                (done, total)
            }
            Strategy::Evolve { generations, .. } => (self.trajectory.len(), generations + 1),
        }
    }

    /// What the design has found so far (everything, once [`Design::ask`]
    /// gives `None`).
    pub fn result(&self) -> DesignResult {
        let designed = |c: &Candidate| Designed {
            sequence: decode(&c.codes),
            prediction: c.prediction,
            start: c.origin + 1,
            mutations: differences(&self.starts[c.origin], &c.codes),
        };
        let objective = self.spec.objective;
        let mut designs: Vec<Candidate> = match self.spec.strategy {
            Strategy::Greedy { .. } => self.current.clone(),
            Strategy::Evolve { .. } => self.best.clone(),
        };
        sort_best_first(&mut designs, objective);
        designs.truncate(self.spec.keep);
        DesignResult {
            objective,
            starts: self
                .starts
                .iter()
                .zip(&self.start_predictions)
                .enumerate()
                .map(|(origin, (codes, &prediction))| {
                    designed(&Candidate {
                        codes: codes.clone(),
                        origin,
                        prediction,
                    })
                })
                .collect(),
            designs: designs.iter().map(designed).collect(),
            trajectory: self.trajectory.clone(),
            scored: self.scored,
        }
    }

    fn rules(&self) -> Rules<'_> {
        Rules {
            constraints: &self.spec.constraints,
            forbidden: &self.forbidden,
            editable: &self.editable,
        }
    }

    fn fitness(&self, prediction: f32) -> f32 {
        self.spec.objective.fitness(prediction)
    }

    fn set_pending(&mut self, pending: Pending) {
        let batch = match &pending {
            Pending::Sequences(proposed) => {
                Batch::Sequences(proposed.iter().map(|(codes, _)| decode(codes)).collect())
            }
            Pending::Neighbours(substitutions) => Batch::Substitutions {
                sequence: decode(&self.current[self.start].codes),
                substitutions: substitutions.clone(),
            },
        };
        self.pending = Some((pending, batch));
    }

    /// Greedy: the starts. Evolve: the starts, then mutants of them in
    /// turn up to the population's size.
    fn first_sequences(&mut self) -> Vec<(Vec<u8>, usize)> {
        let mut first: Vec<(Vec<u8>, usize)> = Vec::new();
        for (origin, codes) in self.starts.iter().enumerate() {
            if self.seen.insert(codes.clone()) {
                first.push((codes.clone(), origin));
            }
        }
        if let Strategy::Evolve { population, .. } = self.spec.strategy {
            let mut origin = 0;
            let mut misses = 0;
            while first.len() < population && misses < TRIES {
                let mut child = self.starts[origin].clone();
                self.mutate(&mut child);
                if self.admit(&child, origin) {
                    first.push((child, origin));
                    origin = (origin + 1) % self.starts.len();
                } else {
                    misses += 1;
                }
            }
        }
        first
    }

    fn take_sequences(&mut self, scored: Vec<Candidate>) {
        if self.start_predictions.is_empty() {
            self.start_predictions = self
                .starts
                .iter()
                .map(|codes| {
                    scored
                        .iter()
                        .find(|c| &c.codes == codes)
                        .map_or(f32::NAN, |c| c.prediction)
                })
                .collect();
        }
        match self.spec.strategy {
            Strategy::Greedy { .. } => {
                // The starts, each its own path (a repeated start shares a score).
                self.current = (0..self.starts.len())
                    .map(|origin| Candidate {
                        codes: self.starts[origin].clone(),
                        origin,
                        prediction: self.start_predictions[origin],
                    })
                    .collect();
                for c in &self.current {
                    self.trajectory.push(Step {
                        start: c.origin + 1,
                        round: 0,
                        prediction: c.prediction,
                        mutation: None,
                    });
                }
            }
            Strategy::Evolve { population, .. } => {
                let elites = if self.current.is_empty() {
                    Vec::new()
                } else {
                    self.current[..elite_count(population).min(self.current.len())].to_vec()
                };
                self.remember(&scored);
                self.current = elites.into_iter().chain(scored).collect();
                sort_best_first(&mut self.current, self.spec.objective);
                let top = &self.current[0];
                self.trajectory.push(Step {
                    start: top.origin + 1,
                    round: self.trajectory.len(),
                    prediction: top.prediction,
                    mutation: None,
                });
            }
        }
    }

    /// Keeps the best `keep` candidates ever scored, best first.
    fn remember(&mut self, scored: &[Candidate]) {
        self.best.extend(scored.iter().cloned());
        sort_best_first(&mut self.best, self.spec.objective);
        self.best.truncate(self.spec.keep);
    }

    /// Greedy: take the best substitution if it improves, else end this start.
    fn take_neighbour(
        &mut self,
        substitutions: &[Substitution],
        predictions: &[f32],
    ) -> Result<(), DesignError> {
        let mut best: Option<usize> = None;
        for (i, &p) in predictions.iter().enumerate() {
            if best.is_none_or(|b| self.fitness(p) > self.fitness(predictions[b])) {
                best = Some(i);
            }
        }
        let current = &self.current[self.start];
        match best {
            Some(i) if self.fitness(predictions[i]) > self.fitness(current.prediction) => {
                let s = substitutions[i];
                let alternative = s.alternative_code()?;
                let current = &mut self.current[self.start];
                current.codes[s.position] = alternative;
                current.prediction = predictions[i];
                self.round += 1;
                self.trajectory.push(Step {
                    start: self.start + 1,
                    round: self.round,
                    prediction: predictions[i],
                    mutation: Some(s),
                });
            }
            _ => self.next_start(),
        }
        Ok(())
    }

    fn next_start(&mut self) {
        self.start += 1;
        self.round = 0;
    }

    fn next_batch(&mut self) {
        match self.spec.strategy {
            Strategy::Greedy { rounds } => {
                while self.start < self.starts.len() {
                    if self.round < rounds {
                        let substitutions = self.neighbours(&self.current[self.start]);
                        if !substitutions.is_empty() {
                            self.set_pending(Pending::Neighbours(substitutions));
                            return;
                        }
                    }
                    self.next_start();
                }
                self.finished = true;
            }
            Strategy::Evolve { generations, .. } => {
                if self.trajectory.len() > generations {
                    self.finished = true;
                    return;
                }
                let children = self.children();
                if children.is_empty() {
                    self.finished = true;
                } else {
                    self.set_pending(Pending::Sequences(children));
                }
            }
        }
    }

    /// Every allowed single substitution of `c`, position-major.
    fn neighbours(&self, c: &Candidate) -> Vec<Substitution> {
        let rules = self.rules();
        let origin = &self.starts[c.origin];
        let mut codes = c.codes.clone();
        let mut allowed = Vec::new();
        for position in self.editable.clone() {
            let reference = codes[position];
            for alternative in 0..4u8 {
                if alternative == reference {
                    continue;
                }
                codes[position] = alternative;
                if rules.violation(&codes, origin).is_none() {
                    allowed.push(Substitution {
                        position,
                        reference: base_of(reference),
                        alternative: base_of(alternative),
                    });
                }
            }
            codes[position] = reference;
        }
        allowed
    }

    /// Evolve: the next generation's new candidates (all but the elites).
    fn children(&mut self) -> Vec<(Vec<u8>, usize)> {
        let Strategy::Evolve { population, .. } = self.spec.strategy else {
            unreachable!("children are evolve's")
        };
        let wanted = population - elite_count(population);
        let mut children = Vec::with_capacity(wanted);
        let mut misses = 0;
        while children.len() < wanted && misses < TRIES {
            let a = self.tournament();
            let mut child = self.current[a].codes.clone();
            let origin = self.current[a].origin;
            if self.rng.random_bool(0.5) {
                let b = self.tournament();
                for p in self.editable.clone() {
                    if self.rng.random_bool(0.5) {
                        child[p] = self.current[b].codes[p];
                    }
                }
            }
            self.mutate(&mut child);
            if self.admit(&child, origin) {
                children.push((child, origin));
            } else {
                misses += 1;
            }
        }
        children
    }

    /// Whether a new candidate from start `origin` meets the constraints and
    /// was never proposed before (then it counts as proposed).
    fn admit(&mut self, codes: &[u8], origin: usize) -> bool {
        self.rules()
            .violation(codes, &self.starts[origin])
            .is_none()
            && self.seen.insert(codes.to_vec())
    }

    /// The fittest of three candidates drawn at random (the earlier on ties).
    fn tournament(&mut self) -> usize {
        let n = self.current.len();
        let mut best = self.rng.random_range(0..n);
        for _ in 0..2 {
            let other = self.rng.random_range(0..n);
            let (fo, fb) = (
                self.fitness(self.current[other].prediction),
                self.fitness(self.current[best].prediction),
            );
            if fo > fb || (fo == fb && other < best) {
                best = other;
            }
        }
        best
    }

    /// One or two random substitutions in the variable region.
    fn mutate(&mut self, codes: &mut [u8]) {
        let count = self.rng.random_range(1..=2);
        for _ in 0..count {
            let position = self.rng.random_range(self.editable.clone());
            codes[position] = (codes[position] + self.rng.random_range(1..4)) % 4;
        }
    }
}

/// Best first by `objective`; ties keep their order.
fn sort_best_first(candidates: &mut [Candidate], objective: Objective) {
    candidates.sort_by(|a, b| {
        objective
            .fitness(b.prediction)
            .total_cmp(&objective.fitness(a.prediction))
    });
}

fn elite_count(population: usize) -> usize {
    (population / 8).max(1)
}

/// Scores a design to the end on one model in eval mode (`chunk` sequences
/// per forward pass), calling `progress` after each batch.
pub fn run(
    design: &mut Design,
    model: &Model,
    seq_len: usize,
    chunk: usize,
    mut progress: impl FnMut(&Design),
) -> Result<DesignResult, DesignError> {
    while let Some(batch) = design.ask() {
        let batch = batch.clone();
        let mut predictions = Vec::with_capacity(batch.len());
        for start in (0..batch.len()).step_by(chunk.max(1)) {
            let range = start..(start + chunk.max(1)).min(batch.len());
            let y = batch.predict(model, seq_len, range)?;
            let values = y
                .into_data()
                .try_into_vec_as::<f32>()
                .map_err(|e| DesignError::Read(format!("{e:?}")))?;
            predictions.extend(values);
        }
        design.tell(&predictions)?;
        progress(design);
    }
    Ok(design.result())
}

/// The constraints and what they apply to.
struct Rules<'a> {
    constraints: &'a Constraints,
    forbidden: &'a [Vec<u8>],
    editable: &'a Range<usize>,
}

impl Rules<'_> {
    /// The first constraint `codes` (descended from `origin`) breaks.
    fn violation(&self, codes: &[u8], origin: &[u8]) -> Option<String> {
        let c = self.constraints;
        if let Some(k) = c.max_mutations {
            let n = differences(origin, codes).len();
            if n > k {
                return Some(format!("{n} substitutions from the start, more than {k}"));
            }
        }
        if let Some((min, max)) = c.gc {
            let gc = gc_fraction(&codes[self.editable.clone()]);
            if gc < min - 1e-6 || gc > max + 1e-6 {
                return Some(format!(
                    "GC {:.1}% of the variable region, outside {:.1}–{:.1}%",
                    gc * 100.0,
                    min * 100.0,
                    max * 100.0
                ));
            }
        }
        for motif in self.forbidden {
            if let Some(at) = find(codes, motif) {
                return Some(format!(
                    "holds the forbidden {} at {}..{}",
                    decode(motif),
                    at + 1,
                    at + motif.len()
                ));
            }
        }
        let limit = c.max_homopolymer?;
        let (at, run) = longest_run(codes, self.editable).filter(|&(_, n)| n > limit)?;
        Some(format!(
            "a run of {run} {} at {}, longer than {limit}",
            base_of(codes[at]),
            at + 1
        ))
    }

    /// A random variable region in `template`'s flanks that meets the
    /// constraints (GC drawn near the window's middle).
    fn random(&self, template: &[u8], rng: &mut ChaCha8Rng) -> Result<Vec<u8>, DesignError> {
        let gc = self
            .constraints
            .gc
            .map_or(0.5, |(min, max)| (min + max) / 2.0) as f64;
        for _ in 0..TRIES {
            let mut codes = template.to_vec();
            for p in self.editable.clone() {
                let strong = rng.random_bool(gc);
                let second = rng.random_bool(0.5);
                // A=0, C=1, G=2, T=3: C/G strong, A/T weak.
                codes[p] = match (strong, second) {
                    (true, false) => 1,
                    (true, true) => 2,
                    (false, false) => 0,
                    (false, true) => 3,
                };
            }
            // Its own origin: no substitutions to count.
            if self.violation(&codes, &codes).is_none() {
                return Ok(codes);
            }
        }
        Err(DesignError::Constraint(format!(
            "no random region of {} bases meeting the constraints in {TRIES} draws",
            self.editable.len()
        )))
    }
}

/// Settings that make no sense, before anything else.
fn check_settings(spec: &DesignSpec) -> Result<(), DesignError> {
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
    match &spec.starts {
        Starts::Given(s) if s.is_empty() => return bad("no start sequence".into()),
        Starts::Random { count: 0, .. } => return bad("0 random starts".into()),
        _ => {}
    }
    if let Some((min, max)) = spec.constraints.gc {
        if !(0.0..=1.0).contains(&min) || !(0.0..=1.0).contains(&max) {
            return Err(DesignError::Constraint(format!(
                "GC window {:.1}–{:.1}%: both ends must lie in 0–100%",
                min * 100.0,
                max * 100.0
            )));
        }
        if min > max {
            return Err(DesignError::Constraint(format!(
                "GC window {:.1}–{:.1}%: the minimum is above the maximum",
                min * 100.0,
                max * 100.0
            )));
        }
    }
    if spec.constraints.max_homopolymer == Some(0) {
        return Err(DesignError::Constraint(
            "a longest homopolymer of 0: every base is a run of 1".into(),
        ));
    }
    Ok(())
}

/// Forbidden sequences and their reverse complements, as codes.
fn motifs(forbidden: &[String]) -> Result<Vec<Vec<u8>>, DesignError> {
    let mut all: Vec<Vec<u8>> = Vec::new();
    for motif in forbidden {
        let codes = encode(motif.trim())
            .ok()
            .filter(|c| !c.is_empty() && c.iter().all(|&b| b < CODE_N))
            .ok_or_else(|| {
                DesignError::Constraint(format!(
                    "forbidden sequence {motif:?}: expected A, C, G and T only"
                ))
            })?;
        let reverse: Vec<u8> = codes.iter().rev().map(|&b| complement(b)).collect();
        for m in [codes, reverse] {
            if !all.contains(&m) {
                all.push(m);
            }
        }
    }
    Ok(all)
}

/// A forbidden sequence inside the fixed flanks, which no design can change;
/// a GC window no variable region of this length can meet.
fn check_fixed(
    codes: &[u8],
    editable: &Range<usize>,
    forbidden: &[Vec<u8>],
    constraints: &Constraints,
) -> Result<(), DesignError> {
    for motif in forbidden {
        for at in 0..(codes.len() + 1).saturating_sub(motif.len()) {
            let span = at..at + motif.len();
            let fixed = span.end <= editable.start || span.start >= editable.end;
            if fixed && codes[span.clone()] == motif[..] {
                return Err(DesignError::Constraint(format!(
                    "the forbidden {} occurs in a fixed flank at {}..{}: no design can avoid it",
                    decode(motif),
                    span.start + 1,
                    span.end
                )));
            }
        }
    }
    if let Some((min, max)) = constraints.gc {
        let n = editable.len() as f32;
        let (lo, hi) = ((min * n - 1e-4).ceil(), (max * n + 1e-4).floor());
        if lo > hi {
            return Err(DesignError::Constraint(format!(
                "GC window {:.1}–{:.1}%: no variable region of {n} bases has a G/C count in it",
                min * 100.0,
                max * 100.0
            )));
        }
    }
    Ok(())
}

/// The given starts as codes, inside the flanks, and the variable region
/// they share.
fn given_starts(
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

fn differences(origin: &[u8], codes: &[u8]) -> Vec<Substitution> {
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

fn gc_fraction(codes: &[u8]) -> f32 {
    let gc = codes.iter().filter(|&&c| c == 1 || c == 2).count();
    gc as f32 / codes.len().max(1) as f32
}

fn find(codes: &[u8], motif: &[u8]) -> Option<usize> {
    codes.windows(motif.len()).position(|w| w == motif)
}

/// The longest run of one base that touches `editable`: (start, length).
fn longest_run(codes: &[u8], editable: &Range<usize>) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize)> = None;
    let mut start = 0;
    for end in 1..=codes.len() {
        if end == codes.len() || codes[end] != codes[start] {
            let touches = start < editable.end && end > editable.start;
            if touches && best.is_none_or(|(_, n)| end - start > n) {
                best = Some((start, end - start));
            }
            start = end;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{
        ProptestConfig, any, prop_assert, prop_assert_eq, prop_assert_ne, proptest,
    };

    /// A stand-in for the model: G and C weigh by position, runs of A cost.
    fn toy(sequence: &str) -> f32 {
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

    /// Runs a design on [`toy`], handing every proposed sequence to `proposed`.
    fn drive(design: &mut Design, mut proposed: impl FnMut(&str)) -> DesignResult {
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
            let predictions: Vec<f32> = sequences.iter().map(|s| toy(s)).collect();
            design.tell(&predictions).unwrap();
        }
        design.result()
    }

    fn reverse_complement(s: &str) -> String {
        crate::encoding::reverse_complement(s).unwrap()
    }

    fn longest_touching_run(s: &str, region: &Range<usize>) -> usize {
        let b = s.as_bytes();
        let mut best = 0;
        let mut start = 0;
        for end in 1..=b.len() {
            if end == b.len() || b[end] != b[start] {
                if start < region.end && end > region.start {
                    best = best.max(end - start);
                }
                start = end;
            }
        }
        best
    }

    fn spec(starts: Starts, strategy: Strategy, constraints: Constraints, seed: u64) -> DesignSpec {
        DesignSpec {
            starts,
            objective: Objective::Maximise,
            constraints,
            strategy,
            seed,
            keep: 5,
        }
    }

    const START: &str = "TGCATTTTTTTCACATCCTTCAACCAAAATATAATATTCAATATCTTGTAGGGACGATCAATATAAGTCGCCCGGACCATATAAGGCTAAGGTGTGGGGTTACGGCTGTT";

    fn type_iis() -> Vec<String> {
        TYPE_IIS.iter().map(|(_, s)| s.to_string()).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// Every sequence proposed, and so every design, meets every constraint.
        #[test]
        fn constraints_hold_on_every_proposed_sequence(
            seed in 0u64..1_000,
            evolve in any::<bool>(),
            given in any::<bool>(),
            k in 2usize..12,
            homopolymer in 3usize..6,
            gc_low in 0.3f32..0.45,
        ) {
            let gc = (gc_low, gc_low + 0.15);
            let constraints = Constraints {
                max_mutations: Some(k),
                gc: Some(gc),
                forbidden: type_iis(),
                max_homopolymer: Some(homopolymer),
            };
            let starts = if given {
                Starts::Given(vec![START[17..97].to_string()])
            } else {
                Starts::Random { count: 3, length: 80 }
            };
            let strategy = if evolve {
                Strategy::Evolve { population: 16, generations: 4 }
            } else {
                Strategy::Greedy { rounds: 6 }
            };
            let flanks = Flanks::dream();
            // The example's own runs and GC may break the drawn limits: then it
            // must say so before any work.
            let mut design = match Design::new(spec(starts, strategy, constraints, seed), &flanks, 111) {
                Ok(design) => design,
                Err(e) => {
                    prop_assert!(given && matches!(e, DesignError::Start { index: 1, .. }), "{e}");
                    return Ok(());
                }
            };
            let region = design.editable();
            let check = |s: &str| {
                let variable = &s[region.clone()];
                let gc_share = variable.bytes().filter(|&b| b == b'G' || b == b'C').count() as f32
                    / variable.len() as f32;
                assert!(gc_share >= gc.0 - 1e-6 && gc_share <= gc.1 + 1e-6, "GC {gc_share} in {s}");
                for motif in type_iis() {
                    assert!(!s.contains(&motif) && !s.contains(&reverse_complement(&motif)), "{motif} in {s}");
                }
                assert!(longest_touching_run(s, &region) <= homopolymer, "run in {s}");
                assert!(s.starts_with(&flanks.five) && s.ends_with(&flanks.three), "flanks of {s}");
            };
            let result = drive(&mut design, check);
            prop_assert!(!result.designs.is_empty());
            for d in result.designs.iter().chain(&result.starts) {
                check(&d.sequence);
                prop_assert!(d.mutations.len() <= k, "{} mutations", d.mutations.len());
                let start = &result.starts[d.start - 1].sequence;
                let differ = start.bytes().zip(d.sequence.bytes()).filter(|(a, b)| a != b).count();
                prop_assert_eq!(differ, d.mutations.len());
                prop_assert!((toy(&d.sequence) - d.prediction).abs() < 1e-6);
            }
        }

        /// Greedy takes a substitution only when it raises the objective, and
        /// the same seed gives the same sequences.
        #[test]
        fn greedy_never_lowers_the_objective_and_a_seed_repeats(
            seed in 0u64..1_000,
            target in proptest::option::of(0.5f32..3.0),
        ) {
            let mut s = spec(
                Starts::Random { count: 2, length: 80 },
                Strategy::Greedy { rounds: 8 },
                Constraints::default(),
                seed,
            );
            s.objective = target.map_or(Objective::Maximise, Objective::Target);
            let objective = s.objective;
            let run = |s: &DesignSpec| drive(&mut Design::new(s.clone(), &Flanks::dream(), 111).unwrap(), |_| {});
            let result = run(&s);
            for start in 1..=2 {
                let path: Vec<&Step> = result.trajectory.iter().filter(|s| s.start == start).collect();
                prop_assert_eq!(path[0].round, 0);
                for pair in path.windows(2) {
                    prop_assert!(objective.fitness(pair[1].prediction) > objective.fitness(pair[0].prediction));
                    prop_assert_eq!(pair[1].round, pair[0].round + 1);
                    prop_assert!(pair[1].mutation.is_some());
                }
            }
            prop_assert_eq!(run(&s), result.clone());
            let mut evolve = s.clone();
            evolve.strategy = Strategy::Evolve { population: 12, generations: 3 };
            let first = run(&evolve);
            prop_assert_eq!(run(&evolve), first.clone());
            evolve.seed += 1;
            prop_assert_ne!(run(&evolve).designs, first.designs);
        }
    }

    #[test]
    fn evolve_improves_on_its_starts_and_keeps_the_best_distinct() {
        let s = spec(
            Starts::Given(vec![START.to_string()]),
            Strategy::Evolve {
                population: 24,
                generations: 8,
            },
            Constraints::default(),
            7,
        );
        let mut design = Design::new(s, &Flanks::dream(), 111).unwrap();
        let result = drive(&mut design, |_| {});
        assert_eq!(result.trajectory.len(), 9);
        assert_eq!(result.designs.len(), 5);
        assert!(result.designs[0].prediction > result.starts[0].prediction);
        let distinct: HashSet<&str> = result.designs.iter().map(|d| d.sequence.as_str()).collect();
        assert_eq!(distinct.len(), 5);
        assert!(
            result
                .designs
                .windows(2)
                .all(|w| w[0].prediction >= w[1].prediction)
        );
        // 24 first, then 21 children (3 elites) a generation.
        assert_eq!(result.scored, 24 + 8 * 21);
        assert!(result.csv().lines().nth(2).unwrap().starts_with("1,1,"));
        assert!(result.fasta().starts_with(">design_1 prediction="));
    }

    #[test]
    fn impossible_constraints_are_refused_before_any_work() {
        let refused = |constraints: Constraints, starts: Starts| {
            let s = spec(starts, Strategy::Greedy { rounds: 3 }, constraints, 1);
            Design::new(s, &Flanks::dream(), 111)
                .err()
                .unwrap()
                .to_string()
        };
        let random = Starts::Random {
            count: 1,
            length: 80,
        };
        let gc = |min, max| Constraints {
            gc: Some((min, max)),
            ..Constraints::default()
        };
        assert!(refused(gc(0.6, 0.4), random.clone()).contains("minimum is above the maximum"));
        assert!(refused(gc(0.501, 0.509), random.clone()).contains("no variable region of 80"));
        let in_flank = Constraints {
            forbidden: vec!["CACATC".into()],
            ..Constraints::default()
        };
        let message = refused(in_flank, random.clone());
        assert!(
            message.contains("CACATC occurs in a fixed flank at 12..17"),
            "{message}"
        );
        let bad = Constraints {
            forbidden: vec!["GGXC".into()],
            ..Constraints::default()
        };
        assert!(refused(bad, random.clone()).contains("\"GGXC\""));
        // The start breaks a constraint: says which, where.
        let homopolymer = Constraints {
            max_homopolymer: Some(3),
            ..Constraints::default()
        };
        let message = refused(homopolymer, Starts::Given(vec![START.into()]));
        assert!(
            message.starts_with("start sequence 1: a run of 4 A at 26"),
            "{message}"
        );
        assert!(
            refused(
                Constraints::default(),
                Starts::Given(vec!["ACGTNACGT".into()])
            )
            .contains("an N at 22")
        );
        let s = spec(
            random,
            Strategy::Evolve {
                population: 1,
                generations: 2,
            },
            Constraints::default(),
            1,
        );
        assert!(Design::new(s, &Flanks::dream(), 111).is_err());
    }

    #[test]
    fn predictions_must_match_the_batch() {
        let s = spec(
            Starts::Given(vec![START.into()]),
            Strategy::Greedy { rounds: 1 },
            Constraints::default(),
            1,
        );
        let mut design = Design::new(s, &Flanks::dream(), 111).unwrap();
        assert_eq!(design.ask().unwrap().len(), 1);
        assert_eq!(
            design.tell(&[1.0, 2.0]),
            Err(DesignError::Predictions {
                got: 2,
                expected: 1
            })
        );
        design.tell(&[1.0]).unwrap();
        // Every substitution of the variable region: 80 × 3.
        assert_eq!(design.ask().unwrap().len(), 240);
    }

    /// A substitution to no base is refused, never read as an A.
    #[test]
    fn a_substitution_to_no_base_is_refused() {
        let s = spec(
            Starts::Given(vec![START.into()]),
            Strategy::Greedy { rounds: 1 },
            Constraints::default(),
            1,
        );
        let mut design = Design::new(s, &Flanks::dream(), 111).unwrap();
        design.ask();
        design.tell(&[0.0]).unwrap();
        let mut predictions = vec![0.0; design.ask().unwrap().len()];
        let Some((Pending::Neighbours(substitutions), _)) = &mut design.pending else {
            panic!("greedy asks for the start's neighbours");
        };
        substitutions[0].alternative = 'X';
        predictions[0] = 1.0;
        assert_eq!(
            design.tell(&predictions),
            Err(DesignError::Encode(EncodeError::Substitution(
                "C18X".into()
            )))
        );
        assert_eq!(design.current[0].codes, encode(START).unwrap());
    }

    /// On a real (tiny, random) network: each design's prediction is the
    /// network's for that sequence, though greedy scored it incrementally.
    #[test]
    fn designs_carry_the_networks_predictions() {
        let device = Device::flex();
        device.seed(5);
        let model = crate::ModelConfig::tiny().init(&device);
        for strategy in [
            Strategy::Greedy { rounds: 2 },
            Strategy::Evolve {
                population: 8,
                generations: 2,
            },
        ] {
            let s = spec(
                Starts::Given(vec![START.into()]),
                strategy,
                Constraints::default(),
                3,
            );
            let mut design = Design::new(s, &Flanks::dream(), 111).unwrap();
            let result = run(&mut design, &model, 111, 50, |_| {}).unwrap();
            let sequences: Vec<&str> = result.designs.iter().map(|d| d.sequence.as_str()).collect();
            let x = Tensor::<3>::from_data(one_hot(&sequences, 111).unwrap(), &device);
            let whole = model.forward(x).into_data().try_to_vec::<f32>().unwrap();
            for (d, w) in result.designs.iter().zip(whole) {
                assert!((d.prediction - w).abs() < 1e-4, "{} vs {w}", d.prediction);
            }
        }
    }
}
