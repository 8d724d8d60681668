//! The [`PowerSource`] trait: one physical domain (a GPU board, a CPU package, DRAM) that can be
//! read for one or more [`Signal`]s.

use std::sync::Arc;
use std::time::Duration;

use eai_core::{Joules, Watts};
use serde::{Deserialize, Serialize};

/// A signal a source can be read for. Each has different physics; see [`SignalSpec`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Signal {
    /// Instantaneous (short-window) power in watts: NVML field `NVML_FI_DEV_POWER_INSTANT`.
    InstantPower,
    /// Power averaged over a longer window (NVML `power_usage`: a 1-s boxcar on Ampere+).
    AveragePower,
    /// A cumulative energy counter in joules (NVML mJ counter, RAPL `energy_uj`).
    EnergyCounter,
}

impl Signal {
    /// Short name used in traces (`instant`, `average`, `counter`).
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::InstantPower => "instant",
            Signal::AveragePower => "average",
            Signal::EnergyCounter => "counter",
        }
    }

    /// Inverse of [`Signal::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "instant" | "instant_power" => Some(Signal::InstantPower),
            "average" | "average_power" => Some(Signal::AveragePower),
            "counter" | "energy_counter" => Some(Signal::EnergyCounter),
            _ => None,
        }
    }
}

/// The physics of one signal, used by the sampler (rates) and by integration (delays,
/// wraparound, plausibility bounds).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SignalSpec {
    /// Which signal.
    pub signal: Signal,
    /// How often the underlying value is republished (Hopper: 100 ms; RAPL: ~1 ms).
    pub update_period: Option<Duration>,
    /// The averaging window of a power signal (Hopper instant: 25 ms; average: 1 s).
    pub averaging_window: Option<Duration>,
    /// For counters that wrap (RAPL): the range, from `max_energy_range_uj`.
    pub wrap_at: Option<Joules>,
    /// Readings above this power are rejected as absurd (e.g. 2x the board's power limit).
    pub max_power: Option<Watts>,
    /// A power reading of exactly zero is invalid for this sensor (NVML returns 0 when polled
    /// too fast; a powered GPU never draws 0 W).
    pub zero_is_invalid: bool,
}

impl SignalSpec {
    /// A spec with only the signal set.
    pub fn new(signal: Signal) -> Self {
        Self {
            signal,
            update_period: None,
            averaging_window: None,
            wrap_at: None,
            max_power: None,
            zero_is_invalid: false,
        }
    }

    /// Sets the republication period.
    pub fn update_period(mut self, d: Duration) -> Self {
        self.update_period = Some(d);
        self
    }

    /// Sets the averaging window.
    pub fn averaging_window(mut self, d: Duration) -> Self {
        self.averaging_window = Some(d);
        self
    }

    /// Sets the wraparound range of a counter.
    pub fn wrap_at(mut self, range: Joules) -> Self {
        self.wrap_at = Some(range);
        self
    }

    /// Sets the plausibility bound on power.
    pub fn max_power(mut self, p: Watts) -> Self {
        self.max_power = Some(p);
        self
    }

    /// Marks zero power readings as invalid.
    pub fn zero_is_invalid(mut self, yes: bool) -> Self {
        self.zero_is_invalid = yes;
        self
    }
}

/// Power above this is rejected from any source, whatever its own bound: no single device or
/// node this library meters draws 10 MW, and values like `1e308` W would integrate to `inf` J.
pub const MAX_PLAUSIBLE_POWER: Watts = Watts(1e7);

/// Counter values above this are rejected: NVML's millijoule counter spans at most
/// 2^64 mJ ≈ 1.8e16 J; RAPL far less.
pub const MAX_PLAUSIBLE_COUNTER: Joules = Joules(1e18);

/// Why a value of `signal` is physically implausible whatever the sensor (not finite, negative,
/// above [`MAX_PLAUSIBLE_POWER`] or [`MAX_PLAUSIBLE_COUNTER`]), or `None` when it is plausible.
pub fn implausible(signal: Signal, value: f64) -> Option<String> {
    let (bound, what) = match signal {
        Signal::EnergyCounter => (MAX_PLAUSIBLE_COUNTER.0, "counter"),
        _ => (MAX_PLAUSIBLE_POWER.0, "power"),
    };
    if !value.is_finite() {
        Some("not finite".into())
    } else if value < 0.0 {
        Some(format!("negative {what}"))
    } else if value > bound {
        Some(format!("{what} {value:e} is above the physical plausibility bound {bound:e}"))
    } else {
        None
    }
}

/// What a source physically measures.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
#[non_exhaustive]
pub enum Domain {
    /// A whole GPU board (NVML: "GPU and its associated circuitry (e.g. memory)").
    Gpu,
    /// A Grace-Hopper style module (GPU + CPU + memory); never labelled GPU-only.
    GpuModule,
    /// A CPU package (RAPL `package-N`).
    CpuPackage {
        /// Package number.
        package: u32,
    },
    /// The cores of a package (RAPL `core`).
    CpuCores {
        /// Package number.
        package: u32,
    },
    /// The uncore / integrated GPU of a package (RAPL `uncore`).
    Uncore {
        /// Package number.
        package: u32,
    },
    /// DRAM attached to a package (RAPL `dram`).
    Dram {
        /// Package number.
        package: u32,
    },
    /// Platform power (RAPL `psys`).
    Psys,
    /// Anything else (named).
    Other {
        /// A free-form name.
        name: String,
    },
}

/// Where the numbers come from. Replayed and constant sources are labelled in every result so
/// that they can never pass for a measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Provenance {
    /// A hardware sensor read now.
    Measured,
    /// A recorded trace played back.
    Replayed,
    /// A synthetic constant (tests and examples only).
    Constant,
    /// A synthetic signal from user code.
    Synthetic,
}

