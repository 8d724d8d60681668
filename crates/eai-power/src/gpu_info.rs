//! What a GPU is and how it is set up (name, driver, CUDA version the driver supports, power
//! limits, clocks, memory), for the environment block of a report. Plain data; the NVML query
//! ([`gpu_environment`], feature `nvml`) never panics and reports fields it cannot read as
//! `None`.

use serde::{Deserialize, Serialize};

/// One GPU's identity and settings at the time of the query. Every field NVML did not answer is
/// `None` ("unknown", never a guess).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GpuEnvironment {
    /// NVML index.
    pub nvml_index: u32,
    /// Marketing name, e.g. `NVIDIA H100 80GB HBM3`.
    pub name: String,
    /// UUID.
    pub uuid: Option<String>,
    /// PCI bus id.
    pub pci_bus_id: Option<String>,
    /// Driver version, e.g. `580.95.05`.
    pub driver: Option<String>,
    /// NVML library version.
    pub nvml_version: Option<String>,
    /// Highest CUDA version the driver supports, e.g. `13.0`.
    pub cuda_driver_version: Option<String>,
    /// Compute capability, e.g. `9.0`.
    pub compute_capability: Option<String>,
    /// Total memory, bytes.
    pub memory_total_bytes: Option<u64>,
    /// Power limit the driver enforces now, watts.
    pub power_limit_w: Option<f64>,
    /// The board's default power limit, watts.
    pub default_power_limit_w: Option<f64>,
    /// SM clock now, MHz.
    pub sm_clock_mhz: Option<u32>,
    /// Highest SM clock, MHz.
    pub max_sm_clock_mhz: Option<u32>,
    /// Memory clock now, MHz.
    pub memory_clock_mhz: Option<u32>,
    /// Highest memory clock, MHz.
    pub max_memory_clock_mhz: Option<u32>,
    /// Application (target) SM clock, MHz, when set.
    pub applications_sm_clock_mhz: Option<u32>,
    /// Performance state now (`P0` fastest).
    pub performance_state: Option<String>,
}

/// Every GPU NVML sees (all of them, whatever `CUDA_VISIBLE_DEVICES` says: the caller picks),
/// with its settings now.
///
/// # Errors
/// [`Error::Unavailable`](crate::Error::Unavailable) when NVML cannot be loaded or initialised
/// (the same reasons and hints as [`discover_nvml`](crate::nvml::discover_nvml)).
#[cfg(feature = "nvml")]
pub fn gpu_environment(opts: &crate::nvml::NvmlOptions) -> crate::Result<Vec<GpuEnvironment>> {
    use nvml_wrapper::enum_wrappers::device::Clock;

    let nvml = crate::nvml::init(opts)?;
    let n = nvml.device_count().map_err(|e| crate::Error::Unavailable {
        backend: "nvml",
        reason: format!("device count: {e}"),
        hint: None,
    })?;
    let driver = nvml.sys_driver_version().ok();
    let nvml_version = nvml.sys_nvml_version().ok();
    let cuda =
        nvml.sys_cuda_driver_version().ok().map(|v| format!("{}.{}", v / 1000, v % 1000 / 10));
    let watts = |mw: u32| f64::from(mw) / 1000.0;
    let mut out = Vec::new();
    for i in 0..n {
        let Ok(d) = nvml.device_by_index(i) else { continue };
        out.push(GpuEnvironment {
            nvml_index: i,
            name: d.name().unwrap_or_else(|_| "NVIDIA GPU".into()),
            uuid: d.uuid().ok(),
            pci_bus_id: d.pci_info().ok().map(|p| p.bus_id),
            driver: driver.clone(),
            nvml_version: nvml_version.clone(),
            cuda_driver_version: cuda.clone(),
            compute_capability: d
                .cuda_compute_capability()
                .ok()
                .map(|c| format!("{}.{}", c.major, c.minor)),
            memory_total_bytes: d.memory_info().ok().map(|m| m.total),
            power_limit_w: d.enforced_power_limit().ok().map(watts),
            default_power_limit_w: d.power_management_limit_default().ok().map(watts),
            sm_clock_mhz: d.clock_info(Clock::SM).ok(),
            max_sm_clock_mhz: d.max_clock_info(Clock::SM).ok(),
            memory_clock_mhz: d.clock_info(Clock::Memory).ok(),
            max_memory_clock_mhz: d.max_clock_info(Clock::Memory).ok(),
            applications_sm_clock_mhz: d.applications_clock(Clock::SM).ok(),
            performance_state: d.performance_state().ok().map(|p| format!("{p:?}")),
        });
    }
    Ok(out)
}
