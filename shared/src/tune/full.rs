//! **Full** mode: every weight of each network trained further by the
//! small-data recipe ([`Recipe::SmallData`], as `promoscope train --recipe
//! small-data --init`), through the one training loop ([`Run`]). Each
//! member is a [`FullRun`] of its own (the page runs one a worker), taken a
//! few steps at a time, checkpointed as bytes; [`full`] joins the members
//! into one file with the report.

use std::collections::BTreeMap;

use burn::prelude::*;

use super::{Report, TuneError, Tuned, by_row, card, report, split};
use crate::encoding::one_hot;
use crate::measurements::MeasurementTable;
use crate::training::{Checkpoint, Recipe, Run, RunError};
use crate::weights::{self, Precision};
use crate::{Model, ModelConfig, Prediction};

/// Rows a prediction pass reads at a time.
const BATCH: usize = 64;

/// One network's fine-tuning in full mode: the run, its training rows and
/// the held-out rows it is scored on.
pub struct FullRun {
    run: Run,
    /// The training device (autodiff).
    device: Device,
    /// The member as it started (eval mode, on the inference device).
    start: Model,
    /// Training rows: sequences and values.
    sequences: Vec<String>,
    values: Vec<f32>,
    /// Held-out sequences.
    held_out: Vec<String>,
    /// The batches of the epoch in progress.
    batches: Vec<Vec<usize>>,
}

/// A member fine-tuned in full mode, and its held-out predictions.
#[derive(Clone, Debug)]
pub struct TunedMember {
    /// Its `.safetensors` (one network, F32).
    pub bytes: Vec<u8>,
    /// Held-out rows: its predictions before fine-tuning.
    pub before: Vec<f32>,
    /// Held-out rows: its predictions after.
    pub after: Vec<f32>,
}

impl FullRun {
    /// Member `member` of the model file `bytes` (0 for one network), to
    /// be trained on the rows of `table` that the `holdout` percent rule
    /// keeps for training, on `device` (an autodiff device), seeded by `seed`.
    pub fn new(
        bytes: &[u8],
        member: usize,
        table: &MeasurementTable,
        holdout: u32,
        seed: u64,
        device: &Device,
    ) -> Result<Self, TuneError> {
        let (ensemble, info) = weights::load_ensemble(bytes, device)?;
        let model = ensemble
            .members()
            .get(member)
            .cloned()
            .ok_or(TuneError::Member {
                member,
                members: info.members,
            })?;
        let (train, test) = split(table, holdout)?;
        let pick = |rows: &[usize]| -> Vec<String> {
            rows.iter().map(|&i| table.sequences[i].clone()).collect()
        };
        let hyper = Recipe::SmallData.hyperparameters(train.len(), None, None);
        let mut full = Self {
            start: model.valid(),
            run: Run::new(model, info.config, hyper, seed, None, 1.0),
            device: device.clone(),
            sequences: pick(&train),
            values: train.iter().map(|&i| table.values[i]).collect(),
            held_out: pick(&test),
            batches: Vec::new(),
        };
        full.batches = full.run.batches(full.sequences.len());
        Ok(full)
    }

    /// Continues from `checkpoint` (this member's, on the same rows).
    pub fn resume(&mut self, checkpoint: &Checkpoint) -> Result<(), RunError> {
        let run = &self.run;
        self.run = Run::resume(
            checkpoint,
            run.config.clone(),
            run.hyper.clone(),
            run.seed,
            None,
            1.0,
            &self.device,
            &self.device.clone().inner(),
        )?;
        self.batches = self.run.batches(self.sequences.len());
        Ok(())
    }

    /// The run: its progress and numbers.
    pub fn run(&self) -> &Run {
        &self.run
    }

    /// Optimizer steps of the whole run.
    pub fn total_steps(&self) -> usize {
        self.run.hyper.epochs * self.batches.len()
    }

