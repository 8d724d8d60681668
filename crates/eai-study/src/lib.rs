//! eai-study: the co-evaluation pipeline that the paper describes — quantize, evaluate,
//! measure, compute EOR/TWEOR, advise — as one [`Study`], and a [`Metered`] wrapper that
//! attributes energy to each call of any [`LanguageModel`](eai_core::LanguageModel).
//!
//! **Design decision.** The study owns no measurement logic of its own: energy windows come
//! from `eai-power`'s [`Meter`](eai_power::Meter), scores from `eai-eval`'s evaluator,
//! every figure from `eai-metrics`. The study only orders the steps, records each task window
//! as plain data ([`TaskRecord`], `eai_metrics::Run`) and writes them out. Where no power
//! sensor exists there are no energy figures unless a labelled estimate is asked for.
//!
//! Features: `model` (eai-model's engine: `GgufLoader`, `Device`), `cuda`, `nvml` and
//! `serve` (OpenAI-compatible servers as schemes) are on by default; `quant` adds
//! `Error::Quant` for programs that write checkpoints, `progress` eai-eval's progress bar.
//! The `eai` crate re-exports all of this at its root.
//!
//! A study end to end is on [`Study`]; [`Metered`] and [`loader_fn`] show the seams alone.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "model")]
pub use crate::{
    device::{Device, DeviceChoice},
    study::GgufLoader,
};
pub use crate::{
    environment::{Environment, GpuEnvironment, HardwareChoice, match_hardware_profile},
    error::{Error, Result},
    estimate::{TDP_ESTIMATE_ID, TdpEstimate},
    metered::{CallEnergy, CallKind, Metered},
    report::{Advice, ScoreRow, StudyReport, TaskCell, advise, files},
    scheme::Scheme,
    study::{
        Accounting, DeviceShare, EnergyInfo, EnergyKind, FnLoader, ModelInfoRecord, ModelLoader,
        PowerSetup, SampleSet, SchemeRecord, Study, StudyResults, StudySettings, StudyTask,
        TaskRecord, TaskSetting, TimeBreakdown, loader_fn,
    },
};

mod breakdown;
#[cfg(feature = "model")]
mod device;
/// Several devices: per-source energy of each task and scaling over device sets.
pub mod devices;
mod environment;
mod error;
mod estimate;
mod metered;
/// Output paths: checked first, never an input, written atomically (temp + rename).
pub mod outputs;
pub mod plots;
mod report;
mod scheme;
/// Served models: OpenAI-compatible endpoints as study schemes, energy per response under load.
#[cfg(feature = "serve")]
pub mod serve;
mod study;
