//! Weights as `.safetensors`, with exactly the golden file's names and layouts.
//!
//! | golden name                        | module path                          | layout          |
//! |------------------------------------|--------------------------------------|-----------------|
//! | `stem.conv.{weight,bias}`          | `stem.conv`                          | `[out, in, k]`  |
//! | `stem.bn.*`, `block{n}.bn.*`       | `BatchNorm` fields                   | `[channels]`    |
//! | `block{n}.res.conv{i}.*`           | `block{n}.res.convs[i]`              | `[out, in, k]`  |
//! | `block{n}.res.bn{i}.*`             | `block{n}.res.bns[i]`                | `[channels]`    |
//! | `block{n}.pool.weight`             | `block{n}.pool.weight`               | `[out, in]`     |
//! | `block{2,3}.conv.{weight,bias}`    | `block{n}.conv`                      | `[out, in, k]`  |
//! | `mha.*`, `ln1.*`, `ffn.*`, `ln2.*` | `transformer.mha` … `transformer.ln2`| `[out, in]`     |
//! | `head.{fc1,bn1,fc2,bn2,out}.*`     | `head.*`                             | `[out, in]`     |
//!
//! Batch norms hold `weight` (gamma), `bias` (beta), `running_mean`, `running_var`.
//! So a module path becomes a golden name by two rules: the `transformer.`
//! prefix is dropped, and a list index joins its list's singular name
//! (`convs.2` → `conv2`). The model config travels as JSON in the file's
//! metadata under `config`; other metadata (a model card) is kept as is.
//!
//! An ensemble's file holds K members of one config: metadata `members` = K,
//! and member k's tensors under `member{k}.` + the golden name. A file
//! without `members` holds one network under the plain names.
//!
//! Tensors are F32, F16 or BF16; or 8-bit ([`Precision::I8`]): an I8 tensor
//! `name` of the parameter's shape with an F32 tensor `name.scale`, one
//! scale per output row (the first axis): value = int8 · scale.
//! Tensors named `input.*` and `trace.*` (the golden file's fixtures) are not
//! parameters and are ignored on load.

use std::collections::{BTreeMap, HashMap, HashSet};

use burn::module::{ModuleMapper, Param, ParamId};
use burn::prelude::*;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::blocks::model::Model;
use crate::config::ModelConfig;
use crate::ensemble::Ensemble;

/// Metadata key of the model config (JSON).
pub const CONFIG_KEY: &str = "config";
/// Metadata key naming the writer.
pub const FORMAT_KEY: &str = "format";
/// Value of [`FORMAT_KEY`] in files promoscope writes.
pub const FORMAT: &str = "promoscope-hsayn-v1";
/// Metadata key of an ensemble's number of members (absent: one network).
pub const MEMBERS_KEY: &str = "members";

/// Why weights could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// The bytes are not a safetensors file (or are truncated).
    #[error("not a readable safetensors file: {0}")]
    Format(String),
    /// The config in the metadata is unreadable or inconsistent.
    #[error("the model config in the file's metadata is invalid: {0}")]
    Config(String),
    /// The metadata's member count is not a positive whole number.
    #[error("the file's `members` metadata is {0:?}, not a number of networks (1 or more)")]
    Members(String),
    /// An ensemble's file where one network is needed.
    #[error(
        "the file holds an ensemble of {0} networks where one is needed; \
         `promoscope export --member K` writes member K alone"
    )]
    NotOneNetwork(usize),
    /// Parameters the model needs are absent.
    #[error("missing tensors: {}", .0.join(", "))]
    Missing(Vec<String>),
    /// Tensors the model does not have.
    #[error("unexpected tensors (not parameters of this model): {}", .0.join(", "))]
    Unexpected(Vec<String>),
    /// A tensor of the wrong shape.
    #[error("tensor {name} has shape {found:?}, the model needs {expected:?}")]
    Shape {
        /// Golden name.
        name: String,
        /// Shape the model needs.
        expected: Vec<usize>,
        /// Shape in the file.
        found: Vec<usize>,
    },
    /// A tensor holding NaN or an infinity (a diverged run's weights).
    #[error("tensor {name} holds a non-finite value ({value}) at element {index}")]
    NonFinite {
        /// Golden name.
        name: String,
        /// Flat index of the first such value.
        index: usize,
        /// The value.
        value: f32,
    },
    /// A tensor of an element type that is not a float.
    #[error("tensor {name} has element type {dtype}, expected F32, F16, BF16 or I8")]
    DType {
        /// Golden name.
        name: String,
        /// Its type.
        dtype: String,
    },
}

