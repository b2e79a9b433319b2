//! The `promoscope` binary end to end on the tiny config and a slice of the
//! real DREAM sample (`../shared/data`), on flex.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn shared_folder() -> PathBuf {
    std::env::var_os("PROMOSCOPE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
}

/// The features `trainer/Cargo.toml` declares (its `[features]` table's keys).
fn declared_features() -> Vec<String> {
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    manifest
        .lines()
        .skip_while(|line| line.trim() != "[features]")
        .skip(1)
        .take_while(|line| !line.starts_with('['))
        .filter_map(|line| {
            line.split_once(" = ")
                .map(|(name, _)| name.trim().to_string())
        })
        .filter(|name| !name.starts_with('#'))
        .collect()
}

fn sample_slice(dir: &Path, lines: usize) -> PathBuf {
    let text =
        std::fs::read_to_string(shared_folder().join("data/dream2022_train_sample.txt")).unwrap();
    let slice: String = text.lines().take(lines).map(|l| format!("{l}\n")).collect();
    let path = dir.join("sample.txt");
    std::fs::write(&path, slice).unwrap();
    path
}

/// Runs `promoscope` with a command line split on white space (test paths have none).
fn run_line(line: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_promoscope"))
        .args(line.split_whitespace())
        .output()
        .expect("the binary runs")
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn train_then_predict_ism_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample_slice(dir.path(), 400);
    let run = dir.path().join("run");
    let stdout = ok(&run_line(&format!(
        "train --data {} --config tiny --backend flex --epochs 4 --epoch-size 300 --batch-size 32 --val-size 100 --val-every 1 --lr 1e-3 --seed 3 --out {}",
        data.display(),
        run.display()
    )));
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let losses: Vec<f64> = metrics
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["train_loss"]
                .as_f64()
                .unwrap()
        })
        .collect();
    assert_eq!(losses.len(), 4, "{stdout}");
    // The network starts at the labels' mean, so every epoch's loss stays near
    // their variance (from a zero output bias the first epoch's was
    // mean² + variance, ~21× that on this slice).
    let labels: Vec<f64> = std::fs::read_to_string(&data)
        .unwrap()
        .lines()
        .map(|l| l.rsplit('\t').next().unwrap().parse().unwrap())
        .collect();
    let mean = labels.iter().sum::<f64>() / labels.len() as f64;
    let variance = labels.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / labels.len() as f64;
    for loss in &losses {
        assert!(
            (0.5 * variance..1.5 * variance).contains(loss),
            "epoch losses {losses:?}, label variance {variance}"
        );
    }
    let weights = run.join("best.safetensors");
    assert!(weights.exists() && run.join("last.safetensors").exists());
    assert_png(&run.join("learning_curve.png"));

    // predict: one row per sequence of the slice, parsable numbers.
    let csv = ok(&run_line(&format!(
        "predict --weights {} --backend flex --rc-average --skip-bad {}",
        weights.display(),
        data.display()
    )));
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "id,prediction,prediction_rc_average");
    assert_eq!(rows.len(), 1 + 400 - too_long(&data));
    for row in &rows[1..] {
        let fields: Vec<&str> = row.split(',').collect();
        assert!(fields[1].parse::<f32>().unwrap().is_finite());
        assert!(fields[2].parse::<f32>().unwrap().is_finite());
    }

    // quantile normalisation against these same (RC-averaged) predictions:
    // mid-rank quantiles, so uniform on (0, 1) with mean exactly 1/2.
    let reference = dir.path().join("reference.csv");
    std::fs::write(&reference, &csv).unwrap();
    let csv = ok(&run_line(&format!(
        "predict --weights {} --backend flex --skip-bad --rc-average --quantile-normalize {} {}",
        weights.display(),
        reference.display(),
        data.display()
    )));
    let quantiles: Vec<f64> = csv
        .lines()
        .skip(1)
        .map(|row| row.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(quantiles.len(), rows.len() - 1);
    assert!(quantiles.iter().all(|q| (0.0..=1.0).contains(q)));
    let mean = quantiles.iter().sum::<f64>() / quantiles.len() as f64;
    assert!((mean - 0.5).abs() < 1e-9, "mean quantile {mean}");
    let top = quantiles.iter().copied().fold(0.0, f64::max);
    assert!(top > 0.99, "largest quantile {top}");

    // ism: 3 substitutions per base, deltas relative to the reference row.
    let sequence = "TGCATTTTTTTCACATCAAAAGGGTTACGGCTGTT";
    let tsv = ok(&run_line(&format!(
        "ism --weights {} --backend flex --sequence {sequence}",
        weights.display()
    )));
    let lines: Vec<&str> = tsv.lines().collect();
    assert!(lines[0].starts_with("# reference prediction "));
    assert_eq!(lines.len(), 2 + 3 * sequence.len());
    let reference: f32 = lines[0].rsplit(' ').next().unwrap().parse().unwrap();
    let first: Vec<&str> = lines[2].split('\t').collect();
    assert_eq!(&first[..3], ["1", "T", "A"]);
    let (prediction, delta): (f32, f32) = (first[3].parse().unwrap(), first[4].parse().unwrap());
    assert!((prediction - reference - delta).abs() < 1e-5);
    let table = dir.path().join("ism.tsv");
    ok(&run_line(&format!(
        "ism --weights {} --backend flex --sequence {sequence} --out {}",
        weights.display(),
        table.display()
    )));
    assert_eq!(std::fs::read_to_string(&table).unwrap(), tsv);
    assert_png(&dir.path().join("ism.png"));
    // An empty sequence is an error, as on the page.
    let out = Command::new(env!("CARGO_BIN_EXE_promoscope"))
        .args(["ism", "--weights", weights.to_str().unwrap()])
        .args(["--backend", "flex", "--sequence", ""])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("empty sequence"), "{stderr}");

    // evaluate: per-subset table and the DREAM scores from singles and pairs.
    let (test, pairs) = dream_test_files(&data, dir.path());
    let json = ok(&run_line(&format!(
        "evaluate --weights {} --backend flex --json --data {} --pairs {}",
        weights.display(),
        test.display(),
        pairs.display()
    )));
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["overall"]["n"], 120);
    assert_eq!(report["subsets"]["high"]["n"], 24);
    assert_eq!(report["subsets"]["snv"]["n"], 20);
    let score = report["dream"]["pearson_score"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&score), "{report}");
    let table = ok(&run_line(&format!(
        "evaluate --weights {} --backend flex --data {}",
        weights.display(),
        test.display()
    )));
    assert!(
        table.contains("DREAM 2022 score: needs subsets snv, motif_perturbation, motif_tiling"),
        "{table}"
    );

    // export in f16 with a model card; it loads and predicts nearly the same.
    let exported = dir.path().join("demo.safetensors");
    ok(&run_line(&format!(
        "export --weights {} --out {} --f16 --card trained_on=400_test_lines",
        weights.display(),
        exported.display()
    )));
    let (_, info) = promoscope_model::weights::load(
        &std::fs::read(&exported).unwrap(),
        &burn::prelude::Device::flex(),
    )
    .unwrap();
    assert_eq!(info.metadata["trained_on"], "400_test_lines");
    assert_eq!(info.config, promoscope_model::ModelConfig::tiny());
}

