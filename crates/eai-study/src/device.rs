//! Which device runs the model: the GPU when one is usable, else the CPU; or what the user
//! forces (`--cpu`, `--cuda N`).

use serde::{Deserialize, Serialize};

/// A device for `eai-model`'s engines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Device {
    /// The CPU reference engine.
    #[default]
    Cpu,
    /// The CUDA engine on this device ordinal (feature `cuda`).
    Cuda(usize),
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// The device chosen and why, in words (for the user and the report).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeviceChoice {
    /// The device.
    pub device: Device,
    /// Why it was chosen.
    pub reason: String,
}

impl DeviceChoice {
    /// A choice made for a stated reason (e.g. the user's `--cpu`).
    pub fn new(device: Device, reason: impl Into<String>) -> Self {
        Self { device, reason: reason.into() }
    }
}

impl Device {
    /// Every CUDA device this process can use (`CUDA_VISIBLE_DEVICES` applies), in ordinal
    /// order: what `--cuda all` means. For [`GgufLoader::devices`](crate::GgufLoader::devices).
    ///
    /// # Errors
    /// In words: no CUDA driver, no GPU, or a build without the `cuda` feature.
    pub fn all_cuda() -> Result<Vec<Device>, String> {
        all_cuda()
    }

    /// GPU 0 when it is usable (the CUDA driver, NVRTC, cuBLAS and cuBLASLt load, the device
    /// opens and is Ampere or newer), else the CPU, with the reason. Probes the libraries before
    /// any CUDA call, so a machine without them gets the CPU, never a panic. Without the `cuda`
    /// feature: always the CPU.
    pub fn auto() -> DeviceChoice {
        probe()
    }
}

#[cfg(feature = "cuda")]
fn probe() -> DeviceChoice {
    match eai_model::cuda::open_device(0) {
        Ok(dev) => DeviceChoice {
            device: Device::Cuda(0),
            reason: format!("GPU 0 ({}) is usable", dev.info().name),
        },
        Err(e) => DeviceChoice {
            device: Device::Cpu,
            reason: format!("no usable GPU ({e}); running on the CPU"),
        },
    }
}

#[cfg(feature = "cuda")]
fn all_cuda() -> Result<Vec<Device>, String> {
    match eai_model::cuda::device_count() {
        Ok(0) => Err("the CUDA driver reports no GPU".into()),
        Ok(n) => Ok((0..n).map(Device::Cuda).collect()),
        Err(e) => Err(format!("no usable CUDA driver: {e}")),
    }
}

#[cfg(not(feature = "cuda"))]
fn all_cuda() -> Result<Vec<Device>, String> {
    Err("eai was built without the `cuda` feature".into())
}

#[cfg(not(feature = "cuda"))]
fn probe() -> DeviceChoice {
    DeviceChoice {
        device: Device::Cpu,
        reason: "eai was built without the `cuda` feature; running on the CPU".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_never_panics_and_names_its_reason() {
        // On a machine without CUDA libraries (CI) this is the CPU with the reason; on a GPU
        // machine GPU 0. Either way: no panic, a reason.
        let c = Device::auto();
        assert!(!c.reason.is_empty());
        match c.device {
            Device::Cpu => assert!(c.reason.contains("CPU"), "{}", c.reason),
            Device::Cuda(n) => assert_eq!(n, 0),
        }
        assert_eq!(Device::Cuda(1).to_string(), "cuda:1");
    }
}