/// Element type of written weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Precision {
    /// 32-bit floats (exact).
    #[default]
    F32,
    /// 16-bit floats: half the size, ~3 significant digits.
    F16,
    /// 8-bit integers with one F32 scale per output row (absolute maximum /
    /// 127) for tensors of two or more axes, F16 for the rest: a quarter of
    /// the size, for the page's download (`docs/TRAINING.md` gives what it
    /// costs in accuracy).
    I8,
}

/// The suffix of an 8-bit tensor's row scales.
const SCALE_SUFFIX: &str = ".scale";

/// What a weights file says besides its tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightsInfo {
    /// The model config (the seed's when the file has none, as the golden file).
    pub config: ModelConfig,
    /// All metadata, `config` included.
    pub metadata: BTreeMap<String, String>,
    /// How many networks the file holds (an ensemble's members; 1 without
    /// [`MEMBERS_KEY`]).
    pub members: usize,
}

/// Reads the config and metadata of a weights file without its tensors.
pub fn read_info(bytes: &[u8]) -> Result<WeightsInfo, WeightsError> {
    let (_, header) =
        SafeTensors::read_metadata(bytes).map_err(|e| WeightsError::Format(e.to_string()))?;
    let metadata: BTreeMap<String, String> = header
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let config = match metadata.get(CONFIG_KEY) {
        Some(json) => serde_json::from_str::<ModelConfig>(json)
            .map_err(|e| WeightsError::Config(e.to_string()))?,
        None => ModelConfig::new(),
    };
    config.validate().map_err(WeightsError::Config)?;
    let members = match metadata.get(MEMBERS_KEY) {
        None => 1,
        Some(text) => match text.trim().parse::<usize>() {
            Ok(k) if k > 0 => k,
            _ => return Err(WeightsError::Members(text.clone())),
        },
    };
    Ok(WeightsInfo {
        config,
        metadata,
        members,
    })
}

/// Builds the networks a weights file describes (one, or an ensemble's
/// members), on `device`.
pub fn load_ensemble(
    bytes: &[u8],
    device: &Device,
) -> Result<(Ensemble, WeightsInfo), WeightsError> {
    let info = read_info(bytes)?;
    let file = SafeTensors::deserialize(bytes).map_err(|e| WeightsError::Format(e.to_string()))?;
    let mut used = HashSet::new();
    let members = (0..info.members)
        .map(|k| {
            let prefix = member_prefix(k, info.members);
            read_member(info.config.init(device), &file, &prefix, &mut used)
        })
        .collect::<Result<Vec<_>, _>>()?;
    check_all_used(&file, &used)?;
    Ok((Ensemble::new(members), info))
}

/// Builds the one network a weights file describes, on `device` (an
/// ensemble's file is an error).
pub fn load(bytes: &[u8], device: &Device) -> Result<(Model, WeightsInfo), WeightsError> {
    let info = read_info(bytes)?;
    let model = load_into(info.config.init(device), bytes)?;
    Ok((model, info))
}

/// Where member `k` of `members` keeps its tensors: `member{k}.`, or no
/// prefix for a single network.
fn member_prefix(k: usize, members: usize) -> String {
    if members == 1 {
        String::new()
    } else {
        format!("member{k}.")
    }
}

/// Gives every parameter an id derived from its golden name, so that state
/// keyed by id (an optimizer's) survives saving and loading the weights.
/// [`load_into`] does the same.
pub fn with_stable_ids(model: Model) -> Model {
    map_named(model, |p| (stable_id(p.name), None))
}

/// FNV-1a of the golden name: the same on every run and machine.
fn stable_id(name: &str) -> ParamId {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    ParamId::from(hash)
}

