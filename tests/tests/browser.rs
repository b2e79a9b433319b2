//! The web page in a real browser: builds it with trunk, computes the numbers
//! it must show natively (flex), and lets `tests/browser/page.test.mjs`
//! (Playwright driving Debian's Chromium) check them on WebGPU and on the CPU
//! fallback, along with bad input, and the designs it must find (and the
//! design settings it must read from its form). Screenshots land in
//! `target/browser-artifacts/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::prelude::*;
use promoscope_model::design::{self, Design, DesignSpec};
use promoscope_model::encoding::{Flanks, one_hot};
use promoscope_model::ism::Mutagenesis;
use promoscope_model::measurements::MeasurementTable;
use promoscope_model::training::Recipe;
use promoscope_model::tune::{self, QuickInput};
use promoscope_model::{Ensemble, Prediction, weights};
use promoscope_tests::{golden_bytes, golden_tensor, team_folder};
use safetensors::SafeTensors;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The members' values for `x`, row by row.
fn forward(ensemble: &Ensemble, x: TensorData) -> Vec<Prediction> {
    let x = Tensor::<3>::from_data(x, &Device::flex());
    let values = ensemble
        .forward(x)
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap();
    Prediction::rows(&values, ensemble.len())
}

/// Each sequence's prediction and spread, as the Score table shows them.
fn predict(ensemble: &Ensemble, sequences: &[&str], seq_len: usize) -> (Vec<f32>, Vec<f32>) {
    let rows = forward(ensemble, one_hot(sequences, seq_len).unwrap());
    rows.iter().map(|p| (p.mean, p.sd)).unzip()
}

/// Every substitution's prediction and spreads, as the page lists them.
fn ism(ensemble: &Ensemble, sequence: &str, seq_len: usize) -> serde_json::Value {
    let mutagenesis = Mutagenesis::new(sequence, seq_len).unwrap();
    let x = Tensor::<3>::from_data(mutagenesis.one_hot(seq_len).unwrap(), &Device::flex());
    let predictions = ensemble
        .forward(x)
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap();
    let (reference, table) = mutagenesis.score(&predictions, ensemble.len());
    let cells: Vec<_> = table
        .iter()
        .map(|r| {
            serde_json::json!({
                "position": r.substitution.position + 1,
                "alt": r.substitution.alternative.to_string(),
                "prediction": r.prediction,
                "sd": r.sd,
                "delta_sd": r.delta_sd,
            })
        })
        .collect();
    serde_json::json!({
        "sequence": sequence, "reference": reference.mean, "reference_sd": reference.sd, "cells": cells,
    })
}

/// A design of the page (`form`: the values its harness types into the
/// Design tab's fields) and the DesignSpec those fields must make (`spec`,
/// written out by hand): the spec as serde writes it, which the page must
/// report, and what the native search finds for it: sequences and predictions.
fn designed(
    model: &Ensemble,
    seq_len: usize,
    form: serde_json::Value,
    spec: serde_json::Value,
) -> serde_json::Value {
    let spec: DesignSpec = serde_json::from_value(spec).unwrap();
    let written = serde_json::to_string(&spec).unwrap();
    let mut search = Design::new(spec, &Flanks::dream(), seq_len).unwrap();
    let result = design::run(&mut search, model, seq_len, 32, |_| {}).unwrap();
    let designs: Vec<_> = result
        .designs
        .iter()
        .map(|d| serde_json::json!({ "sequence": d.sequence, "prediction": d.prediction, "sd": d.sd }))
        .collect();
    serde_json::json!({ "form": form, "spec": written, "designs": designs, "scored": result.scored })
}

/// A table for the Train tab: the first `rows` Vaishnav et al. 2022
/// measurements (defined medium) under a header `id, sequence, yfp` (no
/// `expression`: the page must offer `yfp`), with a bad base and a sequence
/// too long among them; and what quick fine-tuning of `model` on it gives
/// natively: the report's figures and the tuned model's predictions for
/// `sequences`.
fn tuned(
    model_bytes: &[u8],
    model: &Ensemble,
    work: &Path,
    name: &str,
    rows: usize,
    holdout: u32,
    sequences: &[&str],
) -> serde_json::Value {
    let (path, text) = measurements(work, name, rows);
    let seq_len = weights::read_info(model_bytes).unwrap().config.seq_len;
    let table = MeasurementTable::parse(&text, "yfp", seq_len).unwrap();
    assert_eq!(table.problems.len(), 2);
    let x = Tensor::<3>::from_data(one_hot(&table.sequences, seq_len).unwrap(), &Device::flex());
    let hidden: Vec<f32> = model
        .each(|m| Ok::<_, ()>(m.hidden_and_output(x.clone())))
        .unwrap()
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap();
    let tuned = tune::quick(QuickInput {
        bytes: model_bytes,
        hidden: &hidden,
        table: &table,
        holdout,
        source: name,
        date: "today",
    })
    .unwrap();
    let (tuned_model, _) = weights::load_ensemble(&tuned.bytes, &Device::flex()).unwrap();
    let (predictions, spreads) = predict(&tuned_model, sequences, seq_len);
    let report = &tuned.report;
    let scores = [report.start, report.tuned, report.ridge].map(|s| [s.pearson, s.spearman]);
    serde_json::json!({
        "path": path, "name": name, "rows": table.len(), "refused": table.problems.len(), "holdout": holdout,
        "training_rows": report.training_rows, "held_out_rows": report.held_out_rows,
        "scores": scores,
        "predictions": predictions, "spreads": spreads,
    })
}

