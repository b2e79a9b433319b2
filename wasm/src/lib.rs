//! Browser API over the promoscope model: load weights, score sequences,
//! score every single-base substitution of a sequence (ISM) and design
//! sequences, on WebGPU or on the CPU (burn's flex, compiled to wasm with SIMD).
//!
//! The model, encoding, weights and ISM are the `promoscope_model` crate's;
//! this crate only adapts them to JavaScript: bytes in, `Float32Array`s and
//! plain objects out, every failure a `JsError` with a message for the page.
//! Only asynchronous read-back works on WebGPU, hence the `async` methods.
#![cfg(target_family = "wasm")]

use std::collections::BTreeMap;

use burn::prelude::*;
use promoscope_model::design::{Batch, Design, DesignSpec};
use promoscope_model::device::{DeviceError, select_device_async};
use promoscope_model::encoding::{Flanks, Placement, encode_for, one_hot};
use promoscope_model::ism::{Mutagenesis, ScoredSubstitution};
use promoscope_model::measurements::{MeasurementTable, value_column};
use promoscope_model::records::{self, Record};
use promoscope_model::training::{Checkpoint, Progress};
use promoscope_model::tune::{self, FullInput, FullRun, QuickInput, TunedMember};
use promoscope_model::weights::{self, WeightsInfo};
use promoscope_model::{Backend, Ensemble, Prediction, SelectedDevice};
use serde::Serialize;
use wasm_bindgen::prelude::*;

/// Panics become readable console errors instead of `unreachable`.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// The records of pasted text that a model reading `seq_len` bases can
/// score, and the lines it cannot, with why, in line order:
/// `{records: [{id, sequence, line, flanks}], problems: [{line, id, problem}]}`.
/// `flanks` says whether a record holds the model's flanks (`present`), had
/// them added (`added`, when `add_flanks` and they fit) or lacks them
/// (`missing`). The parser of `promoscope predict` ([`records`]) and the
/// sequence rule of every input ([`encode_for`]).
#[wasm_bindgen(js_name = parseSequences)]
pub fn parse_sequences(
    text: &str,
    seq_len: usize,
    flank5: String,
    flank3: String,
    add_flanks: bool,
) -> Result<JsValue, JsError> {
    #[derive(Serialize)]
    struct Problem {
        line: usize,
        id: String,
        problem: String,
    }
    #[derive(Serialize)]
    struct Row {
        #[serde(flatten)]
        record: Record,
        flanks: Placement,
    }
    #[derive(Serialize)]
    struct Parsed {
        records: Vec<Row>,
        problems: Vec<Problem>,
    }
    let flanks = Flanks {
        five: flank5,
        three: flank3,
    };
    let (parsed, unreadable) = records::parse(text);
    let mut problems: Vec<Problem> = unreadable
        .into_iter()
        .map(|e| Problem {
            line: e.line,
            id: String::new(),
            problem: e.problem,
        })
        .collect();
    let mut records = Vec::with_capacity(parsed.len());
    for mut record in parsed {
        match encode_for(&record.sequence, seq_len) {
            Ok(_) => records.push(Row {
                flanks: flanks.place(&mut record.sequence, seq_len, add_flanks),
                record,
            }),
            Err(e) => problems.push(Problem {
                line: record.line,
                id: record.id,
                problem: e.to_string(),
            }),
        }
    }
    problems.sort_by_key(|p| p.line);
    to_js(&Parsed { records, problems })
}

/// A table of measured sequences for a model reading `seq_len` bases
/// (`promoscope tune`'s reader, [`MeasurementTable`]): `{columns, value,
/// sequences, values, lines, problems: [{line, problem}]}`; `value` is the
/// column read, `value` as given or, when blank, the one the table offers
/// ([`value_column`]). A header without that column is an error naming its
/// columns.
#[wasm_bindgen(js_name = parseMeasurements)]
pub fn parse_measurements(text: &str, seq_len: usize, value: &str) -> Result<JsValue, JsError> {
    #[derive(Serialize)]
    struct Parsed {
        #[serde(flatten)]
        table: MeasurementTable,
        value: String,
    }
    let value = match value.trim() {
        "" => value_column(text),
        name => name.to_string(),
    };
    let table = MeasurementTable::parse(text, &value, seq_len)?;
    to_js(&Parsed { table, value })
}

/// The reverse complement of a sequence (`N` stays `N`).
#[wasm_bindgen(js_name = reverseComplement)]
pub fn reverse_complement(sequence: &str) -> Result<String, JsError> {
    Ok(promoscope_model::encoding::reverse_complement(sequence)?)
}