/// A parameter met on [`map_named`]'s walk.
pub struct Named<'a> {
    /// Its golden name.
    pub name: &'a str,
    /// Its shape.
    pub shape: &'a [usize],
    /// Its id.
    pub id: ParamId,
    /// Whether it is trained (tracked by autodiff).
    pub trainable: bool,
    /// Its values, flattened to one axis.
    pub value: Tensor<1>,
}

/// The one walk over the model's parameters: `f` meets each float parameter
/// by its golden name and returns the id it keeps and the values (flattened)
/// that replace its own, or `None` to keep them. Replaced values move to the
/// parameter's device and keep its gradient flag.
pub fn map_named(model: Model, f: impl FnMut(Named<'_>) -> (ParamId, Option<Tensor<1>>)) -> Model {
    struct Walk<F> {
        path: Vec<String>,
        f: F,
    }
    impl<F: FnMut(Named<'_>) -> (ParamId, Option<Tensor<1>>)> ModuleMapper for Walk<F> {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (id, tensor, mapper) = param.consume();
            let shape = tensor.dims();
            let (id, new) = (self.f)(Named {
                name: &golden_name(&self.path),
                shape: &shape,
                id,
                trainable: tensor.is_require_grad(),
                value: tensor.clone().reshape([shape.iter().product::<usize>()]),
            });
            let tensor = match new {
                Some(new) => new
                    .reshape(shape)
                    .to_device(&tensor.device())
                    .set_require_grad(tensor.is_require_grad()),
                None => tensor,
            };
            Param::from_mapped_value(id, tensor, mapper)
        }
    }
    model.map(&mut Walk {
        path: Vec::new(),
        f,
    })
}

/// Replaces every parameter of `model` with the file's (ids from the names,
/// as [`with_stable_ids`]); an ensemble's file is an error.
pub fn load_into(model: Model, bytes: &[u8]) -> Result<Model, WeightsError> {
    let members = read_info(bytes)?.members;
    if members != 1 {
        return Err(WeightsError::NotOneNetwork(members));
    }
    let file = SafeTensors::deserialize(bytes).map_err(|e| WeightsError::Format(e.to_string()))?;
    let mut used = HashSet::new();
    let model = read_member(model, &file, "", &mut used)?;
    check_all_used(&file, &used)?;
    Ok(model)
}

/// `model` with the tensors named `prefix` + golden name, recorded in `used`.
fn read_member(
    model: Model,
    file: &SafeTensors<'_>,
    prefix: &str,
    used: &mut HashSet<String>,
) -> Result<Model, WeightsError> {
    let mut loader = Loader {
        file,
        prefix,
        used,
        missing: Vec::new(),
        error: None,
    };
    let model = map_named(model, |p| (stable_id(p.name), loader.read(&p)));
    if let Some(error) = loader.error {
        return Err(error);
    }
    if !loader.missing.is_empty() {
        return Err(WeightsError::Missing(loader.missing));
    }
    Ok(model)
}

/// An error naming the file's tensors that no network read (fixtures aside).
fn check_all_used(file: &SafeTensors<'_>, used: &HashSet<String>) -> Result<(), WeightsError> {
    let mut unexpected: Vec<String> = file
        .names()
        .into_iter()
        .filter(|name| !used.contains(*name) && !is_fixture(name))
        .map(str::to_string)
        .collect();
    if unexpected.is_empty() {
        return Ok(());
    }
    unexpected.sort();
    Err(WeightsError::Unexpected(unexpected))
}

/// The model's parameters as safetensors bytes, with the config and `metadata`
/// (a model card, say) in the header.
pub fn to_bytes(
    model: &Model,
    config: &ModelConfig,
    metadata: &BTreeMap<String, String>,
    precision: Precision,
) -> Result<Vec<u8>, WeightsError> {
    members_to_bytes(std::slice::from_ref(model), config, metadata, precision)
}