/// Writes a DREAM-style test set from the slice: 5 single subsets and 3 pair subsets.
fn dream_test_files(data: &Path, dir: &Path) -> (PathBuf, PathBuf) {
    let text = std::fs::read_to_string(data).unwrap();
    let rows: Vec<(&str, &str)> = text
        .lines()
        .map(|l| l.split_once('\t').unwrap())
        .filter(|(s, _)| s.len() <= 111)
        .take(120)
        .collect();
    let singles = ["high", "low", "yeast", "random", "challenging"];
    let mut tsv = String::from("sequence\texpression\tsubset\n");
    for (i, (seq, expr)) in rows.iter().enumerate() {
        tsv.push_str(&format!("{seq}\t{expr}\t{}\n", singles[i % 5]));
    }
    let pair_subsets = ["snv", "motif_perturbation", "motif_tiling"];
    let mut pairs =
        String::from("alt_sequence,ref_sequence,alt_expression,ref_expression,subset\n");
    for (i, pair) in rows.chunks(2).enumerate() {
        let [(alt, alt_e), (reference, ref_e)] = pair else {
            continue;
        };
        pairs.push_str(&format!(
            "{alt},{reference},{alt_e},{ref_e},{}\n",
            pair_subsets[i % 3]
        ));
    }
    let (data_path, pairs_path) = (dir.join("test.tsv"), dir.join("pairs.csv"));
    std::fs::write(&data_path, tsv).unwrap();
    std::fs::write(&pairs_path, pairs).unwrap();
    (data_path, pairs_path)
}

fn too_long(data: &Path) -> usize {
    std::fs::read_to_string(data)
        .unwrap()
        .lines()
        .filter(|l| l.split('\t').next().unwrap().len() > 111)
        .count()
}

#[test]
fn bad_lines_are_reported_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("bad.txt");
    std::fs::write(&data, "ACGT\t1\nACGT\t2\nACZT\t3\n").unwrap();
    let out = run_line(&format!(
        "train --data {} --config tiny --backend flex",
        data.display()
    ));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.txt:3: invalid base 'Z' at position 3"),
        "{stderr}"
    );

    let weights = dir.path().join("missing.safetensors");
    let out = run_line(&format!(
        "predict --weights {} {}",
        weights.display(),
        data.display()
    ));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read weights"));

    let out = run_line(&format!("train --data {} --backend cuda", data.display()));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown backend \"cuda\""));

    // A file without sequences says so first, whatever the split.
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "\n\n").unwrap();
    for split in ["", "--holdout 15"] {
        let out = run_line(&format!(
            "train --data {} --config tiny --backend flex {split}",
            empty.display()
        ));
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("empty.txt holds no sequences"), "{stderr}");
    }
    let out = run_line(&format!("train --data {} --holdout 0", data.display()));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--holdout"));
}

#[test]
fn holdout_validates_on_the_sequences_the_crc_picks() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample_slice(dir.path(), 300);
    let text = std::fs::read_to_string(&data).unwrap();
    let held: usize = text
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_ascii_uppercase())
        .filter(|s| s.len() <= 111 && promoscope_model::measurements::held_out(s.as_bytes(), 20))
        .count();
    let usable = text.lines().count() - too_long(&data);
    let run = dir.path().join("run");
    let out = run_line(&format!(
        "train --data {} --config tiny --backend flex --epochs 1 --epoch-size 64 --batch-size 32 --holdout 20 --no-swa --out {}",
        data.display(),
        run.display()
    ));
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{} sequences to train on, {held} to validate on (--holdout 20",
            usable - held
        )),
        "{stderr}"
    );
    // A resumed run keeps the split: it is one of the saved options.
    let saved = std::fs::read_to_string(run.join("train_args.json")).unwrap();
    assert!(saved.contains("\"holdout\": 20"), "{saved}");
    // evaluate --holdout scores the same sequences.
    let out = ok(&run_line(&format!(
        "evaluate --weights {} --data {} --backend flex --holdout 20 --json",
        run.join("best.safetensors").display(),
        data.display()
    )));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["overall"]["n"], held, "{report}");
}

fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
    assert!(bytes.len() > 2000, "{} is nearly empty", path.display());
}

#[test]
fn bench_prints_a_table_of_every_figure() {
    let table = ok(&run_line(
        "bench --config tiny --backend flex --infer-batch 8,16 --train-batch 4 --repeats 1 --stages",
    ));
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| ")).collect();
    // Header, 2 inference batches, 6 stages, training, forward + backward of
    // the whole network and of 6 stages, 2 ISM figures.
    assert_eq!(rows.len(), 19, "{table}");
    assert!(rows[3].contains("inference: stem"), "{table}");
    assert!(rows[8].contains("inference: head"), "{table}");
    assert!(rows[9].contains("training step"), "{table}");
    assert!(
        rows[10].contains("forward + backward: whole network"),
        "{table}"
    );
    assert!(rows[11].contains("forward + backward: stem"), "{table}");
    assert!(rows[16].contains("forward + backward: head"), "{table}");
    assert!(rows[17].contains("ISM, 110-bp"), "{table}");
    assert!(rows[18].contains("whole network"), "{table}");
    for row in &rows[1..] {
        let seq_per_s: f64 = row
            .trim_end_matches(" |")
            .rsplit("| ")
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(seq_per_s > 0.0, "{row}");
    }
}

/// `promoscope … | head` is a normal end: the table meets a closed pipe, the
/// command goes on to write its files and exits quietly, as Unix tools do,
/// rather than panicking.
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_promoscope"))
        .args(
            "bench --config tiny --backend flex --infer-batch 2 --train-batch 2 --repeats 1 --json"
                .split(' '),
        )
        .arg(&json)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    drop(child.stdout.take()); // the reader leaves before the table is written
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let figures: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(figures.is_object(), "{figures}");
}

/// `bench --golden` checks the backend against the golden file; with
/// `--mixed-precision` the same check shows f16 products at work.
#[test]
fn bench_checks_the_golden_output_in_f32_and_mixed_precision() {
    let dir = tempfile::tempdir().unwrap();
    let golden = shared_folder().join("golden/hsayn_golden.safetensors");
    let run = |extra: &str| -> (String, serde_json::Value) {
        let json = dir.path().join("bench.json");
        let table = ok(&run_line(&format!(
            "bench --config tiny --backend flex --infer-batch 2 --train-batch 2 --repeats 1 --golden {} --json {} {extra}",
            golden.display(),
            json.display()
        )));
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(report["mixed_precision"], extra.contains("mixed"));
        // The features this binary was built with, which change what a GPU
        // figure means: features the manifest declares, the same in the JSON
        // and atop the table.
        let declared = declared_features();
        let built: Vec<&str> = report["features"]
            .as_array()
            .unwrap_or_else(|| panic!("features: {report}"))
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        for feature in &built {
            assert!(
                declared.iter().any(|d| d.as_str() == *feature),
                "{feature} is not in Cargo.toml"
            );
        }
        let named = if built.is_empty() {
            "none".to_string()
        } else {
            built.join(", ")
        };
        assert!(table.starts_with("backend: flex"), "{table}");
        let cpu = report["cpu"].as_str().unwrap();
        assert!(
            table
                .lines()
                .next()
                .unwrap()
                .ends_with(&format!("build features: {named}; CPU: {cpu}")),
            "{table}"
        );
        // The CPU's vector extensions, as this test process sees them.
        #[cfg(target_arch = "x86_64")]
        {
            let avx512 = std::arch::is_x86_feature_detected!("avx512f");
            assert_eq!(cpu.contains("avx512f"), avx512, "{cpu}");
            assert_eq!(
                cpu.contains("avx2"),
                std::arch::is_x86_feature_detected!("avx2"),
                "{cpu}"
            );
            assert!(cpu.starts_with("x86-64"), "{cpu}");
        }
        (table, report)
    };
    let diff = |extra: &str| run(extra).1["golden_max_diff"].as_f64().unwrap();
    let full = diff("");
    assert!(full < 1e-4, "f32 golden output off by {full}");
    let mixed = diff("--mixed-precision");
    // f16 rounds to 11 significant bits: visibly off, not wrong.
    assert!(
        mixed > 10.0 * full && mixed < 0.1,
        "mixed golden output off by {mixed}"
    );
}

/// Mixed precision follows the f32 run it mirrors (same seed, order and
/// dropout): f16 products and the scaled loss change the losses by rounding
/// only, and the saved options bring the flag back on `--resume`.
#[test]
fn mixed_precision_training_tracks_f32() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample_slice(dir.path(), 300);
    let losses = |name: &str, extra: &str| -> Vec<f64> {
        let run = dir.path().join(name);
        ok(&run_line(&format!(
            "train --data {} --config tiny --backend flex --epochs 3 --epoch-size 200 --batch-size 32 --val-size 60 --val-every 1 --lr 1e-3 --seed 4 --no-swa --out {} {extra}",
            data.display(),
            run.display()
        )));
        metrics_of(&run)
            .iter()
            .map(|m| m["train_loss"].as_f64().unwrap())
            .collect()
    };
    let full = losses("f32", "");
    let mixed = losses("mixed", "--mixed-precision");
    assert_eq!(full.len(), 3);
    for (f, m) in full.iter().zip(&mixed) {
        assert!(
            f != m && (f - m).abs() < 0.02 * f,
            "f32 {full:?}, mixed {mixed:?}"
        );
    }
    let saved = std::fs::read_to_string(dir.path().join("mixed/train_args.json")).unwrap();
    assert!(saved.contains("\"mixed_precision\": true"), "{saved}");
}