/// What the page shows about the active model and device.
#[derive(Serialize)]
struct Description {
    /// `cpu` or `webgpu`.
    backend: &'static str,
    adapter: String,
    software: bool,
    seq_len: usize,
    parameters: usize,
    /// Networks: an ensemble's members (their predictions have a spread), or 1.
    members: usize,
    /// The flanks the model reads around the variable region.
    flank_5: String,
    flank_3: String,
    metadata: BTreeMap<String, String>,
}

/// A loaded model on its device (and its file, which fine-tuning rewrites),
/// and the design in progress, if any.
#[wasm_bindgen]
pub struct Promoscope {
    bytes: Vec<u8>,
    ensemble: Ensemble,
    info: WeightsInfo,
    selected: SelectedDevice,
    design: Option<Design>,
}

/// `object` with `bytes` (a model file, say) set on it as a `Uint8Array`.
fn with_bytes(object: JsValue, bytes: &[u8]) -> Result<JsValue, JsError> {
    set(&object, "bytes", &js_sys::Uint8Array::from(bytes).into())?;
    Ok(object)
}

/// `object[key] = value`.
fn set(object: &JsValue, key: &str, value: &JsValue) -> Result<(), JsError> {
    js_sys::Reflect::set(object, &JsValue::from_str(key), value)
        .map(|_| ())
        .map_err(|_| JsError::new("could not hand the result to the page"))
}

/// `value` as a JS object, through one JSON string: serde-wasm-bindgen's
/// property-by-property build took 2.8 s for an ISM table of 330 rows in
/// Chromium (~1 ms a value), one `JSON.parse` of the same table ~4 ms.
fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsError> {
    let json = serde_json::to_string(value).map_err(|e| JsError::new(&e.to_string()))?;
    js_sys::JSON::parse(&json)
        .map_err(|_| JsError::new("the browser could not parse promoscope's JSON"))
}

#[wasm_bindgen]
impl Promoscope {
    /// Loads a promoscope `.safetensors` (its config from the metadata) onto
    /// `backend`: `auto` (a hardware WebGPU adapter when there is one, else
    /// the CPU), `webgpu` or `cpu` ([`Backend`]'s names for the page).
    pub async fn load(bytes: Vec<u8>, backend: String) -> Result<Promoscope, JsError> {
        let selected = select_device_async(backend.parse::<Backend>()?)
            .await
            .map_err(|e| match e {
                DeviceError::NoAdapter { reason, .. } => {
                    JsError::new(&format!("WebGPU is not available: {reason}"))
                }
                e => e.into(),
            })?;
        let (ensemble, info) = weights::load_ensemble(&bytes, &selected.device)
            .map_err(|e| JsError::new(&format!("not a promoscope weights file: {e}")))?;
        Ok(Promoscope {
            bytes,
            ensemble,
            info,
            selected,
            design: None,
        })
    }

    /// Backend, adapter, input length, parameter count and the model card.
    pub fn describe(&self) -> Result<JsValue, JsError> {
        let flanks = Flanks::of(&self.info.metadata);
        to_js(&Description {
            backend: self.selected.backend.page_name(),
            adapter: self.selected.adapter.clone(),
            software: self.selected.software,
            seq_len: self.info.config.seq_len,
            parameters: self.ensemble.num_params(),
            members: self.ensemble.len(),
            flank_5: flanks.five,
            flank_3: flanks.three,
            metadata: self.info.metadata.clone(),
        })
    }

    /// Predictions for sequences (A/C/G/T/N, at most the model's length):
    /// `{mean: [...], sd: [...]}`, the members' mean and spread (sd 0 for
    /// one network).
    pub async fn score(&self, sequences: Vec<String>) -> Result<JsValue, JsError> {
        let x = one_hot(&sequences, self.info.config.seq_len)?;
        let x = Tensor::<3>::from_data(x, &self.selected.device);
        let rows = Prediction::rows(&read(self.ensemble.forward(x)).await?, self.ensemble.len());
        #[derive(Serialize)]
        struct Scores {
            mean: Vec<f32>,
            sd: Vec<f32>,
        }
        to_js(&Scores {
            mean: rows.iter().map(|p| p.mean).collect(),
            sd: rows.iter().map(|p| p.sd).collect(),
        })
    }

    /// The head's last hidden layer and the prediction of every member for
    /// `sequences`: `rows × members × (head_width + 1)` values, what
    /// `tuneQuick` reads (scored in parts over the workers).
    pub async fn hidden(&self, sequences: Vec<String>) -> Result<Vec<f32>, JsError> {
        let x = one_hot(&sequences, self.info.config.seq_len)?;
        let x = Tensor::<3>::from_data(x, &self.selected.device);
        read(
            self.ensemble
                .each(|m| Ok::<_, JsError>(m.hidden_and_output(x.clone())))?,
        )
        .await
    }