/// Networks of one config as one file: an ensemble's members when there are
/// several (see the module doc), a plain network's file for one.
pub fn members_to_bytes(
    members: &[Model],
    config: &ModelConfig,
    metadata: &BTreeMap<String, String>,
    precision: Precision,
) -> Result<Vec<u8>, WeightsError> {
    // `valid` folds pending batch-norm statistics into the running ones.
    let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (k, model) in members.iter().enumerate() {
        let prefix = member_prefix(k, members.len());
        member_tensors(model, &prefix, precision, &mut tensors);
    }
    let mut header: HashMap<String, String> = metadata.clone().into_iter().collect();
    header.remove(MEMBERS_KEY);
    if members.len() > 1 {
        header.insert(MEMBERS_KEY.into(), members.len().to_string());
    }
    header.insert(
        CONFIG_KEY.into(),
        serde_json::to_string(config).expect("config is JSON"),
    );
    header.insert(FORMAT_KEY.into(), FORMAT.into());
    let views = tensors
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            let view = TensorView::new(*dtype, shape.clone(), bytes)
                .map_err(|e| WeightsError::Format(e.to_string()))?;
            Ok((name.clone(), view))
        })
        .collect::<Result<Vec<_>, WeightsError>>()?;
    safetensors::serialize(views, Some(header)).map_err(|e| WeightsError::Format(e.to_string()))
}

/// A weights file with the tensors of `replace` (by file name: an ensemble
/// member's `member{k}.` + golden name) put in, as F32 (an 8-bit tensor's row
/// scales go with it), every other tensor kept as stored, and the metadata
/// replaced by `metadata` but for the config, format and member count, which
/// stay the file's. How quick fine-tuning writes its model without reading
/// the rest back from a device ([`crate::tune`]).
pub fn with_tensors(
    bytes: &[u8],
    replace: &BTreeMap<String, Vec<f32>>,
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>, WeightsError> {
    let info = read_info(bytes)?;
    let file = SafeTensors::deserialize(bytes).map_err(|e| WeightsError::Format(e.to_string()))?;
    let mut views = Vec::new();
    let mut missing = Vec::new();
    let mut replaced = Vec::new();
    for (name, values) in replace {
        let Ok(view) = file.tensor(name) else {
            missing.push(name.clone());
            continue;
        };
        let count: usize = view.shape().iter().product();
        if count != values.len() {
            return Err(WeightsError::Shape {
                name: name.clone(),
                expected: view.shape().to_vec(),
                found: vec![values.len()],
            });
        }
        let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        replaced.push((name.clone(), view.shape().to_vec(), data));
    }
    if !missing.is_empty() {
        return Err(WeightsError::Missing(missing));
    }
    let is_replaced = |name: &str| {
        replace.contains_key(name)
            || name
                .strip_suffix(SCALE_SUFFIX)
                .is_some_and(|base| replace.contains_key(base))
    };
    for (name, view) in file.tensors() {
        if !is_replaced(&name) {
            views.push((name, view));
        }
    }
    for (name, shape, data) in &replaced {
        let view = TensorView::new(Dtype::F32, shape.clone(), data)
            .map_err(|e| WeightsError::Format(e.to_string()))?;
        views.push((name.clone(), view));
    }
    let mut header: HashMap<String, String> = metadata.clone().into_iter().collect();
    for key in [CONFIG_KEY, FORMAT_KEY, MEMBERS_KEY] {
        match info.metadata.get(key) {
            Some(value) => header.insert(key.into(), value.clone()),
            None => header.remove(key),
        };
    }
    safetensors::serialize(views, Some(header)).map_err(|e| WeightsError::Format(e.to_string()))
}

/// `model`'s tensors as `(prefix + golden name, type, shape, bytes)`.
fn member_tensors(
    model: &Model,
    prefix: &str,
    precision: Precision,
    tensors: &mut Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
) {
    let f16 = |values: &[f32]| -> Vec<u8> {
        values
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect()
    };
    map_named(model.valid(), |p| {
        let values = p
            .value
            .into_data()
            .try_into_vec_as::<f32>()
            .expect("parameters are floats");
        let name = format!("{prefix}{}", p.name);
        let shape = p.shape.to_vec();
        match precision {
            Precision::F32 => {
                let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                tensors.push((name, Dtype::F32, shape, bytes));
            }
            Precision::I8 if shape.len() >= 2 => {
                let (codes, scales) = quantize_rows(&values, shape[0]);
                let scales = scales.iter().flat_map(|v| v.to_le_bytes()).collect();
                tensors.push((
                    format!("{name}{SCALE_SUFFIX}"),
                    Dtype::F32,
                    vec![shape[0]],
                    scales,
                ));
                tensors.push((name, Dtype::I8, shape, codes));
            }
            Precision::F16 | Precision::I8 => tensors.push((name, Dtype::F16, shape, f16(&values))),
        }
        (p.id, None)
    });
}

/// `values` as `rows` rows of 8-bit codes (bytes of i8) and each row's scale:
/// its largest |value| / 127 (1 for a row of zeros).
fn quantize_rows(values: &[f32], rows: usize) -> (Vec<u8>, Vec<f32>) {
    let width = values.len() / rows;
    let mut codes = Vec::with_capacity(values.len());
    let mut scales = Vec::with_capacity(rows);
    for row in values.chunks_exact(width) {
        let largest = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let scale = if largest > 0.0 { largest / 127.0 } else { 1.0 };
        codes.extend(
            row.iter()
                .map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8 as u8),
        );
        scales.push(scale);
    }
    (codes, scales)
}

