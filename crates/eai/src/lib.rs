//! eai: energy-aware LLM deployment.
//!
//! A thin facade over the workspace's layers, each behind a feature of the same name (all on by
//! default): it only re-exports them. The co-evaluation pipeline that the paper describes —
//! quantize, evaluate, measure, compute EOR/TWEOR, advise — is `eai-study`, re-exported at this
//! crate's root (`Study`, `Metered`, … feature `study`). The `eai` program is the
//! `eai-cli` package: this crate compiles no command-line parser.
//!
//! | module | crate | what it does |
//! |---|---|---|
//! | [`core`] | `eai-core` | unit newtypes and the `LanguageModel` trait |
//! | `quant` | `eai-quant` | INT8/FP16/BF16/dynamic quantization, CPU and CUDA |
//! | `power` | `eai-power` | GPU/CPU power sampling and energy windows |
//! | `metrics` | `eai-metrics` | EOR, TWEOR, statistics, Pareto front, advice |
//! | `eval` | `eai-eval` | MMLU, ARC, HellaSwag, TruthfulQA, GSM8K |
//! | `model` | `eai-model` | a Llama-family runtime implementing `LanguageModel` |
//! | `study` (and the root) | `eai-study` | the pipeline: `Study`, `Metered`, report, plots |
//! | `serve` | `eai-study` + `eai-serve` | OpenAI-compatible servers as schemes, load studies |
//! | `cluster` | `eai-cluster` | DCGM exporter source, node agents, the coordinator |
//!
//! Features besides the layers: `cuda` and `nvml` (on: the GPU engine and NVIDIA sensors,
//! loaded at run time), `fetch` (off: `eai::model::fetch` downloads the test model with
//! `python3 -m pip`), `progress` (off: eai-eval's progress bar, indicatif).
//!
//! ```
//! # #[cfg(all(feature = "study", feature = "eval"))]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
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
//! # Ok(())
//! # }
//! # #[cfg(not(all(feature = "study", feature = "eval")))]
//! # fn main() {}
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

#[cfg(feature = "cluster")]
pub use eai_cluster as cluster;
/// The co-evaluation pipeline (`eai-study`), also re-exported at this crate's root.
#[cfg(feature = "study")]
pub use eai_study as study;
#[cfg(feature = "study")]
pub use eai_study::*;