    /// How `holdout` percent splits the rows `sequences`/`values`:
    /// `[training, held out]` counts, or why they cannot be fine-tuned on.
    #[wasm_bindgen(js_name = tuneSplit)]
    pub fn tune_split(
        sequences: Vec<String>,
        values: Vec<f32>,
        holdout: u32,
    ) -> Result<Vec<usize>, JsError> {
        let (train, test) = tune::split(&measured(sequences, values)?, holdout)?;
        Ok(vec![train.len(), test.len()])
    }

    /// Quick fine-tuning ([`tune::quick`], as `promoscope tune`) of this
    /// model on the rows `sequences`/`values` (from `parseMeasurements`),
    /// given their `hidden` layers in order: `{report, bytes}`, the report
    /// on the rows held out by the `holdout` percent rule and the new
    /// model's `.safetensors`, its card naming `source` and `date`.
    #[wasm_bindgen(js_name = tuneQuick)]
    pub fn tune_quick(
        &self,
        sequences: Vec<String>,
        values: Vec<f32>,
        hidden: Vec<f32>,
        holdout: u32,
        source: String,
        date: String,
    ) -> Result<JsValue, JsError> {
        let table = measured(sequences, values)?;
        let tuned = tune::quick(QuickInput {
            bytes: &self.bytes,
            hidden: &hidden,
            table: &table,
            holdout,
            source: &source,
            date: &date,
        })?;
        with_bytes(to_js(&tuned.report)?, &tuned.bytes)
    }

    /// The end of a full fine-tuning ([`tune::full`]) of this model on the
    /// rows `sequences`/`values`: each member's `FineTune.finish` answer in
    /// order (`bytes`, `before`, `after`), joined into one file: `{report,
    /// bytes}` as `tuneQuick`.
    #[wasm_bindgen(js_name = tuneFull)]
    #[allow(clippy::too_many_arguments)]
    pub fn tune_full(
        &self,
        sequences: Vec<String>,
        values: Vec<f32>,
        member_bytes: Vec<js_sys::Uint8Array>,
        before: Vec<js_sys::Float32Array>,
        after: Vec<js_sys::Float32Array>,
        holdout: u32,
        source: String,
        date: String,
    ) -> Result<JsValue, JsError> {
        let table = measured(sequences, values)?;
        let members: Vec<TunedMember> = member_bytes
            .iter()
            .zip(&before)
            .zip(&after)
            .map(|((bytes, before), after)| TunedMember {
                bytes: bytes.to_vec(),
                before: before.to_vec(),
                after: after.to_vec(),
            })
            .collect();
        let tuned = tune::full(FullInput {
            bytes: &self.bytes,
            members: &members,
            table: &table,
            holdout,
            source: &source,
            date: &date,
        })?;
        with_bytes(to_js(&tuned.report)?, &tuned.bytes)
    }

    /// Rows of the ISM batch of `sequence`: the reference and each substitution.
    #[wasm_bindgen(js_name = ismRows)]
    pub fn ism_rows(&self, sequence: &str) -> Result<usize, JsError> {
        Ok(self.mutagenesis(sequence)?.rows())
    }

    /// Predictions for rows `start..end` of the ISM batch (scored in parts,
    /// so that the page can show progress and cancel), each row's members'
    /// values side by side: `(end − start) × members` values for `ismTable`.
    #[wasm_bindgen(js_name = ismScore)]
    pub async fn ism_score(
        &self,
        sequence: String,
        start: usize,
        end: usize,
    ) -> Result<Vec<f32>, JsError> {
        let mutagenesis = self.mutagenesis(&sequence)?;
        let end = end.min(mutagenesis.rows());
        let seq_len = self.info.config.seq_len;
        let range = start.min(end)..end;
        let rows = self
            .ensemble
            .each(|model| mutagenesis.predict_rows(model, seq_len, range.clone()))?;
        read(rows).await
    }