/// Every parameter and running statistic of `model`, flattened, by golden name.
pub fn named_tensors(model: &Model) -> BTreeMap<String, Tensor<1>> {
    let mut tensors = BTreeMap::new();
    map_named(model.clone(), |p| {
        tensors.insert(p.name.to_string(), p.value);
        (p.id, None)
    });
    tensors
}

/// `model` with the tensors `replace` returns (flattened, by golden name)
/// in place of its own; `None` keeps a tensor. Ids and gradient flags stay.
pub fn replace_tensors(model: Model, mut replace: impl FnMut(&str) -> Option<Tensor<1>>) -> Model {
    map_named(model, |p| (p.id, replace(p.name)))
}

/// Whether a golden name is a batch-norm running statistic (state, not a
/// trained parameter).
pub fn is_running_statistic(name: &str) -> bool {
    name.ends_with(".running_mean") || name.ends_with(".running_var")
}

/// The golden name of a parameter at a module path (see the table above).
pub fn golden_name(path: &[String]) -> String {
    let mut parts: Vec<String> = Vec::with_capacity(path.len());
    for (i, part) in path.iter().enumerate() {
        if i == 0 && part == "transformer" {
            continue;
        }
        match (part.parse::<usize>(), parts.last_mut()) {
            (Ok(index), Some(list)) => {
                let singular = list.strip_suffix('s').unwrap_or(list).to_string();
                *list = format!("{singular}{index}");
            }
            _ => parts.push(part.clone()),
        }
    }
    parts.join(".")
}

fn is_fixture(name: &str) -> bool {
    name.starts_with("input.") || name.starts_with("trace.")
}

/// Little-endian floats of a safetensors tensor, whatever its float type.
fn floats(name: &str, view: &TensorView<'_>) -> Result<Vec<f32>, WeightsError> {
    let bytes = view.data();
    let values = match view.dtype() {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F16 => bytes
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => bytes
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        other => {
            return Err(WeightsError::DType {
                name: name.into(),
                dtype: format!("{other:?}"),
            });
        }
    };
    Ok(values)
}

/// What [`load_into`]'s walk reads from the file, and what it found.
struct Loader<'a> {
    file: &'a SafeTensors<'a>,
    /// Before each golden name: an ensemble member's `member{k}.`.
    prefix: &'a str,
    used: &'a mut HashSet<String>,
    missing: Vec<String>,
    error: Option<WeightsError>,
}

