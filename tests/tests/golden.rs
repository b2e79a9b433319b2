//! The model against `../shared/golden`: every trace within 1e-4, on every backend.

use burn::module::Param;
use burn::prelude::*;
use promoscope_model::blocks::relative_position::relative_position_basis;
use promoscope_model::ism::Mutagenesis;
use promoscope_model::metrics::max_abs_diff;
use promoscope_model::{Backend, Model, device::select_device, weights};
use promoscope_tests::{golden_bytes, golden_tensor};
use safetensors::SafeTensors;

const TOLERANCE: f32 = 1e-4;

/// The golden weights on `device`.
fn golden_model(device: &Device) -> Model {
    let (model, info) =
        weights::load(&golden_bytes(), device).expect("golden weights load unchanged");
    assert_eq!(info.config, promoscope_model::ModelConfig::new());
    model
}

/// Runs the golden input through `model` on `device`; returns the largest
/// difference per trace from the golden one (infinite where a value is not
/// finite).
fn golden_diffs(model: &Model, device: &Device) -> Vec<(String, f32)> {
    let bytes = golden_bytes();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let (shape, input) = golden_tensor(&file, "input.onehot");
    let x = Tensor::<3>::from_data(TensorData::new(input, shape), device);
    let mut traces = Vec::new();
    let output = model.forward_observed(x, |stage, h| traces.push((stage.name(), h.clone())));
    let mut results: Vec<(String, Tensor<3>)> = traces
        .into_iter()
        .map(|(name, t)| (name.to_string(), t))
        .collect();
    results.push(("output".into(), output.unsqueeze_dim(2)));

    let mut diffs = Vec::new();
    for (name, tensor) in results {
        let (shape, expected) = golden_tensor(&file, &format!("trace.{name}"));
        let got_shape = tensor.dims().to_vec();
        let got = tensor.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(
            got.len(),
            expected.len(),
            "trace.{name}: shape {got_shape:?} vs golden {shape:?}"
        );
        diffs.push((name, max_abs_diff(&got, &expected)));
    }
    let (_, posenc) = golden_tensor(&file, "trace.posenc");
    diffs.push((
        "posenc".into(),
        max_abs_diff(&relative_position_basis(3, 192), &posenc),
    ));
    diffs
}

/// The traces not within the tolerance.
fn beyond_tolerance(diffs: &[(String, f32)]) -> Vec<&(String, f32)> {
    diffs.iter().filter(|(_, d)| *d > TOLERANCE).collect()
}

/// The golden weights' traces on `device`, failing on any beyond the tolerance.
fn check_golden(device: &Device, backend: &str) {
    let diffs = golden_diffs(&golden_model(device), device);
    for (name, diff) in &diffs {
        println!("golden {backend} trace.{name}: max |diff| = {diff:.3e}");
    }
    let worst = beyond_tolerance(&diffs);
    assert!(
        worst.is_empty(),
        "{backend}: traces beyond {TOLERANCE}: {worst:?}"
    );
}

#[test]
fn golden_traces_match_on_flex() {
    check_golden(&Device::flex(), "flex");
}

/// CI installs lavapipe, so wgpu always has an adapter there: a missing one fails.
#[test]
fn golden_traces_match_on_wgpu() {
    let selected = select_device(Backend::Wgpu).expect("wgpu needs an adapter (lavapipe in CI)");
    println!("wgpu adapter: {selected}");
    check_golden(&selected.device, "wgpu");
}

#[test]
fn golden_parameter_count_is_the_models() {
    let bytes = golden_bytes();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let count: usize = file
        .tensors()
        .iter()
        .filter(|(name, _)| !name.starts_with("input.") && !name.starts_with("trace."))
        .map(|(_, view)| view.shape().iter().product::<usize>())
        .sum();
    let model = promoscope_model::ModelConfig::new().init(&Device::flex());
    assert_eq!(count, 4_688_321);
    assert_eq!(model.num_params(), count);
}

/// Incremental ISM (stem and block 1 on windows) against each row through
/// `model` whole, on a golden sequence: the largest difference over the
/// first and last `rows_each_end` rows of its batch, where the windows leave
/// the sequence (infinite where a value is not finite).
fn incremental_ism_diff(model: &Model, device: &Device, rows_each_end: usize) -> f32 {
    let info = weights::read_info(&golden_bytes()).unwrap();
    let seq_len = info.config.seq_len;
    let sequence = info.metadata["sequences"].split('|').next().unwrap();
    let m = Mutagenesis::new(sequence, seq_len).unwrap();
    let mut worst = 0.0f32;
    for rows in [0..rows_each_end, m.rows() - rows_each_end..m.rows()] {
        let x = Tensor::<3>::from_data(m.one_hot_rows(seq_len, rows.clone()).unwrap(), device);
        let whole = model.forward(x).into_data().try_to_vec::<f32>().unwrap();
        let incremental = m.predict_rows(model, seq_len, rows).unwrap();
        let incremental = incremental.into_data().try_to_vec::<f32>().unwrap();
        worst = worst.max(max_abs_diff(&incremental, &whole));
    }
    worst
}

fn check_incremental_ism(device: &Device, backend: &str, rows_each_end: usize) {
    let worst = incremental_ism_diff(&golden_model(device), device, rows_each_end);
    println!("incremental ISM {backend}: max |diff| = {worst:.3e}");
    assert!(
        worst <= TOLERANCE,
        "{backend}: incremental ISM off by {worst}"
    );
}

/// A network that outputs NaN fails both checks above: the golden weights
/// with a NaN output bias.
#[test]
fn a_network_that_outputs_nan_fails_the_golden_and_ism_checks() {
    let device = Device::flex();
    let mut model = golden_model(&device);
    model.head.out.bias = Some(Param::from_tensor(Tensor::from_floats([f32::NAN], &device)));
    let diffs = golden_diffs(&model, &device);
    let failed: Vec<&str> = beyond_tolerance(&diffs)
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(failed, ["output"], "{diffs:?}");
    let ism = incremental_ism_diff(&model, &device, 2);
    assert!(ism > TOLERANCE, "incremental ISM of a NaN network: {ism}");
}

#[test]
fn incremental_ism_matches_the_whole_network_on_flex() {
    check_incremental_ism(&Device::flex(), "flex", 24);
}

#[test]
fn incremental_ism_matches_the_whole_network_on_wgpu() {
    let selected = select_device(Backend::Wgpu).expect("wgpu needs an adapter (lavapipe in CI)");
    check_incremental_ism(&selected.device, "wgpu", 4);
}
