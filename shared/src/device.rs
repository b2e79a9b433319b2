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
    /// The names [`FromStr`] accepts, and [`fmt::Display`] writes.
    pub const NAMES: [&'static str; 4] = ["auto", "flex", "wgpu", "vulkan"];

    /// The other names [`FromStr`] accepts: the page's (its backend menu and
    /// `?backend=`), which calls flex the CPU and wgpu WebGPU.
    pub const ALIASES: [(&'static str, Backend); 2] =
        [("cpu", Backend::Flex), ("webgpu", Backend::Wgpu)];

    /// The backend as the page names it: `auto`, `cpu` or `webgpu` (every
    /// GPU backend is WebGPU in a browser).
    pub fn page_name(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::Flex => "cpu",
            Backend::Wgpu | Backend::Vulkan => "webgpu",
        }
    }
}

impl FromStr for Backend {
    type Err = DeviceError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "auto" => Ok(Backend::Auto),
            "flex" => Ok(Backend::Flex),
            "wgpu" => Ok(Backend::Wgpu),
            "vulkan" => Ok(Backend::Vulkan),
            other => Backend::ALIASES
                .iter()
                .find(|(alias, _)| *alias == other)
                .map(|&(_, backend)| backend)
                .ok_or_else(|| DeviceError::UnknownBackend(other.to_string())),
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
    #[error("unknown backend {0:?} (expected one of auto, flex, wgpu, vulkan; or cpu, webgpu)")]
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

/// Opens a device for `backend`: the one selector of the CLI and the page.
///
/// `Auto` takes a hardware GPU adapter when wgpu finds one and flex otherwise
/// (a software adapter such as lavapipe or SwiftShader is far slower than
/// flex, natively and in wasm; name `wgpu` or `vulkan` to use one anyway). A
/// GPU backend is opened once per process (once per page worker in wasm) and
/// shared by later calls. In a browser only this asynchronous form can open
/// WebGPU; natively [`select_device`] is the same without the `await`.
pub async fn select_device_async(backend: Backend) -> Result<SelectedDevice, DeviceError> {
    match backend {
        Backend::Flex => Ok(SelectedDevice::flex()),
        Backend::Auto => match open_gpu(Backend::Wgpu).await {
            Ok(gpu) if !gpu.software => Ok(gpu),
            _ => Ok(SelectedDevice::flex()),
        },
        gpu => open_gpu(gpu).await,
    }
}

/// [`select_device_async`], natively, where opening a GPU blocks instead of
/// waiting: its future is done at the first poll.
#[cfg(not(target_family = "wasm"))]
pub fn select_device(backend: Backend) -> Result<SelectedDevice, DeviceError> {
    use std::task::{Context, Poll, Waker};

    let mut selecting = std::pin::pin!(select_device_async(backend));
    match selecting
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(selected) => selected,
        Poll::Pending => unreachable!("natively, opening a device never waits"),
    }
}

#[cfg(all(feature = "wgpu", not(target_family = "wasm")))]
async fn open_gpu(backend: Backend) -> Result<SelectedDevice, DeviceError> {
    use std::sync::OnceLock;

    use burn::tensor::wgpu::WgpuBackend;

    // burn registers a wgpu runtime once per process: keep the first answer
    // (the lock held while it is opened, as tests open it from many threads).
    static WGPU: OnceLock<Result<SelectedDevice, DeviceError>> = OnceLock::new();
    static VULKAN: OnceLock<Result<SelectedDevice, DeviceError>> = OnceLock::new();
    let (cell, api) = match backend {
        Backend::Vulkan => (&VULKAN, WgpuBackend::Vulkan),
        _ => (&WGPU, WgpuBackend::Auto),
    };
    cell.get_or_init(|| {
        let opened = Device::wgpu_options().graphics_api(api).init_with_setup();
        described(backend, opened)
    })
    .clone()
}

#[cfg(all(feature = "wgpu", target_family = "wasm"))]
async fn open_gpu(backend: Backend) -> Result<SelectedDevice, DeviceError> {
    use std::cell::RefCell;

    thread_local! {
        // burn registers one WebGPU runtime per page worker: keep the first answer.
        static WEBGPU: RefCell<Option<Result<SelectedDevice, DeviceError>>> =
            const { RefCell::new(None) };
    }
    if backend == Backend::Vulkan {
        return Err(DeviceError::NotCompiled(backend));
    }
    if let Some(known) = WEBGPU.with(|cell| cell.borrow().clone()) {
        return known;
    }
    let opened = described(
        backend,
        Device::wgpu_options().init_with_setup_async().await,
    );
    WEBGPU.with(|cell| *cell.borrow_mut() = Some(opened.clone()));
    opened
}

/// An opened wgpu device as what it is, or why there is none.
#[cfg(feature = "wgpu")]
fn described(
    backend: Backend,
    opened: Result<(Device, burn::tensor::wgpu::WgpuSetup), burn::tensor::wgpu::WgpuInitError>,
) -> Result<SelectedDevice, DeviceError> {
    use burn::tensor::wgpu::wgpu::DeviceType;

    let (device, setup) = opened.map_err(|e| DeviceError::NoAdapter {
        backend,
        reason: e.to_string(),
    })?;
    let info = setup.adapter.get_info();
    let name = match info.name.as_str() {
        "" => format!("unnamed {:?} adapter", info.device_type),
        name => name.to_string(),
    };
    Ok(SelectedDevice {
        device,
        backend,
        // A browser names no graphics API: it is always WebGPU there.
        adapter: if cfg!(target_family = "wasm") {
            name
        } else {
            format!("{name} via {:?}", info.backend)
        },
        software: info.device_type == DeviceType::Cpu,
    })
}

#[cfg(not(feature = "wgpu"))]
async fn open_gpu(backend: Backend) -> Result<SelectedDevice, DeviceError> {
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
            "unknown backend \"cuda\" (expected one of auto, flex, wgpu, vulkan; or cpu, webgpu)"
        );
        // The page's menu gives "" for a `?backend=` that is none of its options.
        assert!("".parse::<Backend>().is_err());
        assert!("WebGPU".parse::<Backend>().is_err());
    }

    #[test]
    fn the_pages_names_are_aliases() {
        assert_eq!("cpu".parse::<Backend>().unwrap(), Backend::Flex);
        assert_eq!("webgpu".parse::<Backend>().unwrap(), Backend::Wgpu);
        for (alias, backend) in Backend::ALIASES {
            assert!(
                !Backend::NAMES.contains(&alias),
                "{alias} is a name already"
            );
            assert_eq!(backend.page_name(), alias);
        }
        // Each option of the page's menu reads back as the backend it names.
        for backend in [Backend::Auto, Backend::Flex, Backend::Wgpu] {
            assert_eq!(backend.page_name().parse::<Backend>().unwrap(), backend);
        }
        assert_eq!(Backend::Vulkan.page_name(), "webgpu");
    }

    #[test]
    fn auto_opens_flex_or_a_hardware_gpu() {
        let selected = select_device(Backend::Auto).unwrap();
        assert_ne!(selected.backend, Backend::Auto);
        assert!(
            !selected.software,
            "auto took a software adapter: {selected}"
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
