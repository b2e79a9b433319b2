//! The web page in a real browser: builds it with trunk, computes the numbers
//! it must show natively (flex), and lets `tests/browser/page.test.mjs`
//! (Playwright driving Debian's Chromium) check them on WebGPU and on the CPU
//! fallback, along with bad input. Screenshots land in `target/browser-artifacts/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::prelude::*;
use promoscope_model::encoding::one_hot;
use promoscope_model::ism::Mutagenesis;
use promoscope_model::{Model, weights};
use promoscope_tests::{golden_bytes, golden_tensor, team_folder};
use safetensors::SafeTensors;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn predict(model: &Model, sequences: &[&str], seq_len: usize) -> Vec<f32> {
    let x = Tensor::<3>::from_data(one_hot(sequences, seq_len).unwrap(), &Device::flex());
    model
        .forward(x)
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap()
}

/// Every substitution's prediction, as the page lists them.
fn ism(model: &Model, sequence: &str, seq_len: usize) -> serde_json::Value {
    let mutagenesis = Mutagenesis::new(sequence, seq_len).unwrap();
    let x = Tensor::<3>::from_data(mutagenesis.one_hot(seq_len).unwrap(), &Device::flex());
    let predictions = model
        .forward(x)
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap();
    let (reference, table) = mutagenesis.score(&predictions);
    let cells: Vec<_> = table
        .iter()
        .map(|r| {
            serde_json::json!({
                "position": r.substitution.position + 1,
                "alt": r.substitution.alternative.to_string(),
                "prediction": r.prediction,
            })
        })
        .collect();
    serde_json::json!({ "sequence": sequence, "reference": reference, "cells": cells })
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

    let demo_path = repo.join("www/demo.safetensors");
    let demo_bytes = std::fs::read(&demo_path).unwrap();
    let (demo, demo_info) = weights::load(&demo_bytes, &Device::flex()).unwrap();
    let seq_len = demo_info.config.seq_len;
    let example = "TGCATTTTTTTCACATCCTTCAACCAAAATATAATATTCAATATCTTGTAGGGACGATCAATATAAGTCGCCCGGACCATATAAGGCTAAGGTGTGGGGTTACGGCTGTT";
    let expected = serde_json::json!({
        "golden_path": team_folder().join("golden/hsayn_golden.safetensors"),
        "sequences": sequences,
        "golden_predictions": golden_output,
        "demo_predictions": predict(&demo, &sequences, seq_len),
        // WebGPU here is SwiftShader (a CPU rasteriser, ~25× slower than flex
        // in wasm): its ISM runs on a short sequence.
        "ism_cpu": ism(&demo, example, seq_len),
        "ism_webgpu": ism(&demo, &example[..8], seq_len),
        "tolerance": 1e-4,
    });
    let work = tempfile::tempdir().unwrap();
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
    for shot in [
        "score-cpu.png",
        "ism-cpu.png",
        "score-webgpu.png",
        "ism-webgpu.png",
    ] {
        let path: &Path = &artifacts.join(shot);
        assert!(path.exists(), "no screenshot {}", path.display());
    }
}
