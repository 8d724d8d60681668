//! eai-power: GPU and CPU energy you can trust, embeddable in one line.
//!
//! **Design decision: record, then compute.** Background threads sample every signal of every
//! [`PowerSource`] into a bounded, monotonic-time [`Timeline`]; a window's `begin`/`end` only
//! takes a timestamp. Each window's energy is computed afterwards from the timeline by every
//! method at once — the energy counter interpolated at the edges with the instant-power stream
//! (primary), the integrated instant power, a Zeus-style two-read counter delta, and the paper's
//! 1 Hz `P·Δt` — with their disagreement and quality [`Flag`]s. Nothing degraded is silent:
//! missing data is `None` plus a flag, never 0.
//!
//! Sources: NVML GPUs (feature `nvml`, library loaded at run time), Linux RAPL through powercap
//! sysfs, replayed traces and a constant source (both labelled in every result).
//!
//! ```
//! use std::time::Duration;
//! use eai_core::Watts;
//! use eai_power::{ConstantSource, Meter, MeterConfig, Provenance};
//!
//! let meter = Meter::start(vec![Box::new(ConstantSource::new(Watts(300.0)))], MeterConfig::new())?;
//! let (sum, m) = meter.measure("add", || (0..1000u64).sum::<u64>())?;
//! assert_eq!(sum, 499_500);
//! let gpu = &m.devices[0];
//! assert_eq!(gpu.provenance, Provenance::Constant); // never passes for a measurement
//! assert!(gpu.has(&eai_power::Flag::TooShort));
//! let session = meter.stop()?;
//! assert_eq!(session.windows.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use crate::{
    command::{
        CommandControl, CommandOptions, CommandReport, Discovered, discover, measure_command,
        measure_command_with,
    },
    constant::ConstantSource,
    descendants::{ProcessInfo, descendants},
    devices::{
        CudaDeviceSpec, CudaMapping, GpuIdentity, map_cuda_devices, parse_cuda_visible_devices,
    },
    error::{Error, Result},
    faults::{Fault, FaultySource},
    gpu_info::GpuEnvironment,
    measurement::{
        AnalysisConfig, Baseline, BaselineDevice, DeviceEnergy, Flag, MAX_BASELINE_BINS,
        Measurement, Method,
    },
    meter::{Meter, MeterConfig, Session, WindowId},
    rapl::{
        DEFAULT_POWERCAP_ROOT, RAPL_PERMISSION_FIX, RaplDiscovery, RaplSource, classify_io_error,
        discover_rapl,
    },
    replay::ReplaySource,
    sampler::{ChannelStats, SamplerConfig},
    scraped::{SCRAPE_INTERVAL_META, scrape_bound},
    source::{
        DeviceStatus, Domain, MAX_PLAUSIBLE_COUNTER, MAX_PLAUSIBLE_POWER, PowerSource, Provenance,
        Reading, Signal, SignalSpec, SourceError, SourceInfo, implausible,
    },
    timeline::{Channel, Event, EventKind, MAX_TRACE_NS, Sample, StatusSample, Timeline},
};

/// NVIDIA GPUs through NVML (feature `nvml`).
#[cfg(feature = "nvml")]
#[cfg_attr(docsrs, doc(cfg(feature = "nvml")))]
pub mod nvml;

pub mod integrate;

#[cfg(feature = "nvml")]
#[cfg_attr(docsrs, doc(cfg(feature = "nvml")))]
pub use crate::gpu_info::gpu_environment;

mod command;
mod constant;
mod descendants;
mod devices;
mod error;
mod faults;
mod gpu_info;
mod measurement;
mod meter;
mod rapl;
mod replay;
mod sampler;
mod scraped;
mod source;
mod timeline;