/// A table for full fine-tuning in the page: its rows, its split and the
/// steps each network takes by the small-data recipe (batches of at least
/// two rows).
fn full_table(
    model_bytes: &[u8],
    work: &Path,
    name: &str,
    rows: usize,
    holdout: u32,
) -> serde_json::Value {
    let (path, text) = measurements(work, name, rows);
    let info = weights::read_info(model_bytes).unwrap();
    let table = MeasurementTable::parse(&text, "yfp", info.config.seq_len).unwrap();
    let (train, _) = tune::split(&table, holdout).unwrap();
    let hyper = Recipe::SmallData.hyperparameters(train.len(), None, None);
    let batches = train
        .chunks(hyper.batch_size)
        .filter(|c| c.len() >= 2)
        .count();
    serde_json::json!({
        "path": path, "name": name, "holdout": holdout, "training_rows": train.len(),
        "members": info.members, "steps": hyper.epochs * batches,
    })
}

/// The file `name` in `work`: the first `rows` Vaishnav et al. 2022
/// measurements (defined medium) under a header `id, sequence, yfp`, with a
/// bad base and a sequence too long among them; its path and text.
fn measurements(work: &Path, name: &str, rows: usize) -> (PathBuf, String) {
    let data =
        std::fs::read_to_string(team_folder().join("data/vaishnav2022_defined_sswm_drift.txt"))
            .unwrap();
    let mut text = String::from("id\tsequence\tyfp\n");
    for (i, line) in data.lines().take(rows).enumerate() {
        let (sequence, value) = line.split_once('\t').unwrap();
        text.push_str(&format!("v{i}\t{sequence}\t{value}\n"));
    }
    text.push_str("bad\tACGTXACGT\t1.0\nlong\t");
    text.push_str(&"A".repeat(130));
    text.push_str("\t2.0\n");
    let path = work.join(name);
    std::fs::write(&path, &text).unwrap();
    (path, text)
}

fn run(command: &mut Command, what: &str) {
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    assert!(status.success(), "{what} failed: {status}");
}

