//! NVIDIA GPUs through NVML (`nvml-wrapper`, library loaded at run time).
//!
//! Each signal is used for what it is good for: the instant field
//! (`NVML_FI_DEV_POWER_INSTANT`, < 1 µs per read) at 100 Hz for shape and short windows; the
//! cumulative energy counter (mJ, Volta+, ~4 ms per read on Hopper) on its own thread for
//! long-window accuracy; the 1-s averaged `power_usage` at 10 Hz as a reference and for the
//! paper's 1 Hz method. GPUs are identified by UUID; all GPUs are discovered unless a selection
//! is given.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use eai_core::{Joules, Watts};
use nvml_wrapper::Nvml;
use nvml_wrapper::bitmasks::InitFlags;
use nvml_wrapper::bitmasks::device::ThrottleReasons;
use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
use nvml_wrapper::enums::device::SampleValue;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::structs::device::FieldId;

use crate::devices::{GpuIdentity, map_cuda_devices, parse_cuda_visible_devices};
use crate::error::{Error, Result};
use crate::source::{
    DeviceStatus, Domain, PowerSource, Provenance, Reading, Signal, SignalSpec, SourceError,
    SourceInfo,
};

/// `NVML_FI_DEV_POWER_INSTANT` (not in the renumbered 251–273 range).
const FI_POWER_INSTANT: u32 = 186;
/// `NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION` (mJ; same counter as the API call).
const FI_TOTAL_ENERGY: u32 = 83;

/// Which GPUs to measure.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum GpuSelection {
    /// Every GPU of the machine (default).
    #[default]
    All,
    /// Those named by `CUDA_VISIBLE_DEVICES` (indices, UUIDs or MIG ids), mapped by UUID.
    CudaVisible,
    /// These UUIDs (or unique prefixes).
    Uuids(Vec<String>),
}

/// NVML discovery options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NvmlOptions {
    /// Load this library instead of the default `libnvidia-ml.so.1` (also `EAI_NVML_LIB`).
    pub lib_path: Option<PathBuf>,
    /// Which GPUs.
    pub selection: GpuSelection,
}

impl NvmlOptions {
    /// Default options (all GPUs, default library).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the library path.
    pub fn lib_path(mut self, p: impl Into<PathBuf>) -> Self {
        self.lib_path = Some(p.into());
        self
    }

    /// Sets the selection.
    pub fn selection(mut self, s: GpuSelection) -> Self {
        self.selection = s;
        self
    }
}

/// What [`discover_nvml`] found.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct NvmlDiscovery {
    /// One source per selected GPU.
    pub gpus: Vec<NvmlSource>,
    /// Mapping warnings (ambiguous indices, MIG, missing entries).
    pub warnings: Vec<String>,
    /// Driver version.
    pub driver: Option<String>,
}

/// One GPU as a [`PowerSource`].
#[derive(Debug)]
pub struct NvmlSource {
    nvml: Arc<Nvml>,
    index: u32,
    info: SourceInfo,
    /// Read the counter through field 83 (when cheaper than the ~4 ms API call and equal).
    counter_field: bool,
}

fn unavailable(reason: String, hint: Option<&str>) -> Error {
    Error::Unavailable { backend: "nvml", reason, hint: hint.map(str::to_string) }
}