    /// The ISM table from the predictions of every row (`ismScore`'s parts in
    /// order): `{reference, reference_sd, rows: [{substitution: {position,
    /// reference, alternative}, prediction, sd, delta, delta_sd}]}`.
    #[wasm_bindgen(js_name = ismTable)]
    pub fn ism_table(&self, sequence: &str, predictions: Vec<f32>) -> Result<JsValue, JsError> {
        let mutagenesis = self.mutagenesis(sequence)?;
        let members = self.ensemble.len();
        if predictions.len() != mutagenesis.rows() * members {
            return Err(JsError::new(&format!(
                "{} predictions for {} rows of {members} member(s)",
                predictions.len(),
                mutagenesis.rows()
            )));
        }
        #[derive(Serialize)]
        struct Table {
            reference: f32,
            reference_sd: f32,
            rows: Vec<ScoredSubstitution>,
        }
        let (reference, rows) = mutagenesis.score(&predictions, members);
        to_js(&Table {
            reference: reference.mean,
            reference_sd: reference.sd,
            rows,
        })
    }

    /// Starts a design (`promoscope_model::design`): `spec` is a
    /// `DesignSpec` as JSON. Impossible constraints fail here, before any work.
    /// Returns the spec as read, written back by serde (the JSON of an equal
    /// `DesignSpec` is the same string natively), so that the page can show
    /// what it asked for.
    #[wasm_bindgen(js_name = designStart)]
    pub fn design_start(&mut self, spec: &str) -> Result<String, JsError> {
        let spec: DesignSpec = serde_json::from_str(spec)
            .map_err(|e| JsError::new(&format!("design settings: {e}")))?;
        let read = serde_json::to_string(&spec).map_err(|e| JsError::new(&e.to_string()))?;
        let flanks = Flanks::of(&self.info.metadata);
        self.design = Some(Design::new(spec, &flanks, self.info.config.seq_len)?);
        Ok(read)
    }

    /// The design's next batch, `{batch (JSON for designScore), size,
    /// progress: [done, most]}`, or `null` when it is done.
    #[wasm_bindgen(js_name = designAsk)]
    pub fn design_ask(&mut self) -> Result<JsValue, JsError> {
        let design = self.design()?;
        let progress = design.progress();
        let Some(batch) = design.ask() else {
            return Ok(JsValue::NULL);
        };
        #[derive(Serialize)]
        struct Ask {
            batch: String,
            size: usize,
            progress: (usize, usize),
        }
        let ask = Ask {
            batch: serde_json::to_string(batch).map_err(|e| JsError::new(&e.to_string()))?,
            size: batch.len(),
            progress,
        };
        to_js(&ask)
    }

    /// Predictions for items `start..end` of a batch from `designAsk` (any
    /// worker can score any part), each item's members' values side by side.
    #[wasm_bindgen(js_name = designScore)]
    pub async fn design_score(
        &self,
        batch: String,
        start: usize,
        end: usize,
    ) -> Result<Vec<f32>, JsError> {
        let batch: Batch =
            serde_json::from_str(&batch).map_err(|e| JsError::new(&format!("batch: {e}")))?;
        let end = end.min(batch.len());
        let seq_len = self.info.config.seq_len;
        let range = start.min(end)..end;
        let rows = self
            .ensemble
            .each(|model| batch.predict(model, seq_len, range.clone()))?;
        read(rows).await
    }

    /// The predictions of the whole batch from `designAsk`, in its order
    /// (`designScore`'s parts joined).
    #[wasm_bindgen(js_name = designTell)]
    pub fn design_tell(&mut self, predictions: Vec<f32>) -> Result<(), JsError> {
        let members = self.ensemble.len();
        if !predictions.len().is_multiple_of(members) {
            return Err(JsError::new(&format!(
                "{} predictions are not whole rows of {members} members",
                predictions.len()
            )));
        }
        let rows = Prediction::rows(&predictions, members);
        Ok(self.design()?.tell(&rows)?)
    }

    /// What the design found: `{objective, starts, designs, trajectory,
    /// scored}` and its downloads `{csv, fasta, trajectory_csv}`.
    #[wasm_bindgen(js_name = designResult)]
    pub fn design_result(&mut self) -> Result<JsValue, JsError> {
        let result = self.design()?.result();
        #[derive(Serialize)]
        struct Found {
            #[serde(flatten)]
            result: promoscope_model::design::DesignResult,
            csv: String,
            fasta: String,
            trajectory_csv: String,
        }
        to_js(&Found {
            csv: result.csv(),
            fasta: result.fasta(),
            trajectory_csv: result.trajectory_csv(),
            result,
        })
    }
}

impl Promoscope {
    /// The design in progress.
    fn design(&mut self) -> Result<&mut Design, JsError> {
        self.design
            .as_mut()
            .ok_or_else(|| JsError::new("no design in progress"))
    }

    fn mutagenesis(&self, sequence: &str) -> Result<Mutagenesis, JsError> {
        Ok(Mutagenesis::new(sequence, self.info.config.seq_len)?)
    }
}