impl Loader<'_> {
    /// The file's values for a parameter, recording it as used or missing,
    /// or the first problem met.
    fn read(&mut self, p: &Named<'_>) -> Option<Tensor<1>> {
        let name = format!("{}{}", self.prefix, p.name);
        match self.values(&name, p.shape) {
            Ok(Some(values)) => {
                if self
                    .file
                    .tensor(&name)
                    .is_ok_and(|v| v.dtype() == Dtype::I8)
                {
                    self.used.insert(format!("{name}{SCALE_SUFFIX}"));
                }
                self.used.insert(name);
                let len = values.len();
                Some(Tensor::from_data(
                    TensorData::new(values, [len]),
                    &p.value.device(),
                ))
            }
            Ok(None) => {
                self.missing.push(name);
                None
            }
            Err(error) => {
                self.error.get_or_insert(error);
                None
            }
        }
    }

    /// An 8-bit tensor's values: its codes times its rows' scales.
    fn dequantize(&self, name: &str, view: &TensorView<'_>) -> Result<Vec<f32>, WeightsError> {
        let scale_name = format!("{name}{SCALE_SUFFIX}");
        let rows = view.shape()[0];
        let scales = match self.file.tensor(&scale_name) {
            Ok(scales) if scales.shape() == [rows] => floats(&scale_name, &scales)?,
            Ok(scales) => {
                return Err(WeightsError::Shape {
                    name: scale_name,
                    expected: vec![rows],
                    found: scales.shape().to_vec(),
                });
            }
            Err(_) => return Err(WeightsError::Missing(vec![scale_name])),
        };
        let width = view.data().len() / rows.max(1);
        Ok(view
            .data()
            .iter()
            .enumerate()
            .map(|(i, &code)| f32::from(code as i8) * scales[i / width])
            .collect())
    }

    fn values(&self, name: &str, expected: &[usize]) -> Result<Option<Vec<f32>>, WeightsError> {
        let Ok(view) = self.file.tensor(name) else {
            return Ok(None);
        };
        if view.shape() != expected {
            return Err(WeightsError::Shape {
                name: name.into(),
                expected: expected.to_vec(),
                found: view.shape().to_vec(),
            });
        }
        let values = match view.dtype() {
            Dtype::I8 => self.dequantize(name, &view)?,
            _ => floats(name, &view)?,
        };
        if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(WeightsError::NonFinite {
                name: name.into(),
                index,
                value,
            });
        }
        Ok(Some(values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|p| p.to_string()).collect()
    }

    /// Trainable parameters get ids from their names (batch-norm running
    /// statistics keep burn's own: no optimizer state refers to them).
    #[test]
    fn stable_ids_follow_names_not_runs() {
        let device = Device::flex().autodiff();
        let ids = |model: &Model| {
            let mut ids = Vec::new();
            map_named(model.clone(), |p| {
                if p.trainable {
                    ids.push(p.id);
                }
                (p.id, None)
            });
            ids
        };
        let a = with_stable_ids(ModelConfig::tiny().init(&device));
        let b = with_stable_ids(ModelConfig::tiny().init(&device));
        assert_eq!(ids(&a), ids(&b));
        let unique: HashSet<_> = ids(&a).into_iter().collect();
        assert_eq!(unique.len(), ids(&a).len());
        assert_ne!(ids(&ModelConfig::tiny().init(&device)), ids(&a));
    }

    /// An ensemble's members come back from one file, each with its own
    /// weights; one-network readers refuse it, and a short or mislabelled
    /// file says what is wrong.
    #[test]
    fn ensembles_round_trip_through_one_file() {
        let device = Device::flex();
        let config = ModelConfig::tiny();
        let members: Vec<Model> = (0..2).map(|_| config.init(&device)).collect();
        let metadata = BTreeMap::from([("members".to_string(), "7".to_string())]);
        let bytes = members_to_bytes(&members, &config, &metadata, Precision::F32).unwrap();
        let (ensemble, info) = load_ensemble(&bytes, &device).unwrap();
        assert_eq!((info.members, ensemble.len()), (2, 2));
        for (loaded, original) in ensemble.members().iter().zip(&members) {
            let (a, b) = (named_tensors(loaded), named_tensors(original));
            for (name, value) in &a {
                let diff = crate::tensor_max_abs_diff(value.clone(), b[name].clone());
                assert_eq!(diff, 0.0, "{name}");
            }
        }
        let (a, b) = (&named_tensors(&members[0]), &named_tensors(&members[1]));
        assert!(
            crate::tensor_max_abs_diff(
                a["stem.conv.weight"].clone(),
                b["stem.conv.weight"].clone()
            ) > 0.0
        );
        assert!(matches!(
            load(&bytes, &device),
            Err(WeightsError::NotOneNetwork(2))
        ));

        // One network: plain names, no `members`, and both readers take it.
        let one = members_to_bytes(&members[..1], &config, &metadata, Precision::F32).unwrap();
        assert_eq!(read_info(&one).unwrap().members, 1);
        assert!(!read_info(&one).unwrap().metadata.contains_key(MEMBERS_KEY));
        assert_eq!(load_ensemble(&one, &device).unwrap().0.len(), 1);
        assert!(load(&one, &device).is_ok());

        // Metadata promising a member the tensors lack.
        let file = SafeTensors::deserialize(&bytes).unwrap();
        let relabel = |members: &str| {
            let mut header: HashMap<String, String> =
                read_info(&bytes).unwrap().metadata.into_iter().collect();
            header.insert(MEMBERS_KEY.into(), members.into());
            let views: Vec<_> = file.tensors();
            safetensors::serialize(views, Some(header)).unwrap()
        };
        match load_ensemble(&relabel("3"), &device) {
            Err(WeightsError::Missing(names)) => {
                assert!(names.iter().all(|n| n.starts_with("member2.")), "{names:?}")
            }
            other => panic!(
                "expected missing member2 tensors, got {:?}",
                other.map(|_| ())
            ),
        }
        assert!(matches!(
            load_ensemble(&relabel("1"), &device),
            Err(WeightsError::Missing(_))
        ));
        for bad in ["0", "two", "-1"] {
            assert!(matches!(
                read_info(&relabel(bad)),
                Err(WeightsError::Members(_))
            ));
        }
    }

    /// 8-bit weights come back within half a step of each row's scale, at
    /// under half the size (a quarter for the paper's network, whose
    /// tensors are large); a missing scale is named.
    #[test]
    fn eight_bit_weights_round_trip_within_half_a_step() {
        let device = Device::flex();
        let config = ModelConfig::tiny();
        let model = config.init(&device);
        let metadata = BTreeMap::new();
        let full = to_bytes(&model, &config, &metadata, Precision::F32).unwrap();
        let small = to_bytes(&model, &config, &metadata, Precision::I8).unwrap();
        assert!(
            small.len() * 2 < full.len(),
            "{} vs {}",
            small.len(),
            full.len()
        );
        let (loaded, _) = load(&small, &device).unwrap();
        let (a, b) = (named_tensors(&model), named_tensors(&loaded));
        let values = |t: &Tensor<1>| t.clone().into_data().try_into_vec_as::<f32>().unwrap();
        let weight = values(&a["block2.conv.weight"]);
        let rows = 16;
        let width = weight.len() / rows;
        for (row, (x, y)) in weight
            .chunks(width)
            .zip(values(&b["block2.conv.weight"]).chunks(width))
            .enumerate()
        {
            let step = x.iter().fold(0.0f32, |m, v| m.max(v.abs())) / 127.0;
            let diff = crate::metrics::max_abs_diff(x, y);
            assert!(diff <= step / 2.0 + 1e-7, "row {row}: {diff} > {step} / 2");
        }
        // One-axis tensors are F16.
        let bias = crate::metrics::max_abs_diff(
            &values(&a["block2.conv.bias"]),
            &values(&b["block2.conv.bias"]),
        );
        assert!(bias < 1e-3 && bias > 0.0 || bias == 0.0);

        let file = SafeTensors::deserialize(&small).unwrap();
        let header: HashMap<String, String> =
            read_info(&small).unwrap().metadata.into_iter().collect();
        let views: Vec<_> = file
            .tensors()
            .into_iter()
            .filter(|(name, _)| name != "block2.conv.weight.scale")
            .collect();
        let without = safetensors::serialize(views, Some(header)).unwrap();
        match load(&without, &device) {
            Err(WeightsError::Missing(names)) => assert_eq!(names, ["block2.conv.weight.scale"]),
            other => panic!("expected the missing scale, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn module_paths_become_golden_names() {
        assert_eq!(
            golden_name(&path(&["block1", "res", "convs", "2", "bias"])),
            "block1.res.conv2.bias"
        );
        assert_eq!(
            golden_name(&path(&["block2", "res", "bns", "0", "running_var"])),
            "block2.res.bn0.running_var"
        );
        assert_eq!(
            golden_name(&path(&["transformer", "ffn", "conv1", "weight"])),
            "ffn.conv1.weight"
        );
        assert_eq!(
            golden_name(&path(&["transformer", "mha", "r_w"])),
            "mha.r_w"
        );
        assert_eq!(
            golden_name(&path(&["head", "out", "bias"])),
            "head.out.bias"
        );
    }
}
