//! eai: energy-aware LLM deployment.
//!
//! A thin facade over the workspace's layers, each behind a feature of the same name (all on by
//! default), plus the one piece of cross-layer glue: the co-evaluation pipeline ([`Study`],
//! feature `study`) that the paper describes — quantize, evaluate, measure, compute EOR/TWEOR,
//! advise — and a [`Metered`] wrapper that attributes energy to each call of any
//! [`LanguageModel`](crate::core::LanguageModel).
//!
//! | module | crate | what it does |
//! |---|---|---|
//! | [`core`] | `eai-core` | unit newtypes and the `LanguageModel` trait |
//! | `quant` | `eai-quant` | INT8/FP16/BF16/dynamic quantization, CPU and CUDA |
//! | `power` | `eai-power` | GPU/CPU power sampling and energy windows |
//! | `metrics` | `eai-metrics` | EOR, TWEOR, statistics, Pareto front, advice |
//! | `eval` | `eai-eval` | MMLU, ARC, HellaSwag, TruthfulQA, GSM8K |
//! | `model` | `eai-model` | a Llama-family runtime implementing `LanguageModel` |
//!
//! **Design decision.** The study owns no measurement logic of its own: energy windows come
//! from `eai-power`'s [`Meter`](crate::power::Meter), scores from `eai-eval`'s evaluator,
//! every figure from `eai-metrics`. The study only orders the steps, records each task window
//! as plain data ([`TaskRecord`], `eai_metrics::Run`) and writes them out. Where no power
//! sensor exists there are no energy figures unless a labelled estimate is asked for.
//!
//! ```
//! use eai::{Scheme, Study, StudyTask, PowerSetup, loader_fn};
//! use eai::core::{LanguageModel, ModelError, Watts};
//! use eai::power::ConstantSource;
//! # use eai::core::{GenerateRequest, Generation, Loglikelihood, LoglikelihoodRequest, ModelInfo};
//! # struct Toy(f64);
//! # impl LanguageModel for Toy {
//! #     fn info(&self) -> ModelInfo { ModelInfo::new("toy") }
//! #     fn loglikelihood(&mut self, r: &[LoglikelihoodRequest]) -> Result<Vec<Loglikelihood>, ModelError> {
//! #         std::thread::sleep(std::time::Duration::from_millis(20));
//! #         Ok(r.iter().map(|q| Loglikelihood::new(-(q.continuation.len() as f64) * self.0, false)).collect())
//! #     }
//! #     fn generate_until(&mut self, r: &[GenerateRequest]) -> Result<Vec<Generation>, ModelError> {
//! #         Ok(r.iter().map(|_| Generation::new("")).collect())
//! #     }
//! # }
//!
//! // Your engine under each scheme (here a toy; `eai::GgufLoader` loads real checkpoints).
//! let loader = loader_fn("toy", |s: Scheme| -> Result<Box<dyn LanguageModel>, ModelError> {
//!     Ok(Box::new(Toy(if s == Scheme::Fp32 { 1.0 } else { 1.1 }))) // prefers short answers
//! });
//! let results = Study::new(loader)
//!     .schemes([Scheme::Fp32, Scheme::Fp16])
//!     .task(StudyTask::new(eai::eval::bundled::arc_easy()?).limit(8))
//!     .repeats(2)
//!     .warmup_docs(0)
//!     .baseline(std::time::Duration::ZERO)
//!     .power(PowerSetup::Sources(vec![Box::new(ConstantSource::new(Watts(50.0)))]))
//!     .progress(false)
//!     .run()?;
//! assert_eq!(results.runs.len(), 4); // 2 schemes × 2 repetitions
//! let report = results.analyze()?;
//! assert!(report.table().contains("| FP16 | 2 / 2 |"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use eai_core as core;
#[cfg(feature = "eval")]
pub use eai_eval as eval;
#[cfg(feature = "metrics")]
pub use eai_metrics as metrics;
#[cfg(feature = "model")]
pub use eai_model as model;
#[cfg(feature = "power")]
pub use eai_power as power;
#[cfg(feature = "quant")]
pub use eai_quant as quant;

#[cfg(all(feature = "study", feature = "model"))]
pub use crate::{
    device::{Device, DeviceChoice},
    study::GgufLoader,
};
#[cfg(feature = "study")]
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

/// `eai agent` and `eai measure --agent` (feature `cluster`), mountable in your own program.
#[cfg(feature = "cluster")]
pub mod agent_cli;
#[cfg(feature = "study")]
mod breakdown;
#[cfg(feature = "cluster")]
pub use eai_cluster as cluster;
/// The `eai` program's pipeline subcommands, mountable in your own clap program.
#[cfg(feature = "cli")]
pub mod cli;
#[cfg(all(feature = "study", feature = "model"))]
mod device;
#[cfg(feature = "study")]
mod environment;
#[cfg(feature = "study")]
mod error;
#[cfg(feature = "study")]
mod estimate;
#[cfg(feature = "study")]
mod metered;
/// Output paths: checked first, never an input, written atomically (temp + rename).
#[cfg(feature = "study")]
pub mod outputs;
#[cfg(feature = "study")]
pub mod plots;
#[cfg(feature = "study")]
mod report;
#[cfg(feature = "study")]
mod scheme;
/// Served models: OpenAI-compatible endpoints as study schemes, energy per response under load.
#[cfg(feature = "serve")]
pub mod serve;
#[cfg(feature = "cli")]
mod serve_cli;
#[cfg(feature = "study")]
mod study;