pub(crate) fn init(opts: &NvmlOptions) -> Result<Nvml> {
    let env = std::env::var_os("EAI_NVML_LIB").map(PathBuf::from);
    let explicit = opts.lib_path.clone().or(env);
    let try_path =
        |p: &std::ffi::OsStr| Nvml::builder().lib_path(p).flags(InitFlags::NO_GPUS).init();
    let r = match &explicit {
        Some(p) => try_path(p.as_os_str()),
        None => match Nvml::builder().flags(InitFlags::NO_GPUS).init() {
            Err(NvmlError::LibloadingError(_)) => try_path(std::ffi::OsStr::new("libnvidia-ml.so")),
            other => other,
        },
    };
    r.map_err(|e| {
        let lib = explicit.as_ref().map_or("libnvidia-ml.so.1".to_string(), |p| p.display().to_string());
        match e {
            NvmlError::LibloadingError(le) => unavailable(
                format!("cannot load {lib}: {le}"),
                Some("install the NVIDIA driver, or set EAI_NVML_LIB to the path of libnvidia-ml.so.1 (not the CUDA toolkit's stub)"),
            ),
            NvmlError::DriverNotLoaded => unavailable("the NVIDIA driver is not loaded".into(), Some("load the kernel module (nvidia-smi should work)")),
            NvmlError::LibRmVersionMismatch => unavailable(
                "NVML library and kernel driver versions differ".into(),
                Some("the driver was upgraded without a reboot: reboot or reload the nvidia module"),
            ),
            NvmlError::NoPermission => unavailable("no permission to initialise NVML".into(), Some("check /dev/nvidia* permissions")),
            NvmlError::FailedToLoadSymbol(s) => unavailable(format!("{lib} lacks symbol {s} (stub library or very old driver)"), Some("point EAI_NVML_LIB at the driver's libnvidia-ml.so.1")),
            other => unavailable(format!("NVML init failed: {other}"), None),
        }
    })
}

/// Maps an NVML error to a [`SourceError`].
pub fn classify_nvml_error(e: &NvmlError) -> SourceError {
    match e {
        NvmlError::NotSupported
        | NvmlError::FailedToLoadSymbol(_)
        | NvmlError::FunctionNotFound => SourceError::NotSupported(e.to_string()),
        NvmlError::NoPermission => SourceError::Permission {
            fix: "run as a user with access to /dev/nvidia* (no root is needed for power reads)"
                .into(),
        },
        NvmlError::GpuLost | NvmlError::ResetRequired | NvmlError::NotFound => {
            SourceError::DeviceLost(e.to_string())
        }
        _ => SourceError::Transient(e.to_string()),
    }
}

/// Discovers GPUs through NVML. A machine without GPUs gives an empty list, not an error.
///
/// # Errors
///
/// [`Error::Unavailable`] with the reason and a hint when NVML cannot be loaded or initialised
/// (library missing, stub library, driver not loaded, version mismatch). Never panics.
pub fn discover_nvml(opts: &NvmlOptions) -> Result<NvmlDiscovery> {
    let nvml = Arc::new(init(opts)?);
    let n = nvml.device_count().map_err(|e| unavailable(format!("device count: {e}"), None))?;
    let driver = nvml.sys_driver_version().ok();
    let mut ids = Vec::new();
    let mut warnings = Vec::new();
    for i in 0..n {
        match nvml.device_by_index(i) {
            Ok(d) => {
                let uuid = d.uuid().unwrap_or_else(|_| format!("index-{i}"));
                let pci = d.pci_info().map(|p| p.bus_id).unwrap_or_default();
                let name = d.name().unwrap_or_else(|_| "NVIDIA GPU".into());
                ids.push(GpuIdentity::new(i, uuid, pci, name));
            }
            Err(e) => warnings.push(format!("GPU {i} skipped: {e}")),
        }
    }
    let order = std::env::var("CUDA_DEVICE_ORDER").ok();
    let cvd = std::env::var("CUDA_VISIBLE_DEVICES").ok();
    let (maps, w) = match &cvd {
        Some(s) => map_cuda_devices(&parse_cuda_visible_devices(s), &ids, order.as_deref()),
        None => {
            let all: Vec<_> =
                (0..ids.len()).map(|g| crate::devices::CudaDeviceSpec::Index(g as u32)).collect();
            map_cuda_devices(&all, &ids, Some("PCI_BUS_ID"))
        }
    };
    warnings.extend(w);
    let selected: Vec<usize> = match &opts.selection {
        GpuSelection::All => (0..ids.len()).collect(),
        GpuSelection::CudaVisible => maps.iter().map(|m| m.gpu).collect(),
        GpuSelection::Uuids(u) => (0..ids.len())
            .filter(|&g| u.iter().any(|x| ids[g].uuid.starts_with(x.as_str())))
            .collect(),
    };
    let mut gpus = Vec::new();
    for g in selected {
        let id = &ids[g];
        let mut src = NvmlSource::probe(Arc::clone(&nvml), id)?;
        if let Some(m) = maps.iter().find(|m| m.gpu == g) {
            src.info.meta.push(("cuda_ordinal".into(), m.ordinal.to_string()));
            if m.mig {
                src.info.meta.push((
                    "mig".into(),
                    "true: whole-GPU energy, shared with other instances".into(),
                ));
            }
        }
        if let Some(d) = &driver {
            src.info.meta.push(("driver".into(), d.clone()));
        }
        gpus.push(src);
    }
    Ok(NvmlDiscovery { gpus, warnings, driver })
}