/// `evaluate --mixed-precision` scores the same weights with f16 products:
/// the bundled demo model's Pearson on real sequences moves, but by rounding.
#[test]
fn evaluate_in_mixed_precision_stays_close_to_f32() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample_slice(dir.path(), 200);
    let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../www/demo.safetensors");
    let pearson = |extra: &str| -> f64 {
        let out = ok(&run_line(&format!(
            "evaluate --weights {} --data {} --backend flex --json {extra}",
            demo.display(),
            data.display()
        )));
        let report: serde_json::Value = serde_json::from_str(&out).unwrap();
        report["overall"]["pearson"].as_f64().unwrap()
    };
    let full = pearson("");
    let mixed = pearson("--mixed-precision");
    assert!(
        full != mixed && (full - mixed).abs() < 0.01,
        "f32 {full}, mixed {mixed}"
    );
}

fn metrics_of(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A run killed (`kill -9`) after its first checkpoint and resumed ends as the
/// same run done in one go: same epochs, same step count, same losses, same
/// weight average.
#[test]
fn interrupted_run_resumes_from_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample_slice(dir.path(), 300);
    let common = format!(
        "train --data {} --config tiny --backend flex --epochs 30 --epoch-size 200 --batch-size 32 --val-size 60 --val-every 1 --lr 1e-3 --seed 5 --swa-start 3 --swa-every 4 --fine-tune-epochs 5",
        data.display()
    );
    let straight = dir.path().join("straight");
    ok(&run_line(&format!("{common} --out {}", straight.display())));

    let resumed = dir.path().join("resumed");
    let child = Command::new(env!("CARGO_BIN_EXE_promoscope"))
        .args(format!("{common} --out {}", resumed.display()).split_whitespace())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let state = resumed.join("checkpoint/state.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !state.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut child = child;
    child.kill().unwrap();
    child.wait().unwrap();
    let before = metrics_of(&resumed).len();
    assert!(
        (1..30).contains(&before),
        "{before} epochs done before the kill"
    );

    ok(&run_line(&format!("train --resume {}", resumed.display())));
    let (a, b) = (metrics_of(&straight), metrics_of(&resumed));
    assert_eq!(a.len(), 30);
    assert_eq!(b.len(), 30, "epochs lost or repeated");
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((&x["epoch"], &x["step"]), (&y["epoch"], &y["step"]));
        let (lx, ly) = (
            x["train_loss"].as_f64().unwrap(),
            y["train_loss"].as_f64().unwrap(),
        );
        assert!(
            (lx - ly).abs() <= 1e-6 * lx.abs(),
            "epoch {}: loss {lx} vs {ly}",
            x["epoch"]
        );
        let (px, py) = (
            x["val_pearson"].as_f64().unwrap(),
            y["val_pearson"].as_f64().unwrap(),
        );
        assert!(
            (px - py).abs() <= 1e-6,
            "epoch {}: pearson {px} vs {py}",
            x["epoch"]
        );
        assert_eq!(x["lr"], y["lr"]);
        match (x["swa_pearson"].as_f64(), y["swa_pearson"].as_f64()) {
            (Some(sx), Some(sy)) => assert!((sx - sy).abs() <= 1e-6, "swa {sx} vs {sy}"),
            (sx, sy) => assert_eq!(sx, sy, "epoch {}", x["epoch"]),
        }
    }
    assert!(a[29]["swa_pearson"].as_f64().is_some(), "no weight average");
    assert_eq!(a[29]["lr"].as_f64(), Some(3e-5));
    assert_eq!(a[0]["lr"].as_f64(), Some(1e-3));
}

/// Ctrl-C (SIGINT) in the middle of an epoch saves a checkpoint and exits
/// with 130; the resumed run finishes every epoch exactly once.
#[test]
fn ctrl_c_saves_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample_slice(dir.path(), 300);
    let run = dir.path().join("run");
    let child = Command::new(env!("CARGO_BIN_EXE_promoscope"))
        .args(
            format!(
                "train --data {} --config tiny --backend flex --epochs 40 --epoch-size 200 --batch-size 8 --val-size 60 --val-every 1 --lr 1e-3 --seed 5 --out {}",
                data.display(),
                run.display()
            )
            .split_whitespace(),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let metrics = run.join("metrics.jsonl");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !metrics.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("checkpoint saved"));
    let before = metrics_of(&run).len();
    assert!((1..40).contains(&before), "{before} epochs before Ctrl-C");
    ok(&run_line(&format!("train --resume {}", run.display())));
    let epochs: Vec<u64> = metrics_of(&run)
        .iter()
        .map(|m| m["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(epochs, (1..=40).collect::<Vec<u64>>());
}

#[test]
fn resume_without_a_checkpoint_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_line(&format!("train --resume {}", dir.path().display()));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot resume: cannot read"));
}

