//! Weights files: round trips, the golden file, Python interop and every error.

use std::collections::{BTreeMap, HashMap};
use std::process::Command;

use burn::prelude::*;
use promoscope_model::metrics::max_abs_diff;
use promoscope_model::weights::{self, Precision, WeightsError};
use promoscope_model::{Model, ModelConfig};
use promoscope_tests::golden_bytes;
use safetensors::SafeTensors;
use safetensors::tensor::{Dtype, TensorView};

fn tiny() -> (Model, ModelConfig) {
    let device = Device::flex();
    device.seed(11);
    let config = ModelConfig::tiny();
    (config.init(&device), config)
}

fn predict(model: &Model) -> Vec<f32> {
    let device = Device::flex();
    device.seed(5);
    let x = Tensor::<3>::random(
        [3, model_len(model), 4],
        burn::tensor::Distribution::Default,
        &device,
    );
    model.forward(x).into_data().try_to_vec().unwrap()
}

fn model_len(_: &Model) -> usize {
    ModelConfig::tiny().seq_len
}

fn card() -> BTreeMap<String, String> {
    BTreeMap::from([("trained_on".to_string(), "nothing: a test".to_string())])
}

/// Rewrites a safetensors file through `edit`, which may add, drop or change tensors.
fn rewrite(
    bytes: &[u8],
    edit: impl FnOnce(&mut Vec<(String, Dtype, Vec<usize>, Vec<u8>)>),
) -> Vec<u8> {
    let file = SafeTensors::deserialize(bytes).unwrap();
    let (_, header) = SafeTensors::read_metadata(bytes).unwrap();
    let mut tensors: Vec<_> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            (
                name,
                view.dtype(),
                view.shape().to_vec(),
                view.data().to_vec(),
            )
        })
        .collect();
    edit(&mut tensors);
    let views: Vec<_> = tensors
        .iter()
        .map(|(name, dtype, shape, data)| {
            (
                name.clone(),
                TensorView::new(*dtype, shape.clone(), data).unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, header.metadata().clone()).unwrap()
}

#[test]
fn round_trip_keeps_predictions_config_and_card() {
    let (model, config) = tiny();
    let bytes = weights::to_bytes(&model, &config, &card(), Precision::F32).unwrap();
    let (loaded, info) = weights::load(&bytes, &Device::flex()).unwrap();
    assert_eq!(info.config, config);
    assert_eq!(info.metadata["trained_on"], "nothing: a test");
    assert_eq!(info.metadata[weights::FORMAT_KEY], weights::FORMAT);
    assert_eq!(predict(&model), predict(&loaded));
}

#[test]
fn f16_round_trip_is_close() {
    let (model, config) = tiny();
    let f32_bytes = weights::to_bytes(&model, &config, &card(), Precision::F32).unwrap();
    let f16_bytes = weights::to_bytes(&model, &config, &card(), Precision::F16).unwrap();
    assert!(f16_bytes.len() < f32_bytes.len() * 6 / 10);
    let (loaded, _) = weights::load(&f16_bytes, &Device::flex()).unwrap();
    let diff = max_abs_diff(&predict(&model), &predict(&loaded));
    assert!(diff < 1e-2, "f16 weights moved predictions by {diff}");
}

#[test]
fn golden_file_round_trips_to_identical_tensors() {
    let golden = golden_bytes();
    let (model, info) = weights::load(&golden, &Device::flex()).unwrap();
    let written =
        weights::to_bytes(&model, &info.config, &BTreeMap::new(), Precision::F32).unwrap();
    let (golden, written) = (
        SafeTensors::deserialize(&golden).unwrap(),
        SafeTensors::deserialize(&written).unwrap(),
    );
    let mut params = 0;
    for (name, view) in golden.tensors() {
        if name.starts_with("input.") || name.starts_with("trace.") {
            continue;
        }
        let ours = written
            .tensor(&name)
            .unwrap_or_else(|_| panic!("{name} not written"));
        assert_eq!(ours.shape(), view.shape(), "{name}");
        assert_eq!(ours.data(), view.data(), "{name}");
        params += 1;
    }
    assert_eq!(params, written.len());
}

/// A written file opens with the plain `safetensors` package in NumPy, with
/// the golden names, shapes and values.
#[test]
fn python_numpy_reads_what_promoscope_writes() {
    let golden = golden_bytes();
    let (model, info) = weights::load(&golden, &Device::flex()).unwrap();
    let bytes = weights::to_bytes(&model, &info.config, &card(), Precision::F32).unwrap();
    let dir = std::env::temp_dir().join(format!("promoscope-py-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ours = dir.join("ours.safetensors");
    std::fs::write(&ours, &bytes).unwrap();
    let golden_path = promoscope_tests::team_folder().join("golden/hsayn_golden.safetensors");
    let script = r#"
import json, sys
import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file
ours, golden = load_file(sys.argv[1]), load_file(sys.argv[2])
golden = {k: v for k, v in golden.items() if not k.startswith(("input.", "trace."))}
assert sorted(ours) == sorted(golden), set(ours) ^ set(golden)
for k, v in golden.items():
    assert ours[k].dtype == np.float32 and ours[k].shape == v.shape, k
    assert np.array_equal(ours[k], v), k
with safe_open(sys.argv[1], "np") as f:
    meta = f.metadata()
assert json.loads(meta["config"])["seq_len"] == 111
assert meta["trained_on"] == "nothing: a test"
print("python ok", len(ours))
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&ours)
        .arg(&golden_path)
        .output()
        .expect("python3 must be installed (.ci/run installs numpy and safetensors)");
    std::fs::remove_dir_all(&dir).ok();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("python ok"),
        "python failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn load_err(bytes: &[u8]) -> String {
    let err: WeightsError = weights::load(bytes, &Device::flex())
        .map(|_| ())
        .unwrap_err();
    err.to_string()
}

fn tiny_bytes() -> Vec<u8> {
    let (model, config) = tiny();
    weights::to_bytes(&model, &config, &card(), Precision::F32).unwrap()
}

#[test]
fn missing_tensors_are_named() {
    let bytes = rewrite(&tiny_bytes(), |t| {
        t.retain(|(n, ..)| n != "head.out.bias" && n != "mha.r_w")
    });
    assert_eq!(load_err(&bytes), "missing tensors: mha.r_w, head.out.bias");
}

#[test]
fn unexpected_tensors_are_named() {
    let bytes = rewrite(&tiny_bytes(), |t| {
        t.push(("head.fc3.weight".into(), Dtype::F32, vec![1], vec![0; 4]))
    });
    assert_eq!(
        load_err(&bytes),
        "unexpected tensors (not parameters of this model): head.fc3.weight"
    );
}

#[test]
fn misshaped_tensor_is_named_with_both_shapes() {
    let bytes = rewrite(&tiny_bytes(), |t| {
        let entry = t
            .iter_mut()
            .find(|(n, ..)| n == "stem.conv.weight")
            .unwrap();
        entry.2 = vec![entry.2[0], entry.2[2], entry.2[1]];
    });
    assert_eq!(
        load_err(&bytes),
        "tensor stem.conv.weight has shape [8, 7, 4], the model needs [8, 4, 7]"
    );
}

#[test]
fn integer_tensor_is_refused() {
    let bytes = rewrite(&tiny_bytes(), |t| {
        let entry = t.iter_mut().find(|(n, ..)| n == "ln1.bias").unwrap();
        entry.1 = Dtype::I32;
    });
    assert_eq!(
        load_err(&bytes),
        "tensor ln1.bias has element type I32, expected F32, F16, BF16 or I8"
    );
}

#[test]
fn non_finite_values_are_refused_naming_the_tensor() {
    for (value, shown) in [(f32::NAN, "NaN"), (f32::NEG_INFINITY, "-inf")] {
        let bytes = rewrite(&tiny_bytes(), |t| {
            let entry = t.iter_mut().find(|(n, ..)| n == "head.out.bias").unwrap();
            entry.3[..4].copy_from_slice(&value.to_le_bytes());
        });
        assert_eq!(
            load_err(&bytes),
            format!("tensor head.out.bias holds a non-finite value ({shown}) at element 0")
        );
    }
    // In f16 too (an exported demo model).
    let (model, config) = tiny();
    let f16 = weights::to_bytes(&model, &config, &card(), Precision::F16).unwrap();
    let bytes = rewrite(&f16, |t| {
        let entry = t.iter_mut().find(|(n, ..)| n == "ln1.bias").unwrap();
        entry.3[2..4].copy_from_slice(&0x7c00u16.to_le_bytes()); // f16 +inf
    });
    assert_eq!(
        load_err(&bytes),
        "tensor ln1.bias holds a non-finite value (inf) at element 1"
    );
}

#[test]
fn truncated_and_foreign_files_are_format_errors() {
    let bytes = tiny_bytes();
    let truncated = load_err(&bytes[..bytes.len() - 100]);
    assert!(
        truncated.starts_with("not a readable safetensors file:"),
        "{truncated}"
    );
    let text = load_err(b"SEQUENCE\tEXPRESSION\nACGT\t1.0\n");
    assert!(
        text.starts_with("not a readable safetensors file:"),
        "{text}"
    );
    assert!(load_err(&[]).starts_with("not a readable safetensors file:"));
}

#[test]
fn bad_config_in_metadata_is_reported() {
    let bytes = tiny_bytes();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let rebuild = |config: &str| {
        let views: Vec<_> = file.tensors();
        let meta = HashMap::from([(weights::CONFIG_KEY.to_string(), config.to_string())]);
        safetensors::serialize(views, Some(meta)).unwrap()
    };
    let err = load_err(&rebuild("{not json"));
    assert!(
        err.starts_with("the model config in the file's metadata is invalid:"),
        "{err}"
    );
    let config = serde_json::to_string(&ModelConfig::tiny().with_stem_kernel(4)).unwrap();
    assert_eq!(
        load_err(&rebuild(&config)),
        "the model config in the file's metadata is invalid: stem_kernel must be odd for 'same' padding, got 4"
    );
}