/// Identity and capabilities of a source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SourceInfo {
    /// Stable id, e.g. `nvml/GPU-8b0c…`, `rapl/package-0`, `constant/0`.
    pub id: String,
    /// Human-readable name (GPU model, RAPL zone name).
    pub name: String,
    /// What it measures.
    pub domain: Domain,
    /// Where the numbers come from.
    pub provenance: Provenance,
    /// The signals this source can be read for, with their physics.
    pub signals: Vec<SignalSpec>,
    /// Signals probed and found unsupported, with the reason (so results can state the fallback).
    pub unsupported: Vec<(Signal, String)>,
    /// Free-form metadata (UUID, PCI bus id, driver, CUDA ordinal, sysfs path, ...).
    pub meta: Vec<(String, String)>,
}

impl SourceInfo {
    /// A new description with no signals.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        domain: Domain,
        provenance: Provenance,
    ) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            domain,
            provenance,
            signals: Vec::new(),
            unsupported: Vec::new(),
            meta: Vec::new(),
        }
    }

    /// Adds a signal.
    pub fn with_signal(mut self, spec: SignalSpec) -> Self {
        self.signals.push(spec);
        self
    }

    /// Adds a metadata entry.
    pub fn with_meta(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.meta.push((key.into(), value.into()));
        self
    }

    /// The spec of `signal`, if supported.
    pub fn spec(&self, signal: Signal) -> Option<&SignalSpec> {
        self.signals.iter().find(|s| s.signal == signal)
    }

    /// A metadata value.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.meta.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// One reading.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Reading {
    /// A power value.
    Power(Watts),
    /// A cumulative counter value (raw, not unwrapped).
    Energy(Joules),
}

/// Slow-changing device state, read about once a second.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeviceStatus {
    /// The clocks were held back by a power or thermal limit.
    pub throttled: bool,
    /// Names of the active throttle reasons.
    pub reasons: Vec<String>,
    /// Process ids with a compute context on the device, when the driver reports them.
    pub processes: Option<Vec<u32>>,
    /// Temperature in °C.
    pub temperature_c: Option<f64>,
}

/// Why a read failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The signal is not supported (old GPU, old driver symbol, vGPU): fall back.
    #[error("not supported: {0}")]
    NotSupported(String),
    /// Reading was refused; `fix` names the remedy.
    #[error("permission denied ({fix})")]
    Permission {
        /// How to fix it.
        fix: String,
    },
    /// The device is gone (GPU fell off the bus, reset required). No further reads.
    #[error("device lost: {0}")]
    DeviceLost(String),
    /// A replayed trace has no more data.
    #[error("trace exhausted")]
    Exhausted,
    /// A transient failure (timeout, busy); the sampler retries with backoff.
    #[error("transient: {0}")]
    Transient(String),
}

/// A source of power and/or energy readings for one domain.
///
/// Two methods are required. Reads take `&self` so that the sampler can read the slow energy
/// counter (about 4 ms per NVML call) on its own thread without blocking the instant-power
/// stream. Implementations that need mutable state use interior mutability.
///
/// ```
/// use eai_core::Watts;
/// use eai_power::{Domain, PowerSource, Provenance, Reading, Signal, SignalSpec, SourceError, SourceInfo};
///
/// /// A wall meter that always reads 42 W.
/// struct Wall;
/// impl PowerSource for Wall {
///     fn info(&self) -> SourceInfo {
///         SourceInfo::new("wall/0", "wall meter", Domain::Psys, Provenance::Synthetic)
///             .with_signal(SignalSpec::new(Signal::InstantPower))
///     }
///     fn read(&self, signal: Signal) -> Result<Reading, SourceError> {
///         match signal {
///             Signal::InstantPower => Ok(Reading::Power(Watts(42.0))),
///             other => Err(SourceError::NotSupported(format!("{other:?}"))),
///         }
///     }
/// }
/// assert_eq!(Wall.read(Signal::InstantPower), Ok(Reading::Power(Watts(42.0))));
/// assert!(Wall.status().unwrap().is_none());
/// ```
pub trait PowerSource: Send + Sync {
    /// Identity and signals. Called once when sampling starts.
    fn info(&self) -> SourceInfo;

    /// Reads one signal now. Called from sampler threads only, never from `end()`.
    ///
    /// # Errors
    ///
    /// [`SourceError`] names the failure; `NotSupported` triggers a fallback, `DeviceLost` stops
    /// the source, `Transient` is retried.
    fn read(&self, signal: Signal) -> Result<Reading, SourceError>;

    /// Throttling, processes and temperature, if the source knows them (default: unknown).
    ///
    /// # Errors
    ///
    /// As [`PowerSource::read`].
    fn status(&self) -> Result<Option<DeviceStatus>, SourceError> {
        Ok(None)
    }
}

impl<S: PowerSource + ?Sized> PowerSource for Box<S> {
    fn info(&self) -> SourceInfo {
        (**self).info()
    }
    fn read(&self, signal: Signal) -> Result<Reading, SourceError> {
        (**self).read(signal)
    }
    fn status(&self) -> Result<Option<DeviceStatus>, SourceError> {
        (**self).status()
    }
}

impl<S: PowerSource + ?Sized> PowerSource for Arc<S> {
    fn info(&self) -> SourceInfo {
        (**self).info()
    }
    fn read(&self, signal: Signal) -> Result<Reading, SourceError> {
        (**self).read(signal)
    }
    fn status(&self) -> Result<Option<DeviceStatus>, SourceError> {
        (**self).status()
    }
}
