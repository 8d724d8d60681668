//! GPU identity and `CUDA_VISIBLE_DEVICES` mapping (pure; no driver needed).
//!
//! CUDA and NVML number GPUs differently (CUDA: fastest first unless
//! `CUDA_DEVICE_ORDER=PCI_BUS_ID`; NVML: PCI bus order), which is how other tools end up
//! measuring the wrong GPU. eai-power identifies every GPU by UUID and maps CUDA ordinals to
//! UUIDs explicitly.

use serde::{Deserialize, Serialize};

/// One entry of `CUDA_VISIBLE_DEVICES`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum CudaDeviceSpec {
    /// A device index (`0`, `3`).
    Index(u32),
    /// A GPU UUID or a unique prefix of it (`GPU-8b0c…`).
    Uuid(String),
    /// A MIG instance (`MIG-…`).
    Mig(String),
}

/// Parses `CUDA_VISIBLE_DEVICES` with CUDA's rules: comma-separated; parsing stops at the first
/// invalid entry (later entries are ignored by CUDA too); an empty value hides every GPU.
pub fn parse_cuda_visible_devices(s: &str) -> Vec<CudaDeviceSpec> {
    let mut out = Vec::new();
    for raw in s.split(',') {
        let e = raw.trim();
        if e.is_empty() {
            break;
        }
        if let Ok(i) = e.parse::<u32>() {
            out.push(CudaDeviceSpec::Index(i));
        } else if e.starts_with("GPU-") {
            out.push(CudaDeviceSpec::Uuid(e.to_string()));
        } else if e.starts_with("MIG-") {
            out.push(CudaDeviceSpec::Mig(e.to_string()));
        } else {
            break;
        }
    }
    out
}

/// What identifies a physical GPU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GpuIdentity {
    /// NVML index (enumeration order; not stable across reboots).
    pub nvml_index: u32,
    /// UUID (`GPU-…`), the stable identity.
    pub uuid: String,
    /// PCI bus id.
    pub pci_bus_id: String,
    /// Model name.
    pub name: String,
}

impl GpuIdentity {
    /// A GPU identity.
    pub fn new(
        nvml_index: u32,
        uuid: impl Into<String>,
        pci_bus_id: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        Self { nvml_index, uuid: uuid.into(), pci_bus_id: pci_bus_id.into(), name: name.into() }
    }
}

/// A CUDA ordinal resolved to a physical GPU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CudaMapping {
    /// The CUDA ordinal the process sees.
    pub ordinal: u32,
    /// Index into the `gpus` slice given to [`map_cuda_devices`].
    pub gpu: usize,
    /// The entry was a MIG instance: the whole parent GPU's energy is reported (shared).
    pub mig: bool,
}

/// Maps parsed `CUDA_VISIBLE_DEVICES` entries to GPUs. Indices are taken in PCI bus order
/// (CUDA's `PCI_BUS_ID` order); when `device_order` is not `PCI_BUS_ID` and the GPUs are not
/// all the same model, a warning says the mapping is ambiguous. UUID entries match a unique
/// prefix. MIG entries resolve to their parent only when there is exactly one GPU. Returns the
/// mappings and warnings.
pub fn map_cuda_devices(
    specs: &[CudaDeviceSpec],
    gpus: &[GpuIdentity],
    device_order: Option<&str>,
) -> (Vec<CudaMapping>, Vec<String>) {
    let mut by_pci: Vec<usize> = (0..gpus.len()).collect();
    by_pci.sort_by(|&a, &b| {
        gpus[a].pci_bus_id.to_lowercase().cmp(&gpus[b].pci_bus_id.to_lowercase())
    });
    let mut out: Vec<CudaMapping> = Vec::new();
    let mut warnings = Vec::new();
    let heterogeneous = gpus.windows(2).any(|w| w[0].name != w[1].name);
    for spec in specs {
        let ordinal = out.len() as u32;
        let (gpu, mig) = match spec {
            CudaDeviceSpec::Index(i) => {
                if device_order != Some("PCI_BUS_ID") && heterogeneous {
                    warnings.push(format!(
                        "CUDA_VISIBLE_DEVICES index {i} with CUDA_DEVICE_ORDER not PCI_BUS_ID on mixed GPUs: \
                         CUDA orders fastest first, so the mapping by PCI bus order may be wrong; \
                         set CUDA_DEVICE_ORDER=PCI_BUS_ID or use UUIDs"
                    ));
                }
                match by_pci.get(*i as usize) {
                    Some(&g) => (g, false),
                    None => {
                        warnings.push(format!("CUDA_VISIBLE_DEVICES index {i} does not exist ({} GPUs); CUDA ignores it and the rest", gpus.len()));
                        break;
                    }
                }
            }
            CudaDeviceSpec::Uuid(u) => {
                let m: Vec<usize> =
                    (0..gpus.len()).filter(|&g| gpus[g].uuid.starts_with(u.as_str())).collect();
                match m.as_slice() {
                    [g] => (*g, false),
                    [] => {
                        warnings.push(format!("CUDA_VISIBLE_DEVICES entry {u} matches no GPU"));
                        break;
                    }
                    _ => {
                        warnings.push(format!(
                            "CUDA_VISIBLE_DEVICES entry {u} is an ambiguous UUID prefix"
                        ));
                        break;
                    }
                }
            }
            CudaDeviceSpec::Mig(m) => {
                if gpus.len() == 1 {
                    warnings.push(format!(
                        "{m} is a MIG instance: reporting the whole GPU's energy, flagged shared"
                    ));
                    (0, true)
                } else {
                    warnings.push(format!("{m} is a MIG instance whose parent GPU cannot be resolved among {} GPUs; pass the parent's UUID", gpus.len()));
                    continue;
                }
            }
        };
        if out.iter().any(|o| o.gpu == gpu && !mig) {
            warnings.push(format!("CUDA_VISIBLE_DEVICES names GPU {} twice", gpus[gpu].uuid));
            break;
        }
        out.push(CudaMapping { ordinal, gpu, mig });
    }
    (out, warnings)
}