#[test]
fn small_data_recipe_passes_over_the_data_and_init_starts_from_weights() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample_slice(dir.path(), 300);
    let run = dir.path().join("run");
    let out = run_line(&format!(
        "train --data {} --config tiny --backend flex --recipe small-data --epochs 2 --holdout 20 --out {}",
        data.display(),
        run.display()
    ));
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("note:"), "{stderr}");
    let train_len: usize = stderr
        .split(" sequences to train on")
        .next()
        .and_then(|head| head.rsplit('\n').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{stderr}"));
    // An epoch is one pass in batches of 64, validated after every epoch;
    // the weight average starts after two passes.
    let metrics = metrics_of(&run);
    let steps_per_epoch = train_len.div_ceil(64) as u64;
    assert_eq!(metrics.len(), 2);
    assert_eq!(metrics[0]["step"], steps_per_epoch);
    assert_eq!(metrics[1]["step"], 2 * steps_per_epoch);
    assert_eq!(metrics[0]["lr"], 5e-4);
    assert!(metrics[0]["swa_pearson"].is_null());
    assert!(metrics[1]["swa_pearson"].is_f64());

    // Zero epochs from --init: the run's weights are the init's.
    let copy = dir.path().join("copy");
    ok(&run_line(&format!(
        "train --data {} --config tiny --backend flex --recipe small-data --epochs 0 --holdout 20 --init {} --out {}",
        data.display(),
        run.join("last.safetensors").display(),
        copy.display()
    )));
    let predict = |weights: PathBuf| {
        ok(&run_line(&format!(
            "predict --weights {} --backend flex {}",
            weights.display(),
            data.display()
        )))
    };
    assert_eq!(
        predict(run.join("last.safetensors")),
        predict(copy.join("last.safetensors"))
    );

    // Variable regions alone score as the full sequences with --add-flanks,
    // and are flagged without it.
    let (five, three) = ("TGCATTTTTTTCACATC", "GGTTACGGCTGTT");
    let text = std::fs::read_to_string(&data).unwrap();
    let full: Vec<&str> = text
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .filter(|s| s.starts_with(five) && s.ends_with(three))
        .take(20)
        .collect();
    let regions: String = full
        .iter()
        .map(|s| format!("{}\n", &s[five.len()..s.len() - three.len()]))
        .collect();
    let (full_file, region_file) = (dir.path().join("full.txt"), dir.path().join("regions.txt"));
    std::fs::write(&full_file, full.join("\n")).unwrap();
    std::fs::write(&region_file, regions).unwrap();
    let weights = run.join("last.safetensors");
    let scores = |extra: &str, file: &Path| {
        run_line(&format!(
            "predict --weights {} --backend flex {extra} {}",
            weights.display(),
            file.display()
        ))
    };
    let flanked = scores("--add-flanks", &region_file);
    assert_eq!(ok(&flanked), ok(&scores("", &full_file)));
    assert!(String::from_utf8_lossy(&flanked.stderr).contains("20 sequences were put inside"));
    let bare = scores("", &region_file);
    ok(&bare);
    let stderr = String::from_utf8_lossy(&bare.stderr);
    assert!(
        stderr.contains("warning: 20 sequences lack the model's flanks (the first at")
            && stderr.contains("regions.txt:1)"),
        "{stderr}"
    );

    // Weights of another config are refused before any training.
    let out = run_line(&format!(
        "train --data {} --config seed --backend flex --holdout 20 --init {} --out {}",
        data.display(),
        run.join("last.safetensors").display(),
        dir.path().join("other").display()
    ));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("its model config differs from --config seed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `--mix-data` rows join every epoch (training only): an epoch is the
/// measured rows and `--mix-per-epoch` mixed-in ones, the validation set is
/// the measured file's, the card says so, and a draw larger than the file is
/// refused.
#[test]
fn mixed_in_rows_join_every_epoch_and_only_training() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample_slice(dir.path(), 200);
    let text =
        std::fs::read_to_string(shared_folder().join("data/dream2022_train_sample.txt")).unwrap();
    let mix: String = text
        .lines()
        .skip(1000)
        .filter(|l| l.split('\t').next().unwrap().len() <= 111)
        .take(90)
        .map(|l| format!("{l}\n"))
        .collect();
    let mix_file = dir.path().join("mix.txt");
    std::fs::write(&mix_file, mix).unwrap();
    let run = dir.path().join("run");
    let out = run_line(&format!(
        "train --data {} --config tiny --backend flex --recipe small-data --epochs 2 --holdout 20 --mix-data {} --mix-per-epoch 40 --out {}",
        data.display(),
        mix_file.display(),
        run.display()
    ));
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("mixing 40 of 90 sequences from"),
        "{stderr}"
    );
    let count = |what: &str| -> usize {
        stderr
            .split(what)
            .next()
            .and_then(|head| head.rsplit([' ', '\n']).next())
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("{stderr}"))
    };
    let (train_len, val_len) = (count(" sequences to train on"), count(" to validate on"));
    assert_eq!(train_len + val_len, 200 - too_long(&data));
    let metrics = metrics_of(&run);
    assert_eq!(metrics[0]["step"], (train_len + 40).div_ceil(64) as u64);
    assert_eq!(metrics[1]["step"], 2 * (train_len + 40).div_ceil(64) as u64);
    let card =
        String::from_utf8_lossy(&std::fs::read(run.join("last.safetensors")).unwrap()).into_owned();
    assert!(
        card.contains(&format!(
            "{train_len} sequences, and 40 of 90 mixed-in rows an epoch"
        )),
        "{}",
        &card[..card.len().min(2000)]
    );

    let out = run_line(&format!(
        "train --data {} --config tiny --backend flex --recipe small-data --holdout 20 --mix-data {} --mix-per-epoch 91 --out {}",
        data.display(),
        mix_file.display(),
        dir.path().join("refused").display()
    ));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--mix-per-epoch 91:") && stderr.contains("holds only 90 sequences"),
        "{stderr}"
    );
}