#[test]
fn page_scores_like_the_native_model_on_webgpu_and_cpu() {
    let repo = repo();
    run(
        Command::new("bash").arg(repo.join("scripts/build-page.sh")),
        "building the page",
    );

    let golden = golden_bytes();
    let file = SafeTensors::deserialize(&golden).unwrap();
    let info = weights::read_info(&golden).unwrap();
    let sequences: Vec<&str> = info.metadata["sequences"].split('|').collect();
    let (_, golden_output) = golden_tensor(&file, "trace.output");

    let work = tempfile::tempdir().unwrap();
    let demo_path = repo.join("www/demo.safetensors");
    let demo_bytes = std::fs::read(&demo_path).unwrap();
    let (demo, demo_info) = weights::load_ensemble(&demo_bytes, &Device::flex()).unwrap();
    let seq_len = demo_info.config.seq_len;
    let (demo_predictions, demo_spreads) = predict(&demo, &sequences, seq_len);
    let caution = if demo.len() > 1 { 1.5 } else { 0.0 };
    let example = "TGCATTTTTTTCACATCCTTCAACCAAAATATAATATTCAATATCTTGTAGGGACGATCAATATAAGTCGCCCGGACCATATAAGGCTAAGGTGTGGGGTTACGGCTGTT";
    let expected = serde_json::json!({
        "golden_path": team_folder().join("golden/hsayn_golden.safetensors"),
        "sequences": sequences,
        "golden_predictions": golden_output,
        "demo_predictions": demo_predictions,
        "demo_spreads": demo_spreads,
        "demo_members": demo.len(),
        // WebGPU here is SwiftShader (a CPU rasteriser, ~25× slower than flex
        // in wasm): its ISM runs on a short sequence.
        "ism_cpu": ism(&demo, example, seq_len),
        "ism_webgpu": ism(&demo, &example[..8], seq_len),
        // Design: greedy under every kind of constraint on the CPU path, and a
        // small genetic search (11 sequences) on SwiftShader. Forbidden sites
        // typed with a blank and with a comma between them make the same list.
        "design_cpu": [
            designed(&demo, seq_len, serde_json::json!({
                "start": example, "objective": "max", "strategy": "greedy", "rounds": 2,
                "maxMutations": 2, "gcMin": 35, "gcMax": 45, "homopolymer": 5,
                "forbidden": "GGTCTC CGTCTC", "seed": 1, "keep": 5,
            }), serde_json::json!({
                "starts": { "given": [example] },
                "objective": "max",
                "strategy": { "name": "greedy", "rounds": 2 },
                "constraints": {
                    "max_mutations": 2, "gc": [0.35, 0.45],
                    "forbidden": ["GGTCTC", "CGTCTC"], "max_homopolymer": 5,
                },
                "seed": 1, "keep": 5,
            })),
            // With an ensemble, the conservative objective (caution k = 1.5);
            // the page offers no caution for one network.
            designed(&demo, seq_len, serde_json::json!({
                "random": 4, "objective": "6", "strategy": "evolve", "population": 12,
                "generations": 2, "forbidden": "GGTCTC,CGTCTC", "seed": 9, "keep": 5,
                "caution": caution,
            }), serde_json::json!({
                "starts": { "random": { "count": 4, "length": 80 } },
                "objective": "6",
                "strategy": { "name": "evolve", "population": 12, "generations": 2 },
                "constraints": { "forbidden": ["GGTCTC", "CGTCTC"] },
                "seed": 9, "keep": 5, "caution": caution,
            })),
        ],
        "design_webgpu": [designed(&demo, seq_len, serde_json::json!({
            "start": example, "objective": "min", "strategy": "evolve", "population": 6,
            "generations": 1, "forbidden": "", "seed": 2, "keep": 3,
        }), serde_json::json!({
            "starts": { "given": [example] },
            "objective": "min",
            "strategy": { "name": "evolve", "population": 6, "generations": 1 },
            "seed": 2, "keep": 3,
        }))],
        // Quick fine-tuning: 300 rows on the CPU path; on SwiftShader (seconds
        // a sequence) 35, 10 of them held out by the 40% rule.
        "tune_cpu": tuned(&demo_bytes, &demo, work.path(), "tune.tsv", 300, 20, &sequences),
        "tune_webgpu": tuned(&demo_bytes, &demo, work.path(), "tune-small.tsv", 35, 40, &sequences[..2]),
        // Full fine-tuning (on the CPU path, and beside a WebGPU model): 300 rows,
        // 20% held out (16 steps a network).
        "tune_full": full_table(&demo_bytes, work.path(), "tune-full.tsv", 300, 20),
        "tolerance": 1e-4,
    });
    let expected_path = work.path().join("expected.json");
    std::fs::write(&expected_path, expected.to_string()).unwrap();
    let artifacts = repo.join("target/browser-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();

    run(
        Command::new("node")
            .arg(repo.join("tests/browser/page.test.mjs"))
            .arg(repo.join("dist"))
            .arg(&expected_path)
            .arg(&artifacts)
            .arg(work.path()),
        "the browser test",
    );
    // The fine-tuned models the page downloaded predict, natively, what the
    // page showed for them (the page checked those against native tuning).
    for backend in ["cpu", "webgpu", "full", "full-webgpu"] {
        let bytes = std::fs::read(work.path().join(format!("tuned-{backend}.safetensors")))
            .expect("the page's fine-tuned model was downloaded");
        let (model, _) = weights::load_ensemble(&bytes, &Device::flex()).unwrap();
        let page: Vec<f32> = serde_json::from_str(
            &std::fs::read_to_string(work.path().join(format!("tuned-{backend}.json"))).unwrap(),
        )
        .unwrap();
        let (got, _) = predict(&model, &sequences[..page.len()], seq_len);
        let diff = promoscope_model::metrics::max_abs_diff(&got, &page);
        assert!(
            diff <= 1e-4,
            "{backend}: the downloaded model natively vs the page: {diff}"
        );
    }
    for shot in [
        "train-cpu.png",
        "score-cpu.png",
        "ism-cpu.png",
        "score-webgpu.png",
        "ism-webgpu.png",
        "design-cpu.png",
        "design-webgpu.png",
    ] {
        let path: &Path = &artifacts.join(shot);
        assert!(path.exists(), "no screenshot {}", path.display());
    }
}
