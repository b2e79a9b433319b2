//! Helpers shared by the workspace-level tests: where the team folder is, and
//! how to compare tensors.

use std::path::PathBuf;

use safetensors::SafeTensors;

/// The team folder beside the repository (`../shared`), or `$PROMOSCOPE_SHARED`.
pub fn team_folder() -> PathBuf {
    match std::env::var_os("PROMOSCOPE_SHARED") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    }
}

/// `../shared/golden/hsayn_golden.safetensors`, read whole.
pub fn golden_bytes() -> Vec<u8> {
    let path = team_folder().join("golden/hsayn_golden.safetensors");
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// `../shared/data/dream2022_train_sample.txt`.
pub fn sample_data() -> PathBuf {
    team_folder().join("data/dream2022_train_sample.txt")
}

/// A float32 tensor of a safetensors file: its shape and values.
///
/// # Panics
/// If the file has no tensor `name`.
pub fn golden_tensor(file: &SafeTensors<'_>, name: &str) -> (Vec<usize>, Vec<f32>) {
    let view = file
        .tensor(name)
        .unwrap_or_else(|e| panic!("golden {name}: {e}"));
    let values = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (view.shape().to_vec(), values)
}
