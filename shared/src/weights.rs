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

use burn::module::{ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::prelude::*;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::config::ModelConfig;
use crate::model::Model;

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
    model.map(&mut StableIds { path: Vec::new() })
}

/// FNV-1a of the golden name: the same on every run and machine.
fn stable_id(name: &str) -> ParamId {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    ParamId::from(hash)
}

struct StableIds {
    path: Vec<String>,
}

impl ModuleMapper for StableIds {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (_, tensor, mapper) = param.consume();
        Param::from_mapped_value(stable_id(&golden_name(&self.path)), tensor, mapper)
    }
}

/// Replaces every parameter of `model` with the file's (ids from the names,
/// as [`with_stable_ids`]).
pub fn load_into(model: Model, bytes: &[u8]) -> Result<Model, WeightsError> {
    let file = SafeTensors::deserialize(bytes).map_err(|e| WeightsError::Format(e.to_string()))?;
    let mut loader = Loader {
        file: &file,
        path: Vec::new(),
        used: HashSet::new(),
        missing: Vec::new(),
        error: None,
    };
    let model = model.map(&mut loader);
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
    let mut collector = Collector {
        path: Vec::new(),
        tensors: Vec::new(),
        precision,
    };
    // `valid` folds pending batch-norm statistics into the running ones.
    model.valid().visit(&mut collector);
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
    let views = collector
        .tensors
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
    struct Named {
        path: Vec<String>,
        tensors: BTreeMap<String, Tensor<1>>,
    }
    impl ModuleVisitor for Named {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let tensor = param.val();
            let len = tensor.shape().num_elements();
            self.tensors
                .insert(golden_name(&self.path), tensor.reshape([len]));
        }
    }
    let mut named = Named {
        path: Vec::new(),
        tensors: BTreeMap::new(),
    };
    model.visit(&mut named);
    named.tensors
}

/// `model` with the tensors `replace` returns (flattened, by golden name)
/// in place of its own; `None` keeps a tensor. Ids and gradient flags stay.
pub fn replace_tensors(model: Model, replace: impl FnMut(&str) -> Option<Tensor<1>>) -> Model {
    struct Replacer<F> {
        path: Vec<String>,
        replace: F,
    }
    impl<F: FnMut(&str) -> Option<Tensor<1>>> ModuleMapper for Replacer<F> {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let Some(new) = (self.replace)(&golden_name(&self.path)) else {
                return param;
            };
            let (id, tensor, mapper) = param.consume();
            let new = new
                .reshape(tensor.dims())
                .to_device(&tensor.device())
                .set_require_grad(tensor.is_require_grad());
            Param::from_mapped_value(id, new, mapper)
        }
    }
    model.map(&mut Replacer {
        path: Vec::new(),
        replace,
    })
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

struct Loader<'a> {
    file: &'a SafeTensors<'a>,
    path: Vec<String>,
    used: HashSet<String>,
    missing: Vec<String>,
    error: Option<WeightsError>,
}

impl Loader<'_> {
    fn read(&self, name: &str, expected: &[usize]) -> Result<Option<TensorData>, WeightsError> {
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
        Ok(Some(TensorData::new(
            floats(name, &view)?,
            expected.to_vec(),
        )))
    }
}

impl ModuleMapper for Loader<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let name = golden_name(&self.path);
        let (_, tensor, mapper) = param.consume();
        let id = stable_id(&name);
        let shape = tensor.dims();
        match self.read(&name, &shape) {
            Ok(Some(data)) => {
                self.used.insert(name);
                let loaded = Tensor::<D>::from_data(data, &tensor.device())
                    .set_require_grad(tensor.is_require_grad());
                return Param::from_mapped_value(id, loaded, mapper);
            }
            Ok(None) => self.missing.push(name),
            Err(error) => {
                self.error.get_or_insert(error);
            }
        }
        Param::from_mapped_value(id, tensor, mapper)
    }
}

struct Collector {
    path: Vec<String>,
    tensors: Vec<(String, Vec<usize>, Vec<u8>)>,
    precision: Precision,
}

impl ModuleVisitor for Collector {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let tensor = param.val();
        let shape = tensor.dims().to_vec();
        let values = tensor
            .into_data()
            .try_into_vec_as::<f32>()
            .expect("parameters are floats");
        let bytes = match self.precision {
            Precision::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            Precision::F16 => values
                .iter()
                .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                .collect(),
        };
        self.tensors.push((golden_name(&self.path), shape, bytes));
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
            struct Ids(Vec<ParamId>);
            impl ModuleVisitor for Ids {
                fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                    if param.val().is_require_grad() {
                        self.0.push(param.id);
                    }
                }
            }
            let mut ids = Ids(Vec::new());
            model.visit(&mut ids);
            ids.0
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