/// `design` on the demo model: constraints hold, greedy raises the prediction
/// round by round, a seed repeats, each design's prediction is `predict`'s,
/// and impossible constraints are refused with a message.
#[test]
fn design_meets_its_constraints_and_repeats_for_a_seed() {
    let dir = tempfile::tempdir().unwrap();
    let weights = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../www/demo.safetensors");
    let region = "CTTCAACCAAAATATAATATTCAATATCTTGTAGGGACGATCAATATAAGTCGCCCGGACCATATAAGGCTAAGGTGTG";
    let design = |extra: &str, out: &Path| {
        run_line(&format!(
            "design --weights {} --backend flex --start {region} {extra} --out {}",
            weights.display(),
            out.display()
        ))
    };
    let (csv, again, trajectory) = (
        dir.path().join("d.csv"),
        dir.path().join("again.csv"),
        dir.path().join("t.csv"),
    );
    let greedy = "--rounds 3 --max-mutations 2 --seed 4 --type-iis --max-homopolymer 5 --gc-min 35 --gc-max 45";
    ok(&design(
        &format!("{greedy} --trajectory {}", trajectory.display()),
        &csv,
    ));
    ok(&design(greedy, &again));
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text, std::fs::read_to_string(&again).unwrap());
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(2)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 1, "{text}");
    let (prediction, spread, mutations, sequence) =
        (rows[0][2], rows[0][3], rows[0][4], rows[0][6]);
    assert!(mutations.parse::<usize>().unwrap() <= 2);
    assert!(sequence.starts_with("TGCATTTTTTTCACATC") && sequence.ends_with("GGTTACGGCTGTT"));
    let variable = &sequence[17..sequence.len() - 13];
    let gc = variable.bytes().filter(|b| b"GC".contains(b)).count() as f64 / 80.0;
    assert!((0.35..=0.45).contains(&gc), "GC {gc}");
    for site in ["GGTCTC", "GAGACC", "CGTCTC", "GAGACG", "AAAAAA", "TTTTTT"] {
        assert!(!variable.contains(site), "{site} in {sequence}");
    }
    // The trajectory: the start, then each round higher than the last.
    let steps: Vec<f64> = std::fs::read_to_string(&trajectory)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    assert!(
        steps.len() >= 2 && steps.windows(2).all(|w| w[1] > w[0]),
        "{steps:?}"
    );
    let scored = dir.path().join("seq.txt");
    std::fs::write(&scored, format!("{sequence}\n")).unwrap();
    let predicted = ok(&run_line(&format!(
        "predict --weights {} --backend flex {}",
        weights.display(),
        scored.display()
    )));
    // The demo is an ensemble: the design's mean and spread are predict's.
    let (mean, sd) = (column(&predicted, "prediction"), column(&predicted, "sd"));
    let (prediction, spread): (f64, f64) = (prediction.parse().unwrap(), spread.parse().unwrap());
    assert!(
        (mean[0] - prediction).abs() < 1e-4 && (sd[0] - spread).abs() < 1e-4,
        "predict {mean:?} ± {sd:?}, design {prediction} ± {spread}"
    );

    // Evolve, to FASTA: `keep` records, best first.
    let fasta = dir.path().join("d.fasta");
    ok(&design(
        "--strategy evolve --population 8 --generations 1 --keep 3 --seed 2",
        &fasta,
    ));
    let fasta = std::fs::read_to_string(&fasta).unwrap();
    assert_eq!(
        fasta.lines().filter(|l| l.starts_with(">design_")).count(),
        3,
        "{fasta}"
    );

    // Impossible constraints: a message naming the problem, no output.
    for (extra, message) in [
        (
            "--gc-min 60 --gc-max 50",
            "the minimum is above the maximum",
        ),
        ("--forbid CACATC", "CACATC occurs in a fixed flank"),
        ("--max-homopolymer 3", "start sequence 1: a run of 4 A"),
    ] {
        let refused = dir.path().join("refused.csv");
        let out = design(extra, &refused);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(message),
            "{extra}: {stderr}"
        );
        assert!(!refused.exists());
    }
}

/// The `predict` CSV's values in one column, by header name.
fn column(csv: &str, name: &str) -> Vec<f64> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = header
        .iter()
        .position(|h| *h == name)
        .unwrap_or_else(|| panic!("no {name} in {header:?}"));
    lines
        .map(|l| l.split(',').nth(at).unwrap().parse().unwrap())
        .collect()
}

