//! eai: energy-aware LLM deployment.
//!
//! A thin facade over the workspace's layers, each behind a feature of the same name (all on by
//! default):
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
//! ```
//! use eai::core::{Joules, Seconds};
//! let e = Joules::from_watt_hours(1.0);
//! assert_eq!((e / Seconds(3600.0)).value(), 1.0);
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