/// Rows of measured sequences handed back by the page.
fn measured(sequences: Vec<String>, values: Vec<f32>) -> Result<MeasurementTable, JsError> {
    if sequences.len() != values.len() {
        return Err(JsError::new(&format!(
            "{} sequences and {} values",
            sequences.len(),
            values.len()
        )));
    }
    Ok(MeasurementTable {
        sequences,
        values,
        ..MeasurementTable::default()
    })
}

/// Predictions back from the device (asynchronously: WebGPU cannot block).
async fn read(y: Tensor<2>) -> Result<Vec<f32>, JsError> {
    let y = y
        .into_data_async()
        .await
        .map_err(|e| JsError::new(&format!("reading predictions back: {e:?}")))?;
    y.try_into_vec_as::<f32>()
        .map_err(|e| JsError::new(&format!("{e:?}")))
}

/// One network's full fine-tuning ([`FullRun`]) on the CPU (flex), in a
/// worker of its own: the page asks for a few steps at a time (progress,
/// Cancel), saves a checkpoint in the browser's storage now and then, and
/// continues from one after a reload.
#[wasm_bindgen]
pub struct FineTune {
    full: FullRun,
}

#[wasm_bindgen]
impl FineTune {
    /// Member `member` of the model file `bytes` (0 for one network), to be
    /// trained on the rows `sequences`/`values` that the `holdout` percent
    /// rule keeps for training, seeded by `seed`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        bytes: &[u8],
        member: usize,
        sequences: Vec<String>,
        values: Vec<f32>,
        holdout: u32,
        seed: u32,
    ) -> Result<FineTune, JsError> {
        let table = measured(sequences, values)?;
        let device = Device::flex().autodiff();
        let full = FullRun::new(bytes, member, &table, holdout, u64::from(seed), &device)?;
        Ok(FineTune { full })
    }

    /// Continues from a checkpoint (an object of [`FineTune::checkpoint`]).
    pub fn resume(
        &mut self,
        progress: &str,
        weights: Vec<u8>,
        optimizer: Vec<u8>,
        swa: Option<Vec<u8>>,
    ) -> Result<(), JsError> {
        let progress: Progress = serde_json::from_str(progress)
            .map_err(|e| JsError::new(&format!("not a fine-tuning checkpoint: {e}")))?;
        self.full.resume(&Checkpoint {
            progress,
            weights,
            optimizer,
            swa,
        })?;
        Ok(())
    }

    /// Where the run stands: `{step, steps, epoch, epochs}`.
    pub fn state(&self) -> Result<JsValue, JsError> {
        #[derive(Serialize)]
        struct State {
            step: usize,
            steps: usize,
            epoch: usize,
            epochs: usize,
        }
        let run = self.full.run();
        to_js(&State {
            step: run.progress.step,
            steps: self.full.total_steps(),
            epoch: run.progress.epoch.min(run.hyper.epochs),
            epochs: run.hyper.epochs,
        })
    }

    /// Up to `count` more optimizer steps: their losses.
    pub fn steps(&mut self, count: usize) -> Vec<f32> {
        self.full.steps(count)
    }

    /// The run as `{progress (JSON), weights, optimizer, swa (or null)}`.
    pub fn checkpoint(&self) -> Result<JsValue, JsError> {
        let checkpoint = self.full.checkpoint()?;
        let object = js_sys::Object::new().into();
        let progress = serde_json::to_string(&checkpoint.progress)
            .map_err(|e| JsError::new(&e.to_string()))?;
        set(&object, "progress", &JsValue::from_str(&progress))?;
        for (key, bytes) in [
            ("weights", Some(&checkpoint.weights)),
            ("optimizer", Some(&checkpoint.optimizer)),
            ("swa", checkpoint.swa.as_ref()),
        ] {
            let value = match bytes {
                Some(bytes) => js_sys::Uint8Array::from(bytes.as_slice()).into(),
                None => JsValue::NULL,
            };
            set(&object, key, &value)?;
        }
        Ok(object)
    }

    /// The fine-tuned network: `{bytes, before, after}`, its file and the
    /// held-out rows' predictions before and after, for `tuneFull`.
    pub fn finish(&self) -> Result<JsValue, JsError> {
        let member = self.full.finish()?;
        let object = js_sys::Object::new().into();
        set(
            &object,
            "bytes",
            &js_sys::Uint8Array::from(member.bytes.as_slice()).into(),
        )?;
        set(
            &object,
            "before",
            &js_sys::Float32Array::from(member.before.as_slice()).into(),
        )?;
        set(
            &object,
            "after",
            &js_sys::Float32Array::from(member.after.as_slice()).into(),
        )?;
        Ok(object)
    }
}