    /// Up to `count` more steps (fewer at the end): their losses, read back.
    /// An epoch ends with its last batch.
    pub fn steps(&mut self, count: usize) -> Vec<f32> {
        let mut losses = Vec::with_capacity(count);
        while losses.len() < count && !self.run.is_done() {
            let chunk = &self.batches[self.run.progress.batch];
            let x = one_hot(
                &chunk
                    .iter()
                    .map(|&i| &self.sequences[i])
                    .collect::<Vec<_>>(),
                self.run.config.seq_len,
            )
            .expect("training rows were read for this model");
            let y: Vec<f32> = chunk.iter().map(|&i| self.values[i]).collect();
            let batch = (
                Tensor::from_data(x, &self.device),
                Tensor::from_data(TensorData::new(y, [chunk.len(), 1]), &self.device),
            );
            let loss = self
                .run
                .step(batch)
                .into_data()
                .try_into_vec_as::<f32>()
                .expect("a float tensor reads as f32")[0];
            self.run.progress.loss_sum += f64::from(loss);
            losses.push(loss);
            if self.run.progress.batch == self.batches.len() {
                self.run.end_epoch();
                self.batches = self.run.batches(self.sequences.len());
            }
        }
        losses
    }

    /// The run as bytes.
    pub fn checkpoint(&self) -> Result<Checkpoint, RunError> {
        self.run.checkpoint()
    }

    /// The fine-tuned network: the weight average, its batch-norm statistics
    /// recomputed from the first batches of the last pass, or the last
    /// weights before averaging starts; with the held-out predictions of the
    /// network before and after.
    pub fn finish(&self) -> Result<TunedMember, TuneError> {
        let inference = self.device.clone().inner();
        let refresh = self.run.hyper.swa.as_ref().map_or(0, |swa| swa.bn_batches);
        let batches = self
            .run
            .epoch_batches(self.run.hyper.epochs, self.sequences.len())
            .into_iter()
            .take(refresh)
            .map(|chunk| {
                let rows: Vec<&String> = chunk.iter().map(|&i| &self.sequences[i]).collect();
                let x = one_hot(&rows, self.run.config.seq_len).expect("rows were read");
                Tensor::<3>::from_data(x, &inference)
            });
        let model = match self.run.refreshed_average(batches, &self.device)? {
            Some(model) => model,
            None => self.run.model().valid(),
        };
        let config = &self.run.config;
        Ok(TunedMember {
            bytes: weights::to_bytes(&model, config, &BTreeMap::new(), Precision::F32)?,
            before: predict(&self.start, config, &self.held_out, &inference),
            after: predict(&model, config, &self.held_out, &inference),
        })
    }
}

/// `model`'s predictions for `sequences`, in batches, on `device`.
fn predict(model: &Model, config: &ModelConfig, sequences: &[String], device: &Device) -> Vec<f32> {
    sequences
        .chunks(BATCH)
        .flat_map(|chunk| {
            let x = one_hot(chunk, config.seq_len).expect("rows were read for this model");
            model
                .forward(Tensor::from_data(x, device))
                .into_data()
                .try_into_vec_as::<f32>()
                .expect("a float tensor reads as f32")
        })
        .collect()
}

/// What the caller brings to the end of a full fine-tuning.
#[derive(Debug)]
pub struct FullInput<'a> {
    /// The model's file, as loaded.
    pub bytes: &'a [u8],
    /// Its members, each fine-tuned by a [`FullRun`], in order.
    pub members: &'a [TunedMember],
    /// The rows.
    pub table: &'a MeasurementTable,
    /// The held-out share, percent.
    pub holdout: u32,
    /// Where the rows came from, for the card (a file name).
    pub source: &'a str,
    /// Today, for the card.
    pub date: &'a str,
}