/// Two networks joined by `export` are one ensemble: `predict` gives their
/// mean and spread, `evaluate` each member and the calibration, `ism` and
/// `design` the spreads; `--member` takes one out again.
#[test]
fn an_ensemble_reports_its_spread_everywhere() {
    use promoscope_model::weights::{self, Precision};
    let dir = tempfile::tempdir().unwrap();
    let data = sample_slice(dir.path(), 150);
    let device = burn::prelude::Device::flex();
    let config = promoscope_model::ModelConfig::tiny();
    let member = |seed: u64| {
        device.seed(seed);
        let bytes = weights::to_bytes(
            &config.init(&device),
            &config,
            &Default::default(),
            Precision::F32,
        )
        .unwrap();
        let path = dir.path().join(format!("m{seed}.safetensors"));
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let (a, b) = (member(1), member(2));
    let ensemble = dir.path().join("ensemble.safetensors");
    let joined = run_line(&format!(
        "export --weights {} --weights {} --out {}",
        a.display(),
        b.display(),
        ensemble.display()
    ));
    ok(&joined);
    assert!(String::from_utf8_lossy(&joined.stderr).contains("2 network(s)"));
    let predict = |weights: &Path| {
        ok(&run_line(&format!(
            "predict --weights {} --backend flex {}",
            weights.display(),
            data.display()
        )))
    };
    let (pa, pb, pe) = (predict(&a), predict(&b), predict(&ensemble));
    assert!(pe.starts_with("id,prediction,sd\n"), "{}", &pe[..40]);
    assert!(pa.starts_with("id,prediction\n"));
    let (ya, yb) = (column(&pa, "prediction"), column(&pb, "prediction"));
    let (mean, sd) = (column(&pe, "prediction"), column(&pe, "sd"));
    for i in 0..mean.len() {
        assert!((mean[i] - (ya[i] + yb[i]) / 2.0).abs() < 1e-5);
        assert!((sd[i] - (ya[i] - yb[i]).abs() / 2.0).abs() < 1e-5);
    }
    assert!(sd.iter().any(|&s| s > 0.0));

    let report: serde_json::Value = serde_json::from_str(&ok(&run_line(&format!(
        "evaluate --weights {} --backend flex --json --data {}",
        ensemble.display(),
        data.display()
    ))))
    .unwrap();
    assert_eq!(report["members"].as_array().unwrap().len(), 2);
    let calibration = &report["calibration"];
    assert_eq!(calibration["n"], report["overall"]["n"]);
    let rho = calibration["spearman_error_spread"].as_f64().unwrap();
    let interval = calibration["spearman_interval"].as_array().unwrap();
    assert!(interval[0].as_f64().unwrap() <= rho && rho <= interval[1].as_f64().unwrap());
    let single: serde_json::Value = serde_json::from_str(&ok(&run_line(&format!(
        "evaluate --weights {} --backend flex --json --data {}",
        a.display(),
        data.display()
    ))))
    .unwrap();
    assert!(single["calibration"].is_null());
    // The file's 95% interval, in spreads: coverage inside it; a bad one is an error.
    let inside = |interval: &str| {
        let carded = dir.path().join("carded.safetensors");
        let out = run_line(&format!(
            "export --weights {} --card interval_95={interval} --out {}",
            ensemble.display(),
            carded.display()
        ));
        ok(&out);
        run_line(&format!(
            "evaluate --weights {} --backend flex --json --data {}",
            carded.display(),
            data.display()
        ))
    };
    let wide: serde_json::Value = serde_json::from_str(&ok(&inside("1000"))).unwrap();
    assert_eq!(wide["calibration"]["coverage_interval"], 1.0);
    let bad = inside("wide");
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("`interval_95` metadata \"wide\""),
        "{bad:?}"
    );

    let sequence = "TGCATTTTTTTCACATCGGTACCAGGTTACGGCTGTT";
    let tsv = ok(&run_line(&format!(
        "ism --weights {} --backend flex --sequence {sequence}",
        ensemble.display()
    )));
    assert!(
        tsv.lines().nth(1).unwrap().ends_with("\tsd\tdelta_sd"),
        "{tsv}"
    );
    let designs = ok(&run_line(&format!(
        "design --weights {} --backend flex --start {sequence} --rounds 2 --caution 1.5",
        ensemble.display()
    )));
    assert!(
        designs.starts_with("# objective max; caution 1.5;"),
        "{designs}"
    );

    let second = dir.path().join("second.safetensors");
    ok(&run_line(&format!(
        "export --weights {} --member 1 --out {}",
        ensemble.display(),
        second.display()
    )));
    assert_eq!(column(&predict(&second), "prediction"), yb);
    let out = run_line(&format!(
        "export --weights {} --member 2 --out {}",
        ensemble.display(),
        second.display()
    ));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--member 2: the weights hold 2 networks")
    );
    let other = dir.path().join("other.safetensors");
    let wide = config.clone().with_stem_filters(16);
    std::fs::write(
        &other,
        weights::to_bytes(
            &wide.init(&device),
            &wide,
            &Default::default(),
            Precision::F32,
        )
        .unwrap(),
    )
    .unwrap();
    let out = run_line(&format!(
        "export --weights {} --weights {} --out {}",
        a.display(),
        other.display(),
        second.display()
    ));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("model config differs"),
        "{out:?}"
    );
    let out = run_line(&format!(
        "train --data {} --init {} --config tiny --backend flex --epochs 1 --holdout 20 --out {}",
        data.display(),
        ensemble.display(),
        dir.path().join("t").display()
    ));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ensemble of 2 networks"),
        "{out:?}"
    );
}

/// A tiny network as initialised (its hidden layer is features enough) and
/// another "assay": 400 of the sample's rows, values rescaled, under a
/// `sequence,yfp` header, with a bad base on line 402. The weights, the
/// table, its text and how many of its rows a model reads.
fn tune_fixture(dir: &Path) -> (PathBuf, PathBuf, String, u64) {
    let weights = dir.join("tiny.safetensors");
    let config = promoscope_model::ModelConfig::tiny();
    let device = burn::prelude::Device::flex();
    device.seed(3);
    let bytes = promoscope_model::weights::to_bytes(
        &config.init(&device),
        &config,
        &Default::default(),
        promoscope_model::weights::Precision::F32,
    )
    .unwrap();
    std::fs::write(&weights, bytes).unwrap();
    let text =
        std::fs::read_to_string(shared_folder().join("data/dream2022_train_sample.txt")).unwrap();
    let mut table = String::from("sequence,yfp\n");
    let mut usable = 0u64;
    for line in text.lines().skip(300).take(400) {
        let (sequence, value) = line.split_once('\t').unwrap();
        let value: f64 = value.parse().unwrap();
        usable += u64::from(sequence.len() <= 111);
        table.push_str(&format!("{sequence},{}\n", 100.0 + 3.0 * value));
    }
    table.push_str("ACGTX,1\n");
    let data = dir.join("mine.csv");
    std::fs::write(&data, &table).unwrap();
    (weights, data, table, usable)
}

