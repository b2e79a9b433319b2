//! One place that turns a backend name into a burn [`Device`].

use std::fmt;
use std::str::FromStr;

use burn::prelude::*;

/// The backends promoscope can run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// A real GPU through wgpu if there is one, else flex.
    Auto,
    /// burn's pure-Rust CPU backend (SIMD, multi-threaded; also in wasm).
    Flex,
    /// wgpu on whichever graphics API the machine offers.
    Wgpu,
    /// wgpu pinned to Vulkan (SPIR-V shaders: reaches tensor cores for f16).
    Vulkan,
}

impl Backend {
    /// The names [`FromStr`] accepts.
    pub const NAMES: [&'static str; 4] = ["auto", "flex", "wgpu", "vulkan"];
}

impl FromStr for Backend {
    type Err = DeviceError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "auto" => Ok(Backend::Auto),
            "flex" | "cpu" => Ok(Backend::Flex),
            "wgpu" => Ok(Backend::Wgpu),
            "vulkan" => Ok(Backend::Vulkan),
            other => Err(DeviceError::UnknownBackend(other.to_string())),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Backend::Auto => "auto",
            Backend::Flex => "flex",
            Backend::Wgpu => "wgpu",
            Backend::Vulkan => "vulkan",
        };
        f.write_str(name)
    }
}

/// As its name (`"flex"`), so saved options read back with [`FromStr`].
impl serde::Serialize for Backend {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Backend {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a backend could not be opened.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// A name that is no backend.
    #[error("unknown backend {0:?} (expected one of auto, flex, wgpu, vulkan)")]
    UnknownBackend(String),
    /// The GPU backend found no adapter, or could not open it.
    #[error("backend {backend}: no usable GPU adapter: {reason}")]
    NoAdapter {
        /// The backend asked for.
        backend: Backend,
        /// What wgpu said.
        reason: String,
    },
    /// This build has no GPU backend.
    #[error("backend {0} is not compiled into this build")]
    NotCompiled(Backend),
}

/// An opened device and what it is.
#[derive(Clone, Debug)]
pub struct SelectedDevice {
    /// The device to put tensors and modules on.
    pub device: Device,
    /// The backend it runs (never [`Backend::Auto`]).
    pub backend: Backend,
    /// The adapter, as its driver names it (`"CPU"` for flex).
    pub adapter: String,
    /// Whether the adapter is a CPU emulation of a GPU (lavapipe, SwiftShader).
    pub software: bool,
}

impl fmt::Display for SelectedDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.software { ", software" } else { "" };
        write!(f, "{} ({}{kind})", self.backend, self.adapter)
    }
}

impl SelectedDevice {
    /// burn's CPU backend, always available (natively and in wasm).
    pub fn flex() -> Self {
        SelectedDevice {
            device: Device::flex(),
            backend: Backend::Flex,
            adapter: "CPU".into(),
            software: false,
        }
    }
}

/// Whether `device` is burn's CPU backend, flex (with autodiff or without):
/// the one test of it wherever a kernel differs between the CPU and GPUs.
pub fn is_flex(device: &Device) -> bool {
    device.clone().inner() == Device::flex()
}

/// Opens a device for `backend`.
///
/// `Auto` takes a hardware GPU adapter when wgpu finds one and flex otherwise
/// (a software adapter such as lavapipe is far slower than flex; name `wgpu`
/// or `vulkan` to use one anyway). A GPU backend is opened once per process
/// and shared by later calls.
#[cfg(not(target_family = "wasm"))]
pub fn select_device(backend: Backend) -> Result<SelectedDevice, DeviceError> {
    match backend {
        Backend::Flex => Ok(SelectedDevice::flex()),
        Backend::Auto => match open_gpu(Backend::Wgpu) {
            Ok(gpu) if !gpu.software => Ok(gpu),
            _ => Ok(SelectedDevice::flex()),
        },
        gpu => open_gpu(gpu),
    }
}

#[cfg(all(feature = "wgpu", not(target_family = "wasm")))]
fn open_gpu(backend: Backend) -> Result<SelectedDevice, DeviceError> {
    use std::sync::OnceLock;

    use burn::tensor::wgpu::{WgpuBackend, wgpu::DeviceType};

    // burn registers a wgpu runtime once per process: keep the first answer.
    static WGPU: OnceLock<Result<SelectedDevice, DeviceError>> = OnceLock::new();
    static VULKAN: OnceLock<Result<SelectedDevice, DeviceError>> = OnceLock::new();
    let (cell, api) = match backend {
        Backend::Vulkan => (&VULKAN, WgpuBackend::Vulkan),
        _ => (&WGPU, WgpuBackend::Auto),
    };
    cell.get_or_init(|| {
        let (device, setup) = Device::wgpu_options()
            .graphics_api(api)
            .init_with_setup()
            .map_err(|e| DeviceError::NoAdapter {
                backend,
                reason: e.to_string(),
            })?;
        let info = setup.adapter.get_info();
        Ok(SelectedDevice {
            device,
            backend,
            adapter: format!("{} via {:?}", info.name, info.backend),
            software: info.device_type == DeviceType::Cpu,
        })
    })
    .clone()
}

#[cfg(all(not(feature = "wgpu"), not(target_family = "wasm")))]
fn open_gpu(backend: Backend) -> Result<SelectedDevice, DeviceError> {
    Err(DeviceError::NotCompiled(backend))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_errors() {
        for name in Backend::NAMES {
            assert_eq!(name.parse::<Backend>().unwrap().to_string(), name);
        }
        assert_eq!(
            "cuda".parse::<Backend>().unwrap_err().to_string(),
            "unknown backend \"cuda\" (expected one of auto, flex, wgpu, vulkan)"
        );
    }

    #[test]
    fn serde_writes_and_reads_the_name() {
        let json = serde_json::to_string(&Backend::Vulkan).unwrap();
        assert_eq!(json, "\"vulkan\"");
        assert_eq!(
            serde_json::from_str::<Backend>("\"cpu\"").unwrap(),
            Backend::Flex
        );
        assert!(serde_json::from_str::<Backend>("\"cuda\"").is_err());
    }

    #[test]
    fn flex_is_always_there() {
        let selected = select_device(Backend::Flex).unwrap();
        assert_eq!(selected.backend, Backend::Flex);
        assert_eq!(selected.to_string(), "flex (CPU)");
        assert!(is_flex(&selected.device));
        assert!(is_flex(&selected.device.autodiff()));
    }
}