/// The members of a full fine-tuning as one file (F32), with the report.
pub fn full(input: FullInput<'_>) -> Result<Tuned, TuneError> {
    let info = weights::read_info(input.bytes)?;
    let members = input.members;
    if members.len() != info.members {
        return Err(TuneError::Member {
            member: members.len(),
            members: info.members,
        });
    }
    let (train, test) = split(input.table, input.holdout)?;
    let side = |pick: fn(&TunedMember) -> &Vec<f32>| -> Result<Vec<Prediction>, TuneError> {
        let mut values = Vec::with_capacity(test.len() * members.len());
        for member in members {
            let part = pick(member);
            if part.len() != test.len() {
                return Err(TuneError::Shape {
                    values: part.len(),
                    rows: test.len(),
                    members: 1,
                    width: 1,
                });
            }
            values.extend_from_slice(part);
        }
        Ok(by_row(&values, members.len()))
    };
    let report: Report = report(
        "full",
        input.table,
        (&train, &test),
        (side(|m| &m.before)?, side(|m| &m.after)?),
        Vec::new(),
        (input.source, input.holdout),
    )?;
    let device = Device::flex();
    let models = members
        .iter()
        .map(|m| weights::load(&m.bytes, &device).map(|(model, _)| model))
        .collect::<Result<Vec<_>, _>>()?;
    let card = card(&info, &report, input.date);
    let bytes = weights::members_to_bytes(&models, &info.config, &card, Precision::F32)?;
    Ok(Tuned { bytes, report })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Ensemble;
    use crate::weights::{load_ensemble, members_to_bytes};

    /// Two tiny networks fine-tuned in full mode on a value the sequences
    /// determine (their GC count), one of them interrupted and resumed from
    /// its checkpoint: the joined file predicts what the report says.
    #[test]
    fn full_mode_trains_each_member_and_the_file_predicts_the_report() {
        let inference = Device::flex();
        let device = inference.clone().autodiff();
        let config = ModelConfig::tiny().with_seq_len(64);
        device.seed(3);
        let members: Vec<_> = (0..2).map(|_| config.init(&inference)).collect();
        let bytes = members_to_bytes(&members, &config, &BTreeMap::new(), Precision::F32).unwrap();
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(5);
        let sequences: Vec<String> = (0..200)
            .map(|_| {
                (0..64)
                    .map(|_| b"ACGT"[rand::Rng::random_range(&mut rng, 0..4)] as char)
                    .collect()
            })
            .collect();
        let values = sequences
            .iter()
            .map(|s| s.bytes().filter(|b| b"GC".contains(b)).count() as f32 / 4.0)
            .collect();
        let table = MeasurementTable {
            sequences,
            values,
            ..MeasurementTable::default()
        };
        let tuned: Vec<TunedMember> = (0..2)
            .map(|k| {
                let mut run = FullRun::new(&bytes, k, &table, 20, 11, &device).unwrap();
                assert_eq!(run.total_steps(), 4 * run.batches.len());
                if k == 1 {
                    let losses = run.steps(5);
                    assert_eq!(losses.len(), 5);
                    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
                    let saved = run.checkpoint().unwrap();
                    run = FullRun::new(&bytes, k, &table, 20, 11, &device).unwrap();
                    run.resume(&saved).unwrap();
                    assert_eq!(run.run().progress.step, 5);
                }
                while !run.run().is_done() {
                    run.steps(3);
                }
                assert_eq!(run.run().progress.step, run.total_steps());
                run.finish().unwrap()
            })
            .collect();
        assert_ne!(tuned[0].before, tuned[0].after, "the network changed");
        let input = |members| FullInput {
            bytes: &bytes,
            members,
            table: &table,
            holdout: 20,
            source: "gc.tsv",
            date: "2026-12-06",
        };
        let result = full(input(&tuned)).unwrap();
        let report = &result.report;
        assert_eq!(report.mode, "full");
        let (model, info) = load_ensemble(&result.bytes, &inference).unwrap();
        assert_eq!(info.members, 2);
        assert!(info.metadata["fine_tuned"].starts_with("full mode on 2026-12-06"));
        let held = table.held_out(20);
        let test: Vec<String> = (0..table.len())
            .filter(|&i| held[i])
            .map(|i| table.sequences[i].clone())
            .collect();
        let x = Tensor::<3>::from_data(one_hot(&test, 64).unwrap(), &inference);
        let rows: Vec<f32> = Ensemble::forward(&model, x)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let means: Vec<f32> = Prediction::rows(&rows, 2).iter().map(|p| p.mean).collect();
        let distance = crate::metrics::max_abs_diff(&means, &report.tuned_predictions);
        assert!(
            distance < 1e-4,
            "the file predicts {distance} off the report"
        );
        // Members the model does not have.
        let err = FullRun::new(&bytes, 2, &table, 20, 11, &device)
            .err()
            .unwrap();
        assert_eq!(err.to_string(), "member 2 of a model of 2 network(s)");
        let err = full(input(&tuned[..1])).unwrap_err();
        assert!(matches!(err, TuneError::Member { .. }), "{err}");
    }
}