/// `evaluate --holdout 20`'s overall figures for `weights` on the fixture's
/// table (its value column renamed to `expression`, the bad row left out).
fn evaluate_tuned(dir: &Path, weights: &Path, table: &str) -> serde_json::Value {
    let renamed = dir.join("expression.csv");
    let table = table
        .replace("sequence,yfp\n", "sequence,expression\n")
        .replace("ACGTX,1\n", "");
    std::fs::write(&renamed, table).unwrap();
    let evaluated: serde_json::Value = serde_json::from_str(&ok(&run_line(&format!(
        "evaluate --weights {} --backend flex --json --holdout 20 --data {}",
        weights.display(),
        renamed.display()
    ))))
    .unwrap();
    evaluated["overall"].clone()
}

/// `tune` (the page's quick fine-tuning): the tuned file's held-out scores,
/// as `evaluate` computes them, are its report's; a table without the value
/// column named is an error naming file and line; bad rows are left out,
/// each named.
#[test]
fn tune_refits_the_output_and_reports_on_the_held_out_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (weights, data, table, usable) = tune_fixture(dir.path());
    let tuned = dir.path().join("tuned.safetensors");
    let run = run_line(&format!(
        "tune --weights {} --data {} --value-column yfp --holdout 20 --backend flex --json --out {}",
        weights.display(),
        data.display(),
        tuned.display()
    ));
    let report: serde_json::Value = serde_json::from_str(&ok(&run)).unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("mine.csv:402: invalid base 'X'"),
        "{stderr}"
    );
    let held_out = report["held_out_rows"].as_u64().unwrap();
    assert_eq!(report["training_rows"].as_u64().unwrap() + held_out, usable);
    // The tuned model predicts on the new scale (the start's is DREAM's, ~10).
    let tuned_pearson = report["tuned"]["pearson"].as_f64().unwrap();
    let mean = |key: &str| {
        let values: Vec<f64> = serde_json::from_value(report[key].clone()).unwrap();
        values.iter().sum::<f64>() / values.len() as f64
    };
    let (predicted, measured) = (mean("tuned_predictions"), mean("measured"));
    assert!(
        measured > 100.0 && (predicted - measured).abs() < 5.0,
        "{predicted} vs {measured}"
    );
    assert!(mean("start_predictions") < 50.0);
    // `evaluate` reads the tuned file and gives the report's figures.
    let evaluated = evaluate_tuned(dir.path(), &tuned, &table);
    assert_eq!(evaluated["n"].as_u64().unwrap(), held_out);
    let pearson = evaluated["pearson"].as_f64().unwrap();
    assert!(
        (pearson - tuned_pearson).abs() < 1e-4,
        "{pearson} vs {tuned_pearson}"
    );
    // A header without the column asked for: an error naming file and line,
    // and no file written.
    let missing = dir.path().join("missing.safetensors");
    let failed = run_line(&format!(
        "tune --weights {} --data {} --backend flex --out {}",
        weights.display(),
        data.display(),
        missing.display()
    ));
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains(
            "mine.csv:1: header has no \"expression\" column (its columns: sequence, yfp)"
        ),
        "{stderr}"
    );
    assert!(!missing.exists());
}

/// `tune --full` (the page's full fine-tuning): every step of the small-data
/// recipe run, the report's held-out figures are what `evaluate` computes for
/// the written file, and its card says how it was made.
#[test]
fn tune_full_trains_every_weight_and_reports_on_the_held_out_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (weights, data, table, _) = tune_fixture(dir.path());
    let tuned = dir.path().join("full.safetensors");
    let run = run_line(&format!(
        "tune --full --weights {} --data {} --value-column yfp --holdout 20 --backend flex --json --out {}",
        weights.display(),
        data.display(),
        tuned.display()
    ));
    let report: serde_json::Value = serde_json::from_str(&ok(&run)).unwrap();
    assert_eq!(report["mode"], "full");
    let start: Vec<f64> = serde_json::from_value(report["start_predictions"].clone()).unwrap();
    let after: Vec<f64> = serde_json::from_value(report["tuned_predictions"].clone()).unwrap();
    assert!(
        start.iter().zip(&after).all(|(a, b)| a != b),
        "every prediction moved"
    );
    let evaluated = evaluate_tuned(dir.path(), &tuned, &table);
    assert_eq!(evaluated["n"], report["held_out_rows"]);
    let (pearson, reported) = (
        evaluated["pearson"].as_f64().unwrap(),
        report["tuned"]["pearson"].as_f64().unwrap(),
    );
    assert!((pearson - reported).abs() < 1e-4, "{pearson} vs {reported}");
    let bytes = std::fs::read(&tuned).unwrap();
    let info = promoscope_model::weights::read_info(&bytes).unwrap();
    assert!(
        info.metadata["fine_tuned"].contains("full mode on")
            && info.metadata["fine_tuned"].contains("the small-data recipe"),
        "{:?}",
        info.metadata["fine_tuned"]
    );
}
