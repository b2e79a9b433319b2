//! The search: [`Design`] proposes batches of sequences ([`Batch`]) and is
//! told their predictions, greedy or evolving; [`run`] scores one to the
//! end on a model.

use std::collections::HashSet;
use std::ops::Range;

use burn::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::constraints::{Rules, check_constraints, motifs};
use super::output::{DesignResult, Designed, Step, differences};
use super::spec::{
    DesignError, DesignSpec, Starts, Strategy, check_settings, given_starts, random_template,
};
use crate::blocks::model::Model;
use crate::encoding::{EncodeError, Flanks, base_of, decode, one_hot};
use crate::ensemble::{Ensemble, Prediction};
use crate::ism::{Mutagenesis, Substitution};

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

/// A scored or proposed sequence (codes 0..4 for A, C, G, T).
#[derive(Clone, Debug)]
struct Candidate {
    codes: Vec<u8>,
    /// Index into the starts.
    origin: usize,
    prediction: Prediction,
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
    start_predictions: Vec<Prediction>,
    trajectory: Vec<Step>,
    pending: Option<(Pending, Batch)>,
    scored: usize,
    finished: bool,
}

/// Tries to draw a random start or a child before giving up.
pub(super) const TRIES: usize = 10_000;

impl Design {
    /// Checks the task and draws any random starts; the start sequences are
    /// put inside `flanks` when they have neither (a variable region alone).
    pub fn new(spec: DesignSpec, flanks: &Flanks, seq_len: usize) -> Result<Self, DesignError> {
        check_settings(&spec)?;
        check_constraints(&spec.constraints)?;
        let forbidden = motifs(&spec.constraints.forbidden)?;
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
        let (starts, editable) = match &spec.starts {
            Starts::Given(sequences) => given_starts(sequences, flanks, seq_len)?,
            Starts::Random { count, length } => {
                let (template, editable) = random_template(*length, flanks, seq_len)?;
                let rules = Rules::new(&spec.constraints, &forbidden, &editable);
                rules.check_fixed(&template)?;
                let starts = (0..*count)
                    .map(|_| rules.random(&template, &mut rng))
                    .collect::<Result<Vec<_>, _>>()?;
                (starts, editable)
            }
        };
        Rules::new(&spec.constraints, &forbidden, &editable).check_starts(&starts)?;
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

    /// The predictions for the batch [`Design::ask`] gave, in its order
    /// (an ensemble's mean and spread; [`Prediction::rows`]).
    pub fn tell(&mut self, predictions: &[Prediction]) -> Result<(), DesignError> {
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
            prediction: c.prediction.mean,
            sd: c.prediction.sd,
            start: c.origin + 1,
            mutations: differences(&self.starts[c.origin], &c.codes),
        };
        let mut designs: Vec<Candidate> = match self.spec.strategy {
            Strategy::Greedy { .. } => self.current.clone(),
            Strategy::Evolve { .. } => self.best.clone(),
        };
        sort_best_first(&mut designs, &self.spec);
        designs.truncate(self.spec.keep);
        DesignResult {
            objective: self.spec.objective,
            caution: self.spec.caution,
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
        Rules::new(&self.spec.constraints, &self.forbidden, &self.editable)
    }

    fn fitness(&self, prediction: Prediction) -> f32 {
        self.spec.fitness(prediction)
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

    /// Whole sequences scored: the starts' predictions the first time; then
    /// greedy's paths begin, or evolve's generation is in.
    fn take_sequences(&mut self, scored: Vec<Candidate>) {
        if self.start_predictions.is_empty() {
            self.start_predictions = self
                .starts
                .iter()
                .map(|codes| {
                    scored.iter().find(|c| &c.codes == codes).map_or(
                        Prediction {
                            mean: f32::NAN,
                            sd: f32::NAN,
                        },
                        |c| c.prediction,
                    )
                })
                .collect();
        }
        match self.spec.strategy {
            Strategy::Greedy { .. } => self.begin_paths(),
            Strategy::Evolve { population, .. } => self.take_generation(scored, population),
        }
    }

    /// Greedy: the starts, each its own path (a repeated start shares a score).
    fn begin_paths(&mut self) {
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
                prediction: c.prediction.mean,
                mutation: None,
            });
        }
    }

    /// Evolve: the elites and the scored children are the new population.
    fn take_generation(&mut self, scored: Vec<Candidate>, population: usize) {
        let elites = if self.current.is_empty() {
            Vec::new()
        } else {
            self.current[..elite_count(population).min(self.current.len())].to_vec()
        };
        self.remember(&scored);
        self.current = elites.into_iter().chain(scored).collect();
        sort_best_first(&mut self.current, &self.spec);
        let top = &self.current[0];
        self.trajectory.push(Step {
            start: top.origin + 1,
            round: self.trajectory.len(),
            prediction: top.prediction.mean,
            mutation: None,
        });
    }

    /// Keeps the best `keep` candidates ever scored, best first.
    fn remember(&mut self, scored: &[Candidate]) {
        self.best.extend(scored.iter().cloned());
        sort_best_first(&mut self.best, &self.spec);
        self.best.truncate(self.spec.keep);
    }

    /// Greedy: take the best substitution if it improves, else end this start.
    fn take_neighbour(
        &mut self,
        substitutions: &[Substitution],
        predictions: &[Prediction],
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
                    prediction: predictions[i].mean,
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

/// Best first by the spec's fitness; ties keep their order.
fn sort_best_first(candidates: &mut [Candidate], spec: &DesignSpec) {
    candidates.sort_by(|a, b| {
        spec.fitness(b.prediction)
            .total_cmp(&spec.fitness(a.prediction))
    });
}

fn elite_count(population: usize) -> usize {
    (population / 8).max(1)
}

/// Scores a design to the end on a network or an ensemble in eval mode
/// (`chunk` sequences per forward pass), calling `progress` after each batch.
pub fn run(
    design: &mut Design,
    ensemble: &Ensemble,
    seq_len: usize,
    chunk: usize,
    mut progress: impl FnMut(&Design),
) -> Result<DesignResult, DesignError> {
    while let Some(batch) = design.ask() {
        let batch = batch.clone();
        let mut predictions = Vec::with_capacity(batch.len());
        for start in (0..batch.len()).step_by(chunk.max(1)) {
            let range = start..(start + chunk.max(1)).min(batch.len());
            let y = ensemble.each(|model| batch.predict(model, seq_len, range.clone()))?;
            let values = y
                .into_data()
                .try_into_vec_as::<f32>()
                .map_err(|e| DesignError::Read(format!("{e:?}")))?;
            predictions.extend(Prediction::rows(&values, ensemble.len()));
        }
        design.tell(&predictions)?;
        progress(design);
    }
    Ok(design.result())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::{
        ProptestConfig, prop_assert, prop_assert_eq, prop_assert_ne, proptest,
    };

    use super::*;
    use crate::design::testing::{START, drive, spec};
    use crate::design::{Constraints, Objective};
    use crate::encoding::encode;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

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
    }

    /// A prediction without spread.
    fn sure(mean: f32) -> Prediction {
        Prediction { mean, sd: 0.0 }
    }

    /// With caution, greedy climbs the mean less its spread: every step
    /// raises that, and the design it ends on has a smaller spread than the
    /// design that ignores it.
    #[test]
    fn caution_keeps_the_search_where_the_members_agree() {
        let greedy = |caution: f32| {
            let mut s = spec(
                Starts::Given(vec![START.into()]),
                Strategy::Greedy { rounds: 30 },
                Constraints::default(),
                1,
            );
            s.caution = caution;
            drive(&mut Design::new(s, &Flanks::dream(), 111).unwrap(), |_| {})
        };
        let (plain, cautious) = (greedy(0.0), greedy(3.0));
        assert_eq!(cautious.caution, 3.0);
        let fitness = |d: &Designed| d.prediction - 3.0 * d.sd;
        assert!(fitness(&cautious.designs[0]) > fitness(&cautious.starts[0]));
        assert!(fitness(&cautious.designs[0]) >= fitness(&plain.designs[0]));
        assert!(cautious.designs[0].sd < plain.designs[0].sd);
        assert!(plain.designs[0].prediction > cautious.designs[0].prediction);
        for bad in [-1.0, f32::NAN, f32::INFINITY] {
            let mut s = spec(
                Starts::Given(vec![START.into()]),
                Strategy::Greedy { rounds: 1 },
                Constraints::default(),
                1,
            );
            s.caution = bad;
            assert!(matches!(
                Design::new(s, &Flanks::dream(), 111),
                Err(DesignError::Setting(_))
            ));
        }
    }

    /// A design of one greedy round from [`START`].
    fn one_greedy_round() -> Design {
        let s = spec(
            Starts::Given(vec![START.into()]),
            Strategy::Greedy { rounds: 1 },
            Constraints::default(),
            1,
        );
        Design::new(s, &Flanks::dream(), 111).unwrap()
    }

    #[test]
    fn predictions_must_match_the_batch() {
        let mut design = one_greedy_round();
        assert_eq!(design.ask().unwrap().len(), 1);
        assert_eq!(
            design.tell(&[sure(1.0), sure(2.0)]),
            Err(DesignError::Predictions {
                got: 2,
                expected: 1
            })
        );
        design.tell(&[sure(1.0)]).unwrap();
        // Every substitution of the variable region: 80 × 3.
        assert_eq!(design.ask().unwrap().len(), 240);
    }

    /// A substitution to no base is refused, never read as an A.
    #[test]
    fn a_substitution_to_no_base_is_refused() {
        let mut design = one_greedy_round();
        design.ask();
        design.tell(&[sure(0.0)]).unwrap();
        let mut predictions = vec![sure(0.0); design.ask().unwrap().len()];
        let Some((Pending::Neighbours(substitutions), _)) = &mut design.pending else {
            panic!("greedy asks for the start's neighbours");
        };
        substitutions[0].alternative = 'X';
        predictions[0] = sure(1.0);
        assert_eq!(
            design.tell(&predictions),
            Err(DesignError::Encode(EncodeError::Substitution(
                "C18X".into()
            )))
        );
        assert_eq!(design.current[0].codes, encode(START).unwrap());
    }

    /// On a real (tiny, random) ensemble of two: each design's prediction and
    /// spread are the members' mean and spread for that sequence, though
    /// greedy scored it incrementally.
    #[test]
    fn designs_carry_the_networks_predictions() {
        let device = Device::flex();
        device.seed(5);
        let config = crate::ModelConfig::tiny();
        let ensemble = Ensemble::new(vec![config.init(&device), config.init(&device)]);
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
            let result = run(&mut design, &ensemble, 111, 50, |_| {}).unwrap();
            let sequences: Vec<&str> = result.designs.iter().map(|d| d.sequence.as_str()).collect();
            let x = Tensor::<3>::from_data(one_hot(&sequences, 111).unwrap(), &device);
            let whole = ensemble.forward(x).into_data().try_to_vec::<f32>().unwrap();
            for (d, w) in result.designs.iter().zip(Prediction::rows(&whole, 2)) {
                assert!(
                    (d.prediction - w.mean).abs() < 1e-4,
                    "{} vs {}",
                    d.prediction,
                    w.mean
                );
                assert!((d.sd - w.sd).abs() < 1e-4, "{} vs {}", d.sd, w.sd);
                assert!(w.sd > 0.0);
            }
        }
    }
}