fn mw(v: &SampleValue) -> f64 {
    match *v {
        SampleValue::F64(x) => x,
        SampleValue::U32(x) => f64::from(x),
        SampleValue::U64(x) => x as f64,
        SampleValue::I64(x) => x as f64,
    }
}

impl NvmlSource {
    fn probe(nvml: Arc<Nvml>, id: &GpuIdentity) -> Result<Self> {
        let d = nvml
            .device_by_index(id.nvml_index)
            .map_err(|e| unavailable(format!("GPU {}: {e}", id.uuid), None))?;
        let arch = d.architecture().map(|a| a.to_string()).unwrap_or_else(|_| "unknown".into());
        let limit = d.enforced_power_limit().ok().map(Watts::from_milliwatts);
        let bound = limit.map_or(Watts(3000.0), |l| Watts(l.0 * 2.0));
        let mut info = SourceInfo::new(
            format!("nvml/{}", id.uuid),
            id.name.clone(),
            Domain::Gpu,
            Provenance::Measured,
        )
        .with_meta("uuid", id.uuid.clone())
        .with_meta("pci_bus_id", id.pci_bus_id.clone())
        .with_meta("nvml_index", id.nvml_index.to_string())
        .with_meta("architecture", arch.clone());
        if let Some(l) = limit {
            info.meta.push(("enforced_power_limit_w".into(), format!("{:.1}", l.0)));
        }
        let hundred_ms = Duration::from_millis(100);
        let mut me = Self {
            nvml: Arc::clone(&nvml),
            index: id.nvml_index,
            info: info.clone(),
            counter_field: false,
        };
        // Probe each signal once; record what is unsupported and why (fallback order:
        // counter -> instant -> average).
        match me.read(Signal::InstantPower) {
            Ok(_) => {
                let mut s = SignalSpec::new(Signal::InstantPower)
                    .max_power(bound)
                    .zero_is_invalid(true)
                    .update_period(hundred_ms);
                if matches!(arch.as_str(), "Hopper" | "Ampere" | "Blackwell") {
                    s = s.averaging_window(Duration::from_millis(25));
                }
                info.signals.push(s);
            }
            Err(e) => info.unsupported.push((Signal::InstantPower, e.to_string())),
        }
        match me.read(Signal::AveragePower) {
            Ok(_) => {
                let mut s =
                    SignalSpec::new(Signal::AveragePower).max_power(bound).zero_is_invalid(true);
                // Ampere (except GA100) and newer: a 1-s average.
                if arch != "Volta"
                    && arch != "Turing"
                    && arch != "Pascal"
                    && !id.name.contains("A100")
                {
                    s = s.averaging_window(Duration::from_secs(1)).update_period(hundred_ms);
                }
                info.signals.push(s);
            }
            Err(e) => info.unsupported.push((Signal::AveragePower, e.to_string())),
        }
        match me.read(Signal::EnergyCounter) {
            Ok(Reading::Energy(api)) => {
                info.signals.push(SignalSpec::new(Signal::EnergyCounter).update_period(hundred_ms));
                // The API call costs ~4 ms of CPU on Hopper (a GSP RPC); the field read of the
                // same counter may be cheaper. Use it only if it returns the same counter.
                let cost = |m: &Self, n: u32| {
                    let t = std::time::Instant::now();
                    for _ in 0..n {
                        let _ = m.read(Signal::EnergyCounter);
                    }
                    t.elapsed() / n
                };
                let api_cost = cost(&me, 3);
                me.counter_field = true;
                let same = matches!(me.read(Signal::EnergyCounter), Ok(Reading::Energy(f)) if (f.0 - api.0).abs() < 1000.0 && f.0 > 0.0);
                let field_cost = if same { cost(&me, 3) } else { Duration::MAX };
                me.counter_field = same && field_cost * 4 < api_cost;
                info.meta.push((
                    "counter_read".into(),
                    format!(
                        "{} (API {api_cost:?}, field 83 {})",
                        if me.counter_field {
                            "field 83"
                        } else {
                            "nvmlDeviceGetTotalEnergyConsumption"
                        },
                        if same { format!("{field_cost:?}") } else { "unusable".into() }
                    ),
                ));
            }
            Ok(_) => {}
            Err(e) => info.unsupported.push((Signal::EnergyCounter, e.to_string())),
        }
        me.info = info;
        Ok(me)
    }

