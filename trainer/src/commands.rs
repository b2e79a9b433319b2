//! One module per subcommand of `promoscope`, each with its arguments beside
//! its handler; the argument groups several commands share ([`ModelArgs`],
//! [`DeviceArgs`], [`WeightsArgs`]) are here, parsed to types by clap.

pub mod bench;
pub mod design;
pub mod evaluate;
pub mod export;
pub mod ism;
pub mod predict;
pub mod simulate;
pub mod train;
pub mod tune;

use std::fmt;
use std::io::Write as _;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::Result;
use promoscope::predict::Scorer;
use promoscope_model::{Backend, ModelConfig};

/// `--backend`.
#[derive(clap::Args, Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub struct DeviceArgs {
    /// Backend: auto (a hardware GPU if there is one, else flex), flex (or
    /// cpu), wgpu or vulkan.
    #[arg(long, default_value = "auto")]
    pub backend: Backend,
}

/// `--config`.
#[derive(clap::Args, Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ModelArgs {
    /// Model config: `seed` (the paper's), `tiny`, or a JSON file.
    #[arg(long, default_value = "seed")]
    pub config: ConfigChoice,
}

/// A model config by name (`seed`, `tiny`) or JSON file, validated; kept
/// with its name, which is what a run's saved options record.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigChoice {
    /// As given.
    pub name: String,
    /// The config it names.
    pub config: ModelConfig,
}

impl FromStr for ConfigChoice {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        let config = match name {
            "seed" => ModelConfig::new(),
            "tiny" => ModelConfig::tiny(),
            path => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read config {path}: {e}"))?;
                serde_json::from_str(&text)
                    .map_err(|e| format!("{path}: not a model config: {e}"))?
            }
        };
        config
            .validate()
            .map_err(|problem| format!("config {name}: {problem}"))?;
        Ok(ConfigChoice {
            name: name.to_string(),
            config,
        })
    }
}

impl fmt::Display for ConfigChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl serde::Serialize for ConfigChoice {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ConfigChoice {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// `--weights` and `--backend`: a trained model to score with.
#[derive(clap::Args)]
pub struct WeightsArgs {
    /// Weights (`.safetensors` written by promoscope, or the golden file).
    #[arg(long)]
    pub weights: PathBuf,
    #[command(flatten)]
    pub device: DeviceArgs,
}

impl WeightsArgs {
    /// The weights, loaded onto their device.
    pub fn load(&self) -> Result<Scorer> {
        Scorer::load(&self.weights, self.device.backend)
    }
}

/// Writes `text` to stdout. A reader that has gone (`promoscope … | head`)
/// took what it wanted: not an error (`print!` would panic), and the command
/// goes on to write its files. Every other write error is returned.
pub fn out(text: impl fmt::Display) -> std::io::Result<()> {
    match write!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => result,
    }
}
