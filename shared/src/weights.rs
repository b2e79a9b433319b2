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
//! Tensors named `input.*` and `trace.*` (the golden file's fixtures) are not
//! parameters and are ignored on load.

use std::collections::{BTreeMap, HashMap, HashSet};

use burn::module::{ModuleMapper, Param, ParamId};
use burn::prelude::*;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::blocks::model::Model;
use crate::config::ModelConfig;

/// Metadata key of the model config (JSON).
pub const CONFIG_KEY: &str = "config";
/// Metadata key naming the writer.
pub const FORMAT_KEY: &str = "format";
/// Value of [`FORMAT_KEY`] in files promoscope writes.
pub const FORMAT: &str = "promoscope-hsayn-v1";

/// Why weights could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// The bytes are not a safetensors file (or are truncated).
    #[error("not a readable safetensors file: {0}")]
    Format(String),
    /// The config in the metadata is unreadable or inconsistent.
    #[error("the model config in the file's metadata is invalid: {0}")]
    Config(String),
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
    #[error("tensor {name} has element type {dtype}, expected F32, F16 or BF16")]
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
}

/// What a weights file says besides its tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightsInfo {
    /// The model config (the seed's when the file has none, as the golden file).
    pub config: ModelConfig,
    /// All metadata, `config` included.
    pub metadata: BTreeMap<String, String>,
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
    Ok(WeightsInfo { config, metadata })
}

/// Builds the model a weights file describes, on `device`.
pub fn load(bytes: &[u8], device: &Device) -> Result<(Model, WeightsInfo), WeightsError> {
    let info = read_info(bytes)?;
    let model = load_into(info.config.init(device), bytes)?;
    Ok((model, info))
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
/// as [`with_stable_ids`]).
pub fn load_into(model: Model, bytes: &[u8]) -> Result<Model, WeightsError> {
    let file = SafeTensors::deserialize(bytes).map_err(|e| WeightsError::Format(e.to_string()))?;
    let mut loader = Loader {
        file: &file,
        used: HashSet::new(),
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
    let mut unexpected: Vec<String> = file
        .names()
        .into_iter()
        .filter(|name| !loader.used.contains(*name) && !is_fixture(name))
        .map(str::to_string)
        .collect();
    if !unexpected.is_empty() {
        unexpected.sort();
        return Err(WeightsError::Unexpected(unexpected));
    }
    Ok(model)
}

/// The model's parameters as safetensors bytes, with the config and `metadata`
/// (a model card, say) in the header.
pub fn to_bytes(
    model: &Model,
    config: &ModelConfig,
    metadata: &BTreeMap<String, String>,
    precision: Precision,
) -> Result<Vec<u8>, WeightsError> {
    // `valid` folds pending batch-norm statistics into the running ones.
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    map_named(model.valid(), |p| {
        let values = p
            .value
            .into_data()
            .try_into_vec_as::<f32>()
            .expect("parameters are floats");
        let bytes = match precision {
            Precision::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            Precision::F16 => values
                .iter()
                .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                .collect(),
        };
        tensors.push((p.name.to_string(), p.shape.to_vec(), bytes));
        (p.id, None)
    });
    let mut header: HashMap<String, String> = metadata.clone().into_iter().collect();
    header.insert(
        CONFIG_KEY.into(),
        serde_json::to_string(config).expect("config is JSON"),
    );
    header.insert(FORMAT_KEY.into(), FORMAT.into());
    let dtype = match precision {
        Precision::F32 => Dtype::F32,
        Precision::F16 => Dtype::F16,
    };
    let views = tensors
        .iter()
        .map(|(name, shape, bytes)| {
            let view = TensorView::new(dtype, shape.clone(), bytes)
                .map_err(|e| WeightsError::Format(e.to_string()))?;
            Ok((name.clone(), view))
        })
        .collect::<Result<Vec<_>, WeightsError>>()?;
    safetensors::serialize(views, Some(header)).map_err(|e| WeightsError::Format(e.to_string()))
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
    used: HashSet<String>,
    missing: Vec<String>,
    error: Option<WeightsError>,
}

impl Loader<'_> {
    /// The file's values for a parameter, recording it as used or missing,
    /// or the first problem met.
    fn read(&mut self, p: &Named<'_>) -> Option<Tensor<1>> {
        match self.values(p.name, p.shape) {
            Ok(Some(values)) => {
                self.used.insert(p.name.to_string());
                let len = values.len();
                Some(Tensor::from_data(
                    TensorData::new(values, [len]),
                    &p.value.device(),
                ))
            }
            Ok(None) => {
                self.missing.push(p.name.to_string());
                None
            }
            Err(error) => {
                self.error.get_or_insert(error);
                None
            }
        }
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
        let values = floats(name, &view)?;
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