    fn device(&self) -> Result<nvml_wrapper::Device<'_>, SourceError> {
        self.nvml.device_by_index(self.index).map_err(|e| classify_nvml_error(&e))
    }
}

impl PowerSource for NvmlSource {
    fn info(&self) -> SourceInfo {
        self.info.clone()
    }

    fn read(&self, signal: Signal) -> Result<Reading, SourceError> {
        let d = self.device()?;
        match signal {
            Signal::InstantPower => {
                let v = d
                    .field_values_for(&[FieldId(FI_POWER_INSTANT)])
                    .map_err(|e| classify_nvml_error(&e))?;
                let first = v
                    .into_iter()
                    .next()
                    .ok_or_else(|| SourceError::Transient("no field value returned".into()))?;
                let sample = first.map_err(|e| classify_nvml_error(&e))?;
                let val = sample.value.map_err(|e| classify_nvml_error(&e))?;
                Ok(Reading::Power(Watts(mw(&val) / 1e3)))
            }
            Signal::AveragePower => {
                let p = d.power_usage().map_err(|e| classify_nvml_error(&e))?;
                Ok(Reading::Power(Watts::from_milliwatts(p)))
            }
            Signal::EnergyCounter if self.counter_field => {
                let v = d
                    .field_values_for(&[FieldId(FI_TOTAL_ENERGY)])
                    .map_err(|e| classify_nvml_error(&e))?;
                let first = v
                    .into_iter()
                    .next()
                    .ok_or_else(|| SourceError::Transient("no field value returned".into()))?;
                let val = first
                    .map_err(|e| classify_nvml_error(&e))?
                    .value
                    .map_err(|e| classify_nvml_error(&e))?;
                Ok(Reading::Energy(Joules(mw(&val) / 1e3)))
            }
            Signal::EnergyCounter => {
                let e = d.total_energy_consumption().map_err(|e| classify_nvml_error(&e))?;
                Ok(Reading::Energy(Joules::from_millijoules(e)))
            }
        }
    }

    fn status(&self) -> Result<Option<DeviceStatus>, SourceError> {
        let d = self.device()?;
        let mut st = DeviceStatus::default();
        if let Ok(r) = d.current_throttle_reasons() {
            let limiting = ThrottleReasons::SW_POWER_CAP
                | ThrottleReasons::HW_SLOWDOWN
                | ThrottleReasons::SW_THERMAL_SLOWDOWN
                | ThrottleReasons::HW_THERMAL_SLOWDOWN
                | ThrottleReasons::HW_POWER_BRAKE_SLOWDOWN;
            st.throttled = r.intersects(limiting);
            st.reasons = r.iter_names().map(|(n, _)| n.to_string()).collect();
        }
        match d.running_compute_processes() {
            Ok(p) => st.processes = Some(p.iter().map(|p| p.pid).collect()),
            Err(NvmlError::GpuLost) => return Err(SourceError::DeviceLost("GPU lost".into())),
            Err(_) => {}
        }
        st.temperature_c = d.temperature(TemperatureSensor::Gpu).ok().map(f64::from);
        Ok(Some(st))
    }
}
